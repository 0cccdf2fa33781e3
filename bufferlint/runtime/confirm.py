"""Checking one class in this process: construct it, materialize it twice under sentinel fills,
build it eagerly twice, and judge every buffer.

This is what one rank runs; `bufferlint.runtime.distributed` gathers the ranks' results.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bufferlint import conventions
from bufferlint.runtime import TRANSFORMERS, roots, standin, unavailable
from bufferlint.runtime.build import Construction, constructions, load
from bufferlint.runtime.compare import Snapshot, judge, reference, snapshot
from bufferlint.runtime.recipes import HookRecorder, materialize
from bufferlint.runtime.report import FACTORY_HINT, Result, failure, verdict_of
from bufferlint.runtime.sentinel import FILL_BYTES, SentinelFill

TORCHTUNE = "torchtune"  # the recipe that loads a checkpoint instead of `to_empty`
# The hooks a stack's recipe calls, whatever convention flagged the class: the calls recorded
# are replayed on the eager build.
STACK_HOOKS = {
    c.recipe: c.hooks for c in (conventions.TORCHTITAN, conventions.TIMM, conventions.TORCHTUNE)
}
# Defaults bigger than this are not built eagerly; synthesized small arguments are tried.
MAX_DEFAULT_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class Subject:
    """A class (or factory) ready to check; `label` is its key in the factories table."""

    label: str
    ways: list[Construction]
    notes: list[str]
    buffers: tuple[str, ...]
    hooks: tuple[str, ...]
    recipe: str
    seed: int
    part: str = ""  # the submodule judged ("": the whole model), for the transformers recipe
    stand_in: bool = False  # judge devices again with the default device away (standin.py)
    # How many configurations `--fix --runtime` verifies; 0 when the job checks the first
    # that builds (bufferlint.runtime.configurations).
    configurations: int = 0


class Failed(Exception):
    """The check ended before buffers could be judged: verdict, stage and message."""

    def __init__(self, verdict: str, stage: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.verdict, self.stage, self.message, self.extra = verdict, stage, message, extra


def exception_line(exc: BaseException) -> str:
    """`Type: first line of message`, short enough for a one-line report."""
    text = str(exc).strip().splitlines()
    line = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return line if len(line) <= 300 else line[:297] + "..."


def load_subject(job: dict[str, Any]) -> Subject:
    """Import what the job names. Everything the user's import can raise becomes Failed."""
    for entry in reversed(job["sys_path"]):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    try:
        factory = load(job["factory"]) if job["factory"] else None
    except Exception as exc:
        raise Failed(
            "error",
            "import",
            f"factory {job['factory']!r} could not be loaded: {exception_line(exc)}",
        ) from None
    if factory is not None and not callable(factory):
        raise Failed("error", "import", f"factory {job['factory']!r} is not callable")
    cls = None
    if job["module"]:
        try:
            cls = load(f"{job['module']}:{job['class_name']}")
        except Exception as exc:
            raise Failed("error", "import", f"import failed: {exception_line(exc)}") from None
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise Failed("error", "import", f"{job['label']} is not an nn.Module subclass")
    hooks, part = STACK_HOOKS.get(job["recipe"], tuple(job["hooks"])), ""
    if job["recipe"] == TRANSFORMERS:
        hooks = _transformers().HOOKS
    if cls is None:
        ways, notes = [Construction(f"factory {job['factory']}", factory, "factory")], []
    elif job["recipe"] == TRANSFORMERS and factory is None:
        ways, notes, part = _transformers_ways(cls)
    elif job["recipe"] == conventions.TORCHTITAN.recipe and factory is None:
        ways, notes, part = roots.ways(cls)  # judged inside a root that holds it
    else:
        ways, notes = constructions(cls, factory, job["factory"] or "")
    count = 0
    if job.get("way") is not None:  # one configuration of those a fix is verified on
        count, ways = len(ways), ways[job["way"] : job["way"] + 1]
    return Subject(
        label=job["label"],
        ways=ways,
        notes=notes,
        buffers=tuple(job["buffers"]),
        hooks=hooks,
        recipe=job["recipe"],
        seed=job["seed"],
        part=part,
        stand_in=bool(job.get("stand_in")),
        configurations=count,
    )


def _transformers() -> Any:
    """bufferlint.runtime.hf, or Failed with the one line that says how to install it."""
    try:
        hf = importlib.import_module("bufferlint.runtime.hf")
    except ImportError as exc:
        if importlib.util.find_spec("transformers") is None:
            raise Failed(
                "error", "import", f"recipe transformers: {unavailable('transformers')}"
            ) from None
        raise Failed(
            "error", "import", f"importing transformers failed: {exception_line(exc)}"
        ) from None
    return hf


