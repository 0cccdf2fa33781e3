"""One pass from paths to findings: files -> facts -> class model -> rules.

A large tree is linted near LibCST's parse floor by parsing less (bufferlint.prefilter:
only statements that can change a finding, plus whatever the class model asks for),
in parallel (a process pool over files) and once (bufferlint.cache). With
`Settings(prefilter=False)` every file is parsed whole, as `analyse` expects: the tests
hold the two to the same findings.
"""

from __future__ import annotations

import contextlib
import functools
import os
import symtable
import time
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bufferlint import __version__, prefilter, suppressions, trees
from bufferlint.cache import Cache, Stat, blake2b, digest_of, location, shard_of, stat_of
from bufferlint.checking import class_findings, error_finding, suppressed_and_sorted
from bufferlint.conventions import DEFAULT, Convention
from bufferlint.exclusion import PathFilter
from bufferlint.facts import resolve_relative
from bufferlint.findings import Finding
from bufferlint.locate import find_module, module_files
from bufferlint.names import Resolver
from bufferlint.pool import Workers
from bufferlint.rules import RULES
from bufferlint.sources import (
    DEFAULT_EXCLUDES,
    SourceError,
    SourceFile,
    discover,
    module_of,
    read_source,
)

# The class model is imported when needed, and LibCST (bufferlint.extract) only once
# something is parsed, or before the workers fork in a run that plans fixes: a run that
# the cache answers, or a plain lint that finds nothing to parse, does without.
if TYPE_CHECKING:
    from bufferlint.facts import ClassFacts, FileFacts, ParseFailure
    from bufferlint.model import Project
    from bufferlint.partial import Parsed

# Completes a result, given the class model it came from, the prefilter's split of every
# text it read, by digest, and the workers that parsed them, still running (the CLI
# attaches fixes, planned where the trees are: bufferlint.trees).
Finish = Callable[
    ["Result", "Project", "Mapping[str, prefilter.FileIndex]", "LintWorkers | None"], object
]


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


class _Loader:
    """Parses, on demand, files outside the linted paths that define needed ancestors."""

    def __init__(self, roots: Sequence[str]) -> None:
        self.roots = list(dict.fromkeys(roots))

    def __call__(self, module: str) -> FileFacts | None:
        found = find_module(module, self.roots)
        if found is None:
            return None
        facts = facts_for(SourceFile(found.path, module, found.root, found.is_package))
        return None if facts.error else facts


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
    path_filter = settings.path_filter()
    if settings.prefilter and settings.cache:
        answered = _answered(paths, settings, finish_key)
        if answered is not None:
            return answered
    sources = discover(
        paths, path_filter.skip, path_filter.skip_named if settings.force_exclude else None
    )
    if settings.prefilter:
        return _Run(paths, sources, settings, finish, finish_key).result()
    with LintWorkers(settings.jobs) as workers:
        facts = workers.map(facts_for, sources, [_size(s.path) for s in sources])
    result, project = _analysed(sources, facts, settings)
    if finish is not None:
        finish(result, project, {}, None)
    return result


def lint_source(path: str, text: str, settings: Settings) -> Result:
    """One file's text from an editor (stdin), analysed as if it were saved at `path`: its
    parents still come from the project around it."""
    module, import_root, is_package = module_of(Path(path).absolute())
    source = SourceFile(str(Path(path).absolute()), module, import_root, is_package)
    from bufferlint.extract import extract

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
    return _analysed(sources, facts, settings, texts)[0]


def _analysed(
    sources: Sequence[SourceFile],
    facts: Sequence[FileFacts],
    settings: Settings,
    texts: Mapping[str, str] | None = None,
) -> tuple[Result, Project]:
    """`analyse`, and the class model it built."""
    from bufferlint.model import Project

    result = Result(files=len(sources))
    by_path = {source.path: source for source in sources}
    project = Project(
        (f for f in facts if f.error is None), _Loader(s.import_root for s in sources)
    )
    for file_facts in facts:
        if file_facts.error is not None:
            result.findings.append(error_finding(by_path[file_facts.path], file_facts))
    candidates = ((by_path[f.path], f, f.classes) for f in facts if f.error is None)
    result.findings.extend(_class_findings(project, candidates, settings))
    return _finish(result, sources, settings, texts), project


def _class_findings(
    project: Project, candidates: Iterable[Any], settings: Settings
) -> list[Finding]:
    return class_findings(project, candidates, settings.select, settings.convention)


def _finish(
    result: Result,
    sources: Sequence[SourceFile],
    settings: Settings,
    texts: Mapping[str, str] | None = None,
    plain: Collection[str] = (),
) -> Result:
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


# -- the prefiltered run ---------------------------------------------------------------

