"""Capacity within the SLO (issue 5 item 2): tokens/s per core from a ramp scenario,
connections per GiB from a scenario holding connections idle, per arm. Pure functions over
run frames.

Which scenario groups count is the caller's choice (analysis.summary passes the groups whose
configuration has a ramp, resp. holds connections idle: analysis.traits); the frames need
the ``group`` column analysis.load adds.

Ramp (the ramp groups)
    Steps are cut as in :func:`analysis.metrics.ramp` (streams in send order, a new step
    wherever ``users_target`` changes) and the same step of every repetition is pooled by
    ``users_target``. Per step: TTFT p99 over the step's streams, ITL p99 over every token
    gap of those streams, tokens/s delivered in the step windows (Σ tokens ÷ Σ window), and
    server CPU cores used in the windows: per server process the cumulative
    ``cpu_user_s + cpu_sys_s``, linearly interpolated at the window's start and end
    (clipped to the sampled span), ÷ the covered seconds; summed over processes; pooled
    over repetitions weighted by window length.

    Percentiles are gated as everywhere in the analysis (analysis.stats.min_samples: p99
    needs 368 samples). A step whose p99 is not computable is **not** judged at a lower
    percentile: it is "insufficient samples" — except that when a computable lower
    percentile (p95, p90, p50) already exceeds the limit the step is "broken", because the
    p99 can only be higher.

    A step *meets* the SLO when both p99s are computable and within the limits. The
    capacity is the highest meeting step below the first broken step (a middle step with
    insufficient samples is skipped, not counted as meeting). When no step broke, the
    figure is a lower bound (``bounded_below``): the ramp did not reach the limit, and
    nothing is extrapolated. ``tokens_per_s_per_core`` = tokens/s ÷ cores at that step.
    The load generator shared the machine in most runs; its CPU is not counted.

Idle-hold (the groups holding connections idle)
    RSS per open connection = :func:`analysis.resources.rss_per_connection` slope over the
    server samples *up to the last sample at the peak connection count* of each process
    (after that connections close but the allocator keeps the memory, which would flatten
    the slope). ``connections_per_gib`` = 2^30 ÷ bytes per connection.
    ``baseline_rss_bytes``: the fit's intercept for one server (phases averaged).
    CPU per idle connection: server cores while the peak connection count is held ÷ that
    count (includes the idle server's own baseline: an upper bound); NaN without a hold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis import metrics as M
from analysis import resources as R
from analysis import validity as V
from analysis.stats import describe, finite, min_samples, to_jsonable

GIB = 2**30
DEFAULT_SLO_TTFT_P99_MS = 1000.0
DEFAULT_SLO_ITL_P99_MS = 100.0

MET, BROKEN, INSUFFICIENT = "met", "broken", "insufficient samples"

_STEP_COLS = [
    "arm",
    "users_target",
    "repetitions",
    "streams",
    "ttft_n",
    "ttft_p99_ms",
    "ttft_status",
    "itl_n",
    "itl_p99_ms",
    "itl_status",
    "tokens",
    "window_s",
    "tokens_per_s",
    "cpu_s",
    "cores",
    "tokens_per_s_per_core",
    "slo",
    "why",
]


def _in_scenarios(df: pd.DataFrame | None, groups: Sequence[str]) -> pd.DataFrame:
    """Rows of the given analysis groups (the ``group`` column of analysis.load)."""
    if df is None or df.empty or "group" not in df:
        return df.iloc[0:0] if df is not None else pd.DataFrame()
    return df[df["group"].astype(object).isin(list(groups)).to_numpy(dtype=bool)]


def _judge(values: Any, limit: float) -> tuple[int, float, str, str]:
    """(n, p99, status, why) of one metric against ``limit`` (see module docstring)."""
    d = describe(values)
    n, p99 = int(d["n"]), d["p99"]
    if not math.isnan(p99):
        return n, p99, (MET if p99 <= limit else BROKEN), ""
    for p in (95, 90, 50):
        v = d[f"p{p}"]
        if not math.isnan(v) and v > limit:
            return n, p99, BROKEN, f"p{p} {v:.1f} > {limit:g} with n={n} (p99 not computable)"
    return n, p99, INSUFFICIENT, f"n={n} < {min_samples(99)} for a p99"


def _step_ids(streams: pd.DataFrame) -> pd.DataFrame:
    """(stream_uid, arm, phase, step, users_target) — the cut of metrics.ramp."""
    s = streams[streams["t_send_ns"].notna()]
    rows = []
    for (arm, phase), grp in s.groupby(["arm", "phase"], observed=True, sort=True):
        grp = grp.assign(_t0=grp["t_send_ns"].to_numpy(dtype=np.int64)).sort_values(
            "_t0", kind="stable"
        )
        ut = M.column(grp, "users_target").to_numpy(dtype=np.float64, na_value=np.nan)
        change = np.ones(len(grp), dtype=bool)
        change[1:] = ~((ut[1:] == ut[:-1]) | (np.isnan(ut[1:]) & np.isnan(ut[:-1])))
        rows.append(
            pd.DataFrame(
                {
                    "stream_uid": grp["stream_uid"].astype(object).to_numpy(),
                    "arm": arm,
                    "phase": phase,
                    "step": np.cumsum(change) - 1,
                    "users_target": ut,
                }
            )
        )
    if not rows:
        return pd.DataFrame(columns=["stream_uid", "arm", "phase", "step", "users_target"])
    return pd.concat(rows, ignore_index=True)


def _server_cpu_in(srv: pd.DataFrame, t0: int, t1: int) -> tuple[float, float]:
    """(cpu_s, cores) of the server processes in ``srv`` over [t0, t1] (interpolated)."""
    cpu_total, cores = 0.0, 0.0
    covered_any = False
    for _, p in srv.groupby("pid", observed=True):
        t = p["t_ns"].to_numpy(dtype=np.int64)
        c = M.column(p, "cpu_user_s").to_numpy(dtype=np.float64, na_value=np.nan) + M.column(
            p, "cpu_sys_s"
        ).to_numpy(dtype=np.float64, na_value=np.nan)
        ok = np.isfinite(c)
        t, c = t[ok], c[ok]
        if t.size < 2:
            continue
        order = np.argsort(t, kind="stable")
        t, c = t[order], c[order]
        lo, hi = max(t0, int(t[0])), min(t1, int(t[-1]))
        if hi <= lo:
            continue
        d = float(np.interp(hi, t, c) - np.interp(lo, t, c))
        cpu_total += d
        cores += d / ((hi - lo) / M.NS_PER_S)
        covered_any = True
    return (cpu_total, cores) if covered_any else (math.nan, math.nan)


def ramp_steps(
    streams: pd.DataFrame,
    tokens: pd.DataFrame | None,
    resources: pd.DataFrame | None,
    *,
    slo_ttft_p99_ms: float = DEFAULT_SLO_TTFT_P99_MS,
    slo_itl_p99_ms: float = DEFAULT_SLO_ITL_P99_MS,
    scenarios: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per (arm, users_target) of the ramp phases, repetitions pooled (columns
    ``_STEP_COLS``; ``slo`` is met / broken / insufficient samples, ``why`` says why)."""
    s = _in_scenarios(streams, scenarios)
    if s.empty or "t_send_ns" not in s:
        return pd.DataFrame(columns=_STEP_COLS)
    tk = None
    if tokens is not None and not tokens.empty:
        tk = tokens[tokens["stream_uid"].isin(pd.unique(s["stream_uid"].astype(object)))]
    steps = M.ramp(s, tk)
    ids = _step_ids(s)
    sm = M.stream_metrics(s).drop_duplicates("stream_uid").set_index("stream_uid")
    ids["ttft_ms"] = sm["ttft_ms"].reindex(ids["stream_uid"]).to_numpy(dtype=np.float64)
    gaps = M.token_gaps(tk, s) if tk is not None else pd.DataFrame(columns=["stream_uid"])
    key = ids.set_index("stream_uid")[["arm", "users_target"]]
    if len(gaps):
        gk = key.reindex(gaps["stream_uid"].astype(object))
        gaps = pd.DataFrame(
            {
                "arm": gk["arm"].to_numpy(),
                "users_target": gk["users_target"].to_numpy(dtype=np.float64),
                "itl_ms": gaps["itl_ms"].to_numpy(dtype=np.float64),
            }
        )
    srv = R.role_rows(resources, "server") if resources is not None else pd.DataFrame()
    srv = _in_scenarios(srv, scenarios) if len(srv) else srv
    cpu_rows = []
    for r in steps.itertuples(index=False):
        if r.window_s != r.window_s or r.window_s <= 0 or srv.empty:
            cpu_rows.append((math.nan, math.nan))
            continue
        ps = srv[(srv["phase"].astype(object) == r.phase) & (srv["arm"].astype(object) == r.arm)]
        t0 = int(r.t_start_ns)
        cpu_rows.append(_server_cpu_in(ps, t0, t0 + round(r.window_s * M.NS_PER_S)))
    steps = steps.assign(
        cpu_s=[c[0] for c in cpu_rows], cores=[c[1] for c in cpu_rows], _ut=steps["users_target"]
    )
    rows = []
    for (arm, ut), g in steps.groupby(["arm", "_ut"], observed=True, sort=True, dropna=False):
        in_step = (ids["arm"] == arm) & (ids["users_target"] == ut)
        ttft_n, ttft_p99, ttft_st, ttft_why = _judge(ids.loc[in_step, "ttft_ms"], slo_ttft_p99_ms)
        itl_vals = (
            gaps.loc[(gaps["arm"] == arm) & (gaps["users_target"] == ut), "itl_ms"]
            if len(gaps)
            else []
        )
        itl_n, itl_p99, itl_st, itl_why = _judge(itl_vals, slo_itl_p99_ms)
        win = float(g["window_s"].sum())
        tok = float(g["tokens"].sum(min_count=1))
        tps = tok / win if win > 0 else math.nan
        okc = g["cores"].notna() & (g["window_s"] > 0)
        cores = (
            float(
                (g.loc[okc, "cores"] * g.loc[okc, "window_s"]).sum() / g.loc[okc, "window_s"].sum()
            )
            if okc.any()
            else math.nan
        )
        if BROKEN in (ttft_st, itl_st):
            slo = BROKEN
        elif INSUFFICIENT in (ttft_st, itl_st):
            slo = INSUFFICIENT
        else:
            slo = MET
        why = (
            "; ".join(f"{name} {w}" for name, w in (("TTFT", ttft_why), ("ITL", itl_why)) if w)
            or ""
        )
        if slo == BROKEN and not why:
            parts = []
            if ttft_st == BROKEN:
                parts.append(f"TTFT p99 {ttft_p99:.1f} > {slo_ttft_p99_ms:g} ms")
            if itl_st == BROKEN:
                parts.append(f"ITL p99 {itl_p99:.1f} > {slo_itl_p99_ms:g} ms")
            why = "; ".join(parts)
        rows.append(
            {
                "arm": arm,
                "users_target": ut,
                "repetitions": int(g["phase"].nunique()),
                "streams": int(g["streams"].sum()),
                "ttft_n": ttft_n,
                "ttft_p99_ms": ttft_p99,
                "ttft_status": ttft_st,
                "itl_n": itl_n,
                "itl_p99_ms": itl_p99,
                "itl_status": itl_st,
                "tokens": tok,
                "window_s": win,
                "tokens_per_s": tps,
                "cpu_s": float(g["cpu_s"].sum(min_count=1)),
                "cores": cores,
                "tokens_per_s_per_core": tps / cores if cores > 0 else math.nan,
                "slo": slo,
                "why": why,
            }
        )
    return pd.DataFrame(rows, columns=_STEP_COLS)


