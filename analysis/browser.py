"""The browser arms (issue 16): what a user of a real browser gets, per client API.

Pure functions of a run's records and manifest; each returns a table (or a figure) for
the report. The browser arms' rows are ordinary streams / tokens / connections /
resources rows (loadtests/browser writes them through the same part writer as Locust),
so latency and integrity come from the same functions as every arm's; what is new is:

* `clock_table`: how well each page's clock was mapped onto the harness clock (the
  page-clock resolution, the bound on the mapping error, the drift between the map taken
  before and after the load) — from the manifest's ``browser_load.<phase>``;
* `latency_table`: TTFT, ITL and delivery latency per (scenario, browser arm), with sample
  counts (percentiles gated like everywhere else);
* `recovery_table`: per (scenario, arm) the streams that lost their connection, drops,
  time from a drop to the next token, how many finished ok, tokens lost and duplicated,
  and the lines of page code the client's recovery took (``client.recovery_lines`` of
  the manifest, counted from the page sources);
* `resource_table`: Chromium's memory and CPU per stream in flight — least-squares slopes
  of the browser's summed RSS (every Chromium process; the Python harness and any
  Playwright driver excluded; time held apart) and summed CPU % against the streams in flight at
  each sample, with the renderer's and network service's private memory (USS) apart;
  ``kind`` says whether the phase's streams were idle (no token due within the phase) or
  streaming;
* `origin_limit_table`: the most streams in flight at once and TTFT of the first six vs
  the rest — HTTP/1.1's 6 connections per host in load (scenario browser-origin-limit);
* `c5_browser`: claim C5 judged on the browser arms (see its docstring);
* `recovery_figure`, `memory_figure`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.legacy import phase_columns_from_names
from analysis.metrics import column, reconnect_gaps, token_gaps
from analysis.resources import linear_fit
from analysis.results import RunSummary, arms_in
from analysis.stats import describe, finite
from core.arms import get_arm, is_known, sort_arms

#: Roles of the browser's own processes in the resources table (loadtests/browser/
#: procsample.py); a Playwright Node.js driver ("browser-driver") and the harness
#: ("client") are instrumentation, not what a user's browser spends.
BROWSER_PROCESS_ROLES = (
    "browser-main",
    "browser-renderer",
    "browser-network",
    "browser-gpu",
    "browser-zygote",
    "browser-utility",
    "browser-other",
)
#: HTTP/1.1 connections per host in Chromium (the limit of claim C7).
H1_LIMIT = 6
NS_PER_MS = 1e6


def is_browser_arm(arm: Any) -> bool:
    return isinstance(arm, str) and is_known(arm) and get_arm(arm).is_browser


def browser_arms(streams: pd.DataFrame | None) -> list[str]:
    """The browser arms that have stream rows in this run, in display order."""
    if streams is None or streams.empty or "arm" not in streams:
        return []
    return sort_arms([a for a in streams["arm"].astype(object).unique() if is_browser_arm(a)])


def _browser_rows(df: pd.DataFrame | None) -> pd.DataFrame:
    """The rows of browser arms, with ``scenario`` = the analysis group (``group`` when the
    run was loaded by analysis.load; else the scenario column, derived from the phase name
    for a version 1 table)."""
    if df is None or df.empty or "arm" not in df:
        return pd.DataFrame()
    mask = np.array([is_browser_arm(a) for a in df["arm"].astype(object)], dtype=bool)
    out = df[mask].copy()
    if "group" in out:
        out["scenario"] = out["group"].astype(object)
    elif "scenario" not in out or out["scenario"].isna().all():
        out = phase_columns_from_names(out.drop(columns=["scenario"], errors="ignore"))
    return out


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    """Rows by scenario (when there is that column), then arms in display order."""
    if df.empty:
        return df.reset_index(drop=True)
    order = {a: i for i, a in enumerate(sort_arms(set(df["arm"])))}
    keys = ["scenario", "_order"] if "scenario" in df else ["_order"]
    out = df.assign(_order=df["arm"].map(order)).sort_values(keys, kind="stable")
    return out.drop(columns="_order").reset_index(drop=True)


def _raw(manifest: Any) -> Mapping[str, Any]:
    """The manifest as read (an analysis.manifest.Manifest keeps it in ``raw``)."""
    raw = getattr(manifest, "raw", manifest)
    return raw if isinstance(raw, Mapping) else {}


def browser_records(manifest: Any) -> dict[str, dict[str, Any]]:
    """phase → the browser load generator's record (manifest ``browser_load``)."""
    recs = _raw(manifest).get("browser_load") or {}
    return {str(k): v for k, v in recs.items() if isinstance(v, Mapping)}


