"""Cost model: what SSE and WebSocket streaming cost per month on each platform (issue 5).

Pure functions over :class:`~analysis.cost_usage.Usage` (per arm, per month) and the
pricing catalogue (``analysis/pricing/*.toml``):

* :func:`cost_lines` — one row per (platform, arm, billed dimension) with the quantity
  that drives it;
* :func:`cost_table` — monthly cost per platform and arm, $ per dimension, $ per 1M
  sessions, $ per connection-hour, and the drivers in words;
* :func:`ratio_table` — WS/SSE cost ratio per SSE/WS pairing, the dimension that makes the
  difference, and whether the article's 6× (DESIGN §9, C2) holds;
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

from analysis.cost_pricing import (
    BASES,
    PRICING_DIR,
    Line,
    Pricing,
    PricingError,
    alb_hourly,
    alb_lcu_hours,
    bill,
    bill_with_backend,
    charge_per_million,
    check_catalogue,
    load_catalogue,
    load_pricing,
    vm_capacity_for,
)
from analysis.cost_usage import (
    GB,
    HOURS_PER_MONTH,
    PROFILES_DIR,
    Calibration,
    Profile,
    ProfileError,
    Usage,
    calibration_from_usage,
    list_profiles,
    load_profile,
    monthly_usage_from_profile,
    protocol_of,
    scale_to_month,
    session_usage_from_profile,
    usages_from_profile,
    with_measured_capacity,
)

__all__ = [
    "ARTICLE_RATIO",
    "BASES",
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
    "Sweep",
    "Usage",
    "alb_hourly",
    "alb_lcu_hours",
    "bill",
    "bill_with_backend",
    "break_even",
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
    "pairs",
    "protocol_of",
    "ratio_table",
    "resolve_platforms",
    "scale_to_month",
    "session_usage_from_profile",
    "think_time_sweep",
    "usage_from_records",
    "usages_from_profile",
    "vm_capacity_for",
    "with_measured_capacity",
]

#: The article's claim (DESIGN §9, C2): WS ≈ 6× SSE on connection-priced platforms.
ARTICLE_RATIO = 6.0

Platforms = None | str | Mapping[str, Pricing] | Iterable[str | Pricing]


def resolve_platforms(platforms: Platforms = None) -> tuple[list[Pricing], dict[str, Pricing]]:
    """(selected products, catalogue to resolve backends/pairings in).

    ``None`` → every file in ``analysis/pricing/``; a folder path → every file there; a
    mapping or list of :class:`Pricing` → those (they must be self-contained); a list
    of names → those names from the default catalogue.
    """
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


def _verdict(ratio: float) -> str:
    """C2 verdict: ≥ 6× holds; 4–6× close; 1.5–4× WS dearer but far from 6×; else no."""
    if not np.isfinite(ratio):
        return "n/a"
    if ratio >= ARTICLE_RATIO:
        return f"holds (WS ≥ {ARTICLE_RATIO:g}× SSE)"
    if ratio >= 4.0:
        return f"close to {ARTICLE_RATIO:g}× (WS {ratio:.1f}× SSE)"
    if ratio >= 1.5:
        return f"WS costs more, well under {ARTICLE_RATIO:g}× ({ratio:.1f}×)"
    if ratio > 1 / 1.5:
        return "does not hold (about equal)"
    return "does not hold (SSE costs more)"


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
    dominant_sse, dominant_ws (largest line of each bill), verdict (does C2's 6× hold).
    """
    dim_cols = [c for c in table.columns if c.startswith("usd:")]
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
                "pair": sse_p if sse_p == ws_p else f"{sse_p} (SSE) vs {ws_p} (WS)",
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
                "verdict": _verdict(ratio),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- measured usage


def _peak_overlap(starts: np.ndarray, ends: np.ndarray) -> float:
    """Most intervals open at once (an end at t closes before a start at t)."""
    if len(starts) == 0:
        return 0.0
    times = np.concatenate([starts, ends])
    steps = np.concatenate([np.ones(len(starts)), -np.ones(len(ends))])
    order = np.lexsort((steps, times))
    return float(np.cumsum(steps[order]).max())


