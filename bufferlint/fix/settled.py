"""The class model as it stands, for planning fixes in another process.

The lint's model loads modules and parses left-out classes when they are first looked up
(bufferlint.ondemand). A worker that plans fixes gets a copy of what the model holds
after the analysis. Where the copy lacks what the main process would load, it answers
"absent" and notes the name in its `Gaps`; the worker then hands the finding back and
the main process plans it. So a plan made from the copy is the plan the main process
would make.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bufferlint.facts import FileFacts
from bufferlint.model import Lookup, Project


@dataclass
class Gaps:
    """What a copy of the model was asked for and could not answer."""

    names: list[str] = field(default_factory=list)

    def note(self, name: str) -> bool:
        """The copy's lookup of a class the lint's model might still find: not added."""
        self.names.append(name)
        return False

    def load(self, module: str) -> FileFacts | None:
        """The copy's loader: a module the main process has not tried to load."""
        self.names.append(module)
        return None


@dataclass
class Settled:
    """A copy of the model to pickle, and where its answers stop being the model's."""

    project: Project
    gaps: Gaps


def settled(project: Project) -> Settled:
    """A copy of `project` to pickle: what it holds, and what it found missing."""
    gaps = Gaps()
    state = project.__getstate__()
    state["_loader"] = gaps.load
    lookup = project.lookup
    words, modules = (lookup.words, lookup.modules) if lookup is not None else ((), ())
    state["lookup"] = Lookup(gaps.note, frozenset(words), frozenset(modules))
    copy = Project.__new__(Project)
    copy.__setstate__(state)
    return Settled(copy, gaps)
