"""The parent side: run jobs in worker processes, so the user's code can hang, crash or exit
without taking anything but its own class down.

Workers are forked from a multiprocessing forkserver that has imported torch but never run a
torch op (forking a process that has is what hangs), so a worker starts in milliseconds and a
crashed one is replaced as fast; the server lives as long as this process. A worker checks
class after class; a "gang" is `devices` workers joined by torch.distributed. The user's
prints go to a log file per worker. A job that times out or kills its gang costs only that
job: the gang is killed and a fresh one serves the rest. This module never imports torch.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from bufferlint.runtime import RuntimeSettings, RuntimeTarget, resolve_recipe
from bufferlint.runtime.report import Result, failure
from bufferlint.runtime.worker import PRELOAD, RECIPE_PRELOAD, serve

# A worker that dies before its log opens died importing the caller's __main__ again.
_MAIN_HINT = (
    "it died before running (a script that calls bufferlint.runtime.check must guard that "
    "call with `if __name__ == '__main__':`, as multiprocessing requires)"
)
STARTUP_LIMIT = 120.0  # seconds for a gang to start (torch, lightning) and rendezvous


def target_job(target: RuntimeTarget, settings: RuntimeSettings) -> dict[str, Any]:
    """The JSON job a worker runs for one flagged class."""
    return {
        "label": target.key,
        "module": target.module,
        "class_name": target.class_name,
        # The project folder too, for factories that live outside the import root.
        "sys_path": list(dict.fromkeys([target.import_root, os.getcwd()])),
        "factory": settings.factories.get(target.key),
        "buffers": list(target.buffers),
        "hooks": list(target.hooks),
        "recipe": resolve_recipe(settings.recipe, target.convention, target.hooks),
        "seed": settings.seed,
        "stand_in": target.stand_in,
    }


def factory_job(
    factory: str, buffers: Sequence[str], hooks: Sequence[str], recipe: str, seed: int
) -> dict[str, Any]:
    """A job built from a "module:function" factory alone, importable with this process's
    sys.path, which workers inherit."""
    return {
        "label": f"factory {factory}",
        "module": None,
        "class_name": None,
        "sys_path": [],
        "factory": factory,
        "buffers": list(buffers),
        "hooks": list(hooks),
        "recipe": resolve_recipe(recipe, "", hooks),
        "seed": seed,
    }


class WorkerFailed(Exception):
    """A gang could not be started."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")  # slower: each worker imports torch
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))  # no effect once the server runs
    return context


def _worker_env(rank: int, world: int, port: int) -> dict[str, str]:
    """torchrun's variables for one rank of a local gang (none for a single worker)."""
    if world == 1:
        return {}
    return {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(world),
        "LOCAL_WORLD_SIZE": str(world),
    }


# faulthandler's words for the signals it reports, as `Fatal Python error: <words>`.
_FATAL_SIGNALS = {
    "Segmentation fault": signal.SIGSEGV,
    "Bus error": signal.SIGBUS,
    "Aborted": signal.SIGABRT,
    "Floating point exception": signal.SIGFPE,
    "Illegal instruction": signal.SIGILL,
}


def _describe_exit(code: int | None, lines: Sequence[str] = ()) -> str:
    """How a worker ended. The forkserver reports status 255 when it could not learn the
    status (it read the end of its pipe first); faulthandler's dump then says the signal."""
    if code is None:
        return "stopped responding"
    if code == 255:
        fatal = next((ln for ln in lines if ln.startswith("Fatal Python error: ")), "")
        cause = fatal.removeprefix("Fatal Python error: ").strip()
        if cause not in _FATAL_SIGNALS:
            return "exited with status 255 (or the forkserver lost its status)"
        code = -_FATAL_SIGNALS[cause]
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


_FRAME = re.compile(r'File "(?P<path>[^"]+)", line (?P<line>\d+) in (?P<func>\S+)')
_OURS = ("/bufferlint/runtime/", "/torch/", "/multiprocessing/", "<frozen")


def _crash_site(lines: list[str]) -> str:
    """The crash's cause and place, e.g. ` (Segmentation fault at model.py:24 in __init__)`,
    from faulthandler's dump: its innermost frame in the user's code (most recent first)."""
    fatal = next((ln for ln in lines if ln.startswith("Fatal Python error: ")), None)
    if fatal is None:
        return ""
    frame = next(
        (m for ln in lines if (m := _FRAME.search(ln)) and not any(o in m["path"] for o in _OURS)),
        None,
    )
    where = f" at {Path(frame['path']).name}:{frame['line']} in {frame['func']}" if frame else ""
    return f" ({fatal.removeprefix('Fatal Python error: ')}{where})"


