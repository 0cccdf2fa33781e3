"""A small slice of the ecosystem sweep (benchmarks/sweep.py), as CI runs it.

Offline: the modules of the installed torch's `torch.ao.quantization` (observers and fake
quantizers: findings, and fixes to apply), copied to a temporary folder: linted without a
crash, fixed, every fixed file still parses, and a second `--fix` changes nothing.
`BUFFERLINT_SWEEP_ONLINE=1` also downloads litgpt from PyPI and sweeps it whole. The full
sweep is `python benchmarks/sweep.py`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "sweep.py"


def _sweep_module():
    spec = importlib.util.spec_from_file_location("bufferlint_sweep", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


sweep = _sweep_module()


def test_installed_torch_quantization(tmp_path: Path) -> None:
    source = Path(torch.__file__).parent
    tree = tmp_path / "tree"
    (tree / "ao" / "quantization").mkdir(parents=True)
    shutil.copy(source / "ao" / "__init__.py", tree / "ao" / "__init__.py")
    for path in (source / "ao" / "quantization").glob("*.py"):  # not the subpackages
        shutil.copy(path, tree / "ao" / "quantization" / path.name)
    work = tmp_path / "work"
    work.mkdir()
    row = sweep.sweep_tree("torch (part)", torch.__version__, tree, work, 300)
    assert row.crashes == 0, row.problems
    assert row.files >= 15 and row.findings > 0 and row.fixes > 0
    assert row.unparsable == 0


@pytest.mark.skipif(
    os.environ.get("BUFFERLINT_SWEEP_ONLINE") != "1", reason="set BUFFERLINT_SWEEP_ONLINE=1"
)
def test_litgpt_from_pypi(tmp_path: Path) -> None:
    fetched = sweep.fetch("litgpt", tmp_path / "cache", offline=False)
    assert fetched is not None, "pip download litgpt failed"
    work = tmp_path / "work"
    work.mkdir()
    row = sweep.sweep_tree("litgpt", *fetched, work, 600)
    assert row.crashes == 0, row.problems
    assert row.files > 0


def test_table_totals() -> None:
    rows = [sweep.Row("a", "1", 3, 4, 0, 1, 0, 2.5), sweep.Row("b", "2", 1, 1, 1, 0, 0, 1.25)]
    lines = sweep.table(rows).splitlines()
    assert lines[0].startswith("| package | version | files | findings |")
    assert lines[-1] == "| **total** |  | 4 | 5 | 1 | 1 | 0 | 3.8 |"
