"""The findings on fixtures/static (and fixtures/transformers, which `auto` judges under the
transformers convention) must match the markers written in the fixtures."""

import re
from pathlib import Path

import pytest

from bufferlint.conventions import select
from bufferlint.engine import Settings, lint

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "static"
TRANSFORMERS = FIXTURES.parent / "transformers"
EXPECT = re.compile(r"#\s*expect:\s*(BL\d+)((?:\s+\w+)+)")
BUILT = re.compile(r"#\s*built:\s*(\w+)")


def expected(root: Path = FIXTURES) -> set[tuple[str, int, str, tuple[str, ...]]]:
    out = set()
    for path in sorted(root.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = EXPECT.search(line)
            if match:
                buffers = tuple(sorted(match.group(2).split()))
                out.add((str(path), number, match.group(1), buffers))
    return out


@pytest.fixture(scope="module")
def findings():
    return lint([str(FIXTURES)], Settings()).findings


def test_findings_match_markers(findings):
    got = {(f.path, f.line, f.code, tuple(sorted(f.buffer_names))) for f in findings}
    assert got == expected()


def test_transformers_findings_match_markers():
    found = lint([str(TRANSFORMERS)], Settings()).findings
    got = {(f.path, f.line, f.code, tuple(sorted(f.buffer_names))) for f in found}
    assert got == expected(TRANSFORMERS)
    assert {f.convention for f in found} == {"transformers"}


def test_build_lines_carry_markers(findings):
    for finding in findings:
        for site in finding.buffers:
            line = Path(site.path).read_text().splitlines()[site.line - 1]
            assert BUILT.search(line) and BUILT.search(line).group(1) == site.name, (
                f"{finding.class_name}: {site.name} reported as built at {site.path}:{site.line}"
            )


def test_one_finding_per_class_sorted(findings):
    keys = [(f.path, f.line) for f in findings]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_persistence_is_reported(findings):
    by_class = {f.class_name: f for f in findings}
    gpt = by_class["GPT"]
    assert [(b.name, b.persistent) for b in gpt.buffers] == [("cos", False), ("sin", False)]
    assert "checkpoint cannot restore non-persistent" in gpt.message
    assert 'not hasattr(self, "cos")' in gpt.message
    nn_buffer = by_class["NnBuffer"]
    assert {b.name: b.persistent for b in nn_buffer.buffers} == {"a": True, "b": False, "c": True}


def test_cross_file_site_names_the_file(findings):
    child = next(f for f in findings if f.class_name == "RelativeChild")
    assert child.buffers[0].path.endswith("pkg/base.py")
    assert "line 9 of ../base.py" in child.message


def test_custom_hook_name(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "import torch\nfrom torch import nn\n\n"
        "class A(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.register_buffer('a', torch.ones(2))\n\n"
        "    def init_weights(self):\n"
        "        self.a.fill_(1.0)\n"
    )
    assert [f.code for f in lint([str(source)], Settings()).findings] == ["BL002"]
    assert (
        lint(
            [str(source)], Settings(convention=select("reset-methods", ("init_weights",)))
        ).findings
        == []
    )
    both = lint(
        [str(source)],
        Settings(convention=select("reset-methods", ("reset_parameters", "init_weights"))),
    ).findings
    assert both == []


def test_lazily_parses_ancestors_outside_the_linted_files():
    # Linting one file still resolves its base class in a sibling module.
    target = FIXTURES / "pkg" / "layers" / "attention.py"
    findings = lint([str(target)], Settings()).findings
    assert {f.class_name for f in findings} == {"RelativeChild", "ReExportedChild"}