class _Rank:
    """One worker process, its connection and its log file."""

    def __init__(
        self, context: Any, rank: int, world: int, port: int, preload: tuple[str, ...]
    ) -> None:
        handle, self.log_path = tempfile.mkstemp(prefix="bufferlint-worker-", suffix=".log")
        os.close(handle)
        self.conn, child = context.Pipe()
        # multiprocessing gives the worker this process's sys.path and working folder.
        args = (child, _worker_env(rank, world, port), self.log_path, preload)
        self.proc = context.Process(target=serve, args=args, name=f"bufferlint-rank{rank}")
        self.proc.start()
        child.close()
        self.log_mark = 0
        self.closed = False

    def log_lines(self) -> list[str]:
        """What the worker printed since the current job began."""
        with open(self.log_path, "rb") as log:
            log.seek(self.log_mark)
            text = log.read().decode("utf-8", "replace")
        return [line.rstrip() for line in text.splitlines() if line.strip()]

    def begin_job(self, job: dict[str, Any]) -> None:
        self.log_mark = os.path.getsize(self.log_path)
        self.conn.send(job)

    def exit_code(self) -> int | None:
        self.proc.join(timeout=2.0)
        return self.proc.exitcode

    def close(self) -> None:
        """EOF on the connection: the worker finishes and exits."""
        if not self.closed:
            self.conn.close()
            self.closed = True

    def kill(self) -> None:
        """Kill the worker's whole process group, if it is still alive (a reaped pid can be
        reused by an unrelated process). Idempotent."""
        if self.proc.exitcode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.kill()  # in case it had not reached setsid() yet
        self.proc.join()
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.log_path)


class _Died(Exception):
    def __init__(self, rank: int, code: int | None) -> None:
        super().__init__(rank)
        self.rank, self.code = rank, code


class Gang:
    """`devices` workers that check jobs together; rank 0 reports the merged result."""

    def __init__(self, devices: int, sys_path: tuple[str, ...], preload: tuple[str, ...]) -> None:
        self.sys_path = sys_path
        self.device = "cpu"
        context = _context()
        port = _free_port() if devices > 1 else 0
        self.ranks: list[_Rank] = []
        try:
            for rank in range(devices):
                self.ranks.append(_Rank(context, rank, devices, port, preload))
            ready = self._collect(time.monotonic() + STARTUP_LIMIT)
        except _Died as died:
            lines = self.ranks[died.rank].log_lines()
            self.kill()
            raise WorkerFailed(
                f"worker {_describe_exit(died.code)} while starting: "
                + (lines[-1] if lines else _MAIN_HINT)
            ) from None
        except TimeoutError:
            self.kill()
            raise WorkerFailed(f"workers did not start within {STARTUP_LIMIT:g} s") from None
        except BaseException:
            self.kill()
            raise
        self.device = ready[0]["device"]

    def _collect(self, deadline: float) -> list[dict[str, Any]]:
        """The next message from every rank; raises _Died or TimeoutError. A rank that dies
        while others wait in a collective would leave them waiting: any death ends it."""
        got: dict[int, dict[str, Any]] = {}
        while len(got) < len(self.ranks):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            waiting = [r.conn for i, r in enumerate(self.ranks) if i not in got]
            sentinels = [r.proc.sentinel for r in self.ranks]
            wait([*waiting, *sentinels], timeout=remaining)
            for index, rank in enumerate(self.ranks):
                if index not in got and rank.conn.poll():
                    try:
                        got[index] = rank.conn.recv()
                    except EOFError:
                        raise _Died(index, rank.exit_code()) from None
            for index, rank in enumerate(self.ranks):
                if index not in got and rank.proc.exitcode is not None:
                    raise _Died(index, rank.proc.exitcode)
        return [got[i] for i in range(len(self.ranks))]

    def run(self, job: dict[str, Any], timeout: float) -> tuple[Result, bool]:
        """The job's result, and whether this gang is still usable afterwards."""
        started = time.monotonic()
        for rank in self.ranks:
            rank.begin_job(job)
        context = {
            "recipe": job["recipe"],
            "devices": len(self.ranks),
            "device": self.device,
            "target": job["label"],
        }
        try:
            messages = self._collect(started + timeout)
        except TimeoutError:
            self.kill()
            return failure(
                "error",
                "timeout",
                f"timed out after {timeout:g} s",
                **context,
                seconds=round(time.monotonic() - started, 3),
            ), False
        except _Died as died:
            lines = self.ranks[died.rank].log_lines()
            self.kill()
            who = f"rank {died.rank} " if len(self.ranks) > 1 else ""
            message = f"worker {who}{_describe_exit(died.code, lines)}{_crash_site(lines)}"
            return failure(
                "error",
                "crash",
                message,
                **context,
                log=lines[-12:],
                seconds=round(time.monotonic() - started, 3),
            ), False
        return messages[0]["result"], True

    def close(self) -> None:
        """Ask politely (EOF on the connection), then kill what did not exit."""
        for rank in self.ranks:
            rank.close()
        deadline = time.monotonic() + 3.0
        for rank in self.ranks:
            rank.proc.join(timeout=max(0.0, deadline - time.monotonic()))
        self.kill()

    def kill(self) -> None:
        for rank in self.ranks:
            rank.kill()


