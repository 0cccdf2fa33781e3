"""`auto`: the convention each class is judged under, from what the project shows of the
stack it runs on. The rules, tried in order (conventions.CHOSEN), first match wins:

1. transformers: a `PreTrainedModel` in the class's ancestry; or a file that is part of
   transformers, imports its model base, or defines a model with an `_init_weights`.
2. torchtitan: the class, or a class of its file or of a file importing its file, has an
   `init_weights` taking `buffer_device` (the root the trainer calls); or the class defines
   `_init_self_buffers`/`init_states` (the later protocol); or the file is part of
   torchtitan or imports `torchtitan.protocols`.
3. timm: the class defines (or inherits) `init_non_persistent_buffers`; or the file is
   part of timm or imports its model registry (`register_model`, `create_model`).
4. torchtune: the class defines (or inherits) `rope_init`; or the file is part of torchtune.

Anything else keeps the fallback, `reset-parameters`. `convention = "..."` forces one for the
whole run, and `[tool.bufferlint.per-file-conventions]` for the files its globs match.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Sequence

from bufferlint import conventions, dispatch
from bufferlint.conventions import Convention
from bufferlint.facts import FileFacts
from bufferlint.model import Project

# A file's path -> the convention configured for it, or None to choose.
PerFile = Callable[[str], Convention | None]


class Choice:
    """The run's convention, or with `auto` the one each class is judged under."""

    def __init__(
        self, project: Project, convention: Convention, per_file: PerFile | None = None
    ) -> None:
        self.project = project
        self.convention = convention
        self.per_file = per_file
        self._files: dict[str, Convention] = {}
        self._roots: dict[str, bool] = {}

    def __call__(self, qualified: str) -> Convention:
        facts = self.project.classes[qualified][1]
        configured = self.per_file(facts.path) if self.per_file is not None else None
        if configured is not None:
            return configured
        if self.convention is not conventions.AUTO:
            return self.convention
        for candidate in conventions.CHOSEN:
            if candidate.dispatches():
                if dispatch.derives(self.project, qualified, candidate):
                    return candidate
            elif self._marks_class(qualified, candidate):
                return candidate
        if facts.module not in self._files:
            self._files[facts.module] = self._for_file(facts)
        return self._files[facts.module]

    def _marks_class(self, qualified: str, candidate: Convention) -> bool:
        if any(self.project.find_method(qualified, name) for name in candidate.defines):
            return True
        return bool(candidate.hook_device) and self._is_root(qualified, candidate)

    def _is_root(self, qualified: str, candidate: Convention) -> bool:
        """Whether the class's hook takes the stack's device parameter (torchtitan's root)."""
        if qualified not in self._roots:
            found = self.project.find_method(qualified, candidate.hooks[0])
            self._roots[qualified] = found is not None and candidate.hook_device in found[1].params
        return self._roots[qualified]

    def _for_file(self, facts: FileFacts) -> Convention:
        for candidate in conventions.CHOSEN:
            if facts.module.partition(".")[0] in _packages(candidate):
                return candidate
            if any(_marked(target, candidate) for target in facts.imports.values()):
                return candidate
            if candidate.dispatches() and dispatch.file_judges(self.project, facts, candidate):
                return candidate
            if candidate.hook_device and self._holds_root(facts, candidate):
                return candidate
        return conventions.FALLBACK

    def _holds_root(self, facts: FileFacts, candidate: Convention) -> bool:
        """Whether the file, or a file that imports it, defines the stack's root: its layers
        are called from there."""
        for name in (facts.module, *self.project.importers(facts.module)):
            other = self.project.modules.get(name)
            if other is not None and any(
                self._is_root(f"{other.module}.{cls.name}", candidate) for cls in other.classes
            ):
                return True
        return False


def per_file(globs: Sequence[tuple[str, Convention]], root: str) -> PerFile | None:
    """`[tool.bufferlint.per-file-conventions]` as a lookup: a glob matches a file's name or
    its path anchored at `root`, as `per-file-ignores` does; the first that matches wins."""
    if not globs:
        return None
    anchored = [(os.path.normpath(os.path.join(root or os.getcwd(), g)), g, c) for g, c in globs]

    def configured(path: str) -> Convention | None:
        name = os.path.basename(path)
        for full, glob, convention in anchored:
            if fnmatch.fnmatch(name, glob) or fnmatch.fnmatch(path, full):
                return convention
        return None

    return configured


def _packages(candidate: Convention) -> set[str]:
    return {*candidate.packages, *(base.partition(".")[0] for base in candidate.bases)}


def _marked(target: str, candidate: Convention) -> bool:
    return any(
        target == marker or (marker.endswith(".") and target.startswith(marker))
        for marker in (*candidate.markers, *candidate.bases)
    )