def _transformers_ways(cls: type) -> tuple[list[Construction], list[str], str]:
    """A tiny config for a PreTrainedModel, or the model of the same module that holds `cls`."""
    hf = _transformers()
    attempts: list[str] = []
    try:
        plan = hf.plan(cls, attempts)
    except Exception as exc:  # the user's module, config or model code
        attempts.append(f"planning a tiny model raised {exception_line(exc)}")
        plan = None
    if plan is None:
        return [], attempts, ""
    return [Construction(plan.description, plan.make, "transformers")], [], plan.part


@contextmanager
def isolated(device: torch.device) -> Iterator[None]:
    """Restore what user code or our reseeding may change: RNG state, default dtype/device."""
    dtype, default_device = torch.get_default_dtype(), torch.get_default_device()
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        try:
            yield
        finally:
            torch.set_default_dtype(dtype)
            if torch.get_default_device() != default_device:
                torch.set_default_device(default_device)


def warm_up(device: torch.device) -> None:
    """Pay torch's lazy imports (meta kernels, dynamo: about 2 s) once per worker, at start-up
    rather than inside the first class's timeout."""
    with torch.device("meta"):
        model = nn.Linear(2, 2)
        torch.arange(2).float() / 2
    with SentinelFill(0):
        model.to_empty(device=device)


