"""Formats that CI systems read: GitHub annotations, GitLab code quality, JUnit XML, Azure
Pipelines logging commands. Paths are relative to the repository root, as they expect."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from collections import Counter

from bufferlint.findings import Finding
from bufferlint.output.report import PARSE_ERROR, Report, described, level


def _repo_path(report: Report, finding: Finding) -> str:
    return report.repo_path(finding.path) or finding.path


# -- GitHub Actions: workflow commands, one line each ----------------------------------


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(report: Report) -> str:
    """`::error title=...,file=...,line=...,col=...,endLine=...,endColumn=...::message`."""
    out = []
    for f in report.findings:
        title = f"bufferlint ({f.code or PARSE_ERROR})"
        properties = ",".join(
            f"{key}={_escape_property(str(value))}"
            for key, value in (
                ("title", title),
                ("file", _repo_path(report, f)),
                ("line", f.line),
                ("col", f.column),
                ("endLine", f.end_line),
                ("endColumn", f.end_column),
            )
        )
        text = f"{report.shown(f.path)}:{f.line}:{f.column}: {f.code or ''} {described(f)}"
        out.append(f"::{level(f)} {properties}::{_escape_data(text.replace('  ', ' '))}\n")
    return "".join(out)


# -- Azure Pipelines -----------------------------------------------------------------


def render_azure(report: Report) -> str:
    def escape(text: str) -> str:
        return _escape_data(text).replace(";", "%3B").replace("]", "%5D")

    return "".join(
        f"##vso[task.logissue type={level(f)};sourcepath={escape(f.path)};"
        f"linenumber={f.line};columnnumber={f.column};code={f.code or PARSE_ERROR};]"
        f"{_escape_data(described(f))}\n"
        for f in report.findings
    )


# -- GitLab code quality ---------------------------------------------------------------


def _fingerprint_key(report: Report, f: Finding) -> str:
    """What identifies a finding across commits: not its line, which moves with any edit
    above it, but its file, code, class and buffers (BL100: its message)."""
    what = f"{f.class_name}:{','.join(sorted(f.buffer_names))}" if f.class_name else f.message
    return f"{f.code or PARSE_ERROR}\0{_repo_path(report, f)}\0{what}"


def render_gitlab(report: Report) -> str:
    seen: Counter[str] = Counter()
    items = []
    for f in report.findings:
        key = _fingerprint_key(report, f)
        seen[key] += 1  # identical keys (two equal directives) stay distinct by occurrence
        fingerprint = hashlib.sha256(f"{key}\0{seen[key]}".encode()).hexdigest()[:32]
        items.append(
            {
                "check_name": f.code or PARSE_ERROR,
                "description": f"{f.code or PARSE_ERROR}: {described(f)}",
                "severity": "major" if level(f) == "error" else "minor",
                "fingerprint": fingerprint,
                "location": {
                    "path": _repo_path(report, f),
                    "positions": {
                        "begin": {"line": f.line, "column": f.column},
                        "end": {"line": f.end_line, "column": f.end_column},
                    },
                },
            }
        )
    return json.dumps(items, indent=2) + "\n"


# -- JUnit XML: one suite per file, one failing case per finding --------------------


def render_junit(report: Report) -> str:
    root = ET.Element("testsuites", name="bufferlint")
    by_file: dict[str, list[Finding]] = {}
    for f in report.findings:
        by_file.setdefault(f.path, []).append(f)
    if not by_file:
        suite = ET.SubElement(root, "testsuite", name="bufferlint", tests="1", failures="0")
        ET.SubElement(suite, "testcase", name="No errors found", classname="bufferlint")
    for path, findings in by_file.items():
        shown = report.shown(path)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=shown,
            tests=str(len(findings)),
            failures=str(sum(1 for f in findings if f.verdict != "refuted")),
            errors="0",
            skipped="0",
        )
        for f in findings:
            case = ET.SubElement(
                suite,
                "testcase",
                name=f"bufferlint.{f.code or PARSE_ERROR}",
                classname=shown.rsplit(".", 1)[0],
                file=shown,
                line=str(f.line),
                column=str(f.column),
            )
            text = f"line {f.line}, col {f.column}, {described(f)}"
            if f.verdict == "refuted":  # --runtime saw the buffers rebuilt: a passing case
                ET.SubElement(case, "system-out").text = text
                continue
            failure = ET.SubElement(case, "failure", message=described(f))
            failure.text = text
    total = len(report.findings)
    root.set("tests", str(max(total, 1)))
    root.set("failures", str(sum(1 for f in report.findings if f.verdict != "refuted")))
    root.set("errors", "0")
    ET.indent(root, space="    ")
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
