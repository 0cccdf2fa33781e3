"""Runs the rules over the class model: each module class that builds buffers is analysed
under its convention (the run's, or `auto`'s choice for it), and each selected class rule
judges it."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from bufferlint import suppressions
from bufferlint.findings import BufferSite, Finding
from bufferlint.sources import SourceFile

if TYPE_CHECKING:
    from bufferlint.analysis import ClassReport
    from bufferlint.choice import PerFile
    from bufferlint.conventions import Convention
    from bufferlint.facts import ClassFacts, FileFacts
    from bufferlint.model import Project
    from bufferlint.rules import Flag

# The classes to judge: per file, its source, its facts and the classes that may report.
Candidates = Iterable[tuple[SourceFile, "FileFacts", Iterable["ClassFacts"]]]


def class_findings(
    project: Project,
    candidates: Candidates,
    select: frozenset[str],
    convention: Convention,
    per_file: PerFile | None = None,
) -> list[Finding]:
    """The class rules' findings, on a large stack: the class model recurses along
    inheritance and call chains, which may be thousands deep. `per_file`: the convention
    configured for a file's classes, if any."""
    from bufferlint import parsing

    return parsing.run_deep(_judge_classes, project, candidates, select, convention, per_file)


def _judge_classes(
    project: Project,
    candidates: Candidates,
    select: frozenset[str],
    convention: Convention,
    per_file: PerFile | None = None,
) -> list[Finding]:
    from bufferlint import analysis, beyond
    from bufferlint.choice import Choice
    from bufferlint.rules import JudgedClass, class_rules

    rules = class_rules(select)
    found = []
    reports: dict[tuple[str, str], ClassReport] = {}
    choose = Choice(project, convention, per_file)

    def report_for(qualified: str, chosen: Convention) -> ClassReport:
        key = (qualified, chosen.name)
        if key not in reports:
            reports[key] = analysis.account(project, qualified, chosen)
        return reports[key]

    for source, file_facts, classes in candidates:
        for cls in classes:
            qualified = f"{file_facts.module}.{cls.name}"
            if project.classes.get(qualified, (None, None))[1] is not file_facts:
                continue  # a duplicate module name: the first file wins
            if not project.is_module(qualified):
                continue
            chosen = choose(qualified)
            if chosen.is_template(source.path):
                continue
            report = report_for(qualified, chosen)
            if not report.built and not beyond.opens(project, qualified):
                continue
            parents = {
                base: report_for(base, chosen)
                for base in project.bases(qualified)
                if base in project.classes and project.is_module(base)
            }
            judged = JudgedClass(
                report, analysis.attributable(report, parents), chosen, source.path, project
            )
            for rule in rules:
                flag = rule.check(judged)
                if flag is not None:
                    found.append(_finding(rule.code, flag, source, cls, chosen))
    return found


def _finding(
    code: str, flag: Flag, source: SourceFile, cls: ClassFacts, convention: Convention
) -> Finding:
    return Finding(
        code=code,
        message=flag.message,
        path=source.path,
        line=cls.line,
        column=cls.column,
        end_line=cls.line,
        end_column=cls.column + len(cls.name.rsplit(".", 1)[-1]),
        class_name=cls.name,
        module=source.module,
        import_root=source.import_root,
        buffers=tuple(
            BufferSite(b.name, b.line, b.persistent, b.owner, b.path) for b in flag.buffers
        ),
        hooks=convention.hooks,
        convention=convention.name,
    )


def error_finding(source: SourceFile, facts: FileFacts) -> Finding:
    """A file that could not be read or parsed, reported as ruff does (no code)."""
    error = facts.error
    assert error is not None
    return Finding.at_line(source, None, error.message, error.line, error.column, error.column)


def suppressed_and_sorted(
    findings: list[Finding],
    sources: Sequence[SourceFile],
    select: frozenset[str],
    per_file_ignores: Sequence[tuple[str, frozenset[str]]],
    project_root: str,
    texts: Mapping[str, str] | None = None,
    plain: Collection[str] = (),
) -> list[Finding]:
    """Suppressions applied, findings sorted. `plain`: paths whose text, as read for the
    findings, cannot hold a directive of ours (not read again)."""
    kept = suppressions.apply(
        findings, sources, select, per_file_ignores, project_root or os.getcwd(), texts or {}, plain
    )
    kept.sort(key=Finding.sort_key)
    return kept
