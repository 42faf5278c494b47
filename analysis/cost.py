"""Cost model: what SSE and WebSocket streaming cost per month on each platform.

Pure functions over :class:`~analysis.cost_usage.Usage` (per arm, per month) and the
pricing catalogue (``analysis/pricing/*.toml``):

* :func:`cost_lines` — one row per (platform, arm, billed dimension) with the quantity
  that drives it;
* :func:`cost_table` — monthly cost per platform and arm, $ per dimension, $ per 1M
  sessions, $ per connection-hour, and the drivers in words;
* :func:`ratio_table` — WS/SSE cost ratio per SSE/WS pairing, the dimension that makes the
  difference, and its band against the article's 6× (claim C2, :mod:`analysis.cost_c2`);
* :func:`think_time_sweep` (with break-even) and :func:`mau_sweep`.

Typical use::

    from analysis import cost
    prof = cost.load_profile("support-assistant-10k")
    usages = cost.usages_from_profile(prof)          # or calibrated with a run
    table = cost.cost_table(usages, None, prof)
    ratios = cost.ratio_table(table)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.cost_c2 import ARTICLE_RATIO, ARTICLE_SSE_USD, ARTICLE_WS_USD, band
from analysis.cost_calibration import (
    calibration_from_summary,
    calibration_from_usage,
    usage_from_records,
    usage_from_summary,
    with_measured_capacity,
)
from analysis.cost_formulas import (
    FORMULAS,
    Line,
    alb_hourly,
    alb_lcu_hours,
    bill,
    bill_with_backend,
    charge_per_million,
    monthly_usd,
    vm_capacity_for,
)
from analysis.cost_pricing import (
    PRICING_DIR,
    Pricing,
    PricingError,
    check_catalogue,
    load_catalogue,
    load_pricing,
    price_warnings,
)
from analysis.cost_usage import (
    GB,
    HOURS_PER_MONTH,
    PROFILES_DIR,
    Calibration,
    Profile,
    ProfileError,
    Usage,
    list_profiles,
    load_profile,
    monthly_usage_from_profile,
    protocol_of,
    scale_to_month,
    session_usage_from_profile,
    usages_from_profile,
)

__all__ = [
    "ARTICLE_RATIO",
    "ARTICLE_SSE_USD",
    "ARTICLE_WS_USD",
    "FORMULAS",
    "GB",
    "HOURS_PER_MONTH",
    "PRICING_DIR",
    "PROFILES_DIR",
    "Calibration",
    "Line",
    "Pricing",
    "PricingError",
    "Profile",
    "ProfileError",
    "Selection",
    "Sweep",
    "Usage",
    "alb_hourly",
    "alb_lcu_hours",
    "band",
    "bill",
    "bill_with_backend",
    "break_even",
    "calibration_from_summary",
    "calibration_from_usage",
    "charge_per_million",
    "check_catalogue",
    "cost_lines",
    "cost_table",
    "list_profiles",
    "load_catalogue",
    "load_pricing",
    "load_profile",
    "mau_sweep",
    "monthly_usage_from_profile",
    "monthly_usd",
    "pair_costs",
    "pair_name",
    "pairs",
    "price_warnings",
    "protocol_of",
    "ratio_table",
    "resolve_platforms",
    "scale_to_month",
    "session_usage_from_profile",
    "think_time_sweep",
    "usage_from_records",
    "usage_from_summary",
    "usages_from_profile",
    "vm_capacity_for",
    "with_measured_capacity",
]


@dataclass(frozen=True)
class Selection:
    """Some products of a catalogue, with the whole catalogue to resolve backends in."""

    selected: tuple[Pricing, ...]
    catalogue: Mapping[str, Pricing]

    @classmethod
    def of(cls, catalogue: Mapping[str, Pricing], names: Sequence[str] | None = None) -> Selection:
        """``names`` (all when None) from ``catalogue``; an unknown name is a PricingError."""
        cat = dict(catalogue)
        check_catalogue(cat)
        if not names:
            return cls(tuple(cat.values()), cat)
        unknown = [n for n in names if n not in cat]
        if unknown:
            raise PricingError(f"unknown platform {unknown[0]!r}; known: {', '.join(sorted(cat))}")
        return cls(tuple(cat[n] for n in names), cat)


Platforms = None | str | Selection | Mapping[str, Pricing] | Iterable[str | Pricing]


def resolve_platforms(platforms: Platforms = None) -> tuple[list[Pricing], dict[str, Pricing]]:
    """(selected products, catalogue to resolve backends/pairings in).

    ``None`` → every file in ``analysis/pricing/``; a folder path → every file there; a
    :class:`Selection` → its products and catalogue; a mapping or list of
    :class:`Pricing` → those (they must be self-contained); a list of names → those names
    from the default catalogue.
    """
    if isinstance(platforms, Selection):
        return list(platforms.selected), dict(platforms.catalogue)
    if platforms is None:
        cat = load_catalogue()
        return list(cat.values()), cat
    if isinstance(platforms, str):
        cat = load_catalogue(platforms)
        return list(cat.values()), cat
    if isinstance(platforms, Mapping):
        cat = dict(platforms)
        check_catalogue(cat)
        return list(cat.values()), cat
    items = list(platforms)
    if all(isinstance(x, Pricing) for x in items):
        cat = {p.platform: p for p in items}  # type: ignore[union-attr]
        check_catalogue(cat)
        return list(cat.values()), cat
    cat = load_catalogue()
    selected = []
    for x in items:
        if isinstance(x, Pricing):
            cat[x.platform] = x
            selected.append(x)
        elif x in cat:
            selected.append(cat[x])
        else:
            raise PricingError(f"unknown platform {x!r}; known: {', '.join(sorted(cat))}")
    return selected, cat


def cost_lines(
    usages_by_arm: Mapping[str, Usage],
    platforms: Platforms = None,
    *,
    free_tiers: bool = False,
    capacity: Mapping[str, Mapping[str, float]] | None = None,
    include_backend: bool = True,
) -> pd.DataFrame:
    """Long table: one row per (platform, arm, billed line), for every product serving the arm.

    Columns: platform, arm, protocol, product (who bills the line), dimension, key
    (``product:dimension``), quantity, unit, billable, unit_price_usd, usd, note.
    """
    selected, cat = resolve_platforms(platforms)
    rows: list[dict[str, Any]] = []
    for p in selected:
        for arm, u in usages_by_arm.items():
            if u.protocol not in p.serves:
                continue
            lines = bill_with_backend(
                u, p, cat, free_tiers=free_tiers, capacity=capacity, include_backend=include_backend
            )
            for ln in lines:
                rows.append(
                    {
                        "platform": p.platform,
                        "arm": arm,
                        "protocol": u.protocol,
                        "product": ln.product,
                        "dimension": ln.dimension,
                        "key": ln.key,
                        "quantity": ln.quantity,
                        "unit": ln.unit,
                        "billable": ln.billable,
                        "unit_price_usd": ln.unit_price_usd,
                        "usd": ln.usd,
                        "note": ln.note,
                    }
                )
    cols = ["platform", "arm", "protocol", "product", "dimension", "key", "quantity", "unit"]
    return pd.DataFrame(rows, columns=[*cols, "billable", "unit_price_usd", "usd", "note"])


def pair_costs(
    usages_by_arm: Mapping[str, Usage],
    platforms: Platforms = None,
    *,
    free_tiers: bool = False,
    sse_arm: str = "sse",
    ws_arm: str = "ws",
) -> dict[tuple[str, str], tuple[float, float]]:
    """(SSE product, WS product) → (SSE $/month, WS $/month) for every declared pairing,
    without building tables (the fast path sweeps, solvers and the bootstrap use)."""
    _, cat = resolve_platforms(platforms)
    out = {}
    for sse_p, ws_p in pairs(platforms):
        s_usd = monthly_usd(usages_by_arm[sse_arm], cat[sse_p], cat, free_tiers=free_tiers)
        w_usd = monthly_usd(usages_by_arm[ws_arm], cat[ws_p], cat, free_tiers=free_tiers)
        out[(sse_p, ws_p)] = (s_usd, w_usd)
    return out


def pair_name(sse_p: str, ws_p: str) -> str:
    """How tables name a pairing: the product, or 'SSE product (SSE) vs WS product (WS)'."""
    return sse_p if sse_p == ws_p else f"{sse_p} (SSE) vs {ws_p} (WS)"


def _fmt_qty(q: float) -> str:
    if q >= 1e9:
        return f"{q / 1e9:,.2f}B"
    if q >= 1e6:
        return f"{q / 1e6:,.2f}M"
    if q >= 1e3:
        return f"{q / 1e3:,.1f}k"
    return f"{q:,.2f}"


def cost_table(
    usages_by_arm: Mapping[str, Usage],
    platforms: Platforms = None,
    profile: Profile | None = None,
    *,
    free_tiers: bool = False,
    capacity: Mapping[str, Mapping[str, float]] | None = None,
    include_backend: bool = True,
) -> pd.DataFrame:
    """Monthly cost per platform and arm, broken down by billed dimension.

    One row per (platform, arm) where the platform carries the arm's protocol. Columns:
    platform, arm, protocol, products, billing_basis, monthly_usd, usd_per_1m_sessions,
    usd_per_connection_hour, usd_per_1m_tokens, sessions, connection_hours, idle_share,
    drivers (each line: quantity, unit, $), dominant (the largest line), and one
    ``usd:<product>:<dimension>`` column per billed dimension (0 where not billed).
    ``profile`` only labels the table (``attrs["profile"]``); usages are already monthly.
    The line items behind it: :func:`cost_lines` with the same arguments.
    """
    selected, _ = resolve_platforms(platforms)
    lines = cost_lines(
        usages_by_arm,
        platforms,
        free_tiers=free_tiers,
        capacity=capacity,
        include_backend=include_backend,
    )
    basis = {p.platform: p.billing_basis for p in selected}
    rows = []
    for (plat, arm), g in lines.groupby(["platform", "arm"], sort=False):
        u = usages_by_arm[arm]
        total = float(g["usd"].sum())
        conn_h = u.connection_minutes_total / 60.0
        top = g.loc[g["usd"].idxmax()]
        row: dict[str, Any] = {
            "platform": plat,
            "arm": arm,
            "protocol": u.protocol,
            "products": " + ".join(dict.fromkeys(g["product"])),
            "billing_basis": basis.get(plat, ""),
            "monthly_usd": total,
            "usd_per_1m_sessions": total / u.sessions * 1e6 if u.sessions else np.nan,
            "usd_per_connection_hour": total / conn_h if conn_h else np.nan,
            "usd_per_1m_tokens": total / u.tokens_delivered * 1e6 if u.tokens_delivered else np.nan,
            "sessions": u.sessions,
            "connection_hours": conn_h,
            "idle_share": u.idle_share,
            "dominant": top["key"] if total > 0 else "",
            "drivers": "; ".join(
                f"{r.key}: {_fmt_qty(r.quantity)} {r.unit} → ${r.usd:,.2f}" for r in g.itertuples()
            ),
        }
        for r in g.itertuples():
            col = f"usd:{r.key}"
            row[col] = row.get(col, 0.0) + r.usd
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        dim_cols = sorted(c for c in table.columns if c.startswith("usd:"))
        table[dim_cols] = table[dim_cols].fillna(0.0)
        table = table[[c for c in table.columns if not c.startswith("usd:")] + dim_cols]
    table.attrs["profile"] = profile.name if profile else ""
    return table


def pairs(platforms: Platforms = None) -> list[tuple[str, str]]:
    """Distinct (SSE product, WS product) pairings declared by the selected files."""
    selected, _ = resolve_platforms(platforms)
    out: list[tuple[str, str]] = []
    for p in selected:
        pair = (p.pairing.get("sse", ""), p.pairing.get("ws", ""))
        if all(pair) and pair not in out:
            out.append(pair)
    return out


def ratio_table(
    table: pd.DataFrame,
    platforms: Platforms = None,
    *,
    sse_arm: str = "sse",
    ws_arm: str = "ws",
) -> pd.DataFrame:
    """WS/SSE monthly cost ratio for every declared SSE/WS pairing present in ``table``.

    Columns: pair, sse_platform, ws_platform, sse_usd, ws_usd, ws_over_sse, sse_over_ws,
    driver (the ``product:dimension`` with the largest WS − SSE gap), driver_gap_usd,
    dominant_sse, dominant_ws (largest line of each bill), connection_priced (the WS
    product bills connection time), verdict (the C2 band of the ratio, :func:`band`).
    """
    dim_cols = [c for c in table.columns if c.startswith("usd:")]
    _, cat = resolve_platforms(platforms)
    rows = []
    for sse_p, ws_p in pairs(platforms):
        s = table[(table["platform"] == sse_p) & (table["arm"] == sse_arm)]
        w = table[(table["platform"] == ws_p) & (table["arm"] == ws_arm)]
        if s.empty or w.empty:
            continue
        s_row, w_row = s.iloc[0], w.iloc[0]
        gaps = {c[4:]: float(w_row[c]) - float(s_row[c]) for c in dim_cols}
        gaps = {k: v for k, v in gaps.items() if abs(v) > 1e-9}
        driver = max(gaps, key=lambda k: abs(gaps[k])) if gaps else ""
        sse_usd, ws_usd = float(s_row["monthly_usd"]), float(w_row["monthly_usd"])
        ratio = ws_usd / sse_usd if sse_usd > 0 else np.inf
        rows.append(
            {
                "pair": pair_name(sse_p, ws_p),
                "sse_platform": sse_p,
                "ws_platform": ws_p,
                "sse_usd": sse_usd,
                "ws_usd": ws_usd,
                "ws_over_sse": ratio,
                "sse_over_ws": sse_usd / ws_usd if ws_usd > 0 else np.inf,
                "driver": driver,
                "driver_gap_usd": gaps.get(driver, 0.0),
                "dominant_sse": s_row["dominant"],
                "dominant_ws": w_row["dominant"],
                "connection_priced": bool(cat[ws_p].connection_priced) if ws_p in cat else False,
                "verdict": band(ratio),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- sweeps


@dataclass(frozen=True)
class Sweep:
    """A sweep's costs (long: x, platform, arm, monthly_usd, …) and per-pair break-evens."""

    costs: pd.DataFrame
    break_even: pd.DataFrame


