"""`--fix`: every positive fixture gets a fix, the fix provably rebuilds the buffers after
`to_empty()`, and the rewrite leaves everything else in the file as it was."""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import os
import re
import shutil
import stat
import sys
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from bufferlint.cli import main
from bufferlint.engine import Settings, lint
from bufferlint.fix import attach_fixes, fix_paths
from bufferlint.rules import BL001, BL002, RULES, fixable

TESTS = Path(__file__).resolve().parent
TREES = {"static": TESTS.parent / "fixtures" / "static", "cases": TESTS / "fix_cases"}
EXPECT = re.compile(r"^\s*class (\w+)\b.*#\s*expect:\s*(BL\d+)")
# Fixes that need --unsafe-fixes, and why.
UNSAFE = {
    "NnBuffer": "draws random numbers (`torch.randn`)",
    "RegistersOnUnknownBase": "whose base `somewhere_else.Base` bufferlint cannot see",
    "AliasOfBuffer": "makes `original_inv_freq` a copy of buffer `inv_freq`",
    "ShadowedArgument": "adds `self._slopes = slopes` to `__init__`",
}
RANDOM_BUFFERS = {("NnBuffer", "c")}  # rebuilt from fresh random numbers: only checked finite
# Positive fixtures for which no safe fix exists, and what their finding says.
NO_FIX = {
    "Collections": "`pair` holds a collection: register each tensor in it",
}
# Classes whose own hook defeats a dtype conversion, whatever the fix does.
KEEPS_NO_DTYPE = {"ReRegistersPlaceholder": "its hook re-registers the buffer in float32"}


def _positives() -> list[tuple[str, str, str]]:
    """(tree, module, class) for every class a fixture marks as reported (by a rule that
    has fixes)."""
    found = []
    for tree, root in TREES.items():
        for path in sorted(root.rglob("*.py")):
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            for line in path.read_text().splitlines():
                match = EXPECT.match(line)
                if match and match.group(2) in fixable():
                    found.append((tree, module, match.group(1)))
                    if RULES[match.group(2)].device_stand_in:
                        ON_DEVICE.add(match.group(1))
    return found


ON_DEVICE: set[str] = set()  # classes whose finding is about the device of a rebuild
POSITIVE = _positives()


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Copies of the fixtures, as they are ("unfixed") and after `--fix --unsafe-fixes`."""
    out = {}
    for state in ("unfixed", "fixed"):
        base = tmp_path_factory.mktemp(state)
        for tree, root in TREES.items():
            shutil.copytree(root, base / tree, ignore=shutil.ignore_patterns("__pycache__"))
        out[state] = base
    run = fix_paths([str(out["fixed"])], Settings(), unsafe=True)
    run.write()
    assert run.problems == []
    return out


# -- proof at runtime ----------------------------------------------------------------------


@contextmanager
def _uninitialized_is_nan() -> Iterator[None]:
    """`empty` and `to_empty` hand out NaN (floats) and the largest value (integers), so a
    buffer nobody rebuilt cannot pass for a correct one by chance."""
    torch = pytest.importorskip("torch")
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.utils.deterministic.fill_uninitialized_memory,
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.utils.deterministic.fill_uninitialized_memory = before[2]


@contextmanager
def _imported(root: Path, module: str) -> Iterator[types.ModuleType]:
    """Imports a fixture module from `root`, with stand-ins for the packages it names but
    this test does not need: `somewhere_else` (unknown_bases.py) and Lightning, whose
    LightningModule is a torch module as far as buffers go (and takes seconds to import)."""
    torch = pytest.importorskip("torch")
    stubs = {
        "somewhere_else": {"Base": torch.nn.Module, "Registry": object},
        "lightning": {"LightningModule": torch.nn.Module},
        "lightning.pytorch": {"LightningModule": torch.nn.Module},
        "pytorch_lightning": {"LightningModule": torch.nn.Module},
    }
    saved = {name: sys.modules.get(name) for name in stubs}
    for name, attributes in stubs.items():
        stub = types.ModuleType(name)
        stub.__dict__.update(attributes)
        sys.modules[name] = stub
    sys.modules["lightning"].pytorch = sys.modules["lightning.pytorch"]  # type: ignore[attr-defined]
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(module)
    finally:
        sys.path.remove(str(root))
        for name, loaded in list(sys.modules.items()):
            if str(getattr(loaded, "__file__", None) or "").startswith(str(root)):
                del sys.modules[name]
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


def _arguments(cls: type) -> list[object]:
    args: list[object] = []
    for param in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if param.default is not param.empty or param.kind in (
            param.VAR_POSITIONAL,
            param.VAR_KEYWORD,
        ):
            continue
        annotation = param.annotation
        args.append(
            4 if annotation in (int, param.empty) else True if annotation is bool else annotation()
        )
    return args


def _materialized(cls: type, args: list[object], dtype: object) -> object:
    """What FSDP does: build on meta (then convert, as a mixed-precision setup may),
    `to_empty()`, then every module's hook."""
    torch = pytest.importorskip("torch")
    with torch.device("meta"):
        module = cls(*args)  # type: ignore[operator]
    if dtype is not None:
        module.to(dtype)
    module.to_empty(device="cpu")
    for sub in module.modules():
        hook = getattr(sub, "reset_parameters", None)
        if callable(hook):
            hook()
    return module


