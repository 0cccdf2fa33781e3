"""`auto`: the convention each class is judged under, from what the project shows of the
stack it runs on. A class takes a dispatching convention (transformers) when it is one of
the stack's models, when its file imports or defines one, or when it is part of the stack's
own package; any other class keeps the fallback (`reset-parameters`)."""

from __future__ import annotations

from bufferlint import conventions, dispatch
from bufferlint.conventions import Convention
from bufferlint.facts import FileFacts
from bufferlint.model import Project


class Choice:
    """The run's convention, or with `auto` the one each class is judged under."""

    def __init__(self, project: Project, convention: Convention) -> None:
        self.project = project
        self.convention = convention
        self._files: dict[str, Convention] = {}

    def __call__(self, qualified: str) -> Convention:
        if self.convention is not conventions.AUTO:
            return self.convention
        for candidate in conventions.CHOSEN:
            if dispatch.derives(self.project, qualified, candidate):
                return candidate
        facts = self.project.classes[qualified][1]
        if facts.module not in self._files:
            self._files[facts.module] = self._for_file(facts)
        return self._files[facts.module]

    def _for_file(self, facts: FileFacts) -> Convention:
        for candidate in conventions.CHOSEN:
            packages = {base.partition(".")[0] for base in candidate.bases}
            if facts.module.partition(".")[0] in packages:
                return candidate
            if any(target in candidate.bases for target in facts.imports.values()):
                return candidate
            if dispatch.file_judges(self.project, facts, candidate):
                return candidate
        return conventions.FALLBACK
