"""Report figures: each function takes analysis frames and returns a matplotlib Figure.

One style everywhere: arm colours are fixed (core.arms; other labels get greys in a
stable order), CDFs are drawn from 1,001 quantiles (exact shape, cheap for millions of
points) with the sample count in the legend, and every function given no data returns a
figure that says "not measured in this run" instead of raising.

Inputs are the frames of analysis.metrics / analysis.resources:

=============================  =====================================================
`plot_ttft_cdf`, `plot_e2e`    `metrics.stream_metrics` (ttft_ms, e2e_ms, arm)
`plot_itl_cdf`                 `metrics.token_gaps` (itl_ms, arm)
`plot_delivery_cdf`            `metrics.delivery_latency` (delivery_ms, arm)
`plot_ramp`                    `metrics.ramp`
`plot_server_cpu`              `resources.server_cpu`
`plot_memory_per_connection`   `resources.rss_per_connection`
`plot_bytes_per_token`         `metrics.bytes_per_token`
`plot_connection_time`         `metrics.connection_time`
`plot_outcomes`                `metrics.outcome_counts` or a streams frame
=============================  =====================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis.metrics import OUTCOMES, outcome_counts
from analysis.stats import finite
from core.arms import all_arms, is_known, sort_arms

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Fixed arm colours (Okabe-Ito, colour-blind safe), from the arm registry.
ARM_COLORS: dict[str, str] = {a.name: a.color for a in all_arms()}
_OTHER_COLORS = ("#555555", "#999999", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
NOT_MEASURED = "not measured in this run"
FIGSIZE = (7.0, 4.2)
OUTCOME_COLORS = {
    "ok": "#009E73",
    "cancelled": "#56B4E9",
    "aborted": "#E69F00",
    "dropped": "#D55E00",
    "error": "#CC0000",
    "timeout": "#CC79A7",
    "stopped": "#999999",
}


def _new(figsize: tuple[float, float] = FIGSIZE, ncols: int = 1) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    # Figure() directly (not pyplot): no global state, nothing to close, thread-safe.
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.grid(True, alpha=0.3, linewidth=0.6)
        ax.spines[["top", "right"]].set_visible(False)
    return fig, (axes[0] if ncols == 1 else axes)


def arm_color(arm: str, arms: Sequence[str] = ()) -> str:
    """The arm's fixed colour; unknown labels get a grey/extra colour by their rank."""
    if is_known(arm):
        return ARM_COLORS[arm]
    others = sorted(a for a in {*arms, arm} if not is_known(a))
    return _OTHER_COLORS[others.index(arm) % len(_OTHER_COLORS)]


def arm_order(arms: Any) -> list[str]:
    arms = [str(a) for a in pd.unique(pd.Series(list(arms), dtype=object).dropna())]
    return sort_arms(arms)


def not_measured(title: str, detail: str = "") -> Figure:
    """A placeholder figure: the title and "not measured in this run"."""
    fig, ax = _new((FIGSIZE[0], 2.0))
    ax.set_axis_off()
    ax.set_title(title)
    msg = NOT_MEASURED + (f"\n{detail}" if detail else "")
    ax.text(
        0.5,
        0.5,
        msg,
        ha="center",
        va="center",
        fontsize=12,
        color="#555555",
        transform=ax.transAxes,
    )
    return fig


def _empty(df: pd.DataFrame | None, *columns: str) -> bool:
    if df is None or len(df) == 0 or any(c not in df for c in columns):
        return True
    return all(finite(df[c]).size == 0 for c in columns if c not in ("arm",))


def _values_by_arm(df: pd.DataFrame, column: str) -> dict[str, np.ndarray]:
    out = {}
    arms = df["arm"].astype(object)
    for arm in arm_order(arms):
        v = finite(df.loc[(arms == arm).to_numpy(dtype=bool), column])
        if v.size:
            out[arm] = v
    return out


def _cdf(
    df: pd.DataFrame | None,
    column: str,
    title: str,
    xlabel: str,
    *,
    logx: bool = False,
    marks: Sequence[float] = (50, 90, 99),
) -> Figure:
    if _empty(df, column, "arm"):
        return not_measured(title)
    assert df is not None
    fig, ax = _new()
    groups = _values_by_arm(df, column)
    qs = np.linspace(0.0, 1.0, 1001)
    for arm, v in groups.items():
        x = np.quantile(v, qs)
        color = arm_color(arm, list(groups))
        ax.step(x, qs, where="post", color=color, lw=1.6, label=f"{arm} (n={v.size:,})")
        for m in marks:
            ax.plot(np.percentile(v, m), m / 100, "o", color=color, ms=3.5)
    for m in marks:
        ax.axhline(m / 100, color="#bbbbbb", lw=0.6, ls=":")
    if logx and all((v > 0).all() for v in groups.values()):
        ax.set_xscale("log")
    ax.set_ylim(0, 1.01)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of samples ≤ x")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def plot_ttft_cdf(streams: pd.DataFrame | None, *, logx: bool = False) -> Figure:
    """CDF of time to first token per arm (dots at p50, p90, p99)."""
    return _cdf(streams, "ttft_ms", "Time to first token", "TTFT (ms)", logx=logx)


def plot_itl_cdf(gaps: pd.DataFrame | None, *, logx: bool = True) -> Figure:
    """CDF of every inter-token gap per arm (log x: tails matter)."""
    return _cdf(gaps, "itl_ms", "Inter-token latency (every gap)", "ITL (ms)", logx=logx)


def plot_delivery_cdf(delivery: pd.DataFrame | None, *, logx: bool = True) -> Figure:
    """CDF of per-token delivery latency (client receive − server stamp) per arm."""
    return _cdf(
        delivery,
        "delivery_ms",
        "Delivery latency per token (server stamp → client parse)",
        "delivery latency (ms)",
        logx=logx,
    )


def plot_e2e(streams: pd.DataFrame | None) -> Figure:
    """E2E latency distribution per arm: box (p25–p75), whiskers p1–p99, median marked."""
    title = "End-to-end latency per stream"
    if _empty(streams, "e2e_ms", "arm"):
        return not_measured(title)
    assert streams is not None
    groups = _values_by_arm(streams, "e2e_ms")
    fig, ax = _new()
    arms = list(groups)
    bp = ax.boxplot(
        [groups[a] for a in arms],
        whis=(1, 99),
        showfliers=False,
        patch_artist=True,
        widths=0.5,
        medianprops={"color": "black"},
    )
    ax.set_xticks(range(1, len(arms) + 1), [f"{a}\n(n={groups[a].size:,})" for a in arms])
    for patch, arm in zip(bp["boxes"], arms, strict=True):
        patch.set_facecolor(arm_color(arm, arms))
        patch.set_alpha(0.75)
    ax.set_ylabel("E2E (ms)")
    ax.set_title(title + " (box p25–p75, whiskers p1–p99)")
    return fig


