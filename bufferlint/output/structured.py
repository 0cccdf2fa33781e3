"""JSON and JSON lines: ruff's item fields, plus what bufferlint knows about the class."""

from __future__ import annotations

import json
from typing import Any

from bufferlint.findings import Finding
from bufferlint.output.report import Report
from bufferlint.rules import RULES


def to_json_item(finding: Finding) -> dict[str, Any]:
    rule = RULES.get(finding.code or "")
    item: dict[str, Any] = {
        "code": finding.code,
        "name": rule.name if rule else None,
        "message": finding.message,
        "filename": finding.path,
        "location": {"row": finding.line, "column": finding.column},
        "end_location": {"row": finding.end_line, "column": finding.end_column},
        "noqa_row": finding.line if finding.code else None,
        "fix": finding.fix,
        "url": rule.url if rule else None,
        "class_name": finding.class_name or None,
        "buffers": finding.buffer_names,
        "convention": finding.convention or None,
    }
    if finding.runtime is not None:
        item["runtime"] = finding.runtime
    return item


def render_json(report: Report) -> str:
    return json.dumps([to_json_item(f) for f in report.findings], indent=2) + "\n"


def render_json_lines(report: Report) -> str:
    return "".join(json.dumps(to_json_item(f)) + "\n" for f in report.findings)
