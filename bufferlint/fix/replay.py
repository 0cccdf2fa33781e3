"""Which statements of a construction method must run again for a rebuild, and which
names they read: straight-line data flow over one method's CST, and renaming.

Only code that runs straight through is replayed: a local set inside a loop or a branch
other than the one being replayed is reported as not available, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import libcst as cst

from bufferlint.fix.index import SourceIndex
from bufferlint.syntax import dotted
from bufferlint.walk import children


class Unavailable(Exception):
    """A rebuild cannot be derived; the message says which name is missing and why."""


# -- names ------------------------------------------------------------------------------


_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)


def _names_read(root: cst.CSTNode) -> set[str]:
    """Names an expression reads from its scope: not attributes or keywords, nor names
    bound by a lambda or comprehension inside it. Walked by the nodes' fields
    (bufferlint.walk): LibCST's visitor rebuilds every node."""
    names: set[str] = set()
    stack: list[tuple[cst.CSTNode, tuple[set[str], ...]]] = [(root, ())]
    while stack:
        node, bound = stack.pop()
        kind = type(node)
        if kind is cst.Name:
            if not any(node.value in scope for scope in bound):
                names.add(node.value)
        elif kind is cst.Attribute or kind is cst.Arg:
            stack.append((node.value, bound))
        elif kind is cst.Lambda:
            stack.append((node.body, (*bound, _param_names(node.params))))
        elif kind in _COMPREHENSIONS:
            inner = (*bound, _comprehension_targets(node))
            parts = [node.key, node.value] if kind is cst.DictComp else [node.elt]
            clause: cst.CompFor | None = node.for_in
            while clause is not None:  # its iterables and conditions, as read inside it
                parts += [clause.iter, *clause.ifs]
                clause = clause.inner_for_in
            stack.extend((part, inner) for part in parts)
        else:
            stack.extend((child, bound) for child in children(node))
    return names


def _comprehension_targets(node: cst.BaseComp) -> set[str]:
    targets: set[str] = set()
    clause: cst.CompFor | None = node.for_in
    while clause is not None:
        targets |= _target_names(clause.target)
        clause = clause.inner_for_in
    return targets


def _param_names(params: cst.Parameters) -> set[str]:
    names = {p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params)}
    for star in (params.star_arg, params.star_kwarg):
        if isinstance(star, cst.Param):
            names.add(star.name.value)
    return names


def _target_names(target: cst.CSTNode) -> set[str]:
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        out: set[str] = set()
        for element in target.elements:
            out |= _target_names(element.value)
        return out
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return set()


