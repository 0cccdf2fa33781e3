"""torchtune 0.6: recipes build on meta, shard, call `rope_init()` under the target device on
every module that has one, then load the checkpoint with `load_state_dict(..., assign=True)`
(recipes/full_finetune_distributed.py:539-620; training/_distributed.py:201-314). There is no
`to_empty()`: a persistent buffer comes from the checkpoint, and a non-persistent one that
`rope_init()` does not build stays on meta. KV caches are built later, by `setup_caches()`
under the device, and are not judged."""

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
    # recipes/generate.py:132-138: `with self._device: model.setup_caches(...)`, after loading;
    # attention layers build their `KVCache` there (modules/attention.py:148-172).
    late_builders=("setup_caches", "setup_cache"),
    packages=("torchtune",),
    defines=("rope_init",),
    rebuild_where=(
        "as new tensors under the recipe's device: a buffer left on meta cannot be filled in place"
    ),
)
