"""Syntax trees the lint parsed, kept in the process that parsed them for the fixer.

Deciding whether `--fix` can fix a finding (the `[*]` marks) walks the flagged class's
syntax tree. Parsing it again costs more than the rest of planning, and sending a tree to
another process costs as much as parsing it (pickling LibCST's nodes). So when a run
plans fixes, each process that parses keeps what it parsed, within a budget of lines,
and the fixes are planned in that process: a forked worker of the lint's pool, or the
main process for a lint small enough to run in it.

A tree is the lint's partial parse of a file (`partial.reduced`: the statements it needed,
at their own lines), kept with the text's digest, so that it is used only for that very
text, and with where the facts' walk found each node (`extract.Located`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bufferlint.cache import digest_of

if TYPE_CHECKING:
    import libcst as cst

    from bufferlint.extract import Located

# Lines of statements one process keeps trees for: a bound on the memory they hold that
# the partial parse of a tree as large as transformers' `models/` stays under.
LINES_KEPT = 100_000


@dataclass(frozen=True)
class Kept:
    """One partial parse of a file."""

    digest: str  # of the whole text it was cut from
    module: cst.Module  # the reduced text, parsed
    statements: Mapping[int, cst.BaseStatement]  # by the prefilter's statement number
    located: Located  # file positions (the reduced text keeps every line where it was)


_kept: dict[str, list[Kept]] = {}
_lines = 0
_enabled = False


@contextmanager
def keeping() -> Iterator[None]:
    """Keeps the trees parsed in this process (and in processes forked from it) while
    the block runs, then lets them go."""
    global _enabled, _lines
    previous = _enabled
    _enabled = True
    try:
        yield
    finally:
        _enabled = previous
        if not previous:
            _kept.clear()
            _lines = 0


def enable() -> None:
    """For a worker process: keep until the process ends."""
    global _enabled
    _enabled = True


def wanted() -> bool:
    return _enabled and _lines < LINES_KEPT


def keep(
    path: str,
    text: str,
    module: cst.Module,
    statements: Mapping[int, cst.BaseStatement],
    located: Located,
    lines: int,
) -> None:
    """Keeps a partial parse of `path`'s `text`: `lines` lines of statements."""
    global _lines
    if wanted():
        digest = digest_of(text.encode("utf-8", "surrogatepass"))
        _kept.setdefault(path, []).append(Kept(digest, module, statements, located))
        _lines += lines


def take(path: str, digest: str) -> list[Kept]:
    """What this process keeps of `path` in the text with this digest."""
    return [tree for tree in _kept.get(path, ()) if tree.digest == digest]
