"""The class model as it stands, for planning fixes in another process.

The lint's model loads modules and parses left-out classes when they are first looked up
(bufferlint.engine). A worker that plans fixes gets a copy of what the model holds after
the analysis; a lookup that the main process would answer by loading something new
raises `Unsettled`, and the main process plans that finding itself. So a plan made from
the copy is the plan the main process would make.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bufferlint.facts import FileFacts
from bufferlint.model import ClassTable, Project, findable


class Unsettled(BaseException):
    """A lookup the copy cannot answer. A BaseException: the fixer turns every Exception
    into a reason for no fix, and this is not one."""


class _Classes(ClassTable):
    """Classes as loaded so far; a missing name that the lint's model might still find
    (`model.findable`) is unsettled."""

    def __init__(
        self, items: Iterable[tuple[str, Any]], words: Iterable[str], modules: Iterable[str]
    ) -> None:
        super().__init__(items)
        self.words = frozenset(words)
        self.modules = frozenset(modules)

    def _missing(self, name: object) -> bool:
        if isinstance(name, str) and findable(name, self.words, self.modules):
            raise Unsettled(name)
        return False

    def __reduce__(self) -> tuple[Any, ...]:
        return _Classes, (list(dict.items(self)), self.words, self.modules)


def _unsettled(module: str) -> FileFacts | None:
    """The copy's loader: a module the main process has not tried to load."""
    raise Unsettled(module)


def settled(project: Project) -> Project:
    """A copy of `project` to pickle: what it holds, and what it found missing."""
    copy = Project.__new__(Project)
    copy.__dict__.update(project.__dict__)
    found = project.classes
    words, modules = getattr(found, "words", ()), getattr(found, "modules", ())
    copy.classes = _Classes(dict.items(found), words, modules)
    copy._loader = _unsettled
    return copy
