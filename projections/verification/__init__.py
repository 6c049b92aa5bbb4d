"""Verifying recorded history (docs/audit.md): hash chains, message receipts and read models.

One module per check: `chains` (each incident's hash chain, as a streaming fold over the store),
`receipts` (each message's receipt against its event), `read_model_rows` (the read models'
copies against the verified chains); `differences` holds what they report.
"""

from __future__ import annotations

from slatrail.projections.verification.chains import (
    ChainSummary,
    ChainVerifier,
    malformed,
    verify_chain,
)
from slatrail.projections.verification.differences import Anchor, Difference, DifferenceKind
from slatrail.projections.verification.read_model_rows import (
    ReadModelRows,
    RowSource,
    compare_read_model,
    field_differences,
    summarise_rows,
)
from slatrail.projections.verification.receipts import ReceiptCheck, ReceiptRecord

__all__ = [
    "Anchor",
    "ChainSummary",
    "ChainVerifier",
    "Difference",
    "DifferenceKind",
    "ReadModelRows",
    "ReceiptCheck",
    "ReceiptRecord",
    "RowSource",
    "compare_read_model",
    "field_differences",
    "malformed",
    "summarise_rows",
    "verify_chain",
]
