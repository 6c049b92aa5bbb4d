"""`serve --http` on the real broker: the metrics move as messages flow, the recorded events
carry CloudEvents headers, and `/readyz` turns 503 while the broker is frozen and 200 after."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from slatrail.infra.web.tokens import add_token
from tests.kafka_helpers import (
    PipelineEnv,
    incident_stream,
    jsonl_bytes,
    publish_messages,
    read_model_count,
    read_topic,
    running,
    wait_until,
)
from tests.servers import KafkaServer, free_port

pytestmark = pytest.mark.integration


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_the_stream_and_readiness_follows_the_broker(
    pipeline: PipelineEnv, kafka_server: KafkaServer
) -> None:
    tokens = pipeline.workdir / "tokens.json"
    token = add_token(tokens, "sre", "auditor", [])
    viewer = add_token(tokens, "am", "viewer", ["acme-rtc"])
    base = f"http://127.0.0.1:{free_port()}"
    messages = incident_stream(30, per_incident=3)
    serve = pipeline.serve(
        "serve-http", "--http", base.removeprefix("http://"),
        SLATRAIL_TOKENS_FILE=str(tokens),
    )  # fmt: skip
    with running(serve):
        started = wait_until(
            lambda: _get(base + "/livez")[0] == 200 or serve.proc.poll() is not None, 60
        )
        assert started and serve.proc.poll() is None, serve.log_text()
        assert wait_until(lambda: _get(base + "/readyz")[0] == 200, 60), _get(base + "/readyz")
        assert _get(base + "/metrics")[0] == 401
        assert _get(base + "/metrics", viewer)[0] == 403
        status, body = _get(base + "/metrics", token)
        assert status == 200
        before = _samples(body.decode())
        assert _value(before, "slatrail_inbound_messages_total", outcome="accepted") == 0
        publish_messages(pipeline.kafka.bootstrap, pipeline.topics["inbound"],
                         jsonl_bytes(messages))  # fmt: skip
        assert wait_until(lambda: read_model_count(pipeline.read_model) == 30, 60)

        def moved() -> bool:
            now = _samples(_get(base + "/metrics", token)[1].decode())
            return (
                _value(now, "slatrail_inbound_messages_total", outcome="accepted") == 30
                and _value(now, "slatrail_events_relayed_total") >= 30
                and _value(now, "slatrail_projection_apply_seconds_count") > 0
                and sum(v for (n, _), v in now.items() if n == "slatrail_open_incidents") == 10
            )

        assert wait_until(moved, 30)
        after = _samples(_get(base + "/metrics", token)[1].decode())
        assert _value(after, "slatrail_worker_state", worker="inbound", state="running") == 1
        assert _value(after, "slatrail_relay_lag_seconds") == 0
        lags = [k for k in after if k[0] == "slatrail_consumer_lag_messages"]
        assert lags and all(("worker", "inbound") in k[1] or ("worker", "projections") in k[1]
                            or ("worker", "alerts") in k[1] for k in lags)  # fmt: skip
        assert not any("INC-" in str(labels) for _, labels in after)  # no incident id labels

        records = read_topic(pipeline.kafka.bootstrap, pipeline.topics["events"], expect=30)
        headers = dict(records[0].headers)
        body = json.loads(records[0].value)
        assert headers["ce_specversion"] == b"1.0"
        assert headers["ce_id"] == body["hash"].encode()
        assert headers["ce_type"] == f"slatrail.incident.{body['type']}".encode()
        assert headers["ce_subject"] == body["incident_id"].encode()
        assert headers["ce_time"] == body["recorded_at"].encode()
        assert headers["ce_source"] == b"/slatrail/incidents"
        assert b"slatrail-notification-id" in {name.encode() for name in headers}

        if kafka_server.can_pause:
            with kafka_server.paused():
                assert wait_until(lambda: _get(base + "/readyz")[0] == 503, 45)
                assert _get(base + "/livez")[0] == 200
            assert wait_until(lambda: _get(base + "/readyz")[0] == 200, 60), _get(base + "/readyz")
        assert serve.terminate() == 0
