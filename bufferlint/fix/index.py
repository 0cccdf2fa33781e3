"""One file as the fixer sees it: CST nodes for the facts' line and column numbers, and
their enclosing statements and methods, parsed one top-level statement at a time.

A fix looks inside a few classes of a file that may hold thousands, so each top-level
statement is parsed only when first asked for, from its own text: its positions move by a
whole number of lines, and columns stay (a top-level statement starts a line). A file
whose statements the prefilter cannot split is parsed whole, as one chunk.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

import libcst as cst

from bufferlint import parsing, prefilter, trees
from bufferlint.cache import digest_of
from bufferlint.extract import locate
from bufferlint.facts import FileFacts, MethodFacts
from bufferlint.syntax import dotted
from bufferlint.walk import parent_map

if TYPE_CHECKING:
    from libcst.metadata import CodeRange

_NEWLINE = re.compile(r"\r\n|\r|\n")
_ASYNC = re.compile(r"async[ \t]+")
# Top-level statements that may bind a name: not imports (the facts know those) and not
# compound statements, which `module_names` does not look into.
_BINDS = re.compile(r"@|(?!(?:import|from|if|for|while|try|with)\b)[^\W\d]")


@dataclasses.dataclass
class _Chunk:
    """One parsed top-level statement (or, for an unsplit file, all of them)."""

    module: cst.Module  # the statement's own text (or the file's, or the lint's tree), parsed
    body: list[cst.BaseStatement]
    last: bool  # the file's last chunk
    offset: int  # lines in the file before the chunk's first
    number: int  # the statement's
    kept: bool = False  # a statement of a tree the lint kept (bufferlint.trees)


class SourceIndex:
    """A file's text, the facts extracted from it, and its CST nodes on demand."""

    def __init__(
        self,
        text: str,
        facts: FileFacts,
        splits: Mapping[str, prefilter.FileIndex] | None = None,
    ) -> None:
        """`splits`: the lint's split indexes, by digest of the text: not split again. The
        trees the lint kept of this text (bufferlint.trees) stand in for parsing."""
        self.text = text
        self.facts = facts
        newline = _NEWLINE.search(text)
        self._newline = newline.group() if newline else "\n"
        digest = digest_of(text.encode("utf-8", "surrogatepass"))
        # CPython parsed this very text when the lint read it: its statements need no
        # nesting check of their own.
        self._compiled = bool(facts.compiled) and facts.compiled == digest
        self._kept = trees.take(facts.path, digest)
        known = (splits or {}).get(digest)
        if known is None or known.starts is None:
            known = prefilter.index(text, split=True)
        self._split = known
        assert self._split.starts is not None
        self.starts: list[int] = list(self._split.starts)
        self.lines = prefilter.first_lines(text, self.starts)
        self._parents: dict[int, cst.CSTNode] = {}  # by id of the child
        self._later: deque[cst.FunctionDef] = deque()  # functions not yet in `_parents`
        self.positions: dict[cst.CSTNode, CodeRange] = {}
        self._at: dict[tuple[int, int], list[cst.CSTNode]] = defaultdict(list)
        self._chunks: dict[int, _Chunk] = {}
        self._number: dict[int, int] = {}  # id of a chunk's module -> its (first) number
        self._resolved: set[tuple[int, int]] = set()  # chunks with positions known
        self._names: set[str] | None = None
        # Where the facts' own walk finds class names and event nodes, per parsed chunk:
        # the way back from facts to nodes. LibCST's positions are the slow fallback.
        self._located: dict[tuple[int, int], list[cst.CSTNode]] = {}
        self._located_lines: dict[int, int] = {}  # the same, as lines by id of the node
        self._functions: dict[int, tuple[int | None, dict[cst.CSTNode, CodeRange]]] = {}

    # -- chunks ------------------------------------------------------------------------
    def _chunk(self, number: int) -> _Chunk:
        """Parses statement `number` alone; a split that does not parse as expected makes
        the whole file one chunk (raises what `parsing.parse_module` raises for it)."""
        if number in self._chunks:
            return self._chunks[number]
        count = len(self.starts)
        adopted = self._adopt(number) if count > 1 else None
        if adopted is not None:
            return adopted
        if count > 1:
            end = self.starts[number + 1] if number + 1 < count else len(self.text)
            piece = self.text[self.starts[number] : end]
            # New code's lines end as the file's first line does (LibCST takes the first
            # line break it meets): a blank line first, which goes to the module's header.
            first = _NEWLINE.search(piece)
            prefix = "" if first is None or first.group() == self._newline else self._newline
            piece = prefix + piece
            try:
                module = parsing.parse_module(piece, self._compiled)
            except (cst.ParserSyntaxError, parsing.TooDeep):
                return self._whole()
            if module.body:
                offset = self.lines[number] - (2 if prefix else 1)
                chunk = _Chunk(module, list(module.body), number == count - 1, offset, number)
                # The facts' forward search finds what it finds in the whole file only
                # where no `class Name` of this statement's occurs earlier.
                self._add(number, chunk, piece, self._split.safe(number))
                return chunk
        return self._whole()

    def _whole(self) -> _Chunk:
        """The file parsed in one piece, for every statement from now on."""
        module = parsing.parse_module(self.text, self._compiled)
        self.starts, self.lines = [0], [1]
        # Nodes of the statements parsed alone so far belong to no chunk any more: none
        # of them may be found again (a plan on one could not be rendered).
        # (Parents go by id, and the ids of nodes let go may come back.)
        for found in (
            self._chunks,
            self._number,
            self._located,
            self._located_lines,
            self._at,
            self.positions,
            self._parents,
        ):
            found.clear()
        self._later.clear()
        self._functions.clear()
        self._resolved.clear()
        self._kept = []
        self._add(0, _Chunk(module, list(module.body), True, 0, 0), self.text, True)
        return self._chunks[0]

    def _adopt(self, number: int) -> _Chunk | None:
        """Statement `number` from a tree the lint kept, where it is what parsing the
        statement alone would give: a class whose body sets the indentation that new code
        takes (a lone statement's first indented line does) and whose lines end as the
        file's first line does. Comment lines above it, which that tree gives to it rather
        than to the statement before, are left out of its code (`code_for_statement`)."""
        for kept in self._kept:
            statement = kept.statements.get(number)
            if statement is None:
                continue
            if not (
                isinstance(statement, cst.ClassDef)
                and isinstance(statement.body, cst.IndentedBlock)
                and statement.body.indent is None
                and kept.module.default_newline == self._newline
            ):
                return None
            last = number == len(self.starts) - 1
            chunk = _Chunk(kept.module, [statement], last, 0, number, kept=True)
            self._chunks[number] = chunk
            self._number.setdefault(id(kept.module), number)
            self._parents[id(statement)] = kept.module
            # The tree's other statements may not be used.
            parent_map(statement, self._parents, self._later)
            for (line, column), nodes in kept.located.items():
                if self._holds(number, line):
                    self._record_located(line, column, nodes)
            return chunk
        return None

    def _record_located(self, line: int, column: int, nodes: list[cst.CSTNode]) -> None:
        self._located.setdefault((line, column), []).extend(nodes)
        for node in nodes:
            self._located_lines[id(node)] = line

    def _holds(self, number: int, line: int) -> bool:
        """Whether the file's line `line` lies in statement `number`."""
        after = number + 1 < len(self.lines)
        return self.lines[number] <= line and (not after or line < self.lines[number + 1])

    def _add(self, number: int, chunk: _Chunk, text: str, located: bool) -> None:
        self._chunks[number] = chunk
        self._number[id(chunk.module)] = number
        parent_map(chunk.module, self._parents, self._later)
        if located:
            for (line, column), nodes in locate(text, chunk.module, self.facts.imports).items():
                self._record_located(line + chunk.offset, column, nodes)

    def _chunk_at_line(self, line: int) -> _Chunk | None:
        number = bisect.bisect_right(self.lines, line) - 1
        return self._chunk(number) if number >= 0 else None

    def _resolve(self, chunk: _Chunk) -> None:
        """Positions of a chunk's nodes, moved to the file's lines (of a kept tree, only
        those of the chunk's statement: its other statements may have been parsed alone)."""
        key = (id(chunk.module), chunk.number if chunk.kept else -1)
        if key in self._resolved:
            return
        self._resolved.add(key)
        from libcst.metadata import (  # the slow path only
            CodePosition,
            CodeRange,
            MetadataWrapper,
            PositionProvider,
        )

        wrapper = MetadataWrapper(chunk.module, unsafe_skip_copy=True)
        shift = chunk.offset
        for node, where in wrapper.resolve(PositionProvider).items():
            if node is chunk.module:
                continue
            start, stop = where.start, where.end
            if chunk.kept and not self._holds(chunk.number, start.line):
                continue
            where = CodeRange(
                CodePosition(start.line + shift, start.column),
                CodePosition(stop.line + shift, stop.column),
            )
            self.positions[node] = where
            self._at[(where.start.line, where.start.column + 1)].append(node)

    def top_level(self) -> Iterator[tuple[_Chunk, cst.BaseStatement]]:
        """Every top-level statement parsed so far, in order, with its chunk."""
        for number in sorted(self._chunks):
            chunk = self._chunks[number]
            for statement in chunk.body:
                yield chunk, statement

    def span(self, chunk: _Chunk, statement: cst.BaseStatement) -> tuple[int, int]:
        """Where a top-level statement's code (its leading lines included) lies in the text."""
        cursor = self.starts[chunk.number]
        for node in chunk.body:
            piece = self.code_for_statement(chunk, node)
            found = self.text.startswith(piece, cursor)
            start = cursor if found else self.text.index(piece, cursor)
            cursor = start + len(piece)
            if node is statement:
                return start, cursor
        raise ValueError("not a top-level statement of this chunk")

    def code_for_statement(
        self, chunk: _Chunk, statement: cst.CSTNode, replacing: cst.CSTNode | None = None
    ) -> str:
        """A top-level statement's text (or the text of one `replacing` it); the file's
        last one lacks the final newline when the file does."""
        module = chunk.module
        code = module.code_for_node(statement)
        if chunk.kept:
            leading = getattr(statement, "leading_lines", ())
            code = code[len("".join(module.code_for_node(line) for line in leading)) :]
        last = (replacing or statement) is chunk.body[-1]
        if chunk.last and last and not module.has_trailing_newline:
            code = code.removesuffix(module.default_newline)
        return code

    @property
    def path(self) -> str:
        return self.facts.path

    def at(self, line: int, column: int) -> list[cst.CSTNode]:
        """Nodes that start at a 1-based line and column, outermost first."""
        chunk = self._chunk_at_line(line)
        if chunk is not None:
            self._resolve(chunk)
        return self._at.get((line, column), [])

    def line_of(self, node: cst.CSTNode) -> int:
        """A node's line (for messages): where the facts' walk found it (two in three of
        those asked). Else, inside a function, from the positions of that function alone,
        shifted to the file by a node the facts located there; else from its whole
        top-level statement's."""
        if node in self.positions:
            return self.positions[node].start.line
        if id(node) in self._located_lines:
            return self._located_lines[id(node)]
        function = next(
            (n for n in (node, *self.ancestors(node)) if isinstance(n, cst.FunctionDef)), None
        )
        if function is not None:
            shift, positions = self._function_lines(function)
            if shift is not None and node in positions:
                return positions[node].start.line + shift
        top = node
        for ancestor in self.ancestors(node):
            top = ancestor
        if id(top) in self._number:
            self._resolve(self._chunks[self._number[id(top)]])
        return self.positions[node].start.line

    def _function_lines(
        self, function: cst.FunctionDef
    ) -> tuple[int | None, dict[cst.CSTNode, CodeRange]]:
        """Positions of a function's nodes as if it stood alone (lines move by a constant),
        and that constant, if the located nodes in it agree on one."""
        if id(function) not in self._functions:
            from libcst.metadata import MetadataWrapper, PositionProvider

            alone = cst.Module(body=[function])
            positions = MetadataWrapper(alone, unsafe_skip_copy=True).resolve(PositionProvider)
            shifts = {
                line - positions[found].start.line
                for (line, _), nodes in self._located.items()
                for found in nodes
                if found in positions and found is not function.name
            }
            shift = shifts.pop() if len(shifts) == 1 else None
            self._functions[id(function)] = (shift, dict(positions))
        return self._functions[id(function)]

    def class_at(self, line: int, column: int) -> cst.ClassDef | None:
        """The class whose name starts at the position the facts give for it."""
        self._chunk_at_line(line)
        found = self._class_named(self._located.get((line, column), []))
        return found if found is not None else self._class_named(self.at(line, column))

    def _class_named(self, nodes: list[cst.CSTNode]) -> cst.ClassDef | None:
        for node in nodes:
            parent = self.parent(node)
            if isinstance(parent, cst.ClassDef) and parent.name is node:
                return parent
        return None

    def event_node(self, line: int, column: int, kind: str, name: str) -> cst.CSTNode | None:
        """The call or assignment an event was recorded for."""
        self._chunk_at_line(line)
        quick = _event_node(self._located.get((line, column), []), kind, name)
        return quick if quick is not None else _event_node(self.at(line, column), kind, name)

    def parent(self, node: cst.CSTNode | None) -> cst.CSTNode | None:
        if node is None:
            return None
        found = self._parents.get(id(node))
        while found is None and self._later and not isinstance(node, cst.Module):
            parent_map(self._later.popleft(), self._parents, self._later)
            found = self._parents.get(id(node))
        return found

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        current = self.parent(node)
        while current is not None:
            yield current
            current = self.parent(current)

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
            binding = (n for n, start in enumerate(self.starts) if _BINDS.match(self.text, start))
            for statement in self._parsed(binding):
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
        # One search of the whole text: a search of each statement in turn took a tenth
        # of the time planning took on transformers.
        lines = _line_starts(_definition(name), self.text)
        for statement in self._parsed(
            bisect.bisect_right(self.starts, m.start()) - 1 for m in lines
        ):
            if isinstance(statement, cst.FunctionDef) and statement.name.value == name:
                found = statement
        return found

    def _parsed(self, numbers: Iterable[int]) -> list[cst.BaseStatement]:
        """Every top-level statement parsed so far, after parsing statements `numbers`."""
        for number in sorted(numbers):
            if len(self.starts) == 1:  # it went whole
                break
            self._chunk(number)
        if len(self.starts) == 1:  # unsplit, or whole
            self._chunk(0)
        return [statement for _, statement in self.top_level()]


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
    if kind in ("assign", "buffer", "fill") and statements:
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
