"""Claim C2 side by side with the article: its dollars and ratio next to ours, and the
usage that would reproduce its $4,100 (WS) and $680 (SSE) on each pairing.

* :func:`c2_table` — per pairing: our SSE and WS $/month and ratio, the band
  (:func:`analysis.cost_c2.band`), the article's $680 → $4,100 = 6.03×, and our ratio
  ÷ the article's.
* :func:`c2_inverse` — per pairing, what the article must have assumed: the MAU at which
  our WS bill is $4,100, the MAU at which our SSE bill is $680 (one usage reproduces both
  only when the two MAUs agree), our ratio at the first MAU, the sessions per user that
  give $4,100 at the profile's MAU, and the tokens per frame at which WS/SSE = 6.03×.

All solvers bisect on our own bills (monotonic in MAU and sessions; tokens per frame is
scanned on a grid because the ratio need not be monotonic in it). "unreachable" means no
value in the searched range gives the article's figure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from analysis.cost import Selection, pair_costs, pair_name, pairs
from analysis.cost_c2 import ARTICLE_RATIO, ARTICLE_SSE_USD, ARTICLE_WS_USD, band
from analysis.cost_formulas import monthly_usd
from analysis.cost_usage import Calibration, Profile, monthly_usage_from_profile

#: Search ranges of the inverse (a figure outside them is reported as unreachable).
MAU_RANGE = (1.0, 1e10)
SESSIONS_RANGE = (0.01, 1e4)
TOKENS_PER_FRAME_GRID = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 25, 32, 40, 50, 64, 100, 200)

C2_TABLE_CAPTION = (
    "Claim C2 per SSE/WS pairing: this run's monthly cost (measured usage scaled to the "
    "profile) next to the article's $680 (SSE) → $4,100 (WS) = 6.03×. The band reads the "
    "ratio: about equal 0.8–1.25×, close to 6× 4–9× (within a factor 1.5 of the article), "
    "far above > 9×. Only connection-priced pairings (the WS bill grows with open "
    "connection time) decide the verdict."
)
C2_INVERSE_CAPTION = (
    "What the article must have assumed, per pairing: the monthly active users at which "
    "our WS bill is $4,100 and at which our SSE bill is $680 (one workload reproduces both "
    "only when the two agree), our WS/SSE ratio at the first of them, the sessions per "
    "user giving $4,100 at the profile's MAU, and the tokens per WS frame / SSE event at "
    "which the ratio is the article's 6.03×."
)


def c2_table(ratios: pd.DataFrame) -> pd.DataFrame:
    """Ours next to the article's, per pairing (rows of :func:`analysis.cost.ratio_table`)."""
    cols = [
        "pair",
        "connection_priced",
        "sse_usd",
        "ws_usd",
        "ws_over_sse",
        "band",
        "article_sse_usd",
        "article_ws_usd",
        "article_ratio",
        "ours_over_article",
        "driver",
    ]
    if ratios is None or ratios.empty:
        return pd.DataFrame(columns=cols)
    out = ratios[["pair", "connection_priced", "sse_usd", "ws_usd", "ws_over_sse", "driver"]].copy()
    out["band"] = [band(float(r)) for r in out["ws_over_sse"]]
    out["article_sse_usd"] = ARTICLE_SSE_USD
    out["article_ws_usd"] = ARTICLE_WS_USD
    out["article_ratio"] = ARTICLE_RATIO
    out["ours_over_article"] = out["ws_over_sse"] / ARTICLE_RATIO
    return out.sort_values(["connection_priced", "ws_over_sse"], ascending=[False, False])[
        cols
    ].reset_index(drop=True)


def solve_increasing(f: Callable[[float], float], target: float, lo: float, hi: float) -> float:
    """x in [lo, hi] (log-bisection) where a non-decreasing ``f`` reaches ``target``; NaN
    when the range does not bracket it."""
    f_lo, f_hi = f(lo), f(hi)
    if f_lo > target or f_hi < target:
        return math.nan
    a, b = math.log(lo), math.log(hi)
    for _ in range(60):
        m = (a + b) / 2
        if f(math.exp(m)) < target:
            a = m
        else:
            b = m
    return math.exp(b)