Key = tuple[str, str, bool]  # (path, module, is_package): what facts depend on
Target = tuple[Key, str]  # a class name in a file: its headers may define an ancestor
_POOL_BYTES = 256 * 1024  # less source than this is read in-process: forking costs more


def worker_count(jobs: int) -> int:
    """Processes for `--jobs` (0: one per usable core)."""
    if jobs > 0:
        return jobs
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _size(path: str) -> int:
    found = stat_of(path)
    return found[1] if found else 0


def _fresh_bytecode(path: str, stat: Stat) -> bool:
    """Whether this Python compiled the file as it is now: the import system's own test (a
    timestamp `.pyc` whose header holds the source's mtime and size), and the `.pyc` written
    after the source's last change (the header keeps whole seconds only)."""
    from importlib.util import MAGIC_NUMBER, cache_from_source

    try:
        with open(cache_from_source(path), "rb") as handle:
            header = handle.read(16)
            if os.fstat(handle.fileno()).st_mtime_ns < stat[0]:
                return False
    except (OSError, ValueError, NotImplementedError):
        return False
    mtime, size = stat[0] // 1_000_000_000, stat[1]
    return (
        len(header) == 16
        and header[:4] == MAGIC_NUMBER
        and int.from_bytes(header[4:8], "little") == 0  # not hash-based
        and int.from_bytes(header[8:12], "little") == mtime & 0xFFFFFFFF
        and int.from_bytes(header[12:16], "little") == size & 0xFFFFFFFF
    )


