"""One pass from paths to findings: files -> facts -> class model -> rules."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bufferlint import analysis, suppressions
from bufferlint.exclusion import PathFilter
from bufferlint.facts import FileFacts, ParseFailure, extract
from bufferlint.findings import BufferSite, Finding
from bufferlint.model import Project
from bufferlint.rules import BL001, BL002, RULES, message
from bufferlint.sources import (
    DEFAULT_EXCLUDES,
    SourceError,
    SourceFile,
    discover,
    module_of,
    read_source,
)


@dataclass(frozen=True)
class Settings:
    hooks: tuple[str, ...] = ("reset_parameters",)
    select: frozenset[str] = frozenset(RULES)
    # Which files (bufferlint.exclusion): globs on a path's name or anchored at project_root.
    exclude: tuple[str, ...] = DEFAULT_EXCLUDES
    extend_exclude: tuple[str, ...] = ()
    respect_gitignore: bool = True
    force_exclude: bool = False  # apply the excludes to files named explicitly too
    # Which findings (bufferlint.suppressions): (glob, codes) pairs, besides inline noqa.
    per_file_ignores: tuple[tuple[str, frozenset[str]], ...] = ()
    project_root: str = ""  # anchors relative globs; "" is the current directory

    def path_filter(self) -> PathFilter:
        return PathFilter(
            self.exclude + self.extend_exclude,
            self.project_root or os.getcwd(),
            self.respect_gitignore,
        )


@dataclass
class Result:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0


def facts_for(source: SourceFile) -> FileFacts:
    """Facts for one file; an unreadable file becomes a parse failure, not an exception."""
    try:
        text = read_source(source.path)
    except SourceError as exc:
        facts = FileFacts(path=source.path, module=source.module)
        facts.error = ParseFailure(1, 1, str(exc))
        return facts
    return extract(text, source.path, source.module, source.is_package)


class _Loader:
    """Parses, on demand, files outside the linted paths that define needed ancestors."""

    def __init__(self, roots: Sequence[str]) -> None:
        self.roots = list(dict.fromkeys(roots))

    def __call__(self, module: str) -> FileFacts | None:
        relative = module.replace(".", os.sep)
        for root in self.roots:
            for candidate in (f"{relative}.py", os.path.join(relative, "__init__.py")):
                path = Path(root, candidate)
                if path.is_file():
                    facts = facts_for(
                        SourceFile(str(path), module, root, candidate.endswith("__init__.py"))
                    )
                    return None if facts.error else facts
        return None


def lint(paths: Sequence[str], settings: Settings) -> Result:
    """Raises SourceError for a path that does not exist."""
    path_filter = settings.path_filter()
    sources = discover(
        paths, path_filter.skip, path_filter.skip_named if settings.force_exclude else None
    )
    facts = [facts_for(source) for source in sources]
    return analyse(sources, facts, settings)


def lint_source(path: str, text: str, settings: Settings) -> Result:
    """One file's text from an editor (stdin), analysed as if it were saved at `path`: its
    parents still come from the project around it."""
    module, import_root, is_package = module_of(Path(path).absolute())
    source = SourceFile(str(Path(path).absolute()), module, import_root, is_package)
    facts = extract(text, source.path, module, is_package)
    return analyse([source], [facts], settings, texts={source.path: text})


def analyse(
    sources: Sequence[SourceFile],
    facts: Sequence[FileFacts],
    settings: Settings,
    texts: Mapping[str, str] | None = None,
) -> Result:
    """Findings for `sources`, suppressions applied; `texts` holds sources not read from
    disk (stdin), by path."""
    result = Result(files=len(sources))
    by_path = {source.path: source for source in sources}
    project = Project(
        (f for f in facts if f.error is None), _Loader(s.import_root for s in sources)
    )
    for file_facts in facts:
        if file_facts.error is not None:
            result.findings.append(_error_finding(by_path[file_facts.path], file_facts))
    reports: dict[str, analysis.ClassReport] = {}

    def report_for(qualified: str) -> analysis.ClassReport:
        if qualified not in reports:
            reports[qualified] = analysis.analyse(project, qualified, settings.hooks)
        return reports[qualified]

    for file_facts in facts:
        if file_facts.error is not None:
            continue
        source = by_path[file_facts.path]
        for cls in file_facts.classes:
            qualified = f"{file_facts.module}.{cls.name}"
            if project.classes.get(qualified, (None, None))[1] is not file_facts:
                continue  # a duplicate module name: the first file wins
            if not project.is_module(qualified):
                continue
            report = report_for(qualified)
            if not report.built:
                continue
            parents = {
                base: report_for(base)
                for base in project.bases(qualified)
                if base in project.classes and project.is_module(base)
            }
            missing = analysis.attributable(report, parents)
            if not missing:
                continue
            rule = BL002 if report.has_hook is False else BL001
            if rule.code not in settings.select:
                continue
            result.findings.append(
                Finding(
                    code=rule.code,
                    message=message(rule, report, missing, settings.hooks, source.path),
                    path=source.path,
                    line=cls.line,
                    column=cls.column,
                    end_line=cls.line,
                    end_column=cls.column + len(cls.name.rsplit(".", 1)[-1]),
                    class_name=cls.name,
                    module=source.module,
                    import_root=source.import_root,
                    buffers=tuple(
                        BufferSite(b.name, b.line, b.persistent, b.owner, b.path) for b in missing
                    ),
                    hooks=settings.hooks,
                )
            )
    result.findings = suppressions.apply(
        result.findings,
        sources,
        settings.select,
        settings.per_file_ignores,
        settings.project_root or os.getcwd(),
        texts or {},
    )
    result.findings.sort(key=Finding.sort_key)
    return result


def _error_finding(source: SourceFile, facts: FileFacts) -> Finding:
    error = facts.error
    assert error is not None
    return Finding(
        code=None,
        message=error.message,
        path=source.path,
        line=error.line,
        column=error.column,
        end_line=error.line,
        end_column=error.column,
        class_name="",
        module=source.module,
        import_root=source.import_root,
    )