def _tensors(module: object) -> dict[str, object]:
    """What the rules judge of a module: its buffers, its frozen parameters, and the
    tensors it holds in plain attributes (the first, in a tuple, list or dict)."""
    torch = pytest.importorskip("torch")
    out = dict(module.named_buffers())  # type: ignore[attr-defined]
    out |= {n: p for n, p in module.named_parameters() if not p.requires_grad}  # type: ignore[attr-defined]
    for name, value in vars(module).items():
        first = next(iter(value.values()), None) if isinstance(value, dict) else value
        if isinstance(value, (tuple, list)):
            first = value[0] if value else None
        if isinstance(first, torch.Tensor) and not name.startswith("_"):
            out[name] = first
    return out


def _wrong_buffers(cls: type, dtype: object = None, **kwargs: object) -> list[str]:
    """Tensors of a materialized instance that differ from an eagerly built one (value,
    device or dtype); those uninitialized in the eager instance too are skipped.
    `kwargs` choose a configuration other than the default."""
    torch = pytest.importorskip("torch")
    args = _arguments(cls)
    with _uninitialized_is_nan():
        eager = cls(*args, **kwargs)
        if dtype is not None:
            eager.to(dtype)
        late = _materialized(functools.partial(cls, **kwargs), args, dtype)
    got = _tensors(late)
    wrong = []
    for name, want in _tensors(eager).items():
        if want.is_floating_point() and torch.isnan(want).any():
            continue  # a placeholder: garbage by design
        have = got[name]
        if (have.device, have.dtype, have.shape) != (want.device, want.dtype, want.shape):
            wrong.append(f"{name}: {have.device}/{have.dtype}/{tuple(have.shape)}")
        elif (cls.__name__, name) in RANDOM_BUFFERS:
            if not torch.isfinite(have).all():
                wrong.append(f"{name}: not rebuilt")
        elif not (torch.equal(have, want) if dtype is None else torch.allclose(have, want)):
            wrong.append(f"{name}: {have.flatten()[:4].tolist()} != {want.flatten()[:4].tolist()}")
    return wrong


FIXED = [case for case in POSITIVE if case[2] not in NO_FIX]


@pytest.mark.parametrize(("tree", "module", "name"), FIXED, ids=[f"{m}.{c}" for _, m, c in FIXED])
def test_fixed_class_rebuilds_its_buffers_after_to_empty(trees, tree, module, name):
    if name not in ON_DEVICE:  # on a CPU, shown by test_fixed_rebuild_stays_on_the_modules_device
        with _imported(trees["unfixed"] / tree, module) as loaded:
            assert _wrong_buffers(getattr(loaded, name)), "the unfixed class should show the bug"
    with _imported(trees["fixed"] / tree, module) as loaded:
        assert _wrong_buffers(getattr(loaded, name)) == []


def _replaced(cls: type) -> list[str]:
    """Buffers whose tensor the hooks replace after `to_empty()`, with where the new one is
    made while the default device is `meta` (bufferlint.runtime.standin): a tensor rebuilt
    in place stays where materialization put it."""
    torch = pytest.importorskip("torch")
    with torch.device("meta"):
        module = cls(*_arguments(cls))
    module.to_empty(device="cpu")
    before = {name: b.data_ptr() for name, b in module.named_buffers()}
    with torch.device("meta"):
        for sub in module.modules():
            if callable(getattr(sub, "reset_parameters", None)):
                sub.reset_parameters()
    return [
        f"{name}: {b.device}"
        for name, b in module.named_buffers()
        if b.device.type == "meta" or b.data_ptr() != before.get(name)
    ]


ROUTED = [case for case in FIXED if case[2] in ON_DEVICE]


@pytest.mark.parametrize(("tree", "module", "name"), ROUTED, ids=[c for _, _, c in ROUTED])
def test_fixed_rebuild_stays_on_the_modules_device(trees, tree, module, name):
    """On a CPU the default device is the module's: the hooks run with `meta` as the
    default device, so that a rebuild made there shows; the fixed hook rebuilds in place."""
    with _imported(trees["unfixed"] / tree, module) as loaded:
        moved = _replaced(getattr(loaded, name))
        assert moved and all(m.endswith(": meta") for m in moved), moved
    with _imported(trees["fixed"] / tree, module) as loaded:
        try:
            assert _replaced(getattr(loaded, name)) == []
        except NotImplementedError:  # computes on the default device, then copies in place
            with _imported(trees["fixed"] / tree, module) as again:
                assert _same_storage_after_hooks(getattr(again, name))


