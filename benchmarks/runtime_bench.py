"""Cost of runtime confirmation per fixture class, with 1 process and with 2 (gloo ranks).

    python benchmarks/runtime_bench.py [--repeat 3]

"wall" is what one `check([target])` call costs the caller (best of --repeat), worker start
included; "in worker" is the time the check itself took inside the worker. The forkserver's
one-time start (importing torch) is reported separately: every later call reuses it.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from bufferlint.runtime import RuntimeSettings, RuntimeTarget, check

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "runtime"
CLASSES = [
    ("litgpt_rope", "GPT", ("cos", "sin")),
    ("rope_fixed", "RotaryEmbedding", ("inv_freq", "cos", "sin")),
    ("rope_fixed", "RotaryNoHook", ("inv_freq",)),
    ("rope_default_device", "RotaryDefaultDevice", ("cos", "sin")),
    ("wrong_dtype", "HalfScale", ("scale",)),
    ("causal_mask", "CausalSelfAttention", ("mask",)),
    ("random_buffer", "NoiseTable", ("noise",)),
    ("random_buffer", "NoiseNotRebuilt", ("noise",)),
    ("positions", "Embeddings.Positions", ("positions",)),
    ("torchtune_rope", "RotaryPositionalEmbeddings", ("theta", "cache")),
    ("meta_unfriendly", "ItemInInit", ("weights",)),
    ("tokenized", "TokenEmbedding", ("token_ids",)),
    ("misbehaving", "RaisesInInit", ()),
    ("misbehaving", "Segfaults", ()),
    ("import_boom", "Unreachable", ()),
]


def target(module: str, class_name: str, buffers: tuple[str, ...]) -> RuntimeTarget:
    return RuntimeTarget(
        path=str(FIXTURES / f"{module}.py"),
        module=module,
        import_root=str(FIXTURES),
        class_name=class_name,
        buffers=buffers,
    )


def timed(targets: list[RuntimeTarget], devices: int, repeat: int) -> tuple[float, list[dict]]:
    """Best wall time of `repeat` calls, and the results of the last."""
    best, results = float("inf"), []
    for _ in range(repeat):
        start = time.perf_counter()
        results = check(targets, RuntimeSettings(devices=devices, jobs=1))
        best = min(best, time.perf_counter() - start)
    return best, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    targets = [target(*spec) for spec in CLASSES]

    start = time.perf_counter()
    check(targets[:1], RuntimeSettings())
    startup = time.perf_counter() - start
    print(f"{platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    print(f"forkserver start + first check: {startup:.2f} s (once per process)\n")

    header = f"{'class':42} {'verdict':12} {'1 process':>22} {'2 processes':>22}"
    print(header + "\n" + f"{'':55} {'wall':>10} {'in worker':>11} {'wall':>10} {'in worker':>11}")
    for t in targets:
        cells = []
        for devices in (1, 2):
            wall, [result] = timed([t], devices, args.repeat)
            inner = result.get("seconds")
            cells.append(f"{wall:9.3f}s " + (f"{inner:10.3f}s" if inner is not None else " " * 11))
        verdict = result["verdict"]
        print(f"{t.key:42} {verdict:12} {cells[0]:>22} {cells[1]:>22}")

    one, _ = timed(targets, 1, args.repeat)
    two, _ = timed(targets, 2, args.repeat)
    print(
        f"\nall {len(targets)} classes in one check() call, one worker slot: "
        f"{one:.2f} s with 1 process, {two:.2f} s with 2 ({one / len(targets):.3f} s and "
        f"{two / len(targets):.3f} s per class)"
    )


if __name__ == "__main__":
    main()
