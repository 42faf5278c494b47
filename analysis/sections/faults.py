"""Reconnect and cancel sections: stream outcomes of the scenarios whose configuration
drops streams (server drop / client abort) or cancels them, and the reconnect figures."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from analysis import plots as P
from analysis.sections.base import Fig, Section, Table
from analysis.tables import fmt, md_table

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from analysis.report_data import Report

__all__ = ["CANCEL", "RECONNECT"]


def _outcomes(rep: Report, trait: str, title: str) -> Figure | None:
    """Outcome counts per arm of every group with ``trait`` (arm · group when several)."""
    found = rep.summary.groups(trait)
    if not found:
        return None
    frames = []
    for g in found:
        s = rep.rows("streams", g)
        if len(found) > 1:
            s = s.assign(arm=s["arm"].astype(object) + f" · {g}")
        frames.append(s)
    return P.plot_outcomes(pd.concat(frames, ignore_index=True), title=title)


def _reconnect_table(rep: Report) -> str | None:
    rows = []
    for g in rep.summary.groups("reconnects"):
        for arm, a in rep.summary.scenarios[g].arms.items():
            rc = a.reconnect
            integ = a.integrity
            rows.append(
                [
                    g,
                    arm,
                    rc.streams_dropped,
                    rc.reconnects,
                    fmt(rc.gap_ms.p50, "{:.1f}"),
                    fmt(rc.gap_ms.p99, "{:.1f}"),
                    integ.lost if integ else 0,
                    integ.dup if integ else 0,
                ]
            )
    if not rows:
        return None
    head = [
        "scenario",
        "arm",
        "dropped streams",
        "reconnects",
        "drop→next token p50 ms",
        "p99 ms",
        "lost",
        "dup",
    ]
    return md_table(head, rows)


def _reconnect_headline(rep: Report) -> str | None:
    parts = []
    for g in rep.summary.groups("reconnects"):
        for arm, a in rep.summary.scenarios[g].arms.items():
            rc = a.reconnect
            if rc.streams_dropped:
                ok = rc.outcomes.get("ok", 0) / rc.streams_dropped
                parts.append(f"{arm} {ok:.0%} of {rc.streams_dropped} dropped streams finished")
    return f"Reconnects: {'; '.join(parts)}." if parts else None


RECONNECT = Section(
    "reconnect",
    "Reconnects",
    lambda rep: bool(rep.summary.groups("reconnects")),
    "a scenario whose server drops streams (stream.drop_after) or whose client aborts them "
    "(behaviour.client_abort_after)",
    (
        Fig(
            "reconnect_outcomes",
            lambda rep: _outcomes(rep, "reconnects", "Reconnect scenario: outcomes"),
            caption="How the streams that were dropped mid-answer ended, per arm: all 'ok' "
            "means every dropped stream resumed and finished with no token lost (claim C5; "
            "the table gives the resume gap).",
        ),
        Table("reconnect", _reconnect_table),
    ),
    headline=_reconnect_headline,
)

CANCEL = Section(
    "cancel",
    "Cancels",
    lambda rep: bool(rep.summary.groups("cancels")),
    "a scenario whose users cancel streams (behaviour.cancel_prob > 0)",
    (
        Fig(
            "cancel_outcomes",
            lambda rep: _outcomes(rep, "cancels", "Cancel scenarios: outcomes"),
            caption="Outcomes in the scenarios whose users cancel: 'cancelled' streams were "
            "abandoned on purpose and are not SLO misses; their E2E is reported apart "
            "from completed streams (headline tables).",
        ),
    ),
)