def _same_storage_after_hooks(cls: type) -> bool:
    torch = pytest.importorskip("torch")
    with torch.device("meta"):
        module = cls(*_arguments(cls))
    module.to_empty(device="cpu")
    before = {name: b.data_ptr() for name, b in module.named_buffers()}
    module.reset_parameters()
    return before == {name: b.data_ptr() for name, b in module.named_buffers()}


@pytest.mark.parametrize(("tree", "module", "name"), FIXED, ids=[f"{m}.{c}" for _, m, c in FIXED])
def test_fixed_class_keeps_the_dtype_the_module_was_converted_to(trees, tree, module, name):
    """In place, the rebuild keeps float64; values may differ in the last bits where
    construction reads a converted buffer (`dtype=self.inv_freq.dtype`)."""
    torch = pytest.importorskip("torch")
    if name in KEEPS_NO_DTYPE:
        pytest.skip(KEEPS_NO_DTYPE[name])
    with _imported(trees["fixed"] / tree, module) as loaded:
        assert _wrong_buffers(getattr(loaded, name), torch.float64) == []


# Configurations other than the default that a fix must keep working (flipped flags,
# `None` registrations): tests/fix_cases/shapes.py.
CONFIGURATIONS = {
    "OptionalTable": [{"use_table": False}],
    "ShiftedMask": [{"shift": 0}],
    "MaybeScale": [{"scaled": False}],
    "Branchy": [{"linear": True}],
    "EarlyReturn": [{"use_scale": False}],
    "Reassigned": [{"rates": [0.5, 0.25, 0.125]}],
    "Rescaled": [{"factor": 1.0}],
    "LocalMask": [{"causal": False}],
    "NoneOtherwise": [{"ramped": False}],
    "DroppedLater": [{"keep": False}],
    "SharedLocal": [{"flag": False}],
    "OptionalStats": [{"stats": False}, {"weight_init": "skip"}],
}


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [(name, kwargs) for name, configs in CONFIGURATIONS.items() for kwargs in configs],
)
def test_a_fix_keeps_every_configuration_of_its_class_working(trees, name, kwargs):
    """A buffer registered on one branch only, or as `None`, is rebuilt only where it
    exists: the configuration that had no such buffer materializes as it did."""
    with _imported(trees["fixed"] / "cases", "shapes") as loaded:
        assert _wrong_buffers(getattr(loaded, name), **kwargs) == []
        assert _wrong_buffers(getattr(loaded, name)) == []


def test_a_new_hook_initializes_the_parameters_that_construction_did(trees):
    torch = pytest.importorskip("torch")
    with _imported(trees["fixed"] / "cases", "shapes") as loaded:
        with _uninitialized_is_nan():
            module = _materialized(loaded.BiasTable, [4], None)
        assert torch.equal(module.gain, torch.ones(4))
        assert torch.isfinite(module.table).all() and 0 < module.table.std() < 0.1
    with _imported(trees["unfixed"] / "cases", "shapes") as loaded:
        assert not hasattr(loaded.BiasTable, "reset_parameters")


def test_a_branch_that_only_reads_a_size_is_not_replayed(tmp_path):
    """rotary-embedding-torch: a branch that reads `n` but sets nothing the buffer needs
    (it reads an argument the hook cannot know) was replayed, which stopped the fix."""
    shutil.copytree(TREES["cases"], tmp_path / "cases")
    run = fix_paths([str(tmp_path)], Settings())
    assert "ReadOnlyBranch" not in {f.class_name for f in run.result.findings}
    fixed = run.texts[str(tmp_path / "cases" / "shapes.py")]
    hook = fixed.split("class ReadOnlyBranch")[1].split("def reset_parameters")[1]
    assert "width" not in hook and "table" not in hook


def test_one_buffer_without_a_rebuild_leaves_the_others_fixed(tmp_path):
    """Per-buffer fixes: the cache needs no name, the table is built in a loop."""
    source = (
        "import torch\nfrom torch import nn\n\n\n"
        "class Cache(nn.Module):\n"
        "    def __init__(self, n):\n"
        "        super().__init__()\n"
        "        self.register_buffer('k_cache', torch.zeros(n, 2))\n"
        "        self.register_buffer('rows', torch.empty(n, 2))\n"
        "        for i in range(n):\n"
        "            self.rows[i] = i\n"
    )
    assert _attached(tmp_path, source)[0].fix["message"] == (
        "Add `reset_parameters` that rebuilds `k_cache`; `rows` is left as it is: "
        "it is built inside a loop (line 10)"
    )
    fixed, left = _fixed(tmp_path, source)
    assert "            self.k_cache.zero_()\n" in fixed
    assert [f.class_name for f in left] == ["Cache"]
    assert "no automatic fix: it is built inside a loop (line 10)" in left[0].message
    assert "`rows`" in left[0].message and "`k_cache`" not in left[0].message
    (tmp_path / "model.py").write_text(fixed)
    with _imported(tmp_path, "model") as loaded:
        assert _wrong_buffers(loaded.Cache) == [
            "rows: [nan, nan, nan, nan] != [0.0, 0.0, 1.0, 1.0]"
        ]


