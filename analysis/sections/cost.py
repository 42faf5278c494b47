"""The cost section: this run's measured usage per arm calibrates the cost model
(analysis.cost_run.cost_inputs, also what `ssevsws cost` and the cost explorer use), which
scales it to a usage profile's month on every priced platform.

Its pieces are the cost model's items (analysis.cost_sections: prices, calibration,
monthly bills, C2 per pairing beside the article's figures with the banded verdict, the
usage the article must have assumed, the sensitivity tornado, P10/P50/P90, the share of
the LLM token bill). Here they are put in reading order and their tables are made
readable (units in the headers, dollars and ratios formatted, long tables pivoted); the
raw DataFrames stay available (`cost_items`) for the published CSV files.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from analysis.cost_c2 import ARTICLE_RATIO, ARTICLE_SSE_USD, ARTICLE_WS_USD
from analysis.cost_run import CostInputs, cost_inputs
from analysis.cost_sections import CostItem, cost_sections
from analysis.sections.base import Items, Section, Text
from analysis.tables import md_table

if TYPE_CHECKING:  # pragma: no cover
    from analysis.report_data import Report

__all__ = [
    "COST",
    "CostInputs",
    "cost_inputs",
    "cost_items",
    "measured_cost",
    "readable_items",
    "report_cost_inputs",
    "usd",
]

#: The cost items the report shows, in reading order (the pricing sources go to Methods).
REPORT_ITEMS = ("usage", "monthly", "c2", "sensitivity", "bootstrap", "llm")
#: Bootstrap resamples of the calibration for P10/P50/P90.
COST_N_BOOT = 200


def report_cost_inputs(rep: Report) -> CostInputs:
    """The report's cost inputs (computed once per report)."""
    return rep.cached(
        "cost",
        lambda: cost_inputs(
            rep.data, rep.summary, profile=rep.profile_name, platforms=rep.platforms
        ),
    )


def measured_cost(rep: Report) -> CostInputs | None:
    """The cost inputs when the run measured usage the model can price, else None."""
    ci = report_cost_inputs(rep)
    return ci if ci.measured and not ci.table.empty else None


def cost_items(rep: Report) -> list[CostItem]:
    """The cost model's items for this run, raw (DataFrames, figures), computed once."""

    def make() -> list[CostItem]:
        ci = measured_cost(rep)
        if ci is None:
            return []
        return cost_sections(
            ci, rep.data, rep.summary.to_json(), n_boot=COST_N_BOOT, include=REPORT_ITEMS
        )

    return rep.cached("cost:items", make)


# --------------------------------------------------------------------------- cells


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def usd(v: Any) -> str:
    """``$1,234.50`` / ``−$0.36`` (sign before the currency); n/m when not a number."""
    if not _finite(v):
        return "n/m"
    return f"{'−' if v < -0.005 else ''}${abs(v):,.2f}"


def _x(v: Any) -> str:
    return f"{v:.2f}×" if _finite(v) else "n/m"


def _pct(v: Any) -> str:
    return f"{100 * v:.1f} %" if _finite(v) else "n/m"


def _num(spec: str, missing: str = "n/m") -> Callable[[Any], str]:
    return lambda v: spec.format(v) if _finite(v) else missing


def _compact(v: Any) -> str:
    """1,234 / 45.6 k / 3.21 M / 1.5 G — for user counts that span decades."""
    if not _finite(v):
        return "unreachable"
    for div, unit in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(v) >= div:
            return f"{v / div:,.3g}{unit}"
    return f"{v:,.3g}"


def _yes(v: Any) -> str:
    return "yes" if bool(v) else "no"


@dataclass(frozen=True)
class Col:
    """A column of a readable table: the raw column, its header, its cell format."""

    src: str
    header: str
    cell: Callable[[Any], str] = str


def _table(df: pd.DataFrame, cols: Sequence[Col]) -> str:
    present = [c for c in cols if c.src in df]
    rows = [
        [c.cell(v) for c, v in zip(present, r, strict=True)]
        for r in df[[c.src for c in present]].itertuples(index=False)
    ]
    return md_table([c.header for c in present], rows)


# --------------------------------------------------------------------------- each item

