"""The cost section: this run's measured usage per arm calibrates the cost model
(analysis.cost_run.cost_inputs, also what `ssevsws cost` and the cost explorer use), which
scales it to a usage profile's month on every priced platform."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from analysis import cost as K
from analysis import plots as P
from analysis.capacity import capacity_markdown
from analysis.cost_run import CostInputs, cost_inputs
from analysis.sections.base import Fig, Section, Table, Text
from analysis.tables import fmt, md_table

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from analysis.report_data import Report

__all__ = [
    "COST",
    "MAUS",
    "THINK_TIMES_S",
    "CostInputs",
    "cost_inputs",
    "cost_table_markdown",
    "ratio_markdown",
    "report_cost_inputs",
    "usage_markdown",
    "usd",
]

THINK_TIMES_S = (0.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0)
MAUS = (1_000.0, 3_000.0, 10_000.0, 30_000.0, 100_000.0, 300_000.0, 1_000_000.0)


def report_cost_inputs(rep: Report) -> CostInputs:
    """The report's cost inputs (computed once per report)."""
    return rep.cached(
        "cost",
        lambda: cost_inputs(
            rep.data, rep.summary, profile=rep.profile_name, platforms=rep.platforms
        ),
    )


_USAGE_ROWS: tuple[tuple[str, str, str], ...] = (
    ("sessions", "sessions", "{:,.0f}"),
    ("streams", "streams", "{:,.0f}"),
    ("tokens delivered", "tokens_delivered", "{:,.0f}"),
    ("HTTP requests", "http_requests", "{:,.0f}"),
    ("SSE events", "sse_events", "{:,.0f}"),
    ("WS messages out", "ws_messages_out", "{:,.0f}"),
    ("WS messages in", "ws_messages_in", "{:,.0f}"),
    ("connections opened", "connections_opened", "{:,.0f}"),
    ("connection-minutes", "connection_minutes_total", "{:,.2f}"),
    ("  of which idle", "connection_minutes_idle", "{:,.2f}"),
    ("peak concurrent connections", "peak_concurrent_connections", "{:,.0f}"),
    ("bytes out", "bytes_out", "{:,.0f}"),
    ("bytes in", "bytes_in", "{:,.0f}"),
    ("server CPU-seconds", "server_cpu_seconds", "{:,.3f}"),
)


def usage_markdown(ci: CostInputs) -> str:
    """Measured usage per arm (the run) and the calibration it gives the cost model."""
    arms = list(ci.measured)
    rows = [[lbl] + [fmt(getattr(ci.measured[a], k), f) for a in arms] for lbl, k, f in _USAGE_ROWS]
    cal_rows = []
    for lbl, key, f in (
        ("bytes per message besides token text", "message_overhead_bytes", "{:.1f}"),
        ("bytes in / stream", "bytes_in_per_stream", "{:.0f}"),
        ("messages / token in the run (not applied)", "messages_per_token", "{:.3f}"),
        ("server CPU-s / 1k tokens", "cpu_s_per_1k_tokens", "{:.4f}"),
        ("KiB / connection (idle fit, else RSS slope)", "kib_per_connection", "{:.1f}"),
        ("share of a cancelled answer delivered", "cancel_at_fraction", "{:.2f}"),
    ):
        cal_rows.append([lbl] + [fmt(getattr(ci.calibrations[a], key), f) for a in arms])
    return "\n".join(
        [
            f"Measured in scenario `{ci.scenario}` of this run (per arm):",
            "",
            md_table(["usage", *arms], rows),
            "",
            "Calibration fed to the cost model (n/m → the model's default; the profile, not "
            'the run, decides tokens per frame; docs/methodology.md, "Cost model"):',
            "",
            md_table(["per unit", *arms], cal_rows),
        ]
    )


def cost_table_markdown(ci: CostInputs) -> str:
    rows = [
        [
            r.platform,
            r.arm,
            f"${r.monthly_usd:,.2f}",
            fmt(r.usd_per_1m_sessions, "${:,.2f}"),
            fmt(r.usd_per_connection_hour, "${:,.5f}"),
            r.dominant,
            r.drivers,
        ]
        for r in ci.table.itertuples()
    ]
    head = [
        "platform",
        "arm",
        "$/month",
        "$ per 1M sessions",
        "$ per connection-hour",
        "largest line",
        "what drives each line",
    ]
    return md_table(head, rows)


def usd(v: Any) -> str:
    """``$1,234.50`` / ``−$0.36`` (sign before the currency); n/m when not a number."""
    if not isinstance(v, int | float) or not np.isfinite(v):
        return "n/m"
    return f"{'−' if v < -0.005 else ''}${abs(v):,.2f}"


def ratio_markdown(ci: CostInputs) -> str:
    rows = [
        [
            r.pair,
            f"${r.sse_usd:,.2f}",
            f"${r.ws_usd:,.2f}",
            fmt(r.ws_over_sse, "{:.2f}×"),
            r.driver or "—",
            usd(r.driver_gap_usd),
            r.verdict,
        ]
        for r in ci.ratios.itertuples()
    ]
    head = [
        "platform (pairing)",
        "SSE $/month",
        "WS $/month",
        "WS/SSE",
        "driving dimension",
        "WS − SSE on it",
        "C2 band vs the article's 6×",
    ]
    return md_table(head, rows)


