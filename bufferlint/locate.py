"""Where a module's file would be: `x.py`, then `x/__init__.py`, under each import root
in turn, as the import system looks (the one place that knows the order)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple


class Candidate(NamedTuple):
    """A file that would hold a module, if it exists."""

    path: str
    root: str  # the import root it is under
    is_package: bool


def module_files(module: str, roots: Iterable[str]) -> Iterator[Candidate]:
    """Every file that could hold `module`, first choice first. Callers differ only in
    what they do with a candidate that exists but will not do."""
    relative = module.replace(".", os.sep)
    for root in roots:
        yield Candidate(str(Path(root, f"{relative}.py")), root, False)
        yield Candidate(str(Path(root, relative, "__init__.py")), root, True)


def find_module(module: str, roots: Iterable[str]) -> Candidate | None:
    """The first file that holds `module`; None if there is none."""
    return next((c for c in module_files(module, roots) if os.path.isfile(c.path)), None)
