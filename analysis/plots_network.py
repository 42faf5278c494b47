"""Figures of the bad-network section: recovery per profile (claim C9) and the RTT sweep."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.plots import _new, arm_color, arm_order, not_measured

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_recovery", "plot_rtt"]


def _grouped_bars(
    ax: Axes, df: pd.DataFrame, x: str, value: str, xs_order: Sequence[str], fmt: str
) -> None:
    """Bars of `value` per `x` category (in `xs_order`), one colour per arm."""
    arms = arm_order(df["arm"])
    width = 0.8 / max(1, len(arms))
    for i, arm in enumerate(arms):
        sub = df[df["arm"].astype(object) == arm].set_index(x)
        ys = np.array([float(sub[value].get(c, np.nan)) for c in xs_order], dtype=float)
        pos = np.arange(len(xs_order)) + (i - (len(arms) - 1) / 2) * width
        bars = ax.bar(pos, np.nan_to_num(ys), width * 0.95, color=arm_color(arm, arms), label=arm)
        for b, y in zip(bars, ys, strict=True):
            text = "n/a" if not np.isfinite(y) else fmt.format(y)
            ax.annotate(
                text,
                (b.get_x() + b.get_width() / 2, 0 if not np.isfinite(y) else y),
                ha="center",
                va="bottom",
                fontsize=7,
            )
    ax.set_xticks(range(len(xs_order)), list(xs_order), fontsize=8)


def plot_recovery(df: pd.DataFrame | None, label: str) -> Figure:
    """C9 on one network profile: per recovery behaviour (x) and arm (colour), the share of
    fault-hit answers that completed, the fault → next token median, and the tokens the
    server generated for nobody per answer.

    `df`: behaviour, arm, hit_completed_pct, fault_to_token_p50_s, nobody_per_answer."""
    title = f"Recovery on '{label}': completed answers, outage, waste"
    cols = {"behaviour", "arm", "hit_completed_pct", "fault_to_token_p50_s", "nobody_per_answer"}
    if df is None or df.empty or not cols <= set(df):
        return not_measured(title, "(no fault hit a stream on this profile)")
    order = [b for b in ("resume", "restart", "lost") if b in set(df["behaviour"])]
    order += [b for b in pd.unique(df["behaviour"]) if b not in order]
    fig, axes = _new((10.5, 3.8), ncols=3)
    panels = (
        ("hit_completed_pct", "answers hit by a fault\nthat completed (%)", "{:.0f}"),
        ("fault_to_token_p50_s", "fault → next token,\nmedian (s)", "{:.1f}"),
        ("nobody_per_answer", "tokens generated for\nnobody per answer", "{:.1f}"),
    )
    for ax, (col, ylabel, fmt) in zip(axes, panels, strict=True):
        _grouped_bars(ax, df, "behaviour", col, order, fmt)
        ax.set_ylabel(ylabel, fontsize=8)
    axes[0].set_ylim(0, 115)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    return fig


def plot_rtt(df: pd.DataFrame | None) -> Figure:
    """TTFT median per added RTT (x) and arm, first turn of a session vs later turns.

    `df`: label (x, in order), arm, ttft_first_p50, ttft_later_p50 (ms)."""
    title = "Added round-trip time: TTFT of a session's first turn and of later turns"
    cols = {"label", "arm", "ttft_first_p50", "ttft_later_p50"}
    if df is None or df.empty or not cols <= set(df):
        return not_measured(title, "(no latency-only network profile in this run)")
    order = list(pd.unique(df["label"]))
    fig, axes = _new((9.0, 3.8), ncols=2)
    for ax, col, name in zip(
        axes, ("ttft_first_p50", "ttft_later_p50"), ("first turn", "later turns"), strict=True
    ):
        _grouped_bars(ax, df, "label", col, order, "{:.0f}")
        ax.set_ylabel(f"TTFT p50, {name} (ms)", fontsize=8)
        ax.set_title(name, fontsize=9)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    return fig
