"""Two specs about the same value compared exactly (Clover's doc2spec check, by automata
instead of a prover): equivalent, or a value that one accepts and the other rejects."""

from __future__ import annotations

from dataclasses import dataclass

from sglc.constraints import ConstraintError
from sglc.ir.spec_terms import Term
from sglc.ir.specs.languages import Domain, NotRegular, term_language


@dataclass(frozen=True)
class Agreement:
    """`comparable` False: a term is not regular in the domain (`reason` says why);
    otherwise the two examples (None when there is none): a text the written spec accepts
    and the other rejects, and the other way round."""

    comparable: bool
    only_written: str | None = None
    only_other: str | None = None
    reason: str = ""

    @property
    def equivalent(self) -> bool:
        return self.comparable and self.only_written is None and self.only_other is None


def compare_terms(written: Term, other: Term, domain: Domain) -> Agreement:
    """Compare two terms about one value written in `domain` (their subjects' names may
    differ: each term is read as a statement about that one value)."""
    try:
        a = term_language(written, domain)
        b = term_language(other, domain)
    except (NotRegular, ConstraintError) as exc:
        return Agreement(False, reason=str(exc))
    return Agreement(True, (a - b).example(), (b - a).example())


__all__ = ["Agreement", "compare_terms"]