def usage_from_records(
    arm: str,
    streams: pd.DataFrame,
    connections: pd.DataFrame | None = None,
    resources: pd.DataFrame | None = None,
) -> Usage:
    """Measured :class:`Usage` of one arm from a run's record tables (DESIGN §6 schema).

    Pure function of the frames (rows of other arms are ignored):
    sessions = distinct (worker, user, session); streams = stream rows; tokens = Σ n_unique;
    data messages out = Σ n_received + one done per stream that finished; WS messages in =
    one start per stream + one resume per reconnect; SSE requests = streams + reconnects.
    From ``connections``: connections opened, connection-minutes (open → close), idle =
    total − busy, peak concurrent, bytes (client received = server out). Without it, bytes
    out = Σ streams.bytes_in and connection time = request sent → end per stream.
    From ``resources`` (role ``server``): CPU-seconds = Σ per pid of the cumulative CPU
    growth; memory GiB·s = Σ per pid of RSS integrated over time. Keepalives are not
    recorded (0).
    """
    s = streams[streams["arm"] == arm]
    proto = protocol_of(arm)
    n = float(len(s))
    reconnects = float(s["reconnects"].fillna(0).sum()) if "reconnects" in s else 0.0
    done = float(s["done"].fillna(False).astype(bool).sum()) if "done" in s else 0.0
    received = float(s["n_received"].fillna(0).sum())
    kw: dict[str, Any] = {
        "sessions": float(len(s[["worker", "user", "session"]].drop_duplicates())),
        "streams": n,
        "tokens_delivered": float(s["n_unique"].fillna(0).sum()),
    }
    if proto == "sse":
        kw.update(http_requests=n + reconnects, sse_events=received + done)
    else:
        kw.update(ws_messages_out=received + done, ws_messages_in=n + reconnects)
    t0 = float(s["t_send_ns"].min()) if n else 0.0
    t1 = float(s["t_end_ns"].max()) if n else 0.0
    c = connections[connections["arm"] == arm] if connections is not None else None
    if c is not None and len(c):
        c = c.dropna(subset=["t_open_ns"])
        close = c["t_close_ns"].fillna(t1).to_numpy(float)
        opened = c["t_open_ns"].to_numpy(float)
        total_min = float((close - opened).sum()) / 60e9
        busy_min = float(c["busy_ns"].fillna(0).sum()) / 60e9
        kw.update(
            connections_opened=float(len(c)),
            connection_minutes_total=total_min,
            connection_minutes_idle=max(0.0, total_min - busy_min),
            peak_concurrent_connections=_peak_overlap(opened, close),
            bytes_out=float(c["bytes_in"].fillna(0).sum()),
            bytes_in=float(c["bytes_out"].fillna(0).sum()),
        )
        if proto == "ws":
            kw["http_requests"] = float(len(c))  # one upgrade per connection
    else:
        span = (s["t_end_ns"] - s["t_send_ns"]).fillna(0).to_numpy(float)
        kw.update(
            connections_opened=n if proto == "sse" else 0.0,
            connection_minutes_total=float(span.sum()) / 60e9,
            bytes_out=float(s["bytes_in"].fillna(0).sum()),
        )
    if n:
        starts = s["t_send_ns"].to_numpy(float)
        ends = s["t_end_ns"].fillna(t1).to_numpy(float)
        kw["peak_concurrent_streams"] = _peak_overlap(starts, ends)
    if resources is not None and len(resources):
        r = resources[(resources["arm"] == arm) & (resources["role"] == "server")]
        cpu = mem = 0.0
        for _, g in r.sort_values("t_ns").groupby("pid"):
            tot = (g["cpu_user_s"] + g["cpu_sys_s"]).to_numpy(float)
            cpu += float(tot[-1] - tot[0]) if len(tot) > 1 else 0.0
            t = g["t_ns"].to_numpy(float) / 1e9
            rss = g["rss_bytes"].to_numpy(float) / GB
            if len(t) > 1:
                mem += float(np.sum((rss[1:] + rss[:-1]) / 2 * np.diff(t)))
        kw.update(server_cpu_seconds=cpu, memory_gb_seconds=mem)
    if n and t1 > t0:
        kw["hours"] = (t1 - t0) / 3.6e12
    return Usage(arm=arm, protocol=proto, **kw)


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
                "pair": sse_p if sse_p == ws_p else f"{sse_p} (SSE) vs {ws_p} (WS)",
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
