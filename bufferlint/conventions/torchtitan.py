"""torchtitan: the trainer builds under `torch.device("meta")`, parallelizes, calls
`to_empty(device=...)`, then, under `torch.no_grad()`, `model.init_weights(buffer_device=...)`
once, on the root (0.1.x: train.py:243-259). The root's `init_weights` calls each layer's
`init_weights()` itself (0.1.x llama3 model.py:355-390); later versions route it through
`init_states(buffer_device=...)`, which calls `_init_self_parameters()` and
`_init_self_buffers(buffer_device=...)` on every module (protocols/module.py)."""

from __future__ import annotations

from bufferlint.conventions.base import ROOT_ONLY, Convention

TORCHTITAN = Convention(
    name="torchtitan",
    hooks=("init_weights", "_init_self_buffers", "init_states"),
    caller=ROOT_ONLY,
    device_parameters=("device", "buffer_device"),
    recipe="torchtitan",
    summary=(
        "torchtitan: `to_empty()`, then the root's `init_weights(buffer_device=...)`, "
        "which calls its layers' `init_weights`"
    ),
    hook_device="buffer_device",
    packages=("torchtitan",),
    markers=("torchtitan.protocols.",),
    defines=("_init_self_buffers", "init_states"),
    rebuild_where=(
        "under the `buffer_device` the root's `init_weights` receives (a layer's "
        "`init_weights` is called by its parent's)"
    ),
    hook_names="`init_weights` or `_init_self_buffers`",
)
