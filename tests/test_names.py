"""The one name resolution (bufferlint.names), over the two views of a module: parsed
facts (the class model) and the prefilter's headers (choosing what to parse). The
header view may answer more, never less: a class the model resolves a base to must be
among the classes the headers lead to, or the prefilter would leave it out."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bufferlint import engine
from bufferlint.engine import Settings
from bufferlint.model import Project
from bufferlint.names import Resolver


@dataclass
class _Module:
    name: str
    defined: set[str] = field(default_factory=set)  # class names, dotted when nested
    bound: dict[str, list[str]] = field(default_factory=dict)
    stars: list[str] = field(default_factory=list)

    def classes(self, dotted: str) -> tuple[str, ...]:
        return (f"{self.name}.{dotted}",) if dotted in self.defined else ()

    def imports(self, local: str) -> list[str]:
        return self.bound.get(local, [])

    def star_imports(self) -> list[str]:
        return self.stars


def _resolver(*modules: _Module) -> Resolver[str]:
    by_name = {module.name: module for module in modules}
    return Resolver(by_name.get, lambda name: ())


def test_imports_aliases_and_re_exports() -> None:
    names = _resolver(
        _Module("a", {"A", "Outer", "Outer.Inner"}),
        _Module("b", bound={"Alias": ["a.A"], "m": ["a"]}),  # from a import A as Alias
        _Module("c", bound={"Alias": ["b.Alias"]}),  # re-exported again
    )
    assert names.resolve("a.A") == ("a.A",)
    assert names.resolve("b.Alias") == ("a.A",)
    assert names.resolve("c.Alias") == ("a.A",)
    assert names.resolve("b.m.A") == ("a.A",)  # import a as m
    assert names.resolve("b.m.Outer.Inner") == ("a.Outer.Inner",)
    assert names.resolve("b.Missing") == ()
    assert names.resolve("elsewhere.A") == ()  # no module: external


def test_star_imports_the_first_that_has_it() -> None:
    names = _resolver(
        _Module("a", {"A"}),
        _Module("z", {"A"}),
        _Module("x"),
        _Module("star", stars=["x", "a", "z"]),
        _Module("shadow", {"A"}, stars=["z"]),
    )
    assert names.resolve("star.A") == ("a.A",)
    assert names.resolve("shadow.A") == ("shadow.A",)  # its own class first


def test_an_import_of_itself_is_no_import() -> None:
    names = _resolver(
        _Module("pkg", bound={"A": ["pkg.A"]}, stars=["pkg.impl"]),  # from pkg import A
        _Module("pkg.impl", {"A"}),
    )
    assert names.resolve("pkg.A") == ("pkg.impl.A",)


def test_cycles_answer_nothing() -> None:
    names = _resolver(
        _Module("g", bound={"X": ["h.X"]}),
        _Module("h", bound={"X": ["g.X"]}),
        _Module("s", stars=["t"]),
        _Module("t", stars=["s"]),
    )
    assert names.resolve("g.X") == ()
    assert names.resolve("s.X") == ()


def test_a_star_import_of_a_missing_module_ends() -> None:
    # transformers 4.57's lazy `__init__`s star-import modules that do not exist
    # (`from .processing_x import *`): `pkg.processing_x.X` falls back to `pkg`, whose star
    # import asks for `pkg.processing_x.processing_x.X`, and so on without end.
    names = _resolver(
        _Module("pkg", stars=["pkg.modeling", "pkg.processing"]),
        _Module("pkg.modeling", {"Model"}),
        _Module("top", stars=["pkg"]),
    )
    assert names.resolve("top.Model") == ("pkg.modeling.Model",)
    assert names.resolve("top.Missing") == ()
    assert names.written(_Module("user", bound={"pkg": ["pkg"]}), "pkg.Missing") == ()


def test_the_longest_module_prefix_decides() -> None:
    names = _resolver(_Module("p", {"q.Z"}), _Module("p.q"))
    assert names.resolve("p.q.Z") == ()  # p.q is a module, and it has no Z


def test_several_imports_of_a_name_answer_all() -> None:
    names = _resolver(
        _Module("a", {"A"}), _Module("c", {"C"}), _Module("m", bound={"X": ["a.A", "c.C"]})
    )
    assert names.resolve("m.X") == ("a.A", "c.C")


def test_a_written_base_looks_in_enclosing_classes_first() -> None:
    mod = _Module("mod", {"Sibling", "Outer", "Outer.Sibling"}, {"a": ["a"]})
    names = _resolver(mod, _Module("a", {"A"}))
    assert names.written(mod, "Sibling", ["Outer"]) == ("mod.Outer.Sibling",)
    assert names.written(mod, "Sibling") == ("mod.Sibling",)
    assert names.written(mod, "a.A") == ("a.A",)
    assert names.written(_Module("plain"), "a.A") == ("a.A",)  # not imported: absolute
    assert names.written(_Module("other", bound={"a": ["b"]}), "a.A") == ()  # imported


# A package exercising every way a base can be spelt; `lib/` is not linted.
PROJECT = {
    "lib/__init__.py": "from .core import *\n",
    "lib/core.py": """
        import torch
        from torch import nn

        class Core(nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("b", torch.ones(1))

        class Outer:
            class Inner(nn.Module):
                pass
    """,
    "lib/again.py": "from lib import Core as Again\n",
    "lib/loop_a.py": "from lib.loop_b import Loop\n",
    "lib/loop_b.py": "from lib.loop_a import Loop\n",
    "app/__init__.py": "",
    "app/models.py": """
        from lib import Core
        from lib.again import Again
        from lib.loop_a import Loop
        from .local import Local as Renamed
        from . import local
        import lib.core as core

        class ViaStar(Core):
            pass

        class ViaReExport(Again):
            pass

        class ViaRelative(Renamed):
            pass

        class ViaModule(local.Local):
            pass

        class ViaNested(core.Outer.Inner):
            pass

        class ViaCycle(Loop):
            pass

        class Holder:
            class Sibling(Core):
                pass

            class Nested(Sibling):
                pass
    """,
    "app/local.py": """
        from lib.core import Core

        class Local(Core):
            pass
    """,
}


def _write(root: Path) -> list[str]:
    for name, text in PROJECT.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return [str(root / "app")]


def test_headers_lead_to_every_base_the_model_resolves(tmp_path: Path) -> None:
    from bufferlint import prefilter

    paths = _write(tmp_path)
    sources = engine.discover(paths)
    project = _model(sources)
    resolved = {
        qualified: project.bases(qualified)
        for qualified, (_, facts) in list(project.classes.items())
        if facts.module.startswith("app.")
    }
    assert resolved["app.models.ViaStar"] == ["lib.core.Core"]
    assert resolved["app.models.ViaReExport"] == ["lib.core.Core"]
    assert resolved["app.models.ViaRelative"] == ["app.local.Local"]
    assert resolved["app.models.ViaModule"] == ["app.local.Local"]
    assert resolved["app.models.ViaNested"] == ["lib.core.Outer.Inner"]
    assert resolved["app.models.ViaCycle"] == ["lib.loop_a.Loop"]  # unresolved: external
    assert resolved["app.models.Holder.Nested"] == ["app.models.Holder.Sibling"]

    targets = _header_targets(paths, sources)
    for qualified, bases in resolved.items():
        cls, facts = project.classes[qualified]
        text = Path(facts.path).read_text()
        [header] = [
            h for h in prefilter.index(text).headers if h.real and h.name == cls.name.split(".")[-1]
        ]
        for base, dotted in zip(bases, header.dotted, strict=True):
            if base in project.classes:
                _, home = project.classes[base]
                found = targets(facts.path, dotted)
                assert (home.path, base.rpartition(".")[2]) in found, (qualified, dotted)


def _model(sources: list) -> Project:
    """The class model over the files parsed whole."""
    from bufferlint.whole import facts_for, lint_facts_with_model

    return lint_facts_with_model(sources, [facts_for(s) for s in sources], Settings())[1]


def _header_targets(paths: list[str], sources: list) -> object:
    """(path, class name) pairs that a base written in a linted file leads to."""
    from bufferlint.choosing import Chooser
    from bufferlint.runfiles import RunFiles

    chooser = Chooser(RunFiles(sources, None))
    keys = {s.path: (s.path, s.module, s.is_package) for s in sources}
    return lambda path, dotted: {(key[0], name) for key, name in chooser._base(keys[path], dotted)}


# The lazy `__init__` shape of transformers 4.57, written from scratch: a star import of a
# module that does not exist (`processing_rope`), re-exported through two packages.
LAZY = {
    "top/__init__.py": "from .models import *\n",
    "top/models/__init__.py": "from .rope import *\n",
    "top/models/rope/__init__.py": """
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            from .modeling_rope import *
            from .processing_rope import *
    """,
    "top/models/rope/modeling_rope.py": """
        import torch
        from torch import nn

        class Rope(nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("inv_freq", torch.arange(4.0), persistent=False)
    """,
    "top/user.py": """
        from top import Missing, Rope

        class User(Missing):
            pass

        class Child(Rope):
            pass
    """,
}


@pytest.mark.parametrize("prefilter", [True, False])
def test_a_lazy_package_is_linted_without_endless_lookups(tmp_path: Path, prefilter: bool) -> None:
    for name, text in LAZY.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    result = engine.lint([str(tmp_path / "top")], Settings(prefilter=prefilter, cache=False))
    assert [(f.code, f.class_name) for f in result.findings] == [("BL002", "Rope")]


# Two `model/` folders without `__init__.py` inside one package, as torchtitan 0.1.0 has
# (`models/llama3/model/model.py`, `experiments/llama4/model/model.py`): namespace
# packages, so `pkg.one.model.model` and `pkg.two.model.model`, each with its own `base`.
_BASE = """
    import torch
    from torch import nn

    class Base(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("{name}", torch.arange(4.0))
"""
_MODEL = """
    import torch
    from .base import Base

    class Transformer(Base):
        def __init__(self):
            super().__init__()
            self.register_buffer("{name}", torch.ones(2))
"""
NAMESPACES = {
    "pkg/__init__.py": "",
    "pkg/one/__init__.py": "from .model.model import Transformer\n",
    "pkg/one/model/base.py": _BASE.format(name="alpha"),
    "pkg/one/model/model.py": _MODEL.format(name="own_one"),
    "pkg/two/__init__.py": "",
    "pkg/two/model/base.py": _BASE.format(name="beta"),
    "pkg/two/model/model.py": _MODEL.format(name="own_two"),
}


@pytest.mark.parametrize("prefilter", [True, False])
def test_namespace_folders_in_a_package_name_their_modules(tmp_path: Path, prefilter: bool):
    for name, text in NAMESPACES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    sources = engine.discover([str(tmp_path / "pkg")])
    assert {s.module for s in sources if s.path.endswith("model.py")} == {
        "pkg.one.model.model",
        "pkg.two.model.model",
    }
    result = engine.lint([str(tmp_path / "pkg")], Settings(prefilter=prefilter, cache=False))
    found = {
        (str(Path(f.path).relative_to(tmp_path)), f.class_name, tuple(b.name for b in f.buffers))
        for f in result.findings
    }
    assert found == {
        ("pkg/one/model/base.py", "Base", ("alpha",)),
        ("pkg/one/model/model.py", "Transformer", ("own_one",)),
        ("pkg/two/model/base.py", "Base", ("beta",)),
        ("pkg/two/model/model.py", "Transformer", ("own_two",)),
    }
    project = _model(sources)
    for part in ("one", "two"):
        assert project.bases(f"pkg.{part}.model.model.Transformer") == [
            f"pkg.{part}.model.base.Base"
        ]
