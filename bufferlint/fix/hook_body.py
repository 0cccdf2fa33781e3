"""The statements a hook gets to rebuild buffers, derived from the construction steps
that built them (bufferlint.fix.plan describes the rewrites).
"""

from __future__ import annotations

import itertools

import libcst as cst

from bufferlint.fix import trace
from bufferlint.fix.device import PassDevice
from bufferlint.fix.factories import constant_rebuild
from bufferlint.fix.free_names import FreeNames
from bufferlint.fix.index import SourceIndex
from bufferlint.fix.purity import SideEffects, Where
from bufferlint.fix.replay import (
    MethodScope,
    Unavailable,
    binds,
    definitions,
    if_chain,
    reads,
    self_attribute,
    substitute,
)
from bufferlint.fix.sites import Sites, test_reads
from bufferlint.fix.workspace import Workspace
from bufferlint.syntax import argument

# Chain element kept around a replayed statement: (id of the `if`, polarity, its test).
ChainItem = tuple[int, bool, cst.BaseExpression]


class HookBody:
    """Collects the hook's statements for the buffers of one class, in construction order."""

    def __init__(
        self,
        workspace: Workspace,
        qualified: str,
        index: SourceIndex,
        self_name: str,
        effects: SideEffects,
        steps: list[trace.Step],
        buffers: frozenset[str],
    ) -> None:
        self.workspace = workspace
        self.qualified = qualified
        self.index = index  # the file the hook is in
        self.self_name = self_name
        self.effects = effects
        self.steps = steps
        self.buffers = buffers
        self.sites = Sites(workspace, qualified, steps, buffers)
        self.free_names = FreeNames(workspace, index, self_name)
        self.items: list[tuple[tuple[ChainItem, ...], cst.BaseSmallStatement]] = []
        self.done: set[int] = set()  # ids of the statements already replayed
        self.recalled: set[int] = set()  # indices of the helper calls already replayed
        self.reasons: list[str] = []

    @property
    def imports(self) -> dict[str, str]:
        """Names the hook's file must import: local name -> qualified name."""
        return self.free_names.imports

    def add(self, step: trace.Step, name: str) -> None:
        """Adds what rebuilds buffer `name` as construction step `step` built it."""
        if step.replayable:
            self._inline(step, name)
            return
        via = next((v for v in reversed(step.via) if v.replayable), None)
        if via is None:
            raise Unavailable(f"`{name}` is built by a helper that construction reaches oddly")
        self._recall(via, name)

    def statements(self) -> list[cst.BaseStatement]:
        """The hook's new statements, under the `if`s they keep."""
        out: list[cst.BaseStatement] = []
        for _, group in itertools.groupby(self.items, key=lambda item: _chain_key(item[0])):
            items = list(group)
            lines: list[cst.BaseStatement] = [
                cst.SimpleStatementLine(body=[small]) for _, small in items
            ]
            for _, polarity, test in reversed(items[0][0]):
                condition = test if polarity else _negate(test)
                lines = [cst.If(test=condition, body=cst.IndentedBlock(body=lines))]
            out.extend(lines)
        return out

    def _inline(self, step: trace.Step, name: str) -> None:
        """Replays the step's own statement: a fill as it is, a value copied in place."""
        scope = self.sites.scope(step)
        node, small = self.sites.locate(step, scope)
        if id(small) in self.done:
            return
        self.done.add(id(small))
        keep = self.sites.chain(step, scope, small)
        kind = step.event.kind
        target = self_attribute(self.self_name, name)
        rerun: list[cst.CSTNode] = []  # original code the hook re-runs, judged for effects
        if kind in ("fill", "update"):
            generated = [small]
            rerun.append(small)
        elif kind == "assign" and isinstance(small, cst.Assign) and _is_tuple_target(small):
            generated = self._unpack(small, scope)
            rerun.append(small.value)
        else:
            value = _built_value(kind, node, small)
            if value is None:
                raise Unavailable(
                    f"bufferlint cannot read the value built at line {step.event.line}"
                )
            constant = constant_rebuild(value, scope, small, target, self.index)
            if constant is None:
                rerun.append(value)
                copy = cst.Call(
                    func=cst.Attribute(value=target, attr=cst.Name("copy_")),
                    args=[cst.Arg(value=value)],
                )
                generated = [cst.Expr(copy)]
            else:
                generated = [cst.Expr(constant)]
                rerun.append(constant)
        needed: set[str] = set()
        for statement in generated:
            needed |= reads(statement)
        needed |= test_reads(scope, small, keep)
        self._emit(step, scope, small, keep, generated, needed, rerun, frozenset({name}), name)

    def _unpack(self, small: cst.Assign, scope: MethodScope) -> list[cst.BaseSmallStatement]:
        """`self.cos, self.sin = v` -> `cos, sin = v` then in-place copies."""
        taken = reads(small) | scope.locals
        copies: list[cst.BaseSmallStatement] = []

        def local(element: cst.BaseExpression) -> cst.BaseExpression:
            if (
                isinstance(element, cst.Attribute)
                and isinstance(element.value, cst.Name)
                and element.value.value == scope.self_name
            ):
                attr = element.attr.value
                if attr not in self.buffers:
                    return cst.Name("_")
                fresh = _fresh(attr, taken)
                taken.add(fresh)
                copy = cst.Call(
                    func=cst.Attribute(
                        value=self_attribute(self.self_name, attr), attr=cst.Name("copy_")
                    ),
                    args=[cst.Arg(cst.Name(fresh))],
                )
                copies.append(cst.Expr(copy))
                return cst.Name(fresh)
            if isinstance(element, (cst.Tuple, cst.List)):
                return element.with_changes(
                    elements=[e.with_changes(value=local(e.value)) for e in element.elements]
                )
            return element

        targets = [t.with_changes(target=local(t.target)) for t in small.targets]
        return [small.with_changes(targets=targets), *copies]

    def _recall(self, via: trace.Step, name: str) -> None:
        """Calls the helper that built the buffers again and copies its results back into
        the buffers' existing tensors."""
        if via.index in self.recalled:
            return
        self.recalled.add(via.index)
        scope = self.sites.scope(via)
        _, small = self.sites.locate(via, scope)
        keep = self.sites.chain(via, scope, small)
        under = [
            s.event.name
            for s in self.steps
            if via in s.via and s.event.kind in trace.BUILDING and s.event.name in self.buffers
        ]
        names = list(dict.fromkeys(under)) or [name]
        taken = reads(small) | binds(small) | scope.locals
        saved: dict[str, str] = {}
        for buffer in names:
            saved[buffer] = _fresh(buffer, taken)
            taken.add(saved[buffer])
        before = [
            cst.Assign(
                targets=[cst.AssignTarget(cst.Name(saved[b]))],
                value=self_attribute(self.self_name, b),
            )
            for b in names
        ]
        after = [
            cst.Assign(
                targets=[cst.AssignTarget(self_attribute(self.self_name, b))],
                value=cst.Call(
                    func=cst.Attribute(value=cst.Name(saved[b]), attr=cst.Name("copy_")),
                    args=[cst.Arg(self_attribute(self.self_name, b))],
                ),
            )
            for b in names
        ]
        needed = reads(small) | test_reads(scope, small, keep)
        generated = [*before, small, *after]
        self._emit(via, scope, small, keep, generated, needed, [small], frozenset(names), None)

    def _emit(
        self,
        step: trace.Step,
        scope: MethodScope,
        small: cst.BaseSmallStatement,
        keep: dict[int, bool],
        generated: list[cst.BaseSmallStatement],
        needed: set[str],
        rerun: list[cst.CSTNode],
        allowed: frozenset[str],
        device_for: str | None,
    ) -> None:
        """Adds the definitions `generated` needs, then `generated`, renamed for the hook."""
        defs, unresolved = definitions(scope, small, needed)
        mapping = self.free_names.mapping(scope, unresolved, [*defs, small])
        where = Where(scope.index, scope.self_name, step.owner, allowed, frozenset(scope.locals))
        tests = [
            node.test for node, _ in if_chain(scope.index, small, scope.node) if keep[id(node)]
        ]
        judged = [
            *(d for d in defs if id(d) not in self.done),
            *rerun,
            *(cst.Expr(t) for t in tests),
        ]
        self.reasons += self.effects.of_statements(
            [n if isinstance(n, cst.BaseSmallStatement) else cst.Expr(n) for n in judged], where
        )
        for definition in defs:
            if id(definition) in self.done:
                continue
            self.done.add(id(definition))
            chain = self._kept_chain(scope, definition, keep, mapping)
            self.items.append((chain, self._rename(definition, mapping, device_for)))
        chain = self._kept_chain(scope, small, keep, mapping)
        for statement in generated:
            self.items.append((chain, self._rename(statement, mapping, None)))

    def _kept_chain(
        self,
        scope: MethodScope,
        small: cst.BaseSmallStatement,
        keep: dict[int, bool],
        mapping: dict[str, cst.BaseExpression],
    ) -> tuple[ChainItem, ...]:
        out = []
        for node, polarity in if_chain(scope.index, small, scope.node):
            if node.test is None or id(node) not in keep:
                raise Unavailable(f"bufferlint cannot follow the conditions in `{scope.name}`")
            if keep[id(node)]:
                test = substitute(node.test, mapping)
                out.append((id(node), polarity, test))
        return tuple(out)

    def _rename(
        self,
        statement: cst.BaseSmallStatement,
        mapping: dict[str, cst.BaseExpression],
        device_for: str | None,
    ) -> cst.BaseSmallStatement:
        renamed = substitute(statement, mapping)
        if device_for is not None:
            renamed = renamed.visit(
                PassDevice(self.workspace, self.qualified, self.self_name, device_for)
            )
        assert isinstance(renamed, cst.BaseSmallStatement)
        return renamed.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)


