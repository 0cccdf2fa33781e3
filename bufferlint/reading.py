"""Reading a file for the prefiltered run: its digest, the prefilter's index, and
whether CPython parses it, kept as a `Scan` that holds while the file's stat does."""

from __future__ import annotations

import os
import symtable
import warnings
from dataclasses import dataclass

from bufferlint import prefilter, suppressions
from bufferlint.cache import Stat, digest_of, stat_of
from bufferlint.sources import SourceError, read_source


@dataclass
class Scan:
    """A file as read: its digest and the prefilter's index, valid while its stat is."""

    stat: Stat | None
    digest: str = ""
    index: prefilter.FileIndex | None = None
    error: str = ""  # why it cannot be read, reported as a parse failure
    compiles: bool = True  # by CPython's parser: else LibCST parses it whole, for its error
    checked: bool = False  # `compiles` was found out (a linted file), not assumed
    directives: bool = False  # may hold suppression comments (as suppressions.parse checks)

    @property
    def verified(self) -> bool:
        """CPython parsed this very text: no part of it nests too deeply for LibCST."""
        return self.compiles and self.checked


def file_size(path: str) -> int:
    """The file's size in bytes (0 if it is gone): how the pool weighs work."""
    found = stat_of(path)
    return found[1] if found else 0


def read(path: str, check: bool = False) -> tuple[Scan, str | None]:
    """Reads and indexes a file; `check`: also whether it parses (for a linted file, whose
    syntax errors are reported even where the prefilter parses nothing)."""
    stat = stat_of(path)  # before reading: a change while reading shows next time
    try:
        text = read_source(path)
    except SourceError as exc:
        return Scan(stat, error=str(exc)), None
    index = prefilter.index(text)
    if index.tokens:
        index.split(text)
    digest = digest_of(text.encode("utf-8", "surrogatepass"))
    directives = suppressions.may_hold_ours(text)
    compiles = not check or _compiles(text, path, stat)
    scan = Scan(stat, digest, index, compiles=compiles, checked=check, directives=directives)
    return scan, text


def reread(path: str, scan: Scan) -> str | None:
    """The text `scan` was made from, read again (a worker gets a path, not a text), or
    None if it changed since: the scan's index still holds, so it is not made again."""
    try:
        text = read_source(path)
    except SourceError:
        return None
    return text if digest_of(text.encode("utf-8", "surrogatepass")) == scan.digest else None


def _compiles(text: str, path: str, stat: Stat | None) -> bool:
    """Whether CPython parses the text: much faster than LibCST, and where the two
    disagree (newer syntax than this Python's) LibCST has the last word. A fresh `.pyc`
    from this Python already says so, for free."""
    if stat is not None and _fresh_bytecode(path, stat):
        return True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes and the like
            symtable.symtable(text, path, "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _fresh_bytecode(path: str, stat: Stat) -> bool:
    """Whether this Python compiled the file as it is now: the import system's own test (a
    timestamp `.pyc` whose header holds the source's mtime and size), and the `.pyc` written
    after the source's last change (the header keeps whole seconds only)."""
    from importlib.util import MAGIC_NUMBER, cache_from_source

    try:
        with open(cache_from_source(path), "rb") as handle:
            header = handle.read(16)
            if os.fstat(handle.fileno()).st_mtime_ns < stat[0]:
                return False
    except (OSError, ValueError, NotImplementedError):
        return False
    mtime, size = stat[0] // 1_000_000_000, stat[1]
    return (
        len(header) == 16
        and header[:4] == MAGIC_NUMBER
        and int.from_bytes(header[4:8], "little") == 0  # not hash-based
        and int.from_bytes(header[8:12], "little") == mtime & 0xFFFFFFFF
        and int.from_bytes(header[12:16], "little") == size & 0xFFFFFFFF
    )
