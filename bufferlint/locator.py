"""Source positions for the nodes the extractor visits, without LibCST's metadata: a
forward search of the text for each node's first line. LibCST's PositionProvider
regenerates the whole file, which costs more than parsing it.
"""

from __future__ import annotations

import bisect
import re

import libcst as cst

_CLASS = re.compile(r"\bclass\s+(\w+)")


class Locator:
    """Finds source lines for nodes visited in document order."""

    def __init__(self, source: str, module: cst.Module) -> None:
        self.source = source
        self.module = module
        self.cursor = 0
        self._last_node: cst.CSTNode | None = None
        self._last_position = (1, 1)
        # Only `\n` ends lines (nearly always): lines are counted as the cursor moves on,
        # rather than listing every line start of the file first.
        self.line_starts = (
            [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", source)] if "\r" in source else None
        )
        self._counted = 0  # lines up to this offset are counted:
        self._line = 1  # the line it is on

    def _position(self, offset: int) -> tuple[int, int]:
        if self.line_starts is None:
            if offset < self._counted:
                self._counted, self._line = 0, 1
            self._line += self.source.count("\n", self._counted, offset)
            self._counted = offset
            return self._line, offset - self.source.rfind("\n", 0, offset)
        index = bisect.bisect_right(self.line_starts, offset) - 1
        return index + 1, offset - self.line_starts[index] + 1

    def find(self, needle: str, past: bool = False) -> tuple[int, int]:
        """The position of the next `needle`; `past` moves on so that it is not found twice."""
        offset = self.source.find(needle, self.cursor) if needle else -1
        if offset < 0:
            return self._position(self.cursor)
        self.cursor = offset + 1 if past else offset
        return self._position(offset)

    def node(self, node: cst.CSTNode) -> tuple[int, int]:
        """Searches the node's first line: generated code of a node that spans lines
        lacks the block's indentation, so only its first line is verbatim."""
        if node is self._last_node:
            return self._last_position
        first = self.module.code_for_node(node).splitlines()[0]
        self._last_node, self._last_position = node, self.find(first, past=True)
        return self._last_position

    def class_keyword(self, name: str) -> tuple[int, int]:
        """The position of the name in the next `class <name>`. One pattern for every
        name: compiling one per class cost more than the searches."""
        for match in _CLASS.finditer(self.source, self.cursor):
            if match.group(1) == name:
                self.cursor = match.start()
                return self._position(match.start(1))
        return self._position(self.cursor)