def test_lit_gpt_own_fix_loses_a_dtype_conversion_that_ours_keeps(trees):
    """Lit-GPT's fix (litgpt_fixed.py) assigns a fresh float32 cache: right device, but a
    module converted to float64 gets float32 buffers back. The in-place fix does not."""
    torch = pytest.importorskip("torch")
    with _imported(trees["unfixed"] / "static", "litgpt_fixed") as loaded:
        assert _wrong_buffers(loaded.GPT) == []
        assert _wrong_buffers(loaded.GPT, torch.float64) == [
            "cos: cpu/torch.float32/(16, 4)",
            "sin: cpu/torch.float32/(16, 4)",
        ]
    with _imported(trees["fixed"] / "static", "litgpt_like") as loaded:
        assert _wrong_buffers(loaded.GPT, torch.float64) == []


def test_every_positive_fixture_is_fixed_or_says_why_not(trees):
    left = {}
    for tree in TREES:
        found = fix_paths([str(trees["fixed"] / tree)], Settings(), unsafe=True).result.findings
        left.update({f.class_name: f for f in found if f.code in fixable()})
    assert set(left) == set(NO_FIX)
    for name, reason in NO_FIX.items():
        assert f"no automatic fix: {reason}" in left[name].message


# -- safe and unsafe -------------------------------------------------------------------------


def test_only_safe_fixes_without_unsafe_fixes(tmp_path):
    shutil.copytree(TREES["static"], tmp_path / "static")
    run = fix_paths([str(tmp_path)], Settings())
    left = {f.class_name: f for f in run.result.findings if f.code in fixable()}
    assert set(left) == set(UNSAFE) | set(NO_FIX)
    left = {name: f for name, f in left.items() if name in UNSAFE}
    for name, reason in UNSAFE.items():
        fix = left[name].fix
        assert fix is not None and fix["applicability"] == "unsafe"
        assert reason in fix["message"]
        assert not left[name].fixable
    assert all(f.class_name not in UNSAFE for f in run.fixed)


def test_second_fix_changes_nothing(trees):
    run = fix_paths([str(trees["fixed"])], Settings(), unsafe=True)
    left = [f for f in run.result.findings if f.code in fixable() and f.class_name not in NO_FIX]
    assert run.texts == {} and run.fixed == [] and left == []


# -- what the fixes look like ------------------------------------------------------------------


def _attached(tmp_path: Path, source: str) -> list:
    """The findings of `source` as `model.py`, with the fixes the JSON output carries."""
    path = tmp_path / "model.py"
    path.write_text(source)
    result = lint([str(path)], Settings())
    attach_fixes(result, Settings())
    return result.findings


def _fixed(tmp_path: Path, source: str, unsafe: bool = False) -> tuple[str, list]:
    path = tmp_path / "model.py"
    path.write_text(source)
    run = fix_paths([str(path)], Settings(), unsafe=unsafe)
    return run.texts.get(str(path), source), run.result.findings


def test_fix_of_bl002_example_is_its_documented_use_instead(tmp_path):
    assert _fixed(tmp_path, BL002.example)[0] == BL002.use_instead


def test_readme_example_is_what_the_fix_writes(tmp_path):
    readme = (TESTS.parent / "README.md").read_text()
    section = readme.split("\n## Fixing\n", 1)[1].split("\n## ", 1)[0]
    before, after = re.findall(r"```python\n(.*?)```", section, re.S)[:2]
    fixed, left = _fixed(tmp_path, "import torch\nfrom torch import nn\n\n\n" + before)
    assert left == [] and after in fixed


def test_lit_gpt_cache_is_rebuilt_in_place_on_its_device(tmp_path):
    fixed, left = _fixed(tmp_path, (TREES["static"] / "litgpt_like.py").read_text())
    assert left == []
    assert (
        "        self.max_seq_length = self.config.block_size\n"
        "        with torch.no_grad():\n"
        "            cos, sin = self.rope_cache(device=self.cos.device)\n"
        "            self.cos.copy_(cos)\n"
        "            self.sin.copy_(sin)\n"
    ) in fixed


def test_layer_subclass_gets_super_call_and_waits_for_its_buffer(tmp_path):
    source = (
        "import torch\nfrom torch import nn\n\n\n"
        "class Scaled(nn.Linear):\n"
        "    def __init__(self, n: int) -> None:\n"
        "        super().__init__(n, n)\n"
        "        self.register_buffer('scale', torch.full((n,), 0.5))\n"
    )
    fixed, _ = _fixed(tmp_path, source)
    assert fixed == source + (
        "\n"
        "    def reset_parameters(self) -> None:\n"
        "        super().reset_parameters()\n"
        '        if hasattr(self, "scale"):\n'
        "            with torch.no_grad():\n"
        "                self.scale.fill_(0.5)\n"
    )


