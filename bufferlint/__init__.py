"""bufferlint: find buffers that a model's materialization hook does not rebuild."""

__version__ = "0.1.0"
