"""A rule that exists only for the tests: one file, registered on import, and nothing else
in bufferlint knows it. It flags every module class that builds a buffer."""

from __future__ import annotations

from bufferlint.rules import ClassRule, Flag, JudgedClass, register


@register
class EveryBuilder(ClassRule):
    code = "BL999"
    name = "every-builder"
    summary = "Module builds a buffer (a test-only rule)"
    what = "Flags every module class whose construction builds a buffer."
    why = "It proves that a rule is self-contained: nothing outside this file names it."
    example = """\
import torch
from torch import nn


class Table(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("ids", torch.arange(4))

    def reset_parameters(self) -> None:
        self.ids.copy_(torch.arange(4))
"""
    use_instead = """\
from torch import nn


class Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)
"""
    fix_safety = "There is no fix."

    def check(self, judged: JudgedClass) -> Flag | None:
        built = sorted(judged.report.built.values(), key=lambda b: b.name)
        names = ", ".join(f"`{b.name}`" for b in built)
        return Flag(f"builds {names} under `{judged.convention.name}`", built)