def plot_ramp(ramp: pd.DataFrame | None, *, x: str | None = None) -> Figure:
    """Throughput (tokens/s) and SLO attainment vs concurrency, one line per arm.

    x defaults to ``users_target`` when recorded, else ``mean_in_flight`` (measured).
    Steps at the same level (repetitions, ramp up and down) are averaged.
    """
    title = "Throughput and SLO attainment vs concurrency"
    if _empty(ramp, "tokens_per_s", "arm"):
        return not_measured(title)
    assert ramp is not None
    if x is None:
        x = "users_target" if finite(ramp["users_target"]).size else "mean_in_flight"
    df = ramp[np.isfinite(ramp[x].to_numpy(dtype=np.float64, na_value=np.nan))]
    if df.empty:
        return not_measured(title)
    fig, (ax1, ax2) = _new((FIGSIZE[0] * 1.6, FIGSIZE[1]), ncols=2)
    arms = arm_order(df["arm"])
    for arm in arms:
        d = df[df["arm"].astype(object) == arm]
        g = d.groupby(x)[["tokens_per_s", "slo_attainment"]].mean().sort_index()
        c = arm_color(arm, arms)
        ax1.plot(g.index, g["tokens_per_s"], "o-", color=c, label=arm, ms=4)
        ax2.plot(g.index, 100 * g["slo_attainment"], "o-", color=c, label=arm, ms=4)
    xl = "target users" if x == "users_target" else "streams in flight (measured mean)"
    ax1.set_xlabel(xl)
    ax1.set_ylabel("tokens delivered / s")
    ax1.set_title("Throughput")
    ax2.set_xlabel(xl)
    ax2.set_ylabel("streams meeting SLO (%)")
    ax2.set_ylim(-2, 102)
    ax2.set_title("SLO attainment")
    ax1.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def _bar(
    df: pd.DataFrame | None,
    column: str,
    title: str,
    ylabel: str,
    *,
    scale: float = 1.0,
    fmt: str = "{:.3g}",
) -> Figure:
    """One bar per arm (median over rows of that arm, e.g. over phases); dots = each row."""
    if _empty(df, column, "arm"):
        return not_measured(title)
    assert df is not None
    groups = _values_by_arm(df, column)
    if not groups:
        return not_measured(title)
    fig, ax = _new()
    arms = list(groups)
    heights = [float(np.median(groups[a])) * scale for a in arms]
    bars = ax.bar(arms, heights, color=[arm_color(a, arms) for a in arms], alpha=0.85, width=0.55)
    for i, a in enumerate(arms):
        if groups[a].size > 1:
            ax.plot([i] * groups[a].size, groups[a] * scale, "k.", ms=4, alpha=0.6)
    for b, h in zip(bars, heights, strict=True):
        ax.annotate(
            fmt.format(h),
            (b.get_x() + b.get_width() / 2, h),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return fig


def plot_server_cpu(cpu: pd.DataFrame | None) -> Figure:
    """Server CPU-seconds per 1,000 tokens per arm (bar = median over phases, dots = phases)."""
    return _bar(
        cpu, "cpu_s_per_1k_tokens", "Server CPU per 1,000 tokens", "CPU-seconds / 1k tokens"
    )


def plot_memory_per_connection(rss: pd.DataFrame | None) -> Figure:
    """Server RSS per open connection (slope), KiB, per arm."""
    return _bar(
        rss,
        "kib_per_conn",
        "Server memory per open connection (RSS slope)",
        "KiB / connection",
        fmt="{:.1f}",
    )


def plot_bytes_per_token(bt: pd.DataFrame | None) -> Figure:
    """Application bytes per token per arm: token event, everything parsed, per connection."""
    title = "Application bytes per token"
    cols = [
        ("event_bytes_per_token", "token event"),
        ("app_bytes_per_token", "all stream bytes"),
        ("conn_bytes_per_token", "incl. HTTP/upgrade"),
    ]
    if bt is None or bt.empty or "arm" not in bt:
        return not_measured(title)
    present = [(c, lbl) for c, lbl in cols if c in bt and finite(bt[c]).size]
    if not present:
        return not_measured(title)
    arms = arm_order(bt["arm"])
    fig, ax = _new()
    width = 0.8 / len(present)
    alphas = (1.0, 0.7, 0.4)
    top = 0.0
    for j, (c, _) in enumerate(present):
        for i, arm in enumerate(arms):
            v = finite(bt.loc[bt["arm"].astype(object) == arm, c])
            h = float(np.median(v)) if v.size else 0.0
            top = max(top, h)
            xpos = i + (j - (len(present) - 1) / 2) * width
            ax.bar(
                xpos,
                h,
                width * 0.95,
                color=arm_color(arm, arms),
                alpha=alphas[j % 3],
                edgecolor="black",
                linewidth=0.4,
            )
            if v.size:
                ax.annotate(f"{h:.1f}", (xpos, h), ha="center", va="bottom", fontsize=7)
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor="#777777", alpha=alphas[j % 3], edgecolor="black", label=lbl)
        for j, (_, lbl) in enumerate(present)
    ]
    ax.set_ylim(0, top * 1.3 if top > 0 else 1)
    ax.set_xticks(range(len(arms)), arms)
    ax.set_ylabel("bytes / token")
    ax.set_title(title)
    ax.legend(handles=handles, fontsize=8, loc="upper center", ncol=len(handles))
    return fig


