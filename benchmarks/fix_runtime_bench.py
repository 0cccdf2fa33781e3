"""What checking every fix at runtime costs: `--fix`, `--fix` then `--runtime` on what is
left, and `--fix --runtime` (each fix checked before it is written), side by side, on a
fresh copy of a tree (default: this repository's fixtures/).

    python benchmarks/fix_runtime_bench.py [--tree PATH] [--repeat N] [--unsafe]

Each row is one run in a new process (so the runtime's forkserver start is included), on a
new copy; `fixed` and `remaining` come from the summary line, `kept back` counts the fixes
that `--fix --runtime` did not write (its `not fixed: the runtime check ...` lines).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"Found \d+ errors? \((\d+) fixed, (\d+) remaining")
LINTED = re.compile(r"Found (\d+) errors? in")


def bufferlint(args: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bufferlint", *args, "--no-cache", "--output-format", "concise"],
        capture_output=True,
        text=True,
        check=False,
    )
    return time.perf_counter() - started, done


def fresh(tree: Path, work: Path) -> str:
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(tree, work, ignore=shutil.ignore_patterns("__pycache__"))
    return str(work)


def row(name: str, tree: Path, work: Path, steps: list[list[str]]) -> str:
    path = fresh(tree, work)
    seconds, outs = 0.0, []
    for extra in steps:
        took, out = bufferlint([path, *extra])
        seconds += took
        outs.append(out)
    first = SUMMARY.search(outs[0].stdout)
    last = SUMMARY.search(outs[-1].stdout) or LINTED.search(outs[-1].stdout)
    fixed = first.group(1) if first else "0"
    left = last.group(last.lastindex or 1) if last else "0"
    kept = outs[-1].stderr.count("not fixed: the runtime check")
    return f"{name:<24} {seconds:7.2f}s  fixed {fixed:>3}  remaining {left:>3}  kept back {kept}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", type=Path, default=ROOT / "fixtures")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--unsafe", action="store_true", help="add --unsafe-fixes")
    args = parser.parse_args(argv)
    fix = ["--fix", *(["--unsafe-fixes"] if args.unsafe else [])]
    rows = {
        "--fix": [fix],
        "--fix, then --runtime": [fix, ["--runtime"]],
        "--fix --runtime": [[*fix, "--runtime"]],
    }
    print(f"{platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    print(f"tree {args.tree}, fix flags {' '.join(fix)}")
    with tempfile.TemporaryDirectory(prefix="fix-runtime-bench-") as scratch:
        for _ in range(args.repeat):
            for name, steps in rows.items():
                print(row(name, args.tree, Path(scratch) / "tree", steps), flush=True)


if __name__ == "__main__":
    main()
