"""How fast bufferlint lints real trees, beside ruff, bare LibCST parsing and its peers.

    python benchmarks/speed.py [--work DIR] [--jobs N] [--peers]
    python benchmarks/speed.py --ablation [--jobs N] [--rounds N]

Fetches the trees into DIR (default ~/.cache/bufferlint-bench; reused by later runs):
transformers' `models/` from the newest wheel on PyPI (`pip download --no-deps`), and
the installed torch's `torch/nn` (read in place). Then it prints one table:

- bufferlint, cold (no cache) and warm (unchanged re-run), through the engine: the lint;
- bufferlint's CLI cold and warm: the lint plus fix planning for every finding (whether
  `--fix` could fix it: the `[*]` marks); and cold with `--output-format github`, the
  README's CI step, whose annotations show no fixes, so none are planned. The cold runs
  of the engine and the CLI take turns, three rounds: the best is shown, the median in
  the note;
- one small file with a buffer and one without, and `--version`, as pre-commit runs them:
  the best of several runs (their median in the note), with bytecode written, as an
  installed package has it; and the file with a buffer once more after an edit, with the
  cache of an earlier run (pre-commit's usual case: the cache folder stays between runs);
- `ruff check` with its default rules, for scale;
- LibCST parsing alone, on 1 and on `--jobs` processes, of the files that hold a buffer
  token (the ones the prefilter must read): the floor for any LibCST linter;
- with `--peers`, Fixit and TorchFix (installed into a venv in DIR; minutes each).

With `--ablation` it measures instead what each speed layer saves: the cold CLI on
transformers' `models/` with one layer switched off at a time, by monkeypatching in the
child process (bufferlint's code is not changed), in interleaved rounds; the caches after
an unchanged re-run and after a one-file edit; the fresh-`.pyc` shortcut on a compiled copy
of the tree; and, on one file without a buffer, the lazy imports and the fast exit. It
prints one table (see `ablation`), and checks that each variant prints what the baseline
prints.

Real code from PyPI is measured here, never copied into the repository.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.abc
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from importlib.util import find_spec
from multiprocessing import Pool
from pathlib import Path
from typing import Any

TOKENS = (b"register_buffer", b"Buffer")
CPU_SECONDS: list[float] = []  # of the last command `timed` ran
COLD_RUNS = 3  # cold lints of a large tree: the best of these, and the median
QUICK_RUNS = 9  # a command of a fraction of a second: its best of these, after a warm-up
# Python as a user runs it: bytecode read and written (this sandbox's shell turns it off).
ENVIRONMENT = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
FINDING = re.compile(r"\.py:\d+:\d+")  # path:line:column, as every tool here prints

# Runs the engine in a fresh process and prints what it found, as JSON; then exits as
# the console script does, without the interpreter's teardown (bufferlint.cli.entry).
ENGINE = """
import json, os, resource, sys
from bufferlint.engine import Settings, lint
result = lint([sys.argv[1]], Settings(cache=True, jobs=int(sys.argv[2]), respect_gitignore=False))
who = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
rss = max(resource.getrusage(w).ru_maxrss for w in who)
print(json.dumps({"files": result.files, "findings": len(result.findings), "rss_mb": rss // 1024}))
sys.stdout.flush()
os._exit(0)
"""


@dataclass
class Row:
    """One line of the table."""

    what: str
    tree: str
    seconds: float | None
    cpu: float | None = None
    files: int | None = None
    findings: int | None = None
    note: str = ""


def fetch_transformers(work: Path) -> Path:
    """`transformers/` of the newest wheel, unpacked once; the `models/` folder is linted
    while the rest of the package is there for the class model to read ancestors from."""
    downloads = work / "downloads"
    wheels = sorted(downloads.glob("transformers-*.whl"))
    if not wheels:
        downloads.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
            + ["--dest", str(downloads), "transformers"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wheels = sorted(downloads.glob("transformers-*.whl"))
    wheel = wheels[-1]
    tree = work / wheel.name.split("-py3")[0]
    if not (tree / "transformers" / "models").is_dir():
        with zipfile.ZipFile(wheel) as archive:
            members = [n for n in archive.namelist() if n.startswith("transformers/")]
            archive.extractall(tree, members)
    return tree / "transformers" / "models"


def torch_nn() -> Path:
    """The installed torch's `nn` package, read where it is."""
    spec = find_spec("torch")  # finds the package without importing it
    if spec is None or spec.origin is None:
        raise SystemExit("torch is not installed")
    return Path(spec.origin).parent / "nn"


def python_files(tree: Path) -> list[Path]:
    """What every tool here lints in `tree`."""
    return sorted(p for p in tree.rglob("*.py") if "__pycache__" not in p.parts)


def timed(command: Sequence[str], cwd: Path) -> tuple[float, str]:
    """Wall seconds of a command, start-up included, and its stdout; its CPU seconds (its
    worker processes' too) go to CPU_SECONDS, since a shared machine skews wall time."""
    before = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=ENVIRONMENT)
    seconds = time.perf_counter() - start
    CPU_SECONDS.append(_children_cpu() - before)
    return seconds, done.stdout


def quick(command: Sequence[str], cwd: Path) -> tuple[float, float, str]:
    """Best and median wall seconds of a short command over QUICK_RUNS runs (a shared
    machine's noise is of the same size as the command), its CPU seconds at its best, and
    its stdout."""
    timed(command, cwd)  # warm-up: bytecode, file cache
    runs = []
    for _ in range(QUICK_RUNS):
        seconds, out = timed(command, cwd)
        runs.append((seconds, CPU_SECONDS.pop()))
    runs.sort()
    best, cpu = runs[0]
    CPU_SECONDS.append(cpu)
    return best, runs[len(runs) // 2][0], out


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def engine(tree: Path, cwd: Path, jobs: int) -> dict:
    """One lint in a fresh process; `seconds` is that process's wall time, start-up in."""
    seconds, out = timed([sys.executable, "-c", ENGINE, str(tree), str(jobs)], cwd)
    return {**json.loads(out.strip().splitlines()[-1]), "seconds": seconds}


def cli_command(args: Sequence[str], output: str = "concise") -> list[str]:
    return [sys.executable, "-m", "bufferlint", *args, "--output-format", output, "-q"]


def cli(args: Sequence[str], cwd: Path, output: str = "concise") -> tuple[float, int]:
    """Wall time of the command line and its finding count (one line per finding in both
    `concise` and `github`)."""
    seconds, out = timed(cli_command(args, output), cwd)
    return seconds, count(out)


def count(out: str) -> int:
    return sum(1 for line in out.splitlines() if line.strip())


def edited_runs(path: Path, command: Sequence[str], cwd: Path) -> tuple[float, float, str]:
    """`quick`, each run after appending a comment to `path` (restored at the end)."""
    original = path.read_bytes()
    runs = []
    try:
        timed(command, cwd)  # the cache of an earlier run
        for number in range(QUICK_RUNS):
            path.write_bytes(original + f"\n# edit {number}\n".encode())
            seconds, out = timed(command, cwd)
            runs.append((seconds, CPU_SECONDS.pop()))
    finally:
        path.write_bytes(original)
    runs.sort()
    CPU_SECONDS.append(runs[0][1])
    return runs[0][0], runs[len(runs) // 2][0], out


def parse_one(path: Path) -> int:
    """Parses one file with LibCST (in a pool worker); its line count."""
    import libcst

    text = path.read_text(encoding="utf-8")
    with contextlib.suppress(Exception):  # a file LibCST cannot parse still took the time
        libcst.parse_module(text)
    return text.count("\n")


def parse_floor(files: list[Path], processes: int) -> tuple[float, float, int]:
    """Wall and CPU seconds for LibCST to parse `files` (no visitor, no metadata), and
    their lines."""
    before = _children_cpu() + time.process_time()
    start = time.perf_counter()
    if processes == 1:
        lines = sum(map(parse_one, files))
    else:
        with Pool(processes) as pool:
            lines = sum(pool.imap_unordered(parse_one, files, chunksize=4))
    seconds = time.perf_counter() - start
    return seconds, _children_cpu() + time.process_time() - before, lines


def with_tokens(files: list[Path]) -> list[Path]:
    """The files the prefilter must read further: they hold a buffer token."""
    return [p for p in files if any(token in p.read_bytes() for token in TOKENS)]


def peer_venv(work: Path) -> Path:
    """A venv with Fixit and TorchFix: TorchFix pins an older LibCST, so they stay apart."""
    venv = work / "peers"
    if not (venv / "bin" / "torchfix").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "fixit", "torchfix"], check=True
        )
    return venv / "bin"


def measure(tree: Path, name: str, work: Path, args: argparse.Namespace) -> list[Row]:
    """Every row for one tree."""
    files = python_files(tree)
    rows: list[Row] = []

    def add(what: str, seconds: float, files: int | None, found: int | None, note: str = ""):
        rows.append(Row(what, name, seconds, CPU_SECONDS[-1], files, found, note))

    run = Path(tempfile.mkdtemp(prefix="run-", dir=work))  # the cache goes here
    try:
        flags = [str(tree), "--no-respect-gitignore", "--jobs", str(args.jobs)]
        # Cold runs, interleaved, so that a busy spell of the shared machine hits each alike.
        colds: dict[str, list[tuple[float, float, Any]]] = {"engine": [], "cli": [], "ci": []}
        for _ in range(COLD_RUNS):
            shutil.rmtree(run / ".bufferlint_cache", ignore_errors=True)  # cold: no cache
            cold = engine(tree, run, args.jobs)
            colds["engine"].append((cold["seconds"], CPU_SECONDS.pop(), cold))
            for key, output in (("cli", "concise"), ("ci", "github")):
                seconds, found = cli([*flags, "--no-cache"], run, output)
                colds[key].append((seconds, CPU_SECONDS.pop(), found))

        def best(key: str) -> tuple[float, Any, str]:
            """The fastest run (its CPU seconds to CPU_SECONDS) and the median, for a note."""
            runs = sorted(colds[key], key=lambda found: found[0])
            seconds, cpu, payload = runs[0]
            CPU_SECONDS.append(cpu)
            return seconds, payload, f"median {runs[len(runs) // 2][0]:.2f} s"

        seconds, cold, median = best("engine")
        note = f"peak RSS {cold['rss_mb']} MB; {median}"
        add("bufferlint, cold", seconds, cold["files"], cold["findings"], note)
        warm = engine(tree, run, args.jobs)
        add("bufferlint, warm (cache)", warm["seconds"], warm["files"], warm["findings"])
        seconds, found, median = best("cli")
        add("bufferlint CLI, cold", seconds, len(files), found, f"lint + fix planning; {median}")
        seconds, found, median = best("ci")
        note = f"CI annotations: no fixes planned; {median}"
        add("bufferlint CLI, cold, github", seconds, len(files), found, note)
        seconds, found = cli(flags, run)
        seconds, found = cli(flags, run)  # the first stored the run
        add("bufferlint CLI, warm", seconds, len(files), found)
        token_files = set(with_tokens(files))
        for label, pool in (("with", token_files), ("without", set(files) - token_files)):
            if pool:  # a small file, as pre-commit passes them
                small = min(sorted(pool), key=lambda p: abs(p.stat().st_size - 4000))
                command = cli_command([str(small), "--no-respect-gitignore", "--no-cache"])
                best, median, out = quick(command, run)
                note = f"{small.name}, {small.stat().st_size} bytes; median {median:.2f} s"
                add(f"bufferlint CLI, one file {label} a buffer", best, 1, count(out), note)
                if label == "with" and tree.is_relative_to(work):  # a tree of our own
                    command = cli_command([str(small), "--no-respect-gitignore"])
                    best, median, out = edited_runs(small, command, run)
                    note = f"after an edit, cache of an earlier run; median {median:.2f} s"
                    add("bufferlint CLI, that file edited", best, 1, count(out), note)
    finally:
        shutil.rmtree(run, ignore_errors=True)
    ruff = shutil.which("ruff")
    if ruff:
        command = [ruff, "check", "--no-cache", "--isolated", "--exit-zero"]
        seconds, out = timed([*command, "--output-format", "concise", str(tree)], work)
        found = sum(1 for line in out.splitlines() if FINDING.search(line))
        add("ruff (default rules)", seconds, len(files), found)
    token_files = with_tokens(files)
    for processes in sorted({1, args.jobs}):
        seconds, cpu, lines = parse_floor(token_files, processes)
        CPU_SECONDS.append(cpu)
        note = f"{len(token_files)} files with tokens, {lines} lines"
        add(f"LibCST parse only, {processes} proc", seconds, len(token_files), None, note)
    if args.peers:
        bin_dir = peer_venv(work)
        copy = work / "copies" / name.replace("/", "-")  # Fixit skips git-ignored folders
        if not copy.exists():
            shutil.copytree(tree, copy, ignore=shutil.ignore_patterns("__pycache__"))
        for peer, command in (("Fixit", ["fixit", "lint"]), ("TorchFix", ["torchfix"])):
            seconds, out = timed([str(bin_dir / command[0]), *command[1:], str(copy)], work)
            found = sum(1 for line in out.splitlines() if FINDING.search(line))
            add(peer, seconds, len(files), found)
    return rows


def machine() -> str:
    """CPUs, CPU model, Python and LibCST versions: what the figures depend on."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
        f"LibCST {metadata.version('libcst')}"
    )


def table(rows: list[Row]) -> str:
    """A Markdown table, each time also as a ratio to bufferlint's cold run."""
    reference = {r.tree: r.seconds for r in rows if r.what == "bufferlint, cold"}
    lines = [
        "| what | tree | wall (s) | CPU (s) | files | findings | vs bufferlint cold | note |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        base = reference.get(r.tree)
        ratio = f"{r.seconds / base:.2f}x" if r.seconds and base else ""
        cells = [
            r.what,
            r.tree,
            f"{r.seconds:.2f}" if r.seconds is not None else "",
            f"{r.cpu:.2f}" if r.cpu is not None else "",
            "" if r.files is None else str(r.files),
            "" if r.findings is None else str(r.findings),
            ratio,
            r.note,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --ablation. Every measured run is a fresh process, `speed.py --drive PATCH ARGS...`: it
# switches one layer off by monkeypatching bufferlint (PATCHES), then runs the console
# script in-process (bufferlint.cli.entry), as `bufferlint ARGS...` would.

DRIVE = "--drive"
# A file appended to for the cache rows: 121 files of transformers' `models/` import it.
EDITED = Path("llama") / "modeling_llama.py"


class _AfterImport(importlib.abc.MetaPathFinder):
    """Patches a module right after it first executes, in this process or in a worker
    forked from it: bufferlint.fix imports LibCST, which must load no earlier than in a
    real run (importing it to patch it would change what is measured)."""

    def __init__(self) -> None:
        self.patches: dict[str, list[Callable[[Any], None]]] = {}

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in self.patches:
            return None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
        else:
            return None
        execute = spec.loader.exec_module
        patches = self.patches.pop(name)

        def exec_module(module: Any) -> None:
            execute(module)
            for patch in patches:
                patch(module)

        spec.loader.exec_module = exec_module
        return spec


_AFTER_IMPORT = _AfterImport()


def after_import(name: str, patch: Callable[[Any], None]) -> None:
    if name in sys.modules:
        patch(sys.modules[name])
    else:
        if _AFTER_IMPORT not in sys.meta_path:
            sys.meta_path.insert(0, _AFTER_IMPORT)
        _AFTER_IMPORT.patches.setdefault(name, []).append(patch)


def _prefilter_off() -> None:
    """Every file parsed whole: `Settings(prefilter=False)`, which the tests compare with."""
    from bufferlint import cli

    resolve = cli.resolve
    cli.resolve = lambda *args: replace(resolve(*args), prefilter=False)


def _every_model_file() -> None:
    """Every linted file whose text names a dispatcher (`_init_weights`) is parsed for its
    models, not only those whose models may judge a builder elsewhere."""
    from bufferlint import choosing

    choosing.Chooser._may_judge = lambda self, path, index, builders: index.dispatch


def _plan_in_main() -> None:
    """No trees kept, in the workers or here, and nothing planned in the workers: every
    fix planned in the main process, from fresh parses of its class's statement."""
    from bufferlint import pool, trees

    start = pool.LintWorkers.__init__
    pool.LintWorkers.__init__ = lambda self, jobs, keep_trees=False: start(self, jobs, False)
    trees.keeping = contextlib.nullcontext
    after_import(
        "bufferlint.fix.session",
        lambda session: setattr(session, "_attach_in_workers", lambda found, *_: list(found)),
    )


def _validate() -> None:
    """LibCST checks every node it builds, as `cst.parse_module` does."""
    from bufferlint import parsing

    def parse_compiled(source: str) -> Any:
        import libcst

        return libcst.parse_module(source)

    parsing.parse_compiled = parse_compiled


def _gc_default() -> None:
    """The default cycle collector thresholds, in the main process and the workers."""
    from bufferlint import cli, pool

    cli.quiet_gc = pool.quiet_gc = lambda: None


def _normal_exit() -> None:
    """The interpreter's teardown, as if a worker were still alive."""
    from bufferlint import cli

    cli._nothing_to_release = lambda: False


def _no_fresh_pyc() -> None:
    """CPython parses every linted file, whatever its `.pyc` says."""
    from bufferlint import reading

    reading._fresh_bytecode = lambda path, stat: False


def _memo_off() -> None:
    """No fix outcome recalled (nor stored): every finding's fix planned again."""
    after_import(
        "bufferlint.fix.session", lambda session: setattr(session, "FixMemo", lambda *_: None)
    )


def _eager_imports() -> None:
    """What a run without a buffer does without (tests/test_core_cli.py lists it)."""
    for name in (
        "libcst",
        "bufferlint.fix",
        "bufferlint.output.ci",
        "bufferlint.output.sarif",
        "bufferlint.docs",
        "bufferlint.runtime.attach",
        "tomllib",
        "hashlib",
    ):
        with contextlib.suppress(ImportError):  # tomllib before Python 3.11
            importlib.import_module(name)


PATCHES: dict[str, Callable[[], None]] = {
    "baseline": lambda: None,
    "prefilter_off": _prefilter_off,
    "every_model_file": _every_model_file,
    "plan_in_main": _plan_in_main,
    "validate": _validate,
    "gc_default": _gc_default,
    "normal_exit": _normal_exit,
    "no_fresh_pyc": _no_fresh_pyc,
    "memo_off": _memo_off,
    "eager_imports": _eager_imports,
}


def drive(patch: str, argv: Sequence[str]) -> None:
    """The child process: one patch, then the console script."""
    sys.argv = ["bufferlint", *argv]
    PATCHES[patch]()
    from bufferlint.cli import entry

    entry()


@dataclass
class Runs:
    """The runs of one variant: wall and CPU seconds, and whether each printed what its
    reference printed."""

    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    same: list[bool] = field(default_factory=list)

    def best(self) -> float:
        return min(self.walls)

    def median(self) -> float:
        return sorted(self.walls)[len(self.walls) // 2]

    def cpu(self) -> float:
        return sorted(self.cpus)[len(self.cpus) // 2]


@dataclass(frozen=True)
class Layer:
    """One row: `variant` has the layer off, `reference` has it on; `scale` is the run the
    saving is a percentage of."""

    name: str
    off: str  # how it is switched off
    variant: str
    reference: str
    scale: str = "cold CLI"


# Which runs compare, for each layer. The cold rows run `bufferlint MODELS --no-cache`.
LAYERS = [
    Layer("Prefilter", "every file parsed whole (`prefilter=False`)", "no prefilter", "cold CLI"),
    Layer(
        "Model files parsed only where their models may judge a builder elsewhere",
        "every file naming `_init_weights` parsed for its models",
        "every model file",
        "cold CLI",
    ),
    Layer("Worker pool", "`--jobs 1`", "--jobs 1", "cold CLI"),
    Layer(
        "Fixes planned in the lint's workers, on the trees they kept",
        "no trees kept; every fix planned in the main process, from fresh parses",
        "planned in main",
        "cold CLI",
    ),
    Layer("No LibCST node validation", "LibCST validates every node", "validated", "cold CLI"),
    Layer("Fast exit (`cli.entry`)", "the interpreter's teardown", "normal exit", "cold CLI"),
    Layer("Rare cycle collection (`quiet_gc`)", "default thresholds", "default GC", "cold CLI"),
    Layer(
        "Fresh `.pyc` shortcut, tree without `.pyc`",
        "CPython parses every file",
        "no .pyc shortcut",
        "cold CLI",
    ),
    Layer(
        "Fresh `.pyc` shortcut, compiled copy (as pip installs)",
        "CPython parses every file",
        "compiled, no .pyc shortcut",
        "compiled",
    ),
    Layer("Run cache", "`--no-cache`, against an unchanged re-run", "cold CLI", "warm"),
    Layer(
        "Remembered fix outcomes (`fix/memo.py`)",
        "memo off, after a one-file edit (cache on)",
        "edited, memo off",
        "edited",
    ),
    Layer(
        "Lazy imports",
        "everything imported up front",
        "one file, eager imports",
        "one file",
        "one file",
    ),
    Layer(
        "Fast exit, one file",
        "the interpreter's teardown",
        "one file, normal exit",
        "one file",
        "one file",
    ),
]

# The cold runs over the tree: name -> (patch, flags besides the common ones).
COLD: dict[str, tuple[str, list[str]]] = {
    "cold CLI": ("baseline", []),
    "no prefilter": ("prefilter_off", []),
    "every model file": ("every_model_file", []),
    "--jobs 1": ("baseline", ["--jobs", "1"]),
    "planned in main": ("plan_in_main", []),
    "validated": ("validate", []),
    "normal exit": ("normal_exit", []),
    "default GC": ("gc_default", []),
    "no .pyc shortcut": ("no_fresh_pyc", []),
}
# One small file without a buffer, as pre-commit passes it: name -> patch.
ONE_FILE = {
    "one file": "baseline",
    "one file, eager imports": "eager_imports",
    "one file, normal exit": "normal_exit",
}
ONE_FILE_RUNS = 3  # of each, a round: a run is a tenth of a second, its noise as large


def driven(patch: str, args: Sequence[str], cwd: Path) -> tuple[float, float, str]:
    """Wall and CPU seconds (its workers' too) of one child process, and its stdout."""
    command = [sys.executable, str(Path(__file__).resolve()), DRIVE, patch, *args]
    before = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=ENVIRONMENT)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{patch} {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return seconds, _children_cpu() - before, done.stdout


def copy_tree(models: Path, to: Path) -> Path:
    """A copy of the package that holds `models` (the ancestors outside it come along), so
    that the user's tree is never compiled nor edited; the copy's `models`."""
    package = models.parent
    shutil.copytree(package, to / package.name, ignore=shutil.ignore_patterns("__pycache__"))
    return to / package.name / models.name


def ablation(models: Path, work: Path, jobs: int, rounds: int) -> str:
    """What each speed layer saves, as a Markdown table: every variant runs once a round,
    in turn, so that a busy spell of the shared machine hits each alike."""
    runs: dict[str, Runs] = {}
    expected: dict[str, str] = {}  # the first output of each scale's reference
    root = models.parent.parent  # what a copy's paths are printed as, to compare
    scratch = Path(tempfile.mkdtemp(prefix="ablation-", dir=work))
    run = scratch / "run"  # the current folder: the cache goes here
    run.mkdir()
    flags = ["--no-respect-gitignore", "--output-format", "concise", "--jobs", str(jobs)]

    def record(name: str, patch: str, target: Path, extra: Sequence[str], scale: str) -> None:
        seconds, cpu, out = driven(patch, [str(target), *flags, *extra], run)
        for copy in ("edited", "compiled"):
            out = out.replace(str(scratch / copy), str(root))
        entry = runs.setdefault(name, Runs())
        entry.walls.append(seconds)
        entry.cpus.append(cpu)
        entry.same.append(expected.setdefault(scale, out) == out)

    try:
        edited = copy_tree(models, scratch / "edited")  # one file edited, cache on
        compiled = copy_tree(models, scratch / "compiled")  # a fresh .pyc for every file
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "-j", "0", str(compiled.parent)],
            check=True,
            env=ENVIRONMENT,
        )
        files = python_files(models)
        token_files = set(with_tokens(files))
        small = min(sorted(set(files) - token_files), key=lambda p: abs(p.stat().st_size - 4000))
        for number in range(rounds):
            print(f"round {number + 1} of {rounds}", file=sys.stderr, flush=True)
            for name, (patch, extra) in COLD.items():
                record(name, patch, models, ["--no-cache", *extra], "cold CLI")
            record("compiled", "baseline", compiled, ["--no-cache"], "cold CLI")
            record(
                "compiled, no .pyc shortcut", "no_fresh_pyc", compiled, ["--no-cache"], "cold CLI"
            )
            # The caches, on the copy: primed by a cold run, then an unchanged re-run, then
            # one file edited (a comment appended: every finding stays as it was).
            shutil.rmtree(run / ".bufferlint_cache", ignore_errors=True)
            driven("baseline", [str(edited), *flags], run)
            record("warm", "baseline", edited, [], "cold CLI")
            path = edited / EDITED
            original = path.read_bytes()
            for name, patch in (("edited", "baseline"), ("edited, memo off", "memo_off")):
                path.write_bytes(original + f"\n# {name}, round {number}\n".encode())
                record(name, patch, edited, [], "cold CLI")
                path.write_bytes(original)
                driven("baseline", [str(edited), *flags], run)  # the cache as before the edit
            for _ in range(ONE_FILE_RUNS):
                for name, patch in ONE_FILE.items():
                    record(name, patch, small, ["--no-cache"], "one file")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ablation_table(runs, rounds, small.name)


def ablation_table(runs: dict[str, Runs], rounds: int, small: str) -> str:
    """The reference runs, then one row per layer: what switching it off costs, in wall
    seconds (best against best) and as a share of the run it is part of, and in CPU
    seconds (median against median)."""
    lines = [
        "| layer | switched off by | wall: best / median (s) | CPU, median (s) | costs (s) "
        "| costs (%) | CPU costs (s) | output identical |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]

    def same(*names: str) -> str:
        return "yes" if all(all(runs[n].same) for n in names) else "NO"

    def times(name: str) -> str:
        return f"{runs[name].best():.2f} / {runs[name].median():.2f}"

    references = (
        ("cold CLI", "the baseline: `bufferlint MODELS --no-cache`"),
        ("compiled", "the same on a compiled copy"),
        ("warm", "unchanged re-run, cache on"),
        ("edited", f"after appending a comment to `{EDITED.as_posix()}`, cache on"),
        ("one file", f"one file without a buffer, `{small}`, `--no-cache`"),
    )
    for name, what in references:
        cells = [f"*{name}*: {what}", "(every layer on)", times(name), f"{runs[name].cpu():.2f}"]
        lines.append("| " + " | ".join([*cells, "", "", "", same(name)]) + " |")
    for layer in LAYERS:
        off, on = runs[layer.variant], runs[layer.reference]
        cost = off.best() - on.best()
        share = cost / runs[layer.scale].best() * 100
        cells = [
            layer.name,
            layer.off,
            times(layer.variant),
            f"{off.cpu():.2f}",
            f"{cost:+.2f}",
            f"{share:+.1f}%" + (" of one file" if layer.scale != "cold CLI" else ""),
            f"{off.cpu() - on.cpu():+.2f}",
            same(layer.variant, layer.reference),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        f"\n{rounds} interleaved rounds ({rounds * ONE_FILE_RUNS} of the one-file runs). "
        "Costs: the variant's best wall time less its reference's, as a percentage of the "
        "cold CLI's best (of the one-file run's for the last rows); CPU: medians. Output "
        "identical: every run printed what the first baseline run printed."
    )
    return "\n".join(lines) + note


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "bufferlint-bench")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--peers", action="store_true", help="also Fixit and TorchFix")
    parser.add_argument(
        "--trees",
        nargs="+",
        choices=["transformers", "torch-nn"],
        default=["transformers", "torch-nn"],
    )
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="what each speed layer saves, on transformers' models/ (instead of the table)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds of --ablation (default 3)"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.rounds < 1:
        parser.error("--jobs and --rounds take a positive number")
    if args.ablation and args.peers:
        parser.error("--ablation measures bufferlint alone: no --peers")
    return args


def main() -> None:
    """Fetches, measures, prints."""
    args = parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.ablation:
        print(f"{machine()}; {bufferlint_version()}\n")
        print(ablation(fetch_transformers(args.work), args.work, args.jobs, args.rounds))
        return
    trees = []
    if "transformers" in args.trees:
        trees.append((fetch_transformers(args.work), "transformers/models"))
    if "torch-nn" in args.trees:
        trees.append((torch_nn(), "torch/nn"))
    rows = []
    for tree, name in trees:
        rows.extend(measure(tree, name, args.work, args))
    for what, command in (
        ("bufferlint --version", [sys.executable, "-m", "bufferlint", "--version"]),
        ("python -c pass", [sys.executable, "-c", "pass"]),
    ):
        best, median, _ = quick(command, args.work)
        rows.append(Row(what, "-", best, CPU_SECONDS[-1], note=f"median {median:.2f} s"))
    print(f"{machine()}; {bufferlint_version()}\n")
    print(table(rows))


def bufferlint_version() -> str:
    command = [sys.executable, "-m", "bufferlint", "--version"]
    return subprocess.run(command, capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    if sys.argv[1:2] == [DRIVE]:  # a child process of --ablation
        drive(sys.argv[2], sys.argv[3:])
    else:
        main()
