"""BL100: a suppression directive that suppresses nothing, or names a code that does not exist."""

from __future__ import annotations

from collections.abc import Sequence

from bufferlint.rules.base import DirectiveRule
from bufferlint.rules.registry import register

_EXAMPLE_CLASS = """\
    def __init__(self, block_size: int) -> None:
        super().__init__()
        mask = torch.tril(torch.ones(block_size, block_size, dtype=torch.bool))
        self.register_buffer("mask", mask, persistent=False)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.mask.copy_(torch.tril(torch.ones_like(self.mask)))
"""
_IMPORTS = "import torch\nimport torch.nn as nn\n\n\n"


@register
class UnusedNoqa(DirectiveRule):
    code = "BL100"
    name = "unused-noqa"
    summary = "Suppression directive that suppresses nothing"
    what = (
        "Checks `# noqa: BL...`, `# bufferlint: ignore[...]` and bare "
        "`# bufferlint: ignore` directives for bufferlint codes that suppress no finding "
        "on their line, and for BL codes that do not exist."
    )
    why = (
        "A suppression outlives the problem it was written for. Once the hook rebuilds "
        "the buffer, a leftover `# noqa: BL001` keeps silencing the class: the next buffer "
        "someone adds to `__init__` without rebuilding it is never reported, and it comes "
        "out of `to_empty()` as garbage, the very bug bufferlint exists to catch. A "
        "misspelt code (`# noqa: BL01`) suppresses nothing while looking as if it did.\n\n"
        "Codes of other tools (`# noqa: E501`) and a bare `# noqa` are never reported: "
        "bufferlint cannot know whether another tool needs them."
    )
    example = f"{_IMPORTS}class CausalMask(nn.Module):  # noqa: BL002\n{_EXAMPLE_CLASS}"
    use_instead = f"{_IMPORTS}class CausalMask(nn.Module):\n{_EXAMPLE_CLASS}"
    fix_safety = "There is no automatic fix yet: delete the directive, or the unused codes in it."
    options = (
        "None of its own. A code whose rule is not enabled (`select`, `ignore`, "
        "`--select`) is not reported, since that rule did not run. To keep a directive "
        "that is unused on purpose, add `BL100` to it (`# noqa: BL001, BL100`); to turn "
        'the rule off, `ignore = ["BL100"]`.'
    )
    level = "warning"

    def unused(self, kind: str, unused: Sequence[str], unknown: Sequence[str]) -> str | None:
        """The message for a directive of `kind` ("noqa", "ignore") with codes that hid
        nothing and codes no rule has; a blanket `ignore` that hid nothing has neither."""
        name = "noqa" if kind == "noqa" else "bufferlint: ignore"
        if not unused and not unknown:
            return None
        parts = [
            f"{label}: {', '.join(f'`{c}`' for c in codes)}"
            for label, codes in (("unused", unused), ("unknown", unknown))
            if codes
        ]
        return f"Unused `{name}` directive ({'; '.join(parts)})"

    def unused_blanket(self) -> str:
        return "Unused blanket `bufferlint: ignore` directive"
