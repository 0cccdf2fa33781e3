"""LibCST's positions for the parsed parts of a file, shifted to the file's lines: the
slow way from a node to its line and back, where the facts' own walk did not find it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

import libcst as cst

if TYPE_CHECKING:
    from libcst.metadata import CodeRange

    from bufferlint.fix.chunks import Chunk


class Positions:
    """Positions of the nodes of the chunks resolved so far, and of single functions."""

    def __init__(self) -> None:
        self.ranges: dict[cst.CSTNode, CodeRange] = {}
        self._at: dict[tuple[int, int], list[cst.CSTNode]] = defaultdict(list)
        self._resolved: set[tuple[int, int]] = set()  # chunks with positions known
        self._functions: dict[int, tuple[int | None, dict[cst.CSTNode, CodeRange]]] = {}

    def clear(self) -> None:
        for found in (self.ranges, self._at, self._resolved, self._functions):
            found.clear()

    def at(self, line: int, column: int) -> list[cst.CSTNode]:
        """The resolved nodes that start at a 1-based line and column, outermost first."""
        return self._at.get((line, column), [])

    def resolve(self, chunk: Chunk, holds: Callable[[int, int], bool]) -> None:
        """Positions of a chunk's nodes, moved to the file's lines (of a kept tree, only
        those of the chunk's statement, by `holds(number, line)`: its other statements
        may have been parsed alone)."""
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
            if chunk.kept and not holds(chunk.number, start.line):
                continue
            where = CodeRange(
                CodePosition(start.line + shift, start.column),
                CodePosition(stop.line + shift, stop.column),
            )
            self.ranges[node] = where
            self._at[(where.start.line, where.start.column + 1)].append(node)

    def of_function(
        self, function: cst.FunctionDef, located: dict[tuple[int, int], list[cst.CSTNode]]
    ) -> tuple[int | None, dict[cst.CSTNode, CodeRange]]:
        """Positions of a function's nodes as if it stood alone (lines move by a constant),
        and that constant, if the `located` nodes in it agree on one."""
        if id(function) not in self._functions:
            from libcst.metadata import MetadataWrapper, PositionProvider

            alone = cst.Module(body=[function])
            positions = MetadataWrapper(alone, unsafe_skip_copy=True).resolve(PositionProvider)
            shifts = {
                line - positions[found].start.line
                for (line, _), nodes in located.items()
                for found in nodes
                if found in positions and found is not function.name
            }
            shift = shifts.pop() if len(shifts) == 1 else None
            self._functions[id(function)] = (shift, dict(positions))
        return self._functions[id(function)]
