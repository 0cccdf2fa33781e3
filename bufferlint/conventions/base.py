"""What a materialization convention is: one object that the analysis, the fixer and the
runtime ask instead of naming hooks themselves."""

from __future__ import annotations

import fnmatch
import os
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
    # DISPATCHER only: the stack's model classes, whose hook (`hooks[0]`, taking the
    # module) the stack applies to every submodule; modules of in-place helpers the hook
    # writes with; and the base classes' own hook as source, read when the stack's
    # sources are not in the project.
    bases: tuple[str, ...] = ()
    init_modules: tuple[str, ...] = ()
    base_source: str = field(default="", repr=False)
    # File names (globs) of templates the stack generates its code from and never runs.
    templates: tuple[str, ...] = ()
    # The parameter the stack passes the hook the buffers' device in (torchtitan's
    # `buffer_device`): a new hook takes it, and a rebuild moves the buffer there.
    hook_device: str = ""
    # False where the stack never calls `to_empty()` (torchtune): a persistent buffer comes
    # from the checkpoint, and a buffer left on meta must be given memory, not filled.
    to_empty: bool = True
    # What marks a class for `auto` (bufferlint.choice): the stack's own top-level packages,
    # imports that mark a file (qualified names, or prefixes ending in "."), and methods
    # that only this stack's modules define.
    packages: tuple[str, ...] = ()
    markers: tuple[str, ...] = ()
    defines: tuple[str, ...] = ()
    # How messages say where a rebuild goes ("{their}": "its" or "their"), and name the
    # hooks when not all of them ("" lists `hooks`).
    rebuild_where: str = "on {their} own device"
    hook_names: str = ""
    # Methods the stack calls only after materialization, under the target device
    # (torchtune's `setup_caches`): a module that only they construct is never on meta.
    late_builders: tuple[str, ...] = ()
    # Hooks the stack runs after loading a checkpoint (timm's `init_non_persistent_buffers`,
    # by `reinit_non_persistent_buffers`): they may write non-persistent buffers only. A
    # persistent buffer or a parameter they wrote would overwrite the loaded value, so those
    # belong in the first of `hooks` that is not one of them (`from_scratch`).
    after_loading: tuple[str, ...] = ()
    _layers: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_layers", frozenset(self.layers_with_hook))

    def layer_defines_hook(self, layer: str, hook: str | None = None) -> bool:
        """Whether the torch.nn layer `layer` (a class name) defines `hook` (any hook)."""
        return layer in self._layers and hook in (None, self.layer_hook)

    @property
    def from_scratch(self) -> str:
        """The hook for persistent state: the first that does not run after loading."""
        return next((h for h in self.hooks if h not in self.after_loading), self.hooks[0])

    def hook_words(self) -> str:
        """The hooks as messages name them: "`init_weights` or `reset_parameters`"."""
        if self.hook_names:
            return self.hook_names
        return " or ".join(f"`{hook}`" for hook in self.hooks)

    def is_template(self, path: str) -> bool:
        """Whether the file is a template whose classes never run (their copies do)."""
        name = os.path.basename(path)
        return any(fnmatch.fnmatchcase(name, glob) for glob in self.templates)

    def dispatches(self) -> bool:
        """Whether a parent's hook, applied to every submodule, rebuilds a module."""
        return self.caller == DISPATCHER
