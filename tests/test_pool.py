"""The lint's worker processes: results say which worker computed them, a worker can be
asked for again, and one that dies is an error rather than a hang."""

from __future__ import annotations

import os

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


def test_a_worker_that_dies_is_an_error_not_a_hang(workers: Workers) -> None:
    with pytest.raises(WorkerDied, match="exit status 3"):
        list(workers.imap_unordered(os._exit, [3], 1))