def plot_connection_time(ct: pd.DataFrame | None) -> Figure:
    """Connection-seconds held per session, stacked busy (stream in flight) + idle, with
    the idle share written on each bar."""
    title = "Connection-seconds per session (busy + idle)"
    if _empty(ct, "held_s", "arm"):
        return not_measured(title)
    assert ct is not None
    arms = arm_order(ct["arm"])
    fig, ax = _new()
    per_session = "sessions" in ct and finite(ct["sessions"]).size > 0
    for i, arm in enumerate(arms):
        d = ct[ct["arm"].astype(object) == arm]
        held = float(finite(d["held_s"]).sum())
        idle = float(finite(d["idle_s"]).sum())
        busy = held - idle
        div = float(finite(d["sessions"]).sum()) if per_session else 1.0
        div = div if div > 0 else 1.0
        c = arm_color(arm, arms)
        ax.bar(i, busy / div, 0.55, color=c, label="busy (stream in flight)" if i == 0 else None)
        ax.bar(
            i,
            idle / div,
            0.55,
            bottom=busy / div,
            color=c,
            alpha=0.35,
            hatch="//",
            label="idle (held, no stream)" if i == 0 else None,
        )
        share = idle / held if held > 0 else float("nan")
        ax.annotate(f"idle {share:.0%}", (i, held / div), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(arms)), arms)
    ax.set_ylabel("connection-seconds / session" if per_session else "connection-seconds")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def plot_outcomes(data: pd.DataFrame | None, *, title: str = "Stream outcomes") -> Figure:
    """Outcome counts per arm (grouped bars), from `metrics.outcome_counts` or a streams
    frame (e.g. only the reconnect or cancel scenario's streams)."""
    if data is None or data.empty or "arm" not in data:
        return not_measured(title)
    oc = outcome_counts(data, "arm") if "outcome" in data else data
    outcomes = [
        o
        for o in [*OUTCOMES, *(c for c in oc.columns if c not in OUTCOMES and c != "arm")]
        if o in oc and oc[o].sum() > 0
    ]
    if not outcomes:
        return not_measured(title)
    arms = arm_order(oc["arm"])
    fig, ax = _new()
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        row = oc[oc["arm"].astype(object) == arm][outcomes].sum()
        xs = np.arange(len(outcomes)) + (i - (len(arms) - 1) / 2) * width
        bars = ax.bar(xs, row.to_numpy(float), width * 0.95, color=arm_color(arm, arms), label=arm)
        for b, v in zip(bars, row.to_numpy(), strict=True):
            ax.annotate(
                f"{int(v)}",
                (b.get_x() + b.get_width() / 2, v),
                ha="center",
                va="bottom",
                fontsize=7,
            )
    ax.set_xticks(range(len(outcomes)), outcomes)
    ax.set_ylabel("streams")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def style_axes(ax: Axes) -> None:
    """Apply the report style to an axes made elsewhere (e.g. in a notebook)."""
    ax.grid(True, alpha=0.3, linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)


