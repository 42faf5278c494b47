"""What `notebooks/cost.ipynb` calls: explore prices and usage profiles interactively.

Nothing is written to disk; tables and figures are shown in the notebook (and kept on the
:class:`Exploration` object's ``md`` list, so the same calls work from a script). Prices
come from ``analysis/pricing/*.toml`` and profiles from ``analysis/profiles/*.toml``:
editing a file and re-running changes every number without code changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import cost as K
from analysis import report as RP
from analysis.cost_run import CostInputs, cost_inputs, run_summary
from analysis.cost_sections import CostItem, c2_items, llm_item, prices_item, sensitivity_items
from analysis.load import load_run
from analysis.tables import fmt, md_table

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


@dataclass
class Exploration:
    """Cost tables for one profile; calibrated with a run when one is given."""

    inputs: CostInputs
    run: str | None
    out_dir: Path | None = None
    md: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)


def show_catalogue(platforms: Sequence[str] | None = None) -> pd.DataFrame:
    """The pricing files: platform, billing basis, what it serves, source, date read and
    how many of its prices were verified on the provider's page."""
    selected, _ = K.resolve_platforms(list(platforms) if platforms else None)
    rows = []
    for p in selected:
        prices = [v for v in p.provenance.values() if v.kind == "price"]
        rows.append(
            [
                p.platform,
                p.billing_basis,
                ", ".join(p.serves),
                p.backend or "—",
                str(min((v.read_on for v in prices), default=p.read_on)),
                f"{sum(v.verified for v in prices)}/{len(prices)}",
                p.source,
            ]
        )
    head = ["platform", "billing basis", "serves", "backend", "read on", "verified", "source"]
    RP.show_md("### Pricing catalogue\n\n" + RP.md_table(head, rows))
    return pd.DataFrame(rows, columns=head)


def show_profiles() -> pd.DataFrame:
    rows = []
    for name in K.list_profiles():
        p = K.load_profile(name)
        rows.append(
            [
                name,
                f"{p.monthly_active_users:,.0f}",
                p.sessions_per_user_per_month,
                p.turns_per_session,
                f"{p.tokens_per_answer:,.0f}",
                p.think_time_s,
                p.tab_open_s,
            ]
        )
    head = ["profile", "MAU", "sessions/user", "turns", "tokens/answer", "think s", "tab open s"]
    RP.show_md("### Usage profiles\n\n" + RP.md_table(head, rows))
    return pd.DataFrame(rows, columns=head)


def explore(
    run: str | Path | None,
    profile: str = RP.DEFAULT_PROFILE,
    platforms: Sequence[str] | None = None,
    *,
    free_tiers: bool = False,
    what_ifs: Sequence[str] = (),
) -> Exploration:
    """Cost inputs for ``profile`` (with ``what_ifs`` such as ``"think_s=30"``): calibrated
    with ``run``'s measured usage when given, else the model's defaults."""
    plats = list(platforms) if platforms else None
    if run is not None:
        folder = RP.resolve_run(run)
        data = load_run(folder)
        summary = run_summary(folder, data)
        ci = cost_inputs(
            data,
            summary,
            profile=profile,
            platforms=plats,
            free_tiers=free_tiers,
            what_ifs=what_ifs,
        )
        return Exploration(ci, str(run))
    ci = cost_inputs(
        None, {}, profile=profile, platforms=plats, free_tiers=free_tiers, what_ifs=what_ifs
    )
    usages = K.usages_from_profile(ci.profile)
    table = K.cost_table(usages, ci.platforms, ci.profile, free_tiers=free_tiers)
    ci.usages, ci.table, ci.ratios = usages, table, K.ratio_table(table, ci.platforms)
    return Exploration(ci, None)


