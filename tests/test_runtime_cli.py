"""`bufferlint --runtime` end to end: verdicts on the fixtures, recipes, devices, exit codes,
settings precedence, user errors and every output format.

The CLI runs in this process (CliRunner), so one forkserver serves every test here and in
tests/runtime; only the first check pays for starting it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from bufferlint.cli import main
from bufferlint.findings import BufferSite, Finding
from bufferlint.output import FORMATS, Report, summary
from bufferlint.rules import runtime_checked
from bufferlint.runtime import RECIPES

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "fixtures" / "static"
RUNTIME = ROOT / "fixtures" / "runtime"
LITGPT = STATIC / "litgpt_like.py"
SARIF_SCHEMA = ROOT / "tests" / "schemas" / "sarif-2.1.0-rtm.5.json"
EXPECT = re.compile(r"#\s*expect:\s*(BL\d+)")
LITGPT_SUMMARY = (
    "cos[0, :4] expected [1.0, 1.0, 1.0, 1.0], got [nan, nan, nan, nan] (also wrong: sin)"
)

needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("lightning") is None,
    reason="runtime mode needs torch and lightning",
)

# Static fixtures that cannot come out confirmed, and why.
NOT_CONFIRMED = {
    # Its module imports `somewhere_else`, a package that does not exist (the fixture is about
    # bases the static analysis cannot see), so no way of building the class can run.
    ("unknown_bases.py", "RegistersOnUnknownBase"): (
        "error",
        "import failed: ModuleNotFoundError: No module named 'somewhere_else'",
    ),
}
# The runtime fixtures the static analysis flags, and what running them shows.
RUNTIME_VERDICTS = {
    ("causal_mask.py", "CausalSelfAttention"): "confirmed",
    ("litgpt_rope.py", "GPT"): "confirmed",
    ("random_buffer.py", "NoiseNotRebuilt"): "confirmed",
    ("rope_fixed.py", "RotaryNoHook"): "confirmed",
    # torchtune_rope.py's class defines `rope_init`: `auto` judges it under torchtune,
    # whose path builds it (tests/test_stack_conventions.py), so it is not flagged here.
    ("meta_unfriendly.py", "ItemInInit"): "error",  # .item() on a meta tensor
    ("hidden_rebuild.py", "RampTable"): "refuted",  # rebuilt through setattr on dict keys
    ("unbuildable.py", "VocabTable"): "unconfirmed",  # needs a Vocabulary: no factory given
}


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def items(*args: str) -> tuple[int, dict[tuple[str, str], dict]]:
    """Exit code and the JSON items by (file name, class)."""
    result = run("--runtime", "--output-format", "json", *args)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, {
        (Path(item["filename"]).name, item["class_name"]): item
        for item in json.loads(result.stdout)
    }


@pytest.fixture(scope="module")
def fixture_run() -> tuple[int, dict[tuple[str, str], dict]]:
    return items(str(STATIC), str(RUNTIME))


def static_positives() -> set[tuple[str, str]]:
    """(file name, class) of every class a `# expect:` marker says must be reported."""
    out = set()
    for path in STATIC.rglob("*.py"):
        for line in path.read_text().splitlines():
            found = EXPECT.search(line)
            if found and found.group(1) in runtime_checked():
                out.add((path.name, line.split("class ", 1)[1].split("(", 1)[0]))
    return out


@needs_torch
def test_every_positive_static_fixture_is_confirmed(fixture_run):
    code, found = fixture_run
    assert code == 1
    positives = static_positives()
    assert positives <= found.keys()
    for key in positives:
        runtime = found[key]["runtime"]
        verdict, text = NOT_CONFIRMED.get(key, ("confirmed", ""))
        assert runtime["verdict"] == verdict, (key, runtime["summary"])
        assert text in runtime["summary"]
        assert runtime["recipe"] == "fsdp"  # auto, with reset_parameters as the only hook


@needs_torch
def test_runtime_fixtures_get_their_verdicts(fixture_run):
    _, found = fixture_run
    got = {key: item["runtime"]["verdict"] for key, item in found.items()}
    assert {key: got.get(key) for key in RUNTIME_VERDICTS} == RUNTIME_VERDICTS
    unbuildable = found["unbuildable.py", "VocabTable"]["runtime"]
    assert "cannot make a Vocabulary for 'vocab'" in unbuildable["summary"]
    assert '"unbuildable:VocabTable" = "pkg.mod:make_tiny"' in unbuildable["summary"]


@needs_torch
@pytest.mark.parametrize("recipe", RECIPES)
def test_litgpt_is_confirmed_under_every_recipe(recipe):
    code, found = items("--materialize", recipe, str(LITGPT))
    runtime = found["litgpt_like.py", "GPT"]["runtime"]
    assert code == 1
    assert (runtime["verdict"], runtime["recipe"]) == ("confirmed", recipe)
    # torchtune never calls to_empty: what no rope_init builds is left on meta.
    expected = "cos is still on the meta device" if recipe == "torchtune" else LITGPT_SUMMARY
    assert expected in runtime["summary"]


@needs_torch
def test_two_devices_run_as_two_cpu_ranks():
    _, found = items("--devices", "2", str(LITGPT))
    runtime = found["litgpt_like.py", "GPT"]["runtime"]
    assert (runtime["verdict"], runtime["devices"]) == ("confirmed", 2)
    assert [r["verdict"] for r in runtime["ranks"]] == ["confirmed", "confirmed"]
    assert runtime["summary"].endswith("(recipe fsdp, cpu, 2 ranks)")


@needs_torch
def test_refuted_finding_alone_exits_zero_and_others_still_count():
    alone = run("--runtime", str(RUNTIME / "hidden_rebuild.py"))
    assert alone.exit_code == 0, alone.output
    assert "[refuted: ramp rebuilt correctly (recipe fsdp, cpu)]" in alone.stdout
    assert "(runtime: 1 refuted)." in alone.stdout
    both = run("--runtime", str(RUNTIME / "hidden_rebuild.py"), str(RUNTIME / "unbuildable.py"))
    assert both.exit_code == 1
    assert "(runtime: 1 refuted, 1 unconfirmed)." in both.stdout


@needs_torch
def test_text_output_carries_the_verdict():
    concise = run("--runtime", "--output-format", "concise", str(LITGPT))
    assert f"[confirmed: {LITGPT_SUMMARY} (recipe fsdp, cpu)]" in concise.stdout
    assert "Found 1 error in 1 file (runtime: 1 confirmed)." in concise.stdout
    full = run("--runtime", "--output-format", "full", str(LITGPT))
    assert f"\nruntime: confirmed: {LITGPT_SUMMARY} (recipe fsdp, cpu)\n" in full.stdout


@needs_torch
def test_config_sets_runtime_options_and_flags_win(tmp_path, monkeypatch):
    (tmp_path / "unbuildable.py").write_text((RUNTIME / "unbuildable.py").read_text())
    (tmp_path / "tiny.py").write_text(
        "from unbuildable import Vocabulary, VocabTable\n\n\n"
        "def vocab_table():\n    return VocabTable(Vocabulary('unused'))\n"
    )
    (tmp_path / "pyproject.toml").write_text(
        '[tool.bufferlint.runtime]\nrecipe = "torch"\ntimeout = 30\n'
        '[tool.bufferlint.runtime.factories]\n"unbuildable:VocabTable" = "tiny:vocab_table"\n'
    )
    monkeypatch.chdir(tmp_path)
    _, found = items("unbuildable.py")
    runtime = found["unbuildable.py", "VocabTable"]["runtime"]
    assert (runtime["verdict"], runtime["recipe"]) == ("confirmed", "torch")
    assert runtime["built_with"] == "factory tiny:vocab_table"
    _, found = items("--materialize", "fsdp2", "unbuildable.py")
    assert found["unbuildable.py", "VocabTable"]["runtime"]["recipe"] == "fsdp2"


@pytest.mark.parametrize(
    ("args", "missing"),
    [(("--runtime",), "torch"), (("--runtime", "--materialize", "lightning"), "lightning")],
)
def test_missing_packages_exit_2_with_the_install_hint(monkeypatch, args, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # find_spec() then reports it missing
    result = run(*args, str(LITGPT))
    assert result.exit_code == 2
    assert result.output == (
        f"bufferlint: error: runtime mode needs {missing}, which is not installed: "
        'pip install "bufferlint[runtime]"\n'
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--devices", "2"), "--devices needs --runtime"),
        (("--materialize", "fsdp", "--runtime-timeout", "5"), "need --runtime"),
        (("--runtime", "--devices", "0"), "0 is not in the range x>=1"),
        (("--runtime", "--runtime-timeout", "0"), "0.0 is not in the range x>0"),
        (("--runtime", "--materialize", "fdsp"), "'fdsp' is not one of 'auto', 'fsdp'"),
        (("--runtime", "--diff"), "--runtime cannot be combined with --diff"),
        (("--runtime", "-"), "--runtime imports the classes from files"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(args, message):
    result = run(*args, *(() if "-" in args else (str(LITGPT),)))
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("bufferlint: error: ")
    assert message in result.output


@needs_torch
def test_readme_example_is_real_output(monkeypatch):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Runtime mode\n", 1)[1].split("\n## ", 1)[0]
    console = re.search(r"```console\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(ROOT)
    for block in console.split("$ ")[1:]:
        command, expected = block.split("\n", 1)
        assert run(*shlex.split(command)[1:]).stdout == expected, command


# -- every output format, on findings with made-up verdicts (no torch needed) ---------------


def finding(name: str, verdict: str, summary_text: str) -> Finding:
    return Finding(
        code="BL001",
        message=f"`reset_parameters` does not rebuild buffer `{name}`",
        path=str(LITGPT),
        line=26,
        column=7,
        end_line=26,
        end_column=10,
        class_name="GPT",
        module="litgpt_like",
        import_root=str(STATIC),
        buffers=(BufferSite(name, 44, False, "litgpt_like.GPT", str(LITGPT)),),
        runtime={"verdict": verdict, "summary": summary_text, "recipe": "fsdp", "buffers": {}},
    )


VERDICT_FINDINGS = [
    finding("cos", "confirmed", "cos[0, :4] expected [1.0], got [nan] (recipe fsdp, cpu)"),
    finding("sin", "refuted", "sin rebuilt correctly (recipe fsdp, cpu)"),
    finding("mask", "unconfirmed", "could not build litgpt_like:GPT (recipe fsdp, cpu)"),
]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_shows_the_verdicts(fmt):
    text = FORMATS[fmt](Report(VERDICT_FINDINGS, files=1))
    for f in VERDICT_FINDINGS:
        assert f.runtime is not None
        if fmt in ("json", "json-lines"):
            assert json.dumps(f.runtime["summary"]) in text
        else:
            assert f.runtime["verdict"] in text and f.runtime["summary"] in text


def test_json_sarif_and_summary_carry_the_runtime_result():
    report = Report(VERDICT_FINDINGS, files=1)
    assert [item["runtime"]["verdict"] for item in json.loads(FORMATS["json"](report))] == [
        "confirmed",
        "refuted",
        "unconfirmed",
    ]
    log = json.loads(FORMATS["sarif"](report))
    jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text())).validate(log)
    results = log["runs"][0]["results"]
    assert [r["properties"]["runtime"]["verdict"] for r in results] == [
        "confirmed",
        "refuted",
        "unconfirmed",
    ]
    assert [r["level"] for r in results] == ["error", "warning", "error"]  # refuted: no failure
    assert results[1]["message"]["text"].endswith(
        "[refuted: sin rebuilt correctly (recipe fsdp, cpu)]"
    )
    junit = FORMATS["junit"](report)
    assert '<testsuites name="bufferlint" tests="3" failures="2"' in junit
    assert junit.count("<failure ") == 2 and junit.count("<system-out>") == 1
    assert summary(VERDICT_FINDINGS, 1) == (
        "Found 3 errors in 1 file (runtime: 1 confirmed, 1 refuted, 1 unconfirmed).\n"
    )
