"""The statements a hook gets to rebuild buffers, derived from the construction steps
that built them (bufferlint.fix.plan describes the rewrites).
"""

from __future__ import annotations

import libcst as cst

from bufferlint.events import EMPTY_FACTORIES
from bufferlint.fix import trace
from bufferlint.fix.collected import ChainItem, Collected
from bufferlint.fix.device import PassDevice
from bufferlint.fix.factories import constant_rebuild, sized_by_buffer
from bufferlint.fix.free_names import FreeNames
from bufferlint.fix.index import SourceIndex
from bufferlint.fix.purity import SideEffects, Where
from bufferlint.fix.replay import (
    MethodScope,
    Unavailable,
    binds,
    bound_in,
    definitions,
    derive,
    if_chain,
    reads,
    self_attribute,
    substitute,
)
from bufferlint.fix.sites import Sites, present, test_reads
from bufferlint.fix.workspace import Workspace
from bufferlint.syntax import argument, qualify


class HookBody(Collected):
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
        own_init: cst.FunctionDef | None = None,
    ) -> None:
        self.workspace = workspace
        self.qualified = qualified
        self.index = index  # the file the hook is in
        self.self_name = self_name
        self.effects = effects
        self.steps = steps
        self.buffers = buffers
        self.sites = Sites(workspace, qualified, steps, buffers)
        super().__init__(FreeNames(workspace, index, self_name, own_init, buffers))

    def add(self, step: trace.Step, name: str) -> None:
        """Adds what rebuilds buffer `name` as construction step `step` built it: its own
        statement where it can be replayed, even inside a helper that takes no arguments
        (the narrowest replay), else a call of the helper that construction made.
        `self.b = None` rebuilds nothing: the guard keeps the rebuild off a `None`."""
        if self.sites.sets_none(step):
            return
        if step.replayable:
            self._inline(step, name)
            return
        if plain_helper(self.workspace, step):
            saved = self._saved()
            try:
                self._inline(step, name)
                return
            except Unavailable:
                self._restore(saved)
        via = next((v for v in reversed(step.via) if v.replayable), None)
        if via is None:
            raise Unavailable(f"`{name}` is built by a helper that construction reaches oddly")
        self._recall(via, name)

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
        present_local: str | None = None  # its definition loses its `None` branch
        if kind in ("fill", "update"):
            generated = [small]
            rerun.append(small)
        elif kind == "assign" and isinstance(small, cst.Assign) and _is_tuple_target(small):
            generated = _unpack(small, scope, self.buffers, self.self_name)
            rerun.append(small.value)
        else:
            value = _built_value(kind, node, small)
            if value is None:
                raise Unavailable(
                    f"bufferlint cannot read the value built at line {step.event.line}"
                )
            nullable = self.sites.nullable(name)
            if nullable:
                value = present(value)
                if isinstance(value, cst.Name):  # `m = t if flag else None`, then `m`
                    present_local = value.value
            value = _parameter_data(_unplaced(value), scope)
            if value is None:  # `nn.Parameter(torch.empty(n))`: the initializers that follow
                return
            constant = constant_rebuild(value, scope, small, target, self.index, nullable)
            if constant is None:
                rerun.append(value)
                value = _sized(derive(value, scope), scope, target, small, nullable)
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
        allowed = frozenset({name})
        self._emit(step, scope, small, keep, generated, needed, rerun, allowed, name, present_local)

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
            _copied_back(self.self_name, b, saved[b], self.sites.nullable(b, False)) for b in names
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
        present_local: str | None = None,
    ) -> None:
        """Adds the definitions `generated` needs, then `generated`, renamed for the hook;
        the definition of `present_local` keeps only its branch that is not None."""
        defs, unresolved = definitions(scope, small, needed)
        derived = {id(d): derive(d, scope) for d in defs}
        presented = _presented(defs, present_local)
        if presented is not None:
            assign = derived[id(presented)]
            assert isinstance(assign, cst.Assign)
            if present(assign.value) is assign.value:
                presented = None
            else:
                derived[id(presented)] = assign.with_changes(value=present(assign.value))
        self.share([d for d in defs if id(d) in self.done])
        generated = [derive(g, scope) for g in generated]  # type: ignore[misc]
        still: set[str] = set()
        for statement in [*derived.values(), *generated]:
            still |= reads(statement)
        for node, _ in if_chain(scope.index, small, scope.node):
            if keep.get(id(node)) and node.test is not None:
                still |= reads(derive(node.test, scope))
        buffer = device_for or min(allowed)
        shadowed = _shadowed(defs, unresolved & still & scope.rebound)
        mapping = self.free_names.mapping(
            scope, unresolved & still, [*defs, small], buffer, frozenset(shadowed)
        )
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
        for position, definition in enumerate(defs):
            if id(definition) in self.done:
                continue
            self.done.add(id(definition))
            now = _reading_at(mapping, shadowed, position)
            chain = self._kept_chain(scope, definition, keep, now)
            statement = derived[id(definition)]
            if position in shadowed.values():
                statement = _first_assignment(statement, now)  # type: ignore[arg-type]
                now = _reading_at(mapping, shadowed, position + 1)
            self.defined[id(definition)] = len(self.items)
            if definition is presented:
                self.presented.add(id(definition))
            self.items.append((chain, self._rename(statement, now, device_for)))  # type: ignore[arg-type]
        after = _reading_at(mapping, shadowed, len(defs))
        chain = self._kept_chain(scope, small, keep, after)
        for statement in generated:
            self.items.append((chain, self._rename(statement, after, None)))

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
                test = substitute(derive(node.test, scope), mapping)
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
        if isinstance(renamed, cst.BaseCompoundStatement):  # a branch or loop, replayed whole
            return renamed  # type: ignore[return-value]
        assert isinstance(renamed, cst.BaseSmallStatement)
        return renamed.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)


