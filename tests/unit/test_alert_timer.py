"""The alert timer in simulated time: exact instants, rescheduling, restarts (docs/escalation.md).

Contract (tests/builders.py): acme is gold — P1 24x7 15m/2h/4h, P2 24x7 1h/-/8h, P3 on the
Berlin office calendar 4h/8h/24h.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from slatrail.consumers.alert_clock import ManualClock, SystemClock
from slatrail.consumers.alert_scheduler import AlertTimer, slim
from slatrail.consumers.alert_timer import AlertTimerWorker, memory_fired_reader
from slatrail.domain.model import IncidentEvent
from slatrail.infra.alert_drivers import FileClock
from slatrail.infra.kafka_envelope import decode_envelope, encode_envelope
from tests.builders import contracts_from, record_history, reported_data, utc
from tests.memory_broker import MemoryBroker

CONTRACTS = contracts_from()
MON = utc(2026, 3, 2, 8)  # Monday 09:00 Berlin
US = timedelta(microseconds=1)
MIN = timedelta(minutes=1)
H = timedelta(hours=1)
EVENTS, ALERTS = "incidents.events", "incidents.alerts"

Fact = tuple[str, datetime, dict[str, Any]]


def history(*facts: Fact, incident_id: str = "INC-1") -> list[IncidentEvent]:
    return record_history(list(facts), CONTRACTS, incident_id=incident_id, now=facts[-1][1])


def reported(at: datetime, priority: str = "P2", **extra: Any) -> Fact:
    return ("reported", at, reported_data(priority=priority, **extra))


class Driver:
    """Feeds events at their occurred_at and advances simulated time, collecting alerts."""

    def __init__(self, timer: AlertTimer, start: datetime) -> None:
        self.timer = timer
        self.clock = ManualClock(start)
        self.fired: list[dict[str, Any]] = []

    def run_until(
        self, moment: datetime, events: Sequence[IncidentEvent] = ()
    ) -> list[dict[str, Any]]:
        """Advance to `moment`, firing at each deadline and applying each event on time."""
        pending = sorted(events, key=lambda e: e.occurred_at)
        before = len(self.fired)
        while True:
            deadline = self.timer.next_deadline()
            next_event = pending[0].occurred_at if pending else None
            candidates = [t for t in (deadline, next_event) if t is not None and t <= moment]
            if not candidates:
                break
            step = min(candidates)
            self.clock.set(max(step, self.clock.now()))
            if next_event is not None and next_event <= step:
                self.timer.apply(pending.pop(0), now=self.clock.now())
            self.fired.extend(self.timer.due(self.clock.now()))
        self.clock.set(moment)
        self.fired.extend(self.timer.due(moment))
        return self.fired[before:]


def keys(alerts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(a["alert_key"], a["fired_at"]) for a in alerts]


def z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the timer ---------------------------------------------------------------------------------


def test_alerts_fire_at_their_exact_instant_and_not_before() -> None:
    timer = AlertTimer(CONTRACTS)
    timer.apply(history(reported(MON, "P2"))[0], now=MON)
    assert timer.next_deadline() == MON + 45 * MIN
    assert timer.due(MON + 45 * MIN - US) == []
    [alert, escalated] = timer.due(MON + 45 * MIN)
    assert alert == {
        "schema": "slatrail.alert/v1",
        "alert_key": "INC-1/response/at_risk/0",
        "incident_id": "INC-1",
        "customer": "acme",
        "kind": "at_risk",
        "metric": "response",
        "level": 2,
        "level_name": "expert",
        "cycle": 0,
        "priority": "P2",
        "reason": "response at risk",
        "due_at": "2026-03-02T09:00:00Z",
        "crossed_at": "2026-03-02T08:45:00Z",
        "fired_at": "2026-03-02T08:45:00Z",
        "late": False,
        "explanation": "INC-1 (acme): response clock at risk at 2026-03-02T08:45:00Z — response "
        "clock: counted reached 45m (75% of 1h); P2 target, calendar always; due "
        "2026-03-02T09:00:00Z; escalation level 2",
    }
    assert escalated["alert_key"] == "INC-1/escalated/2"
    assert escalated["kind"] == "escalated" and escalated["level"] == 2


def test_a_day_of_one_incident_gives_exactly_the_expected_sequence() -> None:
    events = history(
        reported(MON, "P2"),
        ("acknowledged", MON + 40 * MIN, {}),  # response met: its at-risk alert never fires
        ("awaiting_customer", MON + 5 * H, {"reason": "logs"}),  # resolution paused at 5h
        ("customer_responded", MON + 7 * H, {}),  # at risk at 6h counted = 08:00 + 8h
        ("priority_changed", MON + 9 * H, {"priority": "P1", "reason": "all users"}),
    )
    driver = Driver(AlertTimer(CONTRACTS), MON)
    fired = driver.run_until(MON + 24 * H, events)
    assert keys(fired) == [
        ("INC-1/resolution/at_risk/0", z(MON + 8 * H)),
        ("INC-1/escalated/2", z(MON + 8 * H)),
        # P1 at 17:00: 7h counted > 4h (and > 2h, P1's workaround target) — breached at the
        # change; P1 → level 4
        ("INC-1/workaround/breached/0", z(MON + 9 * H)),
        ("INC-1/resolution/breached/0", z(MON + 9 * H)),
        ("INC-1/escalated/4", z(MON + 9 * H)),
    ]
    assert not any(a["late"] for a in fired)
    assert all(a["crossed_at"] == a["fired_at"] for a in fired)


def test_a_pause_cancels_a_pending_at_risk_alert_and_the_answer_reschedules_it() -> None:
    events = history(
        reported(MON, "P1"),
        ("acknowledged", MON + 5 * MIN, {}),
        ("awaiting_customer", MON + 80 * MIN, {"reason": "logs"}),
        ("customer_responded", MON + 3 * H, {}),
    )
    driver = Driver(AlertTimer(CONTRACTS), MON)
    assert driver.run_until(MON + 3 * H - US, events[:3]) == []  # 09:30 at-risk cancelled
    fired = driver.run_until(MON + 3 * H + 10 * MIN, events[3:])
    assert keys(fired) == [
        ("INC-1/workaround/at_risk/0", z(MON + 3 * H + 10 * MIN)),
        ("INC-1/escalated/2", z(MON + 3 * H + 10 * MIN)),
    ]


def test_a_stop_cancels_the_clock_s_pending_alerts() -> None:
    events = history(reported(MON, "P2"), ("acknowledged", MON + 50 * MIN, {}))
    driver = Driver(AlertTimer(CONTRACTS), MON)
    fired = driver.run_until(MON + 5 * H, events)
    assert [a["alert_key"] for a in fired] == ["INC-1/response/at_risk/0", "INC-1/escalated/2"]


def test_an_event_that_breaches_at_once_fires_when_it_arrives() -> None:
    events = history(
        reported(MON, "P3"),
        ("priority_changed", MON + 30 * MIN, {"priority": "P1", "reason": "all users"}),
    )
    timer = AlertTimer(CONTRACTS)
    timer.apply(events[0], now=MON)
    arrival = MON + 30 * MIN + 2 * timedelta(seconds=1)  # two seconds of pipeline latency
    timer.apply(events[1], now=arrival)
    fired = timer.due(arrival)
    assert [(a["alert_key"], a["crossed_at"], a["late"]) for a in fired] == [
        ("INC-1/response/breached/0", z(MON + 30 * MIN), False),
        ("INC-1/escalated/4", z(MON + 30 * MIN), False),
    ]


def test_a_reopened_incident_alerts_under_its_new_cycle() -> None:
    events = history(
        reported(MON, "P2"),
        ("acknowledged", MON + 10 * MIN, {}),
        ("resolved", MON + 9 * H, {"resolution": "fixed"}),
        ("reopened", MON + 10 * H, {"reason": "back"}),
    )
    driver = Driver(AlertTimer(CONTRACTS), MON)
    fired = driver.run_until(MON + 11 * H, events)
    assert keys(fired) == [
        ("INC-1/resolution/at_risk/0", z(MON + 6 * H)),
        ("INC-1/escalated/2", z(MON + 6 * H)),
        ("INC-1/resolution/breached/0", z(MON + 8 * H)),
        ("INC-1/escalated/3", z(MON + 8 * H)),
        ("INC-1/resolution/breached/1", z(MON + 10 * H)),
    ]


def test_business_hours_alerts_never_fire_outside_working_hours() -> None:
    # P3 reported Monday 16:00 Berlin: response 4h on the office calendar.
    events = history(reported(utc(2026, 3, 2, 15), "P3"))
    driver = Driver(AlertTimer(CONTRACTS), utc(2026, 3, 2, 15))
    night = driver.run_until(utc(2026, 3, 3, 7, 59), events)  # until Tuesday 08:59 Berlin
    assert night == []
    fired = driver.run_until(utc(2026, 3, 3, 12))
    assert keys(fired) == [
        ("INC-1/response/at_risk/0", "2026-03-03T09:30:00Z"),  # Tuesday 10:30 Berlin
        ("INC-1/escalated/2", "2026-03-03T09:30:00Z"),
        ("INC-1/response/breached/0", "2026-03-03T10:30:00Z"),  # 1.5h Monday + 2.5h Tuesday
        ("INC-1/escalated/3", "2026-03-03T10:30:00Z"),
    ]


def test_the_same_event_twice_changes_nothing() -> None:
    events = history(reported(MON, "P2"), ("acknowledged", MON + 10 * MIN, {}))
    timer = AlertTimer(CONTRACTS)
    assert timer.apply(events[0], now=MON)
    assert timer.apply(events[1], now=MON + 10 * MIN)
    assert not timer.apply(events[1], now=MON + 11 * MIN)
    assert not timer.apply(events[0], now=MON + 11 * MIN)
    assert timer.stats.duplicates == 2


# -- restarts ----------------------------------------------------------------------------------


def test_a_restart_fires_only_what_it_missed_marked_late() -> None:
    events = history(reported(MON, "P2"))
    first = Driver(AlertTimer(CONTRACTS), MON)
    published = first.run_until(MON + 50 * MIN, events)  # at-risk and level 2 published
    assert len(published) == 2
    # Down from 08:50 to 09:30: the breach at 09:00 (and level 3) was missed.
    second = AlertTimer(CONTRACTS, late_after=timedelta(seconds=60))
    second.load(events, now=MON + 90 * MIN)
    second.mark_fired(a["alert_key"] for a in published)
    fired = second.due(MON + 90 * MIN)
    assert [(a["alert_key"], a["crossed_at"], a["late"]) for a in fired] == [
        ("INC-1/response/breached/0", z(MON + 1 * H), True),
        ("INC-1/escalated/3", z(MON + 1 * H), True),
    ]
    assert second.next_deadline() == MON + 2 * H  # level 4 at 200 %, on time


def test_a_first_start_does_not_replay_alerts_older_than_the_catch_up_window() -> None:
    events = history(reported(MON, "P2"))
    timer = AlertTimer(CONTRACTS, catch_up=timedelta(minutes=30))
    timer.load(events, now=MON + 90 * MIN)
    # at risk 08:45 and level 2 are older than 09:00 (= 09:30 - 30 min): skipped
    assert [a["alert_key"] for a in timer.due(MON + 90 * MIN)] == [
        "INC-1/response/breached/0",
        "INC-1/escalated/3",
    ]
    assert timer.stats.skipped_old == 2


def test_an_incident_with_nothing_left_to_alert_is_evicted_and_reloaded_on_its_next_event() -> None:
    events = history(
        reported(MON, "P2"),
        ("acknowledged", MON + 10 * MIN, {}),
        ("resolved", MON + 20 * MIN, {"resolution": "fixed"}),
        ("reopened", MON + 30 * H, {"reason": "back"}),
    )
    loads: list[str] = []

    def store(incident_id: str) -> list[IncidentEvent]:
        loads.append(incident_id)
        return events

    timer = AlertTimer(CONTRACTS, history=store)
    for event in events[:3]:
        timer.apply(event, now=event.occurred_at)
    assert timer.tracked() == (1, 0)  # resolved, P2, no post-mortem: nothing to hold
    timer.apply(events[3], now=MON + 30 * H)
    assert loads == ["INC-1"]
    assert timer.tracked() == (1, 1)
    # 20 min counted + from 14:00 on the next day: at risk at 6h counted
    assert timer.next_deadline() == MON + 30 * H + 5 * H + 40 * MIN


def test_an_event_after_a_gap_reads_the_incident_from_the_store() -> None:
    events = history(reported(MON, "P2"), ("acknowledged", MON + 10 * MIN, {}))
    timer = AlertTimer(CONTRACTS, history=lambda _: events)
    timer.apply(events[1], now=MON + 10 * MIN)  # position 2 first: reads positions 1..1
    assert timer.stats.reloads == 1
    assert timer.next_deadline() == MON + 6 * H  # resolution at risk


def test_without_a_store_an_unknown_incident_is_skipped() -> None:
    events = history(reported(MON, "P2"), ("acknowledged", MON + 10 * MIN, {}))
    timer = AlertTimer(CONTRACTS)
    assert not timer.apply(events[1], now=MON)
    assert timer.stats.unknown == 1


def test_slim_events_keep_what_the_clocks_need() -> None:
    events = history(
        reported(MON, "P3", outage=True, impact_started_at="2026-03-02T07:30:00Z"),
        ("escalated", MON + MIN, {"level": 3, "reason": "x" * 500}),
    )
    reported_event, escalated = (slim(e) for e in events)
    assert dict(reported_event.data) == {
        "customer": "acme",
        "priority": "P3",
        "outage": True,
        "impact_started_at": "2026-03-02T07:30:00Z",
    }
    assert escalated.data["level"] == 3 and len(escalated.data["reason"]) == 200
    assert reported_event.hash == "" and reported_event.position == 1


# -- clocks --------------------------------------------------------------------------------------


def test_the_system_clock_waits_until_the_next_deadline_at_most_its_cap() -> None:
    clock = SystemClock(max_wait_s=1.0)
    assert clock.wait_s(None) == 1.0
    assert clock.wait_s(clock.now() - H) == 0.0
    assert 0.3 < clock.wait_s(clock.now() + timedelta(seconds=0.5)) <= 0.5


def test_the_file_clock_reads_the_instant_a_driver_writes(tmp_path: Any) -> None:
    path = tmp_path / "now"
    path.write_text("2026-03-02T08:00:00Z\n")
    clock = FileClock(path)
    assert clock.now() == MON
    path.write_text("2026-03-02T09:00:00.5Z")
    assert clock.now() == MON + H + timedelta(milliseconds=500)
    path.write_text("")  # a writer between truncate and write: the last instant holds
    assert clock.now() == MON + H + timedelta(milliseconds=500)


# -- the worker over an in-memory broker ---------------------------------------------------------


class Pipeline:
    """What the relay would have published, and a worker reading it (in memory)."""

    def __init__(self) -> None:
        self.broker = MemoryBroker(partitions=2)
        self.notification = 0
        self.store: list[IncidentEvent] = []

    def publish(self, events: list[IncidentEvent]) -> None:
        for event in events:
            self.notification += 1
            self.store.append(event)
            self.broker.produce(
                EVENTS, encode_envelope(self.notification, event), event.incident_id.encode()
            )

    def worker(self, clock: ManualClock, **options: Any) -> AlertTimerWorker:
        defaults: dict[str, Any] = {
            "store_events": lambda: list(self.store),
            "history": lambda i: [e for e in self.store if e.incident_id == i],
        }
        return AlertTimerWorker(
            CONTRACTS,
            source_factory=lambda: self.broker.source([EVENTS], "timer"),
            sink_factory=self.broker.sink,
            fired_reader=memory_fired_reader(lambda: self.broker.records(ALERTS)),
            decode_event=decode_envelope,
            alerts_topic=ALERTS,
            clock=clock,
            **{**defaults, **options},
        )

    def alerts(self) -> list[dict[str, Any]]:
        return [json.loads(r.value or b"") for r in self.broker.records(ALERTS)]


@pytest.fixture
def pipeline() -> Iterator[Pipeline]:
    yield Pipeline()


def run(worker: AlertTimerWorker, clock: ManualClock, until: datetime, step: timedelta) -> None:
    """Step the worker, moving simulated time on by `step` or to its next deadline."""
    stop = threading.Event()
    while True:
        worker.step(stop)
        if clock.now() >= until:
            break
        assert worker.timer is not None
        deadline = worker.timer.next_deadline()
        later = clock.now() + step
        if deadline is not None and clock.now() < deadline < later:
            later = deadline
        clock.set(min(later, until))
    worker.step(stop)


def test_the_worker_publishes_keyed_alerts_and_a_restart_publishes_each_crossing_once(
    pipeline: Pipeline,
) -> None:
    a = history(reported(MON, "P2"), incident_id="A")
    b = history(reported(MON + 10 * MIN, "P1"), incident_id="B")
    pipeline.publish([a[0], b[0]])
    clock = ManualClock(MON + 10 * MIN)
    worker = pipeline.worker(clock)
    worker.open()
    run(worker, clock, MON + 50 * MIN, MIN)
    worker.close()
    first = pipeline.alerts()
    assert [(x["alert_key"], x["fired_at"], x["late"]) for x in first] == [
        ("B/response/at_risk/0", "2026-03-02T08:21:15Z", False),  # 75 % of 15 min
        ("B/escalated/2", "2026-03-02T08:21:15Z", False),
        ("B/response/breached/0", "2026-03-02T08:25:00Z", False),
        ("B/escalated/4", "2026-03-02T08:25:00Z", False),
        ("A/response/at_risk/0", "2026-03-02T08:45:00Z", False),
        ("A/escalated/2", "2026-03-02T08:45:00Z", False),
    ]
    keyed = {r.key for r in pipeline.broker.records(ALERTS)}
    assert keyed == {b"A", b"B"}
    # Down 08:50 → 09:30; A's breach at 09:00 is published late, nothing twice.
    clock.set(MON + 90 * MIN)
    again = pipeline.worker(clock)
    again.open()
    run(again, clock, MON + 90 * MIN, MIN)
    later = pipeline.alerts()[len(first) :]
    assert [(x["alert_key"], x["crossed_at"], x["late"]) for x in later] == [
        ("A/response/breached/0", "2026-03-02T09:00:00Z", True),
        ("A/escalated/3", "2026-03-02T09:00:00Z", True),
    ]
    assert len({x["alert_key"] for x in pipeline.alerts()}) == len(pipeline.alerts())


def test_the_worker_reschedules_on_events_from_the_topic(pipeline: Pipeline) -> None:
    events = history(
        reported(MON, "P2"),
        ("acknowledged", MON + 30 * MIN, {}),
    )
    pipeline.publish(events[:1])
    clock = ManualClock(MON)
    worker = pipeline.worker(clock, store_events=None)
    worker.open()
    run(worker, clock, MON + 30 * MIN, MIN)
    pipeline.publish(events[1:])
    run(worker, clock, MON + 3 * H, MIN)
    assert [x["alert_key"] for x in pipeline.alerts()] == []  # acknowledged before 08:45
    assert worker.stats()["consumed"] == 2