def _built_value(
    kind: str, node: cst.CSTNode, small: cst.BaseSmallStatement
) -> cst.BaseExpression | None:
    if kind == "register" and isinstance(node, cst.Call):
        return argument(node, 1, "tensor")
    if kind == "frozen" and isinstance(node, cst.Call):  # register_parameter(name, param)
        param = argument(node, 1, "param")
        return argument(param, 0, "data") if isinstance(param, cst.Call) else param
    if isinstance(small, (cst.Assign, cst.AnnAssign)) and small.value is not None:
        value = small.value
        if kind in ("buffer", "frozen") and isinstance(value, cst.Call):
            return argument(value, 0, "data")
        if kind == "assign":
            return value
    return None


def _is_tuple_target(small: cst.Assign) -> bool:
    return any(isinstance(t.target, (cst.Tuple, cst.List)) for t in small.targets)


def _negate(test: cst.BaseExpression) -> cst.BaseExpression:
    if isinstance(test, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)) or test.lpar:
        operand = test
    else:
        operand = test.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return cst.UnaryOperation(operator=cst.Not(), expression=operand)


def _chain_key(chain: tuple[ChainItem, ...]) -> tuple[tuple[int, bool], ...]:
    return tuple((node, polarity) for node, polarity, _ in chain)


def _fresh(name: str, taken: set[str]) -> str:
    candidate = name
    while candidate in taken:
        candidate += "_"
    return candidate
