"""Worker processes that can be asked for again by number, and the lint's use of them.

`multiprocessing.Pool` hands each task to whichever worker is free, and nothing can be
sent to one worker in particular; yet a fix is best planned by the worker that parsed
its class, which kept the tree (bufferlint.trees). Here each worker has its own pipe:
tasks go out in chunks, each worker holding the next while it runs one; results say who
computed them, and `call` reaches a given worker. A worker that dies is an error, where
`Pool` waits forever.
"""

from __future__ import annotations

import functools
import gc
import os
import queue
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from bufferlint import trees

POOL_BYTES = 256 * 1024  # less source than this is read in-process: forking costs more


class WorkerDied(RuntimeError):
    pass


def quiet_gc() -> None:
    """LibCST's trees and the facts are acyclic, so reference counting frees them: cycles
    are collected rarely, which spares parsing, and the process that gathers the facts,
    walking them over and over."""
    gc.set_threshold(50_000, 50, 100)


class Workers:
    """`processes` workers, forked where the platform can (they start with bufferlint and
    LibCST imported); with `keep_trees`, each keeps what it parses until it stops."""

    def __init__(self, processes: int, keep_trees: bool) -> None:
        import multiprocessing

        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
        context = multiprocessing.get_context(method)
        self._connections: list[Any] = []
        self._processes: list[Any] = []
        try:
            for _ in range(processes):
                ours, theirs = context.Pipe()
                process = context.Process(target=_serve, args=(theirs, keep_trees), daemon=True)
                process.start()
                theirs.close()
                self._connections.append(ours)
                self._processes.append(process)
        except BaseException:
            self.stop()
            raise

    def __len__(self) -> int:
        return len(self._processes)

    def imap_unordered(
        self, function: Callable[[Any], Any], items: Sequence[Any], chunk: int
    ) -> Iterator[tuple[int, Any]]:
        """(worker, `function(item)`) for every item, as results come. Chunks go out in
        order, each to the next worker that is free."""
        from multiprocessing.connection import wait

        chunks = deque(items[start : start + chunk] for start in range(0, len(items), chunk))
        numbers = {connection: number for number, connection in enumerate(self._connections)}
        busy = set()
        for connection in self._connections:
            if chunks:
                self._send(numbers[connection], (function, chunks.popleft()))
                busy.add(connection)
        while busy:
            for connection in wait(list(busy)):
                number = numbers[connection]
                results = self._receive(number)
                if chunks:
                    self._send(number, (function, chunks.popleft()))
                else:
                    busy.discard(connection)
                for result in results:
                    yield number, result

    def call(self, calls: Mapping[int, tuple[Callable[[Any], Any], Any]]) -> dict[int, Any]:
        """`function(argument)` in each given worker, all at once."""
        for number, (function, argument) in calls.items():
            self._send(number, (function, [argument]))
        return {number: self._receive(number)[0] for number in calls}

    def _send(self, number: int, message: Any) -> None:
        try:
            self._connections[number].send(message)
        except OSError:  # its end of the pipe is closed
            raise self._died(number) from None

    def _receive(self, number: int) -> list[Any]:
        try:
            done, payload = self._connections[number].recv()
        except (EOFError, OSError):
            raise self._died(number) from None
        if not done:
            raise payload
        return payload

    def _died(self, number: int) -> WorkerDied:
        self._processes[number].join(1)
        code = self._processes[number].exitcode
        return WorkerDied(f"a worker process died (exit status {code})")

    def stop(self) -> None:
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join()
        for connection in self._connections:
            connection.close()


def _serve(connection: Any, keep_trees: bool) -> None:
    """A worker: runs what it receives until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    quiet_gc()
    if keep_trees:
        trees.enable()
    tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
    threading.Thread(target=_take, args=(connection, tasks), daemon=True).start()
    while (task := tasks.get()) is not None:
        try:
            if isinstance(task, Exception):  # it did not unpickle
                raise task
            function, items = task
            reply: tuple[bool, Any] = (True, [function(item) for item in items])
        except Exception as exc:  # raised again in the main process
            reply = (False, exc)
        try:
            connection.send(reply)
        except Exception as exc:  # a result or an exception that does not pickle
            connection.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


def _take(connection: Any, tasks: queue.SimpleQueue[Any]) -> None:
    """Takes tasks off the pipe as they come. Otherwise a task larger than the pipe holds
    would block the main process while this worker runs, or for good while this worker
    sends it a result larger than the pipe holds. A task that does not unpickle becomes
    its error, so that every task still gets its reply."""
    while True:
        try:
            task = connection.recv()
        except (EOFError, OSError):
            tasks.put(None)
            return
        except Exception as exc:
            task = exc
        tasks.put(task)


def worker_count(jobs: int) -> int:
    """Processes for `--jobs` (0: one per usable core)."""
    if jobs > 0:
        return jobs
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class LintWorkers:
    """Worker processes, started only once there is enough work for them. With
    `keep_trees`, each keeps what it parses (bufferlint.trees), and `placed` says which
    worker parsed each file, so the fixer can plan there (`call`)."""

    def __init__(self, jobs: int, keep_trees: bool = False) -> None:
        self.jobs = worker_count(jobs)
        self.keep_trees = keep_trees
        self.placed: dict[str, int] = {}
        self._pool: Workers | None = None

    def __enter__(self) -> LintWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.stop()

    def _use_pool(self, sizes: Sequence[int]) -> bool:
        return self.jobs > 1 and len(sizes) > 1 and sum(sizes) >= POOL_BYTES

    def _start(self) -> Workers:
        if self._pool is None:
            self._pool = Workers(self.jobs, self.keep_trees)
        return self._pool

    def _chunk(self, count: int) -> int:
        return max(1, count // (self.jobs * 16))

    def run(
        self, function: Callable[[Any], Any], items: Sequence[Any], sizes: Sequence[int]
    ) -> Iterator[tuple[int | None, Any]]:
        """(worker, `function(item)`) over `items`, as they come (the largest items go
        first); the worker is None for an item run in this process."""
        if not self._use_pool(sizes):
            return ((None, function(item)) for item in items)
        order = sorted(range(len(items)), key=lambda i: -sizes[i])
        pool = self._start()
        return pool.imap_unordered(function, [items[i] for i in order], self._chunk(len(items)))

    def map(
        self, function: Callable[[Any], Any], items: Sequence[Any], sizes: Sequence[int]
    ) -> list[Any]:
        """`function` over `items`, results in order."""
        results: list[Any] = [None] * len(items)
        numbered = list(enumerate(items))
        for _, (number, result) in self.run(
            functools.partial(_numbered, function), numbered, sizes
        ):
            results[number] = result
        return results

    def call(self, calls: Mapping[int, tuple[Callable[[Any], Any], Any]]) -> dict[int, Any]:
        """`function(argument)` in the given workers, at once (`Workers.call`)."""
        assert self._pool is not None
        return self._pool.call(calls)


def _numbered(function: Callable[[Any], Any], item: tuple[int, Any]) -> tuple[int, Any]:
    return item[0], function(item[1])
