"""Whether a root-only stack's hook reaches a layer (torchtitan 0.1.x): the trainer calls
only the root's `init_weights(buffer_device=...)`, and a layer's `init_weights` runs only
if the hook of a class that holds it calls it (`self.attention.init_weights(...)`, `for
layer in self.layers.values(): layer.init_weights(...)`), and so on up to a root. A class
that no class of the project holds is taken for a root. Modules following the later
protocol (`init_states`, `_init_self_buffers`) are reached by its automatic recursion.

The same constructions tell where a class is built: torchtune builds its KV caches only in
`setup_caches()`, under the device, after materialization."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from bufferlint.conventions import Convention
from bufferlint.model import Project, linted_importers, module_classes


@dataclass(frozen=True)
class Holding:
    """A class that holds the layer in `self.<attribute>`, and why its hook does not
    reach it: `calls` False, it does not call the layer's hook; True, it does, but
    nothing reaches its own."""

    holder: str
    attribute: str
    calls: bool


def unreached(project: Project, qualified: str, convention: Convention) -> tuple[Holding, ...]:
    """The holders through which the root's hook fails to reach the class; empty when it
    does, or when the convention or the class needs no cascade."""
    hook = convention.hooks[0]
    if project.find_method(qualified, hook) is None or _recurses(project, qualified, convention):
        return ()
    held = holdings(project, qualified)
    if not held:
        return ()
    found = []
    for holder, attribute in held:
        calls = _calls(project, holder, attribute, convention)
        if calls and _reached(project, holder, convention, {qualified}):
            return ()
        found.append(Holding(holder, attribute, calls))
    return tuple(found)


def reaches(project: Project, qualified: str, convention: Convention) -> bool:
    """Whether the root's hook reaches the class's own (a root's is the trainer's call)."""
    return _reached(project, qualified, convention, set())


def _reached(project: Project, qualified: str, convention: Convention, seen: set[str]) -> bool:
    if qualified in seen:
        return False
    held = holdings(project, qualified)
    if not held or _recurses(project, qualified, convention):
        return True
    seen = seen | {qualified}
    return any(
        _calls(project, holder, attribute, convention)
        and _reached(project, holder, convention, seen)
        for holder, attribute in held
    )


def _recurses(project: Project, qualified: str, convention: Convention) -> bool:
    """Whether the class follows the protocol whose `init_states` walks every module."""
    for owner in project.mro(qualified):
        if project.has_class(owner):
            if any(m in project.class_facts(owner)[0].methods for m in convention.defines):
                return True
        elif any(owner.startswith(marker) for marker in convention.markers):
            return True
    return False


def built_late(project: Project, qualified: str, convention: Convention) -> bool:
    """Whether only the stack's late builders (torchtune's `setup_caches`) construct the
    class: some does, and no other method of a class that holds it; or, where no
    construction is seen, they construct its base (a cache's subclass is a cache)."""
    if not convention.late_builders:
        return False
    methods = {method for _, _, method in _constructions(project, qualified)}
    if methods:
        return methods <= set(convention.late_builders)
    return any(
        project.has_class(base)
        and project.is_module(base)
        and built_late(project, base, convention)
        for base in project.bases(qualified)
    )


def holdings(project: Project, qualified: str) -> tuple[tuple[str, str], ...]:
    """(holder, attribute): the module classes whose methods construct the class into
    `self.<attribute>`, among the classes of its file and of the files importing it."""
    return tuple(sorted({(holder, attr) for holder, attr, _ in _constructions(project, qualified)}))


def file_holdings(project: Project, qualified: str) -> tuple[tuple[str, str], ...]:
    """`holdings` among the classes of the class's own file alone: what a caller that runs
    for many classes can afford (the importers of a widely used file are most files)."""
    found = _constructions(project, qualified, importers=False)
    return tuple(sorted({(holder, attr) for holder, attr, _ in found}))


def _constructions(
    project: Project, qualified: str, importers: bool = True
) -> tuple[tuple[str, str, str], ...]:
    """(holder, attribute, method): where the module classes of the class's file and (with
    `importers`) of the files importing it construct it into `self.<attribute>`."""
    key = ("constructions", qualified, importers)
    if key not in project.memo:
        module = project.classes[qualified][1].module
        found: set[tuple[str, str, str]] = set()
        others = linted_importers(project, module) if importers else ()
        for name in (module, *others):
            for holder in module_classes(project, name):
                if holder == qualified or not project.is_module(holder):
                    continue
                found.update((holder, a, m) for a, m in _built_at(project, holder, qualified))
        project.memo[key] = tuple(sorted(found))
    held = project.memo[key]
    assert isinstance(held, tuple)
    return held


def held_at(project: Project, holder: str, qualified: str) -> set[str]:
    """The attributes into which the methods of class `holder` construct the class."""
    return {attribute for attribute, _ in _built_at(project, holder, qualified)}


def _built_at(project: Project, holder: str, qualified: str) -> Iterator[tuple[str, str]]:
    """(attribute, method) for each construction of the class in the holder's methods."""
    for owner, method, attribute, written in children(project, holder):
        if class_named(project, written, owner) == qualified:
            yield attribute, method


def class_named(project: Project, written: str, where: str) -> str:
    """The class a dotted name in the code of class `where` refers to, through the file's
    imports as written (bases come qualified from the extractor; calls do not)."""
    head, _, rest = written.partition(".")
    target = project.classes[where][1].imports.get(head)
    if target is not None:
        return project.resolve(f"{target}.{rest}" if rest else target)
    return project.resolve_written(written, where)


def children(project: Project, qualified: str) -> Iterator[tuple[str, str, str, str]]:
    for owner in project.mro(qualified):
        if project.has_class(owner):
            for method in project.class_facts(owner)[0].methods.values():
                for attribute, written in method.children:
                    yield owner, method.name, attribute, written


def _calls(project: Project, holder: str, attribute: str, convention: Convention) -> bool:
    """Whether the holder's hook, or a method it calls, calls a hook on `self.<attribute>`
    or on the modules it holds."""
    start = project.find_method(holder, convention.hooks[0])
    todo = [start] if start is not None else []
    seen: set[tuple[str, str]] = set()
    while todo:
        owner, method = todo.pop()
        if (owner, method.name) in seen:
            continue
        seen.add((owner, method.name))
        if any(a == attribute and m in convention.hooks for a, m in method.descends):
            return True
        for event in method.events:
            if event.kind == "call":
                callee = project.find_method(holder, event.name)
            elif event.kind == "super":
                callee = project.find_method(holder, event.name, after=owner)
            else:
                continue
            if callee is not None:
                todo.append(callee)
    return False
