"""transformers 5.x: `from_pretrained` builds under `torch.device("meta")`, gives every
non-persistent buffer (and every tensor the checkpoint lacks) `torch.empty_like` memory
(`_move_missing_keys_from_meta_to_device`), then `initialize_weights()` applies the owning
model's `_init_weights(module)` to each submodule, post-order, a nested `PreTrainedModel`
using its own (transformers/modeling_utils.py, `PreTrainedModel.initialize_weights`)."""

from __future__ import annotations

from bufferlint.conventions.base import DISPATCHER, Convention

# What `PreTrainedModel._init_weights` does to buffers in transformers 5.x, written from
# its rules (norms' running statistics; `*RotaryEmbedding*` modules that keep
# `original_inv_freq`): the base judged when transformers' sources are not in the project.
BASE_SOURCE = """\
from torch import nn
from transformers import initialization as init


class PreTrainedModel:
    def _init_weights(self, module):
        if (
            isinstance(module, (nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d))
            or "LayerNorm" in module.__class__.__name__
            or "RMSNorm" in module.__class__.__name__
        ):
            if getattr(module, "running_mean", None) is not None:
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)
                init.zeros_(module.num_batches_tracked)
        elif "RotaryEmbedding" in module.__class__.__name__ and hasattr(
            module, "original_inv_freq"
        ):
            init.copy_(module.inv_freq, module.compute_default_rope_parameters())
            init.copy_(module.original_inv_freq, module.inv_freq)
"""

TRANSFORMERS = Convention(
    name="transformers",
    hooks=("_init_weights",),
    caller=DISPATCHER,
    device_parameters=(),
    recipe="transformers",
    summary=(
        "transformers 5.x: `from_pretrained` on meta, then the model's "
        "`_init_weights(module)` on every submodule"
    ),
    bases=("transformers.PreTrainedModel", "transformers.modeling_utils.PreTrainedModel"),
    init_modules=("transformers.initialization.",),
    base_source=BASE_SOURCE,
    # `utils/modular_model_converter.py` expands each into its `modeling_*.py`.
    templates=("modular_*.py",),
)
