"""When a headline figure may be published: the validity rules.

Every headline figure of a run is either a number its data supports or "n/a" with the
reason (docs/methodology.md, "Validity rules"). Each rule here takes the evidence behind
one figure and returns None when the figure stands, else a short reason that the tables
print as ``n/a (reason)`` and summary.json keeps under the arm's ``invalid`` map.

* Percentiles: withheld below the sample size that supports them (analysis.stats).
* Memory per connection: a least-squares fit of RSS on open connections, published only
  when it explains the samples (R² ≥ `RSS_MIN_R2`), the connection count moved by at least
  `RSS_MIN_CONNECTIONS` (a few dozen connections move RSS less than the allocator does on
  its own) and the slope is positive.
* SLO attainment: a share of at least `SLO_MIN_STREAMS` judged streams.
* Server CPU per 1k tokens: at least `CPU_MIN_TOKENS` tokens in the sampled window.
* Every headline figure: never negative (a negative time, rate or size is an artefact).
* A median ratio whose 95 % CI spans more than a factor `RATIO_MAX_CI_SPAN` is noise.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from analysis.results import RatioCI

__all__ = [
    "CPU_MIN_TOKENS",
    "RATIO_MAX_CI_SPAN",
    "RSS_MIN_CONNECTIONS",
    "RSS_MIN_R2",
    "SLO_MIN_STREAMS",
    "cpu_per_token",
    "non_negative",
    "ratio_ci",
    "rss_fit",
    "share",
]

RSS_MIN_R2 = 0.9
RSS_MIN_CONNECTIONS = 100
SLO_MIN_STREAMS = 20
CPU_MIN_TOKENS = 1000
RATIO_MAX_CI_SPAN = 2.0


def _finite(v: float | None) -> bool:
    return v is not None and isinstance(v, int | float) and math.isfinite(v)


def rss_fit(
    kib_per_conn: float | None, r2: float | None, conn_min: float | None, conn_max: float | None
) -> str | None:
    """Why an RSS-per-connection slope is not publishable (None: it is)."""
    if not _finite(kib_per_conn):
        return "no fit (connections did not vary)"
    span = (conn_max or 0.0) - (conn_min or 0.0) if _finite(conn_max) else 0.0
    if span < RSS_MIN_CONNECTIONS:
        return f"span {span:.0f} conns < {RSS_MIN_CONNECTIONS}"
    if not _finite(r2) or r2 < RSS_MIN_R2:  # type: ignore[operator]
        return f"fit R² {r2:.2f} < {RSS_MIN_R2:g}" if _finite(r2) else "fit R² n/a"
    if kib_per_conn <= 0:  # type: ignore[operator]
        return f"slope {kib_per_conn:.1f} ≤ 0"
    return None


def share(judged: int) -> str | None:
    """Why a share of streams (SLO attainment) is not publishable."""
    if judged < SLO_MIN_STREAMS:
        return f"n={judged} < {SLO_MIN_STREAMS}"
    return None


def cpu_per_token(tokens: float | None) -> str | None:
    """Why server CPU per 1k tokens is not publishable."""
    if not _finite(tokens) or tokens < CPU_MIN_TOKENS:  # type: ignore[operator]
        n = f"{tokens:.0f}" if _finite(tokens) else "0"
        return f"{n} tokens < {CPU_MIN_TOKENS}"
    return None


def non_negative(value: float | int | None) -> str | None:
    """Why a headline figure that cannot be negative is not publishable."""
    if _finite(value) and value < 0:  # type: ignore[operator]
        return f"negative ({value:.3g})"
    return None


def ratio_ci(r: RatioCI | None) -> str | None:
    """Why a median ratio with a bootstrap CI is noise (None: publishable or no CI)."""
    if r is None or r.ratio is None or not r.has_ci:
        return None
    lo, hi = r.lo, r.hi
    if lo is None or hi is None or lo <= 0 or hi / lo > RATIO_MAX_CI_SPAN:
        return f"95 % CI [{lo:.2f}, {hi:.2f}] too wide"
    return None
