"""The static verdict agrees with what materializing the class actually does.

Hypothesis writes module classes from random combinations of the patterns the analysis
knows: how construction builds each buffer, what the hook does to it, whether there is a
hook, a parent class, a `super()` call, persistence. Each generated file is analysed
statically and then imported and run: built eagerly, and built on `meta`, `to_empty()`'d
and given every hook, as FSDP does, with uninitialized memory filled deterministically
(NaN) so that a buffer the hook does not rebuild compares unequal. The buffers that come
out wrong must be exactly those the analysis says the hook misses.

Configuration guards are generated holding (`self.use_b0 = True`): the analysis counts a
rebuild under `if self.use_b0:` because it cannot know the configuration, so a false one
would be a disagreement by design (docs/robustness.md).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from bufferlint import analysis  # noqa: E402
from bufferlint.conventions import select  # noqa: E402
from bufferlint.engine import Settings, lint_source  # noqa: E402
from bufferlint.extract import extract  # noqa: E402
from bufferlint.model import Project  # noqa: E402

HOOK = "reset_parameters"
# How construction builds a buffer; the placeholders leave it uninitialized on purpose.
BUILDS = (
    "register",
    "nn_buffer",
    "empty_then_filled",
    "none_then_assigned",
    "helper",
    "setter",
    "parent_init",
    "none_placeholder",
    "empty_placeholder",
)
PLACEHOLDERS = frozenset({"none_placeholder", "empty_placeholder"})
# What a hook does to it: the first ten rebuild it, `accumulate` (add_) does not, and of the
# guarded rebuilds only those whose guard still holds after to_empty() run.
REBUILDS = (
    "assign",
    "tuple_assign",
    "copy",
    "data_copy",
    "index_assign",
    "fill",
    "init_function",
    "reregister",
    "helper",
    "setattr",
    "accumulate",
    "guard_not_none",
    "guard_config",
    "guard_meta_else",
    "guard_hasattr",
    "guard_meta",
    "guard_size",
)
EXAMPLES = int(os.environ.get("BUFFERLINT_PROPERTY_EXAMPLES", "80"))
_counter = itertools.count()


@dataclass(frozen=True)
class BufferSpec:
    build: str
    persistent: bool
    rebuild: str | None  # None: no hook touches it
    rebuild_in_parent: bool  # the rebuild is in Parent's hook (for a buffer Parent builds)


@dataclass(frozen=True)
class ClassSpec:
    buffers: tuple[BufferSpec, ...]
    parent: bool  # M derives from a Parent module
    parent_hook: bool
    child_hook: bool
    calls_super: bool  # M's hook calls super().reset_parameters()
    explicit_init: bool = False  # M's __init__ calls Parent.__init__(self), not super()

    def source(self) -> str:
        return _render(self)


@st.composite
def class_specs(draw: st.DrawFn) -> ClassSpec:
    """A class M, perhaps with a Parent, building one or two buffers; only combinations
    that run (a rebuild in Parent's hook is of a buffer Parent builds)."""
    parent = draw(st.booleans())
    parent_hook = parent and draw(st.booleans())
    child_hook = draw(st.booleans())
    calls_super = parent_hook and child_hook and draw(st.booleans())
    builds = [b for b in BUILDS if parent or b != "parent_init"]
    buffers = []
    for _ in range(draw(st.integers(1, 2))):
        build = draw(st.sampled_from(builds))
        in_parent = build == "parent_init" and parent_hook and draw(st.booleans())
        hooked = child_hook or in_parent
        rebuild = None
        if hooked and build != "none_placeholder":  # None has nothing to rebuild in place
            rebuild = draw(st.none() | st.sampled_from(REBUILDS))
        buffers.append(BufferSpec(build, draw(st.booleans()), rebuild, in_parent))
    explicit = parent and draw(st.booleans())
    return ClassSpec(tuple(buffers), parent, parent_hook, child_hook, calls_super, explicit)


# -- rendering ---------------------------------------------------------------------------


def _value(i: int) -> str:
    return f"torch.arange(4.0) + {i + 1}"


def _build(i: int, spec: BufferSpec) -> tuple[list[str], list[str]]:
    """(statements for __init__ after super().__init__(), extra methods)."""
    name, value, keep = f"b{i}", _value(i), f"persistent={spec.persistent}"
    config = [f"self.use_{name} = True"] if spec.rebuild == "guard_config" else []
    if spec.build in ("register", "parent_init"):
        return [*config, f'self.register_buffer("{name}", {value}, {keep})'], []
    if spec.build == "nn_buffer":
        return [*config, f"self.{name} = nn.Buffer({value}, {keep})"], []
    if spec.build == "empty_then_filled":
        return [
            *config,
            f'self.register_buffer("{name}", torch.empty(4), {keep})',
            f"self.{name}.copy_({value})",
        ], []
    if spec.build == "none_then_assigned":
        return [
            *config,
            f'self.register_buffer("{name}", None, {keep})',
            f"self.{name} = {value}",
        ], []
    if spec.build == "helper":
        method = [
            f"def _build_{name}(self):",
            f'    self.register_buffer("{name}", {value}, {keep})',
        ]
        return [*config, f"self._build_{name}()"], method
    if spec.build == "setter":
        methods = [
            "@property",
            f"def size_{name}(self):",
            f"    return self._size_{name}",
            "",
            f"@size_{name}.setter",
            f"def size_{name}(self, value):",
            f"    self._size_{name} = value",
            f'    self.register_buffer("{name}", {value}, {keep})',
        ]
        return [*config, f"self.size_{name} = 4"], methods
    if spec.build == "none_placeholder":
        return [f'self.register_buffer("{name}", None, {keep})'], []
    assert spec.build == "empty_placeholder"
    return [*config, f'self.register_buffer("{name}", torch.empty(4), {keep})'], []


def _rebuild(i: int, spec: BufferSpec) -> tuple[list[str], list[str]]:
    """(statements for the hook, extra methods)."""
    name, value = f"b{i}", _value(i)
    copy = f"self.{name}.copy_({value})"
    kind = spec.rebuild
    simple = {
        "assign": f"self.{name} = {value}",
        "tuple_assign": f"(self.{name},) = ({value},)",
        "copy": copy,
        "data_copy": f"self.{name}.data.copy_({value})",
        "index_assign": f"self.{name}[...] = {value}",
        "fill": f"self.{name}.fill_(0.0)\nself.{name}.add_({value})",
        "init_function": f"nn.init.zeros_(self.{name})\nself.{name}.add_({value})",
        "reregister": f'self.register_buffer("{name}", {value}, persistent={spec.persistent})',
        "setattr": f'setattr(self, "{name}", {value})',
        "accumulate": f"self.{name}.add_({value})",
        "guard_meta_else": f"if self.{name}.is_meta:\n    pass\nelse:\n    {copy}",
    }
    guards = {
        "guard_not_none": f"self.{name} is not None",
        "guard_config": f"self.use_{name}",
        "guard_hasattr": f'not hasattr(self, "{name}")',
        "guard_meta": f"self.{name}.is_meta",
        "guard_size": f"self.{name}.size(0) != 4",
    }
    if kind in simple:
        return simple[kind].split("\n"), []
    if kind == "helper":
        return [f"self._rebuild_{name}()"], [f"def _rebuild_{name}(self):", f"    {copy}"]
    return [f"if {guards[kind]}:", f"    {copy}"], []


def _method(name: str, body: list[str]) -> list[str]:
    return [f"def {name}(self):", *(f"    {line}" for line in body or ["pass"])]


def _class(
    header: str, init: list[str], hook: list[str] | None, extra: list[str], explicit: bool
) -> list[str]:
    lines = [f"class {header}:"]
    parent_init = "Parent.__init__(self)" if explicit else "super().__init__()"
    methods = [_method("__init__", [parent_init, *init])]
    if hook is not None:
        methods.append(_method(HOOK, hook))
    if extra:
        methods.append(extra)
    for method in methods:
        lines.extend(f"    {line}" if line else "" for line in method)
        lines.append("")
    return lines


def _render(spec: ClassSpec) -> str:
    parent_init: list[str] = []
    parent_hook: list[str] = []
    parent_extra: list[str] = []
    child_init: list[str] = []
    child_hook: list[str] = ["super().reset_parameters()"] if spec.calls_super else []
    child_extra: list[str] = []
    for i, buffer in enumerate(spec.buffers):
        init, methods = _build(i, buffer)
        in_parent = buffer.build == "parent_init"
        (parent_init if in_parent else child_init).extend(init)
        (parent_extra if in_parent else child_extra).extend(methods)
        if buffer.rebuild is not None:
            hook, methods = _rebuild(i, buffer)
            (parent_hook if buffer.rebuild_in_parent else child_hook).extend(hook)
            (parent_extra if buffer.rebuild_in_parent else child_extra).extend(methods)
    lines = ["import torch", "from torch import nn", "", ""]
    if spec.parent:
        hook = parent_hook if spec.parent_hook else None
        lines += _class("Parent(nn.Module)", parent_init, hook, parent_extra, False) + [""]
    base = "Parent" if spec.parent else "nn.Module"
    hook = child_hook if spec.child_hook else None
    lines += _class(f"M({base})", child_init, hook, child_extra, spec.explicit_init)
    return "\n".join(lines).rstrip() + "\n"


# -- the two verdicts ----------------------------------------------------------------------


def _import(path: Path, name: str):
    loaded = importlib.util.spec_from_file_location(name, path)
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    sys.modules[name] = module
    try:
        loaded.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and torch.allclose(a, b, rtol=0, atol=0, equal_nan=True)
    )


