"""One file as the fixer sees it: CST nodes for the facts' line and column numbers, and
their enclosing statements and methods.

A fix looks inside a few classes of a file that may hold thousands, so the file's
top-level statements are parsed one at a time, when first asked for (bufferlint.fix.chunks).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Mapping

import libcst as cst

from bufferlint import prefilter
from bufferlint.facts import FileFacts, MethodFacts
from bufferlint.fix.chunks import Chunk, Chunks
from bufferlint.syntax import dotted

_ASYNC = re.compile(r"async[ \t]+")
# Top-level statements that may bind a name: not imports (the facts know those) and not
# compound statements, which `module_names` does not look into.
_BINDS = re.compile(r"@|(?!(?:import|from|if|for|while|try|with)\b)[^\W\d]")


class SourceIndex:
    """A file's text, the facts extracted from it, and its CST nodes on demand."""

    def __init__(
        self,
        text: str,
        facts: FileFacts,
        splits: Mapping[str, prefilter.FileIndex] | None = None,
    ) -> None:
        """`splits`: as for `Chunks`."""
        self.text = text
        self.facts = facts
        self.chunks = Chunks(text, facts, splits)
        self._parents = self.chunks.parents
        self._positions = self.chunks.positions
        self._names: set[str] | None = None

    @property
    def path(self) -> str:
        return self.facts.path

    def top_level(self) -> Iterator[tuple[Chunk, cst.BaseStatement]]:
        """Every top-level statement parsed so far, in order, with its chunk."""
        return self.chunks.top_level()

    def span(self, chunk: Chunk, statement: cst.BaseStatement) -> tuple[int, int]:
        """Where a top-level statement's code (its leading lines included) lies in the text."""
        return self.chunks.span(chunk, statement)

    def code_for_statement(
        self, chunk: Chunk, statement: cst.CSTNode, replacing: cst.CSTNode | None = None
    ) -> str:
        """A top-level statement's text (or the text of one `replacing` it); the file's
        last one lacks the final newline when the file does."""
        return self.chunks.code_for_statement(chunk, statement, replacing)

    def at(self, line: int, column: int) -> list[cst.CSTNode]:
        """Nodes that start at a 1-based line and column, outermost first."""
        chunk = self.chunks.at_line(line)
        if chunk is not None:
            self._positions.resolve(chunk, self.chunks.holds)
        return self._positions.at(line, column)

    def line_of(self, node: cst.CSTNode) -> int:
        """A node's line (for messages): where the facts' walk found it; else, inside a
        function, from the positions of that function alone, shifted to the file by a node
        the facts located there; else from its whole top-level statement's."""
        ranges = self._positions.ranges
        if node in ranges:
            return ranges[node].start.line
        located = self.chunks.located_lines
        if id(node) in located:
            return located[id(node)]
        function = next(
            (n for n in (node, *self.ancestors(node)) if isinstance(n, cst.FunctionDef)), None
        )
        if function is not None:
            shift, positions = self._positions.of_function(function, self.chunks.located)
            if shift is not None and node in positions:
                return positions[node].start.line + shift
        top = node
        for ancestor in self.ancestors(node):
            top = ancestor
        chunk = self.chunks.of_module(top)
        if chunk is not None:
            self._positions.resolve(chunk, self.chunks.holds)
        return ranges[node].start.line

    def class_at(self, line: int, column: int) -> cst.ClassDef | None:
        """The class whose name starts at the position the facts give for it."""
        self.chunks.at_line(line)
        found = self._class_named(self.chunks.located.get((line, column), []))
        return found if found is not None else self._class_named(self.at(line, column))

    def _class_named(self, nodes: list[cst.CSTNode]) -> cst.ClassDef | None:
        for node in nodes:
            parent = self.parent(node)
            if isinstance(parent, cst.ClassDef) and parent.name is node:
                return parent
        return None

    def event_node(self, line: int, column: int, kind: str, name: str) -> cst.CSTNode | None:
        """The call or assignment an event was recorded for."""
        self.chunks.at_line(line)
        quick = _event_node(self.chunks.located.get((line, column), []), kind, name)
        return quick if quick is not None else _event_node(self.at(line, column), kind, name)

    def parent(self, node: cst.CSTNode | None) -> cst.CSTNode | None:
        return self._parents.parent(node)

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        return self._parents.ancestors(node)

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
        """Names the file binds at its top level (imports aside: see the facts). Only the
        statements that may bind one are parsed."""
        if self._names is None:
            self._names = set()
            binding = (
                n for n, start in enumerate(self.chunks.starts) if _BINDS.match(self.text, start)
            )
            for statement in self.chunks.parsed(binding):
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
        # One search of the whole text, not one per statement.
        lines = _line_starts(_definition(name), self.text)
        for statement in self.chunks.parsed(
            bisect.bisect_right(self.chunks.starts, m.start()) - 1 for m in lines
        ):
            if isinstance(statement, cst.FunctionDef) and statement.name.value == name:
                found = statement
        return found


def _definition(name: str) -> re.Pattern[str]:
    """`def name` (or `async def name`): a literal first, which `re` scans for fast."""
    return re.compile(rf"def[ \t]+{re.escape(name)}\b")


def _line_starts(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """Matches of `pattern` that start a line, or follow `async` that starts one."""
    for match in pattern.finditer(text):
        start = match.start()
        line = max(text.rfind("\n", 0, start), text.rfind("\r", 0, start)) + 1
        if line == start or _ASYNC.fullmatch(text, line, start):
            yield match


def _event_node(nodes: list[cst.CSTNode], kind: str, name: str) -> cst.CSTNode | None:
    """Of the nodes at an event's position (outermost first), the one it was recorded for."""
    statements = [n for n in nodes if isinstance(n, (cst.Assign, cst.AnnAssign))]
    calls = [n for n in nodes if isinstance(n, cst.Call)]
    if kind in ("assign", "buffer", "fill", "frozen") and statements:
        return statements[0]
    if kind == "update":  # `self.b += 1`, or an in-place call as a fill is
        updates = [n for n in nodes if isinstance(n, cst.AugAssign)]
        if updates:
            return updates[0]
    wanted = {"register": "register_buffer", "frozen": "register_parameter"}.get(kind, name)
    for call in reversed(calls):  # innermost first
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == wanted:
            return call
    if kind in ("fill", "update"):
        for call in reversed(calls):
            if (dotted(call.func) or "").rsplit(".", 1)[-1].endswith("_"):
                return call
    return None


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