def reads(node: cst.CSTNode) -> set[str]:
    """Names `node` reads; for a small statement, what it reads before binding anything."""
    if isinstance(node, (cst.Assign, cst.AnnAssign)):
        targets = (
            [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
        )
        out = reads(node.value) if node.value is not None else set()
        for target in targets:
            out |= _target_reads(target)
        return out
    if isinstance(node, cst.AugAssign):
        return reads(node.value) | reads(node.target)
    if isinstance(node, (cst.Import, cst.ImportFrom)):
        return set()
    return _names_read(node)


def _target_reads(target: cst.CSTNode) -> set[str]:
    if isinstance(target, cst.Name):
        return set()
    if isinstance(target, (cst.Tuple, cst.List)):
        out: set[str] = set()
        for element in target.elements:
            out |= _target_reads(element.value)
        return out
    if isinstance(target, cst.StarredElement):
        return _target_reads(target.value)
    return reads(target)


def binds(node: cst.BaseSmallStatement) -> set[str]:
    """Names a small statement (re)binds."""
    if isinstance(node, cst.Assign):
        out: set[str] = set()
        for target in node.targets:
            out |= _target_names(target.target)
        return out
    if isinstance(node, cst.AnnAssign):
        return _target_names(node.target) if node.value is not None else set()
    if isinstance(node, cst.AugAssign):
        return _target_names(node.target)
    if isinstance(node, (cst.Import, cst.ImportFrom)) and not isinstance(
        node.names, cst.ImportStar
    ):
        out = set()
        for alias in node.names:
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                out.add(alias.asname.name.value)
            else:
                out.add((dotted(alias.name) or "").split(".")[0])
        return out
    return set()


def root_name(node: cst.BaseExpression) -> str | None:
    """`x` for `x`, `x.a.b`, `x[i]`, `x.a[i].b`."""
    while isinstance(node, (cst.Attribute, cst.Subscript)):
        node = node.value
    return node.value if isinstance(node, cst.Name) else None


def mutates(node: cst.BaseSmallStatement, self_name: str) -> set[str]:
    """Locals a small statement changes in place: `x[i] = ...`, `x.fill_(...)`,
    `nn.init.ones_(x)`. Calls on `self` are not counted: they act on the module."""
    out: set[str] = set()
    if isinstance(node, (cst.Assign, cst.AnnAssign, cst.AugAssign)):
        targets = (
            [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
        )
        for target in targets:
            if isinstance(target, (cst.Attribute, cst.Subscript)):
                name = root_name(target)
                if name is not None and name != self_name:
                    out.add(name)
    elif isinstance(node, cst.Expr) and isinstance(node.value, cst.Call):
        call = node.value
        receiver = root_name(call.func.value) if isinstance(call.func, cst.Attribute) else None
        if receiver == self_name:
            return out
        if receiver is not None:
            out.add(receiver)
        if call.args:
            name = root_name(call.args[0].value)
            if name is not None and name != self_name:
                out.add(name)
    return out


def _changed_in(node: cst.CSTNode, self_name: str) -> set[str]:
    """Locals a block binds or changes in place: a block that only reads a name leaves
    its value as it was."""
    found = bound_in(node)
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.BaseSmallStatement):
            found |= mutates(current, self_name)
        else:
            stack.extend(children(current))
    return found


def _all_names(node: cst.CSTNode) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Name):
            found.add(current.value)
        stack.extend(children(current))
    return found


# -- renaming ---------------------------------------------------------------------------


