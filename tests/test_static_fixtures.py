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


def test_messages_of_the_rules_beyond_buffers(findings):
    by_class = {f.class_name: f for f in findings}
    first_fix = by_class["FirstFix"].message
    assert "with `self.rope_cache()` (line 24), which leaves `rope_cache`'s `device`" in first_fix
    assert "pass `device=self.cos.device`" in first_fix
    assert "made on the default device" in by_class["ReRegisters"].message
    alias = by_class["AliasOfBuffer"]
    assert alias.code == "BL004" and "aliases buffer `inv_freq`" in alias.message
    assert "has no `reset_parameters`" in by_class["RegisteredFrozen"].message
    assert "does not rebuild frozen parameter `freqs`" in by_class["FrozenFreqs"].message
    shifts = by_class["ShiftsPositions"].message
    assert "relative to its current value (line 15)" in shifts
    assert "reads the garbage it means to repair" in shifts


TORCHTITAN = """\
import torch
from torch import nn


class Rope(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.register_buffer("freqs", self._freqs(), persistent=False)
        self.scale = nn.Parameter(torch.ones(n), requires_grad=False)

    def _freqs(self, device=None) -> torch.Tensor:
        return torch.arange(self.n, device=device).float()

    def init_weights(self, buffer_device=None) -> None:
        buffer_device = buffer_device or self.freqs.device
        with torch.device(buffer_device):
            self.freqs = self._freqs()
        with torch.no_grad():
            self.scale.fill_(1.0)

    def reset_parameters(self) -> None:
        self.freqs = self._freqs()
"""


def test_rules_beyond_buffers_judge_the_conventions_hooks(tmp_path):
    """The same class under two conventions: `init_weights` places its rebuild and
    rebuilds the frozen parameter; `reset_parameters` does neither."""
    path = tmp_path / "rope.py"
    path.write_text(TORCHTITAN)
    assert lint([str(path)], Settings()).findings == []  # auto: torchtitan's own root
    default = lint([str(path)], Settings(convention=select("reset-parameters", None))).findings
    assert sorted(f.code for f in default) == ["BL003", "BL005"]
    titan = Settings(convention=select("reset-methods", ("init_weights",)))
    assert lint([str(path)], titan).findings == []


def test_tensor_rules_agree_with_and_without_the_prefilter(tmp_path):
    """A tensor attribute opens a class to the rules only where the prefilter sees it: in
    the class's own statement or a parent's, in any file."""
    (tmp_path / "base.py").write_text(
        "import torch\nfrom torch import nn\n\n\nclass Base(nn.Module):\n"
        "    def __init__(self, n):\n        super().__init__()\n"
        "        self.ids = torch.arange(n)\n"
    )
    (tmp_path / "child.py").write_text(
        "import torch\nfrom base import Base\n\n\nclass Child(Base):\n"
        "    def __init__(self, n):\n        super().__init__(n)\n"
        "        table = torch.zeros(n)\n        self.table = table\n\n\n"
        "class Alone(torch.nn.Module):\n    def __init__(self, n):\n"
        "        super().__init__()\n        t = torch.ones(n)\n        self.t = t\n"
    )
    runs = [
        {(f.class_name, tuple(f.buffer_names)) for f in lint([str(tmp_path)], s).findings}
        for s in (Settings(), Settings(prefilter=False))
    ]
    assert runs[0] == runs[1] == {("Base", ("ids",)), ("Child", ("table",))}
