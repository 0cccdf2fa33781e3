"""Reading a source for fixing and writing it back byte-faithfully: same encoding, BOM,
line endings and mode, atomically, and never over a file that changed since it was read."""

from __future__ import annotations

import codecs
import os
import stat
import tempfile
import tokenize
from dataclasses import dataclass

from bufferlint.sources import SourceError, read_bytes


@dataclass(frozen=True)
class SourceBytes:
    """A file as read: its bytes, and how to turn edited text back into bytes."""

    path: str
    data: bytes
    encoding: str  # the codec, without the BOM (see `bom`)
    bom: bool
    text: str  # decoded, BOM stripped, line endings as in the file

    @classmethod
    def read(cls, path: str) -> SourceBytes:
        """Decodes as Python (and bufferlint.sources.read_source) does; SourceError if not:
        a file the lint reports as unreadable is never fixed."""
        data = read_bytes(path)
        if b"\0" in data:
            raise SourceError("not a text file (contains NUL bytes)")
        bom = data.startswith(codecs.BOM_UTF8)
        try:
            encoding, _ = tokenize.detect_encoding(iter(data.splitlines(keepends=True)).__next__)
            body = data[len(codecs.BOM_UTF8) :] if bom else data
            encoding = "utf-8" if encoding == "utf-8-sig" else encoding
            text = body.decode(encoding)
        except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
            raise SourceError(f"cannot decode: {exc}".splitlines()[0]) from None
        return cls(path, data, encoding, bom, text)

    def encode(self, text: str) -> bytes:
        return (codecs.BOM_UTF8 if self.bom else b"") + text.encode(self.encoding)


def write(source: SourceBytes, text: str) -> str | None:
    """Replaces the file with `text`; returns why not, in a few words, or None when written.

    The new bytes go to a temporary file in the same folder that then replaces the
    original (os.replace is atomic), with the original's permission bits. A symlink is
    followed, so the link stays a link.
    """
    target = os.path.realpath(source.path)
    try:
        data = source.encode(text)
    except UnicodeEncodeError as exc:
        return f"the fix cannot be written in {source.encoding}: {exc.reason}"
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
        with open(target, "rb") as handle:
            current = handle.read()
    except OSError as exc:
        return f"cannot read it back: {exc.strerror or exc}"
    if current != source.data:
        return "it changed on disk since bufferlint read it"
    if not os.access(target, os.W_OK) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        return "it is read-only"  # also for root, who may write anyway
    folder, name = os.path.split(target)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        return f"cannot write next to it: {exc.strerror or exc}"
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except OSError as exc:
        if os.path.exists(temporary):
            os.unlink(temporary)
        return f"cannot write: {exc.strerror or exc}"
    return None
