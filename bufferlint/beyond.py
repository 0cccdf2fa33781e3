"""Tensor accounting beyond buffers, for one module class: rebuilds the hook makes on the
default device, tensors construction keeps in plain attributes, computed constants held
in frozen parameters, and hooks that update a buffer relative to its garbage.

Each rule reads the same class model as BL001's accounting (bufferlint.analysis), under
the class's convention: the hooks and the helpers' device parameters are the
convention's, never named here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bufferlint import analysis
from bufferlint.analysis import Built, ClassReport
from bufferlint.conventions import Convention
from bufferlint.facts import FACTORY
from bufferlint.model import Project, Reached

BUFFER_EVENTS = ("register", "buffer")
REBUILDS = ("assign", "fill", "register", "buffer", "frozen")


@dataclass(frozen=True)
class WrongDevice:
    """A hook's rebuild of a buffer with a tensor made on the default device."""

    built: Built
    line: int
    column: int
    kind: str  # the rebuild's event kind: "assign", "register" or "buffer"
    code: str  # the value's code
    helper: str  # the `self` helper called without its device parameter, or ""
    parameter: str  # that helper's device parameter


@dataclass(frozen=True)
class Attribute:
    """A tensor that construction stores in a plain attribute."""

    site: Built
    column: int  # where the assignment's event is, for the fixer
    aliases: tuple[str, ...]  # the module's buffers or frozen parameters it is made from
    reassigned: tuple[int, ...]  # lines of other code that assigns the attribute


@dataclass(frozen=True)
class Update:
    """A hook statement that changes a buffer relative to its current value."""

    name: str
    line: int


@dataclass
class Tensors:
    """What the rules beyond buffers find in one class."""

    wrong_device: list[WrongDevice] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    frozen: list[Built] = field(default_factory=list)  # constants the hook does not rebuild
    guarded: dict[str, tuple[int, str]] = field(default_factory=dict)  # name -> line, guard
    has_hook: bool | None = None  # for the frozen parameters, as ClassReport.has_hook


def opens(project: Project, qualified: str) -> bool:
    """Whether construction reaches a tensor the rules judge: a buffer, a frozen
    parameter, or an attribute assigned a factory call (the prefilter parses exactly the
    statements that hold one, so both pipelines judge the same classes)."""
    return any(
        r.event.kind in (*BUFFER_EVENTS, "frozen")
        or (r.event.kind == "assign" and r.event.holds == FACTORY)
        for r in project.reach(qualified, "__init__")
    )


def account(
    project: Project, qualified: str, convention: Convention, report: ClassReport
) -> Tensors:
    """What the rules beyond buffers find in one class; `report` is its buffer accounting."""
    out = Tensors()
    construction = list(project.reach(qualified, "__init__"))
    hooks = [r for hook in convention.hooks for r in project.reach(qualified, hook)]
    own_hook = any(h in project.class_facts(qualified)[0].methods for h in convention.hooks)
    out.wrong_device = _wrong_device(project, qualified, convention, report, hooks)
    out.attributes = _attributes(project, qualified, construction)
    frozen = _frozen(project, qualified, construction)
    if frozen and convention.dispatches():
        out.has_hook = True
        rebuilt, guarded = analysis.dispatched_rebuilds(project, qualified, convention, set(frozen))
        out.guarded = {name: (g.line, g.condition) for name, g in guarded.items()}
        out.frozen = [site for name, site in sorted(frozen.items()) if name not in rebuilt]
    elif frozen:
        out.has_hook = project.has_hook(qualified, convention)
        rebuilt, out.guarded = _rebuilt(hooks, set(frozen))
        out.frozen = [
            site
            for name, site in sorted(frozen.items())
            if name not in rebuilt and (site.owner == qualified or own_hook)
        ]
    return out


def updates(
    project: Project, qualified: str, convention: Convention, names: Iterable[str]
) -> list[Update]:
    """The hooks' relative updates of `names` (`self.b += 1`, `self.b.mul_(2)`), first each."""
    wanted = set(names)
    found: dict[str, Update] = {}
    for hook in convention.hooks:
        for reached in project.reach(qualified, hook):
            event = reached.event
            if event.kind == "update" and event.name in wanted:
                found.setdefault(event.name, Update(event.name, event.line))
    return [found[name] for name in sorted(found)]


