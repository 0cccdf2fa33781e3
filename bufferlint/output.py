"""Renders findings. Every format lists them in the same, stable order."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from bufferlint.findings import Finding
from bufferlint.rules import RULES


def to_json_item(finding: Finding) -> dict[str, Any]:
    """ruff's JSON fields, plus what bufferlint knows about the class."""
    rule = RULES.get(finding.code or "")
    item: dict[str, Any] = {
        "code": finding.code,
        "message": finding.message,
        "filename": finding.path,
        "location": {"row": finding.line, "column": finding.column},
        "end_location": {"row": finding.end_line, "column": finding.end_column},
        "fix": finding.fix,
        "url": rule.url if rule else None,
        "class_name": finding.class_name or None,
        "buffers": finding.buffer_names,
    }
    if finding.runtime is not None:
        item["runtime"] = finding.runtime
    return item


def render_json(findings: Sequence[Finding]) -> str:
    return json.dumps([to_json_item(f) for f in findings], indent=2) + "\n"


def render_concise(findings: Sequence[Finding]) -> str:
    lines = []
    for f in findings:
        code = f"{f.code} " if f.code else ""
        fixable = "[*] " if f.fix else ""
        lines.append(f"{f.path}:{f.line}:{f.column}: {code}{fixable}{f.message}")
    return "".join(line + "\n" for line in lines)


def summary(findings: Sequence[Finding], files: int) -> str:
    if not findings:
        return f"All checks passed! ({files} file{'s' if files != 1 else ''} checked)\n"
    errors = sum(1 for f in findings if f.code is None)
    count = len(findings) - errors
    parts = [f"Found {count} error{'s' if count != 1 else ''}"]
    if errors:
        parts.append(f"{errors} file{'s' if errors != 1 else ''} could not be parsed")
    fixable = sum(1 for f in findings if f.fix)
    text = ", ".join(parts) + f" in {files} file{'s' if files != 1 else ''}."
    if fixable:
        text += f"\n[*] {fixable} fixable with the `--fix` option."
    return text + "\n"


FORMATS: dict[str, Callable[[Sequence[Finding]], str]] = {
    "concise": render_concise,
    "json": render_json,
}
