"""Make uninitialized memory deterministic, so a buffer that depends on it can be proven to.

Allocator luck decides what `to_empty` hands out (zeros, leftovers, or by chance the right
values), so one materialization proves nothing. Under `SentinelFill`, every fresh allocation is
filled with one byte; materializing twice, with 0x00 and with 0xFF, and comparing the bytes of
each buffer shows exactly which buffers were never written.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode, is_traceable_wrapper_subclass

FILL_BYTES = (0x00, 0xFF)
# Everything that returns memory nobody has written yet.
_ALLOCATIONS = frozenset(
    {"empty", "empty_like", "empty_strided", "empty_permuted", "new_empty", "new_empty_strided"}
)


def fill_storage(tensor: torch.Tensor, byte: int) -> None:
    """Fill the whole storage (not just the view) with `byte`; bools get 0 or 1, since any
    other byte is not a valid bool. Tensor subclasses such as DTensor are filled through
    their inner tensors."""
    if is_traceable_wrapper_subclass(tensor):
        for attr in tensor.__tensor_flatten__()[0]:
            inner = getattr(tensor, attr)
            if isinstance(inner, torch.Tensor):
                fill_storage(inner, byte)
        return
    if tensor.device.type == "meta":
        return
    tensor.untyped_storage().fill_(int(byte != 0) if tensor.dtype == torch.bool else byte)


class SentinelFill(TorchDispatchMode):
    """Fills the result of every allocation op with `byte` while active."""

    def __init__(self, byte: int) -> None:
        super().__init__()
        self.byte = byte

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        if func._overloadpacket.__name__ in _ALLOCATIONS and isinstance(out, torch.Tensor):
            fill_storage(out, self.byte)
        return out