def _build(way: Construction, where: torch.device | str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    with torch.device(where):
        model = way.make()
    if not isinstance(model, nn.Module):
        raise Failed(
            "error", "build", f"{way.description} returned {type(model).__name__}, not an nn.Module"
        )
    return model


def _choose(subject: Subject, device: torch.device) -> Construction:
    """The first construction that builds on meta. A construction that fails on meta but
    works eagerly is an error in itself: meta-device init would fail for the user too."""
    attempts = list(subject.notes)
    user_error = None
    lacking: Construction | None = None  # the first build without a flagged buffer
    for way in subject.ways:
        try:
            model = _build(way, "meta", subject.seed)
        except Failed:
            raise
        except Exception as exc:
            line = exception_line(exc)
            try:
                _build(way, device, subject.seed)
            except Exception:
                attempts.append(f"{way.description}: {line}")
                user_error = user_error or (
                    f"{way.description} raised {line}" if way.explicit else None
                )
                continue
            raise Failed(
                "error",
                "build",
                f"builds eagerly but not on the meta device: {line}",
                built_with=way.description,
            ) from None
        tensors = [*model.parameters(), *model.buffers()]
        size = sum(t.numel() for t in tensors)
        if way.kind == "defaults" and size > MAX_DEFAULT_ELEMENTS:
            attempts.append(f"defaults: too large to build eagerly ({size:,} elements)")
            continue
        if _lacks_buffers(subject, model):
            lacking = lacking or way
            attempts.append(f"{way.description}: registers no {', '.join(subject.buffers)}")
            continue
        if tensors and not any(t.is_meta for t in tensors):
            raise Failed(
                "error",
                "build",
                f"{way.description} put every tensor on "
                f"{tensors[0].device} under torch.device('meta'): pass no explicit "
                "device",
                built_with=way.description,
            )
        return way
    if lacking is not None:  # judged as built: the verdict says the buffers are absent
        subject.notes.append(f"no construction tried registers {', '.join(subject.buffers)}")
        return lacking
    if user_error:
        raise Failed("error", "build", user_error, attempts=attempts)
    tried = "; ".join(attempts) or "no way to construct it"
    raise Failed(
        "unconfirmed",
        "build",
        f"could not build {subject.label}: {tried}; " + FACTORY_HINT.format(key=subject.label),
        attempts=attempts,
    )


def _lacks_buffers(subject: Subject, model: nn.Module) -> bool:
    """Whether the build registers none of some flagged buffer: a configuration that
    does not have it cannot judge it."""
    if not subject.buffers or subject.part:
        return False
    names = {name for name, _ in model.named_buffers()}
    return not set(subject.buffers) <= names


def _materialized(
    subject: Subject, way: Construction, device: torch.device, mesh: Callable[[], Any]
) -> tuple[list[dict[str, Snapshot]], list[tuple[str, str]], list[str], dict[str, str]]:
    """Two materializations, one per fill byte; the hook calls and notes of the first, and
    (transformers recipe) which class registers each buffer."""
    passes, calls, notes, owners = [], [], [], {}
    state = _checkpoint(way, device, subject.seed) if subject.recipe == TORCHTUNE else None
    for byte in FILL_BYTES:
        model = _build(way, "meta", subject.seed)
        recorder = HookRecorder(model, subject.hooks, subject.seed)
        try:
            with SentinelFill(byte):
                notes = materialize(subject.recipe, model, subject.hooks, device, mesh, state)
        except Exception as exc:
            raise Failed(
                "error",
                "materialize",
                f"materializing with recipe {subject.recipe} failed: {exception_line(exc)}",
                built_with=way.description,
            ) from None
        passes.append(snapshot(_part(subject, model), subject.buffers))
        calls = calls or recorder.calls
    if subject.recipe == TRANSFORMERS:
        hf = _transformers()
        notes = [*notes, hf.CHECKPOINT_NOTE]
        owners = hf.owners(_part(subject, model))
    return passes, calls, notes, owners


def _checkpoint(way: Construction, device: torch.device, seed: int) -> dict[str, torch.Tensor]:
    """What torchtune loads: a checkpoint of the model, here the eager build's state (its
    parameters and persistent buffers), made before any sentinel fill."""
    return _eager_build(way, device, seed).state_dict()


def _eager_build(way: Construction, device: torch.device, seed: int) -> nn.Module:
    try:
        return _build(way, device, seed)
    except Exception as exc:
        raise Failed(
            "error",
            "build",
            f"eager build failed: {exception_line(exc)}",
            built_with=way.description,
        ) from None


def _part(subject: Subject, model: nn.Module) -> nn.Module:
    return model.get_submodule(subject.part) if subject.part else model


def _eager(
    subject: Subject, way: Construction, device: torch.device, calls: Sequence[tuple[str, str]]
) -> tuple[list[dict[str, Snapshot]], list[dict[str, Snapshot]], list[str]]:
    """Eager builds under two seeds, before and after replaying the hooks: a value both seeds
    agree on is reproducible and can be compared against."""
    plain, hooked, notes = [], [], []
    for seed in (subject.seed, subject.seed + 1):
        model = _eager_build(way, device, seed)
        plain.append(snapshot(_part(subject, model), subject.buffers))
        try:
            if subject.recipe == TRANSFORMERS:  # Model(config) ran them once already
                _transformers().forget_initialized(model)
            HookRecorder(model, subject.hooks, subject.seed).replay(calls)
            hooked.append(snapshot(_part(subject, model), subject.buffers))
        except Exception as exc:
            notes = [f"replaying the hooks on an eager build failed: {exception_line(exc)}"]
            hooked.append({})
    return plain, hooked, notes


def confirm(subject: Subject, device: torch.device, mesh: Callable[[], Any]) -> Result:
    """This rank's result for one subject (not yet summarized; see distributed.finish)."""
    started = time.perf_counter()
    base = {
        "target": subject.label,
        "recipe": subject.recipe,
        "device": device.type,
        "materialized_on": str(device),
    }
    if subject.configurations:
        base["configurations"] = subject.configurations
        base["configuration"] = subject.ways[0].description if subject.ways else ""
    try:
        with isolated(device):
            way = _choose(subject, device)
            passes, calls, notes, owners = _materialized(subject, way, device, mesh)
            plain, hooked, eager_notes = _eager(subject, way, device, calls)
    except Failed as failed:
        return failure(
            failed.verdict,
            failed.stage,
            failed.message,
            devices=1,
            seconds=round(time.perf_counter() - started, 3),
            **{**base, **failed.extra},
        )
    names = list(dict.fromkeys([*plain[0], *passes[1], *hooked[0]]))
    judged = {}
    for name in dict.fromkeys([*subject.buffers, *names]):
        expected, how = reference(
            (plain[0].get(name), plain[1].get(name), "eager build"),
            (hooked[0].get(name), hooked[1].get(name), "eager build with its hooks replayed"),
        )
        init = plain[0].get(name) or hooked[0].get(name)
        judged[name] = judge(
            name,
            (passes[0].get(name), passes[1].get(name)),
            expected,
            how,
            init.dtype if init else None,
            str(device),
        )
    wanted = subject.buffers or tuple(names)
    if subject.stand_in:
        with isolated(device):
            notes = [*notes, *standin.judge(subject, way, device, mesh, judged, _build)]
    buffers = {name: judged[name] for name in wanted}
    extra = {}
    if subject.recipe == TRANSFORMERS:
        extra = {"owners": owners, "judged_at": subject.part or "<root>"}
    elif subject.part:
        extra = {"judged_at": subject.part}
    return {
        **base,
        **extra,
        "verdict": verdict_of(buffers),
        "buffers": buffers,
        "extra_buffers": {n: b for n, b in judged.items() if n not in wanted and b["ok"] is False},
        "built_with": way.description,
        "hooks_called": [f"{q or '<root>'}.{h}" for q, h in calls],
        "notes": [*notes, *eager_notes],
        "seconds": round(time.perf_counter() - started, 3),
    }


def confirm_job(job: dict[str, Any], device: torch.device, mesh: Callable[[], Any]) -> Result:
    """Load and confirm one job; an import failure becomes this job's error result."""
    started = time.perf_counter()
    try:
        with isolated(device):  # import-time side effects are undone too
            subject = load_subject(job)
    except Failed as failed:
        return failure(
            failed.verdict,
            failed.stage,
            failed.message,
            recipe=job["recipe"],
            devices=1,
            device=device.type,
            target=job["label"],
            seconds=round(time.perf_counter() - started, 3),
        )
    return confirm(subject, device, mesh)