def upto_peak(resources: pd.DataFrame) -> pd.DataFrame:
    """Samples of each (phase, pid) up to the last one at the peak connection count (after
    it connections close but the allocator keeps the memory)."""
    if resources is None or resources.empty or not {"phase", "pid"} <= set(resources):
        return resources.iloc[0:0] if resources is not None else pd.DataFrame()
    keep = []
    for _, p in resources.groupby(["phase", "pid"], observed=True, sort=False):
        p = p.sort_values("t_ns", kind="stable")
        c = M.column(p, "connections").to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.isfinite(c).any():
            continue
        last_peak = int(np.flatnonzero(c == np.nanmax(c))[-1])
        keep.append(p.iloc[: last_peak + 1])
    return pd.concat(keep) if keep else resources.iloc[0:0]


def _idle_cpu_per_connection(srv: pd.DataFrame) -> float:
    """Server cores over the hold (consecutive samples both at the peak connection count)
    ÷ that count, pooled over phases by hold time. Includes the idle server's own
    baseline CPU, so an upper bound per idle connection; NaN without a hold."""
    cpu_per_conn_s, hold_s = 0.0, 0.0
    for _, p in srv.groupby(["phase", "pid"], observed=True, sort=False):
        p = p.sort_values("t_ns", kind="stable")
        t = p["t_ns"].to_numpy(dtype=np.float64) / M.NS_PER_S
        c = M.column(p, "cpu_user_s").to_numpy(dtype=np.float64, na_value=np.nan) + M.column(
            p, "cpu_sys_s"
        ).to_numpy(dtype=np.float64, na_value=np.nan)
        n = M.column(p, "connections").to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.isfinite(n).any() or np.nanmax(n) <= 0:
            continue
        peak = np.nanmax(n)
        hold = (n[1:] == peak) & (n[:-1] == peak) & np.isfinite(np.diff(c)) & (np.diff(t) > 0)
        if hold.any():
            cpu_per_conn_s += float(np.diff(c)[hold].sum()) / peak
            hold_s += float(np.diff(t)[hold].sum())
    return cpu_per_conn_s / hold_s if hold_s > 0 else math.nan


