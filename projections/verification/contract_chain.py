"""The contract versions' hash chain (docs/audit.md, *Contract versions*): consecutive
versions, each linked to the one before, its content matching its SHA-256, its hash covering
its recorded holiday tables, and still a valid contracts file with them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from slatrail.domain.contract_version import contracts_from_content, text_sha256, version_fields
from slatrail.domain.contracts import ContractsError
from slatrail.domain.model import GENESIS_HASH, chain_hash
from slatrail.projections.verification.differences import Difference, DifferenceKind


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """A stored contract version as verify reads it."""

    version: int
    content: str
    sha256: str
    effective_from: datetime
    recorded_at: datetime
    actor: str
    reason: str
    prev_hash: str
    hash: str
    holidays: str = ""


class ContractChain:
    """Feed the stored versions in store order; `differences()` at the end."""

    def __init__(self) -> None:
        self.found: list[Difference] = []
        self.versions = 0
        self._next = 1
        self._hash: str | None = GENESIS_HASH

    def version(
        self, aggregate_id: UUID, stored: StoredVersion | None, *, version: int,
        notification_id: int, error: str | None = None,
    ) -> None:  # fmt: skip
        self.versions += 1

        def report(kind: DifferenceKind, detail: str) -> None:
            self.found.append(
                Difference(
                    kind,
                    f"contract version {version}: {detail}",
                    notification_id=notification_id,
                    aggregate_id=aggregate_id,
                )
            )

        if version != self._next:
            report(DifferenceKind.MISSING_POSITION, f"expected version {self._next}")
            self._hash = None
        self._next = version + 1
        if stored is None:
            report(DifferenceKind.UNDECODABLE, error or "does not decode")
            self._hash = None
            return
        if self._hash is not None and stored.prev_hash != self._hash:
            report(DifferenceKind.BROKEN_LINK, "prev_hash is not the previous version's hash")
        if hashlib.sha256(stored.content.encode("utf-8")).hexdigest() != stored.sha256:
            report(DifferenceKind.HASH_MISMATCH, "the content does not match its sha256")
        fields = version_fields(
            version=version, sha256=stored.sha256, effective_from=stored.effective_from,
            recorded_at=stored.recorded_at, actor=stored.actor, reason=stored.reason,
            holidays_sha256=text_sha256(stored.holidays),
        )  # fmt: skip
        if chain_hash(stored.prev_hash, fields) != stored.hash:
            report(
                DifferenceKind.HASH_MISMATCH,
                "the hash does not match the version's fields and holiday tables",
            )
        try:
            contracts_from_content(stored.content, f"<contract version {version}>", stored.holidays)
        except (ContractsError, ValueError) as problem:
            report(DifferenceKind.UNDECODABLE, f"the content is not a valid contract: {problem}")
        self._hash = stored.hash
