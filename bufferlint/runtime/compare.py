"""Judging one buffer: snapshots of materialized and eager builds, and the rules that decide.

A buffer is wrong when its bytes differ between the 0x00 and 0xFF sentinel passes (it depends
on uninitialized memory), when it is on another device than the module or has another dtype
than `__init__` gave it, or when it differs from a reproducible eager build.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bufferlint.runtime.report import format_values

# torch.testing.assert_close's defaults; other dtypes must match exactly.
_TOLERANCES = {
    torch.float16: (1e-3, 1e-5),
    torch.bfloat16: (1.6e-2, 1e-5),
    torch.float32: (1.3e-6, 1e-5),
    torch.float64: (1e-7, 1e-7),
    torch.complex64: (1.3e-6, 1e-5),
    torch.complex128: (1e-7, 1e-7),
}
_SHOWN = 4  # elements quoted in a report


@dataclass(frozen=True)
class Snapshot:
    """A buffer copied to the CPU (`data` is None while it is still on the meta device)."""

    data: torch.Tensor | None
    device: str
    dtype: torch.dtype

    def same_bytes(self, other: Snapshot | None) -> bool:
        if other is None or self.data is None or other.data is None:
            return False
        a, b = self.data, other.data
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(_bytes(a), _bytes(b))


def snapshot(model: nn.Module, also: Sequence[str] = ()) -> dict[str, Snapshot]:
    """Copies of every buffer, taken before anything else can overwrite them; and of the
    tensors `also` names that are no buffers: a frozen parameter, or a plain attribute
    holding a tensor (the first one, in a tuple, list or dict of them)."""
    out = {name: _copy(buffer) for name, buffer in model.named_buffers()}
    for name in also:
        if name not in out:
            found = held_tensor(model, name)
            if found is not None:
                out[name] = _copy(found)
    return out


def held_tensor(model: nn.Module, name: str) -> torch.Tensor | None:
    """The tensor a module holds under `name` (dotted for submodules), however it holds it."""
    owner, _, attribute = name.rpartition(".")
    try:
        module = model.get_submodule(owner) if owner else model
    except AttributeError:
        return None
    value = getattr(module, attribute, None)
    if isinstance(value, dict):
        value = next(iter(value.values()), None)
    elif isinstance(value, (tuple, list)):
        value = value[0] if value else None
    return value if isinstance(value, torch.Tensor) else None


def _copy(tensor: torch.Tensor) -> Snapshot:
    local = tensor.to_local() if hasattr(tensor, "to_local") else tensor
    on_meta = local.device.type == "meta"
    data = None if on_meta else local.detach().to("cpu", copy=True).contiguous()
    return Snapshot(data, str(tensor.device), tensor.dtype)


def _bytes(t: torch.Tensor) -> torch.Tensor:
    """One row of raw bytes per element, so NaN payloads and -0.0 count as different."""
    return t.reshape(-1).view(torch.uint8).reshape(t.numel(), t.element_size())


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _plain(value: Any) -> Any:
    """JSON-ready scalars: floats rounded to 6 digits, non-finite ones as words."""
    if isinstance(value, float):
        return float(f"{value:.6g}") if math.isfinite(value) else str(value)
    if isinstance(value, complex):
        return str(value)
    return value


def _window(t: torch.Tensor, flat: int, name: str) -> tuple[str, list[Any]]:
    """The aligned run of elements around flat index `flat`: ("cos[3, 4:8]", [...])."""
    if t.dim() == 0:
        return name, [_plain(t.item())]
    index = list(torch.unravel_index(torch.tensor(flat), t.shape))
    last = int(index[-1])
    start = last - last % _SHOWN
    stop = min(start + _SHOWN, t.shape[-1])
    prefix = [str(int(i)) for i in index[:-1]]
    span = f"{start if start else ''}:{stop}"
    row = t[tuple(int(i) for i in index[:-1])]
    return f"{name}[{', '.join([*prefix, span])}]", [_plain(v) for v in row[start:stop].tolist()]


def _first_difference(a: torch.Tensor, b: torch.Tensor) -> int:
    differs = (_bytes(a) != _bytes(b)).any(dim=1)
    return int(differs.nonzero()[0, 0]) if differs.any() else 0


def _first_mismatch(actual: torch.Tensor, expected: torch.Tensor) -> int | None:
    if expected.dtype in _TOLERANCES:
        rtol, atol = _TOLERANCES[expected.dtype]
        close = torch.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    else:
        close = actual == expected
    bad = (~close).reshape(-1).nonzero()
    return int(bad[0, 0]) if len(bad) else None


def reference(
    *candidates: tuple[Snapshot | None, Snapshot | None, str],
) -> tuple[Snapshot | None, str]:
    """The first eager value that two builds under different seeds agree on. The plain eager
    build comes first (it is what the module means); the build with its hooks replayed covers
    buffers that are random by design but rebuilt by a reseeded hook."""
    for first, second, how in candidates:
        if first is not None and first.same_bytes(second):
            return first, how
    return None, "two-pass test only (no reproducible eager value)"


def judge(
    name: str,
    passes: tuple[Snapshot | None, Snapshot | None],
    expected: Snapshot | None,
    expected_how: str,
    expected_dtype: torch.dtype | None,
    device: str,
) -> dict[str, Any]:
    """One buffer's verdict: ok True/False, or None when it does not exist to be judged."""
    zero, full = passes
    if full is None or zero is None:
        if expected is None and expected_dtype is None:
            return _verdict(None, "not a buffer of the module as built", f"{name} does not exist")
        return _verdict(False, "missing", f"{name} is gone after materialization")
    info = {"device": full.device, "dtype": _dtype_name(full.dtype), "judged_by": expected_how}
    if full.data is None or zero.data is None:
        return _verdict(False, "still on meta", f"{name} is still on the meta device", **info)
    info["digest"] = hashlib.sha1(_bytes(full.data).numpy().tobytes()).hexdigest()[:12]
    if not zero.same_bytes(full):
        flat = _first_difference(zero.data, full.data)
        where, actual = _window(full.data, flat, name)
        expected_values = None
        if expected is not None and expected.data is not None:
            if expected.data.shape == full.data.shape:
                expected_values = _window(expected.data, flat, name)[1]
        if expected_values is not None:
            message = (
                f"{where} expected {format_values(expected_values)}, got {format_values(actual)}"
            )
        else:
            with_zeros = _window(zero.data, flat, name)[1]
            message = (
                f"{where} depends on uninitialized memory: {format_values(with_zeros)} after "
                f"a 0x00 fill, {format_values(actual)} after 0xFF"
            )
        return _verdict(
            False,
            "depends on uninitialized memory",
            message,
            where=where,
            expected=expected_values,
            actual=actual,
            **info,
        )
    if full.device != device:
        return _verdict(
            False, "wrong device", f"{name} is on {full.device}, the module on {device}", **info
        )
    if expected_dtype is not None and full.dtype != expected_dtype:
        message = f"{name} has dtype {info['dtype']}, expected {_dtype_name(expected_dtype)}"
        return _verdict(False, "wrong dtype", message, **info)
    if expected is None or expected.data is None:
        return _verdict(True, "stable across sentinel fills", f"{name} is rebuilt", **info)
    want, got = expected.data, full.data.to(expected.data.dtype)
    if want.shape != got.shape:
        message = f"{name} has shape {list(got.shape)}, expected {list(want.shape)}"
        return _verdict(False, "wrong shape", message, **info)
    flat = _first_mismatch(got, want)
    if flat is not None:
        where, actual = _window(got, flat, name)
        _, wanted = _window(want, flat, name)
        message = f"{where} expected {format_values(wanted)}, got {format_values(actual)}"
        return _verdict(
            False,
            f"differs from the {expected_how}",
            message,
            where=where,
            expected=wanted,
            actual=actual,
            **info,
        )
    return _verdict(
        True, f"matches the {expected_how}", f"{name} matches the {expected_how}", **info
    )


def _verdict(ok: bool | None, reason: str, message: str, **info: Any) -> dict[str, Any]:
    return {
        "ok": ok,
        "reason": reason,
        "message": message,
        "expected": None,
        "actual": None,
        **info,
    }
