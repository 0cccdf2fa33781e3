"""One pass from paths to findings: files -> facts -> class model -> rules.

A large tree is linted near LibCST's parse floor by parsing less, in parallel and once
(bufferlint.prefiltered). With `Settings(prefilter=False)` every file is parsed whole
(bufferlint.whole): the tests hold the two to the same findings.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bufferlint.conventions import DEFAULT, Convention
from bufferlint.exclusion import PathFilter
from bufferlint.findings import Finding
from bufferlint.rules import RULES
from bufferlint.sources import DEFAULT_EXCLUDES, SourceFile, discover, module_of

# The class model is imported when needed, and LibCST (bufferlint.extract) only once
# something is parsed: a run that the cache answers, or a plain lint that finds
# nothing to parse, does without.
if TYPE_CHECKING:
    from bufferlint.model import Project
    from bufferlint.pool import LintWorkers
    from bufferlint.prefilter import FileIndex

# Completes a result, given the class model it came from, the prefilter's split of every
# text it read, by digest, and the workers that parsed them, still running (the CLI
# attaches fixes, planned where the trees are: bufferlint.trees).
Finish = Callable[["Result", "Project", "Mapping[str, FileIndex]", "LintWorkers | None"], object]


@dataclass(frozen=True)
class Settings:
    convention: Convention = DEFAULT  # how the stack rebuilds tensors (bufferlint.conventions)
    select: frozenset[str] = frozenset(RULES)
    # Which files (bufferlint.exclusion): globs on a path's name or anchored at project_root.
    exclude: tuple[str, ...] = DEFAULT_EXCLUDES
    extend_exclude: tuple[str, ...] = ()
    respect_gitignore: bool = True
    force_exclude: bool = False  # apply the excludes to files named explicitly too
    # Which findings (bufferlint.suppressions): (glob, codes) pairs, besides inline noqa.
    per_file_ignores: tuple[tuple[str, frozenset[str]], ...] = ()
    project_root: str = ""  # anchors relative globs; "" is the current directory
    # Which convention judges the classes of which files (glob, convention), before `auto`
    # or the run's convention (bufferlint.choice).
    per_file_conventions: tuple[tuple[str, Convention], ...] = ()
    # How, not what: findings are the same whatever these are.
    jobs: int = 0  # processes that parse; 0: one per CPU; few files are parsed in-process
    cache: bool = False  # use .bufferlint_cache (the CLI does unless --no-cache)
    prefilter: bool = True  # parse only what can change a finding; False: every file

    def path_filter(self) -> PathFilter:
        return PathFilter(
            self.exclude + self.extend_exclude,
            self.project_root or os.getcwd(),
            self.respect_gitignore,
        )


@dataclass
class Result:
    """What a run reports: findings, sorted, and how many files it linted."""

    findings: list[Finding] = field(default_factory=list)
    files: int = 0


def lint(
    paths: Sequence[str],
    settings: Settings,
    finish: Finish | None = None,
    finish_key: str = "",
) -> Result:
    """Raises SourceError for a path that does not exist. `finish` completes the result
    before the run cache keeps it (the CLI attaches fixes, which cost more than the lint),
    given the class model the findings came from; `finish_key` names whatever it depends
    on besides the settings and the files."""
    # The pipelines import this module's Settings and Result: imported here, not above.
    from bufferlint import runcache
    from bufferlint.prefiltered import PrefilteredRun
    from bufferlint.whole import lint_whole

    path_filter = settings.path_filter()
    if settings.prefilter and settings.cache:
        answered = runcache.answered(paths, settings, finish_key)
        if answered is not None:
            return answered
    sources = discover(
        paths, path_filter.skip, path_filter.skip_named if settings.force_exclude else None
    )
    if settings.prefilter:
        return PrefilteredRun(paths, sources, settings, finish, finish_key).result()
    return lint_whole(sources, settings, finish)


def lint_source(path: str, text: str, settings: Settings) -> Result:
    """One file's text from an editor (stdin), analysed as if it were saved at `path`: its
    parents still come from the project around it."""
    from bufferlint.extract import extract
    from bufferlint.whole import lint_facts

    module, import_root, is_package = module_of(Path(path).absolute())
    source = SourceFile(str(Path(path).absolute()), module, import_root, is_package)
    facts = extract(text, source.path, module, is_package)
    return lint_facts([source], [facts], settings, texts={source.path: text})
