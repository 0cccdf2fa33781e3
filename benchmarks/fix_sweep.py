"""`--fix` on real code: does each fix materialize right in every configuration of its class?

    python benchmarks/fix_sweep.py                    # the classes below (downloads once)
    python benchmarks/fix_sweep.py --cache /tmp/h18/fix-sweep --only timm
    python benchmarks/fix_sweep.py --candidates       # the pool they were chosen from

The releases are pinned (RELEASES) and fetched with `pip download --no-deps` into the cache
folder, never into the repository; the pure-Python packages they import go to the cache
too (DEPENDENCIES). torch is the installed one (2.13.0); torchvision is 0.28.0, the release
built for it, whose CUDA-only operator library is stubbed out (no operator runs here).

How the classes were chosen (CLASSES). The issue's set of 32 was not recorded, so it was
rebuilt by a rule, with `--candidates`:
1. the classes that bufferlint (this branch, default convention) reports under BL001 or
   BL002 in the pinned releases: every file of litgpt, nano-gpt, rotary-embedding-torch,
   timm, torch, torchtitan, torchtune, torchvision and x-transformers, and, for transformers
   4 and 5 (hundreds of near-identical model files, and a whole-package lint of 4.57.3
   that overflows the stack in bufferlint.names), the files of six model families: bert,
   gpt2, llama, clip, swin and mistral;
2. that are real bugs: this script's harness builds the class (its defaults, ARGUMENTS, or
   arguments synthesized by bufferlint.runtime.build) and a buffer comes out wrong after
   `to_empty()`, every module's `reset_parameters()` (FSDP1's path) and the release's own
   walk (STACK_HOOKS), compared with an eager build, with uninitialized memory filled with
   NaN;
3. that are fixable in principle: every buffer is a deterministic function of the
   constructor's arguments (two eager builds under different seeds agree; no buffer is
   the caller's tensor or module);
4. all of them, in file order. The rule first capped each release at 4 (3 for each
   transformers), but the pool holds only 31 classes: litgpt's one finding is no bug,
   transformers 4's five findings take a config the harness cannot synthesize (and their
   fix goes into the model's `_init_weights`, which this harness does not call),
   transformers 5 reports none in the six families, and torchtitan's two are classes
   defined inside test methods. `--candidates` prints the pool with those errors.

For each class, the file holding it is fixed in a copy of the release (`--fix
--unsafe-fixes`, then a second run that must change nothing), together with the files of
the release that define its default build's submodules (FakeQuantize's observer), as
`--fix` on a project fixes every flagged class. The class is built in every configuration
this script can construct: its default build, and that build with each boolean argument
flipped and each argument defaulting to `None` given a value (or one typed Optional given
`None`). Each configuration is materialized before and after the fix.
A class is **right** when every configuration that builds materializes right after the fix,
**broken** when a configuration that materialized (right or wrong) before crashes after, or
one that was right becomes wrong, and **not fixed** when bufferlint wrote no fix (with its
reason). The table prints one row per class and the totals.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep import _unpack  # noqa: E402

# release -> (pip requirement, extra `pip download` arguments)
RELEASES = {
    "litgpt": ("litgpt==0.5.13", []),
    "nano-gpt": ("nano-gpt==0.1.0", []),
    "rotary-embedding-torch": ("rotary-embedding-torch==0.9.1", []),
    "timm": ("timm==1.0.31", []),
    "torch": (None, []),  # the installed torch
    "torchtitan": ("torchtitan==0.3.0", []),
    "torchtune": ("torchtune==0.6.1", []),
    "torchvision": ("torchvision==0.28.0", ["--only-binary", ":all:"]),
    "transformers4": ("transformers==4.57.3", []),
    "transformers5": ("transformers==5.24.0", []),
    "x-transformers": ("x-transformers==2.31.10", []),
}
# Pure-Python packages the releases import, by the site folder they go to.
DEPENDENCIES = {
    "site": "einops einx loguru torch-einops-utils frozendict requests urllib3 idna "
    "charset_normalizer certifi".split(),
    "site4": ["huggingface_hub<1.0", "tokenizers<=0.23.0,>=0.22.0"],  # transformers 4 only
}
# Methods the release's own stack calls on every module that has one after `to_empty()`,
# besides FSDP1's `reset_parameters()` (bufferlint's convention for the release writes
# its fixes there): timm's `reinit_non_persistent_buffers(model)`, torchtune's RoPE walk.
STACK_HOOKS = {"timm": ["init_non_persistent_buffers"], "torchtune": ["rope_init"]}
TRANSFORMERS_FAMILIES = ("bert", "gpt2", "llama", "clip", "swin", "mistral")

# Chosen by the rule above: the whole pool, 31 classes.
CLASSES: list[tuple[str, str, str]] = [
    ("nano-gpt", "nano_gpt.model", "CausalSelfAttention"),
    ("rotary-embedding-torch", "rotary_embedding_torch.rotary_embedding_torch", "RotaryEmbedding"),
    ("timm", "timm.layers.evo_norm", "EvoNorm2dB0"),
    ("timm", "timm.layers.evo_norm", "EvoNorm2dB1"),
    ("timm", "timm.layers.evo_norm", "EvoNorm2dB2"),
    ("timm", "timm.layers.norm_act", "FrozenBatchNormAct2d"),
    ("timm", "timm.layers.other_pool", "LsePlus2d"),
    ("timm", "timm.layers.other_pool", "LsePlus1d"),
    ("timm", "timm.models.csatv2", "Dct1d"),
    ("timm", "timm.models.efficientformer", "Attention"),
    ("timm", "timm.models.gemma4_vit", "Gemma4VitEncoder"),
    ("torch", "torch.ao.nn.quantized.modules.activation", "LeakyReLU"),
    ("torch", "torch.ao.nn.quantized.modules.batchnorm", "_BatchNorm"),
    ("torch", "torch.ao.quantization.fake_quantize", "FakeQuantize"),
    (
        "torch",
        "torch.ao.quantization.fx._model_report.model_report_observer",
        "ModelReportObserver",
    ),
    ("torch", "torch.ao.quantization.observer", "MinMaxObserver"),
    ("torch", "torch.ao.quantization.observer", "PerChannelMinMaxObserver"),
    ("torch", "torch.ao.quantization.observer", "HistogramObserver"),
    ("torchtune", "torchtune.models.t5._encoder", "T5EncoderRelativePositionBias"),
    ("torchtune", "torchtune.modules.kv_cache", "KVCache"),
    ("torchvision", "torchvision.models.maxvit", "RelativePositionalMultiHeadAttention"),
    ("torchvision", "torchvision.ops.misc", "FrozenBatchNorm2d"),
    ("torchvision", "torchvision.models.swin_transformer", "ShiftedWindowAttention"),
    ("torchvision", "torchvision.models.swin_transformer", "ShiftedWindowAttentionV2"),
    ("torchvision", "torchvision.models.video.swin_transformer", "ShiftedWindowAttention3d"),
    ("x-transformers", "x_transformers.free_transformer", "BinaryMapper"),
    ("x-transformers", "x_transformers.x_transformers", "ScaledSinusoidalEmbedding"),
    ("x-transformers", "x_transformers.x_transformers", "CoPE"),
    ("x-transformers", "x_transformers.x_transformers", "AlibiPositionalBias"),
    ("x-transformers", "x_transformers.x_transformers", "RotaryEmbedding"),
    ("x-transformers", "x_transformers.x_transformers", "PolarEmbedding"),
]


@dataclass
class Outcome:
    release: str
    module: str
    name: str
    verdict: str = ""  # right | wrong | broken | not fixed | no bug | error
    reason: str = ""
    configurations: list[dict[str, object]] = field(default_factory=list)


# -- fetching ------------------------------------------------------------------------------


def fetch(release: str, cache: Path) -> Path:
    """The import root of the pinned release, downloaded and unpacked once."""
    requirement, extra = RELEASES[release]
    if requirement is None:
        import torch

        return Path(torch.__file__).resolve().parent.parent
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    name, _, version = requirement.partition("==")
    stem = name.replace("-", "_")
    found = [p for p in downloads.iterdir() if p.name.startswith(f"{stem}-{version}-")]
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(downloads)]
            + extra
            + [requirement],
            check=True,
            capture_output=True,
        )
        found = [p for p in downloads.iterdir() if p.name.startswith(f"{stem}-{version}-")]
    tree = cache / "trees" / f"{stem}-{version}"
    if not tree.is_dir():
        _unpack(found[0], tree)
    return tree


def dependencies(cache: Path) -> dict[str, Path]:
    out = {}
    for folder, packages in DEPENDENCIES.items():
        target = cache / folder
        if not target.is_dir():
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target"]
                + [str(target), *packages],
                check=True,
                capture_output=True,
            )
        out[folder] = target
    return out


def python_path(release: str, root: Path, sites: dict[str, Path]) -> str:
    paths = [root, sites["site"]]
    if release == "timm":
        paths.append(fetch("torchvision", sites["site"].parent))
    if release == "transformers4":
        paths.insert(0, sites["site4"])
    return os.pathsep.join(str(p) for p in paths)


# -- fixing --------------------------------------------------------------------------------


def bufferlint(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bufferlint", "--no-cache", "--select", "BL001,BL002"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, cwd=cwd, timeout=900, check=False
    )


def findings(path: Path) -> dict[str, dict[str, object]]:
    """BL001/BL002 findings in `path` by class name."""
    done = bufferlint(["--output-format", "json", str(path)])
    if done.returncode not in (0, 1):
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    out = {}
    for item in json.loads(done.stdout or "[]"):
        name = item["message"].split("`")[1]
        if item["code"] == "BL001":
            name = _class_at(Path(item["filename"]), item["location"]["row"])
        out[name] = item
    return out


def _class_at(path: Path, row: int) -> str:
    line = path.read_text(encoding="utf-8").splitlines()[row - 1]
    return line.split("class ", 1)[1].split("(")[0].split(":")[0].strip()


def module_file(root: Path, module: str) -> Path:
    relative = Path(*module.split("."))
    found = root / relative.with_suffix(".py")
    return found if found.exists() else root / relative / "__init__.py"


def fixed_copy(release: str, root: Path, modules: list[str], work: Path) -> tuple[list[Path], str]:
    """(fixed files, problem): the modules' files fixed together in a copy of their
    release (Python files only), as `--fix` on a project fixes every flagged class, and
    fixed again to prove that nothing changes."""
    fixed = []
    for module in modules:
        top = root / module.split(".")[0]
        copy = work / release / top.name
        if not copy.is_dir():
            shutil.copytree(top, copy, ignore=_not_python)
        fixed.append(work / release / module_file(root, module).relative_to(root))
    first = bufferlint(["--fix", "--unsafe-fixes", *map(str, fixed)])
    texts = [f.read_text(encoding="utf-8") for f in fixed]
    second = bufferlint(["--fix", "--unsafe-fixes", *map(str, fixed)])
    problem = ""
    if first.returncode not in (0, 1) or second.returncode not in (0, 1):
        problem = "bufferlint crashed: " + (first.stderr or second.stderr).strip()[-200:]
    elif [f.read_text(encoding="utf-8") for f in fixed] != texts:
        problem = "a second --fix changed the file"
    return fixed, problem


def _not_python(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if not n.endswith(".py") and not os.path.isdir(Path(folder, n))]


# -- in a child process: building and materializing --------------------------------------


# Packages that the releases import at the top of a module but that no checked class uses
# (heavy, or built for CUDA): stand-ins that answer every attribute.
STUBBED = (
    "datasets",
    "torchao",
    "torchvision._meta_registrations",
    "torchtitan.distributed.minimal_async_ep",  # triton kernels
    "tensorboard",
    "torch.utils.tensorboard",
)

# Arguments for classes that the synthesizer cannot build (a list or an unannotated size),
# as Python source evaluated in the class's module; the configurations start from them.
ARGUMENTS = {
    "torchvision.models.swin_transformer.ShiftedWindowAttention": "dict(dim=8, "
    "window_size=[4, 4], shift_size=[2, 2], num_heads=2)",
    "torchvision.models.swin_transformer.ShiftedWindowAttentionV2": "dict(dim=8, "
    "window_size=[4, 4], shift_size=[2, 2], num_heads=2)",
    "torchvision.models.video.swin_transformer.ShiftedWindowAttention3d": "dict(dim=8, "
    "window_size=[2, 4, 4], shift_size=[1, 2, 2], num_heads=2)",
    "x_transformers.x_transformers.CoPE": "dict(dim=8, heads=2, max_pos=16)",
}


def _stub_missing() -> None:
    """torchvision's wheel registers fake kernels for its CUDA operator library, which this
    CPU-only torch cannot load; `STUBBED` packages are not installed. Both get stand-ins."""
    import importlib.abc
    import importlib.machinery
    import types

    class Stub(types.ModuleType):
        __path__: list[str] = []
        __version__ = "99.0.0"

        def __getattr__(self, name: str) -> Stub:
            if name.startswith("__"):
                raise AttributeError(name)
            return Stub(f"{self.__name__}.{name}")

        def __call__(self, *args: object, **kwargs: object) -> object:
            return args[0] if len(args) == 1 and callable(args[0]) and not kwargs else self

        def __mro_entries__(self, bases: tuple[object, ...]) -> tuple[type, ...]:
            return (object,)

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path=None, target=None):  # type: ignore[no-untyped-def]
            if any(name == s or name.startswith(s + ".") for s in STUBBED):
                return importlib.machinery.ModuleSpec(name, self)
            return None

        def create_module(self, spec):  # type: ignore[no-untyped-def]
            return Stub(spec.name)

        def exec_module(self, module):  # type: ignore[no-untyped-def]
            return None

    sys.meta_path.insert(0, Finder())


def _configurations(cls: type) -> list[dict[str, object]]:
    """The default build's arguments, then that build with each boolean flipped and each
    `None`-able argument given the other value."""
    import inspect

    from bufferlint.runtime import build

    params = build._parameters(cls)
    base: dict[str, object] = {}
    given = ARGUMENTS.get(f"{cls.__module__}.{cls.__qualname__}")
    if given is not None:
        base = eval(given, vars(sys.modules[cls.__module__]))  # noqa: S307 (the table above)
    elif not all(p.default is not p.empty for p in params):
        base = build.synthesize(cls, params, small_defaults=True)
    out = [base]
    hints = build._hints(cls.__init__)
    for p in params:
        current = base.get(p.name, p.default)
        annotation, optional = build._unwrap_optional(
            build._from_text(hints.get(p.name, p.annotation))
        )
        if isinstance(current, bool):
            out.append({**base, p.name: not current})
        elif current is None and p.default is not inspect.Parameter.empty:
            try:
                value = build._value(p.name, annotation, build._MISSING, True)
            except build.Unsynthesizable:
                continue
            if value is not None and value is not build._KEEP:
                out.append({**base, p.name: value})
        elif optional and current is not None:
            out.append({**base, p.name: None})
    return out


def _state(make, torch, hooks: list[str]) -> str:
    """right, `wrong: names`, `crash: ...` or `unbuildable: ...` for one configuration."""
    try:
        torch.manual_seed(0)
        eager = make()
        torch.manual_seed(1)
        other = make()
    except Exception as exc:
        return f"unbuildable: {type(exc).__name__}: {str(exc)[:120]}"
    try:
        with torch.device("meta"):
            late = make()
        late.to_empty(device="cpu")
        for sub in late.modules():
            owns = any(True for _ in sub.parameters(recurse=False)) or any(
                True for _ in sub.buffers(recurse=False)
            )
            hook = getattr(sub, "reset_parameters", None)
            if owns and callable(hook):
                hook()
        for name in hooks:  # the stack's own walk, after FSDP1's
            for sub in late.modules():
                hook = getattr(sub, name, None)
                if callable(hook):
                    hook()
    except Exception as exc:
        return f"crash: {type(exc).__name__}: {str(exc)[:120]}"
    got = dict(late.named_buffers())
    seen = dict(other.named_buffers())
    wrong = [
        name
        for name, want in eager.named_buffers()
        if not _random(want, seen.get(name), torch) and not _same(got.get(name), want, torch)
    ]
    return f"wrong: {', '.join(wrong)}" if wrong else "right"


def _random(want, other, torch) -> bool:
    """A buffer that differs between two eager builds, or is uninitialized: not judged."""
    if other is None or want.shape != other.shape:
        return True
    if want.is_floating_point() and torch.isnan(want).any():
        return True
    return not torch.equal(want, other)


def _same(have, want, torch) -> bool:
    if have is None or (have.shape, have.dtype, have.device) != (
        want.shape,
        want.dtype,
        want.device,
    ):
        return False
    if want.is_floating_point() or want.is_complex():
        return bool(torch.allclose(have, want, rtol=1e-4, atol=1e-6))
    return bool(torch.equal(have, want))


def child(task: dict[str, Any]) -> dict[str, object]:
    """Every configuration of the class, materialized from the original file and from the
    fixed one (loaded under the same module name, after its package)."""
    import functools
    import importlib
    import importlib.util
    import warnings

    warnings.simplefilter("ignore")
    _stub_missing()
    import torch

    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    module = importlib.import_module(task["module"])
    before_cls = getattr(module, task["name"])
    configurations = _configurations(before_cls)
    parts = _parts(functools.partial(before_cls, **configurations[0]), task["module"])
    if task.get("parts_only"):
        return {"parts": parts}
    hooks = STACK_HOOKS.get(task.get("release", ""), [])
    before = [_state(functools.partial(before_cls, **c), torch, hooks) for c in configurations]
    after: list[str] = []
    if task.get("fixed"):
        fixed = None
        registry = sys.modules.get("torchvision.models._api")
        if registry is not None:  # its builders register again, under the same names
            registry.BUILTIN_MODELS.clear()  # type: ignore[attr-defined]
        for name, path in task["fixed"]:  # the submodules' files first, the class's last
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            fixed = importlib.util.module_from_spec(spec)
            sys.modules[name] = fixed
            spec.loader.exec_module(fixed)
        after_cls = getattr(fixed, task["name"])
        after = [_state(functools.partial(after_cls, **c), torch, hooks) for c in configurations]
    return {
        "parts": parts,
        "configurations": [
            {"arguments": {k: repr(v)[:40] for k, v in c.items()}, "before": b, "after": a}
            for c, b, a in zip(configurations, before, after or [""] * len(before), strict=True)
        ],
    }


def _parts(make, module: str) -> list[str]:
    """The other modules of the class's package that define the classes of its default
    build's submodules: a user's `--fix` fixes them too."""
    try:
        built = make()
    except Exception:
        return []
    top = module.split(".")[0] + "."
    found = [type(sub).__module__ for sub in built.modules()]
    return [m for m in dict.fromkeys(found) if m.startswith(top) and m != module]


def run_child(task: dict[str, Any], path: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(task)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail[:200]}
    return json.loads(lines[-1])


# -- judging -------------------------------------------------------------------------------


def judge(outcome: Outcome, fixed_reported: dict[str, object] | None) -> None:
    """The class's verdict from its configurations before and after the fix: a partial
    fix that crashes a configuration is broken, whatever else is left."""
    rows = outcome.configurations
    built = [r for r in rows if not str(r["before"]).startswith("unbuildable")]
    if not any(str(r["before"]).startswith("wrong") for r in built):
        outcome.verdict, outcome.reason = "no bug", "no configuration materializes wrong"
        return
    for row in built:
        before, after = str(row["before"]), str(row["after"])
        if after.startswith("crash") or (before == "right" and after != "right"):
            outcome.verdict = "broken"
            outcome.reason = f"{row['arguments']}: {before} -> {after}"
            return
    if fixed_reported is not None:
        outcome.verdict = "not fixed"
        message = str(fixed_reported["message"])
        outcome.reason = (
            message.split("no automatic fix: ", 1)[-1] if "no automatic" in message else message
        )
        return
    left = [r for r in built if r["after"] != "right"]
    if left:
        outcome.verdict, outcome.reason = "wrong", f"{left[0]['arguments']}: {left[0]['after']}"
    else:
        outcome.verdict = "right"


def sweep(
    classes: list[tuple[str, str, str]], cache: Path, work: Path, fix: bool = True
) -> list[Outcome]:
    sites = dependencies(cache)
    outcomes = []
    for release, module, name in classes:
        outcome = Outcome(release, module, name)
        outcomes.append(outcome)
        root = fetch(release, cache)
        task: dict[str, Any] = {"module": module, "name": name, "release": release}
        reported = None
        path = python_path(release, root, sites)
        if fix:
            first = run_child({**task, "parts_only": True}, path)
            modules = [*first.get("parts", []), module]  # type: ignore[list-item]
            fixed, problem = fixed_copy(release, root, modules, work)
            if problem:
                outcome.verdict, outcome.reason = "error", problem
                continue
            task["fixed"] = [[m, str(f)] for m, f in zip(modules, fixed, strict=True)]
            reported = findings(fixed[-1]).get(name)
        result = run_child(task, path)
        if "error" in result:
            outcome.verdict, outcome.reason = "error", str(result["error"])
            print(f"{release} {module}.{name}: error {outcome.reason}", file=sys.stderr)
            continue
        outcome.configurations = result["configurations"]  # type: ignore[assignment]
        if fix:
            judge(outcome, reported)
        else:  # the candidates' pool: whether the bug shows, before any fix
            wrong = any(str(r["before"]).startswith("wrong") for r in outcome.configurations)
            outcome.verdict = "bug" if wrong else "no bug"
        print(f"{release} {module}.{name}: {outcome.verdict} {outcome.reason}", file=sys.stderr)
    return outcomes


def candidates(cache: Path, only: set[str]) -> list[tuple[str, str, str]]:
    """Every class bufferlint reports in the releases (transformers: six families)."""
    out = []
    for release in [r for r in RELEASES if r in only]:
        root = fetch(release, cache)
        if release.startswith("transformers"):
            models = root / "transformers" / "models"
            paths = [
                p for f in TRANSFORMERS_FAMILIES for p in sorted((models / f).glob("modeling_*.py"))
            ]
        else:
            top = {"torch": "torch", "nano-gpt": "nano_gpt"}.get(release, release.replace("-", "_"))
            top = {"x_transformers": "x_transformers", "transformers4": "transformers"}.get(
                top, top
            )
            paths = [root / top]
        for path in paths:
            for name, item in findings(path).items():
                file = Path(str(item["filename"])).resolve()
                module = ".".join(file.relative_to(root.resolve()).with_suffix("").parts)
                out.append((release, module.removesuffix(".__init__"), name))
    return sorted(set(out), key=out.index)


def table(outcomes: list[Outcome]) -> str:
    lines = [
        "| release | class | configurations | before -> after | verdict | reason |",
        "|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        changes = "; ".join(
            f"{r['before'].split(':')[0]} -> {r['after'].split(':')[0]}"  # type: ignore[union-attr]
            for r in o.configurations
        )
        lines.append(
            f"| {o.release} | `{o.module}.{o.name}` | {len(o.configurations)} | {changes} "
            f"| {o.verdict} | {o.reason.replace('|', '/')[:160]} |"
        )
    counts = {
        v: sum(o.verdict == v for o in outcomes) for v in ("right", "wrong", "broken", "not fixed")
    }
    other = len(outcomes) - sum(counts.values())
    lines.append("")
    lines.append(
        f"{len(outcomes)} classes: fixed and right {counts['right']}, fixed but wrong "
        f"{counts['wrong']}, broken {counts['broken']}, not fixed {counts['not fixed']}"
        + (f", other {other}" if other else "")
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "fix-sweep")
    parser.add_argument("--only", help="comma-separated releases")
    parser.add_argument("--candidates", action="store_true", help="judge the pool, unfixed")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    only = set(args.only.split(",")) if args.only else set(RELEASES)
    work = args.cache / "work"
    shutil.rmtree(work, ignore_errors=True)
    if args.candidates:
        pool = candidates(args.cache, only)
        outcomes = sweep(pool, args.cache, work, fix=False)
        print(
            table(
                [o for o in outcomes if o.verdict != "error"]
                + [o for o in outcomes if o.verdict == "error"]
            )
        )
        return 0
    outcomes = sweep([c for c in CLASSES if c[0] in only], args.cache, work)
    print(table(outcomes))
    return 1 if any(o.verdict == "broken" for o in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
