"""`slatrail publish FILE|-`: JSON Lines → `incidents.inbound`, keyed by incident_id.

Every non-blank line is published as it is, even an invalid one (the inbound consumer
dead-letters it with a code); the key is the incident_id found leniently, else none.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import IO, Any

from slatrail.consumers.streams import DeliveryError, MessageTooLargeError, Outgoing
from slatrail.infra.bootstrap import Container
from slatrail.infra.kafka import KafkaNotConfiguredError, quiet_kafka_logging
from slatrail.infra.render import echo, to_json

_INCIDENT_ID = re.compile(rb'"incident_id"\s*:\s*"((?:[^"\\]|\\.)*)"')


def incident_key(line: bytes) -> bytes | None:
    """The incident_id of a (possibly invalid) message, as the Kafka key; None if not found."""
    try:
        obj = json.loads(line)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        value = obj.get("incident_id")
        return value.encode("utf-8") if isinstance(value, str) and value else None
    match = _INCIDENT_ID.search(line)
    if match is None or not match.group(1):
        return None
    try:
        text = json.loads(b'"' + match.group(1) + b'"')
    except ValueError:
        return match.group(1)
    return text.encode("utf-8") if isinstance(text, str) and text else None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "publish", help="publish JSON Lines messages to incidents.inbound (FILE or -)"
    )
    parser.add_argument("input", help="JSON Lines file, or - for standard input")
    parser.add_argument(
        "--topic", help="topic (default: incidents.inbound)  [SLATRAIL_TOPIC_INBOUND]"
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(handler=run)


def run(container: Container, args: argparse.Namespace) -> int:
    topic = args.topic or container.settings.topic_inbound
    try:
        kafka = container.kafka()
        kafka.config()
    except KafkaNotConfiguredError as error:
        print(f"slatrail publish: {error}", file=sys.stderr)
        return 2
    if args.input == "-":
        stream: IO[bytes] = sys.stdin.buffer
    else:
        try:
            stream = open(args.input, "rb")  # noqa: SIM115 - closed below
        except OSError as error:
            echo(f"slatrail publish: cannot read {args.input}: {error.strerror}", file=sys.stderr)
            return 2
    quiet_kafka_logging()
    try:
        sink = kafka.sink()
    except Exception as error:  # kafka-python: NoBrokersAvailable, KafkaTimeoutError, …
        print(f"slatrail publish: cannot reach Kafka: {error!r}", file=sys.stderr)
        if stream is not sys.stdin.buffer:
            stream.close()
        return 2
    published = unkeyed = 0
    refused: list[tuple[int, str]] = []
    try:
        for number, raw in enumerate(stream, start=1):
            body = raw.rstrip(b"\r\n")
            if not body.strip():
                continue
            key = incident_key(body)
            try:
                sink.send(Outgoing(topic, key, body))
            except MessageTooLargeError as error:
                refused.append((number, f"too large for the producer: {error}"))
                continue
            published += 1
            unkeyed += key is None
        failed = _flush(sink, container.settings.kafka_delivery_timeout_ms / 1000 + 10)
    finally:
        sink.close()
        if stream is not sys.stdin.buffer:
            stream.close()
    published -= failed
    summary = {
        "topic": topic,
        "published": published,
        "without_key": unkeyed,
        "not_published": len(refused) + failed,
        "refused_lines": [{"line": n, "reason": r} for n, r in refused],
    }
    if args.format == "json":
        print(to_json(summary))
    else:
        echo(f"published {published} messages to {topic} ({unkeyed} without incident_id key)")
        for number, reason in refused:
            echo(f"  line {number} not published: {reason}")
        if failed:
            print(f"  {failed} messages not acknowledged by the broker")
    return 1 if refused or failed else 0


def _flush(sink: Any, timeout_s: float) -> int:
    """Wait for the acks; returns how many messages failed."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            sink.flush(5.0)
            return 0
        except DeliveryError as error:
            return len(error.failed)
        except TimeoutError:
            if time.monotonic() > deadline:
                return int(sink.pending())
            print("slatrail publish: waiting for the broker…", file=sys.stderr)