class _Scheduler:
    """Hands jobs to worker slots, preferring jobs a slot's gang can run without a restart
    (same sys.path, so the same module names mean the same files)."""

    def __init__(self, jobs: Sequence[dict[str, Any]], settings: RuntimeSettings) -> None:
        self.settings = settings
        # What the recipes import, paid at worker start rather than inside a job's timeout.
        recipes = {job["recipe"] for job in jobs}
        self.preload = tuple(m for r, m in RECIPE_PRELOAD.items() if r in recipes)
        self.pending = sorted(enumerate(jobs), key=lambda item: item[1]["sys_path"])
        self.results: list[Result | None] = [None] * len(jobs)
        self.live: set[Gang] = set()
        self.lock = threading.Lock()

    def take(self, sys_path: tuple[str, ...] | None) -> tuple[int, dict[str, Any]] | None:
        with self.lock:
            if not self.pending:
                return None
            for position, (_, job) in enumerate(self.pending):
                if tuple(job["sys_path"]) == sys_path:
                    return self.pending.pop(position)
            return self.pending.pop(0)

    def _start(self, sys_path: tuple[str, ...]) -> Gang:
        gang = Gang(self.settings.devices, sys_path, self.preload)
        with self.lock:
            self.live.add(gang)
        return gang

    def _retire(self, gang: Gang, *, kill: bool) -> None:
        with self.lock:
            self.live.discard(gang)
        if kill:
            gang.kill()
        else:
            gang.close()

    def slot(self) -> None:
        """One worker slot: run jobs until none are left, restarting its gang as needed."""
        gang: Gang | None = None
        failed_starts = 0
        while (picked := self.take(gang.sys_path if gang else None)) is not None:
            index, job = picked
            sys_path = tuple(job["sys_path"])
            if gang is not None and gang.sys_path != sys_path:
                self._retire(gang, kill=False)
                gang = None
            if gang is None:
                try:
                    gang = self._start(sys_path)
                    failed_starts = 0
                except WorkerFailed as exc:
                    failed_starts += 1
                    self.results[index] = self.error_result(job, exc)
                    if failed_starts >= 2:  # the environment is broken, not this class
                        while (rest := self.take(None)) is not None:
                            self.results[rest[0]] = self.error_result(rest[1], exc)
                    continue
            try:
                self.results[index], usable = gang.run(job, self.settings.timeout)
            except OSError as exc:  # the connection broke under us: treat like a crash
                self.results[index], usable = self.error_result(job, exc, "crash"), False
            if not usable:
                self._retire(gang, kill=True)
                gang = None
        if gang is not None:
            self._retire(gang, kill=False)

    def error_result(self, job: dict[str, Any], exc: Exception, stage: str = "start") -> Result:
        message = f"could not start a worker: {exc}" if stage == "start" else f"worker lost: {exc}"
        return failure(
            "error",
            stage,
            message,
            recipe=job["recipe"],
            devices=self.settings.devices,
            device="cpu",
            target=job["label"],
        )

    def kill_all(self) -> None:
        with self.lock:
            gangs, self.live = list(self.live), set()
        for gang in gangs:
            gang.kill()


def run_jobs(jobs: Sequence[dict[str, Any]], settings: RuntimeSettings) -> list[Result]:
    """Run every job in worker processes, in parallel slots; results in job order."""
    if not jobs:
        return []
    scheduler = _Scheduler(jobs, settings)
    slots = settings.jobs or max(1, (os.cpu_count() or 1) // settings.devices)
    threads = [
        threading.Thread(target=scheduler.slot, daemon=True) for _ in range(min(slots, len(jobs)))
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        scheduler.kill_all()
    return [
        result or scheduler.error_result(job, RuntimeError("no result"), "crash")
        for result, job in zip(scheduler.results, jobs, strict=True)
    ]