def plot_proxy_latency(df: pd.DataFrame | None) -> Figure:
    """C3: TTFT (log y) and E2E medians per proxy variant and arm (two panels).

    `df` has columns variant, arm, ttft_p50, e2e_p50 (ms), in display order; the first
    variant is the baseline (``direct``) and gets a dashed line per arm.
    """
    title = "Through nginx: TTFT and E2E per proxy variant"
    if df is None or df.empty or not {"variant", "arm", "ttft_p50", "e2e_p50"} <= set(df):
        return not_measured(title, "(no proxy-buffering scenario in this run)")
    variants = list(pd.unique(df["variant"].astype(object)))
    arms = arm_order(df["arm"])
    fig, axes = _new((9.0, 4.2), ncols=2)
    width = 0.8 / max(1, len(arms))
    for ax, col, label in zip(axes, ("ttft_p50", "e2e_p50"), ("TTFT p50", "E2E p50"), strict=True):
        for i, arm in enumerate(arms):
            sub = df[df["arm"].astype(object) == arm].set_index("variant")
            ys = np.array([float(sub[col].get(v, np.nan)) for v in variants])
            xs = np.arange(len(variants)) + (i - (len(arms) - 1) / 2) * width
            bars = ax.bar(xs, ys, width * 0.95, color=arm_color(arm, arms), label=arm)
            for b, y in zip(bars, ys, strict=True):
                if np.isfinite(y):
                    ax.annotate(
                        f"{y:.0f}",
                        (b.get_x() + b.get_width() / 2, y),
                        ha="center",
                        va="bottom",
                        fontsize=7,
                    )
        if col == "ttft_p50":  # TTFT spans decades (buffered vs direct); E2E barely moves
            ax.set_yscale("log")
        ax.set_xticks(range(len(variants)), variants, rotation=15, fontsize=8)
        ax.set_ylabel(f"{label} (ms{', log' if col == 'ttft_p50' else ''})")
        ax.set_title(label)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    return fig


def plot_proxy_idle(df: pd.DataFrame | None) -> Figure:
    """C4: streams that survived vs were cut, per idle variant and arm (stacked bars).

    `df` has columns variant, arm, survived, cut (counts) and optionally label (x tick).
    """
    title = "Idle gap through nginx: streams survived / cut"
    if df is None or df.empty or not {"variant", "arm", "survived", "cut"} <= set(df):
        return not_measured(title, "(no proxy-idle scenario in this run)")
    fig, ax = _new()
    labels = [f"{v}\n{a}" for v, a in zip(df["variant"], df["arm"], strict=True)]
    xs = np.arange(len(df))
    ok = df["survived"].to_numpy(float)
    cut = df["cut"].to_numpy(float)
    ax.bar(xs, ok, 0.6, color=OUTCOME_COLORS["ok"], label="survived (ok)")
    ax.bar(xs, cut, 0.6, bottom=ok, color=OUTCOME_COLORS["dropped"], label="cut")
    for x, o, c in zip(xs, ok, cut, strict=True):
        ax.annotate(f"{int(o)} / {int(c)}", (x, o + c), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(xs, list(df.get("label", labels)), fontsize=8)
    ax.set_ylabel("streams")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def plot_chain_transport(turns: pd.DataFrame | None) -> Figure:
    """Agent chains (`chains.turn_frame`): the median transport share of each turn index,
    one line per arm and configuration (group): solid for the first group, dashed after."""
    title = "Agent chains: what the transport adds to each turn's first token"
    if _empty(turns, "transport_ms", "turn"):
        return not_measured(title)
    assert turns is not None
    ok = turns[turns["outcome"].astype(object) == "ok"]
    fig, ax = _new()
    groups = sorted(str(g) for g in pd.unique(ok["group"].astype(object).dropna()))
    arms = arm_order(ok["arm"])
    for gi, group in enumerate(groups):
        for arm in arms:
            rows = ok[(ok["group"].astype(object) == group) & (ok["arm"].astype(object) == arm)]
            med = rows.groupby("turn")["transport_ms"].median().dropna()
            if med.empty:
                continue
            label = f"{arm} · {group}" if len(groups) > 1 else arm
            style = "-" if gi == 0 else ("--", ":", "-.")[(gi - 1) % 3]
            ax.plot(med.index, med.to_numpy(), style, marker="o", ms=3, lw=1.4,
                    color=arm_color(arm, arms), label=label)  # fmt: skip
    ax.set_xlabel("turn of the chain (0 = the prompt; later turns follow a tool call)")
    ax.set_ylabel("first token − tool result − scheduled TTFT (ms, median)")
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return fig
