"""One parsed file, with what the fixer needs to go from the facts' line and column
numbers back to CST nodes and up to their enclosing statements and methods.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterator

import libcst as cst
from libcst.metadata import CodePosition, CodeRange, MetadataWrapper, PositionProvider

from bufferlint import parsing
from bufferlint.facts import FileFacts, MethodFacts, dotted

_NEWLINE = re.compile(r"\r\n|\r|\n")


class SourceIndex:
    """A file's CST (from the text the facts were extracted from) with positions and parents."""

    def __init__(self, text: str, facts: FileFacts) -> None:
        # bufferlint.parsing: LibCST's own parse crashes the process on deep nesting.
        self.module = parsing.parse_module(text)
        self.text = text
        self.facts = facts
        self.parents = parent_map(self.module)  # LibCST's ParentNodeProvider is 7x slower
        # Positions cost twice the parse for a whole file, and a fix only looks inside a
        # few classes: they are resolved per top-level statement, when first asked for.
        self.positions: dict[cst.CSTNode, CodeRange] = {}
        self._starts: dict[tuple[int, int], list[cst.CSTNode]] = defaultdict(list)
        self._resolved: set[int] = set()
        self._first_lines: list[int] | None = None
        self._spans: list[tuple[int, int]] | None = None
        self._names: set[str] | None = None

    def _statement_lines(self) -> list[int]:
        """The first line (1-based, leading comments included) of each top-level statement."""
        if self._first_lines is None:
            # Line breaks as LibCST counts them: "\r" alone is one too (old Mac files).
            lines, line, previous = [], 1, 0
            for start, _ in self.spans():
                line += len(_NEWLINE.findall(self.text, previous, start))
                lines.append(line)
                previous = start
            self._first_lines = lines
        return self._first_lines

    def _resolve(self, index: int) -> None:
        """Positions of one top-level statement's nodes, shifted to the file's lines."""
        if index in self._resolved:
            return
        self._resolved.add(index)
        statement = self.module.body[index]
        alone = self.module.with_changes(body=[statement], header=[], footer=[])
        offset = self._statement_lines()[index] - 1
        for node, where in (
            MetadataWrapper(alone, unsafe_skip_copy=True).resolve(PositionProvider).items()
        ):
            if node is alone:
                continue
            shifted = CodeRange(
                CodePosition(where.start.line + offset, where.start.column),
                CodePosition(where.end.line + offset, where.end.column),
            )
            self.positions[node] = shifted
            self._starts[(shifted.start.line, shifted.start.column + 1)].append(node)

    def _resolve_line(self, line: int) -> None:
        lines = self._statement_lines()
        index = bisect.bisect_right(lines, line) - 1
        if index >= 0:
            self._resolve(index)

    def _resolve_node(self, node: cst.CSTNode) -> None:
        top = node
        for ancestor in self.ancestors(node):
            if ancestor is self.module:
                break
            top = ancestor
        for index, statement in enumerate(self.module.body):
            if statement is top:
                self._resolve(index)
                return

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
        self._resolve_line(line)
        return self._starts.get((line, column), [])

    def line_of(self, node: cst.CSTNode) -> int:
        if node not in self.positions:
            self._resolve_node(node)
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
