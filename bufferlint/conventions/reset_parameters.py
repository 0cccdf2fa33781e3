"""FSDP1 and Lightning: `to_empty()`, then `reset_parameters()` on each module that owns
tensors (torch/distributed/fsdp/_init_utils.py; lightning/fabric/utilities/init.py)."""

from __future__ import annotations

from bufferlint.conventions.base import EACH_MODULE, Convention

HOOK = "reset_parameters"
# torch.nn layers that define it (torch 2.x), each calling it from its own `__init__`.
TORCH_LAYERS_WITH_HOOK = tuple(
    sorted(
        """AdaptiveLogSoftmaxWithLoss BatchNorm1d BatchNorm2d BatchNorm3d Bilinear Conv1d Conv2d
        Conv3d ConvTranspose1d ConvTranspose2d ConvTranspose3d Embedding EmbeddingBag GRU
        GRUCell GroupNorm InstanceNorm1d InstanceNorm2d InstanceNorm3d LSTM LSTMCell LayerNorm
        LazyBatchNorm1d LazyBatchNorm2d LazyBatchNorm3d LazyConv1d LazyConv2d LazyConv3d
        LazyConvTranspose1d LazyConvTranspose2d LazyConvTranspose3d LazyInstanceNorm1d
        LazyInstanceNorm2d LazyInstanceNorm3d LazyLinear Linear PReLU RMSNorm RNN RNNBase
        RNNCell RNNCellBase SyncBatchNorm _BatchNorm _NormBase _ConvNd _ConvTransposeNd""".split()
    )
)

RESET_PARAMETERS = Convention(
    name="reset-parameters",
    hooks=(HOOK,),
    caller=EACH_MODULE,
    layer_hook=HOOK,
    layers_with_hook=TORCH_LAYERS_WITH_HOOK,
    recipe="fsdp",
    summary="FSDP1 and Lightning: `reset_parameters()` on each module that owns tensors",
)


def reset_methods(hooks: tuple[str, ...]) -> Convention:
    """The user's own loop over every module, calling the hooks they name (`reset-methods`).
    Naming only `reset_parameters` is FSDP1's convention itself."""
    if hooks == RESET_PARAMETERS.hooks:
        return RESET_PARAMETERS
    torch_hook = HOOK in hooks
    return Convention(
        name="reset-methods",
        hooks=hooks,
        caller=EACH_MODULE,
        layer_hook=HOOK if torch_hook else "",
        layers_with_hook=TORCH_LAYERS_WITH_HOOK if torch_hook else (),
        recipe="torch",
        summary="your own loop: `to_empty()`, then the named methods on every module",
    )
