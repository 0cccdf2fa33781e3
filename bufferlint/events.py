"""Records what one method body does to `self`: the events of the facts
(bufferlint.facts), each with the guards of the branches above it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from bufferlint import blocks, walk
from bufferlint.children import Children
from bufferlint.conditions import ConditionReader
from bufferlint.conventions import DISPATCHER_INIT_MODULES
from bufferlint.facts import Event, MethodFacts
from bufferlint.guards import PathGuard
from bufferlint.syntax import argument, dotted, string_value
from bufferlint.values import PARAMETER_CLASSES, ValueReader, is_frozen

if TYPE_CHECKING:
    from bufferlint.extract import Extractor

# In-place methods that overwrite every element whatever it held before.
OVERWRITING_METHODS = frozenset(
    {
        "fill_",
        "copy_",
        "zero_",
        "normal_",
        "uniform_",
        "random_",
        "bernoulli_",
        "exponential_",
        "geometric_",
        "cauchy_",
        "log_normal_",
        "set_",
    }
)
EMPTY_FACTORIES = frozenset(
    {"torch.empty", "torch.empty_like", "torch.empty_strided", "torch.empty_permuted"}
)
BUFFER_CLASSES = frozenset({"torch.nn.Buffer", "torch.nn.parameter.Buffer"})
# Modules of in-place initializers, `init.zeros_(t)`: torch's, and the helpers of the
# stacks whose dispatchers write with them (also in the methods those call).
INIT_MODULES = ("torch.nn.init.", *DISPATCHER_INIT_MODULES)
# In-place methods that keep the tensor's identity without changing its values.
NOT_UPDATES = frozenset({"requires_grad_", "share_memory_", "retain_grad_", "record_stream_"})

Guards = tuple[PathGuard, ...]


class _Reads:
    """What a method's expressions say about `self`: the attribute one names, and what a
    value holds (the caller's tensor, an empty one, a frozen parameter)."""

    def __init__(self, extractor: Extractor, self_name: str, arguments: set[str]) -> None:
        self.x = extractor
        self.self_name = self_name
        self.arguments = arguments - {self_name}
        self.values = ValueReader(self_name, extractor.qualify)
        self.frozen_locals: dict[str, str] = {}  # local -> what its frozen parameter holds

    def is_self(self, node: cst.BaseExpression) -> bool:
        return isinstance(node, cst.Name) and node.value == self.self_name

    def self_attr(self, node: cst.BaseExpression) -> str | None:
        """`name` for `self.name`, also through `.data`, subscripts and `getattr`."""
        while isinstance(node, cst.Subscript):
            node = node.value
        if isinstance(node, cst.Call) and dotted(node.func) == "getattr" and len(node.args) == 2:
            if self.is_self(node.args[0].value):
                return string_value(node.args[1].value)
        if isinstance(node, cst.Attribute):
            if self.is_self(node.value):
                return node.attr.value
            if node.attr.value == "data":
                return self.self_attr(node.value)
        return None

    def frozen(self, value: cst.BaseExpression | None) -> bool:
        return is_frozen(value, self.x.qualify)

    def frozen_value(self, call: cst.Call) -> str | None:
        """What `register_parameter(name, p)` registers when `p` is a frozen parameter,
        written there or bound to a local: `classify`'s word for its data."""
        param = argument(call, 1, "param")
        if isinstance(param, cst.Name):
            return self.frozen_locals.get(param.value)
        if isinstance(param, cst.Call) and self.frozen(param):
            return self.classify(argument(param, 0, "data"))
        return None

    def described(self, value: cst.BaseExpression | None) -> dict[str, object]:
        return {} if value is None else self.values.fields(value, self.x.code)

    def classify(self, value: cst.BaseExpression | None) -> str:
        if value is None or (isinstance(value, cst.Name) and value.value == "None"):
            return "none"
        if isinstance(value, cst.Name) and value.value in self.arguments:
            return "argument"  # the caller's tensor: the module cannot rebuild it
        if isinstance(value, cst.Call):
            if self.x.qualify(value.func) in EMPTY_FACTORIES:
                return "empty"
            if isinstance(value.func, cst.Attribute) and value.func.attr.value == "new_empty":
                return "empty"
        return "computed"


class MethodWalker(_Reads):
    """Records the events of one method body, each with the guards above it."""

    dispatch = False  # DispatchWalker's second walk of a dispatcher

    def __init__(
        self, extractor: Extractor, method: MethodFacts, self_name: str, arguments: set[str]
    ) -> None:
        super().__init__(extractor, self_name, arguments)
        self.method = method
        self.conditions = ConditionReader(
            self_name, extractor.code, extractor.qualify if self.dispatch else None
        )
        # `self.p = nn.Parameter(t)` not frozen yet: p -> its event's index, and its data's
        # word, for a later `self.p.requires_grad_(False)` in the same branch.
        self.trainable: dict[str, tuple[int, str]] = {}
        self.children = Children(self_name)

    def emitted(self) -> list[Event]:
        return self.method.events

    def emit(
        self, kind: str, name: str, node: cst.CSTNode, guards: Guards, **extra: object
    ) -> None:
        line, column = self.x.locate.node(node)
        self.method.events.append(Event(kind, name, line, column, guards, **extra))
        if self.x.nodes is not None:
            self.x.nodes.setdefault((line, column), []).append(node)

    # -- statements ------------------------------------------------------------
    def walk(self, body: object, guards: Guards) -> None:
        for stmt in blocks.statements(body):
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    self.small_statement(small, guards)
            elif isinstance(stmt, cst.If):
                self.walk_if(stmt, guards)
            elif isinstance(stmt, cst.ClassDef):
                if not self.dispatch:
                    self.x.visit_class(stmt, f"{self.method.name}.<locals>.")
            elif isinstance(stmt, cst.FunctionDef):
                if not self.dispatch:  # its events run only if called: not followed
                    self.children.nested(stmt)
            elif isinstance(stmt, cst.With) and any(map(self.values.places, stmt.items)):
                for item in stmt.items:
                    self.expression(item.item, guards)
                self.values.placed += 1
                self.walk(stmt.body, guards)
                self.values.placed -= 1
            else:
                if isinstance(stmt, cst.For) and not self.dispatch:
                    self.children.loop(stmt)
                for expr in blocks.header_expressions(stmt):
                    self.expression(expr, guards)
                for block in blocks.blocks(stmt):
                    self.walk(block, guards)

    def walk_if(self, node: cst.If, guards: Guards) -> None:
        self.expression(node.test, guards)
        condition = self.conditions.guard(node.test)
        code = self.x.code(node.test)
        self.walk(node.body, (*guards, PathGuard(condition, True, code)))
        negated = (*guards, PathGuard(condition, False, code))
        if isinstance(node.orelse, cst.If):
            self.walk_if(node.orelse, negated)
        elif isinstance(node.orelse, cst.Else):
            self.walk(node.orelse.body, negated)

    def small_statement(self, node: cst.BaseSmallStatement, guards: Guards) -> None:
        if isinstance(node, (cst.Assign, cst.AnnAssign)):
            if not self.dispatch:
                self.children.assigned(node)
            targets: list[cst.BaseExpression] = []
            if isinstance(node, cst.Assign):
                for target in node.targets:
                    targets.extend(_unpack(target.target))
            elif node.value is not None:  # a bare annotation assigns nothing
                targets.extend(_unpack(node.target))
            value = node.value
            for target, part in _paired(node, targets):  # located before the value: the
                self.assignment(node, target, part, guards)  # cursor only moves forward
            if value is not None:
                self.expression(value, guards)
                for target in node.targets if isinstance(node, cst.Assign) else [node]:
                    self.values.bind(target.target, value)
                    if isinstance(target.target, cst.Name):
                        self.frozen_locals.pop(target.target.value, None)
                        if self.frozen(value):
                            assert isinstance(value, cst.Call)
                            data = self.classify(argument(value, 0, "data"))
                            self.frozen_locals[target.target.value] = data
            # A local that shadows a parameter no longer holds the caller's tensor.
            self.arguments -= {t.value for t in targets if isinstance(t, cst.Name)}
            self.frozen_later(targets, value, guards)
        elif isinstance(node, cst.AugAssign):
            name = self.self_attr(node.target)
            if name is not None:
                self.emit("update", name, node, guards)
            self.expression(node.value, guards)
        elif isinstance(node, cst.Expr):
            self.expression(node.value, guards)
        elif isinstance(node, cst.Return) and node.value is not None:
            self.expression(node.value, guards)

    def assignment(
        self,
        statement: cst.CSTNode,
        target: cst.BaseExpression,
        value: cst.BaseExpression | None,
        guards: Guards,
    ) -> None:
        if isinstance(target, cst.Attribute) and self.is_self(target.value):
            name = target.attr.value
            self.trainable.pop(name, None)
            if isinstance(value, cst.Call) and self.x.qualify(value.func) in BUFFER_CLASSES:
                data = argument(value, 0, "data")
                persistent = _literal_bool(argument(value, 1, "persistent"))
                self.emit(
                    "buffer",
                    name,
                    statement,
                    guards,
                    value=self.classify(data),
                    persistent=persistent,
                )
            elif self.frozen(value):
                assert isinstance(value, cst.Call)
                data = argument(value, 0, "data")
                self.emit("frozen", name, statement, guards, value=self.classify(data))
            else:
                self.emit("assign", name, statement, guards, **self.described(value))
                if isinstance(value, cst.Call) and self.x.qualify(value.func) in PARAMETER_CLASSES:
                    data = self.classify(argument(value, 0, "data"))
                    self.trainable[name] = (len(self.emitted()) - 1, data)
            return
        name = self.self_attr(target)
        if name is not None:  # self.b[...] = ..., self.b.data = ...
            self.emit("fill", name, statement, guards)

    # -- expressions -----------------------------------------------------------
    def expression(self, node: cst.BaseExpression, guards: Guards) -> None:
        for call in walk.descendants(node, cst.Call, walk.SCOPES):
            self.call(call, guards)

    def call(self, node: cst.Call, guards: Guards) -> None:
        if not self.dispatch:
            self.children.call(node)
        func = node.func
        if isinstance(func, cst.Name) and func.value == "setattr" and len(node.args) >= 2:
            name = string_value(node.args[1].value)
            if self.is_self(node.args[0].value) and name is not None:
                self.emit("assign", name, node, guards)
            return
        if not isinstance(func, cst.Attribute):
            return
        method = func.attr.value
        receiver = func.value
        if self.is_self(receiver):
            if method == "register_buffer":
                self.register(node, guards)
            elif method == "register_parameter" and self.frozen_value(node) is not None:
                name = string_value(argument(node, 0, "name") or cst.Name("None"))
                if name is not None:
                    self.emit("frozen", name, node, guards, value=self.frozen_value(node))
            else:
                self.emit("call", method, node, guards)
            return
        if isinstance(receiver, cst.Call) and dotted(receiver.func) == "super":
            if method == "register_buffer":
                self.register(node, guards)
            else:
                self.emit("super", method, node, guards)
            return
        qualified = self.x.qualify(func) or ""
        if qualified.startswith(INIT_MODULES) and method.endswith("_") and node.args:
            name = self.self_attr(node.args[0].value)  # `init.normal_(self.b)`
            if name is not None:
                self.emit("fill", name, node, guards)
            return
        if method in OVERWRITING_METHODS:
            name = self.self_attr(receiver)
            if name is not None:
                self.emit("fill", name, node, guards)
            return
        if method == "requires_grad_" and node.args and _is_false(node.args[0].value):
            name = self.self_attr(receiver)
            if name is not None:
                self.freeze(name, guards)
            return
        if method.endswith("_") and not method.startswith("_") and method not in NOT_UPDATES:
            name = self.self_attr(receiver)
            if name is not None:
                self.emit("update", name, node, guards)
                return
        first = self.first_argument(node)
        if first is not None and self.is_self(first):
            owner = self.x.qualify(receiver)
            if owner:
                self.emit("explicit", method, node, guards, target=owner)

    def first_argument(self, node: cst.Call) -> cst.BaseExpression | None:
        """The argument that a call `Base.method(self, ...)` passes as `self`."""
        return node.args[0].value if node.args else None

    def frozen_later(
        self, targets: list[cst.BaseExpression], value: cst.BaseExpression | None, guards: Guards
    ) -> None:
        """`self.p.requires_grad = False`."""
        for target in targets:
            if isinstance(target, cst.Attribute) and target.attr.value == "requires_grad":
                name = self.self_attr(target.value)
                if name is not None and value is not None and _is_false(value):
                    self.freeze(name, guards)

    def freeze(self, name: str, guards: Guards) -> None:
        """A parameter this method assigned, frozen after: its assignment's event becomes
        the `frozen` event that `nn.Parameter(t, requires_grad=False)` would have been."""
        if name not in self.trainable:
            return
        at, data = self.trainable.pop(name)
        events = self.emitted()
        assigned = events[at]
        if assigned.guards == guards:
            events[at] = Event("frozen", name, assigned.line, assigned.column, guards, value=data)

    def register(self, node: cst.Call, guards: Guards) -> None:
        name = string_value(argument(node, 0, "name") or cst.Name("None"))
        if name is None:
            return  # a computed name cannot be followed statically
        value = argument(node, 1, "tensor")
        persistent = _literal_bool(argument(node, 2, "persistent"))
        self.emit(
            "register",
            name,
            node,
            guards,
            value=self.classify(value),
            persistent=persistent,
            **self.described(value),
        )


class DispatchWalker(MethodWalker):
    """The second walk of a dispatcher's body (`_init_weights(self, module)`): `self_name`
    is its module argument and the events go to `method.dispatched`. The first walk has
    located the body, so this one neither moves the locator's cursor nor records nodes
    or nested classes."""

    dispatch = True

    def __init__(
        self,
        extractor: Extractor,
        method: MethodFacts,
        self_name: str,
        arguments: set[str],
        owner_name: str,
    ) -> None:
        super().__init__(extractor, method, self_name, arguments)
        self.owner_name = owner_name  # the dispatcher's own first parameter

    def emitted(self) -> list[Event]:
        return self.method.dispatched

    def self_attr(self, node: cst.BaseExpression) -> str | None:
        """Also `child.b` for `module.child.b`: a holder's branch may write its child's
        tensors (bufferlint.analysis.dispatched_rebuilds)."""
        found = super().self_attr(node)
        if found is None and isinstance(node, cst.Attribute):
            inner = node.value
            if isinstance(inner, cst.Attribute) and self.is_self(inner.value):
                return f"{inner.attr.value}.{node.attr.value}"
        return found

    def emit(
        self, kind: str, name: str, node: cst.CSTNode, guards: Guards, **extra: object
    ) -> None:
        self.method.dispatched.append(Event(kind, name, self.method.line, 1, guards, **extra))

    def first_argument(self, node: cst.Call) -> cst.BaseExpression | None:
        first = super().first_argument(node)
        if len(node.args) > 1 and self.is_self(node.args[1].value):
            if isinstance(first, cst.Name) and first.value == self.owner_name:
                return node.args[1].value  # `Base._init_weights(self, module)`
        return first


def _is_false(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Name) and node.value == "False"


def _paired(
    node: cst.Assign | cst.AnnAssign, targets: list[cst.BaseExpression]
) -> list[tuple[cst.BaseExpression, cst.BaseExpression | None]]:
    """Each target with the part of the value it receives: `a, b = x, y` pairs `a` with
    `x`; otherwise every target receives the whole value."""
    value = node.value
    if (
        isinstance(node, cst.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0].target, (cst.Tuple, cst.List))
        and isinstance(value, (cst.Tuple, cst.List))
        and len(value.elements) == len(targets) == len(node.targets[0].target.elements)
        and not any(isinstance(e, cst.StarredElement) for e in value.elements)
    ):
        return [(t, e.value) for t, e in zip(targets, value.elements, strict=True)]
    return [(t, value) for t in targets]


def _unpack(target: cst.BaseExpression) -> list[cst.BaseExpression]:
    """The targets of a (nested) tuple or list target, in order."""
    if isinstance(target, (cst.Tuple, cst.List)):
        out: list[cst.BaseExpression] = []
        for element in target.elements:
            out.extend(_unpack(element.value))
        return out
    return [target]


def _literal_bool(node: cst.BaseExpression | None) -> bool:
    """Persistence as written; anything but a literal False counts as persistent."""
    return not (isinstance(node, cst.Name) and node.value == "False")