def show_usage(ex: Exploration) -> None:
    if ex.inputs.measured:
        RP.emit(ex, usage_markdown(ex.inputs))
    else:
        RP.emit(ex, "No run given: the model's default wire/CPU figures are used.")
    rows = [
        [
            arm,
            f"{u.sessions:,.0f}",
            f"{u.connection_minutes_total:,.0f}",
            f"{u.idle_share:.1%}",
            f"{u.messages_out:,.0f}",
            f"{u.bytes_out / 1e9:,.2f}",
        ]
        for arm, u in ex.inputs.usages.items()
    ]
    RP.emit(
        ex,
        f"Monthly usage of profile `{ex.inputs.profile.name}`:\n\n"
        + RP.md_table(
            ["arm", "sessions", "connection-minutes", "idle share", "messages out", "GB out"], rows
        ),
    )


def show_costs(ex: Exploration) -> None:
    from analysis import cost_plots

    RP.emit(ex, "### Monthly cost per platform and arm\n\n" + cost_table_markdown(ex.inputs))
    RP.emit_figure(ex, "cost_monthly", cost_plots.plot_monthly_cost(ex.inputs.table))


def _break_even_md(be: pd.DataFrame, unit: str) -> str:
    rows = [
        [
            r.pair,
            f"{r.break_even:,.0f} {unit}" if np.isfinite(r.break_even) else "none in range",
            r.cheaper_below,
            r.cheaper_above,
        ]
        for r in be.itertuples()
    ]
    return RP.md_table(["pairing", "break-even", "cheaper below", "cheaper above"], rows)


def show_think_time(ex: Exploration, think_times_s: Sequence[float]) -> Any:
    from analysis import cost_plots

    ci = ex.inputs
    sw = K.think_time_sweep(ci.profile, think_times_s, ci.platforms, calibrations=ci.calibrations)
    RP.emit_figure(ex, "cost_think_time", cost_plots.plot_think_time_sweep(sw))
    RP.emit(ex, "Break-even think time:\n\n" + _break_even_md(sw.break_even, "s"))
    return sw


def show_mau(ex: Exploration, maus: Sequence[float]) -> Any:
    from analysis import cost_plots

    ci = ex.inputs
    sw = K.mau_sweep(ci.profile, maus, ci.platforms, calibrations=ci.calibrations)
    RP.emit_figure(ex, "cost_mau", cost_plots.plot_mau_sweep(sw))
    RP.emit(ex, "Break-even MAU:\n\n" + _break_even_md(sw.break_even, "MAU"))
    return sw


def _emit_items(ex: Exploration, items: Sequence[CostItem]) -> None:
    for it in items:
        if it.kind == "figure":
            RP.emit_figure(ex, it.name, it.value, it.caption)
        elif it.kind == "table":
            df = it.value
            RP.emit(
                ex,
                f"### {it.title}\n\n"
                + RP.md_table(
                    list(df.columns),
                    [[_cell(v) for v in row] for row in df.itertuples(index=False)],
                )
                + (f"\n\n{it.caption}" if it.caption else ""),
            )
        else:
            RP.emit(ex, str(it.value))


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return "n/m" if not np.isfinite(v) else f"{v:,.4g}"
    return str(v)


def show_prices(ex: Exploration) -> None:
    """Where the prices come from, and warnings for stale or unverified ones."""
    _emit_items(ex, [prices_item(ex.inputs)])


def show_c2(ex: Exploration) -> None:
    """Claim C2 per pairing next to the article's $680 → $4,100, and what it would need."""
    if ex.inputs.ratios.empty:
        RP.emit(ex, "No SSE/WS pairing among the selected platforms.")
        return
    _emit_items(ex, c2_items(ex.inputs))


def show_sensitivity(ex: Exploration) -> None:
    """Tornado: how each usage assumption moves the WS/SSE ratio."""
    _emit_items(ex, sensitivity_items(ex.inputs))


def show_llm_share(ex: Exploration) -> None:
    """Transport cost as a share of the LLM token bill for the same answers."""
    _emit_items(ex, [llm_item(ex.inputs)])