def _site(project: Project, reached: Reached, persistent: bool) -> Built:
    event = reached.event
    path = project.classes[reached.owner][1].path
    return Built(event.name, event.line, persistent, reached.owner, path)


def _wrong_device(
    project: Project,
    qualified: str,
    convention: Convention,
    report: ClassReport,
    hooks: list[Reached],
) -> list[WrongDevice]:
    names = set(report.built)
    found: dict[str, WrongDevice | None] = {}  # by buffer, what its last rebuild left
    for reached in hooks:
        event = reached.event
        if event.kind not in ("assign", *BUFFER_EVENTS) or event.name not in names:
            continue
        if event.kind in BUFFER_EVENTS and event.value != "computed":
            continue  # a placeholder: no rebuild at all, which is BL001's
        if analysis.blocking_guard(reached.guards, names) is not None:
            continue
        helper = parameter = ""
        if event.via:
            parameter = _device_parameter(project, qualified, convention, event.via, event.via_args)
            helper = event.via if parameter else ""
        wrong = (event.fresh or bool(helper)) and reached.owner == qualified
        # A later rebuild decides: the fixer's `self.b = saved.copy_(self.b)` puts the
        # buffer's own tensor back after a helper re-registered it.
        found[event.name] = (
            WrongDevice(
                report.built[event.name],
                event.line,
                event.column,
                event.kind,
                event.code,
                helper,
                parameter,
            )
            if wrong
            else None
        )
    return [w for _, w in sorted(found.items()) if w is not None]


def _device_parameter(
    project: Project, qualified: str, convention: Convention, helper: str, passed: int
) -> str:
    """The helper's device parameter when a call with `passed` positional arguments and
    no device keyword leaves it to its default; "" when it has none or gets one."""
    found = project.find_method(qualified, helper)
    if found is None or found[1].kind != "method":
        return ""
    params = found[1].params
    for name in convention.device_parameters:
        if name in params and params.index(name) >= passed:
            return name
    return ""


def _attributes(project: Project, qualified: str, construction: list[Reached]) -> list[Attribute]:
    tensors = {r.event.name for r in construction if r.event.kind in (*BUFFER_EVENTS, "frozen")}
    held: dict[str, Reached] = {}
    for reached in construction:
        event = reached.event
        if event.kind != "assign" or event.name in tensors or event.name in held:
            continue
        if project.find_method(qualified, event.name, setter=True) is not None:
            continue  # a property: the setter decides where the value goes
        if event.holds or any(a in tensors or a in held for a in event.aliases):
            held[event.name] = reached
    out = []
    for name, reached in sorted(held.items()):
        if reached.owner != qualified:
            continue  # reported on the class whose code stores it
        others = tuple(
            sorted(
                {
                    event.line
                    for owner in project.mro(qualified)
                    if project.has_class(owner)
                    for method in project.class_facts(owner)[0].methods.values()
                    for event in method.events
                    if event.kind == "assign" and event.name == name
                }
                - {reached.event.line}
            )
        )
        aliases = tuple(a for a in reached.event.aliases if a in tensors)
        site = _site(project, reached, False)
        out.append(Attribute(site, reached.event.column, aliases, others))
    return out


def _frozen(project: Project, qualified: str, construction: list[Reached]) -> dict[str, Built]:
    """Frozen parameters that construction fills with a value it computes."""
    out: dict[str, Built] = {}
    for reached in construction:
        event = reached.event
        if event.kind == "frozen" and event.value == "computed":
            out.setdefault(event.name, _site(project, reached, True))
    return out


def _rebuilt(hooks: list[Reached], names: set[str]) -> tuple[set[str], dict[str, tuple[int, str]]]:
    rebuilt: set[str] = set()
    guarded: dict[str, tuple[int, str]] = {}
    for reached in hooks:
        event = reached.event
        if event.kind not in REBUILDS or event.name not in names:
            continue
        blocker = analysis.blocking_guard(reached.guards, names)
        if blocker is None:
            rebuilt.add(event.name)
        else:
            guarded.setdefault(event.name, (event.line, blocker))
    return rebuilt, guarded
