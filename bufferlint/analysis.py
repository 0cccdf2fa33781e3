"""Buffer accounting for one module class: what construction builds, what the
hook rebuilds after `to_empty()`, and which class the missing rebuilds belong to.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from bufferlint import cascade, dispatch, guards
from bufferlint.cascade import Holding
from bufferlint.conventions import Convention
from bufferlint.conventions.base import ROOT_ONLY
from bufferlint.guards import PathGuard
from bufferlint.model import Project, Reached

REBUILDING = ("assign", "fill", "register", "buffer")
# Without `to_empty()` a buffer is still on meta when the hook runs: filling it in place
# leaves it there, only a new tensor rebuilds it.
REPLACING = ("assign", "register", "buffer")


@dataclass(frozen=True)
class Built:
    name: str
    line: int
    persistent: bool
    owner: str  # qualified class whose code builds it
    path: str  # the file that holds that code


@dataclass(frozen=True)
class GuardedRebuild:
    name: str
    line: int
    condition: str  # the code of the guard that makes it unreliable


@dataclass
class ClassReport:
    qualified: str
    built: dict[str, Built] = field(default_factory=dict)
    rebuilt: set[str] = field(default_factory=set)
    guarded: dict[str, GuardedRebuild] = field(default_factory=dict)
    has_hook: bool | None = None
    defines_hook: bool = False
    judges: tuple[str, ...] = ()  # a dispatching convention's models whose hook was read
    # A root-only convention: the holders through which the root's hook never reaches the
    # class's (bufferlint.cascade), which then rebuilds nothing.
    unreached: tuple[Holding, ...] = ()
    # Persistent buffers a hook that runs after checkpoint loading writes (timm's
    # `init_non_persistent_buffers`), by line: a from-scratch rebuild, but the same write
    # overwrites a loaded value, so it does not count (Convention.after_loading).
    late: dict[str, int] = field(default_factory=dict)

    @property
    def missing(self) -> list[Built]:
        return [b for name, b in sorted(self.built.items()) if name not in self.rebuilt]


def blocking_guard(path: Sequence[PathGuard], buffers: set[str]) -> str | None:
    """The code of the first guard that keeps an event from running reliably."""
    for guard in path:
        value = guards.on_path(guard, guards.after_to_empty(guard.condition, buffers))
        if value in (guards.FALSE, guards.STATE):
            return guard.code if guard.polarity else f"not ({guard.code})"
    return None


def _built(project: Project, events: Iterator[Reached]) -> dict[str, Built]:
    """Buffers construction leaves holding values, not placeholders."""
    registered: dict[str, Reached] = {}
    built: dict[str, Built] = {}
    for reached in events:
        event = reached.event
        if event.kind in ("register", "buffer"):
            registered.setdefault(event.name, reached)
            if event.value != "computed" or event.name in built:
                continue
        elif event.kind not in ("assign", "fill") or event.name not in registered:
            continue
        if event.name not in built:
            site = registered[event.name]
            built[event.name] = Built(
                event.name,
                site.event.line,
                site.event.persistent,
                site.owner,
                project.classes[site.owner][1].path,
            )
    return built


def account(project: Project, qualified: str, convention: Convention) -> ClassReport:
    """What construction builds and what the convention's hooks rebuild, for one class."""
    report = ClassReport(qualified)
    if cascade.built_late(project, qualified, convention):
        return report  # built after materialization, on the device: never on meta
    report.built = _built(project, project.reach(qualified, "__init__"))
    if not convention.to_empty:  # persistent buffers come from the checkpoint
        report.built = {n: b for n, b in report.built.items() if not b.persistent}
    if convention.dispatches():
        report.has_hook = True  # the stack's base hook sees every module
        report.judges = dispatch.judges(project, qualified, convention)
        if report.built:
            rebuilt, guarded = dispatched_rebuilds(
                project, qualified, convention, set(report.built)
            )
            report.rebuilt |= rebuilt
            report.guarded.update(guarded)
        return report
    if not report.built:
        return report
    hooks = convention.hooks
    report.has_hook = project.has_hook(qualified, convention)
    report.defines_hook = any(h in project.classes[qualified][0].methods for h in hooks)
    names = set(report.built)
    kinds = REBUILDING if convention.to_empty else REPLACING
    for hook in hooks:
        for reached in project.reach(qualified, hook):
            event = reached.event
            if event.kind not in kinds or event.name not in names:
                continue
            if event.kind in ("register", "buffer") and event.value != "computed":
                continue
            if hook in convention.after_loading and report.built[event.name].persistent:
                report.late.setdefault(event.name, event.line)
                continue
            blocker = blocking_guard(reached.guards, names)
            if blocker is None:
                report.rebuilt.add(event.name)
            else:
                report.guarded.setdefault(
                    event.name, GuardedRebuild(event.name, event.line, blocker)
                )
    if convention.caller == ROOT_ONLY and report.has_hook:
        report.unreached = cascade.unreached(project, qualified, convention)
        if report.unreached:
            report.rebuilt, report.guarded = set(), {}
    return report


