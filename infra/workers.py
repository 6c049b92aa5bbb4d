"""A few forked worker processes sharing out independent pieces of one command's work.

`slatrail report` for many customers gives each customer to a worker (docs/scale.md,
"Monthly reports"; the worker count: docs/decisions.md, "Report workers"). A worker is a
fork of the command's process, so it starts with everything already imported and loaded
(contracts, recorded versions); it opens its own connection to the store, as a fork must
never use its parent's. The task's results and errors come back pickled: an exception raised
in a worker is raised again in the command, the same error the command gives in-process.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from slatrail.infra.errors import EXIT_INTERNAL, OperatorError

Item = TypeVar("Item")
Result = TypeVar("Result")

# The task of the pool being run: set before the workers fork, so each inherits it (closures
# and all) and only the items and results are pickled.
_TASK: Callable[[Any], Any] | None = None


class WorkerStoppedError(OperatorError):
    """A worker process ended without an answer (killed, out of memory): exit 70."""

    exit_code = EXIT_INTERNAL


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity, which a container may restrict)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity on this platform
        return os.cpu_count() or 1


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def worker_count(limit: int, pieces: int) -> int:
    """At most `limit` workers, one per piece, one per CPU; 1 means in-process."""
    if not can_fork():
        return 1
    return max(1, min(limit, pieces, available_cpus()))


def forked_map(
    task: Callable[[Item], Result], items: Sequence[Item], workers: int, *, what: str
) -> list[Result]:
    """`[task(item) for item in items]`, computed by `workers` forked processes (each taking
    the next item when it is done with one), results in the items' order. `workers <= 1`:
    in this process. The first item whose task raised, in the items' order, raises here."""
    if workers <= 1 or len(items) <= 1:
        return [task(item) for item in items]
    global _TASK
    if _TASK is not None:
        raise RuntimeError("forked_map is not reentrant")
    _TASK = task
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            return list(pool.map(_run, items))
    except BrokenProcessPool:
        raise WorkerStoppedError(
            f"{what}: a worker process stopped before answering (killed, or out of memory?); "
            "rerun with --workers 1 to compute everything in one process"
        ) from None
    finally:
        _TASK = None


def _run(item: Any) -> Any:
    assert _TASK is not None, "a worker forked without a task"
    try:
        return _TASK(item)
    except Exception as error:
        raise _sendable(error) from None


def _sendable(error: Exception) -> Exception:
    """`error`, if it survives pickling to the parent as itself; else a RuntimeError with its
    type and message (an exception whose constructor pickle cannot call again)."""
    try:
        copy = pickle.loads(pickle.dumps(error))
    except Exception:
        copy = None
    if type(copy) is type(error) and str(copy) == str(error):
        return error
    return RuntimeError(f"{type(error).__name__}: {error}")
