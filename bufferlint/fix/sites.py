"""Where a construction step's code is, for a rebuild that replays it: the method it
runs in, its statement, and which of the `if`s around it the hook keeps.
"""

from __future__ import annotations

import libcst as cst

from bufferlint import guards
from bufferlint.fix import trace
from bufferlint.fix.replay import MethodScope, Unavailable, if_chain, reads
from bufferlint.fix.workspace import Workspace
from bufferlint.syntax import argument
from bufferlint.walk import descendants


class Sites:
    """The code of one class's construction steps, as the class's instances run it."""

    def __init__(
        self,
        workspace: Workspace,
        qualified: str,
        steps: list[trace.Step],
        buffers: frozenset[str],
    ) -> None:
        self.workspace = workspace
        self.qualified = qualified  # `self.attr` resolves on this class
        self.values = trace.guard_values(steps)
        self.buffers = buffers
        self.steps = steps

    def scope(self, step: trace.Step) -> MethodScope:
        """The method `step` runs in, read once per class and method."""
        located = self.workspace.method_node(step.owner, step.method)
        if located is None:
            raise Unavailable(f"bufferlint cannot read `{step.method.name}` of `{step.owner}`")
        index, node = located
        key = ("scope", self.qualified, id(node))
        if key not in self.workspace.memo:
            project = self.workspace.project
            self.workspace.memo[key] = MethodScope.of(
                index,
                node,
                lambda attr: (
                    project.find_method(self.qualified, attr) is None
                    and project.find_method(self.qualified, attr, setter=True) is None
                ),
            )
        scope = self.workspace.memo[key]
        assert isinstance(scope, MethodScope)
        return scope

    def locate(
        self, step: trace.Step, scope: MethodScope
    ) -> tuple[cst.CSTNode, cst.BaseSmallStatement]:
        """The node `step`'s event was recorded for, and the small statement holding it."""
        event = step.event
        node = scope.index.event_node(event.line, event.column, event.kind, event.name)
        small = scope.index.statement_of(node) if node is not None else None
        if node is None or small is None:
            raise Unavailable(f"bufferlint cannot find the code at line {event.line}")
        return node, small

    def chain(
        self, step: trace.Step, scope: MethodScope, small: cst.BaseSmallStatement
    ) -> dict[int, bool]:
        """Which `if`s around `small` (by id) the hook must keep (True) or drop (False)."""
        values = self.values[step.index]
        callers = len(step.caller_guards)
        if trace.combine(values[:callers]) != guards.TRUE:
            raise Unavailable(
                f"line {step.event.line} runs only under a condition in the code that calls "
                f"`{step.method.name}`"
            )
        chain = if_chain(scope.index, small, scope.node)
        path = step.event.guards
        if len(chain) != len(path):
            raise Unavailable(
                f"bufferlint cannot follow the conditions around line {step.event.line}"
            )
        keep: dict[int, bool] = {}
        for (node, _), guard, value in zip(chain, path, values[callers:], strict=True):
            if value == guards.TRUE:
                keep[id(node)] = False
            elif value == guards.CONFIG and not guards.reads_buffers(guard.condition, self.buffers):
                keep[id(node)] = True
            else:
                raise Unavailable(f"line {step.event.line} runs only if `{guard.code}`")
        return keep

    def nullable(self, name: str, mirrored: bool = True) -> bool:
        """Whether construction can leave buffer `name` as `None` where it rebuilds it:
        registered as `None` or from a value that may be `None` (`m if shift else None`, a
        local set to `None` on another branch), or set to `None` (`self.b = None`) after a
        registration; when the rebuild runs under the registration's own tests
        (`mirrored`), not by one on another branch of them."""
        registering = [
            s for s in self.steps if s.event.name == name and s.event.kind in ("register", "buffer")
        ]
        for step in self.steps:
            event = step.event
            if event.name != name or event.kind not in ("register", "buffer", "assign"):
                continue
            try:
                scope = self.scope(step)
                node, small = self.locate(step, scope)
            except Unavailable:
                if event.value == "none":
                    return True
                continue
            if event.kind == "assign":  # `self.b = None` after `register_buffer("b", t)`
                value = small.value if isinstance(small, (cst.Assign, cst.AnnAssign)) else None
                maybe = value is not None and _may_be_none(value, scope.node, set())
                if maybe and any(
                    r.index < step.index and not (mirrored and self._exclusive(r, small))
                    for r in registering
                ):
                    return True
                continue
            value = argument(node, 1, "tensor") if isinstance(node, cst.Call) else None
            if event.value == "none" or (
                value is not None and _may_be_none(value, scope.node, set())
            ):
                return True
        return False

    def sets_none(self, step: trace.Step) -> bool:
        """Whether an assignment step is `self.b = None`, which leaves nothing to rebuild."""
        if step.event.kind != "assign":
            return False
        try:
            _, small = self.locate(step, self.scope(step))
        except Unavailable:
            return False
        value = small.value if isinstance(small, (cst.Assign, cst.AnnAssign)) else None
        return _is_none(value)

    def _exclusive(self, step: trace.Step, small: cst.BaseSmallStatement) -> bool:
        """Whether `step` and statement `small` (of the same method) lie on different
        branches of one `if`, so that one never runs after the other."""
        try:
            scope = self.scope(step)
            _, other = self.locate(step, scope)
            ours = dict((id(n), p) for n, p in if_chain(scope.index, other, scope.node))
            theirs = if_chain(scope.index, small, scope.node)
        except Unavailable:
            return False
        return any(id(n) in ours and ours[id(n)] != p for n, p in theirs)

    def may_be_absent(self, name: str) -> bool:
        """Whether a `return` before the registration of buffer `name` (`if not use_xpos:
        return`) can end construction without it."""
        for step in self.steps:
            event = step.event
            if event.name != name or event.kind not in ("register", "buffer"):
                continue
            try:
                scope = self.scope(step)
            except Unavailable:
                return True
            for node in descendants(
                scope.node, cst.Return, (cst.FunctionDef, cst.ClassDef, cst.Lambda)
            ):
                if scope.index.line_of(node) < event.line:
                    return True
        return False


