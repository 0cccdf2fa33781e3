"""The names that replayed construction code reads from outside itself, and how the hook
reads each: a parameter from the attribute `__init__` stored it in, another file's global
through an import added to the hook's file. A name the hook cannot know makes the
rebuild unavailable.
"""

from __future__ import annotations

import builtins
import os
from dataclasses import dataclass

import libcst as cst

from bufferlint.fix.index import SourceIndex
from bufferlint.fix.replay import MethodScope, Unavailable, reads, self_attribute
from bufferlint.fix.workspace import Workspace


class FreeNames:
    """How the hook in `index`, whose `self` is `self_name`, reads replayed code's names."""

    def __init__(self, workspace: Workspace, index: SourceIndex, self_name: str) -> None:
        self.workspace = workspace
        self.index = index  # the file the hook is in
        self.self_name = self_name
        self.imports: dict[str, str] = {}  # names the hook's file must import: local -> qualified

    def mapping(
        self,
        scope: MethodScope,
        unresolved: set[str],
        replayed: list[cst.BaseSmallStatement],
    ) -> dict[str, cst.BaseExpression]:
        """What the hook writes for each name the replayed code takes from outside itself."""
        mapping: dict[str, cst.BaseExpression] = {}
        if scope.self_name != self.self_name:
            mapping[scope.self_name] = cst.Name(self.self_name)
        for name in sorted(unresolved - {scope.self_name}):
            reader = next((s for s in replayed if name in reads(s)), replayed[-1])
            line = _LineOf(scope.index, reader)  # for a message: positions cost a codegen
            if name in scope.params:
                if name not in scope.stored:
                    raise Unavailable(
                        f"`{name}` (a parameter of `{scope.name}`, read at line {line}) is not "
                        f"stored unchanged on `self`, so the hook cannot know it"
                    )
                mapping[name] = self_attribute(self.self_name, scope.stored[name])
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


@dataclass(frozen=True)
class _LineOf:
    """A node's line, looked up only when a message is formatted."""

    index: SourceIndex
    node: cst.CSTNode

    def __str__(self) -> str:
        return str(self.index.line_of(self.node))
