"""Cost charts: each function takes the cost tables and returns a Figure.

matplotlib is imported lazily so that the cost model itself does not need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis.cost import ARTICLE_RATIO, Sweep
from analysis.cost_c2 import CLOSE_FROM, CLOSE_TO, EQUAL_UP_TO, REVERSED_BELOW

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


def _ratio_axis(ax: Any, values: Any) -> None:
    """Log x axis for WS/SSE ratios: plain "2×" tick labels, room for 1× and the article's
    ratio and for the labels right of the bars."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    vals = [float(v) for v in np.asarray(values, float).ravel() if np.isfinite(v) and v > 0]
    lo = min([*vals, 1.0]) / 1.6
    hi = max([*vals, ARTICLE_RATIO]) * 3.0
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _bands(ax: Any) -> None:
    """Shade the C2 bands (about equal, close to 6×) and mark 1× and the article's ratio."""
    ax.axvspan(REVERSED_BELOW, EQUAL_UP_TO, color="0.85", zorder=0, label="about equal")
    ax.axvspan(CLOSE_FROM, CLOSE_TO, color="#f3d9b1", zorder=0, label="close to 6×")
    ax.axvline(ARTICLE_RATIO, color="k", ls="--", lw=1, label=f"article: {ARTICLE_RATIO:.2f}×")
    ax.axvline(1.0, color="grey", lw=0.8)


def plot_ratio(ratios: pd.DataFrame, *, title: str = "WS / SSE monthly cost") -> Figure:
    """WS/SSE cost ratio per pairing (log scale) over the C2 bands, the article's 6× marked;
    connection-priced pairings (the ones C2 is about) in orange."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(ratios) + 1.8))
    vals = ratios["ws_over_sse"].to_numpy(float)
    priced = ratios.get("connection_priced", pd.Series([True] * len(ratios))).to_numpy(bool)
    colors = ["#D55E00" if p else "#0072B2" for p in priced]
    ax.barh(ratios["pair"], vals, color=colors)
    _bands(ax)
    _ratio_axis(ax, vals)
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
            ax.annotate(
                f"break-even {pair.break_even:,.0f}",
                (pair.break_even, 0),
                xycoords=("data", "axes fraction"),
                fontsize=7,
                rotation=90,
                va="bottom",
            )
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


def _setting(v: Any) -> str:
    return f"{v:,.6g}" if isinstance(v, int | float) else str(v)


def plot_tornado(tornado: pd.DataFrame, *, title: str = "What moves the WS/SSE ratio") -> Figure:
    """One panel per pairing: a bar per input from the ratio at its low setting to the
    ratio at its high setting (log scale), the profile's ratio and the article's 6× marked."""
    plt = _plt()
    pairs_ = list(dict.fromkeys(tornado["pair"]))
    cols = min(3, max(1, len(pairs_)))
    rows = int(np.ceil(len(pairs_) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 2.6 * rows + 0.6), squeeze=False)
    for ax, pair in zip(axes.flat, pairs_, strict=False):
        d = tornado[tornado["pair"] == pair].sort_values("swing")
        lo = d["ratio_low"].to_numpy(float)
        hi = d["ratio_high"].to_numpy(float)
        left, right = np.minimum(lo, hi), np.maximum(lo, hi)
        y = np.arange(len(d))
        ax.barh(y, right - left, left=left, color="#56B4E9", height=0.6)
        for yi, (l_v, h_v, r_lo, r_hi) in enumerate(zip(d["low"], d["high"], lo, hi, strict=True)):
            up = r_hi >= r_lo
            ax.text(
                r_lo, yi, f"{_setting(l_v)} ", ha="right" if up else "left", va="center", fontsize=6
            )
            ax.text(
                r_hi, yi, f" {_setting(h_v)}", ha="left" if up else "right", va="center", fontsize=6
            )
        ax.set_yticks(y, d["knob"], fontsize=7)
        ax.axvline(float(d["ratio_base"].iloc[0]), color="k", lw=1)
        ax.axvline(ARTICLE_RATIO, color="k", ls="--", lw=0.8)
        ax.axvline(1.0, color="grey", lw=0.6)
        _ratio_axis(ax, np.concatenate([lo, hi]))
        ax.set_title(pair, fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    for ax in list(axes.flat)[len(pairs_) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    fig.supxlabel("WS cost ÷ SSE cost (log)", fontsize=8)
    fig.tight_layout()
    return fig


def plot_c2_vs_article(c2: pd.DataFrame, *, title: str = "C2: ours vs the article") -> Figure:
    """Per pairing, our SSE and WS $/month (log) next to the article's $680 and $4,100."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(c2) + 2.0))
    y = np.arange(len(c2))
    ax.scatter(c2["sse_usd"], y, marker="o", color="#0072B2", label="SSE (ours)", zorder=3)
    ax.scatter(c2["ws_usd"], y, marker="s", color="#D55E00", label="WS (ours)", zorder=3)
    for yi, (s, w, b) in enumerate(zip(c2["sse_usd"], c2["ws_usd"], c2["band"], strict=True)):
        ax.plot([s, w], [yi, yi], color="0.6", lw=1, zorder=2)
        ax.text(max(s, w), yi, f"  {w / s:.2f}× ({b})" if s > 0 else "", va="center", fontsize=7)
    ax.axvline(c2["article_sse_usd"].iloc[0], color="#0072B2", ls=":", lw=1, label="article SSE")
    ax.axvline(c2["article_ws_usd"].iloc[0], color="#D55E00", ls=":", lw=1, label="article WS")
    ax.set_yticks(y, c2["pair"], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("USD per month (log)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_bootstrap(boot: pd.DataFrame, *, title: str = "") -> Figure:
    """P10–P90 of the WS/SSE ratio per pairing (bar) with its median (dot)."""
    plt = _plt()
    d = boot[boot["quantity"] == "WS/SSE"]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(d) + 1.8))
    y = np.arange(len(d))
    ax.hlines(y, d["p10"], d["p90"], color="#009E73", lw=6, alpha=0.6, label="P10–P90")
    ax.scatter(d["p50"], y, color="k", zorder=3, s=12, label="P50")
    _bands(ax)
    ax.set_yticks(y, d["pair"], fontsize=7)
    ax.invert_yaxis()
    _ratio_axis(ax, d[["p10", "p90"]].to_numpy())
    ax.set_xlabel("WS cost ÷ SSE cost")
    n = boot.attrs.get("n_boot", "")
    ax.set_title(title or f"WS/SSE ratio over {n} bootstrap resamples of the calibration")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
