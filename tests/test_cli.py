"""Exit codes, and one clear line (never a traceback) for every error a user can cause."""

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bufferlint.cli import main
from bufferlint.rules import BL002, RULES

STATIC = Path(__file__).resolve().parent.parent / "fixtures" / "static"
FLAGGED = BL002.example
CLEAN = BL002.use_instead


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input)


def bufferlint(*args: str, cwd: Path, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bufferlint", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "flagged.py").write_text(FLAGGED)
    (tmp_path / "clean.py").write_text(CLEAN)
    return tmp_path


def test_exit_0_when_clean_1_with_findings(project):
    assert run(str(project / "clean.py")).exit_code == 0
    assert run(str(project)).exit_code == 1
    assert run(str(project), "--exit-zero").exit_code == 0


def test_unparsable_file_exits_1(tmp_path):
    (tmp_path / "broken.py").write_text("class :\n")
    assert run(str(tmp_path)).exit_code == 1
    assert run(str(tmp_path), "--exit-zero").exit_code == 0


ERRORS = {
    "unknown option": (["--no-such-option"], "No such option"),
    "misspelt option": (["--selec", "BL001"], "Did you mean"),
    "bad format": (["--output-format", "xml"], "'xml' is not one of"),
    "missing path": (["nope.py"], "nope.py: no such file or directory"),
    "unknown selector": (["--select", "BL9"], "unknown rule selector `BL9`"),
    "lowercase selector": (["--ignore", "bl001"], "unknown rule selector `bl001`"),
    "bad hook name": (["--reset-method", "not a name"], "`not a name` is not a method name"),
    "missing config": (["--config", "nope.toml"], "--config nope.toml: no such file"),
    "stdin with paths": (["-", "clean.py"], "cannot be combined"),
    "rule without code": (["rule"], "give a rule code"),
    "unknown rule": (["rule", "BL999"], "unknown rule `BL999`"),
    "bad output file": (["--output-file", "clean.py/out.txt"], "--output-file"),
}


def assert_one_line_error(result, expected: str) -> None:
    """Exit 2 through SystemExit (no exception escaped), one line on stderr."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("bufferlint: error: ")
    assert expected in lines[0]


@pytest.mark.parametrize("name", list(ERRORS))
def test_user_errors_exit_2_with_one_line(project, monkeypatch, name):
    monkeypatch.chdir(project)
    args, expected = ERRORS[name]
    assert_one_line_error(run(*args, input=""), expected)


def test_a_real_process_prints_no_traceback(project):
    result = bufferlint("--select", "BL9", cwd=project)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "bufferlint: error: --select: unknown rule selector `BL9`; known rules: " + ", ".join(RULES)
    ]


@pytest.mark.parametrize(
    "config",
    [
        "[tool.bufferlint]\nselct = []\n",
        '[tool.bufferlint]\nselect = "BL001"\n',
        '[tool.bufferlint]\nexclude = ["a", 1]\n',
        "[tool.bufferlint]\nrespect-gitignore = 1\n",
        '[tool.bufferlint]\nper-file-ignores = { "x.py" = ["E501"] }\n',
        "[tool.bufferlint]\nreset-methods = []\n",
        "[tool.bufferlint]\nruntime = 3\n",
        '[tool.bufferlint.runtime]\nrecipe = "fdsp"\n',
        "[tool.bufferlint.runtime]\ndevices = true\n",
        '[tool.bufferlint.runtime]\ntimeout = "30s"\n',
        "[tool.bufferlint.runtime]\ntimeout = -1\n",
        '[tool.bufferlint.runtime.factories]\n"pkg.mod.Class" = "pkg.mod:make"\n',
        "[tool.bufferlint\n",
    ],
)
def test_config_errors_exit_2_with_one_line(project, monkeypatch, config):
    (project / "pyproject.toml").write_text(config)
    monkeypatch.chdir(project)
    assert_one_line_error(run(), "pyproject.toml")


def test_help_and_version():
    help_text = run("--help").output
    assert "Exit status" in help_text and "--select" in help_text
    assert "Usage: bufferlint [OPTIONS] [PATHS]" in help_text
    assert run("--version").exit_code == 0


def test_check_is_an_alias_and_rule_is_a_command(project, monkeypatch):
    assert run("check", str(project)).exit_code == 1
    assert run("rule", "BL001").exit_code == 0
    # A folder literally named `rule` is linted when written as a path.
    folder = project / "rule"
    folder.mkdir()
    (folder / "m.py").write_text(FLAGGED)
    monkeypatch.chdir(project)
    result = run("./rule")
    assert result.exit_code == 1
    assert "rule/m.py" in result.output


def test_default_path_is_the_current_folder(project, monkeypatch):
    monkeypatch.chdir(project)
    result = run()
    assert result.exit_code == 1
    assert "flagged.py" in result.output


def test_undecodable_stdin_and_config_are_one_line_errors(project, monkeypatch):
    monkeypatch.chdir(project)
    result = CliRunner().invoke(main, ["-"], input=b'x = "\xff"\n')
    assert_one_line_error(result, "stdin: cannot decode")
    (project / "pyproject.toml").write_bytes(b'[tool.bufferlint]\nselect = ["\xff"]\n')
    assert_one_line_error(run(), "pyproject.toml: invalid TOML")