_USAGE = (
    Col("arm", "arm"),
    Col("streams", "streams", _num("{:,.0f}")),
    Col("tokens", "tokens", _num("{:,.0f}")),
    Col("connection-minutes", "connection-minutes", _num("{:,.1f}")),
    Col("idle share", "idle share", _pct),
    Col("message overhead B", "bytes per message besides the token", _num("{:.1f}")),
    Col("CPU-s/1k tokens", "server CPU-s / 1k tokens", _num("{:.4f}", "model default")),
    Col("KiB/connection", "KiB / connection", _num("{:.1f}", "model default")),
    Col("cancelled answer delivered", "share of a cancelled answer sent", _pct),
    Col("from", "measured from"),
)
_MONTHLY = (
    Col("platform", "platform"),
    Col("arm", "arm"),
    Col("monthly_usd", "$ / month", usd),
    Col("usd_per_1m_sessions", "$ per 1M sessions", usd),
    Col("usd_per_connection_hour", "$ per connection-hour", _num("${:,.5f}")),
    Col("dominant", "largest line"),
)
_C2 = (
    Col("pair", "pairing (SSE vs WS)"),
    Col("connection_priced", "connection-priced", _yes),
    Col("sse_usd", "our SSE $/month", usd),
    Col("ws_usd", "our WS $/month", usd),
    Col("ws_over_sse", "our WS/SSE", _x),
    Col("band", "band"),
    Col("article", "article's $/month (WS/SSE)"),
    Col("ours_over_article", "ours ÷ article's ratio", _x),
    Col("driver", "what drives the gap"),
)
_INVERSE = (
    Col("pair", "pairing (SSE vs WS)"),
    Col("mau_for_ws_4100", f"MAU for WS = ${ARTICLE_WS_USD:,.0f}", _compact),
    Col("mau_for_sse_680", f"MAU for SSE = ${ARTICLE_SSE_USD:,.0f}", _compact),
    Col("one_usage_gives_both", "one workload gives both", _yes),
    Col("ratio_at_ws_4100", "our WS/SSE at that MAU", _x),
    Col("sessions_per_user_for_ws_4100", "sessions/user for WS $4,100", _compact),
    Col("tokens_per_frame_for_6x", f"tokens per frame for {ARTICLE_RATIO:.2f}×", _compact),
)


def _usage(item: CostItem) -> str:
    return _table(item.value, _USAGE)


def _monthly(item: CostItem) -> str:
    return _table(item.value, _MONTHLY)


def _c2(item: CostItem) -> str:
    df = item.value.assign(
        article=f"${ARTICLE_SSE_USD:,.0f} → ${ARTICLE_WS_USD:,.0f} ({ARTICLE_RATIO:.2f}×)"
    )
    return _table(df, _C2)


def _inverse(item: CostItem) -> str:
    return _table(item.value, _INVERSE)


def _setting(v: Any) -> str:
    return f"{v:g}" if _finite(v) else str(v)


def _tornado(item: CostItem) -> str:
    """Pairing × input: our WS/SSE at the input's low → high setting."""
    df = item.value
    knobs = list(dict.fromkeys(df["knob"]))
    head = ["pairing (SSE vs WS)", "profile"]
    for k in knobs:
        first = df[df["knob"] == k].iloc[0]
        head.append(f"{k} {_setting(first['low'])} → {_setting(first['high'])}")
    rows = []
    for pair, g in df.groupby("pair", sort=False):
        by = {r.knob: r for r in g.itertuples()}
        rows.append(
            [pair, _x(g["ratio_base"].iloc[0])]
            + [f"{_x(by[k].ratio_low)} → {_x(by[k].ratio_high)}" if k in by else "" for k in knobs]
        )
    return md_table(head, rows)


def _bootstrap(item: CostItem) -> str:
    """Pairing × quantity: P50 [P10 – P90]."""
    df = item.value
    quantities = list(dict.fromkeys(df["quantity"]))
    rows = []
    for pair, g in df.groupby("pair", sort=False):
        by = {r.quantity: r for r in g.itertuples()}
        cells = []
        for q in quantities:
            r = by.get(q)
            cell = _x if "/" in q and "$" not in q else usd
            cells.append(f"{cell(r.p50)} [{cell(r.p10)} – {cell(r.p90)}]" if r else "")
        rows.append([pair, *cells])
    return md_table(["pairing (SSE vs WS)", *(f"{q} P50 [P10 – P90]" for q in quantities)], rows)