def wrong_after_materializing(cls: type) -> set[str]:
    """Buffers that differ from an eager build after meta -> to_empty -> every hook."""
    eager = cls()
    with torch.device("meta"):
        model = cls()
    model.to_empty(device="cpu")
    for module in model.modules():
        hook = getattr(module, HOOK, None)
        if callable(hook):
            hook()
    expected = dict(eager.named_buffers())
    got = dict(model.named_buffers())
    return {name for name, value in expected.items() if not _same(value, got.get(name, value))}


@pytest.fixture(scope="module")
def deterministic_memory():
    """Uninitialized memory comes out as NaN, so a buffer left unbuilt never equals its
    eager value by chance; the global flags are restored afterwards."""
    from torch.utils import deterministic

    algorithms = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    fill = deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=True)
    deterministic.fill_uninitialized_memory = True
    yield
    torch.use_deterministic_algorithms(algorithms, warn_only=warn_only)
    deterministic.fill_uninitialized_memory = fill


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("generated")


def check(spec: ClassSpec, workdir: Path) -> None:
    """The invariant for one generated file: static verdict == materialized truth."""
    source = spec.source()
    module = f"generated_{next(_counter)}"
    path = workdir / f"{module}.py"
    path.write_text(source)
    facts = extract(source, str(path), module)
    assert facts.error is None, facts.error
    project = Project([facts])
    classes = ["Parent", "M"] if spec.parent else ["M"]
    imported = _import(path, module)
    # A placeholder holds garbage in the eager build too: no materialization is wrong.
    placeholders = {f"b{i}" for i, b in enumerate(spec.buffers) if b.build in PLACEHOLDERS}
    missing = {}
    for name in classes:
        report = analysis.account(project, f"{module}.{name}", select(None, (HOOK,)))
        missing[name] = {b.name for b in report.missing}
        wrong = wrong_after_materializing(getattr(imported, name)) - placeholders
        assert missing[name] == wrong, f"class {name}:\n{source}"
    # What is reported: each class's findings name only buffers it misses, and every
    # missed buffer is reported at the class or at a parent that misses it too.
    reported = {name: set() for name in classes}
    for finding in lint_source(
        str(path), source, Settings(convention=select(None, (HOOK,)))
    ).findings:
        assert finding.code in ("BL001", "BL002", "BL003"), finding.message
        if finding.code == "BL003":  # rebuilt, on the default device: not missing
            assert not {b.name for b in finding.buffers} & missing[finding.class_name]
            continue
        reported[finding.class_name] |= {b.name for b in finding.buffers}
    for name in classes:
        assert reported[name] <= missing[name], f"class {name}:\n{source}"
    assert missing["M"] <= reported["M"] | reported.get("Parent", set()), source


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(spec=class_specs())
def test_static_verdict_matches_materialization(spec, deterministic_memory, workdir) -> None:
    check(spec, workdir)


PAIRS = [
    (build, rebuild)
    for build in BUILDS
    if build != "parent_init"
    for rebuild in (None, *REBUILDS)
    if build != "none_placeholder" or rebuild is None  # None cannot be rebuilt in place
]


@pytest.mark.parametrize("build, rebuild", PAIRS)
def test_every_build_and_rebuild_pair(build, rebuild, deterministic_memory, workdir) -> None:
    """The patterns one by one, so that none depends on Hypothesis drawing it."""
    buffer = BufferSpec(build, persistent=True, rebuild=rebuild, rebuild_in_parent=False)
    check(ClassSpec((buffer,), False, False, True, False), workdir)
