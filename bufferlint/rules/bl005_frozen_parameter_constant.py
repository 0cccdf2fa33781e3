"""BL005: a computed constant held in a frozen parameter that the hook does not rebuild."""

from __future__ import annotations

from bufferlint.rules.base import (
    ClassRule,
    Flag,
    JudgedClass,
    advice,
    describe,
    pronouns,
    rebuilder,
)
from bufferlint.rules.registry import register


@register
class FrozenParameterConstant(ClassRule):
    code = "BL005"
    name = "frozen-parameter-constant"
    summary = "Computed constant in a frozen parameter is not rebuilt by the materialization hook"
    what = (
        "Checks `torch.nn.Module` subclasses whose construction computes a constant and "
        "holds it as `nn.Parameter(value, requires_grad=False)`, or as `self.p = "
        "nn.Parameter(value)` frozen later in the same method and branch "
        "(`self.p.requires_grad_(False)`, `self.p.requires_grad = False`), for hooks "
        "(`reset_parameters` by default) that do not rebuild it."
    )
    why = (
        "A frozen parameter that holds a computed table (rotary frequencies, fixed "
        "sinusoidal positions) is a buffer in disguise, with the same failure as BL001: "
        "`to_empty()` gives it uninitialized memory and a hook that only initializes the "
        "trainable weights leaves it so. Nothing crashes; the model trains on garbage. "
        "rotary-embedding-torch keeps its frequencies this way.\n\n"
        "A trainable parameter is the hook's ordinary job and not this rule's; neither is "
        "a frozen parameter made from a tensor the caller passes in."
    )
    example = """\
import torch
from torch import nn


class Rotary(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        freqs = 1.0 / 10000 ** (torch.arange(0, dim, 2).float() / dim)
        self.freqs = nn.Parameter(freqs, requires_grad=False)
        self.proj = nn.Linear(dim, dim)

    def reset_parameters(self) -> None:
        self.proj.reset_parameters()
"""
    use_instead = """\
import torch
from torch import nn


class Rotary(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        freqs = 1.0 / 10000 ** (torch.arange(0, dim, 2).float() / dim)
        self.freqs = nn.Parameter(freqs, requires_grad=False)
        self.proj = nn.Linear(dim, dim)

    def reset_parameters(self) -> None:
        self.proj.reset_parameters()
        with torch.no_grad():
            steps = torch.arange(0, self.dim, 2, device=self.freqs.device).float()
            self.freqs.copy_(1.0 / 10000 ** (steps / self.dim))
"""
    fix_safety = (
        "As BL001's: the fix rebuilds each frozen parameter in place in the hook, under "
        "`torch.no_grad()`, on its own device and dtype, replaying the construction code "
        "it can prove is safe to run again; otherwise it says why there is none."
    )
    references = ("lucidrains/rotary-embedding-torch: `freqs` as a frozen `nn.Parameter`",)

    fixable = True
    fix_kind = "frozen"
    runtime_checked = True

    def check(self, judged: JudgedClass) -> Flag | None:
        if judged.project is None:
            return None
        tensors = judged.tensors
        frozen = tensors.frozen
        if not frozen:
            return None
        noun, them, their = pronouns(frozen)
        noun = "parameter" if len(frozen) == 1 else "parameters"
        where = describe(frozen, judged.path, persistence=False)
        hooks = rebuilder(judged)
        one = len(frozen) == 1
        how = (
            advice(judged, them, their)
            if judged.convention.dispatches()
            else f"rebuild {them} there in place on {their} own device"
        )
        if tensors.has_hook is False:
            text = (
                f"frozen {noun} {where} {'holds a constant' if one else 'hold constants'} "
                f"that construction computes, but the module has no {hooks}: add one that "
                f"rebuilds {them} in place on {their} own device"
            )
        else:
            text = (
                f"{hooks} does not rebuild frozen {noun} {where}, "
                f"{'a constant' if one else 'constants'} that construction computes: after "
                f"`to_empty()` {'it holds' if one else 'they hold'} garbage; {how}"
            )
        guarded = [tensors.guarded[s.name] for s in frozen if s.name in tensors.guarded]
        if guarded:
            line, condition = guarded[0]
            text += (
                f"; the rebuild at line {line} runs only if `{condition}`, which does not "
                "hold after `to_empty()`"
            )
        return Flag(text, frozen)