class LintWorkers:
    """Worker processes, started only once there is enough work for them. With
    `keep_trees`, each keeps what it parses (bufferlint.trees), and `placed` says which
    worker parsed each file, so the fixer can plan there (`call`)."""

    def __init__(self, jobs: int, keep_trees: bool = False) -> None:
        self.jobs = worker_count(jobs)
        self.keep_trees = keep_trees
        self.placed: dict[str, int] = {}
        self._pool: Workers | None = None

    def __enter__(self) -> LintWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.stop()

    def _use_pool(self, sizes: Sequence[int]) -> bool:
        return self.jobs > 1 and len(sizes) > 1 and sum(sizes) >= _POOL_BYTES

    def _start(self) -> Workers:
        if self._pool is None:
            if self.keep_trees:
                # Fixes will be planned on LibCST's trees, here and in the workers: LibCST
                # is imported once, before they fork, rather than in each process apart
                # (a fifth of a second each, and this process's share would be serial).
                from bufferlint import extract  # noqa: F401
            self._pool = Workers(self.jobs, self.keep_trees)
        return self._pool

    def _chunk(self, count: int) -> int:
        return max(1, count // (self.jobs * 16))

    def run(
        self, function: Callable[[Any], Any], items: Sequence[Any], sizes: Sequence[int]
    ) -> Iterator[tuple[int | None, Any]]:
        """(worker, `function(item)`) over `items`, as they come (the largest items go
        first); the worker is None for an item run in this process."""
        if not self._use_pool(sizes):
            return ((None, function(item)) for item in items)
        order = sorted(range(len(items)), key=lambda i: -sizes[i])
        pool = self._start()
        return pool.imap_unordered(function, [items[i] for i in order], self._chunk(len(items)))

    def map(
        self, function: Callable[[Any], Any], items: Sequence[Any], sizes: Sequence[int]
    ) -> list[Any]:
        """`function` over `items`, results in order."""
        results: list[Any] = [None] * len(items)
        numbered = list(enumerate(items))
        for _, (number, result) in self.run(
            functools.partial(_numbered, function), numbered, sizes
        ):
            results[number] = result
        return results

    def call(self, calls: Mapping[int, tuple[Callable[[Any], Any], Any]]) -> dict[int, Any]:
        """`function(argument)` in the given workers, at once (bufferlint.pool)."""
        assert self._pool is not None
        return self._pool.call(calls)


def _numbered(function: Callable[[Any], Any], item: tuple[int, Any]) -> tuple[int, Any]:
    return item[0], function(item[1])


@dataclass
class _Scan:
    """A file as read: its digest and the prefilter's index, valid while its stat is."""

    stat: Stat | None
    digest: str = ""
    index: prefilter.FileIndex | None = None
    error: str = ""  # why it cannot be read, reported as a parse failure
    compiles: bool = True  # by CPython's parser: else LibCST parses it whole, for its error
    checked: bool = False  # `compiles` was found out (a linted file), not assumed
    directives: bool = False  # may hold suppression comments (as suppressions.parse checks)

    @property
    def verified(self) -> bool:
        """CPython parsed this very text: no part of it nests too deeply for LibCST."""
        return self.compiles and self.checked


def _read(path: str, check: bool = False) -> tuple[_Scan, str | None]:
    """Reads and indexes a file; `check`: also whether it parses (for a linted file, whose
    syntax errors are reported even where the prefilter parses nothing)."""
    stat = stat_of(path)  # before reading: a change while reading shows next time
    try:
        text = read_source(path)
    except SourceError as exc:
        return _Scan(stat, error=str(exc)), None
    index = prefilter.index(text)
    if index.tokens:
        index.split(text)
    digest = digest_of(text.encode("utf-8", "surrogatepass"))
    directives = suppressions.may_hold_ours(text)
    compiles = not check or _compiles(text, path, stat)
    scan = _Scan(stat, digest, index, compiles=compiles, checked=check, directives=directives)
    return scan, text


def _reread(path: str, scan: _Scan) -> str | None:
    """The text `scan` was made from, read again (a worker gets a path, not a text), or
    None if it changed since: the scan's index still holds, so it is not made again."""
    try:
        text = read_source(path)
    except SourceError:
        return None
    return text if digest_of(text.encode("utf-8", "surrogatepass")) == scan.digest else None


def _compiles(text: str, path: str, stat: Stat | None) -> bool:
    """Whether CPython parses the text: five times faster than LibCST, and where the two
    disagree (newer syntax than this Python's) LibCST has the last word. A fresh `.pyc`
    from this Python already says so, for free."""
    if stat is not None and _fresh_bytecode(path, stat):
        return True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes and the like
            symtable.symtable(text, path, "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


@dataclass(frozen=True)
class _Job:
    """Read `path` unless `scan` is known; with a `key`, parse the statements asked for."""

    path: str
    key: Key | None = None
    scan: _Scan | None = None
    offsets: tuple[int, ...] = ()  # the statements of these headers may report,
    tokens: bool = False  # and so may those with a builder's tokens;
    extra: tuple[int, ...] = ()  # these are parsed ahead for the class model;
    whole: bool = False  # or all of it (a duplicated module name)
    cache: Cache | None = None
    check: bool = False  # whether the file parses (a linted file's first read)


@dataclass
class _Outcome:
    path: str
    scan: _Scan | None  # None: the job's, unchanged (the main process holds it)
    key: Key | None = None
    parsed: Parsed | None = None
    statements: tuple[int, ...] = ()  # those that may report
    fresh: bool = False  # parsed now: worth storing


def _asked(index: prefilter.FileIndex, offsets: Iterable[int], tokens: bool) -> set[int]:
    """The statements of these headers, and those with a builder's tokens (needs split)."""
    statements = {index.statement_of(offset) for offset in offsets}
    if tokens:
        statements.update(n for n, flag in enumerate(index.flags) if flag & prefilter.TOKEN)
    return statements


def _settled(parsed: Parsed | None, statements: set[int], whole: bool) -> bool:
    """Whether `parsed` already holds what a job asks for."""
    if parsed is None or not parsed.has(statements):
        return False
    return not whole or parsed.whole is not None or parsed.error is not None


def _work(job: _Job) -> _Outcome:
    """Runs in a worker process (or in-process, for little work). The job's scan goes back
    only if it changed here: sending every parsed file's index both ways cost the main
    process, which competes with the workers for the CPUs, a tenth of a second."""
    unsplit = job.scan is not None and job.scan.index is not None and job.scan.index.starts is None
    outcome = _outcome(job)
    if job.scan is not None and outcome.scan is job.scan and not unsplit:
        return replace(outcome, scan=None)
    return outcome


def _outcome(job: _Job) -> _Outcome:
    from bufferlint import partial

    scan, text = job.scan, None
    if scan is None:
        scan, text = _read(job.path, job.check)
    index = scan.index
    if job.key is None or index is None:
        return _Outcome(job.path, scan)
    if index.starts is None:
        if text is None:
            text = _reread(job.path, scan)
            if text is None:  # changed since it was scanned
                return _outcome(replace(job, scan=_read(job.path)[0]))
        index.split(text)
    statements = _asked(index, job.offsets, job.tokens)
    wanted = statements | _asked(index, job.extra, False)
    whole = job.whole or index.odd
    _, module, is_package = job.key
    parsed = job.cache.load_facts(scan.digest, module, is_package) if job.cache else None
    parsed = parsed if isinstance(parsed, partial.Parsed) else None
    if _settled(parsed, wanted, whole):
        return _Outcome(job.path, scan, job.key, parsed, tuple(sorted(statements)))
    if text is None:
        text = _reread(job.path, scan)
        if text is None:
            return _outcome(replace(job, scan=_read(job.path)[0]))
    parsed = partial.parse(
        text,
        job.path,
        module,
        is_package,
        index,
        None if whole else wanted,
        parsed,
        scan.verified,
    )
    return _Outcome(job.path, scan, job.key, parsed, tuple(sorted(statements)), fresh=True)


class _Known:
    """The cached scan, a shard at a time: a run over a few files loads the shards of the
    files it looks at, not the record of every file that a run over the whole tree read."""

    def __init__(self, cache: Cache | None) -> None:
        self.cache = cache
        self.shards: dict[str, dict[str, Any]] = {}

    def get(self, path: str) -> Any:
        return None if self.cache is None else self._shard(shard_of(path)).get(path)

    def _shard(self, name: str) -> dict[str, Any]:
        assert self.cache is not None
        if name not in self.shards:
            self.shards[name] = self.cache.load_scan(name)
        return self.shards[name]

    def store(
        self, scans: Mapping[str, _Scan], changed: Iterable[str], roots: Sequence[str]
    ) -> None:
        """Writes each shard that gets a changed record or holds a record of another
        project (an import root not linted now, and a file this run did not read) linted
        from the same folder: those are dropped, so that what a run loads does not grow
        with every tree ever linted there."""
        assert self.cache is not None
        prefixes = tuple(root.rstrip(os.sep) + os.sep for root in roots)

        def ours(path: str) -> bool:
            return path in scans or path.startswith(prefixes)

        dirty: dict[str, list[str]] = {}
        for path in changed:
            dirty.setdefault(shard_of(path), []).append(path)
        for name, records in self.shards.items():
            if not all(map(ours, records)):
                dirty.setdefault(name, [])
        for name, paths in sorted(dirty.items()):
            kept = {path: record for path, record in self._shard(name).items() if ours(path)}
            kept.update((path, scans[path]) for path in paths)
            self.cache.store_scan(name, kept)


@dataclass
class _Record:
    """A run's findings, every file it read or looked for (None: absent), and what decided
    which files it linted (`_layout`; None when it changed during the run)."""

    files: dict[str, Stat | None]
    layout: dict[str, Any] | None
    result: Result


def _answered(paths: Sequence[str], settings: Settings, finish_key: str) -> Result | None:
    """The findings of the last identical run, if nothing it depended on has changed:
    checked by stat alone, without walking the tree file by file."""
    record = Cache(location()).load_run(_run_key(paths, settings, finish_key))
    if not isinstance(record, _Record) or record.layout is None:
        return None
    if not all(os.path.lexists(path) for path in paths):
        return None  # discover raises the error
    if any(stat_of(path) != stat for path, stat in record.files.items()):
        return None
    return record.result if all(map(_unchanged, record.layout.items())) else None


def _unchanged(entry: tuple[str, Any]) -> bool:
    """One `_layout` entry, checked by stat: unchanged folders hold the same entries, so
    the walk would enter the same folders and skip the same ones."""
    path, value = entry
    if isinstance(value, bool):
        return os.path.lexists(path) == value
    if isinstance(value, int):
        try:
            return os.stat(path).st_mtime_ns == value
        except OSError:
            return False
    return stat_of(path) == value


def _layout(paths: Sequence[str], path_filter: PathFilter) -> dict[str, Any]:
    """What decides which files a run lints, and under which module names, cheap to check
    again: the mtime of each folder the walk enters (its entries), the ignore files, and
    the package markers and ignore files above the paths."""
    found: dict[str, Any] = {}
    for raw in paths:
        top = Path(raw).absolute()
        for folder in (top, *top.parents):
            for name in ("__init__.py", "__init__.pyi", ".gitignore", ".git/info/exclude"):
                found[str(folder / name)] = stat_of(str(folder / name))
            found[str(folder / ".git")] = os.path.lexists(folder / ".git")
        if not top.is_dir():
            continue
        for folder, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not path_filter.skip(Path(folder, d), True))
            found[folder] = os.stat(folder).st_mtime_ns
            if ".gitignore" in files:
                found[os.path.join(folder, ".gitignore")] = stat_of(
                    os.path.join(folder, ".gitignore")
                )
    return found


class _Run:
    """One prefiltered lint. Read and index the linted files (and, following their class
    headers' imports, the files outside them that hold ancestors); choose the statements
    that may report and those that define their ancestors; parse them in a pool; let the
    class model pull in anything else it looks up (`_load`, `_parse_left_out`)."""

    def __init__(
        self,
        paths: Sequence[str],
        sources: Sequence[SourceFile],
        settings: Settings,
        finish: Finish | None = None,
        finish_key: str = "",
    ) -> None:
        self.paths = list(paths)
        self.sources = list(sources)
        self.settings = settings
        self.finish = finish
        self.finish_key = finish_key
        self.cache = Cache(location()) if settings.cache else None
        self.roots = list(dict.fromkeys(s.import_root for s in sources))
        self.keys = {s.path: (s.path, s.module, s.is_package) for s in sources}
        self.by_module: dict[str, list[SourceFile]] = {}
        for source in sources:
            self.by_module.setdefault(source.module, []).append(source)
        self.duplicated = {m for m, found in self.by_module.items() if len(found) > 1}
        self.scans: dict[str, _Scan] = {}
        self.parsed: dict[Key, Parsed] = {}
        self.asked: dict[Key, set[int]] = {}  # per linted file, the statements that may report
        self.fresh: set[Key] = set()
        self.objects: dict[Key, FileFacts] = {}
        self.partial_modules: dict[str, Key] = {}
        self.words: set[str] = set()  # every class name in any header
        self.probes: dict[str, Stat | None] = {}
        self.project: Project | None = None
        self.known = _Known(self.cache)  # the cached scan
        self.module_files: dict[str, Key | None] = {}
        self.views: dict[Key, _HeaderBinds] = {}
        self.bases: dict[Target, tuple[Target, ...]] = {}
        self.resolver = Resolver(self._binds, _unknown)

    def result(self) -> Result:
        """The findings (stored for `_answered` when the cache is on)."""
        files = self._files()
        start = time.time_ns()
        if self.cache is not None:
            self.cache.prepare()  # now: creating the folder changes its parent's mtime
        # A run that plans fixes keeps the trees it parses for the fixer (bufferlint.trees).
        keep = self.finish is not None
        with (
            trees.keeping() if keep else contextlib.nullcontext(),
            LintWorkers(self.settings.jobs, keep) as workers,
        ):
            self._scan(files, workers)
            self._follow()
            self._run(self._choose(), workers)
            result = self._analyse()
            if self.finish is not None:
                assert self.project is not None
                self.finish(result, self.project, self._splits(), workers)
        if self.cache is not None:
            self._store(files, start, result)
        return result

    def _splits(self) -> dict[str, prefilter.FileIndex]:
        """The split indexes of the texts read, by digest: a fixer reading one of those
        texts again need not split it again."""
        return {
            scan.digest: scan.index
            for scan in self.scans.values()
            if scan.digest and scan.index is not None and scan.index.starts is not None
        }

    # -- files -----------------------------------------------------------------------
    def _files(self) -> dict[str, Stat | None]:
        return {s.path: stat_of(s.path) for s in self.sources}

    def _scan(self, files: dict[str, Stat | None], workers: LintWorkers) -> None:
        """Reads and indexes what changed since the cached scan."""
        jobs = []
        for path, stat in files.items():
            record = self.known.get(path)
            if (
                isinstance(record, _Scan)
                and stat is not None
                and record.stat == stat
                and (record.checked or record.error)
            ):
                self._absorb(_Outcome(path, record))
            else:
                jobs.append(_Job(path, check=True))
        self._run(jobs, workers)

    def _whole(self, key: Key | None) -> bool:
        return key is not None and key[1] in self.duplicated

    def _run(self, jobs: list[_Job], workers: LintWorkers) -> None:
        """Runs the jobs that have work left, in the pool when they are worth it."""
        needed = [job for job in jobs if not self._done(job)]
        sizes = [_size(job.path) for job in needed]
        for worker, outcome in workers.run(_work, needed, sizes):
            if worker is not None and outcome.fresh:
                workers.placed[outcome.path] = worker
            self._absorb(outcome)

    def _done(self, job: _Job) -> bool:
        """Whether the job has nothing left to do: already scanned, and parsed as far as
        it asks (perhaps by the cache)."""
        if job.scan is None:
            return False
        index = job.scan.index
        if job.key is None or index is None:
            return True
        if index.starts is None:
            return False
        statements = _asked(index, job.offsets, job.tokens)
        wanted = statements | _asked(index, job.extra, False)
        parsed = self.parsed.get(job.key) or self._cached(job.key)
        if not _settled(parsed, wanted, job.whole or index.odd):
            return False
        assert parsed is not None
        self._absorb(_Outcome(job.path, job.scan, job.key, parsed, tuple(statements)))
        return True

    def _cached(self, key: Key) -> Parsed | None:
        from bufferlint.partial import Parsed

        scan = self.scans.get(key[0])
        if self.cache is None or scan is None or not scan.digest:
            return None
        found = self.cache.load_facts(scan.digest, key[1], key[2])
        return found if isinstance(found, Parsed) else None

    def _absorb(self, outcome: _Outcome) -> None:
        if outcome.scan is not None:
            self.scans[outcome.path] = outcome.scan
            if outcome.scan.index is not None:
                self.words.update(h.name for h in outcome.scan.index.headers if h.real)
        key = outcome.key
        if outcome.parsed is not None and key is not None:
            self.parsed[key] = outcome.parsed
            if key[0] in self.keys:
                self.asked.setdefault(key, set()).update(outcome.statements)
            if outcome.fresh:
                self.fresh.add(key)

    # -- ancestors, without parsing ----------------------------------------------------
    def _follow(self) -> None:
        """Reads (without parsing) every file outside the linted paths that may hold an
        ancestor of a linted class, so that the prefilter knows of builders there too."""
        self._closure(
            (self.keys[s.path], header)
            for s in self.sources
            for header in self._headers(self.keys[s.path])
        )

    def _headers(self, key: Key, name: str | None = None) -> list[prefilter.Header]:
        """A file's real class headers, or those defining `name`."""
        headers = self._view(key).headers
        if name is None:
            return [h for found in headers.values() for h in found]
        return headers.get(name, [])

    def _view(self, key: Key) -> _HeaderBinds:
        """A file's headers and imports by name, gathered once: files with thousands of
        classes exist."""
        if key not in self.views:
            self.views[key] = _HeaderBinds(key, self._index(key))
        return self.views[key]

    def _closure(self, start: Iterable[tuple[Key, prefilter.Header]]) -> dict[Key, set[int]]:
        """The headers of every ancestor of the `start` classes, by file."""
        found: dict[Key, set[int]] = {}
        queue = list(start)
        while queue:
            key, header = queue.pop()
            if header.offset in found.setdefault(key, set()):
                continue
            found[key].add(header.offset)
            for base in header.dotted:
                for target, name in self._base(key, base):
                    queue.extend((target, h) for h in self._headers(target, name))
        return found

    def _base(self, key: Key, dotted: str) -> tuple[Target, ...]:
        """The classes that a base written in file `key` may name (bufferlint.names)."""
        if (key, dotted) not in self.bases:
            self.bases[(key, dotted)] = self.resolver.written(self._view(key), dotted)
        return self.bases[(key, dotted)]

    def _binds(self, module: str) -> _HeaderBinds | None:
        key = self._module_file(module)
        return None if key is None else self._view(key)

    def _index(self, key: Key) -> prefilter.FileIndex | None:
        if key[0] not in self.scans:
            record = self.known.get(key[0])
            if isinstance(record, _Scan) and record.stat == stat_of(key[0]):
                self._absorb(_Outcome(key[0], record))
            else:
                self._absorb(_Outcome(key[0], _read(key[0])[0]))
        return self.scans[key[0]].index

    def _module_file(self, module: str) -> Key | None:
        """The file the loader reads for `module`: a linted one, else one under an import
        root (looked for as the loader looks, and recorded for the run cache)."""
        if module in self.module_files:
            return self.module_files[module]
        found: Key | None = None
        for source in self.by_module.get(module, ()):
            found = self.keys[source.path]
            break
        else:
            found = self._probe(module)
        self.module_files[module] = found
        return found

    def _probe(self, module: str) -> Key | None:
        for candidate in module_files(module, self.roots):
            path = candidate.path
            if path not in self.probes:
                self.probes[path] = stat_of(path)
            if self.probes[path] is not None and os.path.isfile(path):
                return (path, module, candidate.is_package)
        return None

    # -- choosing ----------------------------------------------------------------------
    def _choose(self) -> list[_Job]:
        """Parse jobs: per linted file, the statements of every class that may inherit
        a builder (bufferlint.prefilter); and, ahead of the class model, the statements
        that define their bases, by name, in any scanned file."""
        paths = [p for p, scan in self.scans.items() if scan.index is not None]
        indexes: list[prefilter.FileIndex] = [self.scans[p].index for p in paths]  # type: ignore[misc]
        seeds = set()
        for index in indexes:
            if index.starts is not None:
                for number, flag in enumerate(index.flags):
                    if flag & prefilter.TOKEN:
                        seeds.update(index.names_in(number))
        _, marked = prefilter.reach(indexes, seeds)
        offsets: dict[str, set[int]] = {}
        for path, index, positions in zip(paths, indexes, marked, strict=True):
            found = {index.headers[p] for p in positions}
            if index.starts is not None:
                tokens = _asked(index, (), True)
                found.update(
                    h for h in index.headers if h.real and index.statement_of(h.offset) in tokens
                )
            if path in self.keys and found:
                offsets[path] = {header.offset for header in found}
        ahead = self._closure(
            (self.keys[path], h)
            for path, found in offsets.items()
            for h in self._headers(self.keys[path])
            if h.offset in found
        )
        extra = {key[0]: found for key, found in ahead.items()}
        keys = {key[0]: key for key in ahead}
        jobs = []
        for path in paths:
            key = self.keys.get(path) or keys.get(path)
            if key is None or (path not in offsets and path not in extra):
                continue
            jobs.append(
                _Job(
                    path,
                    key,
                    self.scans[path],
                    tuple(sorted(offsets.get(path, ()))),
                    path in self.keys,
                    tuple(sorted(extra.get(path, set()) - offsets.get(path, set()))),
                    self._whole(key) or not self.scans[path].compiles,
                    self.cache,
                )
            )
        for key in self.keys.values():  # parsed whole: odd, duplicated, or a syntax error
            scan = self.scans.get(key[0])
            index = scan.index if scan is not None else None
            if index is None or key[0] in offsets:
                continue
            if index.odd or self._whole(key) or not scan.compiles:
                jobs.append(_Job(key[0], key, scan, (), True, (), True, self.cache))
        return jobs

    # -- analysis --------------------------------------------------------------------
    def _analyse(self) -> Result:
        """The findings: the model starts from the files that may report and pulls in,
        through `_load` and `_parse_left_out`, whatever else it looks up."""
        from bufferlint.facts import FileFacts
        from bufferlint.model import Lookup, Project

        result = Result(files=len(self.sources))
        lookup = Lookup(self._parse_left_out, self.words, self.partial_modules)
        project = Project((), self._load, lookup)
        self.project = project
        candidates = []
        for source in self.sources:
            key = self.keys[source.path]
            parsed = self.parsed.get(key)
            if parsed is None or not (self.asked.get(key) or self._whole(key) or parsed.whole):
                continue
            facts = self._facts(key)
            if facts.error is not None:
                continue
            project.add(facts)
            if parsed.whole is not None:
                classes = list(parsed.whole)
            else:
                classes = [c for n in sorted(self.asked[key]) for c in parsed.statements[n]]
            candidates.append((source, facts, classes))
        findings = _class_findings(project, candidates, self.settings)
        for source in self.sources:
            error = self._error(self.keys[source.path])
            if error is not None:
                facts = FileFacts(path=source.path, module=source.module, error=error)
                result.findings.append(error_finding(source, facts))
        result.findings.extend(findings)
        # Only files with findings or directives have anything to suppress or report.
        reported = {finding.path for finding in result.findings}
        sources = [s for s in self.sources if s.path in reported or self.scans[s.path].directives]
        plain = {s.path for s in sources if not self.scans[s.path].directives}
        return _finish(result, sources, self.settings, plain=plain)

    def _error(self, key: Key) -> ParseFailure | None:
        from bufferlint.facts import ParseFailure

        scan = self.scans.get(key[0])
        if scan is not None and scan.error:
            return ParseFailure(1, 1, scan.error)
        parsed = self.parsed.get(key)
        return parsed.error if parsed is not None else None

    def _facts(self, key: Key) -> FileFacts:
        """The FileFacts that the model holds for a file: one object per file."""
        from bufferlint.facts import FileFacts, ParseFailure

        if key in self.objects:
            return self.objects[key]
        path, module, _ = key
        scan = self.scans.get(path)
        if scan is None:
            scan = _read(path)[0]
            self._absorb(_Outcome(path, scan))
        if scan.error or scan.index is None:
            facts = FileFacts(path=path, module=module, error=ParseFailure(1, 1, scan.error))
        else:
            parsed = self._ensure(key, ())
            facts = parsed.facts(path, module)
            scan = self.scans[path]
            if scan.verified:
                facts.compiled = scan.digest
            if parsed.whole is None and parsed.error is None:
                self.partial_modules.setdefault(module, key)
        self.objects[key] = facts
        return facts

    def _ensure(self, key: Key, statements: Iterable[int]) -> Parsed:
        """Parses, in this process, whatever of `statements` is not parsed yet."""
        from bufferlint import partial
        from bufferlint.facts import ParseFailure

        wanted = set(statements)
        parsed = self.parsed.get(key) or self._cached(key)
        scan = self.scans[key[0]]
        split = scan.index is not None and scan.index.starts is not None
        if parsed is not None and split and parsed.has(wanted):
            self.parsed[key] = parsed
            return parsed
        text = _reread(key[0], scan)
        if text is None:  # changed since it was scanned, or unreadable
            current, text = _read(key[0])
            self._absorb(_Outcome(key[0], current))
            scan, parsed = current, None
        if scan.error or scan.index is None:
            parsed = partial.Parsed(error=ParseFailure(1, 1, scan.error), started=True)
        else:
            scan.index.split(text or "")
            parsed = partial.parse(text or "", *key, scan.index, wanted, parsed, scan.verified)
        self.parsed[key] = parsed
        self.fresh.add(key)
        return parsed

    def _load(self, module: str) -> FileFacts | None:
        """The model's loader: a linted file first, else a module under an import root."""
        for source in self.by_module.get(module, ()):
            facts = self._facts(self.keys[source.path])
            if facts.error is None:
                return facts
        key = self._probe(module)
        if key is None:
            return None
        facts = self._facts(key)
        return None if facts.error else facts

    def _parse_left_out(self, name: str) -> bool:
        """The model's lookup of class `name`: parses the statements that define it and
        that the prefilter left out of a module the model holds; whether any were."""
        assert self.project is not None
        word = name.rpartition(".")[2]
        parts = name.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:cut])
            key = self.partial_modules.get(module)
            if key is None or self.project.modules.get(module) is not self.objects.get(key):
                continue
            parsed = self.parsed[key]
            index = self.scans[key[0]].index
            if parsed.whole is not None or index is None or index.starts is None:
                continue
            missing = [n for n in index.defining(word) if n not in parsed.statements]
            if not missing:
                continue
            parsed = self._ensure(key, [*parsed.statements, *missing])
            facts = self.objects[key]
            classes: dict[str, tuple[ClassFacts, FileFacts]] = self.project.classes
            for cls in parsed.classes():
                qualified = f"{module}.{cls.name}"
                if qualified not in classes:
                    classes[qualified] = (cls, facts)
                    facts.classes.append(cls)
            return True
        return False

    # -- cache -----------------------------------------------------------------------
    def _store(self, files: dict[str, Stat | None], start: int, result: Result) -> None:
        """Writes what this run learnt. The layout is kept only if nothing in it changed
        since the run started (two seconds before, for file systems with coarse mtimes)."""
        assert self.cache is not None
        # Records read now, or parsed now (which may split a file's index in place).
        changed = {p for p, scan in self.scans.items() if self.known.get(p) is not scan}
        changed.update(key[0] for key in self.fresh)
        self.known.store(self.scans, changed, self.roots)
        for fresh in self.fresh:
            scan = self.scans[fresh[0]]
            if scan.digest and fresh in self.parsed:
                self.cache.store_facts(scan.digest, fresh[1], fresh[2], self.parsed[fresh])
        seen = dict(files)
        seen.update(self.probes)
        for path in self.scans:
            seen.setdefault(path, self.scans[path].stat)
        layout: dict[str, Any] | None = _layout(self.paths, self.settings.path_filter())
        recent = start - 2_000_000_000
        mtimes = [v[0] if isinstance(v, tuple) else v for v in layout.values()]
        if not all(isinstance(m, bool) or m is None or m < recent for m in mtimes):
            layout = None
        key = _run_key(self.paths, self.settings, self.finish_key)
        self.cache.store_run(key, _Record(seen, layout, result))


