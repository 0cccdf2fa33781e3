"""Renders findings. Every format lists them in the same, stable order.

`FORMATS` maps each `--output-format` name to a function from a `Report` to text. The
machine formats' modules are imported when used: a pre-commit run pays for text only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from bufferlint.output.report import Report
from bufferlint.output.text import (
    render_concise,
    render_full,
    render_grouped,
    render_pylint,
    render_statistics,
    summary,
)


def _imported(module: str, name: str) -> Callable[[Report], str]:
    def render(report: Report) -> str:
        found: Callable[[Report], str] = getattr(
            importlib.import_module(f"bufferlint.output.{module}"), name
        )
        return found(report)

    render.__name__ = render.__qualname__ = name
    return render


FORMATS: dict[str, Callable[[Report], str]] = {
    "full": render_full,
    "concise": render_concise,
    "grouped": render_grouped,
    "json": _imported("structured", "render_json"),
    "json-lines": _imported("structured", "render_json_lines"),
    "junit": _imported("ci", "render_junit"),
    "github": _imported("ci", "render_github"),
    "gitlab": _imported("ci", "render_gitlab"),
    "azure": _imported("ci", "render_azure"),
    "pylint": render_pylint,
    "sarif": _imported("sarif", "render_sarif"),
}
# Formats for people, followed by the summary line (as in ruff).
TEXT_FORMATS = frozenset({"full", "concise", "grouped"})

__all__ = ["FORMATS", "TEXT_FORMATS", "Report", "render_statistics", "summary"]