def _llm(item: CostItem) -> str:
    """Pairing × model: SSE and WS transport bills as shares of the token bill."""
    df = item.value
    models = list(dict.fromkeys(df["model"]))
    bills = {m: df.loc[df["model"] == m, "llm_usd"].iloc[0] for m in models}
    rows = []
    for pair, g in df.groupby("pair", sort=False):
        by = {r.model: r for r in g.itertuples()}
        cells = [f"SSE {_pct(by[m].sse_share)} · WS {_pct(by[m].ws_share)}" for m in models]
        rows.append([pair, *cells])
    head = ["pairing (SSE vs WS)", *(f"{m} ({usd(bills[m])}/month)" for m in models)]
    return md_table(head, rows)


_READABLE: dict[str, Callable[[CostItem], str]] = {
    "cost_usage": _usage,
    "cost_monthly_table": _monthly,
    "cost_c2_table": _c2,
    "cost_c2_inverse": _inverse,
    "cost_tornado_table": _tornado,
    "cost_bootstrap_table": _bootstrap,
    "cost_llm_share": _llm,
}
#: Figures that say what their table says (the C2 figure shows the ratio and its bands).
_LEFT_OUT = ("cost_ratio",)


def readable_items(items: Sequence[CostItem]) -> list[CostItem]:
    """The report's view of the cost items: Markdown tables with units and formats; a
    table drawn as a figure comes after it without repeating its title, and the caption
    (what to read) goes under the figure."""
    out: list[CostItem] = []
    shown_titles: set[str] = set()
    figures = {it.title for it in items if it.kind == "figure"}
    for it in items:
        if it.name in _LEFT_OUT:
            continue
        title = "" if it.title in shown_titles else it.title
        shown_titles.add(it.title)
        if it.kind == "table":
            text = _READABLE[it.name](it) if it.name in _READABLE else str(it.value)
            caption = "" if it.title in figures else it.caption
            out.append(replace(it, title=title, value=text, caption=caption))
        else:
            out.append(replace(it, title=title))
    return out


# --------------------------------------------------------------------------- the section


def _profile_text(rep: Report) -> str:
    ci = report_cost_inputs(rep)
    p = ci.profile
    lines = [
        f"What streaming this run's answers would cost per month for the usage profile "
        f"`{p.name}`: {p.monthly_active_users:,.0f} monthly active users × "
        f"{p.sessions_per_user_per_month:g} sessions × {p.turns_per_session:g} answers of "
        f"{p.tokens_per_answer:,.0f} tokens, {p.tokens_per_message:g} token(s) per frame, "
        f"think time {p.think_time_s:g} s, tab open {p.tab_open_s:g} s. The run measures "
        "what the implementation costs per token and per stream (bytes, CPU, memory); the "
        "profile says how much of it a month has; each platform's pricing file says what "
        'that is billed (sources under "Methods").',
    ]
    if measured_cost(rep) is None:
        lines += [
            "",
            "Not measured in this run: the cost model needs measured usage of an SSE "
            "and/or a WS arm (streams with tokens).",
        ]
    elif ci.warnings:
        lines += ["", "Price warnings (older than 90 days, or not verified on its page):"]
        lines += [f"- {w}" for w in ci.warnings]
    return "\n".join(lines)


def _cost_headline(rep: Report) -> str | None:
    ci = measured_cost(rep)
    if ci is None or ci.ratios.empty:
        return None
    priced = ci.ratios[ci.ratios["connection_priced"].astype(bool)]
    r = (priced if len(priced) else ci.ratios)["ws_over_sse"].astype(float)
    what = "connection-priced" if len(priced) else "priced"
    return (
        f"WS/SSE monthly cost over {len(r)} {what} platform pairings: "
        f"{r.min():.1f}× to {r.max():.1f}×."
    )


COST = Section(
    "cost",
    "Cost",
    lambda rep: rep.main is not None,
    "measured usage of an SSE and/or a WS arm in the headline scenario (streams with tokens)",
    (Text(_profile_text), Items("cost", lambda rep: readable_items(cost_items(rep)))),
    headline=_cost_headline,
)