# --------------------------------------------------------------------------- the clock


def clock_table(manifest: Any) -> pd.DataFrame:
    """One row per page of every browser phase: the page clock's resolution (µs), whether
    the page was cross-origin isolated, the mapping's error bound (± µs), the fastest round
    trip (µs), and the drift between the maps before and after the load (µs)."""
    cols = [
        "phase",
        "page",
        "users",
        "resolution_us",
        "cross_origin_isolated",
        "clock_bound_us",
        "rtt_min_us",
        "samples",
        "drift_us",
    ]
    rows = []
    for phase, rec in browser_records(manifest).items():
        for p in rec.get("pages") or []:
            clock = p.get("clock") or {}
            drift = p.get("clock_drift_ns")
            rows.append(
                {
                    "phase": phase,
                    "page": p.get("page"),
                    "users": p.get("users"),
                    "resolution_us": _us(p.get("resolution_ms"), 1e3),
                    "cross_origin_isolated": p.get("cross_origin_isolated"),
                    "clock_bound_us": _us(clock.get("half_width_ns"), 1e-3),
                    "rtt_min_us": _us(clock.get("rtt_min_ns"), 1e-3),
                    "samples": clock.get("samples"),
                    "drift_us": _us(drift, 1e-3),
                }
            )
    return pd.DataFrame(rows, columns=cols)


def _us(v: Any, scale: float) -> float:
    return float(v) * scale if isinstance(v, int | float) and not isinstance(v, bool) else math.nan


# --------------------------------------------------------------------------- latency


