"""Reads the test of an `if` in a method as a guard (bufferlint.guards): what
materialization changes about it, or the test's code when it reads no buffer.
"""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst

from bufferlint import walk
from bufferlint.guards import (
    AllOf,
    AnyOf,
    ClassName,
    Guard,
    HasAttr,
    IsInstance,
    IsMeta,
    IsNone,
    Not,
    Opaque,
    ReadsState,
)
from bufferlint.syntax import dotted, string_value

TENSOR_STATE_ATTRS = frozenset(
    {"device", "shape", "size", "dtype", "numel", "dim", "ndim", "data", "nelement", "is_meta"}
)


class ConditionReader:
    """Guards from the tests of one method, whose first parameter is `self_name`. With
    `qualify`, the method is a dispatcher and `self_name` its module argument: tests of
    the module's class (`isinstance`, its name) are read too."""

    def __init__(
        self,
        self_name: str,
        code: Callable[[cst.CSTNode], str],
        qualify: Callable[[cst.BaseExpression], str | None] | None = None,
    ) -> None:
        self.self_name = self_name
        self.code = code  # a node's source code
        self.qualify = qualify

    def guard(self, node: cst.BaseExpression) -> Guard:
        """Reduces a condition to what materialization changes about it."""
        if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Not):
            inner = self.guard(node.expression)
            return inner.operand if isinstance(inner, Not) else Not(inner)  # `not not x` is x
        if isinstance(node, cst.BooleanOperation):
            return self._chain(node)
        if self.qualify is not None:
            identity = self._identity(node)
            if identity is not None:
                return identity
        if isinstance(node, cst.Call) and dotted(node.func) in ("hasattr", "getattr"):
            if len(node.args) >= 2 and self._is_self(node.args[0].value):
                name = string_value(node.args[1].value)
                if name is not None:
                    return HasAttr(name)
        if isinstance(node, cst.Comparison) and len(node.comparisons) == 1:
            found = self._comparison(node.left, node.comparisons[0])
            if found is not None:
                return found
        if isinstance(node, cst.Attribute) and node.attr.value == "is_meta":
            name = self._attribute(node.value)
            if name is not None:
                return IsMeta(name)
        name = self._inspected_state(node)
        if name is not None:
            return ReadsState(name)
        return Opaque(self.code(node))

    def _identity(self, node: cst.BaseExpression) -> Guard | None:
        """`isinstance(module, (A, B))`, `"A" in module.__class__.__name__`, `... == "A"`."""
        assert self.qualify is not None
        if isinstance(node, cst.Call) and dotted(node.func) == "isinstance" and len(node.args) == 2:
            if not self._is_self(node.args[0].value):
                return None
            kinds = node.args[1].value
            elements = kinds.elements if isinstance(kinds, cst.Tuple) else [kinds]
            names = [self.qualify(e.value if isinstance(e, cst.Element) else e) for e in elements]
            if all(names):
                return IsInstance(tuple(n for n in names if n))
            return None
        if not (isinstance(node, cst.Comparison) and len(node.comparisons) == 1):
            return None
        target = node.comparisons[0]
        text = string_value(node.left)
        if isinstance(target.operator, cst.In) and text is not None:
            return ClassName(text) if self._class_name(target.comparator) else None
        text = string_value(target.comparator)
        if isinstance(target.operator, cst.Equal) and text is not None:
            return ClassName(text, exact=True) if self._class_name(node.left) else None
        return None

    def _class_name(self, node: cst.BaseExpression) -> bool:
        """Whether `node` is `module.__class__.__name__` or `type(module).__name__`."""
        if not (isinstance(node, cst.Attribute) and node.attr.value == "__name__"):
            return False
        owner = node.value
        if isinstance(owner, cst.Attribute) and owner.attr.value == "__class__":
            return self._is_self(owner.value)
        return (
            isinstance(owner, cst.Call)
            and dotted(owner.func) == "type"
            and len(owner.args) == 1
            and self._is_self(owner.args[0].value)
        )

    def _chain(self, node: cst.BooleanOperation) -> Guard:
        """`a and b and c` as one flat guard: LibCST nests it as deep as it is long."""
        operator = type(node.operator)
        operands: list[cst.BaseExpression] = [node.right]
        left = node.left
        while isinstance(left, cst.BooleanOperation) and isinstance(left.operator, operator):
            operands.append(left.right)
            left = left.left
        operands.append(left)
        parts = tuple(self.guard(part) for part in reversed(operands))
        return AllOf(parts) if operator is cst.And else AnyOf(parts)

    def _comparison(self, left: cst.BaseExpression, target: cst.ComparisonTarget) -> Guard | None:
        """`self.b is None` and tests of `self.b`'s device against "meta"."""
        operator, right = target.operator, target.comparator
        if isinstance(right, cst.Name) and right.value == "None":
            name = self._attribute(left)
            if name is not None:
                return Not(IsNone(name)) if isinstance(operator, cst.IsNot) else IsNone(name)
        meta = self._meta_check(left, right) or self._meta_check(right, left)
        if meta is not None:
            if isinstance(operator, (cst.NotEqual, cst.IsNot)):
                return Not(IsMeta(meta))
            if isinstance(operator, (cst.Equal, cst.Is)):
                return IsMeta(meta)
        return None

    def _is_self(self, node: cst.BaseExpression) -> bool:
        return isinstance(node, cst.Name) and node.value == self.self_name

    def _attribute(self, node: cst.BaseExpression) -> str | None:
        """`b` for exactly `self.b`."""
        if isinstance(node, cst.Attribute) and self._is_self(node.value):
            return node.attr.value
        return None

    def _meta_check(self, side: cst.BaseExpression, other: cst.BaseExpression) -> str | None:
        """`b` when one side is `self.b.device(.type)` and the other names "meta"."""
        if isinstance(side, cst.Attribute) and side.attr.value == "type":
            side = side.value
        if not (isinstance(side, cst.Attribute) and side.attr.value == "device"):
            return None
        name = self._attribute(side.value)
        if name is None or "meta" not in self.code(other):
            return None
        return name

    def _inspected_state(self, node: cst.BaseExpression) -> str | None:
        """The first `b` whose tensor state (`self.b.size(0)`, `len(self.b)`) the node reads."""
        for attribute in walk.descendants(node, cst.Attribute, walk.SCOPES):
            if attribute.attr.value in TENSOR_STATE_ATTRS:
                name = self._attribute(attribute.value)
                if name is not None:
                    return name
        for call in walk.descendants(node, cst.Call, walk.SCOPES):
            if dotted(call.func) == "len" and call.args:
                name = self._attribute(call.args[0].value)
                if name is not None:
                    return name
        return None