class _Substitute(cst.CSTTransformer):
    def __init__(self, mapping: Mapping[str, cst.BaseExpression]) -> None:
        self.mapping = mapping
        self.bound: list[set[str]] = []

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self.bound.append(_param_names(node.params))

    def leave_Lambda(self, original: cst.Lambda, updated: cst.Lambda) -> cst.Lambda:
        self.bound.pop()
        return updated.with_changes(params=original.params)

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
            targets: set[str] = set()
            clause: cst.CompFor | None = node.for_in
            while clause is not None:
                targets |= _target_names(clause.target)
                clause = clause.inner_for_in
            self.bound.append(targets)
        return super().on_visit(node)

    def on_leave(
        self, original: cst.CSTNode, updated: cst.CSTNode
    ) -> cst.CSTNode | cst.RemovalSentinel | cst.FlattenSentinel[cst.CSTNode]:
        if isinstance(original, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
            self.bound.pop()
        return super().on_leave(original, updated)

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        if original.value in self.mapping and not any(original.value in s for s in self.bound):
            return self.mapping[original.value]
        return updated

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.Attribute:
        return updated.with_changes(attr=original.attr)

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        return updated.with_changes(keyword=original.keyword)


class _Derived(cst.CSTTransformer):
    def __init__(self, derived: Mapping[str, str], self_name: str) -> None:
        self.derived = derived
        self.self_name = self_name

    def on_leave(
        self, original: cst.CSTNode, updated: cst.CSTNode
    ) -> cst.CSTNode | cst.RemovalSentinel | cst.FlattenSentinel[cst.CSTNode]:
        if isinstance(original, (cst.Attribute, cst.Subscript, cst.BinaryOperation)):
            attr = self.derived.get(code_of(original))
            if attr is not None:
                return self_attribute(self.self_name, attr).with_changes(
                    lpar=original.lpar, rpar=original.rpar
                )
        return updated


def derive(node: cst.CSTNode, scope: MethodScope) -> cst.CSTNode:
    """`node` with every expression that `__init__` stored (`self.n_head = config.n_head`)
    read back from its attribute, in `scope`'s own spelling of `self`."""
    if not scope.derived:
        return node
    return node.visit(_Derived(scope.derived, scope.self_name))


def substitute(node: cst.CSTNode, mapping: Mapping[str, cst.BaseExpression]) -> cst.CSTNode:
    """`node` with the names in `mapping` replaced where they are read from its scope."""
    if not mapping:
        return node
    return node.visit(_Substitute(mapping))


def self_attribute(self_name: str, name: str) -> cst.Attribute:
    return cst.Attribute(value=cst.Name(self_name), attr=cst.Name(name))


# -- one method -------------------------------------------------------------------------


@dataclass
class MethodScope:
    """A construction method: its parameters, its locals, and the parameters it stores
    unchanged on `self` (which a hook can read back)."""

    index: SourceIndex
    node: cst.FunctionDef
    self_name: str
    params: set[str]
    locals: set[str]
    stored: dict[str, str]
    # `self.a = <expression of parameters>` (no calls), by the expression's code: the
    # hook reads `self.a` where replayed code computes the same expression again.
    derived: dict[str, str] = field(default_factory=dict)
    attributes: frozenset[str] = frozenset()  # every attribute the method names on `self`
    rebound: frozenset[str] = frozenset()  # parameters the method assigns again

    @classmethod
    def of(
        cls, index: SourceIndex, node: cst.FunctionDef, plain_attribute: Callable[[str], bool]
    ) -> MethodScope:
        """`plain_attribute(name)` says whether `self.name` is an ordinary attribute
        (not a property or method), so that reading it back returns what was stored."""
        params = node.params
        ordered = [*params.posonly_params, *params.params]
        self_name = ordered[0].name.value if ordered else "self"
        names = _param_names(params) - {self_name}
        bound = bound_in(node.body)
        stored: dict[str, str] = {}
        derived: dict[str, str] = {}
        assigned: dict[str, int] = {}
        for statement in node.body.body if isinstance(node.body, cst.IndentedBlock) else ():
            if not isinstance(statement, cst.SimpleStatementLine):
                continue
            for small in statement.body:
                for attr, value in _self_stores(small, self_name):
                    assigned[attr] = assigned.get(attr, 0) + 1
                    if isinstance(value, cst.Name) and value.value in names:
                        stored.setdefault(value.value, attr)
                    elif _derivation(value, names - bound):
                        assert value is not None
                        derived.setdefault(code_of(value), attr)
        keep = {attr for attr, count in assigned.items() if count == 1 and plain_attribute(attr)}
        stored = {p: attr for p, attr in stored.items() if p not in bound and attr in keep}
        derived = {code: attr for code, attr in derived.items() if attr in keep}
        every = frozenset(_self_targets(node.body, self_name))
        return cls(
            index,
            node,
            self_name,
            names,
            bound | names,
            stored,
            derived,
            every,
            frozenset(bound & names),
        )

    @property
    def name(self) -> str:
        return self.node.name.value


_EMPTY_MODULE = cst.Module(body=[])


def code_of(node: cst.CSTNode) -> str:
    """An expression's source text, without the parentheses around it."""
    if isinstance(node, cst.BaseExpression) and (node.lpar or node.rpar):
        node = node.with_changes(lpar=[], rpar=[])
    return _EMPTY_MODULE.code_for_node(node)


def _derivation(value: cst.BaseExpression | None, params: set[str]) -> bool:
    """Whether `value` is computed from parameters alone, without a call: `config.n_head`,
    `dim // heads`."""
    if value is None or isinstance(value, cst.Name):
        return False
    names = _names_read(value)
    return bool(names) and names <= params and not walk_calls(value)


def walk_calls(node: cst.CSTNode) -> bool:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (cst.Call, cst.Lambda, cst.NamedExpr)):
            return True
        stack.extend(children(current))
    return False


