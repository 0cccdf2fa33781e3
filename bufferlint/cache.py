"""The on-disk cache in `.bufferlint_cache/`, next to the nearest pyproject.toml (else in
the current folder), which holds a `.gitignore` of `*` as ruff's cache does.

Four kinds of record, all pickles, all under a folder named by a fingerprint of
bufferlint's own code so that an upgrade (or an edit, while developing) never reads
stale records:

- `scan/`: per path, its stat and content digest and the prefilter's index, so an
  unchanged file is not even read; in 256 shards by a hash of the path, so that a run
  over a few files (pre-commit's) reads the records of those files, not of a whole tree;
- `facts/`: per content digest, module name and is-package, what LibCST found so far
  (facts do not depend on settings: hooks and rules apply later);
- `runs/`: per command line and settings, the findings, valid while no file that the run
  read, or looked for, has changed;
- `fixes/`: per finding and fix settings, its fix outcome, with what planning it read
  (bufferlint.fix.memo checks that before reusing it).

A record that cannot be read is a miss. Writes go to a temporary file that replaces the
record, so concurrent runs never see half a record; the last one wins.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

import bufferlint

try:  # hashlib's own BLAKE2, without hashlib's import of OpenSSL (milliseconds per start)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - Pythons without the module
    from hashlib import blake2b

DIRECTORY = ".bufferlint_cache"
Stat = tuple[int, int]  # (mtime_ns, size)


def location(start: str | None = None) -> Path:
    """`.bufferlint_cache` beside the nearest pyproject.toml above `start` (the current
    folder by default), else in `start` itself."""
    here = Path(start or os.getcwd()).absolute()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder / DIRECTORY
    return here / DIRECTORY


def fingerprint() -> str:
    """A digest of bufferlint's version and source files: records from other code are
    never read."""
    digest = blake2b(bufferlint.__version__.encode(), digest_size=8)
    package = Path(bufferlint.__file__).parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def shard_of(path: str) -> str:
    """Which of the scan record's 256 shards holds a path's record."""
    return blake2b(path.encode("utf-8", "surrogatepass"), digest_size=1).hexdigest()


def stat_of(path: str) -> Stat | None:
    """What says a file is unchanged without reading it; None when it does not exist."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size)


def digest_of(data: bytes) -> str:
    """What a facts record is keyed by: the content, not the path or the stat."""
    return blake2b(data, digest_size=16).hexdigest()


class Cache:
    """One cache folder for one version of bufferlint's code."""

    def __init__(self, root: Path, code: str | None = None) -> None:
        self.root = root
        self.folder = root / (code or fingerprint())

    # -- records -------------------------------------------------------------------
    def _read(self, path: Path) -> Any:
        try:
            with open(path, "rb") as handle:
                return pickle.load(handle)
        except Exception:  # missing, truncated, or written by other code: a miss
            return None

    def prepare(self) -> None:
        """Creates the folder now, if the tree is writable."""
        try:
            if not self.folder.exists():
                self._create()
        except OSError:
            pass

    def _write(self, path: Path, value: Any) -> None:
        try:
            if not self.folder.exists():
                self._create()
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(handle, "wb") as out:
                pickle.dump(value, out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, path)
        except OSError:
            pass  # a read-only tree just runs without a cache

    def _create(self) -> None:
        """Makes the folder for this code, dropping the records of other versions."""
        self.root.mkdir(parents=True, exist_ok=True)
        ignore = self.root / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# Created by bufferlint automatically.\n*\n")
            (self.root / "CACHEDIR.TAG").write_text(
                "Signature: 8a477f597d28d172789f06886806bc55\n"
                "# This file is a cache directory tag created by bufferlint.\n"
            )
        for child in self.root.iterdir():
            if child.is_dir() and child != self.folder:
                shutil.rmtree(child, ignore_errors=True)
        self.folder.mkdir(exist_ok=True)

    def load_scan(self, shard: str) -> dict[str, Any]:
        """Per path of one shard (`shard_of`), what the last runs read there (the run
        checks each stat)."""
        return self._read(self.folder / "scan" / f"{shard}.pickle") or {}

    def store_scan(self, shard: str, records: dict[str, Any]) -> None:
        """Replaces one shard of the scan record."""
        self._write(self.folder / "scan" / f"{shard}.pickle", records)

    def _facts_path(self, digest: str, module: str, is_package: bool) -> Path:
        key = blake2b(f"{digest}\0{module}\0{is_package}".encode(), digest_size=16).hexdigest()
        return self.folder / "facts" / key[:2] / key

    def load_facts(self, digest: str, module: str, is_package: bool) -> Any:
        """What LibCST found in this content under this module name, or None."""
        return self._read(self._facts_path(digest, module, is_package))

    def store_facts(self, digest: str, module: str, is_package: bool, value: Any) -> None:
        """Keeps what LibCST found, for the next run that reads the same content."""
        self._write(self._facts_path(digest, module, is_package), value)

    def load_run(self, key: str) -> Any:
        """A run's record (findings and the files it depended on), or None."""
        return self._read(self.folder / "runs" / key)

    def store_run(self, key: str, value: Any) -> None:
        """Keeps a run's record for the next identical command line."""
        self._write(self.folder / "runs" / key, value)

    def load_fix(self, key: str) -> Any:
        """A finding's remembered fix outcome (bufferlint.fix.memo), or None."""
        return self._read(self.folder / "fixes" / key[:2] / key)

    def store_fix(self, key: str, value: Any) -> None:
        self._write(self.folder / "fixes" / key[:2] / key, value)
