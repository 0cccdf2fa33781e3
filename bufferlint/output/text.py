"""Formats for people: full (code frames), concise, grouped, pylint; the summary line and
`--statistics`."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from bufferlint.findings import Finding
from bufferlint.output.report import PARSE_ERROR, Report, described, rule_name

TAB = 4


def _head(f: Finding, verdict: bool = True) -> str:
    """Code, fix marker and message; the runtime verdict too unless `verdict` is False."""
    text = described(f) if verdict else f.message
    if f.code is None:
        return text
    return f"{f.code} {'[*] ' if f.fixable else ''}{text}"


def render_concise(report: Report) -> str:
    return "".join(
        f"{report.shown(f.path)}:{f.line}:{f.column}: {_head(f)}\n" for f in report.findings
    )


def render_grouped(report: Report) -> str:
    out: list[str] = []
    for f in report.findings:
        header = f"{report.shown(f.path)}:"
        if header not in out:
            if out:
                out.append("")
            out.append(header)
        out.append(f"  {f.line}:{f.column} {_head(f)}")
    return "".join(line + "\n" for line in out) + ("\n" if out else "")


def render_pylint(report: Report) -> str:
    return "".join(
        f"{report.shown(f.path)}:{f.line}: [{f.code or PARSE_ERROR}] {described(f)}\n"
        for f in report.findings
    )


# -- full: ruff's layout, with each buffer's build line shown under the class ----------


def render_full(report: Report) -> str:
    blocks = []
    for f in report.findings:
        lines = [_head(f, verdict=False), f" --> {report.shown(f.path)}:{f.line}:{f.column}"]
        lines.extend(_frame(report, f))
        if f.runtime is not None:
            lines.append(f"runtime: {f.runtime['verdict']}: {f.runtime['summary']}")
        if f.fix and f.fix.get("message"):
            lines.append(f"help: {f.fix['message']}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _frame(report: Report, f: Finding) -> list[str]:
    """The class line under `^`, then each build line in this file under `-`; build lines
    in other files (parent classes) each get a `:::` location."""
    here: list[tuple[int, int, int, str, str]] = [
        (f.line, f.column, max(f.end_column, f.column + 1), "^", "")
    ]
    elsewhere: list[tuple[str, int, str]] = []
    for site in f.buffers:
        label = f"`{site.name}` built here"
        if not site.path or site.path == f.path:
            here.append((site.line, 0, 0, "-", label))
        else:
            elsewhere.append((site.path, site.line, label))
    out = _snippet(report, f.path, here)
    for path, line, label in elsewhere:
        out.append(f"  ::: {report.shown(path)}:{line}")
        out.extend(_snippet(report, path, [(line, 0, 0, "-", label)]))
    return out


def _snippet(
    report: Report, path: str, marks: Sequence[tuple[int, int, int, str, str]]
) -> list[str]:
    """Numbered source lines with underlines; column 0 underlines the whole statement."""
    source = report.lines(path)
    marks = [m for m in marks if 1 <= m[0] <= len(source)]
    if not marks:
        return []
    width = len(str(max(m[0] for m in marks)))
    gutter = " " * width
    out = [f"{gutter} |"]
    previous = None
    for line, start, end, char, label in sorted(marks, key=lambda m: (m[0], m[3] != "^")):
        text = source[line - 1]
        if previous is not None and line > previous + 1:
            out.append(f"{gutter} :")
        if line != previous:
            out.append(f"{line:>{width}} | {text.expandtabs(TAB)}".rstrip())
        if start == 0:
            start = len(text) - len(text.lstrip()) + 1
            end = len(text.rstrip()) + 1
        offset = len(text[: start - 1].expandtabs(TAB))
        length = max(1, len(text[start - 1 : end - 1].expandtabs(TAB)))
        out.append(f"{gutter} | {' ' * offset}{char * length} {label}".rstrip())
        previous = line
    out.append(f"{gutter} |")
    return out


# -- summary and statistics --------------------------------------------------------------


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def summary(findings: Sequence[Finding], files: int, fixed: int = 0) -> str:
    """The closing line of the text formats; after `--fix`, `fixed` counts what it fixed."""
    if fixed:
        errors = sum(1 for f in findings if f.code is not None)
        verdicts = _verdicts(findings)
        remaining = f"{fixed} fixed, {errors} remaining" + (f"; {verdicts}" if verdicts else "")
        text = f"Found {_plural(fixed + errors, 'error')} ({remaining})."
        return text + _fixes_line(findings) + "\n"
    if not findings:
        return f"All checks passed! ({_plural(files, 'file')} checked)\n"
    errors = sum(1 for f in findings if f.code is None)
    verdicts = _verdicts(findings)
    text = f"Found {_plural(len(findings) - errors, 'error')} in {_plural(files, 'file')}"
    text += (f" ({verdicts})" if verdicts else "") + "."
    if errors:
        text += f" {_plural(errors, 'file')} could not be parsed."
    return text + _fixes_line(findings) + "\n"


VERDICTS = ("confirmed", "refuted", "unconfirmed", "error")


def _verdicts(findings: Sequence[Finding]) -> str:
    """`runtime: 3 confirmed, 1 refuted` when --runtime judged any finding, else ""."""
    counts = Counter(f.verdict for f in findings if f.verdict is not None)
    if not counts:
        return ""
    return "runtime: " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v])


def _fixes_line(findings: Sequence[Finding]) -> str:
    """ruff's line on what `--fix` (and `--unsafe-fixes`) would fix."""
    fixable = sum(1 for f in findings if f.fixable)
    hidden = sum(1 for f in findings if f.fix is not None and not f.fixable)
    more = (
        f"{hidden} hidden fix{'es' if hidden != 1 else ''} can be enabled with the "
        "`--unsafe-fixes` option"
        if hidden
        else ""
    )
    if fixable:
        return f"\n[*] {fixable} fixable with the `--fix` option" + (f" ({more})." if more else ".")
    return f"\nNo fixes available ({more})." if more else ""


def statistics(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """One row per code, most frequent first (ties by code), as `ruff --statistics`."""
    counts = Counter(f.code or "" for f in findings)
    fixable = {f.code or "" for f in findings if f.fixable}
    names = {f.code or "": rule_name(f) for f in findings}
    return [
        {"code": code or None, "name": names[code], "count": count, "fixable": code in fixable}
        for code, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def render_statistics(findings: Sequence[Finding], as_json: bool) -> str:
    rows = statistics(findings)
    if as_json:
        return json.dumps(rows, indent=2) + "\n"
    width = max((len(str(row["count"])) for row in rows), default=1)
    return "".join(
        f"{row['count']:>{width}}\t{row['code'] or '':<5}\t"
        f"{'[*]' if row['fixable'] else '[ ]'} {row['name']}\n"
        for row in rows
    )
