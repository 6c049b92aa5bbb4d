"""`/v1/incidents/{id}` keeps the answer as of now of an incident whose clocks have all stopped,
keyed by its last event and the contract version: the same answer, computed once."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from slatrail.infra.bootstrap import Container
from slatrail.infra.settings import Settings
from slatrail.infra.web import answers
from slatrail.infra.web.problems import Problem
from slatrail.infra.web.tokens import Principal
from slatrail.infra.wire import decode
from tests.builders import line as message_line
from tests.builders import reported_data, utc, wire

T = utc(2026, 10, 5, 9)
MIN = T - utc(2026, 10, 5, 8, 59)
ADMIN = Principal("ops", "operator", frozenset())


def _record(
    container: Container, incident: str, kind: str, at: datetime, data: object = None
) -> None:
    message = wire(kind, at, data, incident_id=incident, message_id=f"{incident}-{kind}")
    assert container.app.record([decode(message_line(message))], now=at)[0].status == "accepted"


def test_a_settled_incident_is_answered_from_the_cache_until_its_next_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [T + 600 * MIN]
    container = Container(Settings(store=f"sqlite:///{tmp_path / 's.db'}"), clock=lambda: now[0])
    _record(container, "DONE", "reported", T, reported_data("acme-rtc", "P3"))
    _record(container, "DONE", "acknowledged", T + 5 * MIN)
    _record(container, "DONE", "resolved", T + 60 * MIN, {"resolution": "fixed"})
    _record(container, "OPEN", "reported", T, reported_data("acme-rtc", "P3"))
    cache = answers.SettledAnswers(size=1)
    computed: list[str] = []
    real = answers.sla_view

    def counted(histories: Any, *args: Any, **kwargs: Any) -> Any:
        computed.append(histories[0][0].incident_id)
        return real(histories, *args, **kwargs)

    monkeypatch.setattr(answers, "sla_view", counted)

    def ask(incident: str, **when: datetime | None) -> dict[str, object]:
        return answers.incident(container, ADMIN, incident, as_of=when.get("as_of"),
                                as_known_at=None, from_read_model=False, cache=cache)  # fmt: skip

    first = ask("DONE")
    assert {m["status"] for m in first["metrics"].values()} <= {"met", "breached", "not_applicable"}
    now[0] += 24 * 60 * MIN
    assert ask("DONE") is first and computed == ["DONE"]  # computed once
    fresh = answers.incident(container, ADMIN, "DONE", as_of=None, as_known_at=None,
                             from_read_model=False)  # fmt: skip
    assert fresh == first  # what it would compute now, a day later
    assert ask("DONE", as_of=now[0]) == first and computed[-1] == "DONE"  # as_of: never cached
    ask("OPEN")
    ask("OPEN")
    assert computed[-2:] == ["OPEN", "OPEN"] and len(cache) == 1  # running clocks: never kept
    _record(container, "DONE", "reopened", now[0], {"reason": "came back"})
    assert ask("DONE")["state"] != "resolved"  # a new event: a new key
    with pytest.raises(Problem):  # the token's visibility is checked on every answer
        viewer = Principal("v", "viewer", frozenset({"other"}))
        answers.incident(container, viewer, "DONE", as_of=None, as_known_at=None,
                         from_read_model=False, cache=cache)  # fmt: skip
    container.close()
