"""What a materialization convention is: one object that the analysis, the fixer and the
runtime ask instead of naming hooks themselves."""

from __future__ import annotations

from dataclasses import dataclass, field

# Who calls a convention's hooks, on which modules.
EACH_MODULE = "each module"  # the stack walks the model and calls the hook where defined
ROOT_ONLY = "root only"  # the stack calls the root's hook, which cascades to the layers
DISPATCHER = "parent dispatcher"  # a parent's method is applied to every submodule


@dataclass(frozen=True)
class Convention:
    """One stack's way of rebuilding tensors after `to_empty()`."""

    name: str
    hooks: tuple[str, ...]  # the methods that rebuild a module's tensors, in preference order
    caller: str = EACH_MODULE
    device_parameters: tuple[str, ...] = ("device",)  # a helper's parameter for the device
    # The hook torch.nn layers define themselves and call from their own `__init__`, and
    # those layers (sorted, so that `repr` is stable: the run cache keys on it).
    layer_hook: str = ""
    layers_with_hook: tuple[str, ...] = ()
    recipe: str = "torch"  # the runtime recipe (bufferlint.runtime.recipes) reproducing it
    summary: str = ""
    _layers: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_layers", frozenset(self.layers_with_hook))

    def layer_defines_hook(self, layer: str, hook: str | None = None) -> bool:
        """Whether the torch.nn layer `layer` (a class name) defines `hook` (any hook)."""
        return layer in self._layers and hook in (None, self.layer_hook)

    def hook_words(self) -> str:
        """The hooks as messages name them: "`init_weights` or `reset_parameters`"."""
        return " or ".join(f"`{hook}`" for hook in self.hooks)
