"""Construction as it runs: every event `__init__` reaches, in order, with the calls
that led to it. The rules only need the events; a rebuild also needs to know which
method to replay and whether a branch ran at construction time.
"""

from __future__ import annotations

from dataclasses import dataclass

from bufferlint import guards
from bufferlint.conventions import Convention
from bufferlint.facts import Event, MethodFacts
from bufferlint.guards import CONFIG, FALSE, STATE, TRUE, PathGuard, Truth
from bufferlint.model import Project, torch_class

# A frozen parameter (`nn.Parameter(t, requires_grad=False)`) is rebuilt as a buffer is.
REGISTERING = ("register", "buffer", "frozen")
# An update (`self.b.mul_(2)`, `self.b += 1`) after construction built the buffer is
# replayed as a fill is.
BUILDING = (*REGISTERING, "assign", "fill", "update")


@dataclass(frozen=True)
class Step:
    """One event of construction, with the caller guards and calls that led to it."""

    event: Event
    owner: str  # qualified class whose code holds the event
    method: MethodFacts
    caller_guards: tuple[PathGuard, ...]
    via: tuple[Step, ...]  # the call steps that led here, outermost first
    index: int

    @property
    def guards(self) -> tuple[PathGuard, ...]:
        return self.caller_guards + self.event.guards

    @property
    def replayable(self) -> bool:
        """Whether the method's statements can be replayed in the hook: only `__init__`
        and property setters run with arguments the class can recover from `self`."""
        return self.method.name == "__init__" or self.method.kind == "setter"


def construction(project: Project, qualified: str) -> list[Step]:
    """Every event that constructing `qualified` can run, in execution order."""
    steps: list[Step] = []
    found = project.find_method(qualified, "__init__")
    if found is not None:
        _walk(project, qualified, found[0], found[1], (), (), set(), steps)
    return steps


def _callee(project: Project, cls: str, owner: str, event: Event) -> tuple[str, MethodFacts] | None:
    if event.kind == "call":
        return project.find_method(cls, event.name)
    if event.kind == "super":
        return project.find_method(cls, event.name, after=owner)
    if event.kind == "assign":
        return project.find_method(cls, event.name, setter=True)
    if event.kind == "explicit":
        target = project.resolve(event.target)
        order = project.mro(cls)
        if target in project.classes and target in order:
            position = order.index(target)
            return project.find_method(
                cls, event.name, after=order[position - 1] if position else None
            )
    return None


def _walk(
    project: Project,
    cls: str,
    owner: str,
    method: MethodFacts,
    guards: tuple[PathGuard, ...],
    via: tuple[Step, ...],
    seen: set[tuple[str, str, bool]],
    out: list[Step],
) -> None:
    key = (owner, method.name, method.kind == "setter")
    if key in seen:
        return
    seen.add(key)
    for event in method.events:
        step = Step(event, owner, method, guards, via, len(out))
        out.append(step)
        callee = _callee(project, cls, owner, event)
        if callee is not None and callee[1].kind in ("method", "setter"):
            _walk(project, cls, callee[0], callee[1], step.guards, (*via, step), seen, out)


def hook_calls(
    project: Project, qualified: str, steps: list[Step], hook: str, convention: Convention
) -> list[int]:
    """Indices of the steps at which construction runs `hook`, also implicitly: torch's
    layers call the hook they define from their own `__init__`."""
    found = []
    for step in steps:
        event = step.event
        if event.kind not in ("call", "super", "explicit"):
            continue
        if event.name == hook:
            found.append(step.index)
        elif event.name == "__init__" and event.kind != "call" and hook == convention.layer_hook:
            if _callee(project, qualified, step.owner, event) is None and _torch_layer_after(
                project, qualified, step.owner, convention
            ):
                found.append(step.index)
    return found


def _torch_layer_after(
    project: Project, qualified: str, owner: str, convention: Convention
) -> bool:
    order = project.mro(qualified)
    rest = order[order.index(owner) + 1 :] if owner in order else order
    return any(convention.layer_defines_hook(torch_class(name) or "") for name in rest)


def combine(values: list[Truth]) -> Truth:
    """The value of a path from its guards' values: FALSE beats STATE beats CONFIG."""
    for value in (FALSE, STATE, CONFIG):
        if value in values:
            return value
    return TRUE


def guard_values(steps: list[Step]) -> dict[int, list[Truth]]:
    """For every step, the value each guard on its path had when its test ran.

    A test runs once, before the statements under it: `if not hasattr(self, "cos")`
    stays true for the `register_buffer("sin", ...)` after `register_buffer("cos", ...)`
    in the same branch, so a guard keeps the value it had at the first step under it.
    """
    buffers = {s.event.name for s in steps if s.event.kind in REGISTERING}
    registered: dict[str, str] = {}
    open_guards: list[tuple[PathGuard, Truth]] = []  # the guards of the branch being run
    out: dict[int, list[Truth]] = {}
    for step in steps:
        path = step.guards
        depth = 0
        while (
            depth < len(open_guards) and depth < len(path) and open_guards[depth][0] == path[depth]
        ):
            depth += 1
        del open_guards[depth:]
        for guard in path[depth:]:
            value = guards.during_construction(guard.condition, registered, buffers)
            open_guards.append((guard, guards.on_path(guard, value)))
        out[step.index] = [value for _, value in open_guards]
        if step.event.kind in REGISTERING and combine(out[step.index]) != FALSE:
            registered[step.event.name] = step.event.value
    return out


@dataclass
class Building:
    """The steps that give one buffer its value during construction, in order."""

    name: str
    steps: list[Step]
    skipped: list[Step]  # building steps under a condition on tensor state


def buildings(steps: list[Step]) -> dict[str, Building]:
    """For every buffer, the construction steps a rebuild must replay.

    An unconditional allocation or assignment starts over; fills add to it. Steps in a
    branch construction cannot have taken (`hasattr` of a buffer not registered yet) are
    dropped, and steps that depend on a tensor's state are set aside.
    """
    buffers = {s.event.name for s in steps if s.event.kind in REGISTERING}
    values = guard_values(steps)
    registered: set[str] = set()
    out: dict[str, Building] = {}
    for step in steps:
        event = step.event
        if event.kind not in BUILDING or event.name not in buffers:
            continue
        status = combine(values[step.index])
        if status == FALSE:
            continue
        building = out.setdefault(event.name, Building(event.name, [], []))
        if status == STATE:
            building.skipped.append(step)
            continue
        certain = status == TRUE
        if event.kind in REGISTERING:
            registered.add(event.name)
            if event.value == "computed":
                building.steps = [step] if certain else [*building.steps, step]
            elif certain:  # a placeholder, or the caller's tensor: only fills after it count
                building.steps = []
        elif event.name in registered:
            if event.kind == "assign":
                building.steps = [step] if certain else [*building.steps, step]
            else:
                building.steps.append(step)
    return out


def parameter_buildings(
    steps: list[Step], qualified: str, buffers: frozenset[str]
) -> dict[str, list[Step]]:
    """For each attribute that the class's own replayable construction code assigns
    (a parameter, when its value is an `nn.Parameter`), the last unconditional
    assignment and the fills after it."""
    out: dict[str, list[Step]] = {}
    for step in steps:
        event = step.event
        if step.owner != qualified or not step.replayable or event.name in buffers:
            continue
        if event.kind == "assign" and not step.guards:
            out[event.name] = [step]
        elif event.kind == "fill" and event.name in out:
            out[event.name].append(step)
    return out
