"""Every input gets a result or one clear line, never a traceback or a hang, and the exit
status says what happened: 0 clean, 1 findings or unparsable files, 2 a usage error.

The corpus below (docs/robustness.md lists it with the behaviour for each) is written to a
temporary folder and linted in one subprocess, so that a crash of the interpreter (LibCST
overflows the C stack on deep nesting) fails a test instead of killing pytest, and so
that one bad file is seen not to stop the run. Both the prefiltered engine (the CLI) and
the whole-file path (`Settings(prefilter=False)`) must give each file its expected result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Collection
from pathlib import Path

import pytest
from click.testing import CliRunner

from bufferlint import parsing, sources
from bufferlint.cli import main

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
HOOKED = MODEL + "\n    def reset_parameters(self):\n"
CLASS = MODEL.split("\n\n\n")[1]  # the class statement alone
ANY = "any result"  # whatever the analysis makes of it, as long as nothing crashes

# file name -> (content, expected): "BL002"/"BL001" (a finding with that code), "clean"
# (no finding), ANY, or the start of the parse-failure message reported at the file.
Content = bytes | str | Callable[[], bytes | str]
CORPUS: dict[str, tuple[Content, str]] = {
    # syntax
    "syntax_error.py": (MODEL + "def f(:\n", "SyntaxError: expected one of"),
    "syntax_error_no_class.py": ("def f(:\n    pass\n", "SyntaxError: expected one of"),
    "pep758_except_without_parens.py": (
        MODEL + "try:\n    pass\nexcept ValueError, TypeError:\n    pass\n",
        "BL002",  # Python 3.14 syntax: CPython 3.11 rejects it, LibCST reads it
    ),
    "pep695_type_alias.py": (MODEL + "type Alias = int\n", "BL002"),
    "pep750_template_string.py": (MODEL + "greeting = t'hi {Model}'\n", "BL002"),
    "inconsistent_tabs.py": (
        "class M:\n    def f(self):\n\tpass\n",
        "SyntaxError: tokenizer error: inconsistent mixing of tabs and spaces",
    ),
    "indented_too_deep.py": (
        lambda: "".join(" " * i + f"def f{i}():\n" for i in range(150)) + " " * 150 + "pass\n",
        "SyntaxError: tokenizer error: too many indentation levels",
    ),
    # encodings
    "latin1_cookie.py": (
        ("# -*- coding: latin-1 -*-\n" + MODEL + "CAFE = 'caf\xe9'\n").encode("latin-1"),
        "BL002",
    ),
    "bogus_cookie.py": (
        "# -*- coding: nope -*-\n" + MODEL,
        "cannot decode: unknown encoding: nope",
    ),
    "not_utf8.py": ((MODEL + "CAFE = 'caf\xe9'\n").encode("latin-1"), "cannot decode: 'utf-8'"),
    "bom.py": (b"\xef\xbb\xbf" + MODEL.encode(), "BL002"),
    "bom_and_latin1_cookie.py": (
        b"\xef\xbb\xbf# coding: latin-1\n" + MODEL.encode(),
        "cannot decode: encoding problem: utf-8",
    ),
    "lone_surrogate_bytes.py": (MODEL.encode() + b"S = '\xed\xa0\x80'\n", "cannot decode"),
    "escaped_surrogate.py": (MODEL + "S = '\\ud800'\n", "BL002"),
    "unicode_names.py": (MODEL.replace("Model", "Modèle").replace("table", "tablé"), "BL002"),
    # not text
    "empty.py": ("", "clean"),
    "binary.py": (bytes(range(256)) * 16, "not a text file (contains NUL bytes)"),
    "binary_without_nul.py": (bytes(range(128, 256)) * 16, "cannot decode: invalid or missing"),
    "nul_in_a_comment.py": (MODEL + "# \0\n", "not a text file (contains NUL bytes)"),
    # line endings and whitespace
    "crlf.py": (MODEL.replace("\n", "\r\n"), "BL002"),
    "cr_only.py": (MODEL.replace("\n", "\r"), "BL002"),
    "mixed_line_endings.py": (MODEL.replace("\n", "\r\n", 3), "BL002"),
    "tabs.py": (MODEL.replace("    ", "\t"), "BL002"),
    "form_feed.py": ("\f\n" + MODEL, "BL002"),
    "stub.pyi": (
        "from torch import nn\n\nclass M(nn.Module):\n    def __init__(self) -> None: ...\n",
        "clean",
    ),
    # nesting: CPython's parser refuses these; LibCST alone would overflow the C stack
    "parens_5000_deep.py": (
        lambda: MODEL + "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n",
        "too deeply nested to parse: too many nested parentheses",
    ),
    "sum_of_100k_terms.py": (
        lambda: MODEL + "x = " + "+".join(["1"] * 100_000) + "\n",
        "too deeply nested to parse (RecursionError",
    ),
    "not_5000_times.py": (
        lambda: MODEL + "        x = " + "not " * 5000 + "self\n",
        "too deeply nested to parse",
    ),
    "elif_5000_times.py": (
        lambda: "if x:\n    pass\n" + "elif x:\n    pass\n" * 5000,
        "too deeply nested to parse (RecursionError",
    ),
    # nesting CPython accepts: parsed and walked on a large stack
    "and_chain_20000.py": (lambda: MODEL + "x = " + " and ".join(["a"] * 20_000) + "\n", "BL002"),
    "guard_of_20000_terms.py": (
        lambda: (
            HOOKED + "        if " + " and ".join(["self.training"] * 20_000) + ":\n"
            "            self.table.copy_(torch.arange(4))\n"
        ),
        "clean",  # a configuration guard: the rebuild counts
    ),
    "guard_under_41_nots.py": (
        HOOKED + "        if " + "not " * 41 + "hasattr(self, 'table'):\n"
        "            self.table.copy_(torch.arange(4))\n",
        "BL001",  # was exponential: each `not` evaluated its operand twice
    ),
    "subscripts_500_deep.py": (lambda: MODEL + "x = a" + "[0]" * 500 + "\n", "BL002"),
    # size
    "line_of_2_mb.py": (lambda: MODEL + "x = '" + "a" * 2_000_000 + "'\n", "BL002"),
    "lines_20k.py": (lambda: "import torch\n" + "x = 1\n" * 20_000 + MODEL, "BL002"),
    "classes_300.py": (
        lambda: MODEL + "".join(CLASS.replace("Model", f"M{i}") for i in range(299)),
        "BL002",
    ),
    "inheritance_chain_1100.py": (  # subclasses first: the model recurses 1,100 deep
        lambda: (
            "import torch\nfrom torch import nn\n\n"
            + "".join(f"class A{i}(A{i + 1}):\n    pass\n\n" for i in range(1100))
            + CLASS.replace("Model", "A1100")
        ),
        "BL002",
    ),
    "helper_chain_1100.py": (
        lambda: (
            MODEL.replace('self.register_buffer("table", torch.arange(4))', "self.h0()")
            + "".join(f"\n    def h{i}(self):\n        self.h{i + 1}()\n" for i in range(1100))
            + '\n    def h1100(self):\n        self.register_buffer("table", torch.arange(4))\n'
        ),
        "BL002",
    ),
    # odd code
    "odd_register_calls.py": (
        MODEL + "        self.register_buffer()\n        self.register_buffer(*a)\n"
        "        self.register_buffer(**k)\n        self.register_buffer(name, t)\n"
        "        self.register_buffer(b'x', t)\n        self.register_buffer(f'x{1}', t)\n"
        "        self.x = nn.Buffer()\n        self.y = nn.Buffer(*a)\n        setattr(self)\n",
        "BL002",
    ),
    "odd_signatures.py": (
        "from torch import nn\n\nclass M(nn.Module):\n    def __init__(*args):\n        pass\n"
        "    def reset_parameters(*, x):\n        pass\n    @property\n    def p(): pass\n"
        "    @p.setter\n    def p(): pass\n",
        "clean",
    ),
    "odd_bases.py": (
        "from torch import nn\nclass A(nn.Module, metaclass=Meta, **kw): pass\n"
        "class B(*bases): pass\nclass C(nn.Module if x else object):\n"
        "    def __init__(self):\n        self.register_buffer('a', 1)\n"
        "class D(lambda: 1): pass\nclass E(A[int]): pass\nclass F(f()(), g.h[1].i): pass\n"
        "class G(G): pass\n",
        ANY,
    ),
    "inherits_itself.py": (
        "import torch\nclass A(A):\n    def __init__(self):\n"
        "        self.register_buffer('a', torch.ones(1))\n",
        ANY,
    ),
    "cycle_a.py": (
        "import torch\nfrom cycle_b import B\nclass A(B):\n    def __init__(self):\n"
        "        self.register_buffer('a', torch.ones(1))\n",
        ANY,
    ),
    "cycle_b.py": ("from cycle_a import A\nclass B(A):\n    pass\n", "clean"),
}


def write_corpus(folder: Path, names: Collection[str] = CORPUS) -> None:
    """The corpus (or the named part of it), plus entries no file list should hold: a FIFO
    (reading it would block forever), symbolic-link loops, a dangling link, a folder named
    like a module."""
    for name in names:
        content = CORPUS[name][0]
        data = content() if callable(content) else content
        path = folder / name
        path.write_bytes(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    os.mkfifo(folder / "fifo.py")
    os.symlink("loop_b.py", folder / "loop_a.py")
    os.symlink("loop_a.py", folder / "loop_b.py")
    os.symlink("/nonexistent/target.py", folder / "dangling.py")
    (folder / "folder.py").mkdir()
    (folder / "loops").mkdir()
    os.symlink("..", folder / "loops" / "up")
    os.symlink(".", folder / "loops" / "self")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad_input")
    write_corpus(folder)
    return folder


def _subprocess(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


# One script for both engines: file name -> [(code, message), ...].
_WHOLE_FILE = """
import json, os
from bufferlint.engine import Settings, lint
result = lint(["."], Settings(prefilter=False))
out = {}
for f in result.findings:
    out.setdefault(os.path.basename(f.path), []).append([f.code, f.message])
