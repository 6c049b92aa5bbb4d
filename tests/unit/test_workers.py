"""Forked workers (`infra/workers.py`): results in the items' order, computed in other
processes, a task's error raised as itself, a worker that dies named in one line."""

from __future__ import annotations

import gc
import os
import signal
import time
from pathlib import Path

import pytest

from slatrail.infra.batch_gc import BATCH_GC_THRESHOLD, fewer_collections
from slatrail.infra.errors import EXIT_INTERNAL
from slatrail.infra.workers import (
    WorkerStoppedError,
    available_cpus,
    can_fork,
    forked_map,
    worker_count,
)

needs_fork = pytest.mark.skipif(not can_fork(), reason="no fork on this platform")


def _square_with_pid(n: int) -> tuple[int, int]:
    return n * n, os.getpid()


@needs_fork
def test_results_come_back_in_the_items_order_from_other_processes() -> None:
    found = forked_map(_square_with_pid, list(range(12)), 3, what="test")
    assert [value for value, _ in found] == [n * n for n in range(12)]
    assert os.getpid() not in {pid for _, pid in found}


@needs_fork
def test_a_task_may_be_a_closure_as_the_workers_inherit_it() -> None:
    offset = {"by": 100}

    def shifted(n: int) -> int:
        return n + offset["by"]

    assert forked_map(shifted, [1, 2, 3], 2, what="test") == [101, 102, 103]


def test_one_worker_or_one_item_runs_in_this_process() -> None:
    assert forked_map(_square_with_pid, [1, 2], 1, what="test") == [
        (1, os.getpid()),
        (4, os.getpid()),
    ]
    assert forked_map(_square_with_pid, [3], 4, what="test") == [(9, os.getpid())]


class Refused(Exception):
    def __init__(self, code: str, *, detail: str) -> None:  # pickle cannot call this again
        super().__init__(f"{code}: {detail}")


def _fails_at_three(n: int) -> int:
    if n == 3:
        raise ValueError(f"customer {n} is not in the contracts")
    if n == 5:
        raise Refused("bad", detail="item 5")
    return n


@needs_fork
def test_the_first_failing_item_raises_its_own_error_here() -> None:
    with pytest.raises(ValueError, match=r"^customer 3 is not in the contracts$"):
        forked_map(_fails_at_three, [1, 2, 3, 4, 5], 2, what="test")
    with pytest.raises(RuntimeError, match=r"^Refused: bad: item 5$"):
        forked_map(_fails_at_three, [4, 5], 2, what="test")


def _fails_first_and_notes_the_others(item: tuple[int, str]) -> int:
    n, notes = item
    if n == 0:
        raise ValueError("the first customer is damaged")
    time.sleep(0.05)
    with open(notes, "a", encoding="utf-8") as file:
        file.write(f"{n}\n")
    return n


@needs_fork
def test_after_an_error_the_items_not_yet_started_are_never_computed(tmp_path: Path) -> None:
    notes = str(tmp_path / "ran.txt")
    items = [(n, notes) for n in range(40)]
    with pytest.raises(ValueError, match="the first customer is damaged"):
        forked_map(_fails_first_and_notes_the_others, items, 2, what="test")
    ran = (tmp_path / "ran.txt").read_text().split() if (tmp_path / "ran.txt").exists() else []
    assert len(ran) < 10, ran


def _dies_at_two(n: int) -> int:
    if n == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return n


@needs_fork
def test_a_worker_that_dies_is_a_one_line_error_naming_the_way_out() -> None:
    with pytest.raises(WorkerStoppedError) as raised:
        forked_map(_dies_at_two, [1, 2, 3], 2, what="report")
    assert raised.value.exit_code == EXIT_INTERNAL
    assert str(raised.value) == (
        "report: a worker process stopped before answering (killed, or out of memory?); "
        "rerun with --workers 1 to compute everything in one process"
    )
    assert forked_map(_dies_at_two, [1, 3], 2, what="report") == [1, 3]  # usable again


def test_the_worker_count_is_bounded_by_the_limit_the_pieces_and_the_cpus() -> None:
    cpus = available_cpus()
    assert cpus >= 1
    if not can_fork():
        assert worker_count(8, 30) == 1
        return
    assert worker_count(1, 30) == 1
    assert worker_count(8, 1) == 1  # one customer: in-process
    assert worker_count(64, 30) == min(30, cpus)
    assert worker_count(2, 30) == min(2, cpus)
    assert worker_count(64, 3) == min(3, cpus)


def _gc_state(_: int) -> tuple[tuple[int, int, int], int]:
    return gc.get_threshold(), gc.get_freeze_count()


def test_a_batch_runs_with_what_was_alive_frozen_and_fewer_collections_then_restores() -> None:
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    with fewer_collections():
        assert gc.get_threshold() == (BATCH_GC_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > frozen
        if can_fork():  # forked workers inherit it
            for threshold, count in forked_map(_gc_state, [1, 2], 2, what="test"):
                assert threshold == (BATCH_GC_THRESHOLD, *before[1:]) and count > frozen
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen
    with pytest.raises(KeyError), fewer_collections():
        raise KeyError("x")
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen
