"""Suppressions: `per-file-ignores`, inline directives, and BL100 for directives that
suppress nothing.

Directives, read from comment tokens only (never from strings):

- `# noqa`, `# noqa: BL001, BL002` (flake8 and ruff syntax; a bare `# noqa` also hides
  bufferlint findings);
- `# bufferlint: ignore`, `# bufferlint: ignore[BL001, BL002]` (bufferlint's own);
- `# bufferlint: noqa` or `# bufferlint: noqa: BL001` alone on a line, anywhere in the
  file: the whole file (as `# ruff: noqa`). At the end of a code line it acts on that line.

A line directive acts on findings reported on its line: the class line, where the finding
is located. It is not honoured at a buffer's build line, which may sit in a parent class in
another file and would then silence every subclass from a distance.

BL100 reports, per directive, the bufferlint codes that suppressed nothing and the BL codes
that do not exist. Codes of other tools (`# noqa: E501`) and bare `# noqa` are not ours and
are never reported; nor are codes of rules that did not run (`--select BL002` says nothing
about a `# noqa: BL001`), nor file-level directives (as in ruff).
"""

from __future__ import annotations

import fnmatch
import io
import os
import re
import tokenize
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bufferlint.findings import Finding
from bufferlint.rules import RULES, DirectiveRule, directive_rule
from bufferlint.sources import SourceError, SourceFile, read_source

OURS = re.compile(r"BL\d+")
_CODES = r"[A-Za-z]+[0-9]+(?:[\s,]+[A-Za-z]+[0-9]+)*"
NOQA = re.compile(rf"#\s*noqa(?:\s*:\s*(?P<codes>{_CODES}))?", re.IGNORECASE)
IGNORE = re.compile(r"#\s*bufferlint\s*:\s*ignore(?:\[(?P<codes>[^\]]*)\])?", re.IGNORECASE)
FILE = re.compile(rf"#\s*bufferlint\s*:\s*noqa(?:\s*:\s*(?P<codes>{_CODES}))?", re.IGNORECASE)


@dataclass
class Directive:
    kind: str  # "noqa" | "ignore" | "file"
    line: int
    column: int  # 1-based, at the directive's `#`
    end_column: int  # exclusive
    codes: tuple[str, ...] | None  # None: blanket
    used: set[str] = field(default_factory=set)

    def covers(self, code: str) -> bool:
        return self.codes is None or code in self.codes


@dataclass
class Directives:
    lines: dict[int, list[Directive]] = field(default_factory=dict)
    file: list[Directive] = field(default_factory=list)


def _codes(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    codes = tuple(code.upper() for code in re.split(r"[\s,]+", text.strip()) if code)
    return codes or None


def parse(text: str) -> Directives:
    """Every directive in one file. A file that does not tokenize has none: it is reported
    as unparsable, and that report cannot be suppressed."""
    found = Directives()
    if not may_hold_ours(text):
        return found
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return found
    code_lines: set[int] = set()
    for token in tokens:
        if token.type == tokenize.COMMENT:
            own_line = token.start[0] not in code_lines
            for directive in _directives(token.string, token.start, own_line):
                target = found.file if directive.kind == "file" else found.lines
                if isinstance(target, list):
                    target.append(directive)
                else:
                    target.setdefault(directive.line, []).append(directive)
        elif token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            code_lines.update(range(token.start[0], token.end[0] + 1))
    return found


def may_hold_ours(text: str) -> bool:
    """Whether the text may hold a directive that can act on or be reported by bufferlint,
    strings included: tokenizing costs more than the rest of the lint of a file, and most
    `# noqa` comments name other tools' codes only (`# noqa: E501`), which never do."""
    lowered = text.lower()
    if "bufferlint" in lowered:
        return True
    if "noqa" not in lowered:
        return False
    for match in NOQA.finditer(text):
        codes = match.group("codes")
        if codes is None or OURS.search(codes.upper()):
            return True
    return False


def _directives(comment: str, start: tuple[int, int], own_line: bool) -> Iterable[Directive]:
    line, column = start
    for match in re.finditer(r"#", comment):
        at = match.start()
        for kind, pattern in (("file", FILE), ("ignore", IGNORE), ("noqa", NOQA)):
            hit = pattern.match(comment, at)
            if hit is None:
                continue
            if kind == "file" and not own_line:
                kind = "noqa"  # `code  # bufferlint: noqa` reads as a line directive
            yield Directive(
                kind,
                line,
                column + at + 1,
                column + hit.end() + 1,
                _codes(hit.group("codes")),
            )
            break


def _per_file_codes(
    path: str, root: str, per_file_ignores: Sequence[tuple[str, frozenset[str]]]
) -> frozenset[str]:
    """Codes ignored for `path`: a glob matches its name or its path anchored at `root`."""
    name = os.path.basename(path)
    codes: set[str] = set()
    for pattern, ignored in per_file_ignores:
        anchored = os.path.normpath(os.path.join(root, pattern))
        if fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(path, anchored):
            codes |= ignored
    return frozenset(codes)


def apply(
    findings: Sequence[Finding],
    sources: Sequence[SourceFile],
    select: frozenset[str],
    per_file_ignores: Sequence[tuple[str, frozenset[str]]],
    root: str,
    texts: Mapping[str, str],
    plain: Collection[str] = (),
) -> list[Finding]:
    """The findings that survive suppression, plus BL100 findings when BL100 is selected.
    `plain`: paths known to hold no directive of ours (`may_hold_ours`), not read."""
    by_path: dict[str, list[Finding]] = {}
    for finding in findings:
        by_path.setdefault(finding.path, []).append(finding)
    rule = directive_rule()
    report_unused = rule is not None and rule.code in select
    kept: list[Finding] = []
    for source in sources:
        here = by_path.pop(source.path, [])
        unparsable = any(f.code is None for f in here)
        if not here and not report_unused:
            continue
        ignored = _per_file_codes(source.path, root, per_file_ignores)
        wanted = (here or report_unused) and source.path not in plain
        directives = _directives_of(source.path, texts) if wanted else None
        for finding in here:
            if finding.code is None:
                kept.append(finding)
            elif finding.code not in ignored and not _suppress(finding, directives):
                kept.append(finding)
        if rule is not None and report_unused and not unparsable and rule.code not in ignored:
            for unused in _unused(rule, source, directives, select) if directives else ():
                if not _suppress(unused, directives):
                    kept.append(unused)
    kept.extend(f for rest in by_path.values() for f in rest)  # never drop one outside `sources`
    return kept


def _directives_of(path: str, texts: Mapping[str, str]) -> Directives | None:
    if path in texts:
        return parse(texts[path])
    try:
        return parse(read_source(path))
    except SourceError:
        return None


def _suppress(finding: Finding, directives: Directives | None) -> bool:
    """Whether a directive hides `finding`; marks the directive's code as used."""
    if directives is None or finding.code is None:
        return False
    for directive in (*directives.file, *directives.lines.get(finding.line, ())):
        if (
            _reports_directives(finding.code)
            and directive.kind != "file"
            and directive.codes is None
        ):
            continue  # a blanket directive cannot hide the report that it is unused
        if directive.covers(finding.code):
            directive.used.add(finding.code)
            return True
    return False


def _reports_directives(code: str) -> bool:
    rule = directive_rule()
    return rule is not None and code == rule.code


def _unused(
    rule: DirectiveRule, source: SourceFile, directives: Directives, select: frozenset[str]
) -> list[Finding]:
    out = []
    for line in sorted(directives.lines):
        for directive in directives.lines[line]:
            if directive.codes is None:
                if directive.kind == "ignore" and not directive.used:
                    out.append(_finding(rule, source, directive, rule.unused_blanket()))
                continue
            ours = [c for c in dict.fromkeys(directive.codes) if OURS.fullmatch(c)]
            # The rule's own code in a directive shields that directive from this report,
            # so it is used whenever there is something to report.
            unused = [c for c in ours if c in select and c not in directive.used and c != rule.code]
            unknown = [c for c in ours if c not in RULES]
            text = rule.unused(directive.kind, unused, unknown)
            if text is not None:
                out.append(_finding(rule, source, directive, text))
    return out


def _finding(
    rule: DirectiveRule, source: SourceFile, directive: Directive, message: str
) -> Finding:
    return Finding.at_line(
        source, rule.code, message, directive.line, directive.column, directive.end_column
    )
