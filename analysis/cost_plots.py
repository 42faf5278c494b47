"""Cost charts (issue 5, item 5): each function takes the cost tables and returns a Figure.

matplotlib is imported lazily so that the cost model itself does not need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis.cost import ARTICLE_RATIO, Sweep

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_monthly_cost(table: pd.DataFrame, *, title: str = "") -> Figure:
    """Monthly cost per platform and arm, stacked by billed dimension (horizontal bars)."""
    plt = _plt()
    dims = [c for c in table.columns if c.startswith("usd:")]
    dims = [c for c in dims if table[c].abs().sum() > 0]
    labels = [f"{r.platform} · {r.arm}" for r in table.itertuples()]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(labels) + 1.8))
    left = np.zeros(len(table))
    cmap = plt.get_cmap("tab20")
    for i, col in enumerate(dims):
        vals = table[col].to_numpy(float)
        ax.barh(labels, vals, left=left, label=col[4:], color=cmap(i % 20))
        left += vals
    for y, total in enumerate(table["monthly_usd"]):
        ax.text(total, y, f" ${total:,.2f}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("USD per month")
    ax.set_title(title or f"Monthly cost — profile {table.attrs.get('profile', '')}")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_ratio(ratios: pd.DataFrame, *, title: str = "WS / SSE monthly cost") -> Figure:
    """WS/SSE cost ratio per pairing (log scale), the article's 6× marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(ratios) + 1.8))
    vals = ratios["ws_over_sse"].to_numpy(float)
    colors = ["tab:red" if v >= ARTICLE_RATIO * 0.8 else "tab:blue" for v in vals]
    ax.barh(ratios["pair"], vals, color=colors)
    ax.axvline(ARTICLE_RATIO, color="k", ls="--", lw=1, label=f"article: {ARTICLE_RATIO:g}×")
    ax.axvline(1.0, color="grey", lw=0.8)
    ax.set_xscale("log")
    for y, (v, d) in enumerate(zip(vals, ratios["driver"], strict=True)):
        ax.text(v, y, f" {v:,.2f}× ({d or 'no gap'})", va="center", fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("WS cost ÷ SSE cost")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _plot_sweep(sweep: Sweep, x: str, xlabel: str, logx: bool) -> Figure:
    plt = _plt()
    be = sweep.break_even
    n = max(1, len(be))
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    c = sweep.costs
    for ax, pair in zip(axes.flat, be.itertuples(), strict=False):
        for plat, arm, style in ((pair.sse_platform, "sse", "-"), (pair.ws_platform, "ws", "--")):
            d = c[(c["platform"] == plat) & (c["arm"] == arm)].sort_values(x)
            ax.plot(d[x], d["monthly_usd"], style, marker="o", ms=3, label=f"{arm}: {plat}")
        if np.isfinite(pair.break_even):
            ax.axvline(pair.break_even, color="k", lw=0.8, ls=":")
            ax.annotate(f"break-even {pair.break_even:,.0f}", (pair.break_even, 0),
                        xycoords=("data", "axes fraction"), fontsize=7, rotation=90,
                        va="bottom")  # fmt: skip
        if logx:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_title(pair.pair, fontsize=8)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("USD / month", fontsize=8)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def plot_think_time_sweep(sweep: Sweep) -> Figure:
    """Cost vs think time (idle share of a WS session) per pairing, break-even marked."""
    return _plot_sweep(sweep, "think_time_s", "think time between turns (s)", logx=False)


def plot_mau_sweep(sweep: Sweep) -> Figure:
    """Cost vs monthly active users per pairing (log-log)."""
    return _plot_sweep(sweep, "monthly_active_users", "monthly active users", logx=True)
