"""timm: modules that hold derived buffers define `init_non_persistent_buffers()` (usually
calling their `_init_buffers()`), and `timm.models.reinit_non_persistent_buffers(model)`
calls it on every module that has one (models/_manipulate.py:346-374); `reset_parameters()`
may rebuild buffers too. timm never runs the walk itself: the user does, after `to_empty()`
and loading a checkpoint."""

from __future__ import annotations

from bufferlint.conventions.base import EACH_MODULE, Convention
from bufferlint.conventions.reset_parameters import HOOK, TORCH_LAYERS_WITH_HOOK

TIMM = Convention(
    name="timm",
    hooks=("init_non_persistent_buffers", HOOK),
    caller=EACH_MODULE,
    layer_hook=HOOK,
    layers_with_hook=TORCH_LAYERS_WITH_HOOK,
    recipe="timm",
    summary=(
        "timm: `to_empty()`, then `reset_parameters()` and "
        "`reinit_non_persistent_buffers(model)` on every module"
    ),
    packages=("timm",),
    markers=("timm.models.register_model", "timm.models._registry.", "timm.create_model"),
    defines=("init_non_persistent_buffers",),
    # The walk runs after `load_state_dict` (its docstring: "need to be reinitialized after
    # loading a checkpoint"); every one of timm 1.0.31's 28 definitions writes only
    # non-persistent buffers, and persistent state is `reset_parameters`' (BatchNorm's).
    after_loading=("init_non_persistent_buffers",),
    rebuild_where="on {their} own device, calling the class's buffer helper if it has one",
)
