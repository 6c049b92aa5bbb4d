"""`infra/ingest.py:pipe_lines`: lines of a pipe as they come, a pause when it is quiet."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from datetime import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from slatrail.infra.ingest import ingest_lines, pipe_lines
from slatrail.infra.store import open_application
from tests.builders import contracts_from, jsonl, reported_data, utc, wire
from tests.hypothesis_profiles import examples

NOW = utc(2026, 3, 3)


def test_whole_lines_come_as_written_and_a_quiet_pipe_gives_a_pause() -> None:
    read, write = os.pipe()
    try:
        lines = pipe_lines(read, quiet_s=0.05)
        os.write(write, b"one\ntw")
        assert next(lines) == b"one\n"
        assert next(lines) is None  # "tw" is not a line yet, and nothing else came
        os.write(write, b"o\nthree")
        assert next(lines) == b"two\n"
        os.close(write)
        write = -1
        assert next(lines) == b"three"  # the input ended without a line end
        assert next(lines, "ended") == "ended"
    finally:
        os.close(read)
        if write >= 0:
            os.close(write)


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=12), st.integers(1, 64))
def test_the_lines_joined_are_the_bytes_written_whatever_the_reads(
    writes: list[bytes], read_size: int
) -> None:
    read, write = os.pipe()
    try:
        writer = threading.Thread(target=_write_all, args=(write, writes))
        writer.start()
        # reads smaller than a line: a line spans several reads
        lines = pipe_lines(read, quiet_s=0.01, read_bytes=read_size)
        got = [line for line in lines if line is not None]
        writer.join()
    finally:
        os.close(read)
    data = b"".join(writes)
    assert b"".join(got) == data
    assert all(line.endswith(b"\n") for line in got[:-1])
    assert all(b"\n" not in line[:-1] for line in got)
    assert len(got) == data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)


def _write_all(fd: int, writes: list[bytes]) -> None:
    try:
        for chunk in writes:
            os.write(fd, chunk)
            time.sleep(0.001)
    finally:
        os.close(fd)


def test_a_pause_records_what_is_batched_and_line_numbers_skip_the_pauses(tmp_path) -> None:
    lines = jsonl(
        wire("reported", "2026-03-02T09:00:00Z", reported_data("acme", "P3"),
             incident_id=f"I-{n}", message_id=f"m-{n}")
        for n in range(3)
    ).encode().splitlines(keepends=True)  # fmt: skip
    app = open_application(f"sqlite:///{tmp_path / 'store.db'}", contracts_from())
    saves: list[int] = []
    record = app.record

    def counted(batch: list[Any], now: datetime) -> list[Any]:
        saves.append(len(batch))
        return record(batch, now=now)

    app.record = counted  # type: ignore[method-assign]
    rejected = io.StringIO()
    try:
        counts = ingest_lines(
            iter([lines[0], None, None, lines[1], b"{torn\n", None, lines[2]]),
            app, lambda: NOW, rejected,
        )  # fmt: skip
        assert saves == [1, 1, 1]  # a pause with nothing batched records nothing
        assert (counts.accepted, counts.rejected) == (3, 1)
        assert [json.loads(r)["line"] for r in rejected.getvalue().splitlines()] == [3]
        assert len(app.recorder.select_notifications(1, 100)) >= 3
    finally:
        app.close()