def latency_table(streams: pd.DataFrame, tokens: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, browser arm): streams, TTFT n/p50/p95, ITL n/p50/p99, delivery
    latency n/p50/p99 (ms; percentiles NaN below their sample gate)."""
    cols = [
        "scenario",
        "arm",
        "streams",
        "ttft_n",
        "ttft_p50_ms",
        "ttft_p95_ms",
        "itl_n",
        "itl_p50_ms",
        "itl_p99_ms",
        "delivery_n",
        "delivery_p50_ms",
        "delivery_p99_ms",
    ]
    st = _browser_rows(streams)
    if st.empty:
        return pd.DataFrame(columns=cols)
    tk = tokens[tokens["stream_uid"].isin(st["stream_uid"])] if tokens is not None else None
    gaps = token_gaps(tk, st) if tk is not None else pd.DataFrame()
    rows = []
    for (sc, arm), grp in st.groupby(["scenario", "arm"], observed=True, sort=True):
        ttft = describe((grp["t_first_ns"] - grp["t_send_ns"]) / NS_PER_MS)
        uids = set(grp["stream_uid"])
        g = gaps[gaps["stream_uid"].astype(object).isin(uids)] if not gaps.empty else gaps
        itl = describe(g["itl_ms"] if not g.empty else [])
        t = tk[tk["stream_uid"].isin(uids)] if tk is not None else pd.DataFrame()
        dl = (t["t_recv_ns"] - t["t_server_ns"]) / NS_PER_MS if not t.empty else []
        dv = describe(dl)
        rows.append(
            {
                "scenario": sc,
                "arm": arm,
                "streams": len(grp),
                "ttft_n": ttft["n"],
                "ttft_p50_ms": ttft["p50"],
                "ttft_p95_ms": ttft["p95"],
                "itl_n": itl["n"],
                "itl_p50_ms": itl["p50"],
                "itl_p99_ms": itl["p99"],
                "delivery_n": dv["n"],
                "delivery_p50_ms": dv["p50"],
                "delivery_p99_ms": dv["p99"],
            }
        )
    return _sorted(pd.DataFrame(rows, columns=cols))


# --------------------------------------------------------------------------- recovery


def recovery_table(
    streams: pd.DataFrame, tokens: pd.DataFrame, manifest: Any = None
) -> pd.DataFrame:
    """Per (scenario, browser arm) with at least one dropped stream: streams, streams
    dropped, drops (reconnects made), share finished ok, tokens lost / duplicated, drop →
    next token p50 / max (ms; NaN when nothing came after the drop), and the client's
    lines of code and recovery lines (from the manifest)."""
    cols = [
        "scenario",
        "arm",
        "streams",
        "dropped",
        "reconnects",
        "ok_share",
        "lost",
        "lost_per_dropped",
        "dup",
        "gap_n",
        "gap_p50_ms",
        "gap_max_ms",
        "recovery_lines",
        "code_lines",
        "retry_ms",
    ]
    st = _browser_rows(streams)
    if st.empty:
        return pd.DataFrame(columns=cols)
    gaps = reconnect_gaps(st, tokens)
    gaps = gaps.merge(st[["stream_uid", "scenario"]], on="stream_uid", how="left")
    code = _client_code(manifest)
    rows = []
    for (sc, arm), grp in st.groupby(["scenario", "arm"], observed=True, sort=True):
        dropped = grp[grp["t_drop_ns"].notna()]
        if dropped.empty:
            continue
        g = gaps[(gaps["scenario"] == sc) & (gaps["arm"].astype(object) == arm)]
        gap = finite(g["gap_ms"])
        lost = int(finite(dropped["n_lost"]).sum())
        info = code.get(arm, {})
        rows.append(
            {
                "scenario": sc,
                "arm": arm,
                "streams": len(grp),
                "dropped": len(dropped),
                "reconnects": int(finite(dropped["reconnects"]).sum()),
                "ok_share": float((dropped["outcome"].astype(object) == "ok").mean()),
                "lost": lost,
                "lost_per_dropped": lost / len(dropped),
                "dup": int(finite(dropped["n_dup"]).sum()),
                "gap_n": int(gap.size),
                "gap_p50_ms": float(np.median(gap)) if gap.size else math.nan,
                "gap_max_ms": float(gap.max()) if gap.size else math.nan,
                "recovery_lines": info.get("recovery_lines"),
                "code_lines": info.get("code_lines"),
                "retry_ms": _retry_ms(manifest, sc),
            }
        )
    return _sorted(pd.DataFrame(rows, columns=cols))


def recovery_rows(summary: RunSummary, manifest: Any) -> pd.DataFrame:
    """The columns of `recovery_table` that claim C5 needs, from a run's typed summary
    (analysis.results) instead of its records: per group whose configuration drops streams
    (server drops, client aborts) or cuts connections (network faults) × browser arm with
    a dropped stream."""
    cols = [
        "scenario",
        "arm",
        "dropped",
        "reconnects",
        "ok_share",
        "lost",
        "dup",
        "gap_p50_ms",
        "recovery_lines",
        "code_lines",
        "retry_ms",
    ]
    code = _client_code(manifest)
    rows = []
    groups = dict.fromkeys([*summary.groups("reconnects"), *summary.groups("network_faults")])
    for g, arm, a in arms_in(summary, list(groups)):
        rc = a.reconnect
        if not is_browser_arm(arm) or not rc.streams_dropped:
            continue
        gap = rc.gap_ms.p50
        rows.append(
            {
                "scenario": g,
                "arm": arm,
                "dropped": rc.streams_dropped,
                "reconnects": rc.reconnects,
                "ok_share": rc.outcomes.get("ok", 0) / rc.streams_dropped,
                "lost": a.integrity.lost if a.integrity else 0,
                "dup": a.integrity.dup if a.integrity else 0,
                "gap_p50_ms": math.nan if gap is None else float(gap),
                "recovery_lines": code.get(arm, {}).get("recovery_lines"),
                "code_lines": code.get(arm, {}).get("code_lines"),
                "retry_ms": _retry_ms(manifest, g),
            }
        )
    return _sorted(pd.DataFrame(rows, columns=cols))


def _client_code(manifest: Any) -> dict[str, dict[str, Any]]:
    """arm → the client code record of its (first) browser phase."""
    out: dict[str, dict[str, Any]] = {}
    for phase, rec in browser_records(manifest).items():
        parts = phase.split("/")
        if len(parts) >= 2 and isinstance(rec.get("client"), Mapping):
            out.setdefault(parts[1], dict(rec["client"]))
    return out


def code_table(manifest: Any) -> pd.DataFrame:
    """Per browser arm that ran: its browser API, lines of page code (with the files it
    uses, e.g. the fetch clients' SSE parser) and how many of them are recovery code."""
    cols = ["arm", "api", "method", "code_lines", "recovery_lines", "resumes", "file"]
    rows = [
        {"arm": arm, **{k: c.get(k) for k in cols[1:]}} for arm, c in _client_code(manifest).items()
    ]
    return _sorted(pd.DataFrame(rows, columns=cols))


def _retry_ms(manifest: Any, scenario: str) -> float | None:
    """The server's `retry:` of that scenario (EventSource waits that long to reconnect)."""
    m = _raw(manifest)
    scenario = scenario.split(".", 1)[0]  # a group "<scenario>.<variant>"
    for sc in [m.get("scenario"), *((m.get("suite") or {}).get("scenarios") or [])]:
        if isinstance(sc, Mapping) and sc.get("name") == scenario:
            v = (sc.get("server") or {}).get("retry_ms")
            return float(v) if isinstance(v, int | float) else None
    return None


# --------------------------------------------------------------------------- resources


#: Process kinds shown apart: CPU of each, private memory (USS) of the first two.
KINDS = ("renderer", "network", "main")


def _total(s: pd.Series) -> float:
    """Sum over a sample's processes; NaN when one of them has no value (a first CPU
    sample, a failed read) — a partial sum would read as a drop."""
    return float(s.sum()) if s.notna().all() else math.nan


def browser_samples(resources: pd.DataFrame) -> pd.DataFrame:
    """One row per sample instant of a browser phase: scenario, arm, phase, t_ns, streams
    in flight, ``rss_bytes`` summed over the browser's processes, ``uss_<kind>`` (private
    memory of the renderers / the network service; NaN when not recorded), ``cpu_pct``
    summed and ``cpu_<kind>`` per kind (NaN for a process's first sample, which has no
    interval yet).

    Why RSS for the total: summed, it counts a page shared by two of Chromium's processes
    twice (an upper bound per stream), but it is steady. The sum of PSS moves with every
    other chromium on the machine (it splits the binary's pages with them) and the browser
    process's USS halves for a sample whenever a helper it forks still shares its pages.
    USS is used only per kind, for the renderer and network service, where it is steady
    (a 3-sample running median per process takes one-sample dips out).
    """
    cols = [
        "scenario",
        "arm",
        "phase",
        "t_ns",
        "streams",
        "rss_bytes",
        *(f"uss_{k}" for k in KINDS[:2]),
        "cpu_pct",
        *(f"cpu_{k}" for k in KINDS),
    ]
    rs = _browser_rows(resources)
    if not rs.empty:
        rs = rs[rs["role"].astype(object).isin(BROWSER_PROCESS_ROLES)]
    if rs.empty:
        return pd.DataFrame(columns=cols)
    keys = ["scenario", "arm", "phase", "t_ns"]
    rs = rs.sort_values("t_ns")
    per = rs.groupby(keys, observed=True, sort=True).agg(
        streams=("connections", "max"), rss_bytes=("rss_bytes", _total), cpu_pct=("cpu_pct", _total)
    )
    uss = column(rs, "uss_bytes").astype("Float64")
    rs = rs.assign(
        uss=uss.groupby([rs["phase"], rs["pid"]], observed=True).transform(
            lambda v: v.rolling(3, center=True, min_periods=1).median()
        )
    )
    for kind in KINDS:
        sub = rs[rs["role"].astype(object) == f"browser-{kind}"]
        per[f"cpu_{kind}"] = sub.groupby(keys, observed=True)["cpu_pct"].agg(_total)
        if kind in KINDS[:2]:
            per[f"uss_{kind}"] = sub.groupby(keys, observed=True)["uss"].agg(_total)
    return per.reset_index()[cols]


def memory_fit(samples: pd.DataFrame, column: str = "rss_bytes") -> tuple[float, float, float]:
    """(bytes per stream, bytes per second of drift, r²) of ``memory = a + b·streams +
    c·t``: a browser's heap also grows with time (garbage between collections), which a
    ramp up would otherwise put on the streams; NaN without spread in the streams."""
    x = samples["streams"].to_numpy(dtype=np.float64, na_value=np.nan)
    t_ns = samples["t_ns"].to_numpy(dtype=np.float64, na_value=np.nan)
    t = (t_ns - np.nanmin(t_ns)) / 1e9 if t_ns.size else t_ns
    y = samples[column].to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(t)
    x, t, y = x[ok], t[ok], y[ok]
    if x.size < 4 or np.ptp(x) == 0:
        return math.nan, math.nan, math.nan
    design = np.column_stack([np.ones_like(x), x, t])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else math.nan
    return float(coef[1]), float(coef[2]), r2


def _after_warmup(samples: pd.DataFrame) -> pd.DataFrame:
    """The samples with a stream in flight, less each phase's first one: the first streams
    of a page also compile its script and open its first connections (measured: a core for
    that second), which is no stream's running cost."""
    busy = samples[samples["streams"].fillna(0) > 0]
    first = busy.groupby("phase", observed=True)["t_ns"].transform("min")
    return busy[busy["t_ns"] > first]


def resource_table(resources: pd.DataFrame, streams: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (scenario, browser arm): Chromium's memory and CPU per stream in flight.

    From `browser_samples`, over the samples with a stream in flight after the first one of
    each phase (`_after_warmup`):
    ``kib_per_stream`` from `memory_fit` on the summed RSS (time held apart:
    ``drift_kib_per_s``); ``kib_per_stream_renderer`` / ``_network`` the same on those
    processes' private memory (USS); ``cpu_pct_per_stream`` the least-squares slope of the
    summed CPU % against the streams, and per process kind (renderer, network service,
    browser process); ``idle_mib`` the median RSS with no stream
    (pages open). Needs the stream count to vary (a ramp); otherwise NaN. ``kind``: "idle"
    when no token arrived in the scenario's phases, else "streaming".
    """
    cols = [
        "scenario",
        "arm",
        "kind",
        "samples",
        "streams_min",
        "streams_max",
        "kib_per_stream",
        "drift_kib_per_s",
        "memory_r2",
        *(f"kib_per_stream_{k}" for k in KINDS[:2]),
        "idle_mib",
        "cpu_pct_per_stream",
        "cpu_r2",
        *(f"cpu_pct_per_stream_{k}" for k in KINDS),
    ]
    per = browser_samples(resources)
    if per.empty:
        return pd.DataFrame(columns=cols)
    tokens_by_phase: dict[Any, Any] = {}
    if streams is not None and not streams.empty:
        tokens_by_phase = streams.groupby("phase", observed=True)["n_received"].sum().to_dict()
    rows = []
    for (sc, arm), grp in per.groupby(["scenario", "arm"], observed=True, sort=True):
        busy = _after_warmup(grp)
        x = busy["streams"].to_numpy(dtype=np.float64, na_value=np.nan)
        mem_s, drift, mem_r2 = memory_fit(busy)
        cpu_s, _, cpu_r2 = linear_fit(x, busy["cpu_pct"].to_numpy(np.float64, na_value=np.nan))
        detail = {
            f"kib_per_stream_{k}": memory_fit(busy, f"uss_{k}")[0] / 1024.0 for k in KINDS[:2]
        }
        for k in KINDS:
            y = busy[f"cpu_{k}"].to_numpy(dtype=np.float64, na_value=np.nan)
            detail[f"cpu_pct_per_stream_{k}"] = linear_fit(x, y)[0]
        empty = finite(grp.loc[grp["streams"].fillna(0) == 0, "rss_bytes"])
        tokens = sum(int(tokens_by_phase.get(p, 0) or 0) for p in set(grp["phase"]))
        rows.append(
            {
                "scenario": sc,
                "arm": arm,
                "kind": "idle" if tokens_by_phase and tokens == 0 else "streaming",
                "samples": len(busy),
                "streams_min": float(np.nanmin(x)) if x.size else math.nan,
                "streams_max": float(np.nanmax(x)) if x.size else math.nan,
                "kib_per_stream": mem_s / 1024.0,
                "drift_kib_per_s": drift / 1024.0,
                "memory_r2": mem_r2,
                "idle_mib": float(np.median(empty)) / 2**20 if empty.size else math.nan,
                "cpu_pct_per_stream": cpu_s,
                "cpu_r2": cpu_r2,
                **detail,
            }
        )
    return _sorted(pd.DataFrame(rows, columns=cols))


# --------------------------------------------------------------------------- origin limit


def max_in_flight(grp: pd.DataFrame) -> int:
    """The most streams between their request and their end at the same time."""
    edges: list[tuple[int, int]] = []
    for a, b in zip(column(grp, "t_open_ns"), column(grp, "t_end_ns"), strict=True):
        if pd.isna(a):
            continue
        edges.append((int(a), 1))
        edges.append((int(b) if not pd.isna(b) else 2**62, -1))
    best = cur = 0
    for _, d in sorted(edges, key=lambda e: (e[0], e[1])):  # ends before starts at a tie
        cur += d
        best = max(best, cur)
    return best


def origin_limit_table(
    streams: pd.DataFrame, *, scenario: str = "browser-origin-limit"
) -> pd.DataFrame:
    """Per browser arm of `scenario`: streams, the most open at once (request answered, not
    ended), TTFT p50 of the first six streams to get a token and of the rest."""
    cols = ["arm", "streams", "max_open_at_once", "ttft_p50_first6_ms", "ttft_p50_rest_ms"]
    st = _browser_rows(streams)
    if st.empty:
        return pd.DataFrame(columns=cols)
    st = st[st["scenario"] == scenario]
    rows = []
    for arm, grp in st.groupby("arm", observed=True, sort=True):
        ttft = np.sort(finite((grp["t_first_ns"] - grp["t_send_ns"]) / NS_PER_MS))
        rest = ttft[H1_LIMIT:]
        rows.append(
            {
                "arm": arm,
                "streams": len(grp),
                "max_open_at_once": max_in_flight(grp),
                "ttft_p50_first6_ms": float(np.median(ttft[:H1_LIMIT])) if ttft.size else math.nan,
                "ttft_p50_rest_ms": float(np.median(rest)) if rest.size else math.nan,
            }
        )
    return _sorted(pd.DataFrame(rows, columns=cols))


# --------------------------------------------------------------------------- claim C5


#: Recovered: every dropped stream finished ok with no token lost or repeated.
RECOVERED_SHARE = 0.99
#: EventSource honours `retry:` when its drop → next token gap p50, less the time a page
#: that reconnects at once took on the same network (the fastest hand-written client's gap
#: p50 in the same scenario; 0 without one), is within this much of the retry delay.
RETRY_WITHIN_MS = 100.0


def _reconnect_ms(recovery: pd.DataFrame, scenario: str) -> float:
    """How long reconnecting took in `scenario` without a retry wait: the smallest gap p50
    of its other browser arms (0 when none has one)."""
    same = recovery[(recovery["scenario"] == scenario) & (recovery["arm"] != "browser-eventsource")]
    gaps = finite(same["gap_p50_ms"]) if not same.empty else np.array([])
    return float(gaps.min()) if gaps.size else 0.0


def c5_browser(recovery: pd.DataFrame) -> dict[str, Any] | None:
    """Claim C5 on the browser arms (None when no browser arm had a drop).

    ``status``: *holds* when EventSource recovered by itself (≥ 99 % of dropped streams
    finished ok, 0 lost, 0 duplicated, drop → next token ≈ `retry:`) and the WebSocket
    client needed recovery code to do the same; *depends* (on the client API) when, in
    addition, fetch — what LLM web apps use — recovered only with hand-written resume or
    lost tokens without it; *does not hold* when EventSource did not recover.
    ``numbers``: per arm the figures behind it.
    """
    if recovery is None or recovery.empty:
        return None
    numbers: dict[str, str] = {}
    state: dict[str, dict[str, Any]] = {}
    for r in recovery.to_dict("records"):
        arm = r["arm"]
        ok = r["ok_share"] >= RECOVERED_SHARE and r["lost"] == 0 and r["dup"] == 0
        state.setdefault(arm, {"ok": True, "lines": r["recovery_lines"], "lost": 0, "gap": []})
        s = state[arm]
        s["ok"] = s["ok"] and ok
        s["lost"] += r["lost"]
        s["gap"].append((r["gap_p50_ms"] - _reconnect_ms(recovery, r["scenario"]), r["retry_ms"]))
        numbers[f"{r['scenario']}/{arm}"] = (
            f"{r['dropped']} dropped, {r['ok_share']:.0%} finished ok, {r['lost']} lost, "
            f"{r['dup']} duplicated, drop → next token p50 {_ms(r['gap_p50_ms'])}"
            + (f" (retry: {r['retry_ms']:g} ms)" if r["retry_ms"] else "")
            + f", recovery code {r['recovery_lines']} lines"
        )
    es = state.get("browser-eventsource")
    if es is None:
        return None
    honours = all(
        not (math.isfinite(g) and rt) or abs(g - rt) <= RETRY_WITHIN_MS for g, rt in es["gap"]
    )
    rule = (
        f"recovered = ≥ {RECOVERED_SHARE:.0%} of dropped streams finish ok, 0 lost, 0 "
        f"duplicated; EventSource honours retry: when its gap p50, less the reconnect time "
        f"of a page that does not wait, is within {RETRY_WITHIN_MS:g} ms of it; recovery "
        "code = page lines marked as recovery"
    )
    if not es["ok"] or not honours:
        return {
            "status": "does not hold",
            "verdict": "does not hold: EventSource did not recover by itself in the browser",
            "why": rule,
            "numbers": numbers,
        }
    others = {a: s for a, s in state.items() if a != "browser-eventsource"}
    hand = [f"{a} {s['lines']} lines" for a, s in others.items() if s["ok"] and s["lines"]]
    lost = [f"{a} lost {s['lost']} tokens" for a, s in others.items() if not s["ok"]]
    text = (
        f"EventSource recovered by itself ({es['lines']} lines of page code; gap ≈ retry:)"
        + (f"; by hand: {', '.join(hand)}" if hand else "")
        + (f"; without resume: {', '.join(lost)}" if lost else "")
    )
    fetch_hand = any(a.startswith("browser-fetch") for a in others)
    status = "depends" if fetch_hand else "holds"
    verdict = (
        f"depends on the client API: {text} — fetch-streamed SSE, what LLM web apps use, "
        "gets no reconnect from the browser"
        if fetch_hand
        else f"holds in the browser: {text}"
    )
    return {"status": status, "verdict": verdict, "why": rule, "numbers": numbers}


def _ms(v: Any) -> str:
    return "n/m" if v is None or not math.isfinite(float(v)) else f"{float(v):.0f} ms"


# --------------------------------------------------------------------------- figures


def recovery_figure(streams: pd.DataFrame, tokens: pd.DataFrame) -> Any:
    """Drop → next token (ms) per browser arm and scenario, one dot per dropped stream
    (log scale); arms that never got a token after the drop are marked at the top."""
    import matplotlib.pyplot as plt

    from analysis.plots import arm_color

    st = _browser_rows(streams)
    gaps = reconnect_gaps(st, tokens) if not st.empty else pd.DataFrame()
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    arms = browser_arms(st)
    for i, arm in enumerate(arms):
        g = finite(gaps[gaps["arm"].astype(object) == arm]["gap_ms"]) if not gaps.empty else []
        never = (
            int(((gaps["arm"].astype(object) == arm) & gaps["gap_ms"].isna()).sum())
            if not gaps.empty
            else 0
        )
        jitter = np.linspace(-0.2, 0.2, len(g)) if len(g) else []
        ax.scatter(i + np.asarray(jitter), g, s=8, color=arm_color(arm), alpha=0.6)
        if never:
            ax.annotate(
                f"{never} never resumed",
                (i, 1.0),
                xycoords=("data", "axes fraction"),
                ha="center",
                va="bottom",
                fontsize=8,
            )
    ax.set_xticks(range(len(arms)), [get_arm(a).label for a in arms], rotation=10, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("drop → next token (ms)")
    ax.set_title("Browser arms: recovery after a server drop")
    fig.tight_layout()
    return fig


def memory_figure(resources: pd.DataFrame) -> Any:
    """Chromium's memory (MiB, summed over its processes) against streams in flight, one
    colour per arm, one marker per scenario."""
    import matplotlib.pyplot as plt

    from analysis.plots import arm_color

    per = browser_samples(resources)
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    markers = "osD^v"
    for i, (sc, sgrp) in enumerate(per.groupby("scenario", observed=True, sort=True)):
        for arm, grp in sgrp.groupby("arm", observed=True, sort=True):
            ax.scatter(
                grp["streams"],
                grp["rss_bytes"] / 2**20,
                s=12,
                marker=markers[i % len(markers)],
                color=arm_color(arm),
                label=f"{get_arm(arm).label} · {sc}",
                alpha=0.7,
            )
    if not per.empty:
        ax.legend(fontsize=7, loc="upper left")
    ax.set_xlabel("streams in flight")
    ax.set_ylabel("Chromium RSS (MiB, summed over its processes)")
    ax.set_title("Browser memory against open streams")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- one call


@dataclass
class BrowserResults:
    """Every browser table of a run (empty frames when no browser arm ran)."""

    arms: list[str]
    latency: pd.DataFrame
    recovery: pd.DataFrame
    code: pd.DataFrame
    resources: pd.DataFrame
    origin_limit: pd.DataFrame
    clock: pd.DataFrame
    c5: dict[str, Any] | None

    @property
    def ran(self) -> bool:
        return bool(self.arms)

    def headline(self) -> str | None:
        """One line for an executive summary (None when no browser arm ran)."""
        if not self.ran:
            return None
        parts = [f"browser arms: {', '.join(self.arms)}"]
        if not self.clock.empty:
            parts.append(f"page clocks mapped within ±{self.clock['clock_bound_us'].max():.0f} µs")
        if self.c5 is not None:
            parts.append(f"C5 in the browser: {self.c5['status']}")
        return "; ".join(parts)


def browser_results(
    streams: pd.DataFrame,
    tokens: pd.DataFrame,
    resources: pd.DataFrame | None,
    manifest: Any,
) -> BrowserResults:
    """All of the above for one run (empty tables when no browser arm ran)."""
    if not browser_arms(streams):
        empty = pd.DataFrame()
        return BrowserResults([], empty, empty, empty, empty, empty, empty, None)
    recovery = recovery_table(streams, tokens, manifest)
    return BrowserResults(
        arms=browser_arms(streams),
        latency=latency_table(streams, tokens),
        recovery=recovery,
        code=code_table(manifest),
        resources=resource_table(resources, streams) if resources is not None else pd.DataFrame(),
        origin_limit=origin_limit_table(streams),
        clock=clock_table(manifest),
        c5=c5_browser(recovery),
    )
