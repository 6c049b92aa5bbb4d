"""The alert timer of `slatrail serve` on a real broker, driven through a simulated day.

`slatrail serve --workers relay,alerts` runs as a subprocess whose timer reads `now` from a
file (SLATRAIL_ALERT_CLOCK_FILE). The test records a scripted incident stream into the store at
its simulated instants (the relay publishes it to incidents.events), moves the clock file from
instant to instant, and reads incidents.alerts. Before moving on it waits until the relay has
published every event and the timer has consumed it (its committed offsets), and until the
alerts due at that instant are on the topic — so every alert must come at its exact instant.

Contract (tests/builders.py): acme is gold — P1 24x7 15m/2h/4h, P2 24x7 1h/-/8h, P3 on the
Berlin office calendar (08:00-11:00Z and 12:00-16:30Z in March) 4h/8h/24h.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from slatrail.domain.model import format_instant
from tests.builders import CONTRACTS_TOML, reported_data, utc, wire
from tests.kafka_helpers import (
    PipelineEnv,
    ServeProcess,
    read_topic,
    running,
    wait_until,
)

pytestmark = pytest.mark.integration

MON = utc(2026, 3, 2)
H = timedelta(hours=1)
MIN = timedelta(minutes=1)
START, END = MON + 7 * H, MON + 34 * H  # Monday 07:00Z to Tuesday 10:00Z


def at(hours: float) -> datetime:
    return MON + timedelta(hours=hours)


SCRIPT: list[tuple[datetime, str, str, dict[str, Any]]] = [
    (at(8), "A", "reported", reported_data(priority="P2")),
    (at(8 + 40 / 60), "A", "acknowledged", {}),  # before its 08:45 at-risk: never alerted
    (at(9), "B", "reported", reported_data(priority="P1")),
    (at(9), "D", "reported", reported_data(priority="P3")),
    (at(9 + 10 / 60), "B", "acknowledged", {}),
    (at(9.5), "D", "priority_changed", {"priority": "P1", "reason": "all users down"}),
    (at(9 + 40 / 60), "D", "acknowledged", {}),
    (at(10), "B", "awaiting_customer", {"reason": "logs"}),  # moves B's 10:30 at-risk
    (at(12), "B", "customer_responded", {}),
    (at(12.5), "D", "resolved", {"resolution": "fixed"}),  # cancels D's 13:00 breach
    (at(13.5), "E", "reported", reported_data(priority="P2")),
    (at(15), "C", "reported", reported_data(priority="P3")),  # Monday 16:00 in Berlin
    (at(15 + 10 / 60), "E", "acknowledged", {}),  # cancels E's 15:30 response overrun
    (at(15.5), "B", "resolved", {"resolution": "fixed"}),
    (at(17), "A", "resolved", {"resolution": "fixed"}),
    (at(18), "D", "reopened", {"reason": "came back"}),
]

# Hand-computed: (crossed_at, alert_key, level).
EXPECTED: list[tuple[datetime, str, int]] = [
    (at(9.5), "D/response/breached/0", 4),  # P1 at 09:30: 30 min counted > 15 min, at once
    (at(9.5), "D/escalated/4", 4),
    (at(10.5), "D/workaround/at_risk/0", 4),  # 75 % of 2h since 09:00
    (at(11), "D/workaround/breached/0", 4),
    (at(12), "D/resolution/at_risk/0", 4),  # 3h of 4h
    (at(12.5), "B/workaround/at_risk/0", 2),  # 1h before the pause + 30 min after it
    (at(12.5), "B/escalated/2", 2),
    (at(13), "B/workaround/breached/0", 4),
    (at(13), "B/escalated/4", 4),  # a P1 clock breached
    (at(14), "A/resolution/at_risk/0", 2),  # 6h of 8h
    (at(14), "B/resolution/at_risk/0", 4),  # 1h + 2h since 12:00
    (at(14), "A/escalated/2", 2),
    (at(14.25), "E/response/at_risk/0", 2),
    (at(14.25), "E/escalated/2", 2),
    (at(14.5), "E/response/breached/0", 3),
    (at(14.5), "E/escalated/3", 3),
    (at(15), "B/resolution/breached/0", 4),
    (at(16), "A/resolution/breached/0", 3),
    (at(16), "A/escalated/3", 3),
    (at(18), "D/resolution/at_risk/1", 4),  # reopened with 3.5h of 4h counted: cycle 1
    (at(18.5), "D/resolution/breached/1", 4),
    (at(19.5), "E/resolution/at_risk/0", 3),
    (at(21.5), "E/resolution/breached/0", 3),
    (at(29.5), "E/escalated/4", 4),  # Tuesday 05:30: 16h = 200 % of the resolution target
    (at(33.5), "C/response/at_risk/0", 2),  # Tuesday 10:30 Berlin: nothing overnight
    (at(33.5), "C/escalated/2", 2),
]


class Day:
    """Drives one simulated day: the clock file, the store, and what is on the topics."""

    def __init__(self, pipe: PipelineEnv, tmp_path: Path) -> None:
        from slatrail.infra.store import open_application
        from tests.builders import contracts_from

        self.pipe = pipe
        self.clock_file = tmp_path / "now"
        self.contracts_file = tmp_path / "contracts.toml"
        self.contracts_file.write_text(CONTRACTS_TOML)
        self.set_clock(START)
        self.app = open_application(pipe.store, contracts_from())
        self.recorded = 0
        self.serve: ServeProcess | None = None
        self.relay: ServeProcess | None = None  # when the relay runs in a serve of its own

    def start(self) -> ServeProcess:
        self.serve = self.pipe.serve(
            "timer",
            "--workers",
            "relay,alerts",
            SLATRAIL_ALERT_CLOCK_FILE=str(self.clock_file),
            SLATRAIL_CONTRACTS=str(self.contracts_file),
        )
        return self.serve

    def set_clock(self, moment: datetime) -> None:
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(format_instant(moment))
        tmp.replace(self.clock_file)  # atomic: the timer never reads a half-written file

    def record(self, moment: datetime, incident: str, kind: str, data: dict[str, Any]) -> None:
        from slatrail.infra.wire import decode

        message = wire(kind, moment, data, incident_id=incident,
                       message_id=f"{incident}-{kind}-{format_instant(moment)}")  # fmt: skip
        outcome = self.app.record([decode(json.dumps(message))], now=moment)
        assert outcome[0].status == "accepted", outcome
        self.recorded += 1

    def wait_consumed(self, timeout: float = 60) -> None:
        """The relay published every recorded event and the timer committed past them."""
        assert wait_until(lambda: self._consumed() >= self.recorded, timeout, 0.1), (
            f"timer consumed {self._consumed()} of {self.recorded} events\n"
            + (self.serve.log_text()[-3000:] if self.serve else "")
            + ("\nrelay:\n" + self.relay.log_text()[-3000:] if self.relay else "")
        )

    def _consumed(self) -> int:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.pipe.kafka.bootstrap)
        try:
            group = self.pipe.groups["alerts"]
            offsets = admin.list_group_offsets(group).get(group, {})
        finally:
            admin.close()
        topic = self.pipe.topics["events"]
        return sum(o.offset for tp, o in offsets.items() if tp.topic == topic and o.offset > 0)

    def alerts(self, expect: int | None = None, timeout: float = 30) -> list[dict[str, Any]]:
        records = read_topic(
            self.pipe.kafka.bootstrap, self.pipe.topics["alerts"], expect=expect, timeout=timeout
        )
        for r in records:
            assert r.key == json.loads(r.value)["incident_id"].encode()
        return [json.loads(r.value) for r in records]

    def run(
        self,
        until: datetime,
        *,
        before_each: Callable[[datetime], bool] = lambda _: True,
    ) -> None:
        """Walk the instants of the script, of the expected alerts and every hour."""
        instants = sorted(
            {m for m, *_ in SCRIPT}
            | {m for m, *_ in EXPECTED}
            | {START + k * H for k in range(int((END - START) / H) + 1)}
        )
        for moment in instants:
            if moment <= self.now or moment > until:
                continue
            self.step(moment, live=before_each(moment))

    now = START

    def step(self, moment: datetime, *, live: bool = True) -> None:
        self.now = moment
        self.set_clock(moment)
        for when, incident, kind, data in SCRIPT:
            if when == moment:
                self.record(when, incident, kind, data)
        if not live:
            return
        self.wait_consumed()
        due = sum(1 for when, *_ in EXPECTED if when <= moment)
        self.wait_alerts(due)

    def wait_alerts(self, count: int) -> None:
        def arrived() -> bool:
            try:
                return len(self.alerts(timeout=5)) >= count
            except AssertionError:  # a read of the topic that did not settle (a loaded broker)
                return False

        assert wait_until(arrived, 60, 0.1), (
            f"expected {count} alerts by {format_instant(self.now)}, got "
            f"{[a['alert_key'] for a in self.alerts(timeout=10)]}\n"
            + (self.serve.log_text()[-3000:] if self.serve else "")
        )

    def close(self) -> None:
        self.app.close()


def summary(alerts: list[dict[str, Any]]) -> list[tuple[str, str, str, int, bool]]:
    rank = {"at_risk": 0, "breached": 1, "escalated": 2}
    ordered = sorted(alerts, key=lambda a: (a["crossed_at"], rank[a["kind"]], a["alert_key"]))
    return [
        (a["crossed_at"], a["alert_key"], a["fired_at"], a["level"], a["late"]) for a in ordered
    ]


def expected(late_window: tuple[datetime, datetime] | None = None) -> list[tuple[Any, ...]]:
    rank = {"at_risk": 0, "breached": 1, "escalated": 2}
    out = []
    for when, key, level in EXPECTED:
        fired, late = when, False
        if late_window is not None and late_window[0] < when < late_window[1]:
            fired, late = late_window[1], True
        out.append((format_instant(when), key, format_instant(fired), level, late))
    return sorted(out, key=lambda x: (x[0], rank[x[1].split("/")[-2]], x[1]))


@pytest.fixture
def day(pipeline: PipelineEnv, tmp_path: Path) -> Any:
    driver = Day(pipeline, tmp_path)
    yield driver
    driver.close()


def test_a_simulated_day_publishes_exactly_the_expected_alerts_at_their_instants(
    day: Day,
) -> None:
    with running(day.start()):
        day.run(END)
        time.sleep(1.0)  # anything spurious would have time to show up
        alerts = day.alerts(expect=len(EXPECTED))
    assert summary(alerts) == expected()
    assert len({a["alert_key"] for a in alerts}) == len(alerts)
    breach = next(a for a in alerts if a["alert_key"] == "A/resolution/breached/0")
    assert breach["due_at"] == "2026-03-02T16:00:00Z" and breach["customer"] == "acme"
    assert breach["explanation"].startswith("A (acme): resolution clock breached at ")


def test_after_a_kill_9_halfway_the_missed_alerts_come_late_and_nothing_twice(
    day: Day,
) -> None:
    down_at, back_at = at(13 + 5 / 60), at(14 + 40 / 60)
    first = day.start()
    with running(first):
        day.run(at(13))
        first.kill9()  # 13:00's alerts are out; nothing of the afternoon is
    day.now = at(13)
    day.run(back_at - MIN, before_each=lambda _: False)  # E is reported while the timer is down
    day.step(back_at, live=False)
    with running(day.start()):
        day.wait_consumed()  # E's report, relayed only now
        day.wait_alerts(sum(1 for when, *_ in EXPECTED if when <= back_at))  # the missed ones
        day.run(END)
        time.sleep(1.0)
        alerts = day.alerts(expect=len(EXPECTED))
    assert summary(alerts) == expected(late_window=(down_at, back_at))
    assert len({a["alert_key"] for a in alerts}) == len(alerts), "an alert was published twice"


def test_the_read_back_finds_every_published_key_even_in_a_multi_record_last_batch(
    kafka_bootstrap: str,
) -> None:
    import uuid

    from slatrail.consumers.streams import Outgoing
    from slatrail.infra.alert_drivers import kafka_fired_reader
    from slatrail.infra.kafka import KafkaClients
    from slatrail.infra.settings import Settings

    clients = KafkaClients(Settings(kafka_bootstrap=kafka_bootstrap, topic_partitions=2))
    topic = f"t{uuid.uuid4().hex[:8]}.incidents.alerts"
    clients.ensure_topics([topic])
    sink = clients.sink()
    keys = [f"{incident}/response/at_risk/{n}" for n in range(3) for incident in "ABC"]
    for key in keys:  # one flush: batches of several records per partition
        incident = key.split("/")[0]
        sink.send(Outgoing(topic, incident.encode(), json.dumps({"alert_key": key}).encode()))
    sink.flush(30)
    sink.close()
    read = kafka_fired_reader(clients.config(), topic)
    assert read(lambda incident: True) == set(keys)
    assert read(lambda incident: incident == "B") == {k for k in keys if k.startswith("B/")}


def test_a_late_acknowledged_publishes_a_correction_of_the_breach_alert(day: Day) -> None:
    # P2 (response 1h): at risk 08:45, breached 09:00 (both published); the acknowledged of
    # 08:30 arrives at 09:10 from a publisher replaying its outbox
    with running(day.start()):
        day.step(at(7.5))
        day.record(at(8), "L", "reported", reported_data(priority="P2"))
        day.step(at(9 + 5 / 60))
        day.wait_consumed()
        assert wait_until(lambda: len(day.alerts(timeout=2)) >= 4, 30, 0.1)  # 2 clocks, 2 levels
        day.set_clock(at(9 + 10 / 60))
        day.now = at(9 + 10 / 60)
        from slatrail.infra.wire import decode

        late = wire("acknowledged", at(8.5), None, incident_id="L", message_id="L-ack-late")
        (outcome,) = day.app.record([decode(json.dumps(late))], now=at(9 + 10 / 60))
        assert outcome.status == "accepted", outcome
        day.recorded += 1
        day.wait_consumed()

        def corrections() -> list[dict[str, Any]]:
            return [a for a in day.alerts(timeout=2) if a["kind"] == "correction"]

        assert wait_until(lambda: len(corrections()) >= 2, 30, 0.1), day.alerts(timeout=2)
    by_key = {c["corrects"]: c for c in corrections()}
    breach = by_key["L/response/breached/0"]
    assert breach["alert_key"] == "L/response/breached/0/corrected/removed"
    assert (breach["change"], breach["was_crossed_at"]) == ("removed", "2026-03-02T09:00:00Z")
    assert breach["cause"]["type"] == "acknowledged"


def leader_of(timers: list[ServeProcess], timeout: float = 30) -> ServeProcess:
    """The serve whose alert timer holds the lease (its log says so)."""
    found: list[ServeProcess] = []

    def look() -> bool:
        found[:] = [t for t in timers if "alert_timer_leader_acquired" in t.log_text()]
        return len(found) == 1

    assert wait_until(look, timeout, 0.1), [t.log_text()[-2000:] for t in timers]
    return found[0]


def test_two_serves_fire_each_alert_once_and_a_kill_9_hands_the_timer_over(
    day: Day,
) -> None:
    """Two `serve --workers alerts` (a third runs the relay): one timer leads; killed -9 at
    13:00, the other takes over and the day's alerts all come, each once, at their instants."""
    env = {"SLATRAIL_ALERT_CLOCK_FILE": str(day.clock_file),
           "SLATRAIL_CONTRACTS": str(day.contracts_file)}  # fmt: skip
    relay = day.relay = day.pipe.serve("relay", "--workers", "relay", **env)
    timers = [day.pipe.serve(f"timer{n}", "--workers", "alerts", **env) for n in (1, 2)]
    with running(relay), running(timers[0]), running(timers[1]):
        first = leader_of(timers)
        day.serve = first
        day.run(at(13))
        first.kill9()
        survivor = next(t for t in timers if t is not first)
        day.serve = survivor
        # the group notices the SIGKILL after ~1.5 session timeouts; more on a loaded machine
        assert wait_until(lambda: "alert_timer_leader_acquired" in survivor.log_text(), 60, 0.1), (
            survivor.log_text()[-3000:]
        )
        day.run(at(17))
        time.sleep(1.0)  # anything doubled would have time to show up
        due = [e for e in expected() if e[0] <= format_instant(at(17))]
        alerts = day.alerts(expect=len(due))
    assert summary(alerts) == due
    assert len({a["alert_key"] for a in alerts}) == len(alerts), "an alert was published twice"
