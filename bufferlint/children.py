"""What a method does with its module's children, for stacks whose root hook cascades
(torchtitan 0.1.x: the root's `init_weights` calls each layer's): the classes it constructs
into `self.<attr>` (directly, in a container, through a local), and the methods it calls
on `self.<attr>` or on the items of a loop over it. Fed by the events walk
(bufferlint.events) as it reads the method, so that each body is walked once. A nested
function, which the events walk passes over, is read here whole: a hook's helper
(`def init(): self.layer.init_weights()`) is defined to be called."""

from __future__ import annotations

from typing import cast

import libcst as cst

from bufferlint import walk
from bufferlint.syntax import dotted

# Container methods that put a module into `self.<attr>`.
_ADDING = frozenset({"append", "extend", "insert", "add_module", "update", "__setitem__"})
# Methods whose result iterates `self.<attr>`'s modules.
_ITERATING = frozenset({"values", "children", "items", "modules"})


class Children:
    """One method's children, in a flow-insensitive pass in the order the code is written:
    a local keeps what any earlier statement put into it."""

    def __init__(self, self_name: str) -> None:
        self.self_name = self_name
        self.children: set[tuple[str, str]] = set()
        self.descends: set[tuple[str, str]] = set()
        self.locals: dict[str, set[str]] = {}  # local name -> class names constructed into it
        self.items: dict[str, set[str]] = {}  # local name -> `self` attributes it stands for

    def attribute(self, node: cst.BaseExpression) -> str | None:
        """`x` for `self.x`, `self.x[0]`."""
        while isinstance(node, cst.Subscript):
            node = node.value
        if (
            isinstance(node, cst.Attribute)
            and isinstance(node.value, cst.Name)
            and node.value.value == self.self_name
        ):
            return node.attr.value
        return None

    def stands_for(self, node: cst.BaseExpression) -> set[str]:
        """The `self` attributes an expression holds modules of."""
        found = self.attribute(node)
        if found is not None:
            return {found}
        if isinstance(node, cst.Name):
            return self.items.get(node.value, set())
        if isinstance(node, cst.Subscript):
            return self.stands_for(node.value)
        return set()

    def constructed(self, node: cst.CSTNode) -> set[str]:
        """The class names called in an expression (by their capital, as classes are
        written), and what the locals it names were built from."""
        names: set[str] = set()
        for current in walk.preorder(node):
            kind = type(current)
            if kind is cst.Call:
                name = dotted(cast(cst.Call, current).func)
                if name and name.rpartition(".")[2][:1].isupper():
                    names.add(name)
            elif kind is cst.Name:
                names |= self.locals.get(cast(cst.Name, current).value, set())
        return names

    def iterated(self, node: cst.BaseExpression) -> set[str]:
        """The attributes a `for` loop's iterable runs over: `self.x`, `self.x.values()`,
        `(self.a, self.b)`."""
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            if node.func.attr.value in _ITERATING:
                return self.stands_for(node.func.value)
        if isinstance(node, (cst.Tuple, cst.List)):
            return {a for e in node.elements for a in self.stands_for(e.value)}
        return self.stands_for(node)

    def store(self, target: cst.BaseExpression, value: cst.CSTNode) -> None:
        attribute = self.attribute(target)
        if attribute is not None:
            self.children |= {(attribute, name) for name in self.constructed(value)}
        elif isinstance(target, cst.Name):
            self.locals.setdefault(target.value, set()).update(self.constructed(value))
            if isinstance(value, cst.BaseExpression) and self.stands_for(value):
                self.items.setdefault(target.value, set()).update(self.stands_for(value))

    def assigned(self, node: cst.Assign | cst.AnnAssign) -> None:
        if isinstance(node, cst.Assign):
            for target in node.targets:
                self.store(target.target, node.value)
        elif node.value is not None:
            self.store(node.target, node.value)

    def loop(self, node: cst.For) -> None:
        """`for layer in self.layers.values():` makes `layer` stand for `self.layers`."""
        over = self.iterated(node.iter)
        target = node.target
        if isinstance(target, cst.Tuple) and target.elements:
            target = target.elements[-1].value  # `for name, layer in ....items()`
        if over and isinstance(target, cst.Name):
            self.items.setdefault(target.value, set()).update(over)

    def call(self, node: cst.Call) -> None:
        if not isinstance(node.func, cst.Attribute):
            return
        method, receiver = node.func.attr.value, node.func.value
        if method in _ADDING:
            attribute = self.attribute(receiver)
            if attribute is not None:
                self.children |= {(attribute, n) for n in self.constructed(node)}
            elif isinstance(receiver, cst.Name):
                self.locals.setdefault(receiver.value, set()).update(self.constructed(node))
        for attribute in self.stands_for(receiver):
            self.descends.add((attribute, method))

    def nested(self, node: cst.FunctionDef) -> None:
        """Everything in a nested function, in the order it is written."""
        for current in walk.preorder(node.body):
            kind = type(current)
            if kind is cst.Assign or kind is cst.AnnAssign:
                self.assigned(cast(cst.Assign | cst.AnnAssign, current))
            elif kind is cst.For:
                self.loop(cast(cst.For, current))
            elif kind is cst.Call:
                self.call(cast(cst.Call, current))

    def found(self) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
        """(attribute, class name) pairs the method constructs, and (attribute, method)
        pairs it calls on its children."""
        return tuple(sorted(self.children)), tuple(sorted(self.descends))
