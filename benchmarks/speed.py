"""How fast bufferlint lints real trees, beside ruff, bare LibCST parsing and its peers.

    python benchmarks/speed.py [--work DIR] [--jobs N] [--peers]

Fetches the trees into DIR (default ~/.cache/bufferlint-bench; reused by later runs):
transformers' `models/` from the newest wheel on PyPI (`pip download --no-deps`), and
the installed torch's `torch/nn` (read in place). Then it prints one table:

- bufferlint, cold (no cache) and warm (unchanged re-run), through the engine: the lint;
- bufferlint's CLI cold and warm: the lint plus fix planning for every finding (whether
  `--fix` could fix it: the `[*]` marks);
- one small file with a buffer and one without, and `--version`, as pre-commit runs them;
- `ruff check` with its default rules, for scale;
- LibCST parsing alone, on 1 and on `--jobs` processes, of the files that hold a buffer
  token (the ones the prefilter must read): the floor for any LibCST linter;
- with `--peers`, Fixit and TorchFix (installed into a venv in DIR; minutes each).

Real code from PyPI is measured here, never copied into the repository.
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from importlib.util import find_spec
from multiprocessing import Pool
from pathlib import Path

TOKENS = (b"register_buffer", b"Buffer")
CPU_SECONDS: list[float] = []  # of the last command `timed` ran
FINDING = re.compile(r"\.py:\d+:\d+")  # path:line:column, as every tool here prints

# Runs the engine in a fresh process and prints what it found, as JSON.
ENGINE = """
import json, resource, sys
from bufferlint.engine import Settings, lint
result = lint([sys.argv[1]], Settings(cache=True, jobs=int(sys.argv[2]), respect_gitignore=False))
who = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
rss = max(resource.getrusage(w).ru_maxrss for w in who)
print(json.dumps({"files": result.files, "findings": len(result.findings), "rss_mb": rss // 1024}))
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
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    CPU_SECONDS.append(_children_cpu() - before)
    return seconds, done.stdout


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def engine(tree: Path, cwd: Path, jobs: int) -> dict:
    """One lint in a fresh process; `seconds` is that process's wall time, start-up in."""
    seconds, out = timed([sys.executable, "-c", ENGINE, str(tree), str(jobs)], cwd)
    return {**json.loads(out.strip().splitlines()[-1]), "seconds": seconds}


def cli(args: Sequence[str], cwd: Path) -> tuple[float, int]:
    """Wall time of the command line and its finding count (concise: one per line)."""
    command = [sys.executable, "-m", "bufferlint", *args, "--output-format", "concise", "-q"]
    seconds, out = timed(command, cwd)
    return seconds, sum(1 for line in out.splitlines() if line.strip())


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
        cold = engine(tree, run, args.jobs)
        add(
            "bufferlint, cold",
            cold["seconds"],
            cold["files"],
            cold["findings"],
            f"peak RSS {cold['rss_mb']} MB",
        )
        warm = engine(tree, run, args.jobs)
        add("bufferlint, warm (cache)", warm["seconds"], warm["files"], warm["findings"])
        flags = [str(tree), "--no-respect-gitignore", "--jobs", str(args.jobs)]
        seconds, found = cli([*flags, "--no-cache"], run)
        add("bufferlint CLI, cold", seconds, len(files), found, "lint + fix planning")
        seconds, found = cli(flags, run)
        seconds, found = cli(flags, run)  # the first stored the run
        add("bufferlint CLI, warm", seconds, len(files), found)
        token_files = set(with_tokens(files))
        for label, pool in (("with", token_files), ("without", set(files) - token_files)):
            if pool:  # a small file, as pre-commit passes them
                small = min(sorted(pool), key=lambda p: abs(p.stat().st_size - 4000))
                seconds, found = cli([str(small), "--no-respect-gitignore", "--no-cache"], run)
                note = f"{small.name}, {small.stat().st_size} bytes"
                add(f"bufferlint CLI, one file {label} a buffer", seconds, 1, found, note)
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


def main() -> None:
    """Fetches, measures, prints."""
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
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    trees = []
    if "transformers" in args.trees:
        trees.append((fetch_transformers(args.work), "transformers/models"))
    if "torch-nn" in args.trees:
        trees.append((torch_nn(), "torch/nn"))
    rows = []
    for tree, name in trees:
        rows.extend(measure(tree, name, args.work, args))
    bufferlint_version = subprocess.run(
        [sys.executable, "-m", "bufferlint", "--version"], capture_output=True, text=True
    )
    for what, command in (
        ("bufferlint --version", [sys.executable, "-m", "bufferlint", "--version"]),
        ("python -c pass", [sys.executable, "-c", "pass"]),
    ):
        seconds, _ = timed(command, args.work)
        rows.append(Row(what, "-", seconds, CPU_SECONDS[-1]))
    print(f"{machine()}; {bufferlint_version.stdout.strip()}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
