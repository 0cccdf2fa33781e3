"""What a dispatching convention's hook does to one module class: the `_init_weights(module)`
of the models that may hold it, followed through `super()` into the stack's base (its real
source when the project has it, else the convention's own copy of its rules), and into the
module's own methods that it calls."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from functools import cache

from bufferlint import guards
from bufferlint.conventions import Convention
from bufferlint.facts import ClassFacts, Event, FileFacts, MethodFacts
from bufferlint.guards import PathGuard
from bufferlint.model import LIGHTNING_MODULES, NEUTRAL_BASES, Project, torch_class

_TORCH_MODULE = "Module"


@dataclass(frozen=True)
class Write:
    """An event a dispatcher runs on the module: the guards on its module argument, and
    those inside a method of the module that it calls."""

    event: Event
    dispatch_guards: tuple[PathGuard, ...]
    own_guards: tuple[PathGuard, ...]
    dispatcher: str  # the class whose hook holds the event (or calls the module's method)


def derives(project: Project, qualified: str, convention: Convention) -> bool:
    """Whether the class is one of the stack's models (its MRO holds a base)."""
    return any(name in convention.bases for name in project.mro(qualified))


def judges(project: Project, qualified: str, convention: Convention) -> tuple[str, ...]:
    """The models whose hook sees instances of the class: itself if it is one, else those
    of its file, and of the files that import it, that define the hook; none (the stack's
    base alone) when no such file has one."""
    if derives(project, qualified, convention):
        return (qualified,)
    module = project.classes[qualified][1].module
    found: list[str] = []
    for name in (module, *project.importers(module)):
        facts = project.modules.get(name)
        if facts is not None:
            found.extend(file_judges(project, facts, convention))
    return tuple(dict.fromkeys(found))


def file_judges(project: Project, facts: FileFacts, convention: Convention) -> tuple[str, ...]:
    """The models of a file that define the convention's hook."""
    hook = convention.hooks[0]
    found = []
    for cls in facts.classes:
        qualified = f"{facts.module}.{cls.name}"
        if hook in cls.methods and derives(project, qualified, convention):
            found.append(qualified)
    return tuple(found)


def by_name(project: Project, qualified: str, convention: Convention) -> tuple[str, ...]:
    """Models anywhere in the project whose hook has a branch for the class by its name
    (`"BatchNorm" in module.__class__.__name__`): the stack's way to reach modules that
    other files put into its models (a backbone's frozen norms)."""
    name = qualified.rpartition(".")[2]
    return tuple(
        model
        for model, texts in _name_testers(project, convention)
        if any(text in name for text in texts) and derives(project, model, convention)
    )


def _name_testers(project: Project, convention: Convention) -> list[tuple[str, set[str]]]:
    """The models whose hook tests class names, with the names it tests (computed once)."""
    key = ("name testers", convention.name)
    if key not in project.memo:
        found = [(m, _names_tested(f)) for m, f in project.defining(convention.hooks[0])]
        project.memo[key] = [(model, texts) for model, texts in found if texts]
    return project.memo[key]  # type: ignore[return-value]


def named_branch(path: tuple[PathGuard, ...], subject: guards.Subject) -> bool:
    """Whether the path takes a branch because of the class's name."""
    return any(g.polarity and _tests_name(g.condition, subject.name) for g in path)


def _tests_name(condition: guards.Guard, name: str) -> bool:
    if isinstance(condition, guards.ClassName):
        return condition.text == name if condition.exact else condition.text in name
    if isinstance(condition, (guards.AnyOf, guards.AllOf)):
        return any(_tests_name(part, name) for part in condition.parts)
    return False


def _names_tested(method: MethodFacts) -> set[str]:
    found: set[str] = set()
    for event in method.dispatched:
        for g in event.guards:
            found.update(_texts(g.condition))
    return found


def _texts(condition: guards.Guard) -> Iterator[str]:
    if isinstance(condition, guards.ClassName):
        yield condition.text
    elif isinstance(condition, (guards.AnyOf, guards.AllOf)):
        for part in condition.parts:
            yield from _texts(part)
    elif isinstance(condition, guards.Not):
        yield from _texts(condition.operand)


