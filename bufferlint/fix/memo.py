"""Fix outcomes remembered across runs: planning a fix costs far more than linting, and
after an edit most findings are those of the last run, in files that did not change.

An outcome is reused only when everything its planning read is as it was: the finding
itself (its file, class, rule and message, which name the buffers), the settings, the
content of every file whose text or syntax tree the planner asked for, the class's MRO
(each class and the file it comes from), and which top-level names were the project's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bufferlint.cache import Cache, blake2b, digest_of, location
from bufferlint.conventions import Convention
from bufferlint.findings import Finding
from bufferlint.fix.workspace import Workspace


@dataclass
class Outcome:
    """What planning set on a finding, and what it read."""

    fix: dict[str, Any] | None
    message: str
    extra: dict[str, Any]  # the keys planning sets: "fix_hidden", "no_fix"
    files: dict[str, str]  # path -> content digest
    ancestry: tuple[tuple[str, str], ...]  # the MRO: (class, its file, or "" outside the model)
    modules: dict[str, bool]  # top-level name -> whether it is the project's


PLANNED_KEYS = ("fix_hidden", "no_fix")


class FixMemo:
    """Outcomes in `.bufferlint_cache`, under a key of the finding and the settings."""

    def __init__(self, convention: Convention, unsafe: bool, edits: bool) -> None:
        self.cache = Cache(location())
        self.settings = repr((convention, unsafe, edits))
        self._digests: dict[str, str] = {}

    def key(self, finding: Finding) -> str:
        """Taken before planning, which appends to the message."""
        what = (finding.path, finding.class_name, finding.code, finding.message, self.settings)
        return blake2b(repr(what).encode(), digest_size=16).hexdigest()

    def recall(self, finding: Finding, workspace: Workspace) -> bool:
        """Sets the remembered outcome on `finding` if it still holds."""
        outcome = self.cache.load_fix(self.key(finding))
        if not isinstance(outcome, Outcome):
            return False
        if outcome.ancestry != _mro(finding, workspace):
            return False
        if any(self._digest(path) != digest for path, digest in outcome.files.items()):
            return False
        if any(workspace.is_project_module(n) != own for n, own in outcome.modules.items()):
            return False
        finding.fix, finding.message = outcome.fix, outcome.message
        finding.extra.update(outcome.extra)
        return True

    def keep(self, key: str, finding: Finding, workspace: Workspace) -> None:
        """Stores what planning set on `finding`, with what `workspace` recorded it read."""
        files = {finding.path, *workspace.reads}
        mro = _mro(finding, workspace)
        files.update(path for _, path in mro if path)
        digests = {path: self._digest(path) for path in sorted(files)}
        extra = {k: finding.extra[k] for k in PLANNED_KEYS if k in finding.extra}
        outcome = Outcome(finding.fix, finding.message, extra, digests, mro, dict(workspace.asked))
        self.cache.store_fix(key, outcome)

    def _digest(self, path: str) -> str:
        if path not in self._digests:
            try:
                with open(path, "rb") as handle:
                    self._digests[path] = digest_of(handle.read())
            except OSError:
                self._digests[path] = ""
        return self._digests[path]


def _mro(finding: Finding, workspace: Workspace) -> tuple[tuple[str, str], ...]:
    project = workspace.project
    qualified = f"{finding.module}.{finding.class_name}"
    if not project.has_class(qualified):
        return ()
    return tuple(
        (name, project.class_facts(name)[1].path if project.has_class(name) else "")
        for name in project.mro(qualified)
    )
