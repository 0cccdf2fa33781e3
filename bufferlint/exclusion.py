"""Which paths a run skips: `exclude` globs, as ruff matches them, and `.gitignore` files.

The `.gitignore` matcher is small and dependency-free so the static path stays libcst and
click only; it prunes whole folders during the walk, which `git check-ignore` could not do
without a process per folder.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Sequence
from pathlib import Path


class PathFilter:
    """Decides exclusion for absolute paths.

    An `exclude` glob matches a path's last component (`build`, `*.pyi`) or the whole path
    once anchored at `root` (`tests/fixtures`, `src/*/generated`); `*` crosses `/`, as in
    ruff. Folders above `root` are never tested, so a project that lives under a folder
    named `build` is still linted.
    """

    def __init__(self, patterns: Sequence[str], root: str, respect_gitignore: bool) -> None:
        self.root = os.path.abspath(root)
        anchored = [os.path.normpath(os.path.join(self.root, p)) for p in patterns]
        # One expression per kind, as fnmatch matches each glob (case as the OS has it).
        self._names = _globs(patterns)
        self._anchored = _globs(anchored)
        self.gitignore = GitIgnore() if respect_gitignore else None

    def matches(self, path: Path) -> bool:
        """Whether an exclude glob matches this very path (not its parents)."""
        name = os.path.normcase(path.name)
        if self._names is not None and self._names.match(name):
            return True
        text = os.path.normcase(os.path.normpath(path))
        return self._anchored is not None and self._anchored.match(text) is not None

    def skip(self, path: Path, is_dir: bool) -> bool:
        """For the walk, which reaches `path` only if no parent folder was skipped."""
        return self.matches(path) or (
            self.gitignore is not None and self.gitignore.ignored(path, is_dir, parents=False)
        )

    def skip_named(self, path: Path) -> bool:
        """For a path named on the command line (`--force-exclude`): the path or a parent
        below the root matches an exclude glob. `.gitignore` is not consulted, as in ruff:
        pre-commit only passes tracked files anyway."""
        path = Path(os.path.abspath(path))
        for candidate in (path, *path.parents):
            if str(candidate) == self.root or not _inside(str(candidate), self.root):
                return candidate == path and self.matches(path)
            if self.matches(candidate):
                return True
        return False


def _globs(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """A pattern matching what any of the globs matches (`fnmatch.fnmatch` semantics)."""
    if not patterns:
        return None
    return re.compile("|".join(fnmatch.translate(os.path.normcase(p)) for p in patterns))


def _inside(path: str, root: str) -> bool:
    return path.startswith(root.rstrip(os.sep) + os.sep)


class GitIgnore:
    """`.gitignore` semantics for paths inside a git work tree: every `.gitignore` from the
    repository root down to the path's folder, plus `.git/info/exclude`; the last matching
    line wins, deeper files win over shallower ones, `!` re-includes, and nothing inside an
    ignored folder can be re-included. The global `core.excludesFile` is not read.
    Outside a git work tree nothing is ignored, as with git itself.

    Lookups are memoized per instance, and an instance lives for one run.
    """

    def __init__(self) -> None:
        self._repositories: dict[str, str | None] = {}
        self._folders: dict[str, bool] = {}
        self._chains: dict[str, tuple[tuple[str, tuple[IgnoreRule, ...]], ...]] = {}

    def ignored(self, path: Path, is_dir: bool, parents: bool = True) -> bool:
        """`parents=False` for a walk, which never enters an ignored folder below its root:
        a folder the user named is linted even inside an ignored one (a virtualenv, say)."""
        path = Path(os.path.abspath(path))
        repo = self._repository(str(path.parent))
        if repo is None:
            return False
        if path.name == ".git":
            return True
        if parents and self._folder_ignored(str(path.parent), repo):
            return True
        return self._match(path, is_dir, repo)

    def _repository(self, folder: str) -> str | None:
        """The work tree root holding `folder` (a `.git` folder or file marks one), if any."""
        if folder not in self._repositories:
            parent = os.path.dirname(folder)
            if os.path.exists(os.path.join(folder, ".git")):
                self._repositories[folder] = folder
            else:
                self._repositories[folder] = None if parent == folder else self._repository(parent)
        return self._repositories[folder]

    def _folder_ignored(self, folder: str, repo: str) -> bool:
        if folder == repo or not _inside(folder, repo):
            return False
        if folder not in self._folders:
            self._folders[folder] = self._folder_ignored(
                os.path.dirname(folder), repo
            ) or self._match(Path(folder), True, repo)
        return self._folders[folder]

    def _match(self, path: Path, is_dir: bool, repo: str) -> bool:
        verdict = False
        for base, rules in self._chain(str(path.parent), repo):
            relative = os.path.relpath(path, base).replace(os.sep, "/")
            for regex, negated, dir_only in rules:
                if (is_dir or not dir_only) and regex.fullmatch(relative):
                    verdict = not negated
        return verdict

    def _chain(self, folder: str, repo: str) -> tuple[tuple[str, tuple[IgnoreRule, ...]], ...]:
        """(folder, rules) from the repository root down to `folder`, lowest priority first."""
        if folder not in self._chains:
            if folder == repo or not _inside(folder, repo):
                info = _read_rules(os.path.join(repo, ".git", "info", "exclude"))
                chain = ((repo, info), (repo, _read_rules(os.path.join(repo, ".gitignore"))))
            else:
                own = _read_rules(os.path.join(folder, ".gitignore"))
                chain = (*self._chain(os.path.dirname(folder), repo), (folder, own))
            self._chains[folder] = chain
        return self._chains[folder]


IgnoreRule = tuple[re.Pattern[str], bool, bool]  # (regex, negated, directory only)


def _read_rules(path: str) -> tuple[IgnoreRule, ...]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return ()
    return tuple(rule for rule in map(parse_line, lines) if rule is not None)


def parse_line(line: str) -> IgnoreRule | None:
    """One `.gitignore` line as a rule, or None for blanks and comments."""
    if line.startswith("#"):
        return None
    stripped = re.sub(r"(?<!\\)\s+$", "", line)
    if not stripped:
        return None
    negated = stripped.startswith("!")
    if negated:
        stripped = stripped[1:]
    elif stripped.startswith(("\\!", "\\#")):
        stripped = stripped[1:]
    dir_only = stripped.endswith("/")
    stripped = stripped.rstrip("/")
    if not stripped:
        return None
    anchored = "/" in stripped
    body = _translate(stripped.lstrip("/"))
    return re.compile(body if anchored else f"(?:.*/)?{body}"), negated, dir_only


def _translate(pattern: str) -> str:
    """A gitignore glob as a regex over `/`-separated relative paths."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("/.*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*" if i + 2 == len(pattern) and i == 0 else "[^/]*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                out.append(re.escape("["))
                i += 1
                continue
            inner = pattern[i + 1 : end]
            inner = "^" + inner[1:] if inner.startswith("!") else inner
            out.append(f"[{inner.replace(chr(92), chr(92) * 2)}]")
            i = end + 1
        elif pattern[i] == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)
