"""Every --output-format on the same findings: syntax, stability, and what CI systems need."""

import json
import os
import pty
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from bufferlint.cli import main
from bufferlint.output import FORMATS
from bufferlint.rules import BL001, RULES

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "fixtures" / "static"
SARIF_SCHEMA = Path(__file__).resolve().parent / "schemas" / "sarif-2.1.0-rtm.5.json"
# ::error title=...,file=...,line=...,col=...,endLine=...,endColumn=...::message
GITHUB = re.compile(
    r"::(error|warning) title=(?P<title>[^,:]+),file=(?P<file>[^,:]+),line=(?P<line>\d+),"
    r"col=(?P<col>\d+),endLine=(?P<end_line>\d+),endColumn=(?P<end_col>\d+)::(?P<message>[^\n]+)"
)


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input)


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    """A git repository with a flagged package (one class inherits its buffer from a parent
    in another file), an unparsable file and a stale noqa: findings in base.py (BL001),
    broken.py (parse error), child.py (BL001), rope.py (BL001), stale.py (BL100)."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    package = tmp_path / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "rope.py").write_text(BL001.example)
    (package / "base.py").write_text(
        "import torch\nfrom torch import nn\n\n\nclass Base(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        '        self.register_buffer("table", torch.arange(4))\n\n'
        "    def reset_parameters(self):\n        pass\n"
    )
    (package / "child.py").write_text(
        "from .base import Base\n\n\nclass Child(Base):\n"
        "    def reset_parameters(self):\n        super().reset_parameters()\n"
    )
    (package / "broken.py").write_text("class :\n")
    (package / "stale.py").write_text("x = 1  # noqa: BL001\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_format_is_stable(project):
    for name in FORMATS:
        first = run("src", "--output-format", name)
        assert first.exit_code == 1, (name, first.output)
        assert first.stdout.strip(), name
        assert run("src", "--output-format", name).stdout == first.stdout, name


def test_default_is_concise_when_piped_and_full_on_a_terminal(project):
    piped = run("src")
    assert re.search(r"^src/pkg/rope\.py:5:7: BL001 ", piped.stdout, re.M)
    leader, follower = pty.openpty()
    process = subprocess.run(
        [sys.executable, "-m", "bufferlint", "src"], stdout=follower, stderr=follower, timeout=60
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    shown = b"".join(chunks).decode()
    assert process.returncode == 1
    assert " --> src/pkg/rope.py:5:7" in shown
    assert os.environ.get("BUFFERLINT_OUTPUT_FORMAT") is None
    env = {**os.environ, "BUFFERLINT_OUTPUT_FORMAT": "json"}
    as_json = subprocess.run(
        [sys.executable, "-m", "bufferlint", "src"], env=env, capture_output=True, text=True
    )
    assert json.loads(as_json.stdout)


def test_full_shows_the_class_and_the_build_lines(project):
    out = run("src", "--output-format", "full").stdout
    block = next(b for b in out.split("\n\n") if "src/pkg/rope.py" in b)
    lines = block.splitlines()
    assert re.match(
        r"BL001 (\[\*\] )?`reset_parameters` does not rebuild buffer `inv_freq`", lines[0]
    )
    assert lines[1] == " --> src/pkg/rope.py:5:7"
    assert lines[3] == "5 | class RotaryEmbedding(nn.Module):"
    assert lines[4] == "  |       ^^^^^^^^^^^^^^^"
    assert lines[6].startswith('9 |         self.register_buffer("inv_freq"')
    assert lines[7].endswith("- `inv_freq` built here")
    # A buffer built in a parent class, in another file, gets its own location.
    child = next(b for b in out.split("\n\n") if "src/pkg/child.py" in b)
    assert "  ::: src/pkg/base.py:8" in child
    assert "\nFound 4 errors in 6 files. 1 file could not be parsed." in out


def test_concise_grouped_pylint(project):
    concise = run("src", "--output-format", "concise").stdout.splitlines()
    assert re.match(r"src/pkg/base\.py:5:7: BL001 (\[\*\] )?`reset_parameters` does", concise[0])
    assert concise[1].startswith("src/pkg/broken.py:1:1: SyntaxError")
    assert "Found 4 errors in 6 files. 1 file could not be parsed." in concise
    grouped = run("src", "--output-format", "grouped").stdout
    assert "src/pkg/rope.py:\n  5:7 BL001 " in grouped
    pylint = run("src", "--output-format", "pylint").stdout
    assert "src/pkg/stale.py:1: [BL100] Unused `noqa` directive" in pylint


def test_quiet_silent_and_output_file(project):
    assert "Found" not in run("src", "-q").stdout
    silent = run("src", "--silent")
    assert silent.stdout == "" and silent.exit_code == 1
    target = project / "reports" / "bufferlint.sarif"
    result = run("src", "--output-format", "sarif", "--output-file", str(target))
    assert result.exit_code == 1 and result.stdout == ""
    assert json.loads(target.read_text())["version"] == "2.1.0"


def test_json_and_json_lines_carry_the_same_items(project):
    items = json.loads(run("src", "--output-format", "json").stdout)
    lines = [json.loads(x) for x in run("src", "--output-format", "json-lines").stdout.splitlines()]
    assert items == lines
    rope = items[3]
    assert rope["filename"] == str(project / "src" / "pkg" / "rope.py")
    assert rope["location"] == {"row": 5, "column": 7}
    assert rope["noqa_row"] == 5 and rope["name"] == "buffer-not-rebuilt"


def test_sarif_validates_against_the_schema(project):
    log = json.loads(run("src", "--output-format", "sarif").stdout)
    schema = json.loads(SARIF_SCHEMA.read_text())
    jsonschema.Draft4Validator(schema).validate(log)
    [run_] = log["runs"]
    driver = run_["tool"]["driver"]
    assert driver["name"] == "bufferlint"
    ids = [rule["id"] for rule in driver["rules"]]
    assert ids == [*sorted(RULES), "parse-error"]
    for rule in driver["rules"][: len(RULES)]:
        assert {"id", "name", "shortDescription", "fullDescription", "help", "helpUri"} <= set(rule)
        assert rule["help"]["markdown"].startswith(f"# {rule['id']}")
    assert run_["originalUriBaseIds"]["%SRCROOT%"]["uri"] == project.as_uri() + "/"
    results = run_["results"]
    assert [r["ruleId"] for r in results] == ["BL001", "parse-error", "BL001", "BL001", "BL100"]
    child = results[2]
    location = child["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "src/pkg/child.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 4, "startColumn": 7, "endLine": 4, "endColumn": 12}
    related = child["relatedLocations"][0]["physicalLocation"]
    assert related["artifactLocation"]["uri"] == "src/pkg/base.py"
    assert all(driver["rules"][r["ruleIndex"]]["id"] == r["ruleId"] for r in results)


def test_sarif_uses_the_repository_root_from_a_subfolder(project, monkeypatch):
    monkeypatch.chdir(project / "src")
    log = json.loads(run("pkg", "--output-format", "sarif").stdout)
    uris = [
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in log["runs"][0]["results"]
    ]
    assert "src/pkg/rope.py" in uris


def test_github_annotations_follow_the_workflow_command_syntax(project):
    out = run("src", "--output-format", "github").stdout
    lines = out.splitlines()
    assert len(lines) == 5
    for line in lines:
        match = GITHUB.fullmatch(line)
        assert match, line
        assert not (Path(match["file"]).is_absolute())
        assert (project / match["file"]).is_file()
    first = GITHUB.fullmatch(lines[3])
    assert first["title"] == "bufferlint (BL001)" and first["file"] == "src/pkg/rope.py"
    assert (first["line"], first["col"], first["end_col"]) == ("5", "7", "22")
    assert lines[-1].startswith("::warning ")  # BL100


def test_github_escapes_newlines_percent_commas_and_colons():
    from bufferlint.findings import Finding
    from bufferlint.output import Report

    finding = Finding("BL001", "100% wrong\nsecond line", "/r/a,b:c.py", 1, 1, 1, 2, "X", "m", "/r")
    [line] = FORMATS["github"](Report([finding], cwd="/r")).splitlines()
    assert "file=a%2Cb%3Ac.py," in line
    assert line.endswith("::a,b:c.py:1:1: BL001 100%25 wrong%0Asecond line")


def test_gitlab_fingerprints_are_unique_and_survive_line_moves(project):
    first = json.loads(run("src", "--output-format", "gitlab").stdout)
    assert len({i["fingerprint"] for i in first}) == len(first)
    assert {i["location"]["path"] for i in first} >= {"src/pkg/rope.py", "src/pkg/child.py"}
    rope = project / "src" / "pkg" / "rope.py"
    rope.write_text("# a new first line\n" + rope.read_text())
    moved = json.loads(run("src", "--output-format", "gitlab").stdout)
    assert [i["fingerprint"] for i in moved] == [i["fingerprint"] for i in first]
    assert moved[3]["location"]["positions"]["begin"]["line"] == 6


def test_junit_is_xml_with_one_failure_per_finding(project):
    root = ET.fromstring(run("src", "--output-format", "junit").stdout)
    assert root.tag == "testsuites" and root.get("failures") == "5"
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 5 and all(c.find("failure") is not None for c in cases)
    clean = ET.fromstring(run("src/pkg/__init__.py", "--output-format", "junit").stdout)
    assert clean.get("failures") == "0" and len(clean.findall(".//testcase")) == 1


def test_azure_logging_commands(project):
    out = run("src", "--output-format", "azure").stdout
    assert all(line.startswith("##vso[task.logissue type=") for line in out.splitlines())
    assert "code=BL001;]" in out


def test_statistics(project):
    out = run("src", "--statistics").stdout.splitlines()
    assert [[c.strip() for c in line.split("\t")[:2]] for line in out] == [
        ["3", "BL001"],
        ["1", ""],
        ["1", "BL100"],
    ]
    assert out[0].endswith("] buffer-not-rebuilt") and out[1].endswith("[ ] parse-error")
    rows = json.loads(run("src", "--statistics", "--output-format", "json").stdout)
    assert {k: rows[0][k] for k in ("code", "name", "count")} == {
        "code": "BL001",
        "name": "buffer-not-rebuilt",
        "count": 3,
    }
    assert isinstance(rows[0]["fixable"], bool)


def test_stdin_is_reported_under_its_filename_with_the_real_project(project):
    child = project / "src" / "pkg" / "child.py"
    text = child.read_text()
    result = run("-", "--stdin-filename", str(child), "--output-format", "json", input=text)
    [item] = json.loads(result.stdout)
    assert item["filename"] == str(child) and item["code"] == "BL001"  # parent from base.py
    assert "`table` (line 8 of base.py" in item["message"]
    alone = run("--stdin-filename", "src/pkg/child.py", input=text)  # no path: stdin too
    assert alone.stdout.startswith("src/pkg/child.py:4:7: BL001")
    excluded = run(
        "-",
        "--stdin-filename",
        str(child),
        "--extend-exclude",
        "pkg",
        "--force-exclude",
        input=text,
    )
    assert excluded.exit_code == 0 and "0 files" in excluded.stdout


def test_sarif_carries_fixes(tmp_path, monkeypatch):
    from bufferlint.rules import BL002

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mask.py").write_text(BL002.example)
    log = json.loads(run("mask.py", "--output-format", "sarif").stdout)
    jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text())).validate(log)
    [result] = log["runs"][0]["results"]
    if "fixes" not in result:
        pytest.skip("this finding carries no fix")
    [change] = result["fixes"][0]["artifactChanges"]
    assert change["artifactLocation"] == {"uri": "mask.py", "uriBaseId": "%SRCROOT%"}
    assert "def reset_parameters" in change["replacements"][0]["insertedContent"]["text"]


@pytest.mark.parametrize(
    ("args", "plans"),
    [
        (["--output-format", "concise"], True),
        (["--output-format", "json"], True),
        (["--output-format", "sarif"], True),
        (["--output-format", "github", "--statistics"], True),
        (["--output-format", "github"], False),
        (["--output-format", "pylint"], False),
        (["--output-format", "junit"], False),
        (["--output-format", "concise", "--silent"], False),
    ],
)
def test_fixes_are_planned_only_for_outputs_that_show_them(project, monkeypatch, args, plans):
    """Planning a fix per finding costs more than the lint on a large tree: the CI formats
    without `[*]` or edits, and --silent, skip it (and do not reuse a run that did)."""
    import bufferlint.fix

    planned = []
    real = bufferlint.fix.attach_fixes

    def attach_fixes(result, *args):
        planned.append(result)
        real(result, *args)

    monkeypatch.setattr(bufferlint.fix, "attach_fixes", attach_fixes)
    first = run("src", *args)
    assert first.exit_code == 1
    assert bool(planned) is plans
    planned.clear()
    if not plans:  # a cached run without fixes does not answer a run that shows them
        shown = run("src", "--output-format", "concise")
        assert planned and "[*]" in shown.stdout
