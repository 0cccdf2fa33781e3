"""The rules. Each carries its own documentation and examples (as Fixit rules do):
the examples drive the tests and the rule pages, so the docs cannot drift.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the analysis imports LibCST, which `--version` must not wait for
    from bufferlint.analysis import Built, ClassReport

DOCS_URL = "https://github.com/bufferlint/bufferlint/blob/main/rules/{code}.md"


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    summary: str
    what: str
    why: str
    example: str  # must be flagged
    use_instead: str  # must be clean
    fix_safety: str
    options: str = (
        "- `reset-methods` (`--reset-method NAME`, repeatable): the hook(s) that "
        "materialization calls; default `reset_parameters`."
    )
    references: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return DOCS_URL.format(code=self.code)


def _hooks(hooks: Sequence[str]) -> str:
    return " or ".join(f"`{h}`" for h in hooks)


def describe(buffers: Sequence[Built], path: str) -> str:
    """`cos` (line 12, non-persistent) and `sin` (line 13 of base.py, persistent)."""
    parts = []
    for b in buffers:
        where = (
            f"line {b.line}" if b.path == path else f"line {b.line} of {_relative(b.path, path)}"
        )
        parts.append(f"`{b.name}` ({where}, {'persistent' if b.persistent else 'non-persistent'})")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


BL001 = Rule(
    code="BL001",
    name="buffer-not-rebuilt",
    summary="Buffer built during construction is not rebuilt by the materialization hook",
    what=(
        "Checks `torch.nn.Module` subclasses for buffers that construction computes "
        "(`register_buffer`, `nn.Buffer`, or an allocation filled in place) but that "
        "the materialization hook (`reset_parameters` by default) does not rebuild."
    ),
    why=(
        "Large models are built on the `meta` device and materialized later: FSDP and "
        "Lightning call `to_empty()`, which hands out uninitialized memory, then each "
        "module's `reset_parameters()`. A buffer the hook does not rebuild keeps "
        "whatever the memory held: zeros, leftovers or NaN. Nothing crashes; the model "
        "just trains worse.\n\n"
        "Lit-GPT shipped exactly this. Its RoPE cache was registered from a property "
        "setter, and `reset_parameters` re-ran the setter, whose rebuild branches "
        '(`if not hasattr(self, "cos")`, `elif value != self.cos.size(0)`) never fire '
        "after `to_empty()`. Multi-GPU runs trained with `cos` values that were tiny "
        "random numbers instead of starting at 1.0, while single-GPU runs (no meta "
        "device) were fine. The fix rebuilt the cache in the hook, "
        "`self.cos, self.sin = self.rope_cache(device=self.cos.device)`, and even that "
        "fix first rebuilt it on the wrong device.\n\n"
        "A rebuild that only runs under a guard on the buffer's own state "
        "(`hasattr(self, ...)`, `self.b.is_meta`, `self.b.device`, `self.b.size(...)`) "
        "does not count: after `to_empty()` such guards are false or read garbage. A "
        "non-persistent buffer is not in the state dict either, so loading a "
        "checkpoint cannot repair it."
    ),
    example="""\
import torch
from torch import nn


