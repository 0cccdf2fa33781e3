"""The run cache: a run's findings kept with everything they depended on, so that an
identical run whose files are unchanged is answered by stat alone; and the scan record,
so that an unchanged file is not even read again (bufferlint.cache holds the records)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bufferlint import __version__
from bufferlint.cache import Cache, Stat, blake2b, location, shard_of, stat_of
from bufferlint.exclusion import PathFilter

if TYPE_CHECKING:
    from bufferlint.engine import Result, Settings
    from bufferlint.reading import Scan
    from bufferlint.runfiles import RunFiles


class Known:
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
        self, scans: Mapping[str, Scan], changed: Iterable[str], roots: Sequence[str]
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
class Record:
    """A run's findings, every file it read or looked for (None: absent), and what decided
    which files it linted (`layout`; None when it changed during the run)."""

    files: dict[str, Stat | None]
    layout: dict[str, Any] | None
    result: Result


def answered(paths: Sequence[str], settings: Settings, finish_key: str) -> Result | None:
    """The findings of the last identical run, if nothing it depended on has changed:
    checked by stat alone, without walking the tree file by file."""
    record = Cache(location()).load_run(run_key(paths, settings, finish_key))
    if not isinstance(record, Record) or record.layout is None:
        return None
    if not all(os.path.lexists(path) for path in paths):
        return None  # discover raises the error
    if any(stat_of(path) != stat for path, stat in record.files.items()):
        return None
    return record.result if all(map(_unchanged, record.layout.items())) else None


def _unchanged(entry: tuple[str, Any]) -> bool:
    """One `layout` entry, checked by stat: unchanged folders hold the same entries, so
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


def layout(paths: Sequence[str], path_filter: PathFilter) -> dict[str, Any]:
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


def store(
    files: RunFiles,
    linted: Mapping[str, Stat | None],
    start: int,
    key: str,
    paths: Sequence[str],
    path_filter: PathFilter,
    result: Result,
) -> None:
    """Writes what a run that started at `start` learnt: the scans and parses it made,
    and its findings under `key`, with every file it read or looked for. The layout is
    kept only if nothing in it changed since the run started (two seconds before, for
    file systems with coarse mtimes)."""
    cache = files.cache
    assert cache is not None
    # Records read now, or parsed now (which may split a file's index in place).
    changed = {p for p, scan in files.scans.items() if files.known.get(p) is not scan}
    changed.update(key[0] for key in files.fresh)
    files.known.store(files.scans, changed, files.roots)
    for fresh in files.fresh:
        scan = files.scans[fresh[0]]
        if scan.digest and fresh in files.parsed:
            cache.store_facts(scan.digest, fresh[1], fresh[2], files.parsed[fresh])
    seen = dict(linted)
    seen.update(files.probes)
    for path in files.scans:
        seen.setdefault(path, files.scans[path].stat)
    found: dict[str, Any] | None = layout(paths, path_filter)
    recent = start - 2_000_000_000
    mtimes = [v[0] if isinstance(v, tuple) else v for v in found.values()]
    if not all(isinstance(m, bool) or m is None or m < recent for m in mtimes):
        found = None
    cache.store_run(key, Record(seen, found, result))


def _canonical(value: Any) -> Any:
    if isinstance(value, (frozenset, set)):
        return tuple(sorted((_canonical(v) for v in value), key=repr))
    if isinstance(value, (tuple, list)):
        return tuple(_canonical(v) for v in value)
    return value


def run_key(paths: Sequence[str], settings: Settings, extra: str) -> str:
    """What a run's findings depend on besides the files: settings, paths, folder."""
    what = [
        (f.name, _canonical(getattr(settings, f.name)))
        for f in fields(settings)
        if f.name not in ("jobs", "cache")
    ]
    text = repr((__version__, what, list(paths), os.getcwd(), extra))
    return blake2b(text.encode(), digest_size=16).hexdigest()
