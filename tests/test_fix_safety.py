"""`--fix` never loses code, tested from the outside.

A file is written whole or not at all (a failing write, a full disk, a crash just before
the rename); a file that changed on disk since it was read, or is read-only, is reported
and left alone; encodings, BOMs, line endings and indentation come out as they went in,
and a second `--fix` changes nothing. Finally the whole bad-input corpus goes through
`--fix` (tests/test_bad_input.py): nothing it cannot parse is touched.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import libcst as cst
import pytest
from click.testing import CliRunner
from test_bad_input import ANY, CORPUS, write_corpus

from bufferlint import parsing
from bufferlint.cli import main
from bufferlint.fix import files

MODEL = textwrap.dedent(
    """\
    import torch
    from torch import nn


    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("table", torch.arange(4))
    """
)
TAIL = "\n\nANSWER = 42\n"  # code after the class must survive too


def run(*args: str):
    return CliRunner().invoke(main, ["--output-format", "concise", *args])


def fix(path: Path):
    return run("--fix", str(path))


def _added_lines(old: bytes, new: bytes) -> list[bytes]:
    """The lines `new` adds, asserting that it keeps every line of `old` in order, line
    ending included."""
    added, kept = [], iter(old.splitlines(keepends=True))
    expected = next(kept, None)
    for line in new.splitlines(keepends=True):
        if line == expected:
            expected = next(kept, None)
        else:
            added.append(line)
    assert expected is None, f"lost {expected!r}"
    return added


@pytest.mark.parametrize(
    "name, data, newline",
    [
        ("crlf", (MODEL + TAIL).replace("\n", "\r\n").encode(), b"\r\n"),
        ("cr_only", (MODEL + TAIL).replace("\n", "\r").encode(), b"\r"),
        ("mixed", (MODEL + TAIL).replace("\n", "\r\n", 4).encode(), b"\r\n"),
        ("tabs", (MODEL + TAIL).replace("    ", "\t").encode(), b"\n"),
        ("bom", codecs.BOM_UTF8 + (MODEL + TAIL + "É = 1\n").encode(), b"\n"),
        (
            "latin1_cookie",
            ("# -*- coding: latin-1 -*-\n" + MODEL + TAIL + "CAFE = 'café'\n").encode("latin-1"),
            b"\n",
        ),
        ("no_final_newline", (MODEL + TAIL).rstrip("\n").encode(), b"\n"),
        ("form_feed", ("\f\n" + MODEL + TAIL).encode(), b"\n"),
    ],
)
def test_fix_keeps_encoding_line_endings_and_every_original_line(tmp_path, name, data, newline):
    path = tmp_path / f"{name}.py"
    path.write_bytes(data)
    path.chmod(0o640)
    result = fix(path)
    assert result.exit_code == 0, result.output
    fixed = path.read_bytes()
    assert fixed != data
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert fixed.startswith(codecs.BOM_UTF8) == data.startswith(codecs.BOM_UTF8)
    # Every original line is still there, byte for byte; the added ones end as the first.
    added = _added_lines(data, fixed)
    assert added and all(line.endswith(newline) for line in added if line.strip())
    if name == "tabs":
        assert all(line.startswith(b"\t") for line in added if line.strip())
    # It still parses (as the encoding Python would detect), and is fixed for good.
    compile(fixed, str(path), "exec", dont_inherit=True)
    encoding = "latin-1" if name == "latin1_cookie" else "utf-8-sig"
    cst.parse_module(fixed.decode(encoding))
    assert fix(path).exit_code == 0
    assert path.read_bytes() == fixed


@pytest.fixture
def flagged(tmp_path: Path) -> Path:
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    return path


def _only_file_left(path: Path) -> None:
    """No temporary file is left next to it."""
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize(
    "target, error, reason",
    [
        ("replace", errno.EXDEV, "cannot write: Invalid cross-device link"),
        ("fsync", errno.ENOSPC, "cannot write: No space left on device"),
        ("mkstemp", errno.EACCES, "cannot write next to it: Permission denied"),
    ],
)
def test_a_failing_write_leaves_the_file_whole(flagged, monkeypatch, target, error, reason):
    def fail(*args, **kwargs):
        raise OSError(error, os.strerror(error))

    owner = files.tempfile if target == "mkstemp" else files.os
    monkeypatch.setattr(owner, target, fail)
    result = fix(flagged)
    assert result.exit_code == 1
    assert f"bufferlint: {flagged}: not fixed: {reason}" in result.output
    assert "BL002" in result.output  # the finding is still reported
    assert flagged.read_text() == MODEL
    _only_file_left(flagged)


def test_a_crash_before_the_rename_leaves_the_file_whole(flagged):
    """SIGKILL at the last moment: the original is intact (a temporary file may remain)."""
    script = (
        "import os, signal, sys\n"
        "os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
        "from bufferlint.cli import main\n"
        "sys.exit(main(['--fix', sys.argv[1]]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(flagged)], capture_output=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL
    assert flagged.read_text() == MODEL


def test_a_file_changed_since_it_was_read_is_left_alone(flagged, monkeypatch):
    edited = MODEL + "# edited meanwhile\n"
    real_write = files.write

    def edit_then_write(source, text):
        flagged.write_text(edited)  # someone saves the file while bufferlint fixes it
        return real_write(source, text)

    monkeypatch.setattr(files, "write", edit_then_write)
    result = fix(flagged)
    assert result.exit_code == 1
    reason = "not fixed: it changed on disk since bufferlint read it"
    assert f"bufferlint: {flagged}: {reason}" in result.output
    assert flagged.read_text() == edited
    _only_file_left(flagged)


def test_a_read_only_file_is_reported_even_for_root(flagged):
    flagged.chmod(0o444)
    result = fix(flagged)
    assert result.exit_code == 1
    assert f"bufferlint: {flagged}: not fixed: it is read-only" in result.output
    assert flagged.read_text() == MODEL
    assert stat.S_IMODE(flagged.stat().st_mode) == 0o444


def test_a_symlink_stays_a_link_to_the_fixed_file(tmp_path, flagged):
    link = tmp_path / "link.py"
    link.symlink_to(flagged.name)
    assert fix(link).exit_code == 0
    assert link.is_symlink() and os.readlink(link) == flagged.name
    assert "def reset_parameters" in flagged.read_text()


def _digest(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes()).hexdigest()


# Slow to fix, and fixed by the CLI run of tests/test_bad_input.py already.
HEAVY = {"classes_300.py", "guard_of_20000_terms.py", "lines_20k.py", "line_of_2_mb.py"}
HEAVY |= {"and_chain_20000.py", "inheritance_chain_1100.py", "helper_chain_1100.py"}


def test_fix_over_the_bad_input_corpus(tmp_path):
    """No traceback; a file it cannot read or parse stays byte for byte; fixed files parse;
    a second run changes nothing."""
    names = [name for name in CORPUS if name not in HEAVY]
    write_corpus(tmp_path, names)
    before = {name: _digest(tmp_path / name) for name in names}

    def fix_all() -> dict[str, str]:
        done = subprocess.run(
            [sys.executable, "-m", "bufferlint", "--fix", "--unsafe-fixes", "."],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        return {name: _digest(tmp_path / name) for name in names}

    after = fix_all()
    changed = {name for name in names if after[name] != before[name]}
    fixable = {name for name in names if CORPUS[name][1] in ("BL001", "BL002", ANY)}
    assert changed <= fixable
    assert {"crlf.py", "cr_only.py", "bom.py", "latin1_cookie.py", "tabs.py"} <= changed
    for name in changed:
        data = (tmp_path / name).read_bytes()
        encoding = "latin-1" if name == "latin1_cookie.py" else "utf-8-sig"
        parsing.parse_module(data.decode(encoding))
    assert fix_all() == after
