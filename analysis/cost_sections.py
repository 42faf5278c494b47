"""The cost part of a report as plain items: tables (DataFrames), figures and text, each
with a caption saying what to read in it.

The report (or any page builder) calls::

    from analysis.cost_run import cost_inputs
    from analysis.cost_sections import cost_sections
    ci = cost_inputs(run_data, summary)          # profile, platforms, what-ifs optional
    for item in cost_sections(ci, run_data, summary):
        item.name, item.title, item.kind ("table" | "figure" | "text"), item.value, item.caption

Each item is also available on its own (:func:`prices_item`, :func:`c2_items`, …); the
building blocks are in :mod:`analysis.cost_article` (C2 vs the article, inverse),
:mod:`analysis.cost_sensitivity` (tornado, bootstrap) and :mod:`analysis.cost_llm`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from analysis import cost as K
from analysis import cost_plots
from analysis.cost_article import C2_INVERSE_CAPTION, C2_TABLE_CAPTION, c2_inverse, c2_table
from analysis.cost_llm import LLM_SHARE_CAPTION, llm_share
from analysis.cost_run import CostInputs, scenario_rows
from analysis.cost_sensitivity import (
    BOOTSTRAP_CAPTION,
    TORNADO_CAPTION,
    bootstrap_costs,
    bootstrap_factors,
    tornado_table,
)


@dataclass(frozen=True)
class CostItem:
    """One table, figure or paragraph of the cost section."""

    name: str  # stable id, also the figure's file name
    title: str
    kind: Literal["table", "figure", "text"]
    value: Any  # DataFrame | matplotlib Figure | str
    caption: str = ""


def _selection(ci: CostInputs) -> K.Selection:
    if isinstance(ci.platforms, K.Selection):
        return ci.platforms
    return K.Selection.of(K.load_catalogue(), list(ci.platforms) if ci.platforms else None)


def _shown(name: str, title: str, table: pd.DataFrame, fig: Any, caption: str) -> list[CostItem]:
    """A table and the figure drawn from it, under one caption."""
    return [
        CostItem(f"{name}_table", title, "table", table, caption),
        CostItem(name, title, "figure", fig, caption),
    ]


def prices_item(ci: CostInputs) -> CostItem:
    """Where every price comes from: per product, source, oldest read date, how many
    values were verified on the provider's page, and the free-tier kind."""
    rows = []
    for p in _selection(ci).selected:
        prov = p.provenance.values()
        prices = [v for v in prov if v.kind == "price"]
        rows.append(
            {
                "platform": p.platform,
                "billing basis": p.billing_basis,
                "connection priced": p.connection_priced,
                "verified": f"{sum(v.verified for v in prices)}/{len(prices)}",
                "oldest read": min((v.read_on for v in prov), default=p.read_on),
                "free tier": p.free_tier_term,
                "source": p.source,
            }
        )
    caption = (
        "Every number in a bill comes from a pricing file that cites its page; 'verified' "
        "counts the prices and rules read on the provider's own page on 'oldest read' or "
        "later (the rest say why in the file). Free tiers are applied only when asked."
    )
    if ci.warnings:
        caption += " Warnings: " + " | ".join(ci.warnings)
    return CostItem("cost_prices", "Pricing sources", "table", pd.DataFrame(rows), caption)


def usage_item(ci: CostInputs) -> CostItem:
    """The measured usage and the calibration it gives, per arm."""
    rows = []
    for arm, cal in ci.calibrations.items():
        u = ci.measured[arm]
        rows.append(
            {
                "arm": arm,
                "streams": u.streams,
                "tokens": u.tokens_delivered,
                "connection-minutes": u.connection_minutes_total,
                "idle share": u.idle_share,
                "message overhead B": cal.message_overhead_bytes,
                "run's messages/token": cal.messages_per_token,
                "CPU-s/1k tokens": cal.cpu_s_per_1k_tokens,
                "KiB/connection": cal.kib_per_connection,
                "cancelled answer delivered": cal.cancel_at_fraction,
                "from": cal.source,
            }
        )
    caption = (
        f"Measured in scenario {ci.scenario!r} ({ci.source}). The run calibrates bytes per "
        "message besides the token text, CPU per token, memory per connection and the "
        "share of a cancelled answer; the profile decides framing (tokens per frame), "
        "sessions and tab time — a run's one-token-per-frame never overrides it."
    )
    return CostItem(
        "cost_usage", "Measured usage and calibration", "table", pd.DataFrame(rows), caption
    )


