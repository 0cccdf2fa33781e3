"""The files a fix reads: their current texts (which may be edits not yet written), their
facts, the class model over them, and parsed CSTs on demand."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import libcst as cst

from bufferlint.extract import extract
from bufferlint.facts import FileFacts, MethodFacts
from bufferlint.fix.index import SourceIndex
from bufferlint.locate import Candidate, find_module, module_files
from bufferlint.model import Project
from bufferlint.prefilter import FileIndex
from bufferlint.sources import SourceError, SourceFile, read_source

# Parsed files a workspace keeps between plans: the few that many plans share (the
# ancestors' files) stay, while memory stays flat however many files have findings.
KEPT_INDEXES = 32


@dataclass
class Loaded:
    source: SourceFile
    text: str
    facts: FileFacts


class Workspace:
    """Current texts of the files being fixed; anything else is read from disk."""

    def __init__(
        self,
        files: Iterable[Loaded],
        project: Project | None = None,
        splits: Mapping[str, FileIndex] | None = None,
    ) -> None:
        self.splits = splits or {}  # the lint's split indexes, by digest of the text
        self.files: dict[str, Loaded] = {}
        self.roots: list[str] = []
        for loaded in files:
            self.files[loaded.source.path] = loaded
            if loaded.source.import_root not in self.roots:
                self.roots.append(loaded.source.import_root)
        self._disk: dict[str, Loaded | None] = {}
        self._indices: dict[str, SourceIndex | None] = {}
        # What plans derive from the CSTs (method scopes, side effects), shared by the
        # findings of one run; keys start with the kind of value and hold node ids.
        self.memo: dict[tuple[object, ...], object] = {}
        # What planning read (bufferlint.fix.memo): files whose text or tree it asked
        # for, and which top-level names it found to be the project's own.
        self.reads: set[str] = set()
        self.asked: dict[str, bool] = {}
        self.project = project or self.make_project()

    # -- the class model ---------------------------------------------------------------
    def make_project(self, replace: FileFacts | None = None) -> Project:
        """A fresh model over the current texts, with one file's facts swapped in."""
        facts = [
            replace if replace is not None and f.source.path == replace.path else f.facts
            for f in self.files.values()
        ]
        return Project((f for f in facts if f.error is None), self._load_module)

    def _load_module(self, module: str) -> FileFacts | None:
        """The first file that holds `module` and parses; each one tried counts as read,
        so that a remembered fix sees the file appear."""
        for candidate in module_files(module, self.roots):
            path = str(Path(candidate.path).absolute())
            loaded = self.files.get(path) or self._read(path, module, candidate)
            if loaded is not None and loaded.facts.error is None:
                return loaded.facts
        return None

    def is_project_module(self, name: str) -> bool:
        """Whether a top-level module name is one of the project's, not an installed package."""
        self.asked[name] = find_module(name, self.roots) is not None
        return self.asked[name]

    def _read(self, path: str, module: str, candidate: Candidate) -> Loaded | None:
        self.reads.add(path)
        if path not in self._disk:
            self._disk[path] = None
            if os.path.isfile(path):
                try:
                    text = read_source(path)
                except SourceError:
                    return None
                source = SourceFile(path, module, candidate.root, candidate.is_package)
                facts = extract(text, path, module, candidate.is_package)
                self._disk[path] = Loaded(source, text, facts)
        return self._disk[path]

    # -- CSTs --------------------------------------------------------------------------
    def text(self, path: str) -> str | None:
        self.reads.add(path)
        loaded = self.files.get(path) or self._disk.get(path)
        if loaded is not None:
            return loaded.text
        try:
            return read_source(path)
        except SourceError:
            return None

    def index(self, facts: FileFacts) -> SourceIndex | None:
        """The parsed file the facts were extracted from."""
        self.reads.add(facts.path)
        if facts.path in self._indices:  # now the most recently used
            self._indices[facts.path] = self._indices.pop(facts.path)
        else:
            text = self.text(facts.path)
            try:
                self._indices[facts.path] = (
                    None if text is None else SourceIndex(text, facts, self.splits)
                )
            except cst.ParserSyntaxError:
                self._indices[facts.path] = None
        return self._indices[facts.path]

    def trim(self) -> None:
        """Lets go of all but the KEPT_INDEXES most recently used parsed files. Only
        between plans: a plan in the making holds nodes of the files it parsed."""
        if len(self._indices) <= KEPT_INDEXES:
            return
        for path in list(self._indices)[: len(self._indices) - KEPT_INDEXES]:
            del self._indices[path]
        self.memo.clear()  # keyed by node ids, which the nodes let go may hand on

    def class_node(self, qualified: str) -> tuple[SourceIndex, cst.ClassDef] | None:
        if not self.project.has_class(qualified):
            return None
        cls, facts = self.project.class_facts(qualified)
        index = self.index(facts)
        node = index.class_at(cls.line, cls.column) if index is not None else None
        return None if node is None or index is None else (index, node)

    def method_node(
        self, owner: str, method: MethodFacts
    ) -> tuple[SourceIndex, cst.FunctionDef] | None:
        found = self.class_node(owner)
        if found is None:
            return None
        node = found[0].method(found[1], method)
        return None if node is None else (found[0], node)