def idle_memory(resources: pd.DataFrame | None, *, scenarios: Sequence[str] = ()) -> pd.DataFrame:
    """Per arm: bytes_per_connection, connections_per_gib, baseline_rss_bytes, r2,
    samples, conn_max, cores_per_idle_connection (see module docstring)."""
    cols = [
        "arm",
        "samples",
        "conn_min",
        "conn_max",
        "bytes_per_connection",
        "connections_per_gib",
        "baseline_rss_bytes",
        "r2",
        "cores_per_idle_connection",
    ]
    srv = R.role_rows(resources, "server") if resources is not None else pd.DataFrame()
    srv = _in_scenarios(srv, scenarios) if len(srv) else srv
    if srv is None or srv.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for arm, g in srv.groupby("arm", observed=True, sort=True):
        up = upto_peak(g)
        fit = R.rss_per_connection(up, by="arm")
        b = float(fit["rss_bytes_per_conn"].iloc[0]) if len(fit) else math.nan
        # baseline of ONE server (intercepts summed over the processes of a phase, then
        # averaged over phases: repetitions run one after the other, not side by side)
        per_phase = R.rss_per_connection(up, by="phase") if len(up) else up
        base = finite(per_phase["baseline_rss_bytes"]) if len(per_phase) else np.empty(0)
        rows.append(
            {
                "arm": arm,
                "samples": int(fit["samples"].iloc[0]) if len(fit) else 0,
                "conn_min": float(fit["conn_min"].iloc[0]) if len(fit) else math.nan,
                "conn_max": float(fit["conn_max"].iloc[0]) if len(fit) else math.nan,
                "bytes_per_connection": b,
                "connections_per_gib": GIB / b if b > 0 else math.nan,
                "baseline_rss_bytes": float(base.mean()) if base.size else math.nan,
                "r2": float(fit["r2"].iloc[0]) if len(fit) else math.nan,
                "cores_per_idle_connection": _idle_cpu_per_connection(g),
            }
        )
    return pd.DataFrame(rows, columns=cols)