NO_SAFE_FIX = {
    "an argument assigned again before the fix could store it": (
        "import torch\nfrom torch import nn\n\n\n"
        "class Rates(nn.Module):\n"
        "    def __init__(self, rates=None):\n"
        "        rates = torch.tensor(rates or [1.0, 2.0])\n"
        "        super().__init__()\n"
        "        self.register_buffer('rates', rates * 2)\n",
        "`rates` (a parameter of `__init__`, read at line 7) is not stored unchanged",
    ),
    "built in a loop": (
        "import torch\nfrom torch import nn\n\n\n"
        "class Rows(nn.Module):\n"
        "    def __init__(self, n):\n"
        "        super().__init__()\n"
        "        self.register_buffer('rows', torch.empty(n, 2))\n"
        "        for i in range(n):\n"
        "            self.rows[i] = i\n",
        "it is built inside a loop (line 9)",
    ),
    "a module argument is never stored": (
        "import torch\nfrom torch import nn\n\n\n"
        "class Frozen(nn.Module):\n"
        "    def __init__(self, dense_module):\n"
        "        super().__init__()\n"
        "        self.register_buffer('w', dense_module.weight.detach().clone())\n",
        "`dense_module` (a parameter of `__init__`, read at line 8) is not stored unchanged",
    ),
}


def test_an_argument_that_was_not_stored_is_stored_by_an_unsafe_fix(tmp_path):
    """BL001's example reads `base` and `dim`, which `__init__` never stores: the fix
    stores them after `super().__init__()`, which changes the module's attributes."""
    fixed, left = _fixed(tmp_path, BL001.example)
    assert (
        fixed == BL001.example
        and "adds `self.base = base` and `self.dim = dim`" in (left[0].fix["message"])
    )
    fixed, left = _fixed(tmp_path, BL001.example, unsafe=True)
    assert left == []
    assert "        super().__init__()\n        self.base = base\n        self.dim = dim\n" in fixed
    assert "            inv_freq = 1.0 / self.base ** (torch.arange(0, self.dim, 2)" in fixed


@pytest.mark.parametrize("case", NO_SAFE_FIX)
def test_no_fix_without_a_safe_rebuild_and_the_reason_is_given(tmp_path, case):
    source, reason = NO_SAFE_FIX[case]
    fixed, left = _fixed(tmp_path, source, unsafe=True)
    assert fixed == source
    assert len(left) == 1 and left[0].fix is None
    assert f"no automatic fix: {reason}" in left[0].message


def test_code_from_a_parent_in_another_file_gets_its_imports(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "base.py").write_text(
        "import torch\nfrom torch import nn\n\n\nclass Base(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        '        self.register_buffer("table", torch.arange(4))\n\n'
        "    def reset_parameters(self):\n        pass\n"
    )
    child = "from .base import Base\n\n\nclass Child(Base):\n    def reset_parameters(self):\n"
    (package / "child.py").write_text(child + "        super().reset_parameters()\n")
    alone = fix_paths([str(package / "child.py")], Settings()).texts[str(package / "child.py")]
    assert alone == "import torch\n\n" + child + (
        "        super().reset_parameters()\n"
        "        with torch.no_grad():\n"
        "            self.table.copy_(torch.arange(4))\n"
    )
    # Fixing both, the parent's fix is enough: the child waits a round, then is clean.
    run = fix_paths([str(package)], Settings())
    assert list(run.texts) == [str(package / "base.py")] and run.result.findings == []


def test_a_helper_with_side_effects_is_not_replayed_whole(tmp_path):
    """The narrowest replay: the statement that registers the buffer, not the helper
    that also counts its builds (the helper takes nothing but `self`)."""
    source = (
        "import torch\nfrom torch import nn\n\n\n"
        "class Counted(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.builds = 0\n"
        "        self._build()\n\n"
        "    def _build(self):\n"
        "        self.builds += 1\n"
        "        self.register_buffer('m', torch.ones(2) * 3)\n"
    )
    fixed, left = _fixed(tmp_path, source)
    assert left == []
    assert (
        "    def reset_parameters(self):\n"
        "        with torch.no_grad():\n"
        "            self.m.copy_(torch.ones(2) * 3)\n"
    ) in fixed


def test_a_helper_with_arguments_and_side_effects_is_called_again_as_an_unsafe_fix(tmp_path):
    source = (
        "import torch\nfrom torch import nn\n\n\n"
        "class Counted(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.builds = 0\n"
        "        self._build(3)\n\n"
        "    def _build(self, k):\n"
        "        self.builds += 1\n"
        "        self.register_buffer('m', torch.ones(2) * k)\n"
    )
    fixed, left = _fixed(tmp_path, source)
    assert fixed == source
    assert left[0].fix["applicability"] == "unsafe"
    assert "calls `self._build()`, which sets `self.builds`" in left[0].fix["message"]
    fixed, left = _fixed(tmp_path, source, unsafe=True)
    assert "            self._build(3)\n            self.m = m.copy_(self.m)\n" in fixed


# -- the file around the fix --------------------------------------------------------------------


