"""`--fix --runtime`: a fix is written only when the runtime check shows every class it
touched right in every configuration (fixtures/fix_verified); one that fails is not
written, and its finding says which class, which configuration and what went wrong."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bufferlint.cli import main
from bufferlint.fix import verify

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "fix_verified"
HF = ROOT / "fixtures" / "transformers" / "hf_models.py"
needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="runtime mode needs torch"
)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, [*args, "--no-cache"], catch_exceptions=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES, tmp_path / "p", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "p"


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.py")}


@contextmanager
def imported(root: Path, module: str) -> Iterator[Any]:
    """`module` as written under `root`, forgotten afterwards."""
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(module)
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == "zoo" or n.startswith("zoo.")]:
            del sys.modules[name]


@needs_torch
def test_a_fix_that_reads_a_submodule_is_not_offered_as_safe(project: Path) -> None:
    """Statically, a rebuild from a child's tensor is unsafe: FSDP runs the parent's hook
    first. `--fix --runtime` writes only the safe fix, which it verified."""
    before = snapshot(project)
    result = invoke(str(project), "--fix", "--runtime", "--output-format", "json")
    assert result.exit_code == 1, result.output
    items = {i["class_name"]: i for i in json.loads(result.stdout)}
    assert set(items) == {"ReadsChild", "Tied", "Shifted", "Ramp"}  # their fixes are unsafe
    for name, child in (("ReadsChild", "proj"), ("Tied", "proj"), ("Shifted", "inner")):
        fix = items[name]["fix"]
        assert fix["applicability"] == "unsafe"
        assert f"reads `self.{child}.bias` of the submodule `{child}`" in fix["message"]
        assert "fix_check" not in items[name]["runtime"]  # never planned, never checked
    after = snapshot(project)
    assert after["broken.py"] == before["broken.py"]
    mixed = after["zoo/mixed.py"].decode()
    assert "if self.causal:" in mixed and "self.offset.copy_" not in mixed


@needs_torch
def test_right_fixes_are_written_and_wrong_ones_are_not(project: Path) -> None:
    from bufferlint.testing import assert_materializes

    before = snapshot(project)
    result = invoke(str(project), "--fix", "--unsafe-fixes", "--runtime", "--output-format", "json")
    assert result.exit_code == 1, result.output  # the rejected classes' findings remain
    items = {i["class_name"]: i for i in json.loads(result.stdout)}
    assert set(items) == {"ReadsChild", "Tied", "Shifted"}

    # A file whose only fix failed is left byte for byte; the other is fixed in part.
    after = snapshot(project)
    assert after["broken.py"] == before["broken.py"]
    assert after["zoo/common.py"] == before["zoo/common.py"]
    mixed = after["zoo/mixed.py"].decode()
    assert "if self.causal:" in mixed  # Window's guarded rebuild was written...
    assert "self.steps.copy_(ramp(self.n))" in mixed  # ...and Ramp's...
    assert "self.offset.copy_" not in mixed and "self.bias_copy.copy_" not in mixed  # ...only
    with imported(project, "zoo.mixed") as fixed:
        assert_materializes(fixed.Window, recipe="fsdp")
        assert_materializes(lambda: fixed.Window(causal=True), recipe="fsdp")

    # Each rejected finding says why: class, configuration, what went wrong.
    checks = {name: items[name]["runtime"]["fix_check"] for name in ("ReadsChild", "Tied")}
    assert checks["ReadsChild"] == {
        **checks["ReadsChild"],
        "written": False,
        "class_name": "ReadsChild",
        "configuration": "defaults",
        "problem": "crash",
        "verdict": "error",
    }
    assert "Cannot copy out of meta tensor" in checks["ReadsChild"]["summary"]
    # Tied's default build is right; the configuration with the flag flipped crashes.
    assert (checks["Tied"]["configuration"], checks["Tied"]["problem"]) == (
        "synthesized args {tied=True}",
        "crash",
    )
    assert (
        "fix not written: the runtime check of its fix failed for `Tied` built with synthesized"
        in (items["Tied"]["message"])
    )
    assert items["Tied"]["fix"] is None  # no `[*]`: --fix would not write it
    # The findings left are judged on the user's files, as --runtime always does.
    assert {i["runtime"]["verdict"] for i in items.values()} == {"confirmed"}
    assert "`Shifted` not fixed: the runtime check of its fix failed" in result.stderr


@needs_torch
def test_unsafe_fixes_are_verified_too(project: Path) -> None:
    result = invoke(str(project), "--fix", "--unsafe-fixes", "--runtime")
    assert result.exit_code == 1, result.output
    mixed = (project / "zoo" / "mixed.py").read_text()
    assert "self.steps.copy_(ramp(self.n))" in mixed  # imported from the sibling module
    assert "Found 5 errors (2 fixed, 3 remaining; runtime: 3 confirmed)." in result.stdout
    again = invoke(str(project), "--fix", "--unsafe-fixes", "--runtime")
    assert (project / "zoo" / "mixed.py").read_text() == mixed
    assert "(0 fixed" not in again.stdout and "Found 3 errors" in again.stdout


@needs_torch
def test_a_fix_that_breaks_the_default_build_is_not_written(project: Path) -> None:
    """The seam: `fix_paths`' plans replaced by ones that drop Window's guard, as a wrong
    static fix would: the configuration without `causal` then has no `mask` to copy into."""
    from bufferlint.fix import session

    original = session.fix_paths

    def unguarded(*args: Any, **kwargs: Any) -> Any:
        run = original(*args, **kwargs)
        for path, text in run.texts.items():
            run.texts[path] = text.replace("            if self.causal:\n    ", "")
        return run

    mixed = project / "zoo" / "mixed.py"
    before = mixed.read_bytes()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(verify, "fix_paths", unguarded)
        result = invoke(str(mixed), "--fix", "--runtime", "--output-format", "json")
    items = {i["class_name"]: i for i in json.loads(result.stdout)}
    check = items["Window"]["runtime"]["fix_check"]
    assert (check["configuration"], check["problem"]) == ("defaults", "crash")
    assert "'Window' object has no attribute 'mask'" in check["summary"]
    assert mixed.read_bytes() == before  # every class of the file failed in some round


@needs_torch
def test_the_transformers_fix_is_verified_under_its_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("transformers")
    from bufferlint.runtime import launch

    shutil.copy(HF, tmp_path / "hf_models.py")
    seen: list[tuple[str, str, Any]] = []
    run_jobs = launch.run_jobs

    def spied(jobs: list[dict[str, Any]], settings: Any) -> list[dict[str, Any]]:
        results = run_jobs(jobs, settings)
        seen.extend(
            (j["label"], j["recipe"], r["verdict"]) for j, r in zip(jobs, results, strict=True)
        )
        return results

    monkeypatch.setattr(launch, "run_jobs", spied)
    result = invoke(str(tmp_path / "hf_models.py"), "--fix", "--unsafe-fixes", "--runtime")
    assert result.exit_code == 0, result.output
    verified = {label.rpartition(":")[2] for label, _, _ in seen}
    assert {"StampModel", "Lantern", "Dial"} <= verified
    assert {(recipe, verdict) for _, recipe, verdict in seen} == {("transformers", "refuted")}
    assert (tmp_path / "hf_models.py").read_text() != HF.read_text()


def test_fix_runtime_without_torch_is_one_line(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "torch" else find_spec(name, *a),
    )
    before = snapshot(project)
    result = invoke(str(project), "--fix", "--runtime")
    assert (result.exit_code, result.stderr) == (
        2,
        "bufferlint: error: runtime mode needs torch, which is not installed: "
        'pip install "bufferlint[runtime]"\n',
    )
    assert snapshot(project) == before


def test_the_mirror_links_the_rest_and_never_writes_the_tree(project: Path) -> None:
    (project / "zoo" / "__pycache__").mkdir()
    before = snapshot(project)
    path = str(project / "zoo" / "mixed.py")
    with verify.mirrors({path: b"X = 1\n"}, {str(project)}) as roots:
        mirror = Path(roots[str(project)])
        assert (mirror / "zoo" / "mixed.py").read_bytes() == b"X = 1\n"
        assert not (mirror / "zoo" / "mixed.py").is_symlink()
        assert os.readlink(mirror / "zoo" / "common.py") == str(project / "zoo" / "common.py")
        assert (mirror / "broken.py").is_symlink()
        assert not (mirror / "zoo" / "__pycache__").exists()
    assert not mirror.exists()
    assert snapshot(project) == before


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        ({"verdict": "refuted", "buffers": {"b": {"ok": True, "reason": "matches"}}}, None),
        ({"verdict": "error", "stage": "materialize"}, "crash"),
        ({"verdict": "error", "stage": "timeout"}, "timeout"),
        (
            {"verdict": "confirmed", "buffers": {"b": {"ok": False, "reason": "wrong device"}}},
            "device",
        ),
        (
            {"verdict": "confirmed", "buffers": {"b": {"ok": False, "reason": "still on meta"}}},
            "meta",
        ),
        (
            {"verdict": "confirmed", "buffers": {"b": {"ok": False, "reason": "wrong dtype"}}},
            "dtype",
        ),
        ({"verdict": "confirmed", "buffers": {"b": {"ok": False, "reason": "differs"}}}, "value"),
        # A buffer the configuration does not register is no failure (a flag turns it off).
        (
            {
                "verdict": "unconfirmed",
                "buffers": {
                    "a": {"ok": True, "reason": "matches"},
                    "b": {"ok": None, "reason": "not a buffer of the module as built"},
                },
            },
            None,
        ),
        ({"verdict": "unconfirmed", "stage": "build", "buffers": {}}, "unverified"),
    ],
)
def test_what_went_wrong(result: dict[str, Any], problem: str | None) -> None:
    assert verify.problem_of(result) == problem


@needs_torch
def test_no_room_for_the_mirror_is_one_line(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: Any, **kwargs: Any) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(verify.tempfile, "mkdtemp", full)
    before = snapshot(project)
    result = invoke(str(project), "--fix", "--runtime")
    assert (result.exit_code, result.stderr) == (
        2,
        "bufferlint: error: --runtime cannot check the fixes: [Errno 28] No space left on device\n",
    )
    assert snapshot(project) == before


@needs_torch
def test_after_the_last_round_a_failing_file_is_left_whole(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify, "MAX_ROUNDS", 1)
    mixed = project / "zoo" / "mixed.py"
    before = mixed.read_bytes()
    result = invoke(str(mixed), "--fix", "--unsafe-fixes", "--runtime", "--output-format", "json")
    assert mixed.read_bytes() == before  # Window passed, but ReadsChild and Tied did not
    items = {i["class_name"]: i for i in json.loads(result.stdout)}
    assert items["Window"]["runtime"]["fix_check"]["problem"] == "left out"
    assert "fix not written: left out with its file's other fixes" in items["Window"]["message"]
    assert items["Tied"]["runtime"]["fix_check"]["problem"] == "crash"
