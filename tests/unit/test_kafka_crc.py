"""kafka-python checksums record batches with the C CRC-32C that slatrail depends on.

Without the `crc32c` package kafka-python writes every produced batch's CRC in pure Python (a
quarter of the relay's CPU, docs/scale.md "Pipeline latency") and slatrail leaves fetched
batches unchecked (`infra/kafka.py:check_crcs`)."""

from __future__ import annotations

import crc32c
from kafka.record import util

from slatrail.infra.kafka import check_crcs
from slatrail.infra.settings import Settings


def test_kafka_python_uses_the_c_crc32c_and_it_gives_the_standard_check_value() -> None:
    assert util.calc_crc32c.__defaults__ == (crc32c.crc32c,)
    assert util.calc_crc32c(memoryview(b"123456789")) == 0xE3069283  # CRC-32C's check value


def test_fetched_batches_are_checked_unless_the_operator_says_otherwise() -> None:
    assert check_crcs(Settings()) is True
    assert check_crcs(Settings(kafka_check_crcs=False)) is False