def _self_targets(body: cst.CSTNode, self_name: str) -> set[str]:
    out: set[str] = set()
    stack = [body]
    while stack:
        node = stack.pop()
        if (
            isinstance(node, cst.Attribute)
            and isinstance(node.value, cst.Name)
            and node.value.value == self_name
        ):
            out.add(node.attr.value)
        stack.extend(children(node))
    return out


def _self_stores(
    small: cst.BaseSmallStatement, self_name: str
) -> Iterator[tuple[str, cst.BaseExpression | None]]:
    """(attribute, value) for `self.a = v`, `self.a: T = v` and `self.a, self.b = v, w`."""
    if isinstance(small, cst.Assign):
        pairs = [(t.target, small.value) for t in small.targets]
    elif isinstance(small, cst.AnnAssign) and small.value is not None:
        pairs = [(small.target, small.value)]
    else:
        return
    for target, value in pairs:
        if isinstance(target, (cst.Tuple, cst.List)):
            values = value.elements if isinstance(value, (cst.Tuple, cst.List)) else None
            for position, element in enumerate(target.elements):
                item = values[position].value if values and position < len(values) else None
                yield from _one_store(element.value, item, self_name)
        else:
            yield from _one_store(target, value, self_name)


def _one_store(
    target: cst.BaseExpression, value: cst.BaseExpression | None, self_name: str
) -> Iterator[tuple[str, cst.BaseExpression | None]]:
    if (
        isinstance(target, cst.Attribute)
        and isinstance(target.value, cst.Name)
        and target.value.value == self_name
    ):
        yield target.attr.value, value


_BINDINGS = (cst.Assign, cst.AnnAssign, cst.AugAssign, cst.Import, cst.ImportFrom)
_SCOPES = (cst.FunctionDef, cst.ClassDef)
_TARGETS = (cst.For, cst.WithItem, cst.ExceptHandler, cst.NamedExpr)
# The node types `bound_in` looks at, by exact type: LibCST's node classes are ABCs, so
# an isinstance check costs more than the rest of the walk (the parser makes no subclasses).
_BINDING_TYPES = frozenset({*_BINDINGS, *_SCOPES, *_TARGETS, cst.Lambda})


def bound_in(body: cst.CSTNode) -> set[str]:
    """Names bound anywhere in `body`, nested functions and classes by their names only.
    A walk over the nodes' fields (bufferlint.walk): LibCST's visitor rebuilds every node."""
    names: set[str] = set()
    stack = [body]
    while stack:
        node = stack.pop()
        if type(node) in _BINDING_TYPES:
            if isinstance(node, _SCOPES):
                names.add(node.name.value)
                continue
            if isinstance(node, cst.Lambda):
                continue
            if isinstance(node, _BINDINGS):
                names |= binds(node)
            elif isinstance(node, cst.For):
                names |= _target_names(node.target)
            elif isinstance(node, cst.WithItem) and node.asname is not None:
                names |= _target_names(node.asname.name)
            elif isinstance(node, cst.ExceptHandler) and node.name is not None:
                names |= _target_names(node.name.name)
            elif isinstance(node, cst.NamedExpr):
                names |= _target_names(node.target)
        stack.extend(children(node))
    return names


# -- walking back from a statement --------------------------------------------------------


