"""Claim C2 — "WebSocket costs ~6× SSE on connection-priced platforms ($4,100 → $680 a
month)" — put to this run's numbers, pairing by pairing (standard library only).

The verdict is banded on the WS/SSE monthly cost ratio ``r`` of each SSE/WS pairing:

=============================  =================  ==========================================
band                           r                  why this edge
=============================  =================  ==========================================
``reversed``                   r < 0.8            SSE dearer by more than the equal band
``about equal``                0.8 ≤ r ≤ 1.25     ±25 % (symmetric in log): regional prices,
                                                  free tiers and the calibration's spread
                                                  move a bill by that much, so a smaller gap
                                                  says nothing about the protocol
``WS dearer, well below 6×``   1.25 < r < 4       WS costs more, but not the article's size
``close to 6×``                4 ≤ r ≤ 9          within a factor 1.5 of the article's 6.0×
                                                  (symmetric in log): one usage assumption
                                                  (think time, tab-open time) moves the ratio
                                                  by about that much (see the sensitivity
                                                  chart), so this is "the same claim"
``far above 6×``               r > 9              the article *understates* the gap
=============================  =================  ==========================================

The claim is about *connection-priced* platforms (pricing files with
``connection_priced = true``: the WS bill grows with the time a connection is open). It
holds when every connection-priced pairing is close to 6×; does not hold when none is
close (all below it, or all far above it: the article's 6× then understates the gap); and
depends on the platform otherwise (the numbers name which pairing is in which band).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

#: The article's figures: WS $4,100 a month, SSE $680 a month.
ARTICLE_WS_USD = 4100.0
ARTICLE_SSE_USD = 680.0
ARTICLE_RATIO = ARTICLE_WS_USD / ARTICLE_SSE_USD  # 6.03

#: Band edges (see the module docstring for why).
REVERSED_BELOW = 0.8
EQUAL_UP_TO = 1.25
CLOSE_FACTOR = 1.5
CLOSE_FROM = round(6.0 / CLOSE_FACTOR, 6)  # 4.0
CLOSE_TO = round(6.0 * CLOSE_FACTOR, 6)  # 9.0

REVERSED = "reversed"
ABOUT_EQUAL = "about equal"
WELL_BELOW = "WS dearer, well below 6×"
CLOSE = "close to 6×"
FAR_ABOVE = "far above 6×"
BANDS = (REVERSED, ABOUT_EQUAL, WELL_BELOW, CLOSE, FAR_ABOVE)


def band(ratio: float | None) -> str:
    """The band of a WS/SSE ratio ("n/a" when not a finite positive number)."""
    if ratio is None or not isinstance(ratio, int | float) or not math.isfinite(ratio):
        return "n/a"
    if ratio < REVERSED_BELOW:
        return REVERSED
    if ratio <= EQUAL_UP_TO:
        return ABOUT_EQUAL
    if ratio < CLOSE_FROM:
        return WELL_BELOW
    if ratio <= CLOSE_TO:
        return CLOSE
    return FAR_ABOVE


def _finite(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def pairing_numbers(row: Mapping[str, Any]) -> str:
    """One pairing, ours next to the article's: '$19.68 → $237.22 = 12.05× (far above 6×;
    driver …) — article $680 → $4,100 = 6.03×'."""
    r = _finite(row.get("ws_over_sse"))
    ours = (
        f"SSE ${row.get('sse_usd', 0):,.2f} → WS ${row.get('ws_usd', 0):,.2f} = "
        f"{r:.2f}× ({band(r)}; driver {row.get('driver') or 'none'})"
        if r is not None
        else "n/a"
    )
    return (
        f"{ours} — article ${ARTICLE_SSE_USD:,.0f} → ${ARTICLE_WS_USD:,.0f} = {ARTICLE_RATIO:.2f}×"
    )


def c2_verdict(cost_ratios: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    """Status, verdict sentence, rule and numbers of C2 from ratio rows.

    ``cost_ratios``: :func:`analysis.cost.ratio_table` as records (``pair``,
    ``ws_over_sse``, ``sse_usd``, ``ws_usd``, ``driver``, ``connection_priced``).
    Returns ``{"status", "verdict", "why", "numbers"}`` with the status strings of
    :mod:`analysis.claims`.
    """
    from analysis import claims as C

    rows = [r for r in (cost_ratios or []) if _finite(r.get("ws_over_sse")) is not None]
    if not rows:
        return {
            "status": C.NOT_MEASURED,
            "verdict": C.NOT_MEASURED_TEXT,
            "why": "needs measured usage of both an SSE and a WS arm",
            "numbers": {},
        }
    numbers = {str(r["pair"]): pairing_numbers(r) for r in rows}
    priced = [r for r in rows if r.get("connection_priced")] or rows
    bands = {str(r["pair"]): band(float(r["ws_over_sse"])) for r in priced}
    why = (
        f"WS/SSE monthly cost per pairing on the connection-priced platforms, banded: "
        f"< {REVERSED_BELOW:g} reversed, ≤ {EQUAL_UP_TO:g} about equal, "
        f"{CLOSE_FROM:g}–{CLOSE_TO:g} close to 6×, > {CLOSE_TO:g} far above"
    )
    close = [p for p, b in bands.items() if b == CLOSE]
    above = [p for p, b in bands.items() if b == FAR_ABOVE]
    if len(close) == len(bands):
        verdict, status = (
            f"holds: close to 6× on every connection-priced pairing ({len(close)})",
            C.HOLDS,
        )
    elif len(above) == len(bands):
        low = min(priced, key=lambda r: float(r["ws_over_sse"]))
        verdict = (
            "does not hold as stated: WS costs far more than 6× on every connection-priced "
            f"pairing (at least {float(low['ws_over_sse']):.1f}×, {low['pair']})"
        )
        status = C.DOES_NOT_HOLD
    elif not close and not above:
        top = max(priced, key=lambda r: float(r["ws_over_sse"]))
        verdict = (
            f"does not hold: at most {float(top['ws_over_sse']):.1f}× ({top['pair']}, "
            f"{band(float(top['ws_over_sse']))})"
        )
        status = C.DOES_NOT_HOLD
    else:
        parts = []
        for name in BANDS[::-1]:
            hit = [p for p, b in bands.items() if b == name]
            if hit:
                parts.append(f"{name} on {', '.join(hit)}")
        verdict, status = "depends on the platform's billing: " + "; ".join(parts), C.DEPENDS
    return {"status": status, "verdict": verdict, "why": why, "numbers": numbers}