def _sweep(
    profiles: Sequence[tuple[float, Profile]],
    x_name: str,
    platforms: Platforms,
    calibrations: Mapping[str, Calibration] | None,
    arms: Sequence[str],
    **kw: Any,
) -> pd.DataFrame:
    selected, cat = resolve_platforms(platforms)
    frames = []
    for x, prof in profiles:
        usages = usages_from_profile(prof, arms, calibrations)
        t = cost_table(usages, cat, prof, **kw)
        t = t[t["platform"].isin([p.platform for p in selected])]
        t.insert(0, x_name, x)
        t.insert(1, "ws_idle_share", usages[arms[-1]].idle_share)
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def break_even(
    costs: pd.DataFrame,
    x: str,
    platforms: Platforms = None,
    *,
    sse_arm: str = "sse",
    ws_arm: str = "ws",
) -> pd.DataFrame:
    """Where WS and SSE cost the same along ``x``, per pairing (linear interpolation).

    Columns: pair, sse_platform, ws_platform, break_even (x value, NaN if none in the
    range), cheaper_below (arm cheaper at smaller x), cheaper_above. When the costs
    never cross, cheaper_below = cheaper_above = the arm that is cheaper everywhere.
    """
    rows = []
    for sse_p, ws_p in pairs(platforms):
        s = costs[(costs["platform"] == sse_p) & (costs["arm"] == sse_arm)]
        w = costs[(costs["platform"] == ws_p) & (costs["arm"] == ws_arm)]
        if s.empty or w.empty:
            continue
        m = pd.merge(
            s[[x, "monthly_usd"]], w[[x, "monthly_usd"]], on=x, suffixes=("_sse", "_ws")
        ).sort_values(x)
        xs = m[x].to_numpy(float)
        d = (m["monthly_usd_ws"] - m["monthly_usd_sse"]).to_numpy(float, copy=True)
        scale = float(np.nanmax(np.abs(m[["monthly_usd_ws", "monthly_usd_sse"]].to_numpy())))
        d[np.abs(d) <= 1e-9 * max(scale, 1e-12)] = 0.0  # rounding noise is "equal"
        be = np.nan
        if len(d) and not d.any():
            d = d[:0]  # equal everywhere: no break-even point
        for i in range(len(d) - 1):
            if d[i] == 0:
                be = xs[i]
                break
            if d[i] * d[i + 1] < 0:
                be = xs[i] + (xs[i + 1] - xs[i]) * d[i] / (d[i] - d[i + 1])
                break
        if np.isnan(be) and len(d) and d[-1] == 0:
            be = xs[-1]

        def cheaper(v: float) -> str:
            return "equal" if v == 0 else (ws_arm if v < 0 else sse_arm)

        rows.append(
            {
                "pair": pair_name(sse_p, ws_p),
                "sse_platform": sse_p,
                "ws_platform": ws_p,
                "break_even": be,
                "cheaper_below": cheaper(d[0]) if len(d) else "equal",
                "cheaper_above": cheaper(d[-1]) if len(d) else "equal",
            }
        )
    return pd.DataFrame(rows)


