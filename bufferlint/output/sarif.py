"""SARIF 2.1.0, as GitHub code scanning ingests it.

Locations are relative to the repository root under `uriBaseId` `%SRCROOT%`, which
`originalUriBaseIds` maps to an absolute `file://` URI; files outside the root keep an
absolute URI. Rules come in code order, results in the findings' order, so two runs over
the same tree produce the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bufferlint import __version__
from bufferlint.docs import render_page
from bufferlint.findings import Finding
from bufferlint.output.report import PARSE_ERROR, Report, described, level
from bufferlint.rules import RULES, Rule

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/bufferlint/bufferlint"
ROOT = "%SRCROOT%"


def _rule(rule: Rule) -> dict[str, Any]:
    page = render_page(rule)
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.what},
        "help": {"text": page, "markdown": page},
        "helpUri": rule.url,
        "defaultConfiguration": {"level": rule.level},
        "properties": {"tags": ["pytorch", "correctness"], "precision": "high"},
    }


PARSE_ERROR_RULE = {
    "id": PARSE_ERROR,
    "name": PARSE_ERROR,
    "shortDescription": {"text": "File could not be read or parsed"},
    "fullDescription": {
        "text": "bufferlint could not read or parse this file, so it was not checked."
    },
    "defaultConfiguration": {"level": "error"},
}


def _artifact(report: Report, path: str) -> dict[str, Any]:
    relative = report.repo_path(path)
    if relative is None:
        return {"uri": Path(path).as_uri()}
    return {"uri": relative, "uriBaseId": ROOT}


def _location(report: Report, path: str, region: dict[str, int]) -> dict[str, Any]:
    return {"physicalLocation": {"artifactLocation": _artifact(report, path), "region": region}}


def _result(report: Report, f: Finding, index: dict[str, int]) -> dict[str, Any]:
    rule_id = f.code or PARSE_ERROR
    result: dict[str, Any] = {
        "ruleId": rule_id,
        "ruleIndex": index[rule_id],
        "level": level(f),
        "message": {"text": described(f)},
        "locations": [
            _location(
                report,
                f.path,
                {
                    "startLine": f.line,
                    "startColumn": f.column,
                    "endLine": f.end_line,
                    "endColumn": max(f.end_column, f.column),
                },
            )
        ],
    }
    related = [
        {
            "id": number,
            **_location(report, site.path or f.path, {"startLine": site.line}),
            "message": {"text": f"`{site.name}` is built here"},
        }
        for number, site in enumerate(f.buffers, 1)
    ]
    if related:
        result["relatedLocations"] = related
    if f.fix and f.fix.get("edits"):
        result["fixes"] = [_fix(report, f.path, f.fix)]
    properties: dict[str, Any] = {}
    if f.convention:
        properties["convention"] = f.convention
    if f.runtime is not None:
        properties["runtime"] = f.runtime
    if properties:
        result["properties"] = properties
    return result


def _fix(report: Report, path: str, fix: dict[str, Any]) -> dict[str, Any]:
    """The fix's edits (ruff's JSON shape) as SARIF replacements."""
    replacements = [
        {
            "deletedRegion": {
                "startLine": edit["location"]["row"],
                "startColumn": edit["location"]["column"],
                "endLine": edit["end_location"]["row"],
                "endColumn": edit["end_location"]["column"],
            },
            "insertedContent": {"text": edit["content"]},
        }
        for edit in fix["edits"]
    ]
    return {
        "description": {"text": fix.get("message", "")},
        "artifactChanges": [
            {"artifactLocation": _artifact(report, path), "replacements": replacements}
        ],
    }


def sarif_log(report: Report) -> dict[str, Any]:
    rules = [_rule(RULES[code]) for code in sorted(RULES)]
    if any(f.code is None for f in report.findings):
        rules.append(PARSE_ERROR_RULE)
    index = {rule["id"]: number for number, rule in enumerate(rules)}
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "bufferlint",
                        "version": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {
                    ROOT: {"uri": Path(report.repo_root).as_uri().rstrip("/") + "/"}
                },
                "columnKind": "unicodeCodePoints",
                "results": [_result(report, f, index) for f in report.findings],
            }
        ],
    }


def render_sarif(report: Report) -> str:
    return json.dumps(sarif_log(report), indent=2) + "\n"
