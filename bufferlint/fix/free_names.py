"""The names that replayed construction code reads from outside itself, and how the hook
reads each: a parameter from the attribute `__init__` stored it in, another file's global
through an import added to the hook's file. A name the hook cannot know makes the
rebuild unavailable.
"""

from __future__ import annotations

import builtins
import os
import re
from dataclasses import dataclass

import libcst as cst

from bufferlint.fix.index import SourceIndex
from bufferlint.fix.replay import (
    MethodScope,
    Unavailable,
    bound_in,
    code_of,
    reads,
    self_attribute,
)
from bufferlint.fix.workspace import Workspace

# Parameters that only place or type a tensor: the rebuilt buffer's own are used instead.
_PLACEMENT = {"device": "device", "dtype": "dtype"}


class FreeNames:
    """How the hook in `index`, whose `self` is `self_name`, reads replayed code's names.

    A constructor parameter is read, in this order, from the attribute `__init__` stored
    it in, from the rebuilt buffer itself (`device`, `dtype`), or, as an unsafe fix, from
    an attribute that the fix stores it in at the start of `__init__` (`stores`), when
    that `__init__` is the fixed class's own (`own_init`).
    """

    def __init__(
        self,
        workspace: Workspace,
        index: SourceIndex,
        self_name: str,
        own_init: cst.FunctionDef | None = None,
        taken: frozenset[str] = frozenset(),
    ) -> None:
        self.workspace = workspace
        self.index = index  # the file the hook is in
        self.self_name = self_name
        self.own_init = own_init
        self.taken = taken  # names a new attribute must not have: the class's buffers
        self.imports: dict[str, str] = {}  # names the hook's file must import: local -> qualified
        self.stores: dict[str, str] = {}  # parameters the fix stores: parameter -> attribute

    def mapping(
        self,
        scope: MethodScope,
        unresolved: set[str],
        replayed: list[cst.BaseSmallStatement],
        buffer: str | None = None,
        shadowed: frozenset[str] = frozenset(),
    ) -> dict[str, cst.BaseExpression]:
        """What the hook writes for each name the replayed code takes from outside itself;
        `buffer` is the buffer being rebuilt, whose device and dtype stand in for those
        that construction was given. `shadowed` are parameters that the replayed code
        reads only before it assigns them again, so that storing them at the start of
        `__init__` keeps the value it reads."""
        mapping: dict[str, cst.BaseExpression] = {}
        if scope.self_name != self.self_name:
            mapping[scope.self_name] = cst.Name(self.self_name)
        for name in sorted(unresolved - {scope.self_name}):
            reader = next((s for s in replayed if name in reads(s)), replayed[-1])
            line = _LineOf(scope.index, reader)  # for a message: positions cost a codegen
            if name in scope.params:
                mapping[name] = self._parameter(scope, name, line, buffer, name in shadowed)
            elif name in scope.locals:
                raise Unavailable(
                    f"`{name}` (read at line {line}) is not set on every path through "
                    f"`{scope.name}` before it"
                )
            elif scope.index.path != self.index.path and not self._same_global(scope, name):
                raise Unavailable(
                    f"`{name}` (read at line {line} of {os.path.basename(scope.index.path)}) "
                    f"is not defined in {os.path.basename(self.index.path)}"
                )
        return mapping

    def _parameter(
        self, scope: MethodScope, name: str, line: object, buffer: str | None, shadowed: bool
    ) -> cst.BaseExpression:
        if name in scope.stored:
            return self_attribute(self.self_name, scope.stored[name])
        if name in _PLACEMENT and buffer is not None:
            return cst.Attribute(
                value=self_attribute(self.self_name, buffer), attr=cst.Name(_PLACEMENT[name])
            )
        rebound = name in scope.rebound and not (shadowed and _assigned_late(scope, name))
        if scope.node is self.own_init and not rebound and _storable(scope, name):
            if name not in self.stores:
                attr = name
                while attr in scope.attributes | self.taken or attr in self.stores.values():
                    attr = "_" + attr
                self.stores[name] = attr
            return self_attribute(self.self_name, self.stores[name])
        raise Unavailable(
            f"`{name}` (a parameter of `{scope.name}`, read at line {line}) is not "
            f"stored unchanged on `self`, so the hook cannot know it"
        )

    def _same_global(self, scope: MethodScope, name: str) -> bool:
        """Whether a global of another file's code means the same in the hook's file, or
        can be made to by importing it there (a package outside the project only)."""
        there = scope.index.facts.imports.get(name)
        if there is None:
            return hasattr(builtins, name) and name not in self.index.module_names()
        here = self.index.facts.imports.get(name)
        if here is not None or name in self.index.module_names():
            return here == there
        if self.workspace.is_project_module(there.split(".")[0]):
            return False
        self.imports[name] = there
        return True


