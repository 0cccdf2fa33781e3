"""The static command end to end: exit codes, JSON, parse failures, no torch."""

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from bufferlint import __version__
from bufferlint.cli import main

STATIC = Path(__file__).resolve().parent.parent / "fixtures" / "static"


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_exit_codes(tmp_path):
    clean = tmp_path / "clean.py"
    clean.write_text("x = 1\n")
    assert run(str(clean)).exit_code == 0
    assert run(str(STATIC / "placeholders.py")).exit_code == 1
    missing = run(str(tmp_path / "nope.py"))
    assert missing.exit_code == 2
    assert "no such file or directory" in missing.output
    assert run("--no-such-option").exit_code == 2


def test_text_output_is_sorted_and_summarised():
    result = run(str(STATIC))
    lines = result.output.splitlines()
    findings = [line for line in lines if ": BL0" in line]
    assert findings, result.output
    keys = []
    for line in findings:
        path, row, _ = line.split(":", 2)
        keys.append((path, int(row)))
    assert keys == sorted(keys)
    assert f"Found {len(findings)} errors in" in result.output


def test_json_fields():
    result = run(str(STATIC / "litgpt_like.py"), "--output-format", "json")
    assert result.exit_code == 1
    [item] = json.loads(result.output)
    assert item["code"] == "BL001"
    assert item["filename"] == str(STATIC / "litgpt_like.py")
    assert item["location"] == {"row": 26, "column": 7}
    assert item["end_location"] == {"row": 26, "column": 10}
    assert item["class_name"] == "GPT"
    assert item["buffers"] == ["cos", "sin"]
    assert item["url"].endswith("BL001.md")
    assert "fix" in item


def test_parse_failure_is_reported_and_the_run_goes_on(tmp_path):
    # Only files that can hold a finding are parsed: this one names register_buffer.
    (tmp_path / "broken.py").write_text("def f(:\n    self.register_buffer('a', x)\n")
    (tmp_path / "model.py").write_text((STATIC / "placeholders.py").read_text())
    result = run(str(tmp_path), "--output-format", "json")
    assert result.exit_code == 1
    items = json.loads(result.output)
    broken = [i for i in items if i["filename"].endswith("broken.py")]
    assert broken[0]["code"] is None
    assert broken[0]["location"]["row"] == 2
    assert broken[0]["message"].startswith("SyntaxError:")
    assert any(i["code"] == "BL002" for i in items)


def test_parse_failure_alone_exits_1(tmp_path):
    (tmp_path / "broken.py").write_text("class :\n    register_buffer\n")
    result = run(str(tmp_path))
    assert result.exit_code == 1
    assert "broken.py:" in result.output and "SyntaxError" in result.output


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert __version__ in result.output


def test_static_path_never_imports_torch_or_user_code(tmp_path):
    # The linted file would raise if it were imported or run.
    bomb = tmp_path / "bomb.py"
    bomb.write_text((STATIC / "litgpt_like.py").read_text() + "\nraise SystemExit('imported!')\n")
    code = (
        "import sys\n"
        "from bufferlint.cli import main\n"
        "try:\n"
        f"    main([{str(bomb)!r}, {str(STATIC)!r}])\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "roots = ('torch', 'lightning', 'bomb')\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in roots)\n"
        "print('LOADED', loaded, code)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "LOADED [] 1" in out.stdout
    assert "imported!" not in out.stdout + out.stderr


def test_a_run_without_buffers_imports_only_what_it_uses(tmp_path):
    """Pre-commit's budget (0.3 s a file) has no room for LibCST where nothing is parsed,
    nor for OpenSSL, the config parser, machine output formats, rule pages or the
    runtime bridge when the run does not use them."""
    (tmp_path / "plain.py").write_text("x = 1\n")
    code = (
        "import sys\n"
        "from bufferlint.cli import main\n"
        "for args in (['--version'], ['plain.py', '--no-cache']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('libcst', '_hashlib', 'tomllib', 'difflib', 'xml', 'bufferlint.output.ci',\n"
        "         'bufferlint.output.sarif', 'bufferlint.docs', 'bufferlint.runtime.attach')\n"
        "print('LOADED', sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert "LOADED []" in out.stdout


def test_the_exit_skips_teardown_only_with_nothing_to_release():
    """The console script ends with os._exit (the interpreter's teardown costs 30 ms of a
    one-file run) unless the runtime mode's workers may hold semaphores to release."""
    code = (
        "import sys\n"
        "from bufferlint.cli import _nothing_to_release\n"
        "first = _nothing_to_release()\n"
        "import multiprocessing\n"
        "second = _nothing_to_release()\n"
        "import bufferlint.runtime.launch\n"
        "print(first, second, _nothing_to_release())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "False"]


def test_output_order_is_stable():
    first = run(str(STATIC), "--output-format", "json").output
    assert all(run(str(STATIC), "--output-format", "json").output == first for _ in range(3))
