"""BL002: a module that builds buffers but has none of the convention's hooks."""

from __future__ import annotations

from bufferlint.rules.base import (
    ClassRule,
    Flag,
    JudgedClass,
    caveats,
    describe,
    placed,
    pronouns,
)
from bufferlint.rules.registry import register


@register
class MissingMaterializationHook(ClassRule):
    code = "BL002"
    name = "missing-materialization-hook"
    summary = "Module builds buffers but has no materialization hook"
    what = (
        "Checks `torch.nn.Module` subclasses that build buffers during construction "
        "but define no materialization hook (`reset_parameters` by default), neither "
        "themselves nor through a parent class."
    )
    why = (
        "Torch FSDP materializes a meta-device module by calling `to_empty()` and then "
        "`reset_parameters()` on every module that owns tensors: a module without the "
        "hook makes FSDP1 raise `AttributeError`, and Lightning's model-parallel "
        "strategy only warns on rank 0 and leaves the buffers holding uninitialized "
        "memory. See BL001 for what that does to training."
    )
    example = """\
import torch
import torch.nn as nn


class CausalMask(nn.Module):
    def __init__(self, block_size: int) -> None:
        super().__init__()
        mask = torch.tril(torch.ones(block_size, block_size, dtype=torch.bool))
        self.register_buffer("mask", mask, persistent=False)
"""
    use_instead = """\
import torch
import torch.nn as nn


class CausalMask(nn.Module):
    def __init__(self, block_size: int) -> None:
        super().__init__()
        mask = torch.tril(torch.ones(block_size, block_size, dtype=torch.bool))
        self.register_buffer("mask", mask, persistent=False)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.mask.copy_(torch.tril(torch.ones_like(self.mask)))
"""
    fix_safety = (
        "The fix adds the hook right after `__init__`, calling `super().<hook>()` first "
        "when a parent defines one, and rebuilds each buffer as BL001's fix does."
    )
    fixable = True
    runtime_checked = True

    def check(self, judged: JudgedClass) -> Flag | None:
        missing = judged.missing
        if not missing or judged.report.has_hook is not False:
            return None
        noun, them, their = pronouns(missing)
        class_name = judged.report.qualified.rsplit(".", 1)[-1]
        text = (
            f"`{class_name}` builds {noun} {describe(missing, judged.path)} during construction "
            f"but has no {judged.convention.hook_words()}: add one that rebuilds {them} "
            f"{placed(judged, their)}"
        )
        return Flag(text + caveats(judged, missing), missing)
