"""What-if speed: one month (2026-09) of N incidents (1,000 and 10,000 by default) under a
draft contract (P1 response 15m → 30m) next to the recorded version 1.

Baseline in the same run: the plain monthly report of the same month and incidents
(`monthly_reports` under the recorded version). Printed: seconds and the ratio what-if / report.
Usage: python bench/whatif.py [INCIDENTS ...]
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.clocks import histories
from slatrail.domain.contract_version import SINCE_EVER, ContractBook, ContractVersion
from slatrail.domain.contracts import load_contracts
from slatrail.infra.bootstrap import read_contracts, sample_contracts_text
from slatrail.projections.availability import Month
from slatrail.projections.report import monthly_reports
from slatrail.projections.whatif import whatif

MONTH = Month(2026, 9)
AS_OF = datetime(2026, 10, 1, tzinfo=UTC)


def main() -> None:
    counts = [int(a) for a in sys.argv[1:]] or [1_000, 10_000]
    text = sample_contracts_text()
    recorded = ContractBook((ContractVersion.unrecorded(read_contracts(None), text, SINCE_EVER),))
    draft = load_contracts(text.replace('response = "15m"', 'response = "30m"', 1), "draft.toml")
    for count in counts:
        data = histories(count)
        started = time.perf_counter()
        monthly_reports(data, recorded, [MONTH], AS_OF)
        report_s = time.perf_counter() - started
        started = time.perf_counter()
        result = whatif(data, recorded, draft, [MONTH], AS_OF)
        whatif_s = time.perf_counter() - started
        flips = sum(len(row["flips"]) for row in result["rows"])
        print(
            f"{count:>6} incidents: report {report_s:.3f} s, what-if {whatif_s:.3f} s "
            f"({flips} clocks flip) — what-if / report = {whatif_s / report_s:.2f}"
        )


if __name__ == "__main__":
    main()
