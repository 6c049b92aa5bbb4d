"""The leaf bytes of the Merkle log: one canonical encoding per stored record (docs/audit.md §9).

An incident event's leaf is the canonical JSON (§2) of its export form — the hashed members,
`prev_hash` and `hash` — so an auditor rebuilds it from an export line. Any other stored record
(a message receipt, a contract version, whatever a later aggregate stores) is committed to by
its place and the SHA-256 of its stored bytes.
"""

from __future__ import annotations

import hashlib

from slatrail.domain.model import IncidentEvent, canonical_json, event_to_dict


def event_leaf(event: IncidentEvent) -> bytes:
    """Leaf bytes of a recorded incident event: canonical JSON of its export members."""
    return canonical_json(event_to_dict(event))


def record_leaf(aggregate_id: str, version: int, topic: str, state: bytes) -> bytes:
    """Leaf bytes of any other stored record (or of an incident record that does not decode);
    `aggregate_id` as 32 lowercase hex digits."""
    return canonical_json(
        {
            "aggregate_id": aggregate_id,
            "version": version,
            "topic": topic,
            "state_sha256": hashlib.sha256(state).hexdigest(),
        }
    )
