"""Guards: the conditions above an event, reduced to what materialization changes about
them, and their truth after `to_empty()` and while construction runs.

Guards travel inside the facts (to worker processes and the on-disk cache), so they are
small frozen dataclasses, and this module imports no LibCST. `bufferlint.conditions`
reads them from the code.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class HasAttr:
    """`hasattr(self, "name")` (or `getattr(self, "name", ...)`)."""

    name: str


@dataclass(frozen=True)
class IsNone:
    """`self.name is None` (`is not None` is its `Not`)."""

    name: str


@dataclass(frozen=True)
class IsMeta:
    """`self.name.is_meta`, `self.name.device.type == "meta"` and the like."""

    name: str


@dataclass(frozen=True)
class ReadsState:
    """A test that reads the tensor's state: `self.name.size(0) != n`, `len(self.name)`."""

    name: str


@dataclass(frozen=True)
class IsInstance:
    """`isinstance(module, (A, B))` in a dispatcher: the classes as written, qualified
    through the file's imports; resolved against the judged class later."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class ClassName:
    """`"Rotary" in module.__class__.__name__` (or `== "Name"` when `exact`)."""

    text: str
    exact: bool = False


@dataclass(frozen=True)
class AllOf:
    """`a and b and ...`, flat however long the chain."""

    parts: tuple[Guard, ...]


@dataclass(frozen=True)
class AnyOf:
    """`a or b or ...`, flat however long the chain."""

    parts: tuple[Guard, ...]


@dataclass(frozen=True)
class Not:
    operand: Guard


@dataclass(frozen=True)
class Opaque:
    """Any other test: it depends on configuration, not on buffers."""

    code: str


Guard = (
    HasAttr | IsNone | IsMeta | ReadsState | IsInstance | ClassName | AllOf | AnyOf | Not | Opaque
)


@dataclass(frozen=True)
class PathGuard:
    """A guard on the path to an event: the condition, whether the event's branch needs
    it to hold (the `if` body) or not to (its `else`), and the test's code."""

    condition: Guard
    polarity: bool
    code: str


# The truth of a guard: certain (TRUE, FALSE), dependent on a tensor's state (STATE: after
# `to_empty()` that state is garbage, during construction it is not known statically), or
# on configuration only (CONFIG, which is trusted).
Truth = Literal["true", "false", "state", "config"]
TRUE: Truth = "true"
FALSE: Truth = "false"
STATE: Truth = "state"
CONFIG: Truth = "config"


def instance_of(guard: Guard) -> tuple[str, ...] | None:
    """The classes (as written) of which the module must be an instance when the guard
    holds; None when it does not say."""
    if isinstance(guard, IsInstance):
        return guard.names
    if isinstance(guard, AllOf):
        return next((n for n in map(instance_of, guard.parts) if n is not None), None)
    if isinstance(guard, AnyOf):
        parts = [instance_of(part) for part in guard.parts]
        return None if None in parts else tuple(n for names in parts for n in names or ())
    return None


def negate(value: Truth) -> Truth:
    """The truth of `not` a condition of this truth."""
    if value == TRUE:
        return FALSE
    if value == FALSE:
        return TRUE
    return value


def on_path(guard: PathGuard, value: Truth) -> Truth:
    """Whether the event's branch runs, given the truth of its condition."""
    return value if guard.polarity else negate(value)


def after_to_empty(guard: Guard, buffers: Collection[str]) -> Truth:
    """Whether a condition holds after `to_empty()`, where `buffers` exist as tensors."""
    kind = type(guard)
    if kind is HasAttr:
        return TRUE if guard.name in buffers else CONFIG
    if kind is IsNone:
        return FALSE if guard.name in buffers else CONFIG
    if kind is IsMeta:
        return FALSE
    if kind is ReadsState:
        return STATE
    if kind is Not:
        return negate(after_to_empty(guard.operand, buffers))
    if kind is AllOf or kind is AnyOf:
        return _combine(kind, [after_to_empty(part, buffers) for part in guard.parts])
    return CONFIG


class Subject(Protocol):
    """The module class a dispatcher is judged for: what its tests ask of it."""

    name: str  # the class name, as `module.__class__.__name__` gives it

    def is_instance(self, written: str) -> bool | None:
        """Whether it derives from the class written `written`; None when unknown."""

    def has(self, attribute: str) -> bool | None:
        """Whether instances have `attribute`; None when unknown."""


def for_subject(guard: Guard, subject: Subject, buffers: Collection[str]) -> Truth:
    """Whether a dispatcher's test on its module argument holds for `subject` after
    `to_empty()`: identity tests are decided by the class, the rest as `after_to_empty`."""
    kind = type(guard)
    if kind is IsInstance:
        answers = [subject.is_instance(name) for name in guard.names]
        return TRUE if True in answers else FALSE if all(a is False for a in answers) else CONFIG
    if kind is ClassName:
        found = guard.text == subject.name if guard.exact else guard.text in subject.name
        return TRUE if found else FALSE
    if kind is HasAttr:
        has = subject.has(guard.name)
        return CONFIG if has is None else TRUE if has else FALSE
    if kind is Not:
        return negate(for_subject(guard.operand, subject, buffers))
    if kind is AllOf or kind is AnyOf:
        return _combine(kind, [for_subject(part, subject, buffers) for part in guard.parts])
    return after_to_empty(guard, buffers)


def during_construction(
    guard: Guard, registered: Mapping[str, str], buffers: Collection[str]
) -> Truth:
    """What a condition was while construction ran, given the buffers registered so far
    (by name, with the value they were registered with: "none" for `None`)."""
    kind = type(guard)
    if kind is HasAttr:
        if guard.name not in buffers:
            return CONFIG
        return TRUE if guard.name in registered else FALSE
    if kind is IsNone:
        if guard.name not in buffers:
            return CONFIG
        if guard.name not in registered:
            return STATE
        return TRUE if registered[guard.name] == "none" else FALSE
    if kind is IsMeta or kind is ReadsState:
        return STATE
    if kind is Not:
        return negate(during_construction(guard.operand, registered, buffers))
    if kind is AllOf or kind is AnyOf:
        values = [during_construction(part, registered, buffers) for part in guard.parts]
        return _combine(kind, values)
    return CONFIG


def _combine(kind: type, values: list[Truth]) -> Truth:
    """The truth of `and` (AllOf) or `or` (AnyOf) over its operands' truths."""
    decisive, neutral = (FALSE, TRUE) if kind is AllOf else (TRUE, FALSE)
    if decisive in values:
        return decisive
    if STATE in values:
        return STATE
    return neutral if all(value == neutral for value in values) else CONFIG


def reads_buffers(guard: Guard, buffers: Collection[str]) -> bool:
    """Whether a condition looks at any of `buffers` (their existence or their state)."""
    kind = type(guard)
    if kind is HasAttr or kind is IsNone or kind is IsMeta or kind is ReadsState:
        return guard.name in buffers
    if kind is Not:
        return reads_buffers(guard.operand, buffers)
    if kind is AllOf or kind is AnyOf:
        return any(reads_buffers(part, buffers) for part in guard.parts)
    return False