def test_formatting_encoding_and_mode_are_preserved(tmp_path):
    source = (
        "# -*- coding: utf-8 -*-\r\n"
        '"""Tabs, CRLF, a BOM and comments: all kept."""\r\n'
        "import torch  # the import\r\n"
        "from torch import nn\r\n"
        "\r\n"
        "\r\n"
        "class Tabbed(nn.Module):  # a comment\r\n"
        "\tdef __init__(self):\r\n"
        "\t\t# build it\r\n"
        "\t\tsuper().__init__()\r\n"
        "\t\tself.register_buffer('mask', torch.ones(3))  # trailing é\r\n"
        "\r\n"
        "\r\n"
        "# the end\r\n"
    )
    path = tmp_path / "tabbed.py"
    path.write_bytes(b"\xef\xbb\xbf" + source.encode("utf-8"))
    path.chmod(0o640)
    run = fix_paths([str(path)], Settings())
    run.write()
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    added = (
        "\r\n"
        "\tdef reset_parameters(self):\r\n"
        "\t\twith torch.no_grad():\r\n"
        "\t\t\tself.mask.fill_(1.0)\r\n"
    )
    assert data[3:].decode("utf-8") == source.replace("é\r\n", "é\r\n" + added)
    assert fix_paths([str(path)], Settings()).texts == {}


def test_a_file_without_final_newline_keeps_it(tmp_path):
    source = BL002.example.removesuffix("\n")
    fixed, left = _fixed(tmp_path, source)
    assert left == [] and fixed == BL002.use_instead.removesuffix("\n")


def test_each_json_fix_alone_fixes_its_class(tmp_path):
    source = (TREES["static"] / "construction_paths.py").read_text()
    findings = _attached(tmp_path, source)
    assert findings and all(f.fixable for f in findings)
    for finding in findings:
        probe = tmp_path / finding.class_name / "model.py"
        probe.parent.mkdir()
        probe.write_text(_apply(source, finding.fix["edits"]))
        left = lint([str(probe)], Settings()).findings
        assert finding.class_name not in {f.class_name for f in left}


def _apply(text: str, edits: list[dict]) -> str:
    lines = text.splitlines(keepends=True)
    for edit in sorted(edits, key=lambda e: e["location"]["row"], reverse=True):
        start, end = edit["location"]["row"] - 1, edit["end_location"]["row"] - 1
        assert edit["location"]["column"] == edit["end_location"]["column"] == 1
        lines[start:end] = [edit["content"]]
    return "".join(lines)


def test_unwritable_and_changed_files_are_reported_not_written(tmp_path):
    (tmp_path / "ro.py").write_text(BL002.example)
    (tmp_path / "moved.py").write_text(BL002.example)
    (tmp_path / "ok.py").write_text(BL002.example)
    (tmp_path / "ro.py").chmod(0o444)
    run = fix_paths([str(tmp_path)], Settings())
    (tmp_path / "moved.py").write_text(BL002.example + "\n# edited meanwhile\n")
    run.write()
    assert (tmp_path / "ro.py").read_text() == BL002.example
    assert (tmp_path / "moved.py").read_text().endswith("# edited meanwhile\n")
    assert (tmp_path / "ok.py").read_text() == BL002.use_instead
    assert sorted(run.problems) == [
        f"{tmp_path / 'moved.py'}: not fixed: it changed on disk since bufferlint read it",
        f"{tmp_path / 'ro.py'}: not fixed: it is read-only",
    ]
    assert sorted(os.path.basename(f.path) for f in run.result.findings) == ["moved.py", "ro.py"]
    assert [os.path.basename(f.path) for f in run.fixed] == ["ok.py"]


def test_a_fix_that_does_not_parse_is_not_applied(tmp_path, monkeypatch):
    monkeypatch.setattr("bufferlint.fix.session.render", lambda index, plans: "def (:\n")
    path = tmp_path / "model.py"
    path.write_text(BL002.example)
    run = fix_paths([str(path)], Settings())
    assert run.texts == {} and run.fixed == []
    assert len(run.problems) == 1
    assert run.problems[0].startswith(
        f"{path}: `CausalMask` not fixed: the fixed code would not parse (SyntaxError: "
    )


# -- the command line ----------------------------------------------------------------------------


def test_diff_prints_and_fix_writes(tmp_path):
    path = tmp_path / "mask.py"
    path.write_text(BL002.example)
    runner = CliRunner()
    shown = runner.invoke(main, ["--diff", str(path)])
    assert shown.exit_code == 1
    assert f"--- {path}\n+++ {path}\n" in shown.stdout
    assert "+    def reset_parameters(self) -> None:\n" in shown.stdout
    assert "Would fix 1 error." in shown.stderr
    assert path.read_text() == BL002.example
    fixed = runner.invoke(main, ["--fix", "--output-format", "concise", str(path)])
    assert fixed.exit_code == 0
    assert fixed.stdout == "Found 1 error (1 fixed, 0 remaining).\n"
    assert path.read_text() == BL002.use_instead
    again = runner.invoke(main, ["--diff", str(path)])
    assert (again.exit_code, again.stdout) == (0, "")