def think_time_sweep(
    profile: Profile,
    think_times: Sequence[float],
    platforms: Platforms = None,
    *,
    calibrations: Mapping[str, Calibration] | None = None,
    arms: Sequence[str] = ("sse", "ws"),
    **kw: Any,
) -> Sweep:
    """Monthly cost per platform and arm across think times (idle share of a WS session).

    The tab stays open the same time after the last answer (``Profile.with_think_time``),
    so a longer think time lengthens every WS connection by (turns − 1) × Δthink; SSE
    holds nothing while the user thinks. Returns costs (columns ``think_time_s``,
    ``ws_idle_share`` + :func:`cost_table` columns) and the break-even per pairing.
    """
    profs = [(float(t), profile.with_think_time(float(t))) for t in think_times]
    costs = _sweep(profs, "think_time_s", platforms, calibrations, arms, **kw)
    return Sweep(costs, break_even(costs, "think_time_s", platforms))


def mau_sweep(
    profile: Profile,
    maus: Sequence[float],
    platforms: Platforms = None,
    *,
    calibrations: Mapping[str, Calibration] | None = None,
    arms: Sequence[str] = ("sse", "ws"),
    **kw: Any,
) -> Sweep:
    """Monthly cost per platform and arm across monthly active users (fixed fees, units,
    instance steps and allowances make cost non-linear in MAU)."""
    profs = [(float(m), profile.with_mau(float(m))) for m in maus]
    costs = _sweep(profs, "monthly_active_users", platforms, calibrations, arms, **kw)
    return Sweep(costs, break_even(costs, "monthly_active_users", platforms))
