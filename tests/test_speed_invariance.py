"""The speed-ups never change findings: prefilter on or off, cache cold or warm, one
process or a pool. Checked on the repository's fixtures and on a project written to
hit each way the prefilter could go wrong (classes whose files hold no buffer token)."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from bufferlint import engine, jobs, partial, pool, prefilter, reading
from bufferlint.engine import Settings, lint
from bufferlint.findings import Finding
from bufferlint.model import Lookup

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

# Each file of the synthetic project, by path. `lib/` is under the same import root but
# not linted: the class model still reads it when a linted class inherits from it.
PROJECT = {
    "lib/__init__.py": "",
    "lib/layers.py": """
        import torch
        from torch import nn

        class LibRope(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.register_buffer("inv_freq", torch.arange(dim).float(), persistent=False)
    """,
    "lib/reexport.py": """
        from app.builders import Builder as Renamed  # an alias outside the linted files
    """,
    "lib/plain.py": """
        import abc

        class PlainBase(abc.ABC):
            def go(self):
                self.table = 0

        class Mixin:
            pass
    """,
    "lib/torchy.py": """
        from torch import nn

        class TorchyBase(nn.Module):
            pass
    """,
    "app/__init__.py": "",
    # Factory tensors in plain attributes (BL004 tokens): only the modules may report,
    # and the prefilter tells which from headers (lib/plain.py needs no parse).
    "app/holders.py": """
        import torch
        from torch import nn
        from lib.plain import Mixin, PlainBase
        from lib.torchy import TorchyBase

        class NotModule(PlainBase):
            def __init__(self):
                self.table = torch.zeros(3)

        class AlsoNot(Mixin, object):
            def __init__(self):
                self.table = torch.zeros(3)

        class ModuleByBase(TorchyBase):
            def __init__(self):
                super().__init__()
                self.table = torch.zeros(3)

        class ModuleByMixin(Mixin, nn.Module):
            def __init__(self):
                super().__init__()
                self.table = torch.zeros(3)
    """,
    "app/shadow.py": """
        import torch
        from lib.torchy import TorchyBase

        class TorchyBase(TorchyBase):  # the import's class is the base, as in modular files
            def __init__(self):
                super().__init__()
                self.table = torch.zeros(3)
    """,
    "app/builders.py": """
        import torch
        from torch import nn

        class HookBase(nn.Module):
            def reset_parameters(self):
                pass

        class Helper:
            def setup(self):
                self.ready = True

        class Builder(nn.Module):
            def __init__(self, n):
                super().__init__()
                self.n = n

            def build(self):
                self.register_buffer("table", torch.arange(self.n), persistent=False)

            def reset_parameters(self):
                pass

        class Outer:
            class Inner(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.register_buffer("mask", torch.ones(3))

        def make():
            class Local(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.cache = nn.Buffer(torch.zeros(2))
            return Local
    """,
    # No buffer token in any of these files: each class inherits what it builds.
    "app/calls_helper.py": """
        from app.builders import Builder

        class CallsHelper(Builder):
            def __init__(self, n):
                super().__init__(n)
                self.build()
    """,
    "app/aliased.py": """
        from app import builders as b
        from app.builders import Builder as Base

        class ViaAlias(Base):
            def __init__(self, n):
                super().__init__(n)
                self.build()

        class ViaModule(b.Builder):
            def __init__(self, n):
                super().__init__(n)
                self.build()

        class NestedChild(b.Outer.Inner):
            def reset_parameters(self):
                pass
    """,
    "app/chain.py": """
        from app.calls_helper import CallsHelper

        class Grandchild(CallsHelper):
            def reset_parameters(self):
                pass
    """,
    "app/renamed.py": """
        from lib.reexport import Renamed

        class ThroughLib(Renamed):
            def __init__(self, n):
                super().__init__(n)
                self.build()
    """,
    "app/uses_lib.py": """
        from lib.layers import LibRope

        class MyRope(LibRope):
            def reset_parameters(self):
                pass
    """,
    "app/hooked.py": """
        import torch
        from app.builders import Helper, HookBase as H

        class Hooked(H):
            def __init__(self):
                super().__init__()
                self.register_buffer("x", torch.ones(2))
                Helper.setup(self)
    """,
    "app/mentions.py": '''
        import torch
        from torch import nn

        # class Later is defined below: its position must not come from this comment.

        class Early(nn.Module):
            """Not class Later either."""

        class Later(nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("b", torch.ones(1))
    ''',
    "app/aliases_buffer.py": """
        import torch
        from torch.nn import Buffer as B
        from torch import nn

        class AliasBuffer(nn.Module):
            def __init__(self):
                super().__init__()
                self.k = B(torch.ones(1))
    """,
    "app/broken.py": """
        import torch
        from torch import nn

        class Broken(nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("b", torch.ones(1)
    """,
    "app/suppressed.py": """
        import torch
        from torch import nn

        class Quiet(nn.Module):  # noqa: BL002
            def __init__(self):
                super().__init__()
                self.register_buffer("b", torch.ones(1))

        x = 1  # noqa: BL001
    """,
    "app/unused_directive.py": """
        y = 2  # bufferlint: ignore[BL002]
    """,
    "app/broken_elsewhere.py": """
        import torch
        from torch import nn

        class Fine(nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("b", torch.ones(1))

        def helper(:
            pass
    """,
    "app/broken_plain.py": """
        class :
            pass
    """,
    "app/newer_syntax.py": """
        type Alias = int  # Python 3.12: CPython 3.11 rejects it, LibCST does not

        class Plain:
            pass
    """,
    "scripts_a/model.py": """
        import torch
        from torch import nn

        class Same(nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("a", torch.ones(1))
    """,
    "scripts_b/model.py": """
        from torch import nn

        class Same(nn.Module):
            pass
    """,
}


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))


def _key(finding: Finding) -> tuple:
    return (
        finding.path,
        finding.line,
        finding.column,
        finding.code,
        finding.message,
        finding.class_name,
        tuple(finding.buffers),
    )


def _findings(paths: list[str], **options: object) -> list[tuple]:
    return [_key(f) for f in lint(paths, Settings(**options)).findings]  # type: ignore[arg-type]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _write(tmp_path, PROJECT)
    monkeypatch.chdir(tmp_path)  # the cache goes to tmp_path/.bufferlint_cache
    return tmp_path


def _linted(root: Path) -> list[str]:
    return [str(root / "app"), str(root / "scripts_a"), str(root / "scripts_b")]


def test_project_reports_what_only_inheritance_builds(project: Path) -> None:
    findings = _findings(_linted(project), prefilter=False)
    reported = {key[5] for key in findings}
    assert {"CallsHelper", "ViaAlias", "ViaModule", "NestedChild", "Grandchild"} <= reported
    assert {"ThroughLib", "MyRope", "Hooked", "Later", "AliasBuffer"} <= reported
    assert {"Outer.Inner", "make.<locals>.Local", "Same"} <= reported
    assert "Builder" not in reported  # its own __init__ never builds
    assert {"ModuleByBase", "ModuleByMixin", "TorchyBase"} <= reported
    assert not {"NotModule", "AlsoNot"} & reported
    assert "Fine" not in reported  # its file does not parse: only that is reported
    assert "Quiet" not in reported and "BL100" in {key[3] for key in findings}
    unparsable = {Path(key[0]).name for key in findings if key[3] is None}
    assert unparsable == {"broken.py", "broken_elsewhere.py", "broken_plain.py"}


@pytest.mark.parametrize("jobs", [1, 2])
def test_prefilter_changes_nothing(project: Path, monkeypatch: pytest.MonkeyPatch, jobs: int):
    monkeypatch.setattr(pool, "POOL_BYTES", 0)  # use the pool even for a few files
    reference = _findings(_linted(project), prefilter=False, jobs=1)
    assert _findings(_linted(project), jobs=jobs) == reference


def test_cache_changes_nothing(project: Path) -> None:
    reference = _findings(_linted(project), prefilter=False)
    assert _findings(_linted(project), cache=True) == reference  # cold
    assert (project / ".bufferlint_cache" / ".gitignore").read_text().strip().endswith("*")
    assert _findings(_linted(project), cache=True) == reference  # warm: the run record
    assert _findings(_linted(project)[:1], cache=True) == _findings(_linted(project)[:1])


def _age(root: Path) -> None:
    """Dates every file and folder a minute back: a fresh mtime is not trusted."""
    past = time.time() - 60
    for path in [root, *root.rglob("*")]:
        os.utime(path, (past, past))


def test_unchanged_run_is_answered_without_a_walk(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _linted(project)
    _age(project)
    reference = _findings(paths, cache=True)
    _age(project)  # the cache folder is new: its parent's mtime moved
    _findings(paths, cache=True)  # stores the layout
    monkeypatch.setattr(engine, "discover", None)  # answered from the record alone
    assert _findings(paths, cache=True) == reference
    monkeypatch.undo()
    (project / "app" / "extra.py").write_text(
        "from app.builders import Builder\n\nclass Extra(Builder):\n"
        "    def __init__(self, n):\n        super().__init__(n)\n        self.build()\n"
    )
    after = _findings(paths, cache=True)  # a new file: the folder's mtime says so
    assert after == _findings(paths, prefilter=False) != reference


def test_cache_sees_edits(project: Path) -> None:
    paths = _linted(project)
    before = _findings(paths, cache=True)
    helper = project / "app" / "calls_helper.py"
    helper.write_text(helper.read_text().replace("self.build()", "pass"))
    after = _findings(paths, cache=True)
    assert after == _findings(paths, prefilter=False) != before
    lib = project / "lib" / "layers.py"  # not linted, but read: an edit counts too
    lib.write_text(lib.read_text().replace("self.register_buffer", "self.plain = 1 or print"))
    assert _findings(paths, cache=True) == _findings(paths, prefilter=False) != after


def test_stale_bytecode_is_no_proof(project: Path) -> None:
    """A fresh `.pyc` stands for a syntax check; one older than its source does not."""
    import py_compile

    source = project / "app" / "compiled.py"
    source.write_text("x = 1\n")
    py_compile.compile(str(source))
    source.write_text("x = (\n")
    paths = _linted(project)
    unparsable = [key for key in _findings(paths) if key[0] == str(source)]
    assert unparsable and unparsable == [
        k for k in _findings(paths, prefilter=False) if k[0] == str(source)
    ]


def test_lazy_classes_are_parsed_on_demand(project: Path) -> None:
    """`Helper` is no ancestor, so the prefilter leaves it out; the class model still
    looks it up (for `Helper.setup(self)`), and then gets it."""
    from bufferlint.prefiltered import PrefilteredRun

    run = PrefilteredRun(_linted(project), engine.discover(_linted(project)), Settings())
    builders = (str(project / "app" / "builders.py"), "app.builders", False)
    assert any(f.class_name == "Hooked" for f in run.result().findings)
    assert run.project is not None
    assert "app.builders.Helper" in run.project.classes
    assert run.files.parsed[builders].whole is None  # parsed in parts, Helper's on demand


def test_classes_that_cannot_be_modules_are_not_parsed(project: Path) -> None:
    """Whether a class with a factory's tokens can be a module shows in headers: no base
    leads to torch or to a builder. Such classes and their bases are left unparsed."""
    from bufferlint.prefiltered import PrefilteredRun

    run = PrefilteredRun(_linted(project), engine.discover(_linted(project)), Settings())
    reported = {f.class_name for f in run.result().findings}
    assert {"ModuleByBase", "ModuleByMixin", "TorchyBase"} <= reported
    parsed = {key[1]: found for key, found in run.files.parsed.items()}
    assert {c.name for c in parsed["lib.plain"].classes()} == {"Mixin"}  # ModuleByMixin's
    holders = parsed["app.holders"].classes()
    assert {c.name for c in holders} == {"ModuleByBase", "ModuleByMixin"}


@pytest.mark.parametrize("jobs", [1, 2])
def test_fixtures_agree(jobs: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "POOL_BYTES", 0)
    paths = [str(FIXTURES)]
    assert _findings(paths, jobs=jobs) == _findings(paths, prefilter=False, jobs=1)


def test_statements_split_where_python_does() -> None:
    text = textwrap.dedent(
        '''
        """Doc
        class NotHere(Base):
        """
        import os
        @decorator(
            "x",
        )
        class A(Base):
            x = """
        class Inside:
        """
        def f(a,
        b):
            pass
        x = [
        1]
        if x:
            pass
        else:
            pass
        '''
    ).lstrip("\n")
    starts = prefilter.statements(text)
    lines = prefilter.first_lines(text, starts)
    assert lines == [1, 4, 5, 12, 15, 17]


def test_reduced_text_keeps_lines() -> None:
    text = "import a\n\nx = 1\ny = 2\n\n\nclass C(a.B):\n    pass\n"
    index = prefilter.index(text)
    index.split(text)
    assert index.starts is not None
    reduced = partial.reduced(text, index.starts, {0, 3})
    assert reduced.count("\n") == text.count("\n")
    assert reduced.splitlines()[6] == "class C(a.B):"


IMPORT_ORDER = '''\
"""A file whose imports bind names before, between and after its classes."""
import torch
from torch import nn
from . import sibling
from .sibling import *

if TYPE_CHECKING:
    from .types import Hint as nn_hint

class First(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("a", torch.zeros(2))
        nn.init.zeros_(self.a)

def helper():
    import elsewhere as nn  # a function's import binds nothing at module level

try:
    import fast as nn
except ImportError:
    pass

class Second(nn.Module, nn_hint):
    def __init__(self):
        super().__init__()
        self.register_buffer("b", torch.zeros(2))

from torch import nn
import torch.nn.functional as F'''


def test_partial_imports_take_effect_where_they_stood() -> None:
    """Import statements left to CPython's parser bind what LibCST would have, at the
    same point: each class alone gets the facts of the whole-file parse."""
    from bufferlint.extract import extract

    whole = extract(IMPORT_ORDER, "pkg/mod.py", "pkg.mod", False)
    index = prefilter.index(IMPORT_ORDER, split=True)
    assert index.starts is not None and len(index.starts) > 5
    classes = {n for n, flag in enumerate(index.flags) if flag & prefilter.CLASS}
    for number in classes:
        parsed = partial.parse(IMPORT_ORDER, "pkg/mod.py", "pkg.mod", False, index, {number})
        assert parsed.whole is None  # really parsed in part
        assert parsed.imports == whole.imports
        assert parsed.star_imports == whole.star_imports
        expected = [c for c in whole.classes if c.name in index.names_in(number)]
        assert parsed.statements[number] == expected
    assert [c.bases for c in whole.classes] == [
        ["torch.nn.Module"],
        ["fast.Module", "pkg.types.Hint"],
    ]


def _fix_outcomes(
    paths: list[str],
    from_lint: bool,
    *,
    jobs: int = 1,
    edits: bool = True,
    kept: bool = False,
    lint_jobs: int = 1,
) -> list[tuple]:
    """Each finding with its fix, planned from the lint's own class model and split
    indexes or (not `from_lint`) from the files with findings parsed whole. `kept`: as
    the CLI plans them, while the lint runs, on the trees its processes kept (with
    `lint_jobs` > 1 and a pool, in the lint's workers)."""
    from bufferlint.fix import attach_fixes

    fix_settings = Settings(cache=False, jobs=jobs)
    if kept:

        def finish(result: Any, project: Any, splits: Any, workers: Any) -> None:
            attach_fixes(result, fix_settings, False, project, edits, splits, workers)

        result = lint(paths, Settings(cache=False, jobs=lint_jobs), finish)
    else:
        models = []
        result = lint(paths, Settings(cache=False), lambda _, *model: models.append(model[:2]))
        project, splits = models[0] if from_lint else (None, None)
        assert not from_lint or splits, "the lint hands over its split indexes"
        attach_fixes(result, fix_settings, False, project, edits, splits)
    return [(*_key(f), f.message, f.fix, sorted(f.extra.items())) for f in result.findings]


def test_fix_planning_shortcuts_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fixes planned from the lint's model, without edits, or from a file index that
    parses one top-level statement at a time: all as from whole files."""
    from bufferlint.fix.chunks import Chunks

    paths = [str(FIXTURES / "static"), str(ROOT / "tests" / "fix_cases")]
    reference = _fix_outcomes(paths, from_lint=False)
    assert sum(1 for outcome in reference if outcome[-2]) >= 10  # fixes, with edits
    assert _fix_outcomes(paths, from_lint=True) == reference
    without = _fix_outcomes(paths, from_lint=True, edits=False)
    assert [o[:-2] for o in without] == [o[:-2] for o in reference]
    for plain, full in zip(without, reference, strict=True):
        assert (plain[-2] is None) == (full[-2] is None)
        if full[-2] is not None:
            assert plain[-2] == {**full[-2], "edits": None}
    whole_init = Chunks.__init__

    def parsed_whole(self: Chunks, *args: object) -> None:
        whole_init(self, *args)  # type: ignore[arg-type]
        self.starts, self.lines = [0], [1]  # one chunk: the whole file

    monkeypatch.setattr(Chunks, "__init__", parsed_whole)
    assert _fix_outcomes(paths, from_lint=True) == reference


def test_fixes_planned_on_the_lints_trees_change_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fixes planned on the trees the lint kept, in its own process or in the worker that
    parsed each file, with a copy of the class model: as from whole files. Where the copy
    lacks what a plan looks up, the main process plans that finding, the same way."""
    from bufferlint import trees
    from bufferlint.fix import session, settled
    from bufferlint.fix.chunks import Chunks

    paths = [str(FIXTURES / "static"), str(ROOT / "tests" / "fix_cases")]
    reference = _fix_outcomes(paths, from_lint=False)
    adopted: list[int] = []
    adopt = Chunks._adopt

    def counted_adopt(self: Chunks, number: int) -> Any:
        chunk = adopt(self, number)
        adopted.append(chunk is not None)
        return chunk

    monkeypatch.setattr(Chunks, "_adopt", counted_adopt)
    assert _fix_outcomes(paths, from_lint=True, kept=True) == reference
    assert sum(adopted) >= 20  # in this process: the in-process lint's trees
    assert not trees._kept, "the trees go once the lint returns"

    in_workers: list[tuple[int, int]] = []
    attach_in_workers = session._attach_in_workers

    def counted(findings: Any, *args: Any) -> Any:
        left = attach_in_workers(findings, *args)
        in_workers.append((len(findings), len(left)))
        return left

    monkeypatch.setattr(pool, "POOL_BYTES", 0)  # a pool even for a few files
    monkeypatch.setattr(session, "_attach_in_workers", counted)
    assert _fix_outcomes(paths, from_lint=True, kept=True, lint_jobs=2) == reference
    [(planned, left)] = in_workers
    assert planned >= 20 and left < planned // 4

    in_workers.clear()
    monkeypatch.setattr(settled, "Lookup", _AsksBack)  # a copy that settles no lookup
    assert _fix_outcomes(paths, from_lint=True, kept=True, lint_jobs=2) == reference
    [(planned, left)] = in_workers
    assert left == planned


class _AsksBack(Lookup):
    """A lookup that hands every name it lacks to `find`, findable or not."""

    def __call__(self, name: str) -> bool:
        return self.find(name)


# Classes whose trees the lint keeps side by side in one partial parse: B's comment lines
# fall to it there (not to A, as when B is parsed alone), and C's indentation differs
# from the first class's, which sets the indentation of the code a fix adds.
SIDE_BY_SIDE = """
import torch
from torch import nn


class A(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("a", torch.zeros(2))
# about B


class B(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("b", torch.ones(3))

    def reset_parameters(self):
        pass


class C(nn.Module):
  def __init__(self):
    super().__init__()
    self.register_buffer("c", torch.full((2,), 0.5))
"""


def test_kept_trees_stand_in_only_where_they_parse_as_the_statement_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bufferlint.fix.chunks import Chunks

    (tmp_path / "side.py").write_text(SIDE_BY_SIDE)
    paths = [str(tmp_path / "side.py")]
    reference = _fix_outcomes(paths, from_lint=False)
    assert [outcome[-2] is not None for outcome in reference] == [True, True, True]
    adopted: dict[int, bool] = {}
    adopt = Chunks._adopt

    def recorded(self: Chunks, number: int) -> Any:
        chunk = adopt(self, number)
        adopted[self.lines[number]] = chunk is not None
        return chunk

    monkeypatch.setattr(Chunks, "_adopt", recorded)
    assert _fix_outcomes(paths, from_lint=True, kept=True) == reference
    assert adopted == {6: True, 13: True, 22: False}  # A, B (its comment left out), not C


def test_trees_kept_within_the_budget_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from bufferlint import trees

    paths = [str(FIXTURES / "static"), str(ROOT / "tests" / "fix_cases")]
    reference = _fix_outcomes(paths, from_lint=False)
    monkeypatch.setattr(trees, "LINES_KEPT", 30)
    assert _fix_outcomes(paths, from_lint=True, kept=True) == reference


REMEMBERED = {
    "pkg/__init__.py": "",
    "pkg/base.py": """
        import torch
        from torch import nn

        class Base(nn.Module):
            def make_table(self):
                self.register_buffer("table", torch.arange(4))
    """,
    "pkg/child.py": """
        from pkg.base import Base

        class Child(Base):
            def __init__(self):
                super().__init__()
                self.make_table()
    """,
    "pkg/other.py": """
        import torch
        from torch import nn

        class Other(nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("mask", torch.ones(3))
    """,
}


def test_remembered_fixes_follow_the_files_they_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fix planned in an earlier run is reused only while every file its planning read
    is unchanged, even one that is not the finding's own: then it equals a fresh plan."""
    import json

    from click.testing import CliRunner

    from bufferlint.cli import main
    from bufferlint.fix import session

    _write(tmp_path, REMEMBERED)
    monkeypatch.chdir(tmp_path)
    planned: list[str] = []
    plan_one = session._attach_one
    monkeypatch.setattr(
        session,
        "_attach_one",
        lambda finding, *rest: (planned.append(finding.class_name), plan_one(finding, *rest)),
    )

    def run(*flags: str) -> list[dict]:
        planned.clear()
        args = ["pkg", "--jobs", "1", "--output-format", "json", *flags]
        return json.loads(CliRunner().invoke(main, args).output)

    run()  # remembers both fixes
    with open("pkg/other.py", "a") as handle:
        handle.write("# an edit elsewhere\n")
    remembered = run()
    assert planned == ["Other"]  # Child's fix came from the cache
    assert remembered == run("--no-cache")
    base = Path("pkg/base.py")
    base.write_text(base.read_text().replace("arange(4)", "arange(8)"))  # Child's parent
    replanned = run()
    assert planned == ["Child"]
    assert replanned == run("--no-cache")


def test_fix_planning_keeps_few_files_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planning the fixes of many files keeps only a few of them parsed at a time, so
    memory stays flat on huge trees; and what it plans does not depend on which it kept."""
    import gc
    import weakref

    from bufferlint.fix import session, workspace
    from bufferlint.fix.index import SourceIndex

    paths = [str(FIXTURES / "static"), str(ROOT / "tests" / "fix_cases")]
    reference = _fix_outcomes(paths, from_lint=True)
    monkeypatch.setattr(workspace, "KEPT_INDEXES", 2)
    live: weakref.WeakSet[SourceIndex] = weakref.WeakSet()
    init = SourceIndex.__init__

    def tracked(self: SourceIndex, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        live.add(self)

    counts: list[int] = []
    attach_one = session._attach_one

    def counted(*args: Any) -> None:
        gc.collect()
        counts.append(len(live))
        attach_one(*args)

    monkeypatch.setattr(SourceIndex, "__init__", tracked)
    monkeypatch.setattr(session, "_attach_one", counted)
    assert _fix_outcomes(paths, from_lint=True) == reference
    assert len(counts) >= 10 and max(counts) <= 2


def test_scan_record_keeps_only_this_projects_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Linting another project from the same folder drops the other's file records from
    every shard of the record it loads: what a run loads does not grow with each tree
    ever linted there."""
    from bufferlint.cache import Cache, location, shard_of

    files = {"pkg/__init__.py": ""} | {f"pkg/m{n}.py": "x = 1\n" for n in range(40)}
    for name in ("one", "two"):
        _write(tmp_path / name, files)
    monkeypatch.chdir(tmp_path)
    lint([str(tmp_path / "one")], Settings(cache=True))
    lint([str(tmp_path / "two")], Settings(cache=True))
    cache = Cache(location())
    read = {shard_of(str(path)) for path in (tmp_path / "two").rglob("*.py")}
    records = {path for shard in read for path in cache.load_scan(shard)}
    assert len(records) == len(files)
    assert all(path.startswith(str(tmp_path / "two")) for path in records)


def test_a_run_over_one_file_loads_the_records_of_the_files_it_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pre-commit lints a few files with the cache of runs over the whole tree: it must
    not pay for loading (and writing back) the records of every file in the tree."""
    from bufferlint.cache import Cache

    files = {"pkg/__init__.py": ""} | {f"pkg/m{n}.py": "x = 1\n" for n in range(300)}
    _write(tmp_path / "proj", files)
    monkeypatch.chdir(tmp_path)
    lint([str(tmp_path / "proj")], Settings(cache=True))
    loaded: list[str] = []
    load = Cache.load_scan

    def counted(self: Cache, *args: str) -> dict:
        records = load(self, *args)
        loaded.extend(records)
        return records

    monkeypatch.setattr(Cache, "load_scan", counted)
    one = tmp_path / "proj" / "pkg" / "m7.py"
    one.write_text("y = 2\n")
    assert lint([str(one)], Settings(cache=True)).findings == []
    assert str(one) in loaded
    assert len(loaded) < 12  # a shard's worth (301 records in 256 shards), not the tree's


def test_fixer_trusts_the_lints_nesting_check_only_for_the_same_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fixer skips CPython's nesting check for a statement only when the lint found
    that CPython parsed this very text (LibCST can crash the process on deep nesting)."""
    from bufferlint import parsing
    from bufferlint.cache import digest_of
    from bufferlint.facts import FileFacts
    from bufferlint.fix.index import SourceIndex

    text = "import torch\n\n\nclass A:\n    x = 1\n\n\nclass B:\n    y = 2\n"
    checked: list[str] = []
    check = parsing.check_nesting
    monkeypatch.setattr(parsing, "check_nesting", lambda s: (checked.append(s), check(s)))
    digest = digest_of(text.encode())
    for compiled, expected in ((digest, 0), ("", 1), (digest_of(b"other"), 1)):
        checked.clear()
        index = SourceIndex(text, FileFacts("m.py", "m", compiled=compiled))
        assert index.class_at(8, 7) is not None  # parses statement 3 alone
        assert len(checked) == expected


def test_index_gone_whole_finds_only_nodes_of_the_whole_parse() -> None:
    """When a statement cannot be parsed alone the file is parsed whole; a class looked up
    after that is a node of the whole parse, one a fix can be rendered into."""
    from bufferlint.extract import extract
    from bufferlint.fix.index import SourceIndex

    text = textwrap.dedent(
        """\
        import torch
        from torch import nn


        class A(nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("a", torch.zeros(2))
        """
    )
    facts = extract(text, "m.py", "m")
    cls = facts.classes[0]
    index = SourceIndex(text, facts)
    alone = index.class_at(cls.line, cls.column)
    index.chunks.whole()  # as when another statement's text does not parse alone
    whole = index.class_at(cls.line, cls.column)
    assert whole is not None and whole is not alone
    assert whole in [statement for _, statement in index.top_level()]


def test_a_file_changed_between_scan_and_parse_is_scanned_again(tmp_path: Path) -> None:
    """A worker reads a scanned file again for its text: the scan's index is reused only
    while the text is the one scanned. The scan goes back only where it changed."""
    path = tmp_path / "model.py"
    path.write_text("import torch\n\n\nclass Old(torch.nn.Module):\n    pass\n")
    scan, _ = reading.read(str(path), check=True)
    path.write_text(
        "import torch\n\n\nclass New(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        '        self.register_buffer("b", torch.ones(2))\n'
    )
    job = jobs.Job(str(path), (str(path), "model", False), scan, tokens=True)
    outcome = jobs.work(job)
    assert outcome.scan is not None and outcome.scan.digest != scan.digest
    assert outcome.parsed is not None
    assert [c.name for c in outcome.parsed.classes()] == ["New"]
    unchanged = jobs.work(jobs.Job(str(path), job.key, outcome.scan, tokens=True))
    assert unchanged.scan is None  # the main process holds it: not sent back
    # A scan split only now (no token: the scan did not split it) goes back, split.
    path.write_text("import torch\n\n\nclass Base(torch.nn.Module):\n    pass\n")
    plain, _ = reading.read(str(path), check=True)
    assert plain.index is not None and plain.index.starts is None
    split = jobs.work(jobs.Job(str(path), job.key, plain, extra=(plain.index.headers[0].offset,)))
    assert split.scan is plain and plain.index.starts is not None
    assert split.parsed is not None and [c.name for c in split.parsed.classes()] == ["Base"]


def test_what_the_lazy_model_may_still_find() -> None:
    """A copy of the model refers back only the names the lazy model could still parse:
    a class name that some header defines, under a module parsed in part (as the lazy
    run's lookup looks for them: bufferlint.ondemand); anything else it lacks for good."""
    from bufferlint.model import findable

    words, modules = {"Base"}, {"pkg.mod"}
    assert findable("pkg.mod.Base", words, modules)
    assert findable("pkg.mod.Outer.Base", words, modules)
    assert not findable("Base", words, modules)
    assert not findable("pkg.other.Base", words, modules)
    assert not findable("pkg.mod.Other", words, modules)
    assert not findable("pkg.mod", words, modules)


def test_parsing_without_libcsts_node_checks_changes_no_tree() -> None:
    """Text CPython accepted is parsed without LibCST's check of each node: the trees are
    the checked parse's, and the check is back afterwards, after a failed parse too."""
    import libcst as cst

    from bufferlint import parsing

    sources = [path.read_text() for path in sorted(FIXTURES.rglob("*.py"))]
    sources.append('x = f"{a!r:>{width}}" if (b := not c) else [*d, *(e or ())]\n')
    assert len(sources) > 10
    for source in sources:
        checked = cst.parse_module(source)
        unchecked = parsing.parse_module(source, compiles=True)
        assert unchecked.deep_equals(checked) and unchecked.code == source
    with pytest.raises(cst.ParserSyntaxError):
        parsing.parse_compiled("def f(:\n")
    with pytest.raises(cst.CSTValidationError):  # a node built by hand is checked again
        cst.Name("not a name")


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_module_functions_are_found_by_one_search(newline: str) -> None:
    """The file index parses only the statements that may define the function asked for,
    and finds the last top-level definition, as a parse of the whole file would."""
    import libcst as cst

    from bufferlint.facts import FileFacts
    from bufferlint.fix.index import SourceIndex

    text = textwrap.dedent(
        """
        def f():
            return 1

        class A:
            def f(self):  # a method, not the function
                return 2

        x = "def f(): pass"
        async def f():
            return 4

        def fx():
            return 5
        """
    )
    text = text.lstrip("\n").replace("\n", newline)
    index = SourceIndex(text, FileFacts(path="m.py", module="m"))
    found = index.module_function("f")
    assert found is not None and found.asynchronous is not None
    assert "return 4" in cst.Module(body=[found]).code
    assert index.module_function("fx") is not None and index.module_function("g") is None
    # Both `def f`s and `def fx`; not `class A`, nor `x` with its string. (The prefilter
    # leaves a file with `\r` line endings in one piece.)
    assert set(index.chunks._chunks) == ({0} if newline == "\r" else {0, 3, 4})


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ("self.p = nn.Parameter(t, requires_grad=False)", True),
        ("self.p = nn.Parameter(\n    torch.zeros(n),\n    requires_grad = False,\n)", True),
        ("from torch.nn import Parameter as P\nself.p = P(t, requires_grad=False)", True),
        ("self.p = nn.Parameter(t)\nself.p.requires_grad_(False)", True),
        ("self.p = nn.Parameter(t)\nself.p.requires_grad = False", True),
        ("self.p = nn.Parameter(f('x)'), requires_grad=False)", True),  # strings: unread
        # Not a parameter frozen, so not a token: these files need not be parsed.
        ("w = torch.ones(n, requires_grad=False)", False),
        ("for param in self.parameters():\n    param.requires_grad = False", False),
        ("self._requires_grad = False", False),
        ("x = f(a)  # requires_grad=False: see above", False),
        ("self.embed = nn.Embedding(n, d)\nself.embed.requires_grad_(False)", False),
        # Factory calls: into an attribute of a name, as the walker reads them.
        ("self.cache = torch.zeros(n)", True),
        ("self.a, self.b = torch.zeros(n), torch.ones(n)", True),
        ("self.model.rope_deltas = torch.zeros(n)", False),
        # A factory's whole name as a word: not a name that only holds one.
        ("self.noise = torch.randn(n)", True),
        ("self.table = torch.as_tensor(values)", True),
        ("self.noise = random(n)\nself.table = my_tensor(values)", False),
    ],
)
def test_tensor_tokens(text: str, holds: bool) -> None:
    """Only a statement that may freeze a parameter or store a tensor makes a file's
    statements parsed (the `requires_grad=False` of any other call made 32 of
    transformers' model files parsed; `self.model.x = torch.zeros(n)` 4 more)."""
    assert prefilter.index(text).tokens is holds


HOLDER = {
    "hf.py": """
        import torch
        from torch import nn
        from transformers import PreTrainedModel
        from transformers import initialization as init

        class Gauge(nn.Module):
            def __init__(self):
                super().__init__()
                self.bias = nn.Parameter(torch.full((2,), 0.25), requires_grad=False)

        class Router(nn.Module):
            def __init__(self):
                super().__init__()
                self.gauge = Gauge()

        class Unrelated(nn.Module):
            def forward(self, x):
                return x

        class Model(PreTrainedModel):
            def __init__(self, config):
                super().__init__(config)
                self.router = Router()

            def _init_weights(self, module):
                if isinstance(module, Router):
                    init.constant_(module.gauge.bias, 0.25)
    """,
}


def test_a_holder_named_by_the_branch_spares_parsing_its_file(tmp_path: Path) -> None:
    """The class that a branch writing `module.gauge.bias` tests for is the holder to try
    first: the file's other classes are not parsed to look for holders."""
    from bufferlint.prefiltered import PrefilteredRun

    _write(tmp_path, HOLDER)
    paths = [str(tmp_path / "hf.py")]
    run = PrefilteredRun(paths, engine.discover(paths), Settings())
    assert run.result().findings == []  # Router's branch rebuilds Gauge's bias
    assert run.project is not None
    assert "hf.Router" in run.project.classes and "hf.Unrelated" not in run.project.classes
    assert _findings(paths) == _findings(paths, prefilter=False) == []