def _is_none(node: cst.CSTNode | None) -> bool:
    return isinstance(node, cst.Name) and node.value == "None"


def _may_be_none(value: cst.BaseExpression, function: cst.FunctionDef, seen: set[str]) -> bool:
    if _is_none(value):
        return True
    if isinstance(value, cst.IfExp):
        tested = _tested_for_none(value.test)  # `m if m is not None else t`
        body = tested is None or tested != (False, _name(value.body))
        orelse = tested is None or tested != (True, _name(value.orelse))
        return (body and _may_be_none(value.body, function, seen)) or (
            orelse and _may_be_none(value.orelse, function, seen)
        )
    if isinstance(value, cst.Name) and value.value not in seen:
        seen.add(value.value)
        for node in descendants(function, cst.Assign, (cst.FunctionDef, cst.ClassDef)):
            targets = [t.target for t in node.targets]
            if any(isinstance(t, cst.Name) and t.value == value.value for t in targets):
                if _may_be_none(node.value, function, seen):
                    return True
    return False


def _name(node: cst.BaseExpression) -> str | None:
    return node.value if isinstance(node, cst.Name) else None


def _tested_for_none(test: cst.BaseExpression) -> tuple[bool, str] | None:
    """(True, "m") for `m is None`, (False, "m") for `m is not None`."""
    if not (isinstance(test, cst.Comparison) and len(test.comparisons) == 1):
        return None
    compared = test.comparisons[0]
    name = _name(test.left)
    if name is None or not _is_none(compared.comparator):
        return None
    if isinstance(compared.operator, cst.Is):
        return True, name
    if isinstance(compared.operator, cst.IsNot):
        return False, name
    return None


def present(value: cst.BaseExpression) -> cst.BaseExpression:
    """`v if flag else None` is `v` where the buffer is not None, as the guard ensures."""
    if isinstance(value, cst.IfExp):
        if _is_none(value.orelse):
            return value.body
        if _is_none(value.body):
            return value.orelse
    return value


def test_reads(
    scope: MethodScope, small: cst.BaseSmallStatement, keep: dict[int, bool]
) -> set[str]:
    """The names that the tests of the kept `if`s around `small` read."""
    out: set[str] = set()
    for node, _ in if_chain(scope.index, small, scope.node):
        if keep.get(id(node)):
            out |= reads(node.test)
    return out
