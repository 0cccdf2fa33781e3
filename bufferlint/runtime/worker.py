"""Worker entry points, torch-free until called.

`serve` runs in processes started by `bufferlint.runtime.launch`. `main` checks one class from
the command line, on every rank when started by torchrun:

    torchrun --nproc-per-node 8 -m bufferlint.runtime.worker pkg.model:RotaryEmbedding \\
        --buffers cos,sin --recipe fsdp --import-root .
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import importlib
import json
import os
from multiprocessing.connection import Connection
from pathlib import Path

from bufferlint import conventions
from bufferlint.runtime import ALL_RECIPES, RuntimeSettings, RuntimeTarget

# Imported once by the forkserver, so forked workers start with torch ready. Imports only:
# the server runs no torch op, which keeps forking it safe.
PRELOAD = (
    "bufferlint.runtime.distributed",
    "torch._dynamo",  # first meta op imports these lazily (about 1 s)
    "torch._decomp",
    "torch._refs",
    "torch.distributed.fsdp",
    "torch.distributed.device_mesh",
)
# Imported by each worker at start when a job needs the recipe (seconds: not inside a timeout;
# transformers takes about 8 s on 2 cores). Not by the forkserver: they may run torch ops.
RECIPE_PRELOAD = {
    "lightning": "lightning.fabric.utilities.init",
    "transformers": "bufferlint.runtime.hf",
}
DIST_ENV = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "TORCHELASTIC_RUN_ID",
)


def serve(conn: Connection, env: dict[str, str], log_path: str, preload: tuple[str, ...]) -> None:
    """A worker started by `bufferlint.runtime.launch`: check jobs received on `conn` until
    the parent closes it, then exit at once (interpreter and process-group teardown can hang
    or abort, and nobody waits for it)."""
    os.setsid()  # the parent kills the whole group, with anything user code started
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    os.dup2(log, 1)  # user prints must not reach the parent's terminal...
    os.dup2(log, 2)
    faulthandler.enable()  # ...and a segfault leaves a line for the report
    for key in DIST_ENV:
        os.environ.pop(key, None)
    os.environ.update(env)

    import torch

    from bufferlint.runtime.confirm import warm_up
    from bufferlint.runtime.distributed import Ranks, init_from_env

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)  # tiny models; parallel workers must not oversubscribe
    for name in preload:
        with contextlib.suppress(ImportError):  # a job that needs it reports it
            importlib.import_module(name)

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        init_from_env(timeout=600.0)
    ranks = Ranks()
    warm_up(ranks.device)
    conn.send({"ready": True, "device": ranks.device.type})
    while True:
        try:
            job = conn.recv()
        except EOFError:
            break
        conn.send({"done": True, "result": ranks.check(job)})
    os._exit(0)


def _target(spec: str, buffers: str, hooks: str, import_root: str | None) -> RuntimeTarget:
    """`pkg.mod:Class` (imported from --import-root, default the current folder) or
    `path/to/file.py:Class` (imported from the file's folder)."""
    location, _, class_name = spec.rpartition(":")
    if not location or not class_name:
        raise SystemExit(f"target must be pkg.module:Class or path/file.py:Class, got {spec!r}")
    if location.endswith(".py"):
        path = Path(location).resolve()
        module, root = path.stem, str(Path(import_root or path.parent).resolve())
    else:
        module, root = location, str(Path(import_root or ".").resolve())
        path = Path(root, *module.split(".")).with_suffix(".py")
    return RuntimeTarget(
        path=str(path),
        module=module,
        import_root=root,
        class_name=class_name,
        buffers=tuple(b for b in buffers.split(",") if b),
        hooks=tuple(h for h in hooks.split(",") if h),
    )


def main(argv: list[str] | None = None) -> None:
    """Check one class on this rank; rank 0 prints the report. With --strict the exit status
    says the verdict (torchrun then reports a failed child, as it does for any non-zero)."""
    parser = argparse.ArgumentParser(prog="python -m bufferlint.runtime.worker")
    parser.add_argument("target", help="pkg.module:Class or path/file.py:Class")
    parser.add_argument("--buffers", default="", help="comma-separated; default: all buffers")
    parser.add_argument(
        "--hooks",
        default=",".join(conventions.RESET_PARAMETERS.hooks),
        help="comma-separated hook names",
    )
    parser.add_argument("--recipe", default="auto", choices=("auto", *ALL_RECIPES))
    parser.add_argument("--factory", help="pkg.module:function returning a small instance")
    parser.add_argument("--import-root", help="folder to put first on sys.path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if confirmed, 2 if unconfirmed or error"
    )
    args = parser.parse_args(argv)  # None: sys.argv
    target = _target(args.target, args.buffers, args.hooks, args.import_root)
    factories = {target.key: args.factory} if args.factory else {}
    settings = RuntimeSettings(recipe=args.recipe, factories=factories, seed=args.seed)

    from bufferlint.runtime.distributed import check_in_process, init_from_env
    from bufferlint.runtime.report import format_report

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        init_from_env(timeout=settings.timeout)
    result = check_in_process(target, settings)
    code = 0
    if result is not None:
        print(json.dumps(result, indent=2) if args.json else format_report(result), flush=True)
        if args.strict:
            code = {"refuted": 0, "confirmed": 1}.get(result["verdict"], 2)
    os._exit(code)  # skip process-group teardown, which sometimes aborts after the gather


if __name__ == "__main__":
    main()