def dispatched_rebuilds(
    project: Project, qualified: str, convention: Convention, names: set[str]
) -> tuple[set[str], dict[str, GuardedRebuild]]:
    """The rebuilds of `names` under a dispatching convention: what the hooks of the models
    that may hold the class do to it, each branch taken or not as the class decides its
    tests; and the rebuilds a guard on the tensors' state makes unreliable. A holder's
    branch that writes the class's tensor through its attribute counts too
    (`init.zeros_(module.gate.bias)` under `isinstance(module, Router)`)."""
    rebuilt: set[str] = set()
    guarded: dict[str, GuardedRebuild] = {}
    through = _dispatched_into(project, qualified, "", convention, names, rebuilt, guarded)
    if through and names - rebuilt - set(guarded):
        for holder, attribute in _holders(project, qualified, through):
            prefix = f"{attribute}."
            _dispatched_into(project, holder, prefix, convention, names, rebuilt, guarded)
    return rebuilt, guarded


def _holders(
    project: Project, qualified: str, through: dict[str, set[tuple[str, str]] | None]
) -> list[tuple[str, str]]:
    """(holder, attribute): the classes holding the class at an attribute through which a
    hook writes a child's tensor. Those that the writes' `isinstance` tests name, where
    one of them builds it there; else the module classes of its own file, where a model's
    family keeps its modules (parsing them all is what a file of a hundred costs)."""
    found: list[tuple[str, str]] = []
    unnamed = set()
    for attribute, classes in through.items():
        tested = {project.resolve_written(name, where) for name, where in classes or ()}
        held = [
            holder
            for holder in sorted(tested)
            if project.has_class(holder)
            and attribute in cascade.held_at(project, holder, qualified)
        ]
        found.extend((holder, attribute) for holder in held)
        if not held:
            unnamed.add(attribute)
    if unnamed:
        found.extend(
            pair
            for pair in cascade.file_holdings(project, qualified)
            if pair[1] in unnamed and pair not in found
        )
    return found


def _dispatched_into(
    project: Project,
    qualified: str,
    prefix: str,
    convention: Convention,
    names: set[str],
    rebuilt: set[str],
    guarded: dict[str, GuardedRebuild],
) -> set[str]:
    """Adds what the dispatchers that see class `qualified` write to `module.<prefix><b>`;
    returns the attributes through which they write a child's tensor named as one of
    `names` (`module.gate.bias`: `gate`), each with the classes that the writes' branches
    test the module to be (None: some branch names none)."""
    through: dict[str, set[tuple[str, str]] | None] = {}
    judges = dispatch.judges(project, qualified, convention)
    subject = dispatch.Subject(project, qualified, dispatch.attributes(project, qualified))
    named = [m for m in dispatch.by_name(project, qualified, convention) if m not in judges]
    for judge in [*(judges or (None,)), *named]:
        for write in dispatch.writes(project, judge, qualified, convention):
            event = write.event
            name = event.name.removeprefix(prefix) if event.name.startswith(prefix) else ""
            if event.kind not in REBUILDING:
                continue
            if name not in names:
                child, dot, tail = name.partition(".")
                if dot and tail in names:
                    tested = _tested_classes(write)
                    known = through.setdefault(child, set())
                    through[child] = None if known is None or tested is None else known | tested
                continue
            if judge in named and not dispatch.named_branch(write.dispatch_guards, subject):
                continue  # a model from elsewhere reaches the class by its name alone
            seen = subject.seen_by(write.dispatcher)
            truths = [
                guards.on_path(g, guards.for_subject(g.condition, seen, names))
                for g in write.dispatch_guards
            ]
            if guards.FALSE in truths:
                continue  # a branch for other classes
            pairs = zip(write.dispatch_guards, truths, strict=True)
            blocker = next((g.code for g, t in pairs if t == guards.STATE), None)
            blocker = blocker or blocking_guard(write.own_guards, names)
            if blocker is None:
                rebuilt.add(name)
            else:
                guarded.setdefault(name, GuardedRebuild(name, event.line, blocker))
    return through


def _tested_classes(write: dispatch.Write) -> set[tuple[str, str]] | None:
    """The classes that the write's branch tests the module to be an instance of (the
    first `isinstance` test that must hold), as written in the dispatcher's class; None
    where it tests none. Resolved only if needed: resolving may parse."""
    for path in write.dispatch_guards:
        written = guards.instance_of(path.condition) if path.polarity else None
        if written is not None:
            return {(name, write.dispatcher) for name in written}
    return None


def attributable(report: ClassReport, parents: dict[str, ClassReport]) -> list[Built]:
    """Missing rebuilds that belong to this class rather than to a parent.

    A subclass that inherits both the buffer and the hook from a parent that
    already misses it is fixed by fixing the parent; one that defines its own
    hook must rebuild (or call super()) itself.
    """
    missing = report.missing
    if report.defines_hook:
        return missing
    out = []
    for built in missing:
        inherited = any(
            built.name in {m.name for m in parent.missing} and parent.built[built.name] == built
            for parent in parents.values()
        )
        if not inherited:
            out.append(built)
    return out