def test_exit_status_reflects_what_remains(tmp_path):
    shutil.copytree(TREES["static"] / "pkg", tmp_path / "pkg")
    (tmp_path / "nn_buffer.py").write_text((TREES["static"] / "nn_buffer.py").read_text())
    runner = CliRunner()
    listed = runner.invoke(main, ["--output-format", "concise", str(tmp_path)])
    assert "[*] 3 fixable with the `--fix` option (1 hidden fix can be enabled" in listed.stdout
    first = runner.invoke(main, ["--fix", "--output-format", "concise", str(tmp_path)])
    assert first.exit_code == 1
    assert "Found 4 errors (3 fixed, 1 remaining)." in first.stdout
    second = runner.invoke(main, ["--fix", "--unsafe-fixes", str(tmp_path)])
    assert second.exit_code == 0


def test_json_output_has_ruff_fix_fields(tmp_path):
    (tmp_path / "mask.py").write_text(BL002.example)
    shown = CliRunner().invoke(main, ["--output-format", "json", str(tmp_path)])
    fix = json.loads(shown.stdout)[0]["fix"]
    assert fix["applicability"] == "safe"
    assert fix["message"] == "Add `reset_parameters` that rebuilds `mask`"
    assert fix["edits"] == [
        {
            "content": BL002.use_instead[len(BL002.example) :],
            "location": {"row": 10, "column": 1},
            "end_location": {"row": 10, "column": 1},
        }
    ]


@pytest.mark.parametrize(
    "code, names",
    [
        ("x = torch.arange(n, dtype=dtype)", {"torch", "n", "dtype"}),  # not `arange`
        ("x = f(a=b, *c, **d)", {"f", "b", "c", "d"}),  # not the keyword `a`
        ("x = lambda n, *m: n + m + k", {"k"}),  # the lambda's own parameters are bound
        ("x = [i * j for i in range(n) if i > m for j in i]", {"range", "n", "m"}),
        ("x = {k: v for k, v in pairs}", {"pairs"}),
        ("x = (y := f(z))", {"f", "z", "y"}),  # the walrus target too, as it was
        ('x = f"{a!r:>{width}}"', {"a", "width"}),
        ("x[i] += t.u[j]", {"x", "i", "t", "j"}),
        ("x, *y = self.a, b", {"self", "b"}),
    ],
)
def test_what_a_replayed_statement_reads(code: str, names: set[str]) -> None:
    """The names a statement takes from its scope decide what the rebuild must map onto
    `self`: the fields' walk finds what LibCST's visitor found."""
    import libcst as cst

    from bufferlint.fix.replay import reads

    statement = cst.parse_statement(code)
    assert isinstance(statement, cst.SimpleStatementLine)
    assert reads(statement.body[0]) == names


# -- the rules beyond buffers ----------------------------------------------------------------


def test_a_rebuild_on_the_default_device_becomes_an_in_place_copy(tmp_path):
    fixed, left = _fixed(tmp_path, (TREES["static"] / "wrong_device.py").read_text())
    assert [f.class_name for f in left] == []
    assert (
        "    def reset_parameters(self) -> None:\n"
        "        with torch.no_grad():\n"
        "            cos, sin = self.rope_cache(device=self.cos.device)\n"
        "            self.cos.copy_(cos)\n"
        "            self.sin.copy_(sin)\n"
    ) in fixed
    assert (
        "        with torch.no_grad(), torch.device(self.mask.device):\n"
        "            self.mask.copy_(torch.tril(torch.ones(self.n, self.n)))\n"
    ) in fixed


def test_a_rebuild_in_a_helper_construction_runs_is_not_rewritten(tmp_path):
    source = (
        "import torch\nfrom torch import nn\n\n\n"
        "class Cached(nn.Module):\n"
        "    def __init__(self, n):\n"
        "        super().__init__()\n"
        "        self.n = n\n"
        "        self._build()\n\n"
        "    def _build(self):\n"
        "        self.register_buffer('table', torch.arange(self.n))\n\n"
        "    def reset_parameters(self):\n"
        "        self._build()\n"
    )
    fixed, left = _fixed(tmp_path, source, unsafe=True)
    assert fixed == source
    assert [f.code for f in left] == ["BL003"]
    assert "no automatic fix: `table` is rebuilt in `_build`, which construction may run" in (
        left[0].message
    )


def test_an_attribute_becomes_a_buffer_in_the_files_style(tmp_path):
    source = (
        "import torch\nfrom torch import nn\n\n\n"
        "class Scaled(nn.Module):\n"
        "    def __init__(self, n):\n"
        "        super().__init__()\n"
        "        self.n = n\n"
        "        self.scale = nn.Buffer(torch.ones(n))\n"
        "        self.ids = torch.arange(n)\n\n"
        "    def reset_parameters(self):\n"
        "        with torch.no_grad():\n"
        "            self.scale.fill_(1.0)\n"
    )
    fixed, left = _fixed(tmp_path, source)
    assert left == []
    assert "        self.ids = nn.Buffer(torch.arange(n), persistent=False)\n" in fixed
    assert "            self.ids.copy_(torch.arange(self.n))\n" in fixed  # BL002's round


