"""Inline suppressions and BL100 (unused suppressions)."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bufferlint.cli import main
from bufferlint.engine import Settings, lint, lint_source
from bufferlint.suppressions import parse

MODULE = """\
import torch
from torch import nn


class Mask(nn.Module):{comment}
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mask", torch.ones(3)){build_comment}
"""


def findings(tmp_path: Path, source: str, **settings) -> list[tuple[str, int, str]]:
    path = tmp_path / "m.py"
    path.write_text(source)
    result = lint([str(path)], Settings(**settings))
    return [(f.code, f.line, f.message) for f in result.findings]


def codes(tmp_path: Path, comment: str = "", build_comment: str = "", **settings) -> list:
    source = MODULE.format(comment=comment, build_comment=build_comment)
    return [(code, line) for code, line, _ in findings(tmp_path, source, **settings)]


@pytest.mark.parametrize(
    "comment",
    [
        "  # noqa: BL002",
        "  # noqa:BL002",
        "  # NOQA: BL002, E501",
        "  # noqa: E501 BL002",
        "  # noqa",
        "  # bufferlint: ignore[BL002]",
        "  # bufferlint: ignore",
        "  # type: ignore  # noqa: BL002",
        "  # bufferlint: noqa",  # at the end of a line: acts on that line
    ],
)
def test_directive_on_the_class_line_suppresses(tmp_path, comment):
    assert codes(tmp_path, comment) == []


def test_other_codes_and_lines_do_not_suppress(tmp_path):
    assert codes(tmp_path, "  # noqa: BL001") == [("BL002", 5), ("BL100", 5)]
    assert codes(tmp_path, "  # noqa: E501") == [("BL002", 5)]  # not ours: never BL100
    # The build line is not where a finding is suppressed (documented).
    assert codes(tmp_path, build_comment="  # noqa: BL002") == [("BL002", 5), ("BL100", 8)]


def test_directive_text_inside_a_string_is_not_a_directive(tmp_path):
    source = MODULE.format(comment="", build_comment="") + 'NOTE = "# noqa: BL002"\n'
    assert [c for c, _, _ in findings(tmp_path, source)] == ["BL002"]
    assert parse('x = "# noqa"\ny = 1  # noqa\n').lines.keys() == {2}


@pytest.mark.parametrize(
    "header",
    ["# bufferlint: noqa\n", "# bufferlint: noqa: BL002\n", "#bufferlint:noqa:BL002\n"],
)
def test_file_level_exemption(tmp_path, header):
    source = header + MODULE.format(comment="", build_comment="")
    assert findings(tmp_path, source) == []


def test_file_level_exemption_with_other_codes_keeps_the_finding(tmp_path):
    source = "# bufferlint: noqa: BL001\n" + MODULE.format(comment="", build_comment="")
    assert [c for c, _, _ in findings(tmp_path, source)] == ["BL002"]


def test_unused_directives_are_reported(tmp_path):
    source = (
        "x = 1  # noqa: BL002\n"
        "y = 2  # noqa: BL002, BL001, BL09, E501\n"
        "z = 3  # bufferlint: ignore\n"
        "w = 4  # bufferlint: ignore[BL001]\n"
        "v = 5  # noqa\n"
    )
    got = findings(tmp_path, source)
    assert got == [
        ("BL100", 1, "Unused `noqa` directive (unused: `BL002`)"),
        ("BL100", 2, "Unused `noqa` directive (unused: `BL002`, `BL001`; unknown: `BL09`)"),
        ("BL100", 3, "Unused blanket `bufferlint: ignore` directive"),
        ("BL100", 4, "Unused `bufferlint: ignore` directive (unused: `BL001`)"),
    ]


def test_unused_report_location(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("x = 1  # noqa: BL002\n")
    [finding] = lint([str(path)], Settings()).findings
    assert (finding.line, finding.column, finding.end_column) == (1, 8, 21)


def test_bl100_can_be_silenced(tmp_path):
    assert codes(tmp_path, "  # noqa: BL001, BL100") == [("BL002", 5)]
    assert codes(tmp_path, "  # noqa: BL001", select=frozenset({"BL001", "BL002"})) == [
        ("BL002", 5)
    ]
    ignored = (("m.py", frozenset({"BL100"})),)
    assert codes(tmp_path, "  # noqa: BL001", per_file_ignores=ignored) == [("BL002", 5)]
    assert findings(tmp_path, "# bufferlint: noqa\nx = 1  # noqa: BL002\n") == []


def test_codes_of_rules_that_did_not_run_are_not_reported(tmp_path):
    only_bl001 = frozenset({"BL001", "BL100"})
    assert codes(tmp_path, "  # noqa: BL002", select=only_bl001) == []


def test_per_file_ignores_do_not_count_as_a_use(tmp_path):
    ignored = (("*.py", frozenset({"BL002"})),)
    assert codes(tmp_path, "  # noqa: BL002", per_file_ignores=ignored) == [("BL100", 5)]


def test_unparsable_file_gets_no_bl100(tmp_path):
    got = findings(tmp_path, "x = 1  # noqa: BL002\nclass :\n")
    assert [code for code, _, _ in got] == [None]


def test_stdin_text_is_read_for_directives(tmp_path):
    text = MODULE.format(comment="  # noqa: BL002", build_comment="")
    assert lint_source(str(tmp_path / "m.py"), text, Settings()).findings == []
    result = CliRunner().invoke(
        main,
        ["-", "--stdin-filename", str(tmp_path / "m.py"), "--output-format", "json"],
        input=MODULE.format(comment="  # noqa: BL001", build_comment=""),
    )
    assert [i["code"] for i in json.loads(result.stdout)] == ["BL002", "BL100"]
