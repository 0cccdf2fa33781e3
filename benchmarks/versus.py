"""The cold CLI of this checkout beside another one's, on the same tree, in turns.

    python benchmarks/versus.py BASELINE TREE [--rounds N] [-- CLI ARGS...]

BASELINE is a folder holding another version's `bufferlint/` package (a `git worktree`, or
`git archive <commit> | tar -x -C DIR`); both run with this interpreter, so only the code
differs. Each round runs `python -m bufferlint --no-cache TREE` once for each, alternating
which goes first, so that a machine shared with other work slows both alike. It prints
both versions' times (best, median), the ratios of the medians and of the bests, the
median of each round's own ratio (its two runs are next to each other in time, so load
that comes and goes between rounds cancels out), and whether the two printed the same
findings apart from those of codes only this checkout has. CPU is that
of the processes each run waited for (the run and its parsing workers): a machine shared
with other work slows the wall time of both, their CPU time far less.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
_CODE = re.compile(r"^\S+:\d+:\d+: (BL\d+|\S)")


def run(root: Path, tree: str, extra: list[str]) -> tuple[float, float, list[str]]:
    """Seconds for one cold run with `root`'s bufferlint (wall, and CPU of the processes
    it waited for), and the finding lines it printed."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [sys.executable, "-m", "bufferlint", "--no-cache", "--output-format", "concise"]
    started, used = time.perf_counter(), _children_cpu()
    done = subprocess.run(
        [*command, *extra, str(Path(tree).resolve())],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=tempfile.gettempdir(),  # not a folder with a `bufferlint/` of its own
    )
    seconds, cpu = time.perf_counter() - started, _children_cpu() - used
    if done.returncode not in (0, 1):
        raise SystemExit(f"{root}: exit status {done.returncode}: {done.stderr.strip()[-300:]}")
    return seconds, cpu, [line for line in done.stdout.splitlines() if _CODE.match(line)]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _where(line: str) -> tuple[str, str]:
    """A finding's place and code (messages may have changed between the versions)."""
    match = _CODE.match(line)
    assert match is not None
    return line[: match.start(1)], match.group(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("baseline", type=Path)
    parser.add_argument("tree")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("extra", nargs="*", help="more CLI arguments, after --")
    args = parser.parse_args()
    roots = {"baseline": args.baseline.resolve(), "this checkout": HERE}
    times: dict[str, list[float]] = {name: [] for name in roots}
    cpus: dict[str, list[float]] = {name: [] for name in roots}
    lines: dict[str, list[str]] = {}
    for round_ in range(args.rounds):
        order = list(roots) if round_ % 2 == 0 else list(reversed(roots))
        for name in order:
            seconds, cpu, lines[name] = run(roots[name], args.tree, args.extra)
            times[name].append(seconds)
            cpus[name].append(cpu)
            print(f"round {round_ + 1}: {name} {seconds:.2f} s ({cpu:.2f} s CPU)", flush=True)
    for name, measured in times.items():
        print(
            f"{name}: best {min(measured):.2f} s, median {statistics.median(measured):.2f} s;"
            f" CPU best {min(cpus[name]):.2f} s, median {statistics.median(cpus[name]):.2f} s"
        )
    for label, figures in (("", times), ("CPU ", cpus)):
        ratio = statistics.median(figures["this checkout"]) / statistics.median(figures["baseline"])
        best = min(figures["this checkout"]) / min(figures["baseline"])
        paired = statistics.median(
            ours / theirs
            for ours, theirs in zip(figures["this checkout"], figures["baseline"], strict=True)
        )
        print(
            f"{label}ratio (this checkout / baseline): median {ratio:.3f}, best {best:.3f},"
            f" per round (median) {paired:.3f}"
        )
    found = {name: [_where(line) for line in printed] for name, printed in lines.items()}
    known = {code for _, code in found["baseline"]}
    ours = [item for item in found["this checkout"] if item[1] in known]
    same = sorted(ours) == sorted(found["baseline"])
    print(f"findings of the baseline's codes: {'the same' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