def _unpack(
    small: cst.Assign, scope: MethodScope, buffers: frozenset[str], self_name: str
) -> list[cst.BaseSmallStatement]:
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
            if attr not in buffers:
                return cst.Name("_")
            fresh = _fresh(attr, taken)
            taken.add(fresh)
            copy = cst.Call(
                func=cst.Attribute(value=self_attribute(self_name, attr), attr=cst.Name("copy_")),
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


def _copied_back(self_name: str, buffer: str, saved: str, nullable: bool) -> cst.BaseSmallStatement:
    """`self.b = b.copy_(self.b)`: the helper's new tensor into the old one, which a
    buffer that may be `None` copies only when there is one (`if b is not None:`)."""
    copy = cst.Assign(
        targets=[cst.AssignTarget(self_attribute(self_name, buffer))],
        value=cst.Call(
            func=cst.Attribute(value=cst.Name(saved), attr=cst.Name("copy_")),
            args=[cst.Arg(self_attribute(self_name, buffer))],
        ),
    )
    if not nullable:
        return copy
    test = cst.Comparison(
        left=cst.Name(saved), comparisons=[cst.ComparisonTarget(cst.IsNot(), cst.Name("None"))]
    )
    guarded = cst.If(test=test, body=cst.IndentedBlock(body=[cst.SimpleStatementLine([copy])]))
    return guarded  # type: ignore[return-value]


def _presented(
    defs: list[cst.BaseSmallStatement], local: str | None
) -> cst.BaseSmallStatement | None:
    """The plain assignment `local = t if flag else None` that last sets `local`."""
    if local is None:
        return None
    for definition in reversed(defs):
        if local in bound_in(definition):
            if isinstance(definition, cst.Assign) and len(definition.targets) == 1:
                if binds(definition) == {local}:
                    return definition
            return None
    return None


def _shadowed(defs: list[cst.BaseSmallStatement], rebound: set[str]) -> dict[str, int]:
    """For each parameter in `rebound` that the replayed statements `defs` assign again,
    the position of the plain assignment that does it first (`slopes = f(slopes)`), when
    no branch or loop among them assigns it: the replay reads the argument before that
    assignment and the local after it."""
    out: dict[str, int] = {}
    for name in rebound:
        binding = [i for i, d in enumerate(defs) if name in bound_in(d)]
        if not binding:
            continue
        first = defs[binding[0]]
        if not all(isinstance(defs[i], _ASSIGNMENTS) for i in binding):
            continue
        if isinstance(first, cst.AnnAssign) and first.value is None:
            continue
        if isinstance(first, cst.AugAssign) and not isinstance(first.target, cst.Name):
            continue
        out[name] = binding[0]
    return out


_ASSIGNMENTS = (cst.Assign, cst.AnnAssign, cst.AugAssign)


def _reading_at(
    mapping: dict[str, cst.BaseExpression], shadowed: dict[str, int], position: int
) -> dict[str, cst.BaseExpression]:
    """`mapping` as replayed statement `position` reads it: a parameter assigned again
    is read as the argument up to that assignment's value, as the local it became after."""
    return {k: v for k, v in mapping.items() if shadowed.get(k, position) >= position}


def _first_assignment(
    statement: cst.Assign | cst.AnnAssign | cst.AugAssign, mapping: dict[str, cst.BaseExpression]
) -> cst.BaseSmallStatement:
    """The assignment that first rebinds a parameter, reading the parameter from where
    the hook has it: `base *= f` becomes `base = self._base * (f)`."""
    if not isinstance(statement, cst.AugAssign):
        return statement.with_changes(value=substitute(statement.value, mapping))  # type: ignore[arg-type]
    operator = getattr(cst, type(statement.operator).__name__.removesuffix("Assign"))()
    right = substitute(statement.value, mapping)
    assert isinstance(right, cst.BaseExpression)
    if not right.lpar:
        right = right.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    left = substitute(statement.target, mapping)
    assert isinstance(left, cst.BaseExpression)
    return cst.Assign(
        targets=[cst.AssignTarget(statement.target)],
        value=cst.BinaryOperation(left=left, operator=operator, right=right),
    )


def _sized(
    value: cst.BaseExpression,
    scope: MethodScope,
    target: cst.BaseExpression,
    small: cst.BaseSmallStatement,
    nullable: bool,
) -> cst.BaseExpression:
    """`value` with a size that only the buffer's own shape still holds read from it; a
    local is replaced by the one expression that set it, where that expression needs it
    (its present branch, for a buffer that the hook rebuilds only where it is not None)."""
    source = value
    if isinstance(value, cst.Name):
        try:
            defs, _ = definitions(scope, small, {value.value})
        except Unavailable:
            return value
        if not (len(defs) == 1 and isinstance(defs[0], cst.Assign) and len(defs[0].targets) == 1):
            return value
        if binds(defs[0]) != {value.value} or value.value in reads(defs[0]):
            return value
        source = derive(defs[0].value, scope)  # type: ignore[assignment]
        source = present(source) if nullable else source
    unknown = {
        p
        for p in reads(source) & scope.params
        if p not in scope.stored and p not in ("device", "dtype")
    }
    if not unknown:
        return value
    sized = sized_by_buffer(source, target, scope.index.facts.imports, unknown)
    return value if sized is None else sized


def _unplaced(value: cst.BaseExpression) -> cst.BaseExpression:
    """`torch.tensor(v, **factory_kwargs)` without the `**factory_kwargs` (torch's own
    `device`/`dtype` dict): the value goes into the buffer's tensor, placed and typed."""
    if not isinstance(value, cst.Call):
        return value
    args = [
        a
        for a in value.args
        if not (a.star == "**" and isinstance(a.value, cst.Name) and a.value.value in _PLACING)
    ]
    if len(args) == len(value.args):
        return value
    if args:
        args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return value.with_changes(args=args)


_PLACING = {"factory_kwargs"}


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


def _parameter_data(value: cst.BaseExpression, scope: MethodScope) -> cst.BaseExpression | None:
    """The data of `nn.Parameter(data)` (None when it is left uninitialized), else `value`."""
    imports = scope.index.facts.imports
    if not (isinstance(value, cst.Call) and is_parameter(value, imports)):
        return value
    data = argument(value, 0, "data")
    if data is None:
        return None
    if isinstance(data, cst.Call) and qualify(data.func, imports) in EMPTY_FACTORIES:
        return None
    return data


def is_parameter(value: cst.Call, imports: dict[str, str]) -> bool:
    """Whether `value` builds an `nn.Parameter`."""
    return qualify(value.func, imports) in ("torch.nn.Parameter", "torch.nn.parameter.Parameter")


def _is_tuple_target(small: cst.Assign) -> bool:
    return any(isinstance(t.target, (cst.Tuple, cst.List)) for t in small.targets)


def _fresh(name: str, taken: set[str]) -> str:
    candidate = name
    while candidate in taken:
        candidate += "_"
    return candidate


def is_parameter_step(sites: Sites, step: trace.Step) -> bool:
    """Whether an assignment step sets `self.x = nn.Parameter(...)`."""
    try:
        scope = sites.scope(step)
        _, small = sites.locate(step, scope)
    except Unavailable:
        return False
    value = small.value if isinstance(small, (cst.Assign, cst.AnnAssign)) else None
    return isinstance(value, cst.Call) and is_parameter(value, scope.index.facts.imports)


def plain_helper(workspace: Workspace, step: trace.Step) -> bool:
    """Whether the step runs in a method of `self` that takes nothing but `self`."""
    if step.method.kind != "method":
        return False
    located = workspace.method_node(step.owner, step.method)
    if located is None:
        return False
    params = located[1].params
    return (
        len([*params.posonly_params, *params.params]) == 1
        and not params.kwonly_params
        and not isinstance(params.star_arg, cst.Param)
        and params.star_kwarg is None
    )
