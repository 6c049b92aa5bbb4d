"""The cyclic garbage collector mostly out of the way of a batch computation.

A report of many customers, or an ingest of a file, allocates millions of short-lived objects
and makes few reference cycles: Python's default (a collection of the youngest generation
every 700 allocations, the older ones scanned again and again with every long-lived object)
costs a tenth of a report's CPU time and a twentieth of an ingest's (docs/scale.md).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

# The youngest generation is collected after this many allocations (Python's default: 700)
# while a batch computation runs (`fewer_collections`).
BATCH_GC_THRESHOLD = 50_000


@contextlib.contextmanager
def fewer_collections(threshold: int = BATCH_GC_THRESHOLD) -> Iterator[None]:
    """A batch computation (a report of many customers, an ingest) with the cyclic garbage
    collector mostly out of its way: what is alive when it starts (modules, contracts, calendars) is
    frozen, never scanned again, and so never written to by a forked worker's collections
    (its pages stay shared); the youngest generation is collected every `threshold`
    allocations. Collections cost a tenth of a report's CPU time (docs/scale.md); the
    computation makes few reference cycles, so memory does not grow. Restored on leaving."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(threshold, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
