"""The `transformers` convention statically: which `_init_weights` sees a module class, how
its branches are decided for that class, how `auto` chooses it, and the fix it writes.
Nothing here imports torch or transformers."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from bufferlint import guards
from bufferlint.cli import main
from bufferlint.conventions import AUTO, TRANSFORMERS, Convention
from bufferlint.engine import Settings, lint
from bufferlint.extract import extract

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "transformers" / "hf_models.py"
HEADER = """\
import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
"""
BUFFERED = """

class {name}(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("b", torch.ones(3))
"""


def run(*args: str):
    return CliRunner().invoke(main, [*args, "--no-cache"], catch_exceptions=False)


def items(*args: str) -> list[dict]:
    result = run(*args, "--output-format", "json")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def write(folder: Path, name: str, code: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(code))
    return path


def agree(path: Path, convention: Convention = AUTO) -> list[tuple[str, str]]:
    """The findings of a tree, the same whether the prefilter parses parts or not."""
    keys = [
        [
            (f.class_name, f.message)
            for f in lint([str(path)], Settings(prefilter=p, convention=convention)).findings
        ]
        for p in (True, False)
    ]
    assert keys[0] == keys[1]
    return keys[0]


def reported(*args: str) -> dict[str, list[str]]:
    return {i["class_name"]: sorted(i["buffers"]) for i in items(*args)}


def test_auto_judges_the_models_file_under_transformers_and_the_rest_as_before():
    found = items(str(FIXTURE))
    assert {(i["code"], i["class_name"], i["convention"]) for i in found} == {
        ("BL001", "StampModel", "transformers"),
        ("BL001", "Lantern", "transformers"),
        ("BL005", "Dial", "transformers"),
    }
    dial = next(i for i in found if i["class_name"] == "Dial")
    assert dial["message"].startswith("`_init_weights` does not rebuild frozen parameter `dial`")
    assert "add an `isinstance(module, Dial)` branch that rebuilds it" in dial["message"]
    stamp = next(i for i in found if i["class_name"] == "StampModel")
    assert stamp["message"].startswith("`_init_weights` of `StampModel` does not rebuild")
    lantern = next(i for i in found if i["class_name"] == "Lantern")
    glow = next(n for n, t in enumerate(FIXTURE.read_text().splitlines(), 1) if "built: glow" in t)
    assert f"`glow` (line {glow}, persistent)" in lantern["message"]
    assert "a checkpoint restores persistent ones only if it holds them" in lantern["message"]
    others = items(str(ROOT / "fixtures" / "static"))
    assert {i["convention"] for i in others} == {"reset-parameters"}


def test_forcing_a_convention_overrides_auto(tmp_path):
    under_fsdp = reported(str(FIXTURE), "--convention", "reset-parameters")
    assert {"Ramp", "Tick", "GlowRotaryEmbedding"} <= set(under_fsdp)
    plain = write(tmp_path, "plain.py", HEADER + BUFFERED.format(name="Plain"))
    assert [i["convention"] for i in items(str(plain))] == ["transformers"]  # imports a model
    assert [i["convention"] for i in items(str(plain), "--convention", "transformers")] == [
        "transformers"
    ]


def test_dispatchers_are_read_for_their_module_argument():
    source = HEADER + textwrap.dedent(
        """
        class M(PreTrainedModel):
            def _init_weights(self, module):
                PreTrainedModel._init_weights(self, module)
                if isinstance(module, (nn.LayerNorm, Block)) and hasattr(module, "cache"):
                    init.zeros_(getattr(module, "cache"))
                elif "Rotary" in module.__class__.__name__:
                    module.inv_freq.copy_(module.compute())
                    module._init_buffers()
        """
    )
    facts = extract(source, "m.py", "m")
    method = facts.classes[0].methods["_init_weights"]
    kinds = [(e.kind, e.name) for e in method.dispatched]
    assert kinds == [
        ("explicit", "_init_weights"),
        ("fill", "cache"),
        ("fill", "inv_freq"),
        ("call", "compute"),
        ("call", "_init_buffers"),
    ]
    condition = method.dispatched[1].guards[0].condition
    assert condition == guards.AllOf(
        (guards.IsInstance(("torch.nn.LayerNorm", "Block")), guards.HasAttr("cache"))
    )
    assert method.dispatched[2].guards[-1].condition == guards.ClassName("Rotary")
    assert [e.kind for e in method.events] == ["explicit"]  # what it does with `self`


class _Subject:
    def __init__(self, name: str, bases: set[str], attributes: set[str]) -> None:
        self.name, self.bases, self.attributes = name, bases, attributes

    def is_instance(self, written: str) -> bool | None:
        return written in self.bases

    def has(self, attribute: str) -> bool | None:
        return attribute in self.attributes


@pytest.mark.parametrize(
    ("condition", "truth"),
    [
        (guards.IsInstance(("Norm", "Block")), guards.TRUE),
        (guards.IsInstance(("Norm",)), guards.FALSE),
        (guards.ClassName("Rotary"), guards.TRUE),
        (guards.ClassName("Rotary", exact=True), guards.FALSE),
        (guards.HasAttr("original_inv_freq"), guards.FALSE),
        (guards.Not(guards.ClassName("LayerNorm")), guards.TRUE),
        (guards.AnyOf((guards.IsInstance(("Norm",)), guards.ClassName("Norm"))), guards.FALSE),
        (guards.Opaque("self.config.flag"), guards.CONFIG),
    ],
)
def test_a_branch_is_decided_by_the_judged_class(condition, truth):
    subject = _Subject("MyRotaryEmbedding", {"Block"}, {"inv_freq"})
    assert guards.for_subject(condition, subject, {"inv_freq"}) == truth


def test_components_in_another_file_are_judged_by_the_models_that_import_them(tmp_path):
    write(tmp_path, "pkg/__init__.py", "")
    write(
        tmp_path,
        "pkg/layers.py",
        """\
        import torch
        from torch import nn


        class Scale(nn.Module):
            def __init__(self, n):
                super().__init__()
                self.register_buffer("scale", torch.ones(n), persistent=False)


        class Shift(nn.Module):
            def __init__(self, n):
                super().__init__()
                self.register_buffer("shift", torch.zeros(n), persistent=False)
        """,
    )
    write(
        tmp_path,
        "pkg/modeling.py",
        HEADER
        + """
from .layers import Scale, Shift


class ScaleModel(PreTrainedModel):
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, Scale):
            init.ones_(module.scale)