def _profile_text(rep: Report) -> str:
    ci = report_cost_inputs(rep)
    p = ci.profile
    lines = [
        f"Profile `{p.name}`: {p.monthly_active_users:,.0f} monthly active users × "
        f"{p.sessions_per_user_per_month:g} sessions × {p.turns_per_session:g} turns, "
        f"{p.tokens_per_answer:,.0f} tokens per answer, think time {p.think_time_s:g} s, "
        f"tab open {p.tab_open_s:g} s. Prices: `analysis/pricing/*.toml` (each file names "
        "its source and the date it was read). Usage per token and per stream is measured in "
        "this run; the profile scales it to a month.",
    ]
    if not ci.measured or ci.table.empty:
        lines += [
            "",
            "Not measured in this run: the cost model needs measured usage of an SSE "
            "and/or a WS arm (streams with tokens).",
        ]
    return "\n".join(lines)


def _measured(rep: Report) -> CostInputs | None:
    ci = report_cost_inputs(rep)
    return ci if ci.measured and not ci.table.empty else None


def _usage_tables(rep: Report) -> str | None:
    ci = _measured(rep)
    if ci is None:
        return None
    return "\n".join(
        [
            usage_markdown(ci),
            "",
            capacity_markdown(rep.summary.capacity),
            "",
            "### Monthly cost per platform and arm",
            "",
            cost_table_markdown(ci),
            *(  # prices older than 90 days or not verified on the provider's page
                ["", "Price warnings:", "", *(f"- {w}" for w in ci.warnings)] if ci.warnings else []
            ),
        ]
    )


def _not_measured_fig(title: str) -> Figure:
    return P.not_measured(title, "(no measured usage for the cost model)")


def _monthly(rep: Report) -> Figure | None:
    from analysis import cost_plots

    ci = _measured(rep)
    if ci is None:
        return None
    return cost_plots.plot_monthly_cost(ci.table)


def _ratio_table(rep: Report) -> str | None:
    ci = _measured(rep)
    if ci is None:
        return None
    if ci.ratios.empty:
        return "### SSE vs WS cost per platform\n\nNot measured in this run (needs both arms)."
    return (
        "### SSE vs WS cost per platform\n\n"
        + ratio_markdown(ci)
        + "\n\nThe driving dimension is the billed line with the largest WS − SSE gap."
    )


def _ratio_fig(rep: Report) -> Figure | None:
    from analysis import cost_plots

    ci = _measured(rep)
    if ci is None:
        return None
    if ci.ratios.empty:
        return _not_measured_fig("WS / SSE monthly cost")
    return cost_plots.plot_ratio(ci.ratios)


def _think_sweep(rep: Report) -> Any:
    ci = report_cost_inputs(rep)
    return rep.cached(
        "cost:think",
        lambda: K.think_time_sweep(
            ci.profile, THINK_TIMES_S, ci.platforms, calibrations=ci.calibrations
        ),
    )


def _think_fig(rep: Report) -> Figure | None:
    from analysis import cost_plots

    ci = _measured(rep)
    if ci is None:
        return None
    if len(ci.calibrations) < 2:
        return _not_measured_fig("Cost vs think time")
    return cost_plots.plot_think_time_sweep(_think_sweep(rep))


def _break_even(rep: Report) -> str | None:
    ci = _measured(rep)
    if ci is None or len(ci.calibrations) < 2:
        return None
    rows = [
        [
            r.pair,
            fmt(r.break_even, "{:,.0f} s") if np.isfinite(r.break_even) else "none in range",
            r.cheaper_below,
            r.cheaper_above,
        ]
        for r in _think_sweep(rep).break_even.itertuples()
    ]
    return f"Break-even think time (swept {THINK_TIMES_S[0]:g}–{THINK_TIMES_S[-1]:g} s):\n\n" + (
        md_table(["pairing", "break-even", "cheaper below", "cheaper above"], rows)
    )


def _mau_fig(rep: Report) -> Figure | None:
    from analysis import cost_plots

    ci = _measured(rep)
    if ci is None:
        return None
    if len(ci.calibrations) < 2:
        return _not_measured_fig("Cost vs monthly active users")
    sw = K.mau_sweep(ci.profile, MAUS, ci.platforms, calibrations=ci.calibrations)
    return cost_plots.plot_mau_sweep(sw)


def _cost_headline(rep: Report) -> str | None:
    ci = _measured(rep)
    if ci is None or ci.ratios.empty:
        return None
    r = ci.ratios["ws_over_sse"].astype(float)
    return f"WS/SSE monthly cost over {len(r)} platform pairings: {r.min():.1f}× to {r.max():.1f}×."


COST = Section(
    "cost",
    "Cost",
    lambda rep: rep.main is not None,
    "measured usage of an SSE and/or a WS arm in the headline scenario (streams with tokens)",
    (
        Text(_profile_text),
        Table("cost", _usage_tables),
        Fig("cost_monthly", _monthly),
        Table("cost_ratios", _ratio_table),
        Fig("cost_ratio", _ratio_fig),
        Fig("cost_think_time", _think_fig),
        Table("break_even", _break_even),
        Fig("cost_mau", _mau_fig),
    ),
    headline=_cost_headline,
)