def _arm_capacity(steps: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tokens_per_s_at_slo": math.nan,
        "cores_at_slo": math.nan,
        "tokens_per_s_per_core": math.nan,
        "users_at_slo": math.nan,
        "slo_broken_at_users": None,
        "bounded_below": False,
    }
    notes: list[str] = []
    out["notes"] = notes
    if steps.empty:
        notes.append("no ramp phase in this run: tokens/s per core not measured")
        return out
    steps = steps.sort_values("users_target", kind="stable")
    broken = steps[steps["slo"] == BROKEN]
    first_broken = float(broken["users_target"].iloc[0]) if len(broken) else math.inf
    below = steps[steps["users_target"] < first_broken]
    met = below[below["slo"] == MET]
    for r in steps.itertuples(index=False):
        if r.slo == INSUFFICIENT:
            notes.append(f"step {r.users_target:g} users: insufficient samples ({r.why})")
    if len(broken):
        out["slo_broken_at_users"] = first_broken
        notes.append(f"SLO broken at {first_broken:g} users ({broken['why'].iloc[0]})")
        later = steps[(steps["users_target"] > first_broken) & (steps["slo"] == MET)]
        if len(later):
            notes.append(
                "a higher step met the SLO again ("
                + ", ".join(f"{u:g}" for u in later["users_target"])
                + " users): not counted, capacity is below the first break"
            )
    if met.empty:
        notes.append("no ramp step met the SLO with enough samples: no capacity figure")
        return out
    top = met.iloc[-1]
    out.update(
        tokens_per_s_at_slo=float(top["tokens_per_s"]),
        cores_at_slo=float(top["cores"]),
        tokens_per_s_per_core=float(top["tokens_per_s_per_core"]),
        users_at_slo=float(top["users_target"]),
    )
    if not len(broken):
        out["bounded_below"] = True
        notes.append(
            f"the SLO never broke up to {float(steps['users_target'].max()):g} users: "
            "tokens/s at the SLO is at least this figure (not extrapolated); tokens/s per "
            f"core is the efficiency measured at that step ({out['cores_at_slo']:.2f} cores)"
        )
    if not math.isfinite(out["cores_at_slo"]):
        notes.append("no server CPU samples in the step window: tokens/s per core not measured")
    return out


