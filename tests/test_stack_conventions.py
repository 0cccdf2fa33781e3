"""The torchtitan, timm and torchtune conventions on fixtures/conventions: what `auto` picks,
what each reports, `[tool.bufferlint.per-file-conventions]`, each positive confirmed and each
negative refuted by its stack's recipe, and `--fix` making each positive right."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bufferlint import conventions
from bufferlint.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "conventions"
STATIC = ROOT / "fixtures" / "static"
STACK = {
    "titan_style": "torchtitan",
    "titan_cascade": "torchtitan",
    "timm_style": "timm",
    "timm_stats": "timm",
    "tune_style": "torchtune",
    "tune_cache": "torchtune",
}
# (file, class) -> (code, convention): every finding `auto` gives on the fixtures.
POSITIVES = {
    ("titan_style.py", "WindowAttention"): ("BL001", "torchtitan"),
    ("titan_style.py", "Scale"): ("BL002", "torchtitan"),
    # Its own `init_weights` is right, but its root's never calls it.
    ("titan_cascade.py", "RelativeBias"): ("BL001", "torchtitan"),
    ("timm_style.py", "ShiftedBlock"): ("BL001", "timm"),
    ("tune_style.py", "ScaledRoPE"): ("BL001", "torchtune"),
}
# `Transformer` is clean itself but holds reported layers: the runtime judges them too.
NEGATIVES = [
    ("titan_style.py", "CausalAttention"),
    ("titan_style.py", "CausalTransformer"),
    ("titan_cascade.py", "GatedBias"),  # reached through `Block` in a `ModuleDict` loop
    ("titan_cascade.py", "Decoder"),
    ("timm_style.py", "WindowBlock"),
    ("tune_style.py", "RotaryEmbedding"),
]
needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="runtime mode needs torch"
)


def run(*args: str):
    return CliRunner().invoke(main, [*args, "--no-cache"])


def found(*args: str) -> dict[tuple[str, str], dict]:
    result = run(*args, "--output-format", "json")
    assert result.exit_code in (0, 1), result.output
    return {(Path(i["filename"]).name, i["class_name"]): i for i in json.loads(result.stdout)}


# Files nothing shows their stack to `auto` in: judged under it when forced.
FORCED = ("tune_cache.py", "timm_stats.py")


def by_auto(*args: str) -> dict[tuple[str, str], dict]:
    """The fixtures' findings under `auto`, but those of FORCED: tune_cache.py has no
    `rope_init`, timm_stats.py no timm hook or import."""
    return {k: i for k, i in found(*args).items() if k[0] not in FORCED}


def test_auto_picks_each_stack_and_reports_only_what_its_hooks_miss():
    items = by_auto(str(FIXTURES))
    assert {key: (i["code"], i["convention"]) for key, i in items.items()} == POSITIVES
    assert "`buffer_device`" in items["titan_style.py", "WindowAttention"]["message"]
    assert "calling the class's buffer helper" in items["timm_style.py", "ShiftedBlock"]["message"]
    rope = items["tune_style.py", "ScaledRoPE"]
    # `offset` is persistent: torchtune loads it from the checkpoint; `theta` is rope_init's.
    assert rope["buffers"] == ["scale"]
    assert "cannot be filled in place" in rope["message"]


def test_reset_parameters_judges_the_same_classes_as_before():
    items = found(str(FIXTURES), "--convention", "reset-parameters")
    assert {i["convention"] for i in items.values()} == {"reset-parameters"}
    assert len(items) == 15  # every class with buffers: none defines reset_parameters
    clean = found(str(FIXTURES), "--convention", "torchtitan")
    assert ("titan_style.py", "Transformer") not in clean
    assert ("titan_style.py", "Transformer") in items


def test_auto_equals_reset_parameters_where_no_stack_shows():
    assert found(str(STATIC)) == found(str(STATIC), "--convention", "reset-parameters")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # A layer file imported by the file that holds torchtitan's root.
        ("layer", "torchtitan"),
        # A file importing timm's registry: its classes are timm's.
        ("from timm.models import register_model\n", "timm"),
        ("from torchtitan.protocols.train_spec import ModelProtocol\n", "torchtitan"),
        ("", "reset-parameters"),
    ],
)
def test_auto_reads_the_project(tmp_path: Path, source: str, expected: str):
    block = (
        "import torch\nfrom torch import nn\n\n\nclass Block(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        '        self.register_buffer("m", torch.ones(3), persistent=False)\n'
    )
    if source == "layer":
        (tmp_path / "model.py").write_text(
            "import torch\nfrom torch import nn\nfrom layer import Block\n\n\n"
            "class Root(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            '        self.register_buffer("f", torch.ones(2))\n\n'
            "    def init_weights(self, buffer_device=None):\n"
            "        self.f = torch.ones(2, device=buffer_device or self.f.device)\n"
        )
        source = ""
    (tmp_path / "layer.py").write_text(source + block)
    [item] = found(str(tmp_path)).values()
    assert item["convention"] == expected


def write_config(tmp_path: Path, table: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.bufferlint.per-file-conventions]\n{table}")


def test_per_file_conventions_override_auto_and_yield_to_the_command_line(tmp_path: Path):
    shutil.copytree(FIXTURES, tmp_path / "src")
    write_config(tmp_path, '"titan_*.py" = "reset-parameters"\n"src/tune_style.py" = "timm"\n')
    items = found(str(tmp_path))
    assert items["titan_style.py", "Transformer"]["convention"] == "reset-parameters"
    assert items["tune_style.py", "ScaledRoPE"]["convention"] == "timm"
    assert items["timm_style.py", "ShiftedBlock"]["convention"] == "timm"  # still auto's
    forced = by_auto(str(tmp_path), "--convention", "auto")
    assert {(k, i["convention"]) for k, i in forced.items()} == {
        (k, c) for k, (_, c) in POSITIVES.items()
    }


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('"*.py" = "fsdp9"\n', "`per-file-conventions` `*.py`: unknown convention `fsdp9`"),
        ('"*.py" = 3\n', "`per-file-conventions` `*.py`: must be a convention name, got 3"),
        ('"*.py" = "reset-methods"\n', "needs `reset-methods`"),
    ],
)
def test_bad_per_file_conventions_are_one_line_errors(tmp_path: Path, table: str, message: str):
    write_config(tmp_path, table)
    result = run(str(tmp_path))
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    (tmp_path / "pyproject.toml").write_text('[tool.bufferlint]\nper-file-conventions = "x"\n')
    result = run(str(tmp_path))
    assert result.exit_code == 2 and "must be a table" in result.stderr


def test_the_conventions_are_named_and_known():
    for name in STACK.values():
        assert conventions.select(name, None).name == name
        assert name in conventions.NAMES
    assert conventions.CHOSEN[0] is conventions.TRANSFORMERS
    assert conventions.TORCHTUNE.to_empty is False
    assert conventions.TORCHTITAN.hook_device == "buffer_device"


def verdicts(root: Path, classes) -> dict[tuple[str, str], dict]:
    from bufferlint.runtime import RuntimeSettings, RuntimeTarget, check

    targets = []
    for file, cls in classes:
        convention = conventions.select(STACK[file.removesuffix(".py")], None)
        targets.append(
            RuntimeTarget(
                path=str(root / file),
                module=file.removesuffix(".py"),
                import_root=str(root),
                class_name=cls,
                buffers=(),
                hooks=convention.hooks,
                convention=convention.name,
            )
        )
    return dict(zip(classes, check(targets, RuntimeSettings(jobs=1)), strict=True))


@needs_torch
def test_each_positive_is_confirmed_by_its_recipe():
    items = by_auto(str(FIXTURES), "--runtime")
    for key, (_, convention) in POSITIVES.items():
        runtime = items[key]["runtime"]
        assert (runtime["verdict"], runtime["recipe"]) == ("confirmed", convention), key
    tune = items["tune_style.py", "ScaledRoPE"]["runtime"]
    assert "scale is still on the meta device" in tune["summary"]
    assert items["titan_style.py", "WindowAttention"]["runtime"]["hooks_called"] == [
        "<root>.init_weights"
    ]


@needs_torch
def test_each_negative_is_refuted_by_its_recipe():
    results = verdicts(FIXTURES, NEGATIVES)
    for key, result in results.items():
        assert result["verdict"] == "refuted", (key, result["summary"])
    # The root's init_weights called the layers': their masks are right too.
    assert "layers.0.mask" in results["titan_style.py", "CausalTransformer"]["summary"]


@needs_torch
def test_a_cache_built_with_the_model_is_confirmed_by_torchtune():
    [result] = verdicts(FIXTURES, [("tune_cache.py", "PrefixCache")]).values()
    assert result["verdict"] == "confirmed"
    assert "prefix is still on the meta device" in result["summary"], result["summary"]


@needs_torch
def test_fix_makes_each_positive_right(tmp_path: Path):
    copy = tmp_path / "fx"
    shutil.copytree(FIXTURES, copy)
    for name in FORCED:  # fixed under their forced convention below
        (copy / name).unlink()
    result = run(str(copy), "--fix")
    assert result.exit_code == 0, result.output
    assert "5 fixed, 0 remaining" in result.output
    titan = (copy / "titan_style.py").read_text()
    assert "def init_weights(self, buffer_device=None) -> None:" in titan
    assert "self.table = self.table.to(buffer_device)" in titan
    # The cascade's fix is in the holder: `Encoder.init_weights` now calls the layer's.
    cascade = (copy / "titan_cascade.py").read_text().split("class Encoder")[1]
    assert "        self.bias.init_weights(buffer_device=buffer_device)\n" in cascade
    tune = (copy / "tune_style.py").read_text()
    assert "torch.get_default_device() if self.scale.is_meta" in tune
    assert "self.attn_mask.copy_(self._mask())" in (copy / "timm_style.py").read_text()
    assert run(str(copy)).exit_code == 0
    assert "Would fix 0" in run(str(copy), "--fix", "--diff").output  # idempotent
    fixed = [k for k in POSITIVES if k[0] not in FORCED]
    for key, result in verdicts(copy, fixed).items():
        assert result["verdict"] == "refuted", (key, result["summary"])


def test_torchtitan_reports_a_layer_its_root_never_reaches():
    items = found(str(FIXTURES), "--convention", "torchtitan")
    message = items["titan_cascade.py", "RelativeBias"]["message"]
    assert message.startswith(
        "the root's `init_weights` never reaches `RelativeBias.init_weights`, so buffer "
        "`offsets` (line 16, non-persistent)"
    )
    assert (
        "`Encoder` holds it as `self.bias`, and `Encoder.init_weights` does not call "
        "`self.bias.init_weights(...)`: call it there"
    ) in message
    # `GatedBias` is reached through `Block`, itself called in a loop over a `ModuleDict`.
    assert ("titan_cascade.py", "GatedBias") not in items
    # Under reset-parameters, nothing cascades: its hook is `reset_parameters`, absent.
    plain = found(str(FIXTURES), "--convention", "reset-parameters")
    assert plain["titan_cascade.py", "RelativeBias"]["code"] == "BL002"


@pytest.mark.parametrize(
    ("call", "reported"),
    [
        ("self.bias.init_weights()", False),
        ("for layer in (self.proj, self.bias):\n            layer.init_weights()", False),
        # A helper's loop over the list that holds the other instance: one is reached.
        (
            "self._layers()\n\n    def _layers(self):\n        for m in self.parts:\n"
            "            m.init_weights()",
            False,
        ),
        ("self.proj.reset_parameters()\n        self.parts[0].init_weights()", False),
        # A helper nested in the hook, defined to be called.
        ("def init():\n            self.bias.init_weights()\n\n        init()", False),
        ("self.proj.reset_parameters()", True),
        ("for m in self.proj.children():\n            m.init_weights()", True),
    ],
)
def test_the_cascade_follows_attributes_loops_and_helpers(
    tmp_path: Path, call: str, reported: bool
):
    layer = (FIXTURES / "titan_cascade.py").read_text().split("class Encoder")[0]
    root = (
        "class Root(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.proj = nn.Linear(2, 2)\n        self.bias = RelativeBias()\n"
        "        parts = []\n        parts.append(RelativeBias())\n"
        "        self.parts = nn.ModuleList(parts)\n\n"
        f"    def init_weights(self, buffer_device=None):\n        {call}\n"
    )
    (tmp_path / "m.py").write_text(layer + root)
    items = found(str(tmp_path), "--convention", "torchtitan")
    assert bool(items) is reported
    if reported:
        [item] = items.values()
        assert "`Root` holds it as `self.bias`" in item["message"]
        assert "`Root` holds it as `self.parts`" in item["message"]


def test_later_torchtitan_modules_recurse_without_a_cascade(tmp_path: Path):
    (tmp_path / "m.py").write_text(
        "import torch\nfrom torch import nn\n"
        "from torchtitan.protocols.module import Module\n\n\n"
        "class Rope(Module):\n    def __init__(self):\n        super().__init__()\n"
        '        self.register_buffer("cache", torch.ones(2), persistent=False)\n\n'
        "    def _init_self_buffers(self, *, buffer_device=None):\n"
        "        self.cache = torch.ones(2, device=buffer_device)\n\n\n"
        "class Root(Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.rope = Rope()\n\n"
        "    def init_weights(self, **kwargs):\n        self.init_states(**kwargs)\n"
    )
    assert found(str(tmp_path), "--convention", "torchtitan") == {}


@needs_torch
def test_torchtitan_judges_a_layer_inside_the_root_that_holds_it():
    results = verdicts(
        FIXTURES, [("titan_cascade.py", "RelativeBias"), ("titan_style.py", "Scale")]
    )
    bias = results["titan_cascade.py", "RelativeBias"]
    assert (bias["verdict"], bias["judged_at"]) == ("confirmed", "bias")
    assert bias["built_with"] == "Encoder (defaults), holding RelativeBias as bias"
    assert bias["hooks_called"] == ["<root>.init_weights"]
    alone = results["titan_style.py", "Scale"]  # nothing holds it: it is the root
    assert "judged_at" not in alone


def test_a_new_torchtitan_hook_forwards_buffer_device_to_super(tmp_path: Path):
    (tmp_path / "m.py").write_text(
        "import torch\nfrom torch import nn\n\n\nclass Root(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        '        self.register_buffer("f", torch.arange(3).float())\n\n'
        "    def init_weights(self, buffer_device=None):\n"
        "        with torch.device(buffer_device or self.f.device):\n"
        "            self.f = torch.arange(3).float()\n\n\n"
        "class Tagged(Root):\n    def __init__(self):\n        super().__init__()\n"
        '        self.register_buffer("tag", torch.ones(3), persistent=False)\n'
    )
    result = run(str(tmp_path), "--convention", "torchtitan", "--fix")
    assert "1 fixed, 0 remaining" in result.output, result.output
    text = (tmp_path / "m.py").read_text()
    assert "    def init_weights(self, buffer_device=None):\n" in text.split("class Tagged")[1]
    assert "super().init_weights(buffer_device=buffer_device)" in text


def test_torchtune_does_not_judge_a_cache_only_setup_caches_builds():
    items = found(str(FIXTURES / "tune_cache.py"), "--convention", "torchtune")
    assert set(items) == {("tune_cache.py", "PrefixCache")}
    assert items["tune_cache.py", "PrefixCache"]["code"] == "BL002"
    plain = found(str(FIXTURES / "tune_cache.py"), "--convention", "reset-parameters")
    assert ("tune_cache.py", "StepCache") in plain


@needs_torch
def test_a_cache_setup_caches_builds_after_loading_is_right():
    """torchtune's generation path (recipes/generate.py): meta build, the recipe's
    `rope_init` loop and load, then `setup_caches` under the device."""
    import sys

    import torch

    from bufferlint.runtime.recipes import materialize

    sys.path.insert(0, str(FIXTURES))
    try:
        import tune_cache
    finally:
        sys.path.remove(str(FIXTURES))
    state = tune_cache.CachedAttention().state_dict()
    with torch.device("meta"):
        model = tune_cache.CachedAttention()
    materialize("torchtune", model, (), torch.device("cpu"), lambda: None, state)
    with torch.device("cpu"):
        model.setup_caches(1, 4)
    assert not model.cache.keys.is_meta and torch.equal(model.cache.steps, torch.arange(4))
    assert torch.count_nonzero(model.cache.keys) == 0


@needs_torch
def test_the_runtime_flips_a_boolean_to_register_the_flagged_buffer(tmp_path: Path):
    (tmp_path / "pool.py").write_text(
        "import torch\nfrom torch import nn\n\n\nclass Pool(nn.Module):\n"
        "    def __init__(self, r: float = 2.0, learnable: bool = True):\n"
        "        super().__init__()\n        if learnable:\n"
        "            self.r = nn.Parameter(torch.tensor(r))\n        else:\n"
        '            self.register_buffer("r", torch.tensor(r))\n'
    )
    items = found(str(tmp_path), "--convention", "timm", "--runtime")
    runtime = items["pool.py", "Pool"]["runtime"]
    assert runtime["built_with"] == "synthesized args {learnable=False}"
    assert runtime["verdict"] == "confirmed", runtime["summary"]


@pytest.mark.parametrize("calls", [False, True])
def test_holders_in_files_without_buffers_count_in_prefiltered_runs(tmp_path: Path, calls: bool):
    """The holder's file builds no buffer, so a prefiltered run does not parse it unless the
    cascade asks: both runs must agree."""
    from bufferlint.engine import Settings, lint

    layer = (FIXTURES / "titan_cascade.py").read_text().split("class Encoder")[0]
    (tmp_path / "layer.py").write_text(layer)
    (tmp_path / "model.py").write_text(
        "from torch import nn\n\nfrom layer import RelativeBias\n\n\nclass Root(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.bias = RelativeBias()\n\n"
        "    def init_weights(self, buffer_device=None):\n"
        f"        {'self.bias.init_weights(buffer_device)' if calls else 'pass'}\n"
    )
    titan = conventions.TORCHTITAN
    runs = [
        {(f.class_name, f.code) for f in lint([str(tmp_path)], s).findings}
        for s in (Settings(convention=titan), Settings(convention=titan, prefilter=False))
    ]
    assert runs[0] == runs[1] == (set() if calls else {("RelativeBias", "BL001")})


def _hook_text(text: str, cls: str, hook: str) -> str:
    """The source of `cls.hook`, up to the next method."""
    body = text.split(f"class {cls}")[1].split(f"    def {hook}(")[1]
    return body.split("\n    def ")[0].split("\nclass ")[0]


def test_timm_judges_a_persistent_buffer_written_after_loading():
    """timm's walk runs after `load_state_dict`: a persistent buffer written only there is
    reported, and both the finding and the fix say it belongs in `reset_parameters`."""
    items = found(str(FIXTURES / "timm_stats.py"), "--convention", "timm")
    late = items["timm_stats.py", "LateCount"]
    assert late["code"] == "BL001" and late["buffers"] == ["count"]
    placed = "rebuild it in `reset_parameters`, not in `init_non_persistent_buffers`"
    assert placed in late["message"]
    assert "(as `init_non_persistent_buffers` does to `count` at line 36)" in late["message"]
    assert late["fix"]["applicability"] == "unsafe"
    left = "leaves the write of `count` in `init_non_persistent_buffers`"
    assert left in late["fix"]["message"]
    stats = items["timm_stats.py", "FrozenStatsBlock"]
    persistent = "`running_mean`, `running_var` are persistent: rebuild them in `reset_parameters`"
    assert persistent in stats["message"]
    assert stats["fix"]["message"] == (
        "Add `init_non_persistent_buffers` that rebuilds `mask`; add `reset_parameters` that "
        "rebuilds `running_mean` and `running_var` and re-initializes `gain` as `__init__` did"
    )


def _fixed_stats(tmp_path: Path) -> Path:
    copy = tmp_path / "fx"
    copy.mkdir()
    shutil.copy(FIXTURES / "timm_stats.py", copy)
    result = run(str(copy), "--convention", "timm", "--fix")
    assert "1 fixed, 1 remaining" in result.output, result.output  # LateCount's is unsafe
    return copy


def test_timm_fix_keeps_checkpoint_state_out_of_the_post_loading_hook(tmp_path: Path):
    text = (_fixed_stats(tmp_path) / "timm_stats.py").read_text()
    late = _hook_text(text, "FrozenStatsBlock", "init_non_persistent_buffers")
    scratch = _hook_text(text, "FrozenStatsBlock", "reset_parameters")
    assert "self.mask.copy_" in late
    assert "running" not in late and "gain" not in late
    assert "self.running_mean.zero_()" in scratch and "self.gain.fill_(1.0)" in scratch
    assert "mask" not in scratch


@needs_torch
def test_timm_fix_is_right_from_scratch_and_after_loading(tmp_path: Path):
    """From scratch (the `timm` recipe), and timm's checkpoint path: meta build,
    `to_empty()`, `load_state_dict` of trained values, then the walk: they survive."""
    import sys

    import torch

    key = ("timm_stats.py", "FrozenStatsBlock")
    assert verdicts(FIXTURES, [key])[key]["verdict"] == "confirmed"
    copy = _fixed_stats(tmp_path)
    assert verdicts(copy, [key])[key]["verdict"] == "refuted"
    sys.path.insert(0, str(copy))
    try:
        import timm_stats
    finally:
        sys.path.remove(str(copy))
        sys.modules.pop("timm_stats", None)
    trained = timm_stats.FrozenStatsBlock().state_dict()
    for value in trained.values():
        value.copy_(torch.arange(value.numel()).reshape(value.shape) + 5.0)
    with torch.device("meta"):
        model = timm_stats.FrozenStatsBlock()
    model.to_empty(device="cpu")
    model.load_state_dict(trained)
    for module in model.modules():  # timm.models.reinit_non_persistent_buffers
        if hasattr(module, "init_non_persistent_buffers"):
            module.init_non_persistent_buffers()
    for name, value in model.state_dict().items():
        assert torch.equal(value, trained[name]), name
    assert torch.equal(model.mask, torch.tril(torch.ones(3, 3)))


LAYER = (FIXTURES / "titan_cascade.py").read_text().split("class Encoder")[0]


@pytest.mark.parametrize(
    ("holder", "call"),
    [
        (  # a list, and a hook that may return early: the loop goes first
            "        self.layers = nn.ModuleList([RelativeBias() for _ in range(2)])\n\n"
            "    def init_weights(self, buffer_device=None):\n"
            "        if buffer_device is None:\n            return\n",
            "    def init_weights(self, buffer_device=None):\n"
            "        for layer in self.layers:\n"
            "            layer.init_weights(buffer_device=buffer_device)\n",
        ),
        (  # a dict and no hook: one is created, as torchtitan's new hooks are
            '        self.layers = nn.ModuleDict()\n        self.layers["0"] = RelativeBias()\n',
            "    def init_weights(self, buffer_device=None) -> None:\n"
            "        for layer in self.layers.values():\n"
            "            layer.init_weights(buffer_device=buffer_device)\n",
        ),
        (  # the holder's hook receives no device: nothing to forward
            "        self.bias = RelativeBias()\n\n    def init_weights(self):\n        pass\n",
            "    def init_weights(self):\n        self.bias.init_weights()\n",
        ),
    ],
)
@needs_torch
def test_the_cascade_fix_adds_the_call_to_the_holder(tmp_path: Path, holder: str, call: str):
    source = (
        LAYER + "class Root(nn.Module):\n    def __init__(self) -> None:\n"
        "        super().__init__()\n" + holder
    )
    (tmp_path / "titan_cascade.py").write_text(source)
    result = run(str(tmp_path), "--convention", "torchtitan", "--fix")
    assert "1 fixed, 0 remaining" in result.output, result.output
    assert call in (tmp_path / "titan_cascade.py").read_text()
    key = ("titan_cascade.py", "RelativeBias")
    result = verdicts(tmp_path, [key])[key]
    assert result["verdict"] == "refuted", result["summary"]
    assert result["hooks_called"] == ["<root>.init_weights"]


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        (
            {
                "m.py": LAYER + "class Plain(nn.Module):\n    pass\n\n\n"
                "class Root(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                "        self.parts = nn.ModuleList([RelativeBias(), Plain()])\n\n"
                "    def init_weights(self, buffer_device=None):\n        pass\n"
            },
            "`self.parts` also holds `Plain`, which has no `init_weights`",
        ),
        (
            {
                "layer.py": LAYER,
                "model.py": "from torch import nn\n\nfrom layer import RelativeBias\n\n\n"
                "class Root(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                "        self.bias = RelativeBias()\n",
            },
            "`Root` is in another file: add the call to its `init_weights` there",
        ),
        (  # torchtitan 0.1.0's llama4 `MoE.init_weights(init_std, buffer_device)`
            {
                "m.py": LAYER.replace(
                    "def init_weights(self, buffer_device",
                    "def init_weights(self, std, buffer_device",
                )
                + "class Root(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                "        self.bias = RelativeBias()\n\n"
                "    def init_weights(self, buffer_device=None):\n        pass\n"
            },
            "`RelativeBias.init_weights` needs `std`, which bufferlint cannot supply",
        ),
    ],
)
def test_a_cascade_with_no_safe_fix_shows_no_mark_and_says_why(
    tmp_path: Path, files: dict[str, str], reason: str
):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = run(str(tmp_path), "--convention", "torchtitan")
    assert result.exit_code == 1 and "[*]" not in result.output
    assert f"no automatic fix: {reason}" in result.output, result.output
    before = {name: (tmp_path / name).read_text() for name in files}
    run(str(tmp_path), "--convention", "torchtitan", "--fix")
    assert {name: (tmp_path / name).read_text() for name in files} == before
