"""The claims section: each of the claims C1–C10 with this run's numbers and a
verdict (analysis.claims; the rules in words: docs/methodology.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from analysis import claims as C
from analysis.sections.base import Section, Table, always
from analysis.sections.browser import browser_of
from analysis.sections.cost import report_cost_inputs
from analysis.sections.network import recovery_rows

if TYPE_CHECKING:  # pragma: no cover
    from analysis.report_data import Report

__all__ = ["CLAIMS", "claim_rows"]


def claim_rows(rep: Report) -> list[dict[str, Any]]:
    """The verdicts of this run (computed once per report)."""

    def compute() -> list[dict[str, Any]]:
        ci = report_cost_inputs(rep)
        ratios = ci.ratios.to_dict("records") if len(ci.ratios) else []
        return C.claims(
            rep.summary,
            cost_ratios=ratios,
            server_metrics=rep.data.server_metrics,
            manifest=rep.manifest,
            browser_recovery=browser_of(rep).recovery,
            recovery=recovery_rows(rep),
        )

    return rep.cached("claims", compute)


def _claims_text(rep: Report) -> str:
    return (
        "Each claim of the article with this run's numbers and a verdict; the rules and "
        'thresholds are in docs/methodology.md ("Claims and verdict rules") and '
        "`analysis/claims.py`.\n\n" + C.claims_markdown(claim_rows(rep))
    )


def _claims_headline(rep: Report) -> str:
    return "; ".join(f"{r['id']} {r['status']}" for r in claim_rows(rep)) + "."


CLAIMS = Section(
    "claims",
    "Claims",
    always,
    "always (a claim whose experiment is not in the run says 'not measured in this run')",
    (Table("claims", _claims_text),),
    headline=_claims_headline,
)