def if_chain(
    index: SourceIndex, small: cst.BaseSmallStatement, function: cst.FunctionDef
) -> list[tuple[cst.If, bool]]:
    """The `if` statements around `small` inside `function`, outermost first, each with
    whether `small` is in its body (True) or its else branch (False)."""
    chain: list[tuple[cst.If, bool]] = []
    child: cst.CSTNode = small
    for ancestor in index.ancestors(small):
        if ancestor is function:
            break
        if isinstance(ancestor, cst.If):
            chain.append((ancestor, child is ancestor.body))
        elif isinstance(ancestor, (cst.For, cst.While)):
            raise Unavailable(f"it is built inside a loop (line {index.line_of(ancestor)})")
        elif isinstance(ancestor, (cst.ExceptHandler, cst.Finally, cst.Match)):
            raise Unavailable(
                f"it is built in an `except`, `finally` or `match` block "
                f"(line {index.line_of(ancestor)})"
            )
        elif isinstance(ancestor, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            raise Unavailable("it is built inside a nested function")
        child = ancestor
    return list(reversed(chain))


def _preceding(
    index: SourceIndex, small: cst.BaseSmallStatement, function: cst.FunctionDef
) -> Iterator[cst.CSTNode]:
    """What ran before `small` in `function`, nearest first: small statements, and the
    compound statements that precede it in an enclosing block (not entered)."""
    child: cst.CSTNode = small
    for ancestor in index.ancestors(small):
        if isinstance(ancestor, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            position = _position(ancestor.body, child)
            yield from reversed(ancestor.body[:position])
        elif isinstance(ancestor, cst.IndentedBlock):
            position = _position(ancestor.body, child)
            for statement in reversed(ancestor.body[:position]):
                yield from _flatten(statement)
        if ancestor is function:
            return
        child = ancestor


def _position(items: object, child: cst.CSTNode) -> int:
    for position, item in enumerate(items):  # type: ignore[arg-type]
        if item is child:
            return position
    return 0


def _flatten(statement: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """A preceding statement, nearest part first; `with` blocks run straight through."""
    if isinstance(statement, cst.SimpleStatementLine):
        yield from reversed(statement.body)
    elif isinstance(statement, cst.With) and all(item.asname is None for item in statement.items):
        for inner in reversed(statement.body.body):
            yield from _flatten(inner)
    else:
        yield statement


def definitions(
    scope: MethodScope, small: cst.BaseSmallStatement, needed: set[str]
) -> tuple[list[cst.BaseSmallStatement], set[str]]:
    """The statements before `small` that give the locals in `needed` their values at
    `small`, in source order, and the names left unresolved (parameters, globals)."""
    needed = set(needed) - {scope.self_name}
    found: list[cst.BaseSmallStatement] = []
    for node in _preceding(scope.index, small, scope.node):
        if not needed & scope.locals:
            break
        if isinstance(node, cst.BaseSmallStatement):
            bound = binds(node)
            hit = (bound | mutates(node, scope.self_name)) & needed & scope.locals
            if not hit:
                continue
            found.append(node)
            read = reads(node)
            if not isinstance(node, cst.AugAssign):
                needed -= bound - read
            needed |= read - {scope.self_name}
        else:
            clash = _changed_in(node, scope.self_name) & needed & scope.locals
            if not clash:
                continue
            if not _replayable_block(node):
                name = sorted(clash)[0]
                raise Unavailable(
                    f"`{name}` is set in a branch, loop or nested block of `{scope.name}`"
                )
            # A branch or loop is replayed whole, under its own tests, as construction ran it.
            found.append(node)  # type: ignore[arg-type]
            bound = bound_in(node)
            needed -= bound
            needed |= (_names_read(node) - bound) | (_names_read(node) & bound & scope.params)
            needed -= {scope.self_name}
    return list(reversed(found)), needed


_BLOCK_EXITS = (cst.Return, cst.Yield, cst.Await, cst.Global, cst.Nonlocal, cst.While)


def _replayable_block(node: cst.CSTNode) -> bool:
    """An `if` or `for` statement (with its `else`) that runs to its end on its own: no
    `return`, no nested function or class, no `while`."""
    if not isinstance(node, (cst.If, cst.For)):
        return False
    stack: list[cst.CSTNode] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (*_BLOCK_EXITS, cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            return False
        stack.extend(children(current))
    return True