print(json.dumps({"files": result.files, "results": out}))
"""


@pytest.fixture(scope="module")
def cli_results(corpus: Path) -> dict:
    done = _subprocess(["-m", "bufferlint", "--output-format", "json", "."], corpus)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr == ""
    assert done.returncode == 1, done.stdout[-2000:]
    out: dict[str, list] = {}
    for item in json.loads(done.stdout):
        out.setdefault(os.path.basename(item["filename"]), []).append(
            [item["code"], item["message"]]
        )
    return {"results": out}


@pytest.fixture(scope="module")
def whole_file_results(corpus: Path) -> dict:
    done = _subprocess(["-c", _WHOLE_FILE], corpus)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout)


def _check(results: dict[str, list], name: str, expected: str) -> None:
    got = results.get(name, [])
    if expected == ANY:
        return
    if expected == "clean":
        assert got == [], got
    elif expected in ("BL001", "BL002"):
        assert got and {code for code, _ in got} == {expected}, got
    else:
        assert len(got) == 1, got
        code, message = got[0]
        assert code is None and message.startswith(expected), got
        assert "\n" not in message and "Traceback" not in message


@pytest.mark.parametrize("name", list(CORPUS))
def test_each_bad_input_gets_its_result_from_the_cli(cli_results: dict, name: str) -> None:
    _check(cli_results["results"], name, CORPUS[name][1])


@pytest.mark.parametrize("name", list(CORPUS))
def test_each_bad_input_gets_its_result_parsing_whole_files(
    whole_file_results: dict, name: str
) -> None:
    _check(whole_file_results["results"], name, CORPUS[name][1])


def test_entries_that_are_not_files_are_skipped(cli_results: dict, whole_file_results) -> None:
    """The FIFO, the links and the folder are not linted: the run neither hangs nor lists
    them, and every real file is counted."""
    skipped = {"fifo.py", "loop_a.py", "loop_b.py", "dangling.py", "folder.py"}
    assert not skipped & set(cli_results["results"])
    assert whole_file_results["files"] == len(CORPUS)


def test_each_of_300_classes_gets_its_finding(cli_results: dict) -> None:
    assert len(cli_results["results"]["classes_300.py"]) == 300


def run(*args: str, input: bytes | None = None):
    return CliRunner().invoke(main, list(args), input=input)


def one_line_error(result, text: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.output == f"bufferlint: error: {text}\n"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.py", "missing.py: no such file or directory"),
        (lambda d: os.mkfifo(d / "fifo.py") or d / "fifo.py", "fifo.py: not a file or directory"),
        (
            lambda d: os.symlink("loop.py", d / "loop.py") or d / "loop.py",
            "loop.py: not a file or directory",
        ),
    ],
    ids=["missing", "fifo", "link-loop"],
)
def test_bad_paths_named_on_the_command_line_exit_2(tmp_path, monkeypatch, make, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.py").write_text(MODEL)
    path = make(tmp_path)
    one_line_error(run("ok.py", path.name), message)


def test_an_empty_folder_is_clean(tmp_path):
    result = run(str(tmp_path))
    assert result.exit_code == 0
    assert result.output == "All checks passed! (0 files checked)\n"


def test_an_unreadable_file_is_reported_and_the_run_goes_on(tmp_path, monkeypatch):
    """Simulated: tests run as root here, for whom chmod 000 stops nothing."""
    (tmp_path / "locked.py").write_text(MODEL)
    (tmp_path / "ok.py").write_text(MODEL)
    real_open = os.open

    def denied(path, flags, *args, **kwargs):
        if str(path).endswith("locked.py"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(sources.os, "open", denied)
    result = run(str(tmp_path), "--output-format", "concise")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].endswith("locked.py:1:1: cannot read: Permission denied")
    assert "ok.py:5:7: BL002" in lines[1]


def _killed(job: object) -> None:
    os._exit(9)  # as the kernel's OOM killer would end a worker


def test_a_worker_that_dies_stops_the_run_in_one_line(tmp_path, monkeypatch):
    from bufferlint import pool, prefiltered

    for number in range(4):
        (tmp_path / f"m{number}.py").write_text(MODEL)
    monkeypatch.setattr(pool, "POOL_BYTES", 0)  # a pool even for a few files
    monkeypatch.setattr(prefiltered, "work", _killed)
    result = run(str(tmp_path), "--jobs", "2", "--no-cache")
    assert result.exit_code == 2
    assert result.output == (
        "bufferlint: error: a worker process died (exit status 9); --jobs 1 lints in one process\n"
    )


def test_an_unreadable_folder_stops_the_run_in_one_line(tmp_path, monkeypatch):
    """Skipping it silently could hide every finding in it; an exclude skips it."""
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "m.py").write_text(MODEL)
    (tmp_path / "ok.py").write_text(MODEL)
    real_scandir = os.scandir

    def denied(path="."):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", denied)
    one_line_error(
        run(str(tmp_path)),
        f"{tmp_path / 'locked'}: cannot read folder: Permission denied (exclude it to skip it)",
    )
    result = run(str(tmp_path), "--exclude", "locked", "--output-format", "concise")
    assert result.exit_code == 1 and "ok.py:5:7: BL002" in result.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_chmod_000_for_real(tmp_path):
    (tmp_path / "locked.py").write_text(MODEL)
    (tmp_path / "locked.py").chmod(0)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder").chmod(0)
    try:
        result = run(str(tmp_path / "locked.py"), "--output-format", "concise")
        assert result.exit_code == 1 and "cannot read: Permission denied" in result.output
        assert "cannot read folder: Permission denied" in run(str(tmp_path)).output
    finally:
        (tmp_path / "folder").chmod(0o755)


@pytest.mark.parametrize(
    "data, code, text",
    [
        (b"\xff\xfe\x00binary", 2, "bufferlint: error: stdin: cannot decode"),
        (b"# -*- coding: nope -*-\n", 2, "bufferlint: error: stdin: cannot decode"),
        (("x = " + "(" * 5000 + ")" * 5000 + "\n").encode(), 1, "too deeply nested to parse"),
        (b"\xef\xbb\xbf" + MODEL.encode(), 1, "BL002"),
    ],
    ids=["binary", "bogus-cookie", "deep", "bom"],
)
def test_stdin(data: bytes, code: int, text: str) -> None:
    result = run("-", "--stdin-filename", "m.py", "--output-format", "concise", input=data)
    assert result.exit_code == code
    assert text in result.output and "Traceback" not in result.output


def test_parse_module_restores_the_interpreter_state() -> None:
    """The large stack and recursion limit apply to the parsing thread only."""
    limit = sys.getrecursionlimit()
    with pytest.raises(parsing.TooDeep, match="too many nested parentheses"):
        parsing.parse_module("x = " + "(" * 300 + ")" * 300)
    module = parsing.parse_module("x = " + " or ".join(["a"] * 20_000))  # SIGSEGV in LibCST
    assert len(module.body) == 1
    assert sys.getrecursionlimit() == limit
    with pytest.raises(ZeroDivisionError):
        parsing.run_deep(lambda: 1 / 0)


def test_a_bug_in_bufferlint_is_one_line_and_exit_2(monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise RuntimeError("cos\nsecond line")

    monkeypatch.setattr("bufferlint.cli.lint", broken)
    (tmp_path / "m.py").write_text("x = 1\n")
    result = run(str(tmp_path))
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "bufferlint: error: internal error (RuntimeError: cos); this is a bug in bufferlint, "
        "please report it (BUFFERLINT_TRACEBACK=1 shows where)"
    ]
    monkeypatch.setenv("BUFFERLINT_TRACEBACK", "1")
    assert isinstance(run(str(tmp_path)).exception, RuntimeError)
