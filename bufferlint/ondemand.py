"""The class model of a prefiltered run, and what it pulls in as it looks things up: a
module's facts from what the workers parsed, and the left-out statements that define a
class it asks for, parsed then in this process. So the model sees every class, as if
every file were parsed whole."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from bufferlint.jobs import Key, Outcome
from bufferlint.reading import read, reread

if TYPE_CHECKING:
    from bufferlint.facts import ClassFacts, FileFacts
    from bufferlint.model import Project
    from bufferlint.partial import Parsed
    from bufferlint.runfiles import RunFiles


class OnDemand:
    """Makes the model (`project`) and answers its loader and its class lookup."""

    def __init__(self, files: RunFiles) -> None:
        from bufferlint.model import Lookup, Project

        self.files = files
        self.objects: dict[Key, FileFacts] = {}  # one FileFacts per file, as the model holds
        self.partial_modules: dict[str, Key] = {}  # modules whose facts have some classes
        lookup = Lookup(self._parse_left_out, files.words, self.partial_modules, files.by_module)
        self.project: Project = Project((), self._load, lookup)

    def facts(self, key: Key) -> FileFacts:
        """The FileFacts that the model holds for a file: one object per file."""
        from bufferlint.facts import FileFacts, ParseFailure

        if key in self.objects:
            return self.objects[key]
        path, module, _ = key
        scan = self.files.scans.get(path)
        if scan is None:
            scan = read(path)[0]
            self.files.absorb(Outcome(path, scan))
        if scan.error or scan.index is None:
            facts = FileFacts(path=path, module=module, error=ParseFailure(1, 1, scan.error))
        else:
            parsed = self._ensure(key, ())
            facts = parsed.facts(path, module)
            scan = self.files.scans[path]
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

        files = self.files
        wanted = set(statements)
        parsed = files.parsed.get(key) or files.cached(key)
        scan = files.scans[key[0]]
        split = scan.index is not None and scan.index.starts is not None
        if parsed is not None and split and parsed.has(wanted):
            files.parsed[key] = parsed
            return parsed
        text = reread(key[0], scan)
        if text is None:  # changed since it was scanned, or unreadable
            current, text = read(key[0])
            files.absorb(Outcome(key[0], current))
            scan, parsed = current, None
        if scan.error or scan.index is None:
            parsed = partial.Parsed(error=ParseFailure(1, 1, scan.error), started=True)
        else:
            scan.index.split(text or "")
            parsed = partial.parse(text or "", *key, scan.index, wanted, parsed, scan.verified)
        files.parsed[key] = parsed
        files.fresh.add(key)
        return parsed

    def _load(self, module: str) -> FileFacts | None:
        """The model's loader: a linted file first, else a module under an import root."""
        for source in self.files.by_module.get(module, ()):
            facts = self.facts(self.files.keys[source.path])
            if facts.error is None:
                return facts
        key = self.files.probe(module)
        if key is None:
            return None
        facts = self.facts(key)
        return None if facts.error else facts

    def _parse_left_out(self, name: str) -> bool:
        """The model's lookup of class `name`: parses the statements that define it and
        that the prefilter left out of a module the model holds; whether any were."""
        word = name.rpartition(".")[2]
        parts = name.split(".")
        files, project = self.files, self.project
        for cut in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:cut])
            key = self.partial_modules.get(module)
            if key is None or project.modules.get(module) is not self.objects.get(key):
                continue
            parsed = files.parsed[key]
            index = files.scans[key[0]].index
            if parsed.whole is not None or index is None or index.starts is None:
                continue
            missing = [n for n in index.defining(word) if n not in parsed.statements]
            if not missing:
                continue
            parsed = self._ensure(key, [*parsed.statements, *missing])
            facts = self.objects[key]
            classes: dict[str, tuple[ClassFacts, FileFacts]] = project.classes
            for cls in parsed.classes():
                qualified = f"{module}.{cls.name}"
                if qualified not in classes:
                    classes[qualified] = (cls, facts)
                    facts.classes.append(cls)
            return True
        return False
