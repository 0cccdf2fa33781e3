"""A file's top-level statements for the fixer, each parsed only when first asked for,
from its own text: its positions move by a whole number of lines, and columns stay (a
top-level statement starts a line). A file whose statements the prefilter cannot split,
or whose split does not parse as expected, is parsed whole, as one chunk.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections.abc import Iterable, Iterator, Mapping

import libcst as cst

from bufferlint import parsing, prefilter, trees
from bufferlint.cache import digest_of
from bufferlint.extract import locate
from bufferlint.facts import FileFacts
from bufferlint.fix.parents import Parents
from bufferlint.fix.positions import Positions

NEWLINE = re.compile(r"\r\n|\r|\n")


@dataclasses.dataclass
class Chunk:
    """One parsed top-level statement (or, for an unsplit file, all of them)."""

    module: cst.Module  # the statement's own text (or the file's, or the lint's tree), parsed
    body: list[cst.BaseStatement]
    last: bool  # the file's last chunk
    offset: int  # lines in the file before the chunk's first
    number: int  # the statement's
    kept: bool = False  # a statement of a tree the lint kept (bufferlint.trees)


class Chunks:
    """The parsed statements of one file, with what is known about their nodes: where the
    facts' walk found them, their parents, their positions. All of it is dropped together
    when the file goes whole."""

    def __init__(
        self,
        text: str,
        facts: FileFacts,
        splits: Mapping[str, prefilter.FileIndex] | None = None,
    ) -> None:
        """`splits`: the lint's split indexes, by digest of the text: not split again. The
        trees the lint kept of this text (bufferlint.trees) stand in for parsing."""
        self.text = text
        self.imports = facts.imports
        newline = NEWLINE.search(text)
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
        self._chunks: dict[int, Chunk] = {}
        self._number: dict[int, int] = {}  # id of a chunk's module -> its (first) number
        self.parents = Parents()
        self.positions = Positions()
        # Where the facts' own walk finds class names and event nodes, per parsed chunk:
        # the way back from facts to nodes. LibCST's positions are the slow fallback.
        self.located: dict[tuple[int, int], list[cst.CSTNode]] = {}
        self.located_lines: dict[int, int] = {}  # the same, as lines by id of the node

    def get(self, number: int) -> Chunk:
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
            first = NEWLINE.search(piece)
            prefix = "" if first is None or first.group() == self._newline else self._newline
            piece = prefix + piece
            try:
                module = parsing.parse_module(piece, self._compiled)
            except (cst.ParserSyntaxError, parsing.TooDeep):
                return self.whole()
            if module.body:
                offset = self.lines[number] - (2 if prefix else 1)
                chunk = Chunk(module, list(module.body), number == count - 1, offset, number)
                # The facts' forward search finds what it finds in the whole file only
                # where no `class Name` of this statement's occurs earlier.
                self._add(number, chunk, piece, self._split.safe(number))
                return chunk
        return self.whole()

    def whole(self) -> Chunk:
        """The file parsed in one piece, for every statement from now on."""
        module = parsing.parse_module(self.text, self._compiled)
        self.starts, self.lines = [0], [1]
        # Nodes of the statements parsed alone so far belong to no chunk any more: none
        # of them may be found again (a plan on one could not be rendered).
        # (Parents go by id, and the ids of nodes let go may come back.)
        for found in (self._chunks, self._number, self.located, self.located_lines):
            found.clear()
        self.parents.clear()
        self.positions.clear()
        self._kept = []
        self._add(0, Chunk(module, list(module.body), True, 0, 0), self.text, True)
        return self._chunks[0]

    def _adopt(self, number: int) -> Chunk | None:
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
            chunk = Chunk(kept.module, [statement], last, 0, number, kept=True)
            self._chunks[number] = chunk
            self._number.setdefault(id(kept.module), number)
            # The tree's other statements may not be used.
            self.parents.add(statement, parent=kept.module)
            for (line, column), nodes in kept.located.items():
                if self.holds(number, line):
                    self._record_located(line, column, nodes)
            return chunk
        return None

    def _record_located(self, line: int, column: int, nodes: list[cst.CSTNode]) -> None:
        self.located.setdefault((line, column), []).extend(nodes)
        for node in nodes:
            self.located_lines[id(node)] = line

    def holds(self, number: int, line: int) -> bool:
        """Whether the file's line `line` lies in statement `number`."""
        after = number + 1 < len(self.lines)
        return self.lines[number] <= line and (not after or line < self.lines[number + 1])

    def _add(self, number: int, chunk: Chunk, text: str, located: bool) -> None:
        self._chunks[number] = chunk
        self._number[id(chunk.module)] = number
        self.parents.add(chunk.module)
        if located:
            for (line, column), nodes in locate(text, chunk.module, self.imports).items():
                self._record_located(line + chunk.offset, column, nodes)

    def at_line(self, line: int) -> Chunk | None:
        number = bisect.bisect_right(self.lines, line) - 1
        return self.get(number) if number >= 0 else None

    def of_module(self, module: cst.Module) -> Chunk | None:
        """The chunk a parsed module belongs to (the first, for a kept tree)."""
        number = self._number.get(id(module))
        return None if number is None else self._chunks[number]

    def top_level(self) -> Iterator[tuple[Chunk, cst.BaseStatement]]:
        """Every top-level statement parsed so far, in order, with its chunk."""
        for number in sorted(self._chunks):
            chunk = self._chunks[number]
            for statement in chunk.body:
                yield chunk, statement

    def span(self, chunk: Chunk, statement: cst.BaseStatement) -> tuple[int, int]:
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
        self, chunk: Chunk, statement: cst.CSTNode, replacing: cst.CSTNode | None = None
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

    def parsed(self, numbers: Iterable[int]) -> list[cst.BaseStatement]:
        """Every top-level statement parsed so far, after parsing statements `numbers`."""
        for number in sorted(numbers):
            if len(self.starts) == 1:  # it went whole
                break
            self.get(number)
        if len(self.starts) == 1:  # unsplit, or whole
            self.get(0)
        return [statement for _, statement in self.top_level()]
