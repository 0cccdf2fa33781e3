"""BL003: a hook that rebuilds a buffer with a tensor made on the default device."""

from __future__ import annotations

from bufferlint.rules.base import ClassRule, Flag, JudgedClass, describe, pronouns
from bufferlint.rules.registry import register


@register
class RebuildOnWrongDevice(ClassRule):
    code = "BL003"
    name = "rebuild-on-wrong-device"
    summary = "Materialization hook rebuilds a buffer on the default device"
    what = (
        "Checks the materialization hook (`reset_parameters` by default) of "
        "`torch.nn.Module` subclasses for rebuilds that assign a buffer a new tensor made "
        "on the default device: a factory such as `torch.ones(n)` given no `device`, "
        "`register_buffer` of one, or a helper that takes a device parameter called "
        "without it (`self.rope_cache()` for `def rope_cache(self, device=None)`)."
    )
    why = (
        "After `to_empty(device=...)` each module's tensors are on the device the stack "
        "chose, typically this rank's GPU, while the default device is still the CPU (or "
        "GPU 0 on every rank). A rebuild that assigns a fresh tensor replaces the "
        "buffer with one on the default device: forward then fails on a device mismatch, "
        "or, where the tensor is indexed or moved implicitly, runs with copies on the "
        "wrong device.\n\n"
        "Lit-GPT's first fix for its RoPE bug did exactly this: "
        "`self.cos, self.sin = self.rope_cache()` in `reset_parameters`, with "
        "`rope_cache(device=None)`, so that on GPUs the cache landed on the CPU; a second "
        "fix passed `device=self.cos.device`.\n\n"
        "Not reported: rebuilds in place (`copy_`, `fill_`, `zero_`, `nn.init.*_`), "
        "factories given any device (`device=self.b.device`, a parameter's or buffer's "
        "device, or a device the hook receives, as torchtitan's "
        "`init_weights(buffer_device=...)` does), `.to(self.b.device)`, "
        "`torch.*_like(self.b)`, and rebuilds inside `with torch.device(...)`. A helper "
        "that takes no device parameter is not judged: where it makes its tensors is not "
        "read."
    )
    example = """\
import torch
from torch import nn


class CausalMask(nn.Module):
    def __init__(self, block_size: int) -> None:
        super().__init__()
        self.block_size = block_size
        self.register_buffer("mask", self._mask(), persistent=False)

    def _mask(self, device=None) -> torch.Tensor:
        n = self.block_size
        return torch.tril(torch.ones(n, n, device=device, dtype=torch.bool))

    def reset_parameters(self) -> None:
        self.mask = self._mask()
"""
    use_instead = """\
import torch
from torch import nn


class CausalMask(nn.Module):
    def __init__(self, block_size: int) -> None:
        super().__init__()
        self.block_size = block_size
        self.register_buffer("mask", self._mask(), persistent=False)

    def _mask(self, device=None) -> torch.Tensor:
        n = self.block_size
        return torch.tril(torch.ones(n, n, device=device, dtype=torch.bool))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.mask.copy_(self._mask(device=self.mask.device))
"""
    fix_safety = (
        "The fix turns the rebuild into an in-place copy under `torch.no_grad()`, which "
        "keeps the buffer's device, dtype and identity (`self.mask.copy_(...)`; a tuple "
        "rebuild is unpacked into locals first), and passes the buffer's device to a "
        "helper called without one (`self._mask(device=self.mask.device)`). It is safe: "
        "the values are those the hook computed, only their place changes. A rebuild "
        "that changes a buffer's shape cannot be copied in place; it is not fixed."
    )
    references = (
        "Lit-GPT: Lightning-AI/litgpt#887 (the rebuild on the default device), then #993 "
        "(`device=self.cos.device`)",
    )

    fixable = True
    fix_kind = "device"
    runtime_checked = True
    device_stand_in = True

    def check(self, judged: JudgedClass) -> Flag | None:
        if judged.project is None or not judged.report.built:
            return None
        wrong = judged.tensors.wrong_device
        if not wrong:
            return None
        buffers = [w.built for w in wrong]
        noun, them, their = pronouns(buffers)
        first = wrong[0]
        if first.helper:
            made = (
                f"`{first.code}` (line {first.line}), which leaves `{first.helper}`'s "
                f"`{first.parameter}` to its default"
            )
            advice = f"pass `{first.parameter}=self.{first.built.name}.device`, or copy in place"
        else:
            made = f"`{first.code}` (line {first.line}), made on the default device"
            advice = f"copy into the existing {noun} in place or make {them} on {their} device"
        leaves = "it leaves" if len(buffers) == 1 else "they leave"
        text = (
            f"{judged.convention.hook_words()} rebuilds {noun} {describe(buffers, judged.path)} "
            f"with {made}: after `to_empty(device=...)` {leaves} the module's device; {advice}"
        )
        return Flag(text, buffers)
