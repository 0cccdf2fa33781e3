"""Materialization conventions as objects, and how a run selects one."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bufferlint import conventions
from bufferlint.cli import main
from bufferlint.conventions import RESET_PARAMETERS, UnknownConvention, named, select
from bufferlint.rules import BL001

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "static"


def run(*args: str, cwd: Path | None = None):
    return CliRunner().invoke(main, [*args, "--no-cache"], catch_exceptions=False)


def items(*args: str) -> list[dict]:
    result = run(*args, "--output-format", "json")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def test_reset_parameters_knows_the_torch_layers_that_define_it():
    assert RESET_PARAMETERS.layer_defines_hook("Linear")
    assert RESET_PARAMETERS.layer_defines_hook("Linear", "reset_parameters")
    assert not RESET_PARAMETERS.layer_defines_hook("Dropout")
    custom = select(None, ("init_weights",))
    assert custom.name == "reset-methods" and not custom.layer_defines_hook("Linear")
    both = select("reset-methods", ("init_weights", "reset_parameters"))
    assert both.layer_defines_hook("Linear", "reset_parameters")
    assert not both.layer_defines_hook("Linear", "init_weights")
    assert (custom.recipe, RESET_PARAMETERS.recipe) == ("torch", "fsdp")


def test_auto_is_the_default_and_naming_only_reset_parameters_is_fsdp():
    assert select(None, ("reset_parameters",)) is RESET_PARAMETERS
    assert select(None, None) is conventions.DEFAULT is conventions.AUTO
    assert select("transformers", None) is conventions.TRANSFORMERS
    assert named("", ("init_weights",)).hooks == ("init_weights",)
    assert named("transformers", ("_init_weights",)) is conventions.TRANSFORMERS


@pytest.mark.parametrize(
    ("name", "hooks", "message"),
    [
        (
            "nope",
            None,
            "unknown convention `nope`; known conventions: auto, reset-parameters, "
            "reset-methods, transformers, torchtitan, timm, torchtune",
        ),
        ("reset-methods", None, "needs `reset-methods`"),
        ("reset-parameters", ("init_weights",), "names the hooks of the `reset-methods`"),
        ("transformers", ("init_weights",), "not of `transformers`"),
    ],
)
def test_wrong_selections_are_one_line_errors(name, hooks, message):
    with pytest.raises(UnknownConvention, match=message.replace("(", r"\(").replace(")", r"\)")):
        select(name, hooks)


def test_the_flag_selects_and_the_output_names_the_convention(tmp_path):
    (tmp_path / "m.py").write_text(BL001.example)
    default = items(str(tmp_path))
    assert [i["convention"] for i in default] == ["reset-parameters"]
    assert items(str(tmp_path), "--convention", "reset-parameters") == default
    custom = items(str(tmp_path), "--reset-method", "init_weights")
    assert [(i["code"], i["convention"]) for i in custom] == [("BL002", "reset-methods")]
    assert "but has no `init_weights`" in custom[0]["message"]
    sarif = json.loads(run(str(tmp_path), "--output-format", "sarif").stdout)
    [result] = sarif["runs"][0]["results"]
    assert result["properties"]["convention"] == "reset-parameters"


def test_reset_parameters_reproduces_the_default_on_the_fixtures():
    assert items(str(FIXTURES), "--convention", "reset-parameters") == items(str(FIXTURES))


def test_an_unknown_convention_is_exit_2_with_the_known_names(tmp_path):
    result = run(str(tmp_path), "--convention", "fsdp3")
    assert result.exit_code == 2
    assert "unknown convention `fsdp3`; known conventions: auto, reset-parameters" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    (tmp_path / "pyproject.toml").write_text('[tool.bufferlint]\nconvention = "fsdp3"\n')
    result = run(str(tmp_path))
    assert result.exit_code == 2
    assert "pyproject.toml" in result.stderr and "unknown convention `fsdp3`" in result.stderr
    (tmp_path / "pyproject.toml").write_text("[tool.bufferlint]\nconvention = 3\n")
    assert "`convention` must be a string" in run(str(tmp_path)).stderr


def test_the_command_line_convention_wins_with_its_own_hooks(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.bufferlint]\nconvention = "reset-methods"\nreset-methods = ["init_weights"]\n'
    )
    (tmp_path / "m.py").write_text(BL001.example)
    assert [i["convention"] for i in items(str(tmp_path))] == ["reset-methods"]
    flagged = items(str(tmp_path), "--convention", "reset-parameters")
    assert [i["convention"] for i in flagged] == ["reset-parameters"]
    assert run(str(tmp_path), "--convention", "reset-methods").exit_code == 1