def _usd(
    profile: Profile, arm: str, product: str, sel: Selection, cals: Mapping[str, Calibration]
) -> float:
    u = monthly_usage_from_profile(profile, arm, cals.get(arm))
    return monthly_usd(u, sel.catalogue[product], sel.catalogue)


def _tokens_per_frame_for(
    profile: Profile, sse_p: str, ws_p: str, sel: Selection, cals: Mapping[str, Calibration]
) -> float:
    """Smallest tokens per frame (interpolated on the grid) where WS/SSE crosses 6.03×."""
    grid = [k for k in TOKENS_PER_FRAME_GRID if k <= profile.tokens_per_answer]
    prev: tuple[float, float] | None = None
    for k in grid:
        p = replace(profile, tokens_per_message=float(k))
        s = _usd(p, "sse", sse_p, sel, cals)
        w = _usd(p, "ws", ws_p, sel, cals)
        r = w / s if s > 0 else math.inf
        d = r - ARTICLE_RATIO
        if d == 0:
            return float(k)
        if prev is not None and prev[1] * d < 0:
            k0, d0 = prev
            return k0 + (k - k0) * d0 / (d0 - d)
        prev = (float(k), d)
    return math.nan


def c2_inverse(
    profile: Profile, sel: Selection, calibrations: Mapping[str, Calibration] | None = None
) -> pd.DataFrame:
    """Per pairing: the usage at which our bills match the article's figures (see module)."""
    cals = dict(calibrations or {})
    rows = []
    for sse_p, ws_p in pairs(sel):

        def ws_at_mau(m: float, ws_p: str = ws_p) -> float:
            return _usd(profile.with_mau(m), "ws", ws_p, sel, cals)

        def sse_at_mau(m: float, sse_p: str = sse_p) -> float:
            return _usd(profile.with_mau(m), "sse", sse_p, sel, cals)

        def ws_at_sessions(n: float, ws_p: str = ws_p) -> float:
            return _usd(replace(profile, sessions_per_user_per_month=n), "ws", ws_p, sel, cals)

        mau_ws = solve_increasing(ws_at_mau, ARTICLE_WS_USD, *MAU_RANGE)
        mau_sse = solve_increasing(sse_at_mau, ARTICLE_SSE_USD, *MAU_RANGE)
        ratio_at = math.nan
        if math.isfinite(mau_ws):
            s = sse_at_mau(mau_ws)
            ratio_at = ws_at_mau(mau_ws) / s if s > 0 else math.inf
        one_usage = (
            math.isfinite(mau_ws)
            and math.isfinite(mau_sse)
            and abs(math.log(mau_ws / mau_sse)) <= math.log(1.1)
        )
        rows.append(
            {
                "pair": pair_name(sse_p, ws_p),
                "mau_for_ws_4100": mau_ws,
                "mau_for_sse_680": mau_sse,
                "one_usage_gives_both": one_usage,
                "ratio_at_ws_4100": ratio_at,
                "sessions_per_user_for_ws_4100": solve_increasing(
                    ws_at_sessions, ARTICLE_WS_USD, *SESSIONS_RANGE
                ),
                "tokens_per_frame_for_6x": _tokens_per_frame_for(profile, sse_p, ws_p, sel, cals),
            }
        )
    return pd.DataFrame(rows)


def ratio_grid(
    profile: Profile,
    sel: Selection,
    calibrations: Mapping[str, Calibration] | None,
    values: Sequence[float],
    vary: Callable[[Profile, float], Profile],
) -> pd.DataFrame:
    """WS/SSE ratio per pairing for each value of one profile knob (long table)."""
    cals = dict(calibrations or {})
    rows = []
    for v in values:
        p = vary(profile, v)
        usages = {arm: monthly_usage_from_profile(p, arm, cals.get(arm)) for arm in ("sse", "ws")}
        for (sse_p, ws_p), (s, w) in pair_costs(usages, sel).items():
            rows.append(
                {
                    "value": v,
                    "pair": pair_name(sse_p, ws_p),
                    "sse_usd": s,
                    "ws_usd": w,
                    "ws_over_sse": w / s if s > 0 else np.inf,
                }
            )
    return pd.DataFrame(rows)