def monthly_items(ci: CostInputs) -> list[CostItem]:
    p = ci.profile
    caption = (
        f"Monthly cost per platform and arm for profile {p.name!r} "
        f"({p.monthly_active_users:,.0f} MAU × {p.sessions_per_user_per_month:g} sessions × "
        f"{p.turns_per_session:g} answers, think {p.think_time_s:g} s, tab open "
        f"{p.tab_open_s:g} s, {p.tokens_per_message:g} token(s) per frame, SSE "
        f"{p.sse_connection.replace('_', ' ')}), stacked by billed dimension: the longest "
        "segment is what a platform charges you for."
    )
    title = "Monthly cost per platform and arm"
    return _shown("cost_monthly", title, ci.table, cost_plots.plot_monthly_cost(ci.table), caption)


def c2_items(ci: CostInputs) -> list[CostItem]:
    """C2 side by side with the article (table + figure) and the usage it would need."""
    c2 = c2_table(ci.ratios)
    inverse = c2_inverse(ci.profile, _selection(ci), ci.calibrations)
    ratio = CostItem(
        "cost_ratio",
        "WS / SSE monthly cost",
        "figure",
        cost_plots.plot_ratio(ci.ratios),
        "WS/SSE per pairing over the C2 bands (grey: about equal, orange band: close to 6×); "
        "orange bars are connection-priced pairings.",
    )
    title = "What the article must have assumed"
    inv = CostItem("cost_c2_inverse", title, "table", inverse, C2_INVERSE_CAPTION)
    fig = cost_plots.plot_c2_vs_article(c2)
    return [*_shown("cost_c2", "C2: ours vs the article", c2, fig, C2_TABLE_CAPTION), ratio, inv]


def sensitivity_items(ci: CostInputs) -> list[CostItem]:
    t = tornado_table(ci.profile, _selection(ci), ci.calibrations)
    fig = cost_plots.plot_tornado(t)
    return _shown("cost_tornado", "Sensitivity of WS/SSE", t, fig, TORNADO_CAPTION)


def bootstrap_items(
    ci: CostInputs, data: Any, summary: Mapping[str, Any], n_boot: int = 200
) -> list[CostItem]:
    """P10/P50/P90 from resampling the calibration (records when present, else phases)."""
    streams = scenario_rows(getattr(data, "streams", None), ci.scenario)
    arms = list(ci.calibrations)
    factors = bootstrap_factors(
        arms, streams, summary.get("phases") or [], ci.scenario, n_boot=n_boot
    )
    boot = bootstrap_costs(ci.profile, _selection(ci), ci.calibrations, factors)
    caption = f"{BOOTSTRAP_CAPTION} Resampled: {factors.what}."
    fig = cost_plots.plot_bootstrap(boot)
    return _shown("cost_bootstrap", "P10 / P50 / P90 monthly cost", boot, fig, caption)


def llm_item(ci: CostInputs) -> CostItem:
    return CostItem(
        "cost_llm_share",
        "Transport vs token bill",
        "table",
        llm_share(ci.profile, ci.usages, ci.ratios),
        LLM_SHARE_CAPTION,
    )


def cost_sections(
    ci: CostInputs,
    data: Any = None,
    summary: Mapping[str, Any] | None = None,
    *,
    n_boot: int = 200,
    include: Sequence[str] = (
        "prices",
        "usage",
        "monthly",
        "c2",
        "sensitivity",
        "bootstrap",
        "llm",
    ),
) -> list[CostItem]:
    """Every cost item in report order; a text item saying what is missing when the run
    has no measured usage."""
    items: list[CostItem] = []
    if "prices" in include:
        items.append(prices_item(ci))
    if not ci.calibrations or ci.table.empty:
        items.append(
            CostItem(
                "cost_missing",
                "Cost",
                "text",
                "Not measured in this run: the cost model needs measured usage of an SSE "
                "and/or a WS arm (streams with tokens).",
            )
        )
        return items
    builders = {
        "usage": lambda: [usage_item(ci)],
        "monthly": lambda: monthly_items(ci),
        "c2": lambda: c2_items(ci) if len(ci.ratios) else [],
        "sensitivity": lambda: sensitivity_items(ci) if len(ci.calibrations) == 2 else [],
        "bootstrap": lambda: bootstrap_items(ci, data, summary or {}, n_boot),
        "llm": lambda: [llm_item(ci)] if len(ci.ratios) else [],
    }
    for name in include:
        if name in builders:
            items += builders[name]()
    return items
