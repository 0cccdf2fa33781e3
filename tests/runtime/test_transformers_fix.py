"""The transformers convention end to end on fixtures/transformers/hf_models.py: what bufferlint
reports is confirmed by the `transformers` recipe and what it leaves clean is refuted;
after `--fix` the branches it wrote make `from_pretrained`'s path right."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("transformers")

from bufferlint.cli import main  # noqa: E402
from bufferlint.runtime import RuntimeSettings, RuntimeTarget, check  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "transformers" / "hf_models.py"
FLAGGED = {"StampModel": ("stamp",), "Lantern": ("glow",), "Dial": ("dial",)}
CLEAN = {
    "Ramp": ("ramp",),
    "FastRamp": ("ramp",),
    "Tick": ("tick",),
    "Scaler": ("scale",),
    "Gauge": ("bias",),
    "Needle": ("bias",),
    "GlowRotaryEmbedding": ("inv_freq", "original_inv_freq"),
}


def targets(root: Path, classes: dict[str, tuple[str, ...]]) -> list[RuntimeTarget]:
    return [
        RuntimeTarget(
            path=str(root / "hf_models.py"),
            module="hf_models",
            import_root=str(root),
            class_name=name,
            buffers=buffers,
            hooks=("_init_weights",),
            convention="transformers",
        )
        for name, buffers in classes.items()
    ]


def verdicts(root: Path, classes: dict[str, tuple[str, ...]]) -> dict[str, str]:
    settings = RuntimeSettings(jobs=1, timeout=60.0)
    results = check(targets(root, classes), settings)
    assert {r["recipe"] for r in results} == {"transformers"}
    return {r["target"].rpartition(":")[2]: r["verdict"] for r in results}


def test_findings_are_confirmed_and_the_fix_makes_them_right(tmp_path: Path) -> None:
    shutil.copy(FIXTURE, tmp_path / "hf_models.py")
    path = str(tmp_path / "hf_models.py")
    runner = CliRunner()
    linted = runner.invoke(
        main, [path, "--runtime", "--output-format", "json", "--no-cache"], catch_exceptions=False
    )
    found = {i["class_name"]: i["runtime"]["verdict"] for i in json.loads(linted.stdout)}
    assert found == {"StampModel": "confirmed", "Lantern": "confirmed", "Dial": "confirmed"}
    assert set(verdicts(tmp_path, CLEAN).values()) == {"refuted"}

    fixed = runner.invoke(main, [path, "--fix", "--unsafe-fixes", "--no-cache"])
    assert fixed.exit_code == 0, fixed.output
    assert set(verdicts(tmp_path, FLAGGED).values()) == {"refuted"}
    assert set(verdicts(tmp_path, CLEAN).values()) == {"refuted"}


def test_a_transformers_finding_without_transformers_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`auto` needs transformers only once a finding is judged under it: exit 2, one line."""
    import importlib.util

    shutil.copy(FIXTURE, tmp_path / "hf_models.py")
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "transformers" else find_spec(name, *a),
    )
    result = CliRunner().invoke(main, [str(tmp_path / "hf_models.py"), "--runtime", "--no-cache"])
    assert (result.exit_code, result.stderr) == (
        2,
        "bufferlint: error: runtime mode needs transformers, which is not installed: "
        'pip install "bufferlint[transformers]"\n',
    )