def writes(
    project: Project, judge: str | None, target: str, convention: Convention
) -> Iterator[Write]:
    """What the hook of `judge` (None: the stack's base alone) does to a `target` module."""
    hook = convention.hooks[0]
    start = project.find_method(judge, hook) if judge is not None else None
    if start is None:
        start = _base_hook(project, convention)
    seen: set[str] = set()
    stack: list[tuple[str, MethodFacts, tuple[PathGuard, ...]]] = [(*start, ())]
    while stack:
        owner, method, guards = stack.pop()
        if owner in seen:
            continue
        seen.add(owner)
        for event in method.dispatched:
            path = guards + event.guards
            if event.kind == "super" and event.name == hook:
                after = project.find_method(judge, hook, after=owner) if judge else None
                if after is None and owner != _BASE:
                    after = _base_hook(project, convention)
                stack.append((*after, path))
            elif event.kind == "explicit" and event.name == hook:
                target_class = project.resolve_written(event.target, owner)
                found = project.find_method(target_class, hook)
                if found is None and target_class in convention.bases:
                    found = _base_hook(project, convention)
                if found is not None:
                    stack.append((*found, path))
            elif event.kind == "call":
                for reached in project.reach(target, event.name):
                    yield Write(reached.event, path, reached.guards, owner)
            elif event.kind in ("fill", "assign"):
                yield Write(event, path, (), owner)


_BASE = "<base>"


def _base_hook(project: Project, convention: Convention) -> tuple[str, MethodFacts]:
    """The stack's base hook: from its source in the project, else the convention's copy."""
    hook = convention.hooks[0]
    for base in convention.bases:
        if project.has_class(base):
            found = project.find_method(base, hook)
            if found is not None:
                return found
    return _BASE, _copied_base(convention.base_source).methods[hook]


@cache
def _copied_base(source: str) -> ClassFacts:
    from bufferlint.extract import extract

    facts = extract(source, "<base>", "bufferlint.base")
    return facts.classes[0]


class Subject:
    """The module class a dispatcher is judged for, as its tests ask (guards.Subject), seen
    from the class whose hook wrote them: written names resolve in that class's file."""

    def __init__(self, project: Project, qualified: str, attributes: Collection[str]) -> None:
        self.project = project
        self.name = qualified.rpartition(".")[2]
        self.order = project.mro(qualified)
        self.attributes = attributes
        self.layers = {layer for layer in map(torch_class, self.order) if layer}
        self.names = {name.rpartition(".")[2] for name in self.order} | self.layers
        # Past an external base other than `nn.Module`, the class may have more ancestors
        # and attributes than its code shows.
        self.open = any(
            not project.has_class(name)
            and name not in NEUTRAL_BASES
            and name not in LIGHTNING_MODULES
            and torch_class(name) != _TORCH_MODULE
            for name in self.order[1:]
        )
        self.dispatcher = ""

    def seen_by(self, dispatcher: str) -> Subject:
        self.dispatcher = dispatcher
        return self

    def is_instance(self, written: str) -> bool | None:
        # A class of the MRO ends in the name written: resolving every other name the
        # dispatcher tests would parse classes that cannot matter.
        if written.rpartition(".")[2] in self.names:
            qualified = self.project.resolve_written(written, self.dispatcher)
            if qualified in self.order or torch_class(qualified) in self.layers:
                return True
        return None if self.open else False

    def has(self, attribute: str) -> bool | None:
        if attribute in self.attributes:
            return True
        return None if self.open else False


def attributes(project: Project, qualified: str) -> set[str]:
    """What instances of a class have, as far as its code shows: what construction sets,
    and the methods and properties of its project classes."""
    names = {r.event.name for r in project.reach(qualified, "__init__") if r.event.kind != "call"}
    for owner in project.mro(qualified):
        if project.has_class(owner):
            cls = project.class_facts(owner)[0]
            names.update(cls.methods, cls.setters)
    return names
