"""Renders findings. Every format lists them in the same, stable order.

`FORMATS` maps each `--output-format` name to a function from a `Report` to text.
"""

from __future__ import annotations

from collections.abc import Callable

from bufferlint.output.ci import render_azure, render_github, render_gitlab, render_junit
from bufferlint.output.report import Report
from bufferlint.output.sarif import render_sarif
from bufferlint.output.structured import render_json, render_json_lines, to_json_item
from bufferlint.output.text import (
    render_concise,
    render_full,
    render_grouped,
    render_pylint,
    render_statistics,
    summary,
)

FORMATS: dict[str, Callable[[Report], str]] = {
    "full": render_full,
    "concise": render_concise,
    "grouped": render_grouped,
    "json": render_json,
    "json-lines": render_json_lines,
    "junit": render_junit,
    "github": render_github,
    "gitlab": render_gitlab,
    "azure": render_azure,
    "pylint": render_pylint,
    "sarif": render_sarif,
}
# Formats for people, followed by the summary line (as in ruff).
TEXT_FORMATS = frozenset({"full", "concise", "grouped"})

__all__ = [
    "FORMATS",
    "TEXT_FORMATS",
    "Report",
    "render_statistics",
    "summary",
    "to_json_item",
]