""",
    )
    found = items(str(tmp_path / "pkg"), "--convention", "transformers")
    assert [(i["class_name"], i["buffers"]) for i in found] == [("Shift", ["shift"])]
    fixed = run(str(tmp_path / "pkg"), "--convention", "transformers", "--fix")
    assert "Found 1 error" in fixed.output  # Shift, with no model in its file, and only it
    assert [name for name, _ in agree(tmp_path / "pkg", TRANSFORMERS)] == ["Shift"]


def test_the_projects_own_base_is_read_and_class_name_branches_reach_other_files(tmp_path):
    # A stand-in for transformers' own tree: its base rules, and a backbone model whose
    # class-name branch covers norms that another file's model puts into it.
    write(tmp_path, "transformers/__init__.py", "")
    write(tmp_path, "transformers/initialization.py", "def ones_(t):\n    return t\n")
    write(
        tmp_path,
        "transformers/modeling_utils.py",
        """\
        from torch import nn
        from . import initialization as init


        class PreTrainedModel(nn.Module):
            def _init_weights(self, module):
                if "Glow" in module.__class__.__name__:
                    init.ones_(module.glow)
        """,
    )
    write(tmp_path, "transformers/models/__init__.py", "")
    write(
        tmp_path,
        "transformers/models/backbone.py",
        """\
        from .. import initialization as init
        from ..modeling_utils import PreTrainedModel


        class Backbone(PreTrainedModel):
            def _init_weights(self, module):
                super()._init_weights(module)
                if "FrozenNorm" in module.__class__.__name__:
                    init.ones_(module.scale)
        """,
    )
    write(
        tmp_path,
        "transformers/models/detector.py",
        """\
        import torch
        from torch import nn


        class FrozenNorm(nn.Module):
            def __init__(self, n):
                super().__init__()
                self.register_buffer("scale", torch.ones(n))


        class GlowCell(nn.Module):
            def __init__(self, n):
                super().__init__()
                self.register_buffer("glow", torch.ones(n), persistent=False)


        class Dark(nn.Module):
            def __init__(self, n):
                super().__init__()
                self.register_buffer("dark", torch.ones(n), persistent=False)
        """,
    )
    ghost = "import torch\nfrom torch import nn\n" + BUFFERED.format(name="Ghost")
    write(tmp_path, "transformers/models/modular_detector.py", ghost)
    found = items(str(tmp_path / "transformers"))
    assert {i["class_name"]: i["convention"] for i in found} == {"Dark": "transformers"}
    assert found[0]["message"].startswith("the base `_init_weights` of `PreTrainedModel`")
    assert [name for name, _ in agree(tmp_path / "transformers")] == ["Dark"]


def test_the_fix_adds_a_branch_in_the_files_style(tmp_path):
    fixed = tmp_path / "hf_models.py"
    fixed.write_text(FIXTURE.read_text())
    result = run(str(fixed), "--fix", "--unsafe-fixes")
    assert result.exit_code == 0, result.output
    text = fixed.read_text()
    assert (
        '    base_model_prefix = "stamp"\n\n'
        "    def _init_weights(self, module):\n"
        "        super()._init_weights(module)\n"
        "        if isinstance(module, StampModel):\n"
        "            stamp = torch.arange(module.steps, dtype=torch.float32) * 0.5\n"
        "            init.copy_(module.stamp, stamp)\n"
    ) in text
    assert (
        '        if type(module).__name__ == "Tick":\n'
        "            init.ones_(module.tick)\n"
        "        if isinstance(module, Lantern):\n"
        "            init.constant_(module.glow, 2.0)\n"
    ) in text
    assert run(str(fixed), "--fix", "--unsafe-fixes").exit_code == 0
    assert fixed.read_text() == text  # a second fix changes nothing


def test_the_fix_extends_an_isinstance_chain_and_imports_the_helpers(tmp_path):
    write(tmp_path, "transformers/__init__.py", "")
    write(tmp_path, "transformers/models/__init__.py", "")
    write(tmp_path, "transformers/models/wave/__init__.py", "")
    path = write(
        tmp_path,
        "transformers/models/wave/modeling_wave.py",
        """\
        import torch
        from torch import nn

        from ...modeling_utils import PreTrainedModel


        class Wave(nn.Module):
            def __init__(self, n):
                super().__init__()
                self.register_buffer("wave", torch.zeros(n), persistent=False)


        class Crest(nn.Module):
            def __init__(self, n):
                super().__init__()
                self.register_buffer("crest", torch.ones(n), persistent=False)


        class WavePreTrainedModel(PreTrainedModel):
            def _init_weights(self, module):
                super()._init_weights(module)
                if isinstance(module, nn.Linear):
                    module.weight.data.normal_()


        class WaveModel(WavePreTrainedModel):
            def __init__(self, config):
                super().__init__(config)
                self.wave = Wave(4)
                self.crest = Crest(4)
        """,
    )
    result = run(str(path), "--fix")
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert "from ... import initialization as init\n" in text
    assert (
        "            module.weight.data.normal_()\n"
        "        elif isinstance(module, Wave):\n"
        "            init.zeros_(module.wave)\n"
        "        elif isinstance(module, Crest):\n"
        "            init.ones_(module.crest)\n"
    ) in text


def test_a_class_no_model_of_its_file_holds_gets_no_fix_and_the_reason(tmp_path):
    path = write(
        tmp_path,
        "transformers/activations.py",
        """\
        import torch
        from torch import nn


        class Gate(nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("beta", torch.tensor(0.5))
        """,
    )
    write(tmp_path, "transformers/__init__.py", "")
    [finding] = items(str(path))
    assert finding["convention"] == "transformers" and finding["fix"] is None
    assert "no `PreTrainedModel` subclass in this file" in finding["message"]
