"""Rule pages: generated from the Rule objects, up to date, and their examples linted."""

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from bufferlint import docs
from bufferlint.cli import main
from bufferlint.engine import Settings, lint_source
from bufferlint.rules import RULES

ROOT = Path(__file__).resolve().parent.parent


def test_pages_are_up_to_date():
    stale = docs.stale(docs.RULES_DIR)
    assert not stale, f"run `python -m bufferlint.docs` to regenerate: {stale}"


def test_check_mode_reports_and_write_mode_repairs(tmp_path):
    assert docs.main([str(tmp_path), "--check"]) == 1
    (tmp_path / "BL999.md").write_text("a rule that no longer exists")
    assert docs.main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{code}.md" for code in RULES]
    assert docs.main([str(tmp_path), "--check"]) == 0


@pytest.mark.parametrize("code", list(RULES))
def test_page_has_ruffs_sections_in_order(code):
    page = (docs.RULES_DIR / f"{code}.md").read_text()
    titles = re.findall(r"^## (.+)$", page, re.M)
    references = ["References"] if RULES[code].references else []
    assert titles == [*docs.SECTIONS, *references]
    assert page.count("```python") == 2


@pytest.mark.parametrize("code", list(RULES))
def test_example_is_flagged_and_use_instead_is_clean(tmp_path, code):
    rule = RULES[code]
    path = str(tmp_path / "example.py")
    flagged = lint_source(path, rule.example, Settings()).findings
    assert {f.code for f in flagged} == {code}, [f.message for f in flagged]
    clean = lint_source(path, rule.use_instead, Settings()).findings
    assert clean == [], [f.message for f in clean]


def test_rule_command_prints_the_page():
    for code, rule in RULES.items():
        result = CliRunner().invoke(main, ["rule", code])
        assert result.exit_code == 0
        assert result.stdout == docs.render_page(rule)
    by_name = CliRunner().invoke(main, ["rule", "buffer-not-rebuilt"])
    assert by_name.stdout.startswith("# BL001: buffer-not-rebuilt")


def test_rule_all_lists_every_rule():
    listing = CliRunner().invoke(main, ["rule", "--all"]).stdout.splitlines()
    assert [line.split()[0] for line in listing] == list(RULES)
    items = json.loads(
        CliRunner().invoke(main, ["rule", "--all", "--output-format", "json"]).stdout
    )
    assert [i["code"] for i in items] == list(RULES)
    assert all(i["explanation"].startswith(f"# {i['code']}") for i in items)


def test_readme_rule_table_is_generated_from_the_rules():
    readme = (ROOT / "README.md").read_text()
    assert docs.TABLE_START in readme and docs.TABLE_END in readme
    assert docs.with_rules_table(readme) == readme, "run `python -m bufferlint.docs`"


def test_readme_links_every_rule_page():
    readme = (ROOT / "README.md").read_text()
    for code, rule in RULES.items():
        assert f"[{code}](rules/{code}.md)" in readme, code
        assert rule.name in readme
