"""What every output format reads: the findings, and how to name their files."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from bufferlint.findings import Finding
from bufferlint.rules import RULES
from bufferlint.sources import SourceError, read_source

PARSE_ERROR = "parse-error"  # the name formats that need a rule id give an unparsable file


def level(finding: Finding) -> str:
    """A finding that --runtime refuted is only a warning, as it does not fail the run."""
    if finding.verdict == "refuted":
        return "warning"
    rule = RULES.get(finding.code or "")
    return rule.level if rule is not None else "error"


def runtime_note(finding: Finding) -> str:
    """` [confirmed: <one-line summary>]` after a finding's message; "" without --runtime."""
    if finding.runtime is None:
        return ""
    return f" [{finding.runtime['verdict']}: {finding.runtime['summary']}]"


def described(finding: Finding) -> str:
    """The message with the runtime verdict appended: what one-line formats print."""
    return finding.message + runtime_note(finding)


def rule_name(finding: Finding) -> str:
    rule = RULES.get(finding.code or "")
    return rule.name if rule else PARSE_ERROR


@dataclass(frozen=True)
class Report:
    """Findings of one run, in their stable order, with what renderers need around them."""

    findings: Sequence[Finding]
    files: int = 0
    cwd: str = field(default_factory=os.getcwd)
    texts: Mapping[str, str] = field(default_factory=dict)  # sources not on disk (stdin)

    def shown(self, path: str) -> str:
        """For people: relative to the current folder when inside it, as ruff prints."""
        relative = os.path.relpath(path, self.cwd)
        return os.path.normpath(path) if relative.startswith("..") else relative

    @cached_property
    def repo_root(self) -> str:
        """The git work tree around the current folder, else the current folder: GitHub,
        GitLab and SARIF consumers want paths relative to the repository root."""
        folder = Path(self.cwd)
        for candidate in (folder, *folder.parents):
            if (candidate / ".git").exists():
                return str(candidate)
        return str(folder)

    def repo_path(self, path: str) -> str | None:
        """`/`-separated path relative to the repository root; None when outside it."""
        relative = os.path.relpath(path, self.repo_root)
        return None if relative.startswith("..") else relative.replace(os.sep, "/")

    def lines(self, path: str) -> list[str]:
        """Source lines for code frames; empty when the file cannot be read."""
        cache: dict[str, list[str]] = self.__dict__.setdefault("_lines", {})
        if path not in cache:
            try:
                text = self.texts[path] if path in self.texts else read_source(path)
            except SourceError:
                text = ""
            cache[path] = text.splitlines()
        return cache[path]