def _unknown(name: str) -> tuple[Target, ...]:
    """No class is known by its absolute name before parsing."""
    return ()


class _HeaderBinds:
    """What a file binds, as its class headers and import statements read: any class
    statement of a name (nested ones too), any import of it, anywhere in the file."""

    def __init__(self, key: Key, index: prefilter.FileIndex | None) -> None:
        self.key = key
        self.headers: dict[str, list[prefilter.Header]] = {}
        self.bindings: dict[str, list[str]] = {}  # `*` for star imports
        if index is not None:
            for header in index.headers:
                if header.real:
                    self.headers.setdefault(header.name, []).append(header)
            for local, target in index.bindings:
                self.bindings.setdefault(local, []).append(target)

    @property
    def name(self) -> str:
        return self.key[1]

    def classes(self, dotted: str) -> tuple[Target, ...]:
        if dotted.partition(".")[0] in self.headers:
            return ((self.key, dotted.rpartition(".")[2]),)
        return ()

    def imports(self, local: str) -> list[str]:
        return [self._absolute(target) for target in self.bindings.get(local, ())]

    def star_imports(self) -> list[str]:
        return self.imports("*")

    def _absolute(self, target: str) -> str:
        dots = len(target) - len(target.lstrip("."))
        if not dots:
            return target
        return resolve_relative(self.key[1], self.key[2], dots, target[dots:] or None)


def _canonical(value: Any) -> Any:
    if isinstance(value, (frozenset, set)):
        return tuple(sorted((_canonical(v) for v in value), key=repr))
    if isinstance(value, (tuple, list)):
        return tuple(_canonical(v) for v in value)
    return value


def _run_key(paths: Sequence[str], settings: Settings, extra: str) -> str:
    """What a run's findings depend on besides the files: settings, paths, folder."""
    what = [
        (f.name, _canonical(getattr(settings, f.name)))
        for f in fields(settings)
        if f.name not in ("jobs", "cache")
    ]
    text = repr((__version__, what, list(paths), os.getcwd(), extra))
    return blake2b(text.encode(), digest_size=16).hexdigest()
