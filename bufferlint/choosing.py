"""Choosing what to parse, from the prefilter's index alone: per linted file the
statements of every class that may inherit a builder, and ahead of the class model the
statements that define their ancestors, found through imports by the model's own name
resolution (bufferlint.names) over class headers instead of parsed classes."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from bufferlint import conventions, prefilter
from bufferlint.facts import resolve_relative
from bufferlint.jobs import Job, Key, asked
from bufferlint.model import LIGHTNING_MODULES, torch_class
from bufferlint.names import Resolver

if TYPE_CHECKING:
    from bufferlint.runfiles import RunFiles
    from bufferlint.sources import SourceFile

_BUILTINS = frozenset(dir(builtins))
Target = tuple[Key, str]  # a class name in a file: its headers may define an ancestor


class Chooser:
    """Follows class headers to their ancestors' files and makes the parse jobs."""

    def __init__(self, files: RunFiles) -> None:
        self.files = files
        self._views: dict[Key, _HeaderBinds] = {}
        self._bases: dict[Target, tuple[Target, ...]] = {}
        self._names = Resolver(self._module, _unknown)
        self._modules: dict[tuple[Key, int], bool] = {}

    def follow(self, sources: Sequence[SourceFile]) -> None:
        """Reads (without parsing) every file outside the linted paths that may hold an
        ancestor of a linted class, so that the prefilter knows of builders there too."""
        keys = self.files.keys
        self._closure((keys[s.path], h) for s in sources for h in self._headers(keys[s.path]))

    def choose(self) -> list[Job]:
        """Parse jobs: per linted file, the statements of every class that may inherit
        a builder (bufferlint.prefilter); and, ahead of the class model, the statements
        that define their bases, by name, in any scanned file."""
        files = self.files
        paths = [p for p, scan in files.scans.items() if scan.index is not None]
        indexes: list[prefilter.FileIndex] = [files.scans[p].index for p in paths]  # type: ignore[misc]
        seeds = set()
        for index in indexes:
            if index.starts is not None:
                for number, flag in enumerate(index.flags):
                    if flag & prefilter.TOKEN:
                        seeds.update(index.names_in(number))
        _, marked = prefilter.reach(indexes, seeds)
        builders = {
            files.keys[p][1]
            for p, i in zip(paths, indexes, strict=True)
            if i.tokens and p in files.keys
        }
        offsets: dict[str, set[int]] = {}
        left: dict[str, tuple[int, ...]] = {}
        for path, index, positions in zip(paths, indexes, marked, strict=True):
            found = {index.headers[p] for p in positions}
            if index.starts is not None:
                tokens = asked(index, (), True)
                found.update(
                    h for h in index.headers if h.real and index.statement_of(h.offset) in tokens
                )
            if path not in files.keys:
                continue
            plain = {h for h in found if not self._may_be_module(files.keys[path], h)}
            found -= plain
            if found or self._may_judge(path, index, builders):
                offsets[path] = {header.offset for header in found}
                left[path] = _only_classes(index, plain)
        ahead = self._closure(
            (files.keys[path], h)
            for path, found in offsets.items()
            for h in self._headers(files.keys[path])
            if h.offset in found
        )
        extra = {key[0]: found for key, found in ahead.items()}
        keys = {key[0]: key for key in ahead}
        jobs = []
        for path in paths:
            key = files.keys.get(path) or keys.get(path)
            if key is None or (path not in offsets and path not in extra):
                continue
            jobs.append(
                Job(
                    path,
                    key,
                    files.scans[path],
                    tuple(sorted(offsets.get(path, ()))),
                    path in files.keys,
                    tuple(sorted(extra.get(path, set()) - offsets.get(path, set()))),
                    files.whole(key) or not files.scans[path].compiles,
                    files.cache,
                    left=left.get(path, ()),
                )
            )
        for key in files.keys.values():  # parsed whole: odd, duplicated, or a syntax error
            scan = files.scans.get(key[0])
            index = scan.index if scan is not None else None
            if index is None or key[0] in offsets:
                continue
            if index.odd or files.whole(key) or not scan.compiles:
                jobs.append(Job(key[0], key, scan, (), True, (), True, files.cache))
        return jobs

    def _may_be_module(self, key: Key, header: prefilter.Header) -> bool:
        """Whether the class may be a torch module as the class model decides (its MRO
        reaches a torch.nn or Lightning class, or one of its classes builds buffers), as
        far as headers and imports show; yes when unsure. A walk, not a recursion:
        inheritance chains of thousands of classes exist."""
        seen = {(key, header)}
        queue = [(key, header)]
        while queue:
            at, current = queue.pop()
            found = self._modules.get((at, current.offset))
            if found is False:
                continue
            index = self.files.index(at)
            if found or index is None or _builds(index, current):
                self._modules[(key, header.offset)] = True
                return True
            for base in current.dotted:
                targets = self._ancestors(at, base)
                if not targets and not self._foreign(self._view(at), base):
                    self._modules[(key, header.offset)] = True  # a base nothing explains
                    return True
                for target, name in targets:
                    for parent in self._headers(target, name):
                        if (target, parent) not in seen:
                            seen.add((target, parent))
                            queue.append((target, parent))
        for at, current in seen:  # none of them reaches a module
            self._modules[(at, current.offset)] = False
        return False

    def _ancestors(self, key: Key, dotted: str) -> tuple[Target, ...]:
        """`_base`, and what the file's imports of the first name give: the class model
        takes an imported name through the import even where a class of the file has the
        same name (`class LlamaModel(LlamaModel)` in a modular file)."""
        head, _, rest = dotted.partition(".")
        found = self._base(key, dotted)
        for target in self._view(key).imports(head):
            found += self._names.resolve(f"{target}.{rest}" if rest else target)
        return found

    def _foreign(self, view: _HeaderBinds, dotted: str) -> bool:
        """Whether a base that names no scanned class names one outside the scanned code
        that is no torch or Lightning module (`object`, `abc.ABC`, `typing.NamedTuple`)."""
        head, _, rest = dotted.partition(".")
        targets = view.imports(head)
        if not targets:
            return not view.star_imports() and head not in view.headers and head in _BUILTINS
        for target in targets:
            name = f"{target}.{rest}" if rest else target
            if torch_class(name) or name in LIGHTNING_MODULES:
                return False
            parts = name.split(".")
            if any(self.files.module_file(".".join(parts[:cut])) for cut in range(1, len(parts))):
                return False  # a scanned module that the headers do not explain
        return True

    def _may_judge(self, path: str, index: prefilter.FileIndex, builders: set[str]) -> bool:
        """Whether a file without builders holds models that may judge a builder elsewhere:
        by class name, or through an import from a builder's module."""
        if not index.dispatch or conventions.dispatching_template(path):
            return False
        if index.by_name:
            return True
        view = self._view(self.files.keys[path])
        return any(
            target in builders or target.rpartition(".")[0] in builders
            for local in view.bindings
            for target in view.imports(local)
        )

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
        """The classes that a base written in file `key` may name."""
        if (key, dotted) not in self._bases:
            self._bases[(key, dotted)] = self._names.written(self._view(key), dotted)
        return self._bases[(key, dotted)]

    def _headers(self, key: Key, name: str | None = None) -> list[prefilter.Header]:
        """A file's real class headers, or those defining `name`."""
        headers = self._view(key).headers
        if name is None:
            return [h for found in headers.values() for h in found]
        return headers.get(name, [])

    def _view(self, key: Key) -> _HeaderBinds:
        """A file's headers and imports by name, gathered once: files with thousands of
        classes exist."""
        if key not in self._views:
            self._views[key] = _HeaderBinds(key, self.files.index(key))
        return self._views[key]

    def _module(self, module: str) -> _HeaderBinds | None:
        key = self.files.module_file(module)
        return None if key is None else self._view(key)


def _builds(index: prefilter.FileIndex, header: prefilter.Header) -> bool:
    """Whether the header's statement (in a file not yet split, the file) may hold a
    builder's code."""
    if index.starts is None:
        return index.builds
    return bool(index.flags[index.statement_of(header.offset)] & prefilter.BUILDS)


def _only_classes(index: prefilter.FileIndex, plain: set[prefilter.Header]) -> tuple[int, ...]:
    """The statements that are one class statement (undecorated) whose classes, nested
    ones too, are all `plain`: nothing else of them can report, or need parsing. An
    unsplit file has no tokens: nothing to leave out."""
    if index.starts is None or not plain:
        return ()
    numbers = {index.statement_of(header.offset) for header in plain}
    ours: dict[int, list[prefilter.Header]] = {}
    for header in index.headers:
        number = index.statement_of(header.offset)
        if header.real and number in numbers:
            ours.setdefault(number, []).append(header)
    return tuple(
        sorted(
            number
            for number, headers in ours.items()
            if headers[0].offset == index.starts[number] and all(h in plain for h in headers)
        )
    )


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
