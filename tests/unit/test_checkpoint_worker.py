"""`serve`'s checkpoint worker over the in-memory broker, and checkpoint signatures in memory:
a signed note verifies with its key only, and any change to it is refused."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest

from slatrail.consumers.checkpoints import CheckpointWorker
from slatrail.domain.merkle import EMPTY_ROOT, leaf_hash
from slatrail.infra.signing import (
    CheckpointError,
    KeyError_,
    make_checkpoint,
    new_signer,
    open_checkpoint,
    parse_signer_key,
    parse_verifier_key,
)
from slatrail.infra.stream_models import CheckpointMessage
from tests.memory_broker import MemoryBroker

KNOWN = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_the_worker_publishes_a_checkpoint_each_interval_keyed_by_origin() -> None:
    signer = new_signer("log.example/incidents")
    sizes = iter(range(1, 10))
    now = [0.0]

    def make() -> tuple[str, int, bytes]:
        size = next(sizes)
        checkpoint = make_checkpoint(signer, size, leaf_hash(b"%d" % size), KNOWN)
        value = {"schema": "slatrail.checkpoint/v1", **checkpoint.as_json()}
        return checkpoint.origin, size, json.dumps(value).encode()

    broker = MemoryBroker()
    worker = CheckpointWorker(
        make, broker.sink, topic="incidents.checkpoints", interval_s=60, monotonic=lambda: now[0]
    )
    worker.open()
    stop = threading.Event()
    assert worker.step(stop) == 1
    now[0] = 30
    stop.set()  # waits return at once
    assert worker.step(stop) == 0  # not due yet
    now[0] = 61
    assert worker.step(threading.Event()) == 1
    records = broker.records("incidents.checkpoints")
    assert [r.key for r in records] == [b"log.example/incidents"] * 2
    messages = [CheckpointMessage.model_validate_json(r.value or b"") for r in records]
    assert [m.tree_size for m in messages] == [1, 2]
    verifier = parse_verifier_key(signer.verifier_key())
    assert open_checkpoint(messages[1].note, verifier).size == 2
    assert worker.stats() == {"published": 2, "tree_size": 2}


def test_a_checkpoint_verifies_with_its_key_and_fails_with_another() -> None:
    signer, other = new_signer("log.example/a"), new_signer("log.example/a")
    checkpoint = make_checkpoint(signer, 0, EMPTY_ROOT, KNOWN)
    assert checkpoint.note.startswith(
        "log.example/a\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    )
    opened = open_checkpoint(checkpoint.note, parse_verifier_key(signer.verifier_key()))
    assert (opened.size, opened.root, opened.known_at) == (0, EMPTY_ROOT, KNOWN)
    with pytest.raises(CheckpointError, match="not signed by"):
        open_checkpoint(checkpoint.note, parse_verifier_key(other.verifier_key()))
    # the private key round-trips through its file form
    again = parse_signer_key(signer.signer_key(), "test")
    assert again.verifier_key() == signer.verifier_key()


def test_any_change_to_a_signed_checkpoint_is_refused() -> None:
    signer = new_signer("log.example/a")
    verifier = parse_verifier_key(signer.verifier_key())
    note = make_checkpoint(signer, 41, leaf_hash(b"x"), KNOWN).note
    for index in range(len(note)):
        if note[index] in "\n ":
            continue
        changed = note[:index] + chr(ord(note[index]) ^ 1) + note[index + 1 :]
        with pytest.raises(CheckpointError):
            open_checkpoint(changed, verifier)


def test_a_malformed_key_is_an_operator_error_that_never_shows_it() -> None:
    signer = new_signer("log.example/a")
    secret = signer.signer_key()
    with pytest.raises(KeyError_) as caught:
        parse_signer_key(secret[:-3] + "AAA", "key.file")
    assert secret.rsplit("+", 1)[-1] not in str(caught.value)
    with pytest.raises(KeyError_):
        parse_verifier_key("log.example/a+00000000+AAAA")
    with pytest.raises(KeyError_):
        new_signer("has space")
