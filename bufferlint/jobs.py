"""Parse jobs: what the prefiltered run asks a worker (or itself) to read and parse, and
what comes back."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from bufferlint import conventions, prefilter
from bufferlint.cache import Cache
from bufferlint.reading import Scan, read, reread

if TYPE_CHECKING:
    from bufferlint.partial import Parsed

Key = tuple[str, str, bool]  # (path, module, is_package): what facts depend on


@dataclass(frozen=True)
class Job:
    """Read `path` unless `scan` is known; with a `key`, parse the statements asked for."""

    path: str
    key: Key | None = None
    scan: Scan | None = None
    offsets: tuple[int, ...] = ()  # the statements of these headers may report,
    tokens: bool = False  # and so may those with a builder's tokens;
    extra: tuple[int, ...] = ()  # these are parsed ahead for the class model;
    whole: bool = False  # or all of it (a duplicated module name)
    cache: Cache | None = None
    check: bool = False  # whether the file parses (a linted file's first read)
    left: tuple[int, ...] = ()  # statements with tokens whose classes cannot be modules


@dataclass
class Outcome:
    path: str
    scan: Scan | None  # None: the job's, unchanged (the main process holds it)
    key: Key | None = None
    parsed: Parsed | None = None
    statements: tuple[int, ...] = ()  # those that may report
    fresh: bool = False  # parsed now: worth storing


def asked(
    index: prefilter.FileIndex, offsets: Iterable[int], tokens: bool, left: Collection[int] = ()
) -> set[int]:
    """The statements of these headers, and those with a builder's tokens but the `left`
    ones (needs split)."""
    statements = {index.statement_of(offset) for offset in offsets}
    if tokens:
        statements.update(
            n for n, flag in enumerate(index.flags) if flag & prefilter.TOKEN and n not in left
        )
    return statements


def wanted(job: Job, index: prefilter.FileIndex) -> tuple[set[int], set[int]]:
    """The statements that may report, and those with the ones parsed ahead: in a file
    with builders, also the classes that may judge them (bufferlint.conventions), unless
    the file is a template, whose models judge nothing."""
    statements = asked(index, job.offsets, job.tokens, job.left)
    ahead = asked(index, job.extra, False)
    if job.tokens and not conventions.dispatching_template(job.path):
        ahead.update(
            n
            for n, flag in enumerate(index.flags)
            if flag & prefilter.DISPATCH and flag & prefilter.CLASS
        )
    return statements, statements | ahead


def holds(parsed: Parsed | None, statements: set[int], whole: bool) -> bool:
    """Whether `parsed` already holds what a job asks for."""
    if parsed is None or not parsed.has(statements):
        return False
    return not whole or parsed.whole is not None or parsed.error is not None


def work(job: Job) -> Outcome:
    """Runs in a worker process (or in-process, for little work). The job's scan goes back
    only if it changed here: the main process competes with the workers for the CPUs."""
    unsplit = job.scan is not None and job.scan.index is not None and job.scan.index.starts is None
    outcome = _outcome(job)
    if job.scan is not None and outcome.scan is job.scan and not unsplit:
        return replace(outcome, scan=None)
    return outcome


def _outcome(job: Job) -> Outcome:
    from bufferlint import partial

    scan, text = job.scan, None
    if scan is None:
        scan, text = read(job.path, job.check)
    index = scan.index
    if job.key is None or index is None:
        return Outcome(job.path, scan)
    if index.starts is None:
        if text is None:
            text = reread(job.path, scan)
            if text is None:  # changed since it was scanned
                return _outcome(replace(job, scan=read(job.path)[0]))
        index.split(text)
    statements, parse = wanted(job, index)
    whole = job.whole or index.odd
    _, module, is_package = job.key
    parsed = job.cache.load_facts(scan.digest, module, is_package) if job.cache else None
    parsed = parsed if isinstance(parsed, partial.Parsed) else None
    if holds(parsed, parse, whole):
        return Outcome(job.path, scan, job.key, parsed, tuple(sorted(statements)))
    if text is None:
        text = reread(job.path, scan)
        if text is None:
            return _outcome(replace(job, scan=read(job.path)[0]))
    parsed = partial.parse(
        text,
        job.path,
        module,
        is_package,
        index,
        None if whole else parse,
        parsed,
        scan.verified,
    )
    return Outcome(job.path, scan, job.key, parsed, tuple(sorted(statements)), fresh=True)
