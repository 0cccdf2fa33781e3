"""What a prefiltered run knows of each file: the linted files and their module names,
every file's scan, what was parsed of it, and where modules' files are."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bufferlint import prefilter
from bufferlint.cache import Cache, Stat, stat_of
from bufferlint.jobs import Key, Outcome
from bufferlint.locate import module_files
from bufferlint.reading import Scan, read
from bufferlint.runcache import Known
from bufferlint.sources import SourceFile

if TYPE_CHECKING:
    from bufferlint.partial import Parsed


class RunFiles:
    """The linted `sources`, and everything the run has read or parsed so far."""

    def __init__(self, sources: Sequence[SourceFile], cache: Cache | None) -> None:
        self.cache = cache
        self.known = Known(cache)  # the cached scan
        self.roots = list(dict.fromkeys(s.import_root for s in sources))
        self.keys: dict[str, Key] = {s.path: (s.path, s.module, s.is_package) for s in sources}
        self.by_module: dict[str, list[SourceFile]] = {}
        for source in sources:
            self.by_module.setdefault(source.module, []).append(source)
        self.duplicated = {m for m, found in self.by_module.items() if len(found) > 1}
        self.scans: dict[str, Scan] = {}
        self.parsed: dict[Key, Parsed] = {}
        self.asked: dict[Key, set[int]] = {}  # per linted file, the statements that may report
        self.fresh: set[Key] = set()  # parsed in this run: worth storing
        self.words: set[str] = set()  # every class name in any header
        self.probes: dict[str, Stat | None] = {}  # files looked for outside the linted ones
        self._module_keys: dict[str, Key | None] = {}

    def absorb(self, outcome: Outcome) -> None:
        """Takes in what a job found."""
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

    def whole(self, key: Key | None) -> bool:
        """Whether the file must be parsed whole: its module name is linted twice."""
        return key is not None and key[1] in self.duplicated

    def cached(self, key: Key) -> Parsed | None:
        """What the facts cache holds of the file's scanned text."""
        from bufferlint.partial import Parsed

        scan = self.scans.get(key[0])
        if self.cache is None or scan is None or not scan.digest:
            return None
        found = self.cache.load_facts(scan.digest, key[1], key[2])
        return found if isinstance(found, Parsed) else None

    def index(self, key: Key) -> prefilter.FileIndex | None:
        """The file's index, read (or taken from the cached scan) if not yet scanned."""
        if key[0] not in self.scans:
            record = self.known.get(key[0])
            if isinstance(record, Scan) and record.stat == stat_of(key[0]):
                self.absorb(Outcome(key[0], record))
            else:
                self.absorb(Outcome(key[0], read(key[0])[0]))
        return self.scans[key[0]].index

    def module_file(self, module: str) -> Key | None:
        """The file the model's loader reads for `module`: a linted one, else `probe`'s."""
        if module not in self._module_keys:
            linted = self.by_module.get(module)
            self._module_keys[module] = self.keys[linted[0].path] if linted else self.probe(module)
        return self._module_keys[module]

    def probe(self, module: str) -> Key | None:
        """The file that holds `module` under an import root, each file looked for
        recorded for the run cache (a file that appears there changes the findings)."""
        for candidate in module_files(module, self.roots):
            path = candidate.path
            if path not in self.probes:
                self.probes[path] = stat_of(path)
            if self.probes[path] is not None and os.path.isfile(path):
                return (path, module, candidate.is_package)
        return None
