"""Records what one method body does to `self`: the events of the facts
(bufferlint.facts), each with the guards of the branches above it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from bufferlint import blocks, walk
from bufferlint.conditions import ConditionReader
from bufferlint.facts import Event, MethodFacts
from bufferlint.guards import PathGuard
from bufferlint.syntax import argument, dotted, string_value

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

Guards = tuple[PathGuard, ...]


class MethodWalker:
    """Records the events of one method body, each with the guards above it."""

    def __init__(
        self, extractor: Extractor, method: MethodFacts, self_name: str, arguments: set[str]
    ) -> None:
        self.x = extractor
        self.method = method
        self.self_name = self_name
        self.arguments = arguments - {self_name}
        self.conditions = ConditionReader(self_name, extractor.code)

    def is_self(self, node: cst.BaseExpression) -> bool:
        return isinstance(node, cst.Name) and node.value == self.self_name

    def self_attr(self, node: cst.BaseExpression) -> str | None:
        """`name` for `self.name`, also through `.data` and subscripts."""
        while isinstance(node, cst.Subscript):
            node = node.value
        if isinstance(node, cst.Attribute):
            if self.is_self(node.value):
                return node.attr.value
            if node.attr.value == "data":
                return self.self_attr(node.value)
        return None

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
                self.x.visit_class(stmt, f"{self.method.name}.<locals>.")
            elif isinstance(stmt, cst.FunctionDef):
                continue  # a nested function runs only if called: not followed
            else:
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
            targets: list[cst.BaseExpression] = []
            if isinstance(node, cst.Assign):
                for target in node.targets:
                    targets.extend(_unpack(target.target))
            elif node.value is not None:  # a bare annotation assigns nothing
                targets.extend(_unpack(node.target))
            value = node.value
            for target in targets:  # located before the value: the cursor only moves forward
                self.assignment(node, target, value, guards)
            if value is not None:
                self.expression(value, guards)
            # A local that shadows a parameter no longer holds the caller's tensor.
            self.arguments -= {t.value for t in targets if isinstance(t, cst.Name)}
        elif isinstance(node, cst.AugAssign):
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
            else:
                self.emit("assign", name, statement, guards)
            return
        name = self.self_attr(target)
        if name is not None:  # self.b[...] = ..., self.b.data = ...
            self.emit("fill", name, statement, guards)

    # -- expressions -----------------------------------------------------------
    def expression(self, node: cst.BaseExpression, guards: Guards) -> None:
        for call in walk.descendants(node, cst.Call, walk.SCOPES):
            self.call(call, guards)

    def call(self, node: cst.Call, guards: Guards) -> None:
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
            else:
                self.emit("call", method, node, guards)
            return
        if isinstance(receiver, cst.Call) and dotted(receiver.func) == "super":
            if method == "register_buffer":
                self.register(node, guards)
            else:
                self.emit("super", method, node, guards)
            return
        if method in OVERWRITING_METHODS:
            name = self.self_attr(receiver)
            if name is not None:
                self.emit("fill", name, node, guards)
            return
        qualified = self.x.qualify(func) or ""
        if qualified.startswith("torch.nn.init.") and method.endswith("_") and node.args:
            name = self.self_attr(node.args[0].value)
            if name is not None:
                self.emit("fill", name, node, guards)
            return
        first = node.args[0].value if node.args else None
        if first is not None and self.is_self(first):
            owner = self.x.qualify(receiver)
            if owner:
                self.emit("explicit", method, node, guards, target=owner)

    def register(self, node: cst.Call, guards: Guards) -> None:
        name = string_value(argument(node, 0, "name") or cst.Name("None"))
        if name is None:
            return  # a computed name cannot be followed statically
        value = argument(node, 1, "tensor")
        persistent = _literal_bool(argument(node, 2, "persistent"))
        self.emit("register", name, node, guards, value=self.classify(value), persistent=persistent)

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
