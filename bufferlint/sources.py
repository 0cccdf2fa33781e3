"""Which files to lint, and the module name each one is imported under."""

from __future__ import annotations

import fnmatch
import os
import stat
import tokenize
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_EXCLUDES = (
    ".bzr",
    ".direnv",
    ".eggs",
    ".git",
    ".hg",
    ".mypy_cache",
    ".nox",
    ".pytest_cache",
    ".ruff_cache",
    ".bufferlint_cache",
    ".svn",
    ".tox",
    ".venv",
    "__pycache__",
    "__pypackages__",
    "build",
    "dist",
    "node_modules",
    "site-packages",
    "venv",
)
SUFFIXES = (".py", ".pyi")


class SourceError(Exception):
    """A path the user named that cannot be linted; the message is one line."""


@dataclass(frozen=True)
class SourceFile:
    path: str  # absolute
    module: str
    import_root: str
    is_package: bool


def module_of(
    path: Path, packages: dict[Path, tuple[tuple[str, ...], str]] | None = None
) -> tuple[str, str, bool]:
    """(dotted module, import root, is package) found by walking up `__init__.py` files;
    `packages` remembers each folder's answer for the files after it (a tree of thousands
    of files has a few hundred folders)."""
    is_package = path.stem == "__init__"
    parts, root = _package(path.parent, {} if packages is None else packages)
    parts = parts if is_package else (*parts, path.stem)
    return ".".join(parts) or path.stem, root, is_package


def _package(
    folder: Path, packages: dict[Path, tuple[tuple[str, ...], str]]
) -> tuple[tuple[str, ...], str]:
    """The names of `folder` and of the package folders above it, and the first folder
    up that is no package: the import root. A folder without `__init__.py` inside a
    package is a namespace package there (PEP 420: `pkg/models/x/model.py` imports as
    `pkg.models.x.model`), so that two such `model.py` get two names."""
    if folder not in packages:
        regular = (folder / "__init__.py").exists() or (folder / "__init__.pyi").exists()
        if folder.parent == folder:
            packages[folder] = ((folder.name,) if regular else (), str(folder))
        else:
            parts, root = _package(folder.parent, packages)
            if regular or parts:
                packages[folder] = ((*parts, folder.name), root)
            else:
                packages[folder] = ((), str(folder))
    return packages[folder]


def _default_skip(path: Path, is_dir: bool) -> bool:
    return any(fnmatch.fnmatch(path.name, pattern) for pattern in DEFAULT_EXCLUDES)


def discover(
    paths: Iterable[str],
    skip: Callable[[Path, bool], bool] = _default_skip,
    skip_named: Callable[[Path], bool] | None = None,
) -> list[SourceFile]:
    """Python files under `paths`, sorted, each once. `skip(path, is_dir)` prunes the walk
    (bufferlint.exclusion); a path named explicitly is skipped only by `skip_named`
    (`--force-exclude`, for pre-commit)."""
    found: dict[str, Path] = {}
    for raw in paths:
        root = Path(raw)
        if not root.exists() and not root.is_symlink():
            raise SourceError(f"{raw}: no such file or directory")
        if skip_named is not None and skip_named(root.absolute()):
            continue
        if root.is_file():
            found.setdefault(os.path.realpath(root), root.absolute())
            continue
        if not root.is_dir():
            raise SourceError(f"{raw}: not a file or directory")
        for folder, dirs, files in os.walk(root.absolute(), onerror=_unreadable_folder):
            dirs[:] = sorted(d for d in dirs if not skip(Path(folder, d), True))
            for name in files:
                if not name.endswith(SUFFIXES) or skip(Path(folder, name), False):
                    continue
                path = Path(folder, name)
                real = os.path.realpath(path)
                if os.path.isfile(real):
                    found.setdefault(real, path.absolute())
    files_out = []
    packages: dict[Path, tuple[tuple[str, ...], str]] = {}
    for path in sorted(found.values()):
        module, import_root, is_package = module_of(path, packages)
        files_out.append(SourceFile(str(path), module, import_root, is_package))
    return files_out


def _unreadable_folder(error: OSError) -> None:
    """A folder that cannot be listed stops the run: skipping it silently could hide every
    finding in it. An exclude keeps the walk out of it."""
    reason = error.strerror or str(error)
    raise SourceError(f"{error.filename}: cannot read folder: {reason} (exclude it to skip it)")


def read_bytes(path: str) -> bytes:
    """A regular file's bytes; anything else (a FIFO or device named `.py`, which would block
    or never end) and every OSError is a SourceError in one line."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise SourceError("cannot read: not a regular file")
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            return handle.read()
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(descriptor)


def read_source(path: str) -> str:
    """Decodes as Python does (BOM, coding cookie, UTF-8); raises SourceError in one line."""
    data = read_bytes(path)
    if b"\0" in data:
        raise SourceError("not a text file (contains NUL bytes)")
    try:
        encoding, _ = tokenize.detect_encoding(iter(data.splitlines(keepends=True)).__next__)
        text = data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot decode: {exc}".splitlines()[0]) from None
    return text[1:] if text.startswith("\ufeff") else text
