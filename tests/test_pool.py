"""The lint's worker processes: results say which worker computed them, a worker can be
asked for again, and one that dies is an error rather than a hang."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bufferlint.pool import WorkerDied, Workers


def _pid(_: object) -> int:
    return os.getpid()


def _fail(_: object) -> None:
    raise ValueError("in a worker")


@pytest.fixture
def workers():
    pool = Workers(2, keep_trees=False)
    yield pool
    pool.stop()


def test_each_result_names_its_worker_which_call_reaches_again(workers: Workers) -> None:
    ran = dict(workers.imap_unordered(_pid, list(range(40)), 1))
    assert len(ran) == 2 and len(set(ran.values())) == 2
    assert workers.call({n: (_pid, None) for n in ran}) == ran


def test_an_error_in_a_worker_is_raised_here(workers: Workers) -> None:
    with pytest.raises(ValueError, match="in a worker"):
        list(workers.imap_unordered(_fail, [1], 1))


def _refuse(message: str) -> None:
    raise ValueError(message)


class _Unpicklable:
    """Pickles, but raises when a worker unpickles it."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return _refuse, ("does not unpickle",)


def test_a_task_that_does_not_unpickle_is_its_error(workers: Workers) -> None:
    with _within(30), pytest.raises(ValueError, match="does not unpickle"):
        list(workers.imap_unordered(_pid, [_Unpicklable()], 1))
    assert len(set(workers.call({0: (_pid, None), 1: (_pid, None)}).values())) == 2


def test_a_worker_that_dies_is_an_error_not_a_hang(workers: Workers) -> None:
    with pytest.raises(WorkerDied, match="exit status 3"):
        list(workers.imap_unordered(os._exit, [3], 1))
    dead = next(n for n, process in enumerate(workers._processes) if not process.is_alive())
    with pytest.raises(WorkerDied, match="exit status 3"):  # sending to it, too
        workers.call({dead: (_pid, None)})


def _echo(data: bytes) -> bytes:
    return data


def test_tasks_and_results_larger_than_a_pipe_go_through(workers: Workers) -> None:
    """Each worker holds a second chunk while it runs one: a chunk larger than the pipe
    holds must not block this process, nor the two processes each other (this one
    sending a task, the worker a result)."""
    items = [bytes([n]) * 4_000_000 for n in range(12)]
    with _within(60):
        results = [data for _, data in workers.imap_unordered(_echo, items, 1)]
    assert sorted(results) == items


def _slow_first(item: int) -> tuple[int, int]:
    if item == 0:
        time.sleep(0.5)
    return item, os.getpid()


def test_the_next_chunk_goes_to_the_worker_that_is_free(workers: Workers) -> None:
    """While the first worker is slow with its chunk, the other runs the rest."""
    ran = dict(result for _, result in workers.imap_unordered(_slow_first, list(range(4)), 1))
    assert ran[0] != ran[1] == ran[2] == ran[3]


@contextmanager
def _within(seconds: int) -> Iterator[None]:
    """Fails, rather than hangs, if the block takes longer."""

    def hang(*_: object) -> None:
        raise TimeoutError("the pool hangs")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
