"""benchmarks/speed.py's command line: `--ablation` and `--rounds`, and what they refuse.
The measurements themselves take minutes on a large tree, so they are not run here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "speed.py"


@pytest.fixture(scope="module")
def speed():
    spec = importlib.util.spec_from_file_location("bufferlint_speed", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_the_table_is_the_default(speed) -> None:
    args = speed.parse_args([])
    assert not args.ablation
    assert args.rounds == 3
    assert args.trees == ["transformers", "torch-nn"]


def test_ablation_takes_jobs_and_rounds(speed) -> None:
    args = speed.parse_args(["--ablation", "--jobs", "2", "--rounds", "5"])
    assert (args.ablation, args.jobs, args.rounds) == (True, 2, 5)


@pytest.mark.parametrize(
    "argv",
    [["--ablation", "--rounds", "0"], ["--jobs", "0"], ["--ablation", "--peers"]],
)
def test_what_it_refuses(speed, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        speed.parse_args(argv)
    assert exc.value.code == 2


def test_every_layer_compares_runs_that_are_measured(speed) -> None:
    measured = {*speed.COLD, *speed.ONE_FILE, "compiled", "compiled, no .pyc shortcut"}
    measured |= {"warm", "edited", "edited, memo off"}
    for layer in speed.LAYERS:
        assert {layer.variant, layer.reference, layer.scale} <= measured, layer.name
    patches = {patch for patch, _ in speed.COLD.values()} | set(speed.ONE_FILE.values())
    assert patches | {"no_fresh_pyc", "memo_off"} <= set(speed.PATCHES)