def capacity(
    streams: pd.DataFrame,
    tokens: pd.DataFrame | None,
    resources: pd.DataFrame | None,
    *,
    slo_ttft_p99_ms: float = DEFAULT_SLO_TTFT_P99_MS,
    slo_itl_p99_ms: float = DEFAULT_SLO_ITL_P99_MS,
    ramp_scenarios: Sequence[str] = (),
    idle_scenarios: Sequence[str] = (),
) -> dict[str, Any]:
    """Capacity within the SLO per arm, JSON-able (NaN → None).

    ``{"slo": {...}, "arms": {arm: {tokens_per_s_at_slo, cores_at_slo,
    tokens_per_s_per_core, users_at_slo, slo_broken_at_users, bounded_below,
    connections_per_gib, bytes_per_connection, baseline_rss_bytes, rss_fit_r2,
    cores_per_idle_connection, notes, steps}}}``.
    """
    steps = ramp_steps(
        streams,
        tokens,
        resources,
        slo_ttft_p99_ms=slo_ttft_p99_ms,
        slo_itl_p99_ms=slo_itl_p99_ms,
        scenarios=ramp_scenarios,
    )
    idle = idle_memory(resources, scenarios=idle_scenarios)
    arms = sorted(set(steps["arm"].astype(object)) | set(idle["arm"].astype(object)))
    out_arms: dict[str, Any] = {}
    for arm in arms:
        st = steps[steps["arm"] == arm]
        a = _arm_capacity(st)
        im = idle[idle["arm"] == arm]
        if len(im):
            r = im.iloc[0]
            a.update(
                connections_per_gib=float(r["connections_per_gib"]),
                bytes_per_connection=float(r["bytes_per_connection"]),
                baseline_rss_bytes=float(r["baseline_rss_bytes"]),
                rss_fit_r2=float(r["r2"]),
                cores_per_idle_connection=float(r["cores_per_idle_connection"]),
            )
            why = V.rss_fit(
                a["bytes_per_connection"] / 1024, a["rss_fit_r2"], r["conn_min"], r["conn_max"]
            )
            if why:  # the validity rule of every memory-per-connection figure
                a["notes"].append(f"idle connections: memory per connection not published ({why})")
                a.update(connections_per_gib=math.nan, bytes_per_connection=math.nan)
                a["rss_fit_invalid"] = why
        else:
            a.update(
                connections_per_gib=math.nan,
                bytes_per_connection=math.nan,
                baseline_rss_bytes=math.nan,
                rss_fit_r2=math.nan,
                cores_per_idle_connection=math.nan,
            )
            a["notes"].append(
                "no scenario holding connections idle in this run: connections per GiB not measured"
            )
        a["steps"] = st.drop(columns=["arm"]).to_dict("records")
        out_arms[str(arm)] = a
    return to_jsonable(
        {
            "slo": {"ttft_p99_ms": slo_ttft_p99_ms, "itl_p99_ms": slo_itl_p99_ms},
            "p99_min_samples": min_samples(99),
            "ramp_scenarios": list(ramp_scenarios),
            "idle_scenarios": list(idle_scenarios),
            "arms": out_arms,
        }
    )


