"""What `verify` computes per record, against the slow, obvious forms it replaces: aggregate
ids as UUID integers (uuid5 without building the UUID) and the RFC 3339 form of a UTC
instant."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from slatrail.domain.model import (
    format_instant,
    incident_key,
    incident_uuid,
    receipt_key,
    receipt_uuid,
)


@given(st.text())
@example("\ud800")  # a lone surrogate (not Unicode text)
def test_the_keys_are_the_uuid5_integers_of_incident_and_message_ids(name: str) -> None:
    try:
        want_incident, want_receipt = incident_uuid(name).int, receipt_uuid(name).int
    except UnicodeEncodeError:  # a lone surrogate: neither is defined for it
        with pytest.raises(UnicodeEncodeError):
            incident_key(name)
        with pytest.raises(UnicodeEncodeError):
            receipt_key(name)
        return
    assert incident_key(name) == want_incident
    assert receipt_key(name) == want_receipt
    assert uuid.UUID(int=incident_key(name)).version == 5


def _slow_format(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


OFFSETS = [UTC, timezone(timedelta(0)), timezone(timedelta(hours=5, minutes=30)),
           timezone(timedelta(hours=-8))]  # fmt: skip
INSTANTS = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30),
    timezones=st.sampled_from(OFFSETS),
)  # fmt: skip


@given(INSTANTS)
def test_an_instant_is_formatted_as_its_utc_time_whatever_its_offset(moment: datetime) -> None:
    text = format_instant(moment)
    assert text == _slow_format(moment)
    assert text.endswith("Z") and "+" not in text
    assert datetime.fromisoformat(text.replace("Z", "+00:00")) == moment
