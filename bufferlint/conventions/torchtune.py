"""torchtune 0.6: recipes build on meta, shard, call `rope_init()` under the target device on
every module that has one, then load the checkpoint with `load_state_dict(..., assign=True)`
(recipes/full_finetune_distributed.py:539-620; training/_distributed.py:201-314). There is no
`to_empty()`: a persistent buffer comes from the checkpoint, and a non-persistent one that
`rope_init()` does not build stays on meta."""

from __future__ import annotations

from bufferlint.conventions.base import EACH_MODULE, Convention

TORCHTUNE = Convention(
    name="torchtune",
    hooks=("rope_init",),
    caller=EACH_MODULE,
    recipe="torchtune",
    summary=(
        "torchtune: `rope_init()` on every module under the device, then the checkpoint "
        "loaded with `assign=True` (no `to_empty()`)"
    ),
    to_empty=False,
    packages=("torchtune",),
    defines=("rope_init",),
    rebuild_where=(
        "as new tensors under the recipe's device: a buffer left on meta cannot be filled in place"
    ),
)
