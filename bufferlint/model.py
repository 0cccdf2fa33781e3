"""The project-wide class model: name resolution across files, inheritance, and
which events construction and the hook reach.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from bufferlint.conventions import Convention
from bufferlint.facts import ClassFacts, Event, FileFacts, MethodFacts, PathGuard
from bufferlint.names import Resolver

LIGHTNING_MODULES = frozenset(
    f"{package}.{path}LightningModule"
    for package in ("lightning", "lightning.pytorch", "pytorch_lightning")
    for path in ("", "core.", "core.module.")
)
# Bases that make no difference to what a module builds or rebuilds.
NEUTRAL_BASES = frozenset(
    {"object", "abc.ABC", "typing.Generic", "typing.Protocol", "typing_extensions.Protocol"}
)
_TORCH_NN_CLASS = re.compile(r"^torch\.nn\.(?:modules\.[\w.]+\.)?([A-Za-z_]\w*)$")


def torch_class(name: str) -> str | None:
    """The layer name when `name` is a torch.nn module class, else None."""
    match = _TORCH_NN_CLASS.match(name)
    if match is None or not match.group(1)[:1].isupper() and not match.group(1).startswith("_"):
        return None
    layer = match.group(1)
    if layer in ("Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer"):
        return None
    return layer


@dataclass(frozen=True)
class Reached:
    """An event reached from an entry method, with every guard on the way."""

    event: Event
    owner: str  # qualified name of the class whose code holds the event
    guards: tuple[PathGuard, ...]


def findable(name: str, words: Collection[str], modules: Collection[str]) -> bool:
    """Whether a lazy lookup may still add `name`: its last part is a class name that a
    header defines (`words`), and a module that holds it was parsed in part (`modules`)."""
    module, _, word = name.rpartition(".")
    parts = module.split(".")
    return word in words and any(
        ".".join(parts[:cut]) in modules for cut in range(len(parts), 0, -1)
    )


@dataclass(frozen=True)
class Lookup:
    """How a model finds a class it lacks: `find` adds it to `Project.classes` if it can
    and says whether it did (the prefiltered run parses it: bufferlint.ondemand). It is
    asked only for names that `findable` allows: any other, the model lacks for good."""

    find: Callable[[str], bool]
    words: Collection[str]
    modules: Collection[str]
    linted: Collection[str] = ()  # the modules of every linted file, held or not

    def __call__(self, name: str) -> bool:
        return findable(name, self.words, self.modules) and self.find(name)


class Project:
    """Classes of all analysed files, resolved across modules on demand. `loader` reads a
    module the model lacks, `lookup` a class."""

    def __init__(
        self,
        files: Iterable[FileFacts],
        loader: Callable[[str], FileFacts | None] | None = None,
        lookup: Lookup | None = None,
    ) -> None:
        self.modules: dict[str, FileFacts] = {}
        self.classes: dict[str, tuple[ClassFacts, FileFacts]] = {}
        self.lookup = lookup
        self._loader = loader
        self._tried: set[str] = set()
        self._mro: dict[str, list[str]] = {}
        self._resolved: dict[str, tuple[str, ...]] = {}
        self._module_memo: dict[str, bool] = {}
        self._importers: dict[str, list[str]] | None = None
        self._defining: dict[str, list[tuple[str, MethodFacts]]] = {}
        # What analyses derive from the model and keep for the run (bufferlint.dispatch).
        self.memo: dict[tuple[str, ...], object] = {}
        self._names = Resolver(self._binds, self._known, self._resolved)
        for facts in files:
            self._add(facts)

    def __getstate__(self) -> dict[str, Any]:
        """Without the resolver, which is bound to this object: a copy makes its own."""
        state = dict(self.__dict__)
        del state["_names"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._names = Resolver(self._binds, self._known, self._resolved)

    def add(self, facts: FileFacts) -> None:
        """Adds a file from outside. Only what was derived from names that did not
        resolve can change, so only that is forgotten."""
        self._add(facts)
        self._resolved = {k: v for k, v in self._resolved.items() if v}
        self._names.memo = self._resolved
        self._mro = {k: v for k, v in self._mro.items() if all(map(self.has_class, v))}
        self._module_memo = {k: v for k, v in self._module_memo.items() if v}

    def importers(self, module: str) -> list[str]:
        """The modules that import a name from `module` (or `module` itself), among those
        held when first asked: the linted files, not what lookups add later, so that the
        answer does not depend on the order classes are judged in."""
        if self._importers is None:
            found: dict[str, set[str]] = {}
            for name, facts in self.modules.items():
                for target in (*facts.imports.values(), *facts.star_imports):
                    found.setdefault(target, set()).add(name)
                    found.setdefault(target.rpartition(".")[0], set()).add(name)
            self._importers = {target: sorted(names) for target, names in found.items()}
        return self._importers.get(module, [])

    def defining(self, method: str) -> list[tuple[str, MethodFacts]]:
        """The classes that define `method` themselves, with it, among the modules held
        when first asked (as `importers`)."""
        if method not in self._defining:
            self._defining[method] = [
                (f"{name}.{cls.name}", cls.methods[method])
                for name, facts in self.modules.items()
                for cls in facts.classes
                if method in cls.methods
                and self.classes.get(f"{name}.{cls.name}", (cls,))[0] is cls
            ]
        return self._defining[method]

    def _add(self, facts: FileFacts) -> None:
        if facts.module in self.modules:
            return
        self.modules[facts.module] = facts
        for cls in facts.classes:
            self.classes.setdefault(f"{facts.module}.{cls.name}", (cls, facts))

    # -- classes -----------------------------------------------------------------
    def has_class(self, name: str) -> bool:
        """Whether `name` is a class of the project, looking it up if the model lacks it."""
        if name in self.classes:
            return True
        return self.lookup is not None and self.lookup(name) and name in self.classes

    def class_facts(self, name: str) -> tuple[ClassFacts, FileFacts]:
        """`classes[name]`, looked up first if the model lacks it (KeyError if absent)."""
        if name not in self.classes and self.lookup is not None:
            self.lookup(name)
        return self.classes[name]

    # -- names -------------------------------------------------------------------
    def _module(self, name: str) -> FileFacts | None:
        if name not in self.modules and self._loader is not None and name not in self._tried:
            self._tried.add(name)
            loaded = self._loader(name)
            if loaded is not None:
                self._add(loaded)  # found on demand: nothing derived so far depended on it
        return self.modules.get(name)

    def _binds(self, name: str) -> _FileBinds | None:
        facts = self._module(name)
        return None if facts is None else _FileBinds(self, facts)

    def _known(self, name: str) -> tuple[str, ...]:
        return (name,) if self.has_class(name) else ()

    def resolve(self, name: str) -> str:
        """The qualified project class `name` refers to, or `name` itself if it is external."""
        found = self._names.resolve(name)
        return found[0] if found else name

    def bases(self, qualified: str) -> list[str]:
        cls, facts = self.class_facts(qualified)
        return [self._resolve_base(base, cls, facts) for base in cls.bases]

    def resolve_written(self, name: str, where: str) -> str:
        """What `name`, written in the code of class `where`, refers to (as a base would)."""
        if where not in self.classes:
            return name
        return self._resolve_base(name, *self.classes[where])

    def _resolve_base(self, base: str, cls: ClassFacts, facts: FileFacts) -> str:
        if base == "?" or base in NEUTRAL_BASES:
            return base
        if base.split(".")[0] in facts.imports:  # extract put the import's target in
            return self.resolve(base)
        scopes = cls.name.split(".")[:-1]
        found = self._names.written(_FileBinds(self, facts), base, scopes)
        return found[0] if found else base

    # -- inheritance -----------------------------------------------------------
    def mro(self, qualified: str) -> list[str]:
        """C3 linearization; external bases stay opaque leaves."""
        if qualified in self._mro:
            return self._mro[qualified]
        self._mro[qualified] = [qualified]  # guards against inheritance cycles
        parents = [base for base in self.bases(qualified) if base != qualified]
        sequences = [self.mro(base) if self.has_class(base) else [base] for base in parents]
        # One base: C3 gives its MRO unchanged. The merge is quadratic in the MRO's length,
        # so a chain of thousands of subclasses would cost their cube.
        merged = sequences[0] if len(parents) == 1 else _c3_merge([*sequences, parents])
        if merged is None:  # inconsistent hierarchy: fall back to depth first
            merged = []
            for sequence in sequences:
                merged.extend(name for name in sequence if name not in merged)
        result = [qualified, *merged]
        self._mro[qualified] = result
        return result

    def is_module(self, qualified: str) -> bool:
        """Whether instances are torch modules: by ancestry, or by registering buffers."""
        if qualified in self._module_memo:
            return self._module_memo[qualified]
        self._module_memo[qualified] = False
        answer = False
        own_register = False
        for name in self.mro(qualified):
            if self.has_class(name):
                cls = self.class_facts(name)[0]
                if "register_buffer" in cls.methods:
                    answer = False
                    break
                own_register = own_register or _builds_buffers(cls)
            elif torch_class(name) or name in LIGHTNING_MODULES:
                answer = True
        answer = answer or own_register
        self._module_memo[qualified] = answer
        return answer

    def find_method(
        self, qualified: str, name: str, after: str | None = None, setter: bool = False
    ) -> tuple[str, MethodFacts] | None:
        """The first definition of `name` along the MRO (past `after`, for super())."""
        order = self.mro(qualified)
        if after is not None:
            order = order[order.index(after) + 1 :] if after in order else []
        for owner in order:
            if not self.has_class(owner):
                continue
            cls = self.class_facts(owner)[0]
            method = (cls.setters if setter else cls.methods).get(name)
            if method is not None:
                return owner, method
            if setter and name in cls.methods:
                return None  # a plain attribute or getter-only property shadows it
        return None

    def has_hook(self, qualified: str, convention: Convention) -> bool | None:
        """True or False where the whole ancestry is known; None behind unknown bases."""
        unknown = False
        for owner in self.mro(qualified):
            if self.has_class(owner):
                if any(hook in self.class_facts(owner)[0].methods for hook in convention.hooks):
                    return True
                continue
            layer = torch_class(owner)
            if layer is not None:
                if convention.layer_defines_hook(layer):
                    return True
            elif owner not in LIGHTNING_MODULES and owner not in NEUTRAL_BASES:
                unknown = True
        return None if unknown else False

    # -- reach -----------------------------------------------------------------
    def reach(self, qualified: str, entry: str) -> Iterator[Reached]:
        """Events that calling `entry` on an instance of `qualified` can run."""
        found = self.find_method(qualified, entry)
        if found is None:
            return iter(())
        seen: set[tuple[str, str, bool]] = set()
        return self._walk(qualified, found[0], found[1], (), seen)

    def _walk(
        self,
        cls: str,
        owner: str,
        method: MethodFacts,
        guards: tuple[PathGuard, ...],
        seen: set[tuple[str, str, bool]],
    ) -> Iterator[Reached]:
        key = (owner, method.name, method.kind == "setter")
        if key in seen:
            return
        seen.add(key)
        for event in method.events:
            path = guards + event.guards
            callee: tuple[str, MethodFacts] | None = None
            if event.kind == "call":
                callee = self.find_method(cls, event.name)
            elif event.kind == "super":
                callee = self.find_method(cls, event.name, after=owner)
            elif event.kind == "explicit":
                # As a base is resolved: `Parent.__init__(self)` names a class of this file.
                target = self._resolve_base(event.target, *self.class_facts(owner))
                if self.has_class(target) and target in self.mro(cls):
                    callee = self.find_method(cls, event.name, after=_before(self.mro(cls), target))
            elif event.kind == "assign":
                callee = self.find_method(cls, event.name, setter=True)
                yield Reached(event, owner, path)
            else:
                yield Reached(event, owner, path)
            if callee is not None and callee[1].kind in ("method", "setter"):
                yield from self._walk(cls, callee[0], callee[1], path, seen)


def linted_importers(project: Project, module: str) -> list[str]:
    """`importers`, and the linted modules the model does not hold that import from
    `module` (a prefiltered run holds only files that may build buffers), added."""
    key = ("linted-importers",)
    if key not in project.memo:
        found: dict[str, set[str]] = {}
        if project.lookup is not None and project._loader is not None:
            for name in sorted(project.lookup.linted):
                facts = project.modules.get(name) or project._loader(name)
                targets = (*facts.imports.values(), *facts.star_imports) if facts else ()
                for target in targets:
                    found.setdefault(target, set()).add(name)
                    found.setdefault(target.rpartition(".")[0], set()).add(name)
        project.memo[key] = found
    linted = project.memo[key]
    assert isinstance(linted, dict)
    names = {*project.importers(module), *linted.get(module, ())}
    return sorted(name for name in names if project._module(name) is not None)


def module_classes(project: Project, module: str) -> list[str]:
    """The top-level classes of a module, those a prefiltered run left out looked up."""
    facts = project._module(module)
    if facts is None:
        return []
    if project.lookup is not None and module in project.lookup.modules:
        for word in sorted(project.lookup.words):
            project.has_class(f"{module}.{word}")
    return [
        f"{module}.{cls.name}"
        for cls in facts.classes
        if "." not in cls.name and project.classes.get(f"{module}.{cls.name}", (None,))[0] is cls
    ]


class _FileBinds:
    """What a parsed module binds, as name resolution asks (bufferlint.names)."""

    __slots__ = ("facts", "project")

    def __init__(self, project: Project, facts: FileFacts) -> None:
        self.project = project
        self.facts = facts

    @property
    def name(self) -> str:
        return self.facts.module

    def classes(self, dotted: str) -> tuple[str, ...]:
        return self.project._known(f"{self.facts.module}.{dotted}")

    def imports(self, local: str) -> tuple[str, ...]:
        target = self.facts.imports.get(local)
        return () if target is None else (target,)

    def star_imports(self) -> list[str]:
        return self.facts.star_imports


def _before(order: list[str], name: str) -> str | None:
    """The class just before `name` in the MRO, so that lookup starts at `name`."""
    index = order.index(name)
    return order[index - 1] if index > 0 else None


def _builds_buffers(cls: ClassFacts) -> bool:
    return any(
        event.kind in ("register", "buffer")
        for method in (*cls.methods.values(), *cls.setters.values())
        for event in method.events
    )


def _c3_merge(sequences: list[list[str]]) -> list[str] | None:
    sequences = [list(s) for s in sequences if s]
    result: list[str] = []
    while sequences:
        for sequence in sequences:
            head = sequence[0]
            if not any(head in other[1:] for other in sequences):
                break
        else:
            return None
        result.append(head)
        sequences = [[n for n in s if n != head] for s in sequences]
        sequences = [s for s in sequences if s]
    return result
