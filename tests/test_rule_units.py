"""A rule is one unit: registered from one file, it shows up in the output, the rule pages,
`bufferlint rule` and the selectors, with no other file naming it."""

import ast
import importlib
import json
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bufferlint import docs, rules
from bufferlint.cli import main

UNIT = "tests.rule_units.bl999_every_builder"


@pytest.fixture
def test_rule():
    sys.modules.pop(UNIT, None)
    module = importlib.import_module(UNIT)
    yield rules.RULES["BL999"]
    rules.unregister("BL999")
    sys.modules.pop(module.__name__, None)


def test_a_rule_registered_from_one_file_reports(tmp_path, test_rule):
    (tmp_path / "example.py").write_text(test_rule.example)
    (tmp_path / "clean.py").write_text(test_rule.use_instead)
    result = CliRunner().invoke(
        main, [str(tmp_path), "--no-cache", "--output-format", "json"], catch_exceptions=False
    )
    items = json.loads(result.stdout)
    assert [(i["code"], i["name"], i["class_name"]) for i in items] == [
        ("BL999", "every-builder", "Table")
    ]
    assert items[0]["message"] == "builds `ids` under `reset-parameters`"
    assert items[0]["url"].endswith("rules/BL999.md")
    assert result.exit_code == 1
    ignored = CliRunner().invoke(main, [str(tmp_path), "--no-cache", "--ignore", "BL999"])
    assert ignored.exit_code == 0, ignored.stdout


def test_a_registered_rule_gets_a_page_and_the_rule_command(tmp_path, test_rule):
    assert docs.write(tmp_path) and (tmp_path / "BL999.md").read_text() == docs.page_file(test_rule)
    page = CliRunner().invoke(main, ["rule", "every-builder"])
    assert page.exit_code == 0 and page.stdout == docs.render_page(test_rule)
    listing = CliRunner().invoke(main, ["rule", "--all"]).stdout
    assert "BL999  every-builder" in listing


def test_the_registry_derives_what_acts_on_findings():
    assert rules.fixable() == {c for c, r in rules.RULES.items() if r.fixable}
    assert rules.runtime_checked() == {c for c, r in rules.RULES.items() if r.runtime_checked}
    assert rules.directive_rule() is rules.RULES["BL100"]
    with pytest.raises(ValueError, match="registered twice"):
        rules.register(type(rules.RULES["BL001"]))


def test_rule_units_are_the_only_code_naming_rule_codes():
    """No name, attribute or string in bufferlint outside bufferlint/rules/ is a rule code."""
    package = Path(rules.__file__).resolve().parent.parent
    outside = []
    for path in package.rglob("*.py"):
        if "rules" in path.relative_to(package).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            named = getattr(node, "id", None) or getattr(node, "attr", None)
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                named = node.value
            if isinstance(named, str) and re.fullmatch(r"BL\d{3}", named):
                outside.append(f"{path.name}:{node.lineno}")
    assert outside == []
