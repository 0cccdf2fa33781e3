"""The reference pipeline: every file parsed whole, then the class model and the rules.
The prefiltered run (bufferlint.prefiltered) must find exactly what this finds; `--fix`
lints its edited texts this way."""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bufferlint.checking import class_findings, error_finding, suppressed_and_sorted
from bufferlint.engine import Result, Settings
from bufferlint.findings import Finding
from bufferlint.locate import find_module
from bufferlint.pool import LintWorkers
from bufferlint.reading import file_size
from bufferlint.sources import SourceError, SourceFile, read_source

if TYPE_CHECKING:
    from bufferlint.engine import Finish
    from bufferlint.facts import FileFacts
    from bufferlint.model import Project


def facts_for(source: SourceFile) -> FileFacts:
    """Facts for one file; an unreadable file becomes a parse failure, not an exception."""
    from bufferlint.extract import extract
    from bufferlint.facts import FileFacts, ParseFailure

    try:
        text = read_source(source.path)
    except SourceError as exc:
        facts = FileFacts(path=source.path, module=source.module)
        facts.error = ParseFailure(1, 1, str(exc))
        return facts
    return extract(text, source.path, source.module, source.is_package)


def _load(roots: Sequence[str], module: str) -> FileFacts | None:
    """The model's loader: parses a file outside the linted paths that defines a needed
    ancestor."""
    found = find_module(module, roots)
    if found is None:
        return None
    facts = facts_for(SourceFile(found.path, module, found.root, found.is_package))
    return None if facts.error else facts


def lint_whole(sources: Sequence[SourceFile], settings: Settings, finish: Finish | None) -> Result:
    """Findings for `sources`, each parsed whole (in a pool when they are worth it)."""
    with LintWorkers(settings.jobs) as workers:
        facts = workers.map(facts_for, sources, [file_size(s.path) for s in sources])
    result, project = lint_facts_with_model(sources, facts, settings)
    if finish is not None:
        finish(result, project, {}, None)
    return result


def lint_facts(
    sources: Sequence[SourceFile],
    facts: Sequence[FileFacts],
    settings: Settings,
    texts: Mapping[str, str] | None = None,
) -> Result:
    """Findings for `sources`, given their facts, suppressions applied; `texts` holds
    sources not read from disk (stdin, or edits not yet written), by path."""
    return lint_facts_with_model(sources, facts, settings, texts)[0]


def lint_facts_with_model(
    sources: Sequence[SourceFile],
    facts: Sequence[FileFacts],
    settings: Settings,
    texts: Mapping[str, str] | None = None,
) -> tuple[Result, Project]:
    """`lint_facts`, and the class model it built."""
    from bufferlint.model import Project

    result = Result(files=len(sources))
    by_path = {source.path: source for source in sources}
    roots = list(dict.fromkeys(s.import_root for s in sources))
    project = Project((f for f in facts if f.error is None), functools.partial(_load, roots))
    for file_facts in facts:
        if file_facts.error is not None:
            result.findings.append(error_finding(by_path[file_facts.path], file_facts))
    candidates = ((by_path[f.path], f, f.classes) for f in facts if f.error is None)
    result.findings.extend(findings_for_classes(project, candidates, settings))
    return suppress(result, sources, settings, texts), project


def findings_for_classes(
    project: Project, candidates: Iterable[Any], settings: Settings
) -> list[Finding]:
    """The rules' findings for the candidate (source, facts, classes), unsuppressed."""
    from bufferlint.choice import per_file

    configured = per_file(settings.per_file_conventions, settings.project_root)
    return class_findings(project, candidates, settings.select, settings.convention, configured)


def suppress(
    result: Result,
    sources: Sequence[SourceFile],
    settings: Settings,
    texts: Mapping[str, str] | None = None,
    plain: Collection[str] = (),
) -> Result:
    """`result` with its findings suppressed as the sources' directives and the settings
    say, and sorted; `plain` files hold no directive."""
    result.findings = suppressed_and_sorted(
        result.findings,
        sources,
        settings.select,
        settings.per_file_ignores,
        settings.project_root,
        texts,
        plain,
    )
    return result
