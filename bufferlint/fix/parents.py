"""Each node's parent in the parsed parts of a file, mapped a function at a time: a fix
looks at a few methods of a class, so a function's nodes are mapped only when a node in
one is first asked about.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import libcst as cst

from bufferlint.walk import parent_map


class Parents:
    """Parents by the id of the child, for the trees added so far."""

    def __init__(self) -> None:
        self._parents: dict[int, cst.CSTNode] = {}
        self._later: deque[cst.FunctionDef] = deque()  # functions not mapped yet

    def add(self, root: cst.CSTNode, parent: cst.CSTNode | None = None) -> None:
        """Maps the nodes below `root`, and `root` to `parent` when given."""
        if parent is not None:
            self._parents[id(root)] = parent
        parent_map(root, self._parents, self._later)

    def clear(self) -> None:
        """Forgets every tree: ids of the nodes let go may come back."""
        self._parents.clear()
        self._later.clear()

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