class RotaryEmbedding(nn.Module):
    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        inv_freq = 1.0 / base ** (torch.arange(0, dim, 2).float() / dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.proj = nn.Linear(dim, dim)

    def reset_parameters(self) -> None:
        self.proj.reset_parameters()
""",
    use_instead="""\
import torch
from torch import nn


class RotaryEmbedding(nn.Module):
    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        self.dim = dim
        self.base = base
        self.register_buffer("inv_freq", self._inv_freq(), persistent=False)
        self.proj = nn.Linear(dim, dim)

    def _inv_freq(self, device=None) -> torch.Tensor:
        steps = torch.arange(0, self.dim, 2, device=device).float()
        return 1.0 / self.base ** (steps / self.dim)

    def reset_parameters(self) -> None:
        self.proj.reset_parameters()
        self.inv_freq = self._inv_freq(device=self.inv_freq.device)
""",
    fix_safety=(
        "The fix rebuilds each buffer inside the hook on the buffer's own device and "
        "dtype: in place under `torch.no_grad()` for constant factories, by re-calling "
        "the helper construction used, or by re-running the construction expression "
        "when every name it reads is still available on `self`. It is marked unsafe "
        "when the rebuild re-runs code that may have side effects or consume random "
        "numbers; where no rebuild can be derived, nothing is written and the finding "
        "says why."
    ),
    references=(
        "Lit-GPT: Lightning-AI/litgpt#862, fixed by #887, then #993 for the device",
        "Other public reports of the same failure: meta-pytorch/torchtune#218, "
        "huggingface/transformers#34234 and #45902, pytorch/torchtitan#4783, "
        "pytorch/pytorch#112012 and #178569, huggingface/pytorch-image-models#2350, "
        "mosaicml/llm-foundry#1745, hiyouga/LlamaFactory#10820",
    ),
)

BL002 = Rule(
    code="BL002",
    name="missing-materialization-hook",
    summary="Module builds buffers but has no materialization hook",
    what=(
        "Checks `torch.nn.Module` subclasses that build buffers during construction "
        "but define no materialization hook (`reset_parameters` by default), neither "
        "themselves nor through a parent class."
    ),
    why=(
        "Torch FSDP materializes a meta-device module by calling `to_empty()` and then "
        "`reset_parameters()` on every module that owns tensors: a module without the "
        "hook makes FSDP1 raise `AttributeError`, and Lightning's model-parallel "
        "strategy only warns on rank 0 and leaves the buffers holding uninitialized "
        "memory. See BL001 for what that does to training."
    ),
    example="""\
import torch
import torch.nn as nn


class CausalMask(nn.Module):
    def __init__(self, block_size: int) -> None:
        super().__init__()
        mask = torch.tril(torch.ones(block_size, block_size, dtype=torch.bool))
        self.register_buffer("mask", mask, persistent=False)
""",
    use_instead="""\
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
""",
    fix_safety=(
        "The fix adds the hook right after `__init__`, calling `super().<hook>()` first "
        "when a parent defines one, and rebuilds each buffer as BL001's fix does."
    ),
)

BL100 = Rule(
    code="BL100",
    name="unused-noqa",
    summary="Suppression directive that suppresses nothing",
    what=(
        "Checks `# noqa: BL...`, `# bufferlint: ignore[...]` and bare "
        "`# bufferlint: ignore` directives for bufferlint codes that suppress no finding "
        "on their line, and for BL codes that do not exist."
    ),
    why=(
        "A suppression outlives the problem it was written for. Once the hook rebuilds "
        "the buffer, a leftover `# noqa: BL001` keeps silencing the class: the next buffer "
        "someone adds to `__init__` without rebuilding it is never reported, and it comes "
        "out of `to_empty()` as garbage, the very bug bufferlint exists to catch. A "
        "misspelt code (`# noqa: BL01`) suppresses nothing while looking as if it did.\n\n"
        "Codes of other tools (`# noqa: E501`) and a bare `# noqa` are never reported: "
        "bufferlint cannot know whether another tool needs them."
    ),
    example="""\
import torch
import torch.nn as nn


class CausalMask(nn.Module):  # noqa: BL002
    def __init__(self, block_size: int) -> None:
        super().__init__()
        mask = torch.tril(torch.ones(block_size, block_size, dtype=torch.bool))
        self.register_buffer("mask", mask, persistent=False)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.mask.copy_(torch.tril(torch.ones_like(self.mask)))
""",
    use_instead="""\
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
""",
    fix_safety=("There is no automatic fix yet: delete the directive, or the unused codes in it."),
    options=(
        "None of its own. A code whose rule is not enabled (`select`, `ignore`, "
        "`--select`) is not reported, since that rule did not run. To keep a directive "
        "that is unused on purpose, add `BL100` to it (`# noqa: BL001, BL100`); to turn "
        'the rule off, `ignore = ["BL100"]`.'
    ),
)

RULES: dict[str, Rule] = {rule.code: rule for rule in (BL001, BL002, BL100)}


def _relative(target: str, start: str) -> str:
    return os.path.relpath(target, os.path.dirname(start))


def message(
    rule: Rule, report: ClassReport, buffers: Sequence[Built], hooks: Sequence[str], path: str
) -> str:
    """One line: which buffers, where built, persistence, and the fix."""
    class_name = report.qualified.rsplit(".", 1)[-1]
    one = len(buffers) == 1
    noun, them, their = ("buffer", "it", "its") if one else ("buffers", "them", "their")
    if rule is BL002:
        text = (
            f"`{class_name}` builds {noun} {describe(buffers, path)} during construction but has "
            f"no {_hooks(hooks)}: add one that rebuilds {them} on {their} own device"
        )
    else:
        text = (
            f"{_hooks(hooks)} does not rebuild {noun} {describe(buffers, path)}, built during "
            f"construction: rebuild {them} there on {their} own device"
        )
    guarded = [report.guarded[b.name] for b in buffers if b.name in report.guarded]
    if guarded:
        text += (
            f"; the rebuild at line {guarded[0].line} runs only if "
            f"`{guarded[0].condition}`, which does not hold after `to_empty()`"
        )
    if not all(b.persistent for b in buffers):
        text += "; a checkpoint cannot restore non-persistent buffers"
    return text