def _assigned_late(scope: MethodScope, name: str) -> bool:
    """Whether `__init__` assigns parameter `name` again only after the fix stores it."""
    body = scope.node.body
    statements = list(body.body) if isinstance(body, cst.IndentedBlock) else []
    return not any(name in bound_in(s) for s in statements[: store_position(statements)])


def store_position(statements: list[cst.BaseStatement]) -> int:
    """Where in `__init__`'s body the fix stores arguments: after `super().__init__()`,
    else first, after a docstring."""
    for position, statement in enumerate(statements):
        if _calls_super_init(statement):
            return position + 1
    return 1 if statements and is_docstring(statements[0]) else 0


def _calls_super_init(statement: cst.BaseStatement) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    if not isinstance(small, cst.Expr) or not isinstance(small.value, cst.Call):
        return False
    func = small.value.func
    return isinstance(func, cst.Attribute) and func.attr.value == "__init__"


def is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


_NOT_STORED = re.compile(r"module|model|layer|net|tensor|weight|buffer|param|block", re.I)


def _storable(scope: MethodScope, name: str) -> bool:
    """Whether storing the argument on `self` keeps the module's state: not a module or
    a tensor, which `nn.Module.__setattr__` would register as a submodule or keep alive."""
    params = scope.node.params
    found = next(
        (
            p
            for p in (*params.posonly_params, *params.params, *params.kwonly_params)
            if p.name.value == name
        ),
        None,
    )
    if found is None:
        return False
    if found.annotation is not None:
        annotation = found.annotation.annotation
        if _scalar(annotation):  # `block_size: int`: the name says nothing then
            return True
        if _NOT_STORED.search(code_of(annotation)):
            return False
    return not _NOT_STORED.search(name)


_SCALARS = frozenset({"int", "float", "bool", "str", "None"})


def _scalar(annotation: cst.BaseExpression) -> bool:
    """`int`, `float | None`, `Optional[bool]`: a value `nn.Module.__setattr__` keeps as
    a plain attribute."""
    if isinstance(annotation, cst.Name):
        return annotation.value in _SCALARS - {"None"}
    if isinstance(annotation, cst.BinaryOperation) and isinstance(annotation.operator, cst.BitOr):
        sides = (annotation.left, annotation.right)
        return all(_scalar(s) or code_of(s) == "None" for s in sides) and any(
            _scalar(s) for s in sides
        )
    if isinstance(annotation, cst.Subscript) and code_of(annotation.value) in (
        "Optional",
        "typing.Optional",
    ):
        items = annotation.slice
        return (
            len(items) == 1
            and isinstance(items[0].slice, cst.Index)
            and _scalar(items[0].slice.value)
        )
    return False


@dataclass(frozen=True)
class _LineOf:
    """A node's line, looked up only when a message is formatted."""

    index: SourceIndex
    node: cst.CSTNode

    def __str__(self) -> str:
        return str(self.index.line_of(self.node))