def capacity_of_run(data: Any, **kw: Any) -> dict[str, Any]:
    """:func:`capacity` of a RunData (analysis.load)."""
    return capacity(data.streams, data.tokens, data.resources, **kw)


def _f(v: Any, fmt: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/m"
    return fmt.format(v)


def capacity_rows(cap: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the capacity table (for text and markdown)."""
    head = [
        "arm",
        "tokens/s at SLO",
        "cores",
        "tokens/s per core",
        "at users",
        "SLO broke at",
        "KiB/conn (idle)",
        "conns per GiB",
    ]
    rows = []
    for arm, a in (cap.get("arms") or {}).items():
        lb = "≥ " if a.get("bounded_below") else ""
        tps = _f(a.get("tokens_per_s_at_slo"), "{:,.0f}")
        tpc = _f(a.get("tokens_per_s_per_core"), "{:,.0f}")
        b = a.get("bytes_per_connection")
        rows.append(
            [
                arm,
                lb + tps if tps != "n/m" else tps,
                _f(a.get("cores_at_slo"), "{:.2f}"),
                tpc,
                _f(a.get("users_at_slo"), "{:g}"),
                _f(a.get("slo_broken_at_users"), "{:g}") if a.get("slo_broken_at_users") else "—",
                _f(b / 1024 if isinstance(b, int | float) else None, "{:.1f}"),
                _f(a.get("connections_per_gib"), "{:,.0f}"),
            ]
        )
    return head, rows


def format_capacity(cap: Mapping[str, Any]) -> str:
    """Plain-text table of :func:`capacity` with the SLO and the notes."""
    slo = cap.get("slo") or {}
    head, rows = capacity_rows(cap)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        f"capacity within the SLO (TTFT p99 ≤ {slo.get('ttft_p99_ms', float('nan')):g} ms, "
        f"ITL p99 ≤ {slo.get('itl_p99_ms', float('nan')):g} ms)",
        "  ".join(
            h.rjust(w) if i else h.ljust(w)
            for i, (h, w) in enumerate(zip(head, widths, strict=True))
        ),
        "  ".join("-" * w for w in widths),
    ]
    for r in rows:
        lines.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    for arm, a in (cap.get("arms") or {}).items():
        for n in a.get("notes") or []:
            lines.append(f"  {arm}: {n}")
    lines.append("≥ = the ramp never broke the SLO: a lower bound, not extrapolated.")
    return "\n".join(lines)


def capacity_markdown(cap: Mapping[str, Any] | None) -> str:
    """The report's "Capacity within the SLO" block (Markdown table + notes)."""
    if not cap or not cap.get("arms"):
        return (
            "### Capacity within the SLO\n\nNot measured in this run (needs a ramp scenario "
            "and one that holds connections idle)."
        )
    slo = cap.get("slo") or {}
    head, rows = capacity_rows(cap)

    def row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    lines = [
        "### Capacity within the SLO",
        "",
        f"SLO: TTFT p99 ≤ {slo.get('ttft_p99_ms', math.nan):g} ms and ITL p99 ≤ "
        f"{slo.get('itl_p99_ms', math.nan):g} ms per ramp step (repetitions pooled; a p99 "
        f"needs {cap.get('p99_min_samples', min_samples(99))} samples). Tokens/s per core = "
        "tokens/s ÷ server cores used in that step; connections per GiB = 2^30 ÷ the RSS "
        "slope per open connection in the scenarios that hold connections idle. The VM cost "
        "model sizes "
        "instances from these figures.",
        "",
        row(head),
        row(["---"] * len(head)),
        *(row(r) for r in rows),
        "",
    ]
    for arm, a in cap["arms"].items():
        for n in a.get("notes") or []:
            lines.append(f"- {arm}: {n}")
    lines.append("- ≥: the ramp never broke the SLO, so the figure is a lower bound.")
    return "\n".join(lines)
