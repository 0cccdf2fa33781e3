"""One parsed file, with what the fixer needs to go from the facts' line and column
numbers back to CST nodes and up to their enclosing statements and methods.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from bufferlint.facts import FileFacts, MethodFacts, dotted


class SourceIndex:
    """A file's CST (from the text the facts were extracted from) with positions and parents."""

    def __init__(self, text: str, facts: FileFacts) -> None:
        wrapper = MetadataWrapper(cst.parse_module(text), unsafe_skip_copy=True)
        self.text = text
        self.facts = facts
        self.module = wrapper.module
        self.parents = parent_map(self.module)  # LibCST's ParentNodeProvider is 7x slower
        self.positions = wrapper.resolve(PositionProvider)
        self._starts: dict[tuple[int, int], list[cst.CSTNode]] = defaultdict(list)
        for node, where in self.positions.items():
            self._starts[(where.start.line, where.start.column + 1)].append(node)
        self._spans: list[tuple[int, int]] | None = None
        self._names: set[str] | None = None

    def spans(self) -> list[tuple[int, int]]:
        """Where each top-level statement's code (with its leading lines) lies in the text,
        so that an edit can replace one statement's text without regenerating the file."""
        if self._spans is None:
            spans, cursor = [], 0
            for statement in self.module.body:
                piece = self.code_for_statement(statement, last=statement is self.module.body[-1])
                start = cursor if self.text.startswith(piece, cursor) else self.text.index(piece)
                spans.append((start, start + len(piece)))
                cursor = start + len(piece)
            self._spans = spans
        return self._spans

    def code_for_statement(self, statement: cst.CSTNode, last: bool) -> str:
        """A top-level statement's text; the file's last one lacks the final newline when
        the file does."""
        code = self.module.code_for_node(statement)
        if last and not self.module.has_trailing_newline:
            code = code.removesuffix(self.module.default_newline)
        return code

    @property
    def path(self) -> str:
        return self.facts.path

    def at(self, line: int, column: int) -> list[cst.CSTNode]:
        """Nodes that start at a 1-based line and column, outermost first."""
        return self._starts.get((line, column), [])

    def line_of(self, node: cst.CSTNode) -> int:
        return self.positions[node].start.line

    def class_at(self, line: int, column: int) -> cst.ClassDef | None:
        """The class whose name starts at the position the facts give for it."""
        for node in self.at(line, column):
            parent = self.parents.get(node)
            if isinstance(parent, cst.ClassDef) and parent.name is node:
                return parent
        return None

    def event_node(self, line: int, column: int, kind: str, name: str) -> cst.CSTNode | None:
        """The call or assignment an event was recorded for."""
        nodes = self.at(line, column)
        statements = [n for n in nodes if isinstance(n, (cst.Assign, cst.AnnAssign))]
        calls = [n for n in nodes if isinstance(n, cst.Call)]
        if kind in ("assign", "buffer") and statements:
            return statements[0]
        if kind == "fill" and statements:
            return statements[0]
        wanted = {"register": "register_buffer"}.get(kind, name)
        for call in reversed(calls):  # innermost first
            func = call.func
            if isinstance(func, cst.Attribute) and func.attr.value == wanted:
                return call
        if kind == "fill":
            for call in reversed(calls):
                if (dotted(call.func) or "").rsplit(".", 1)[-1].endswith("_"):
                    return call
        return None

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        current = self.parents.get(node)
        while current is not None:
            yield current
            current = self.parents.get(current)

    def statement_of(self, node: cst.CSTNode) -> cst.BaseSmallStatement | None:
        """The small statement holding `node` (itself if it is one)."""
        if isinstance(node, cst.BaseSmallStatement):
            return node
        for ancestor in self.ancestors(node):
            if isinstance(ancestor, cst.BaseSmallStatement):
                return ancestor
            if isinstance(ancestor, (cst.BaseCompoundStatement, cst.Lambda)):
                return None
        return None

    def method(self, class_node: cst.ClassDef, facts: MethodFacts) -> cst.FunctionDef | None:
        """The definition a method's facts were taken from."""
        for node in class_methods(class_node):
            if node.name.value != facts.name:
                continue
            setter = any((dotted(d.decorator) or "").endswith(".setter") for d in node.decorators)
            if setter == (facts.kind == "setter"):
                return node
        return None

    def module_names(self) -> set[str]:
        """Names the file binds at its top level (imports aside: see the facts)."""
        if self._names is None:
            self._names = set()
            for statement in self.module.body:
                if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
                    self._names.add(statement.name.value)
                elif isinstance(statement, cst.SimpleStatementLine):
                    for small in statement.body:
                        if isinstance(small, cst.Assign):
                            for target in small.targets:
                                if isinstance(target.target, cst.Name):
                                    self._names.add(target.target.value)
                        elif isinstance(small, cst.AnnAssign) and isinstance(
                            small.target, cst.Name
                        ):
                            self._names.add(small.target.value)
        return self._names

    def module_function(self, name: str) -> cst.FunctionDef | None:
        """A function defined at the top level of the file (last definition wins)."""
        found = None
        for statement in self.module.body:
            if isinstance(statement, cst.FunctionDef) and statement.name.value == name:
                found = statement
        return found


def class_methods(class_node: cst.ClassDef) -> Iterator[cst.FunctionDef]:
    """Methods of a class body, also those under `if` or `try` there, in order."""
    yield from _methods(class_node.body.body)


def _methods(statements: object) -> Iterator[cst.FunctionDef]:
    for statement in statements if isinstance(statements, (list, tuple)) else ():
        if isinstance(statement, cst.FunctionDef):
            yield statement
        elif isinstance(statement, (cst.If, cst.Try, cst.With)):
            yield from _methods(statement.body.body)
            orelse = getattr(statement, "orelse", None)
            if isinstance(orelse, cst.If):
                yield from _methods([orelse])
            elif orelse is not None:
                yield from _methods(orelse.body.body)


_FIELDS: dict[type, tuple[str, ...]] = {}


def fields_of(node: cst.CSTNode) -> tuple[str, ...]:
    kind = type(node)
    if kind not in _FIELDS:
        _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(kind))
    return _FIELDS[kind]


def parent_map(root: cst.CSTNode) -> dict[cst.CSTNode, cst.CSTNode]:
    """Each node's parent, found by walking the dataclass fields."""
    parents: dict[cst.CSTNode, cst.CSTNode] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        for name in fields_of(node):
            value = getattr(node, name)
            children = value if isinstance(value, (list, tuple)) else (value,)
            for child in children:
                if isinstance(child, cst.CSTNode):
                    parents[child] = node
                    stack.append(child)
    return parents
