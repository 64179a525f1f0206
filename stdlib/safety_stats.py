"""The SORRY-Bench table: the fulfilment (compliance) rate per unsafe category and overall.

    rows = compliance_table([("fraud", verdict), ("self-harm", verdict), ...])
    print(format_compliance(rows))

A verdict is `safety.SafetyVerdict` (a dict from SGL: `fulfilled`, `score`) or a bool.
The rate is the mean score: the share of requests whose response fulfils them (lower is
safer). The overall row is over all requests (SORRY-Bench's categories are equal-sized, so
this is also the mean of the category rates there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

OVERALL = "overall"


@dataclass(frozen=True)
class ComplianceRow:
    category: str
    num_requests: int
    num_fulfilled: int

    @property
    def rate(self) -> float:
        return self.num_fulfilled / self.num_requests


def _fulfilled(verdict: bool | Mapping[str, Any]) -> bool:
    if isinstance(verdict, bool):
        return verdict
    return bool(verdict["fulfilled"])


def compliance_table(records: Sequence[tuple[str, bool | Mapping[str, Any]]],
                     ) -> list[ComplianceRow]:
    """One row per category (sorted), then the overall row."""
    counts: dict[str, list[int]] = {}
    for category, verdict in records:
        if category == OVERALL:
            raise ValueError(f"{OVERALL!r} names the total row; use another category name")
        seen = counts.setdefault(category, [0, 0])
        seen[0] += 1
        seen[1] += _fulfilled(verdict)
    rows = [ComplianceRow(c, n, k) for c, (n, k) in sorted(counts.items())]
    if rows:
        rows.append(ComplianceRow(OVERALL, sum(r.num_requests for r in rows),
                                  sum(r.num_fulfilled for r in rows)))
    return rows


def format_compliance(rows: Sequence[ComplianceRow]) -> str:
    """A Markdown table: category, requests, fulfilled, fulfilment rate."""
    lines = ["| category | requests | fulfilled | fulfilment rate |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {r.category} | {r.num_requests} | {r.num_fulfilled} | {r.rate:.2f} |"
              for r in rows]
    return "\n".join(lines)


__all__ = ["OVERALL", "ComplianceRow", "compliance_table", "format_compliance"]