def test_an_attribute_that_other_code_assigns_is_registered_only_unsafely(tmp_path):
    source = (
        "import torch\nfrom torch import nn\n\n\n"
        "class Cache(nn.Module):\n"
        "    def __init__(self, n):\n"
        "        super().__init__()\n"
        "        self.keys = torch.zeros(n)\n\n"
        "    def forward(self, x):\n"
        "        self.keys = x\n"
        "        return x\n"
    )
    fixed, left = _fixed(tmp_path, source)
    assert fixed == source
    assert left[0].fix["applicability"] == "unsafe"
    assert "registers `keys`, which other code assigns (line 11)" in left[0].fix["message"]


def test_a_local_that_may_be_none_is_guarded_without_storing_its_flag(trees):
    """`mask = t if causal else None`: `self.mask is not None` is the test, so the hook
    needs no `self.causal`, and it builds the mask only where there is one to copy into."""
    fixed = (trees["fixed"] / "cases" / "shapes.py").read_text()
    cls = fixed.split("class LocalMask")[1].split("\nclass ")[0]
    assert "self.causal" not in cls
    assert (
        "            if self.mask is not None:\n"
        "                mask = torch.tril(torch.ones(self.n, self.n)) * 3.0\n"
        "                self.mask.copy_(mask)\n"
    ) in cls
    none = fixed.split("class NoneOtherwise")[1].split("\nclass ")[0]
    assert "copy_(None)" not in fixed and "self.ramp.copy_(torch.arange(self.n) * 0.25)" in none


def test_a_local_rewritten_for_one_buffers_guard_is_not_shared(tmp_path):
    """`m` loses its `None` branch under `a`'s guard; `b` reads `m` as construction left
    it, so in this round it is left, with the reason."""
    source = (
        "import torch\nfrom torch import nn\n\n\n"
        "class Presented(nn.Module):\n"
        "    def __init__(self, n: int = 4, flag: bool = True) -> None:\n"
        "        super().__init__()\n"
        "        self.n = n\n"
        "        m = torch.arange(n) * 2.0 if flag else None\n"
        '        self.register_buffer("a", m)\n'
        '        self.register_buffer("b", m if m is not None else torch.zeros(n))\n'
    )
    assert _attached(tmp_path, source)[0].fix["message"] == (
        "Add `reset_parameters` that rebuilds `a`; `b` is left as it is: it reads a local "
        "that the rebuild of another buffer sets only where that buffer is not None"
    )
    fixed, left = _fixed(tmp_path, source, unsafe=True)
    assert left == [] and "            self.b.copy_(m if m is not None else" in fixed
    (tmp_path / "model.py").write_text(fixed)
    with _imported(tmp_path, "model") as loaded:
        assert _wrong_buffers(loaded.Presented) == []
        assert _wrong_buffers(loaded.Presented, flag=False) == []


CHILD_READS = (
    "import torch\nfrom torch import nn\n\n\n"
    "class Reads(nn.Module):\n"
    "    def __init__(self) -> None:\n"
    "        super().__init__()\n"
    "        self.proj = nn.Linear(4, 4)\n"
    "        self.register_buffer('{name}', {value})\n"
)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("self.proj.bias.detach() + 1", "reads `self.proj.bias` of the submodule `proj`"),
        ("torch.arange(4.0, device=self.proj.weight.device) * 2", "reads `self.proj.weight`"),
        ("torch.ones(4, device=self.proj.weight.device)", None),  # `self.b.fill_(1.0)`
        ("torch.arange(self.proj.weight.shape[0]) * 2", None),  # shape only: meta has it
        ("torch.arange(self.proj.in_features) + self.proj.weight.size(1)", "proj.in_features"),
    ],
)
def test_a_rebuild_that_reads_a_submodules_tensor_is_unsafe(tmp_path, value, reason):
    """FSDP runs the parent's hook before it materializes the child (parent first), so
    a rebuild from the child's tensor reads meta there (fixtures/fix_verified)."""
    fixed, left = _fixed(tmp_path, CHILD_READS.format(name="b", value=value))
    if reason is None:
        assert left == []
        return
    assert "def reset_parameters" not in fixed
    fix = left[0].fix
    assert fix["applicability"] == "unsafe" and reason in fix["message"]
    assert "which FSDP may not have materialized when this hook runs" in fix["message"]


def test_an_argument_named_like_a_module_but_typed_as_a_number_is_stored(tmp_path):
    source = (TREES["cases"] / "shapes.py").read_text()
    fixed, _ = _fixed(tmp_path, source, unsafe=True)
    cls = fixed.split("class ScalarNames")[1].split("\nclass ")[0]
    assert "        self.block_size = block_size\n        self.weight_scale = weight_scale\n" in cls
    frozen = NO_SAFE_FIX["a module argument is never stored"][0].replace(
        "dense_module", "dense_module: nn.Linear"
    )
    assert _fixed(tmp_path, frozen, unsafe=True)[0] == frozen
