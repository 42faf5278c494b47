"""`summarize`: the headline figures of one run as a JSON-serialisable dict (summary.json,
the report, `ssevsws compare`), and `format_table` to print it.

Figures are grouped by *scenario* (first segment of the phase name, ``chat/sse/rep1`` →
``chat``; phases without ``/`` fall under ``"all"``), because pooling TTFT of a chat
scenario with that of a reconnect scenario would mean nothing. Within a scenario every
arm gets the same set of keys:

``streams``, ``sessions``, ``outcomes``
    number of streams, user sessions, and stream outcome counts (ok, cancelled, …).
``ttft_ms``, ``itl_ms``, ``tpot_ms``, ``e2e_ms``, ``e2e_sched_ms``, ``dispatch_delay_ms``,
``open_ms``, ``connect_ms``, ``delivery_ms``
    distributions (definitions in analysis.metrics): ``n``, ``mean``, ``p50``, ``p90``,
    ``p95``, ``p99`` (null when n is too small for that percentile, see analysis.stats),
    and ``p50_ci`` = ``[lo, hi]`` 95 % bootstrap CI of the median (ITL and delivery:
    cluster bootstrap over streams). ``n == 0`` means not measured in this run.
    TTFT/ITL/TPOT/E2E use streams with at least one content token, any outcome.
``slo_attainment``
    share of streams with outcome ok, TTFT ≤ ``slo.ttft_ms`` and TPOT ≤ ``slo.tpot_ms``.
``tokens``, ``tokens_per_s``
    content tokens received; tokens per second summed over phases ÷ their spans.
``integrity``
    sums of tokens_expected, received, unique, lost, dup, out_of_order, checksum_fail,
    checksum_missing, done.
``bytes``
    event_bytes_per_token, app_bytes_per_token, conn_bytes_per_token (metrics.bytes_per_token).
``connections``
    connections, unclosed, held_s, busy_s, idle_s, idle_share, held_s_per_session,
    idle_s_per_session, connect_ms_p50 (metrics.connection_time); closed_by: counts of
    client / server / proxy / error / unknown (proxy only through a proxy whose log names
    the close: analysis.attribution).
``server_cpu_s_per_1k_tokens``
    Σ server CPU-seconds ÷ Σ tokens in the sampled windows × 1000 (analysis.resources).
``rss_kib_per_conn``
    slope of server RSS against open connections, KiB (null without varying connections).
``client_cpu``
    cpu_pct_max, cpu_pct_median over client samples; flagged_phases (pitfall 6).
``reconnect``
    streams_dropped, reconnects, gap_ms (first drop → next token distribution),
    outcomes of the dropped streams.

``ratios``: for each arm other than the reference (``sse``), ``"sse/<arm>"`` →
metric → ``{"ratio", "lo", "hi"}``: SSE figure ÷ that arm's (bootstrap CI for medians of
distributions; point ratios for per-unit figures). ``< 1`` means SSE is lower.

``phases``: one row per (phase, arm) with its rep number and main figures;
``repetitions``: per scenario and arm, median/min/max over repetitions of per-phase
TTFT p50, ITL p50, E2E p50, tokens/s.
``capacity``: per arm, tokens/s and tokens/s per core within the SLO (ramp) and
connections per GiB (idle-hold); see analysis.capacity.
``flags`` lists what a reader must know (client CPU overload, incomplete run, lost
tokens, …); ``not_measured`` lists ``scenario/arm/metric`` with no data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import capacity as CAP
from analysis import clocks as CL
from analysis import metrics as M
from analysis import resources as R
from analysis.load import RunData, as_run_data
from analysis.stats import (
    bootstrap_ci,
    describe,
    finite,
    ratio_ci,
    repetitions_summary,
    to_jsonable,
)
from core.arms import sort_arms
from core.records import SCHEMA_VERSION
from core.runfolder import Run

REFERENCE_ARM = "sse"
ALL = "all"

#: Distribution metrics in the summary: key → (source frame, column).
DISTRIBUTIONS: dict[str, tuple[str, str]] = {
    "ttft_ms": ("streams", "ttft_ms"),
    "itl_ms": ("gaps", "itl_ms"),
    "tpot_ms": ("streams", "tpot_ms"),
    "e2e_ms": ("streams", "e2e_ms"),
    "e2e_sched_ms": ("streams", "e2e_sched_ms"),
    "dispatch_delay_ms": ("streams", "dispatch_delay_ms"),
    "open_ms": ("streams", "open_ms"),
    "connect_ms": ("streams", "connect_ms"),
    "delivery_ms": ("delivery", "delivery_ms"),
}
#: Distributions whose medians get a ratio with a bootstrap CI.
RATIO_DISTRIBUTIONS = ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms", "delivery_ms")


def _scenario(phase: Any) -> str:
    if isinstance(phase, str) and "/" in phase:
        return phase.split("/", 1)[0]
    return ALL


def _add_scenario(df: pd.DataFrame) -> pd.DataFrame:
    if df is None or df.empty or "phase" not in df:
        return df.assign(scenario=pd.Series(dtype=object)) if df is not None else df
    phases = df["phase"]
    if isinstance(phases.dtype, pd.CategoricalDtype):  # token-level frames: map categories
        sc = pd.Categorical([_scenario(c) for c in phases.cat.categories])
        codes = phases.cat.codes.to_numpy()
        lookup = np.append(np.asarray(sc.codes), -1)  # code −1 (missing) stays missing
        values = lookup[np.where(codes < 0, len(lookup) - 1, codes)]
        return df.assign(scenario=pd.Categorical.from_codes(values, categories=sc.categories))
    phases = phases.astype(object)
    mapping = {p: _scenario(p) for p in pd.unique(phases)}
    return df.assign(scenario=phases.map(mapping).to_numpy())


def _row_dict(df: pd.DataFrame, drop: tuple[str, ...]) -> dict[str, Any]:
    if df is None or df.empty:
        return {}
    return {k: v for k, v in df.iloc[0].to_dict().items() if k not in drop}


class _Frames:
    """Derived frames shared by every part of the summary (computed once)."""

    def __init__(self, data: RunData, slo_ttft_ms: float, slo_tpot_ms: float) -> None:
        self.data = data
        streams = data.streams
        self.streams = _add_scenario(M.stream_metrics(streams, data.connections))
        self.gaps = _add_scenario(M.token_gaps(data.tokens, streams))
        self.clock_excluded = CL.delivery_exclusions(data.manifest)
        self.delivery = _add_scenario(M.delivery_latency(data.tokens, streams, self.clock_excluded))
        self.connections = _add_scenario(data.connections)
        self.resources = _add_scenario(data.resources)
        self.slo_ttft_ms = slo_ttft_ms
        self.slo_tpot_ms = slo_tpot_ms
        self.cpu = _add_scenario(R.server_cpu(data.resources, streams, data.tokens))
        self.client = _add_scenario(R.client_cpu(data.resources))
        self.rss = R.rss_per_connection(self.resources, by=["scenario", "arm"])
        self.tput = _add_scenario(M.throughput(streams, data.tokens, by=["phase", "arm"]))
        self.reconnect = _add_scenario(M.reconnect_gaps(streams, data.tokens))

        self.bytes = M.bytes_per_token(
            self.streams, data.tokens, self.connections, by=["scenario", "arm"]
        )
        self._index: dict[str, dict[Any, np.ndarray]] = {}

    def frame(self, name: str) -> pd.DataFrame:
        return getattr(self, name)

    def sub(self, name: str, scenario: str, arm: str) -> pd.DataFrame:
        """Rows of frame `name` for one scenario and arm (group indices cached: the token
        level frames have millions of rows)."""
        df = self.frame(name)
        if df is None or df.empty:
            return df
        if name not in self._index:
            self._index[name] = df.groupby(["scenario", "arm"], observed=True, sort=False).indices
        rows = self._index[name].get((scenario, arm))
        return df.iloc[rows if rows is not None else []]


def _distribution(
    values: pd.Series, groups: np.ndarray | None, n_boot: int, seed: int
) -> dict[str, Any]:
    d: dict[str, Any] = describe(values)
    if d["n"] and not math.isnan(d["p50"]):
        _, lo, hi = bootstrap_ci(values, 0.5, groups=groups, n_boot=n_boot, seed=seed)
        d["p50_ci"] = [lo, hi]
    else:
        d["p50_ci"] = [math.nan, math.nan]
    return d


def _groups(df: pd.DataFrame) -> np.ndarray | None:
    if "stream_uid" in df and isinstance(df["stream_uid"].dtype, pd.CategoricalDtype):
        return df["stream_uid"].cat.codes.to_numpy()
    return None


def _arm_summary(
    f: _Frames, scenario: str, arm: str, n_boot: int, seed: int
) -> tuple[dict[str, Any], list[str]]:
    s = f.sub("streams", scenario, arm)
    out: dict[str, Any] = {"streams": len(s)}
    missing: list[str] = []
    out["sessions"] = int(M.sessions(s, "arm").sum()) if len(s) else 0
    oc = M.outcome_counts(s, "arm")
    out["outcomes"] = _row_dict(oc, ("arm",))
    for key, (src, col) in DISTRIBUTIONS.items():
        df = f.sub(src, scenario, arm)
        values = df[col] if df is not None and col in df else pd.Series(dtype=float)
        groups = _groups(df) if src in ("gaps", "delivery") and df is not None else None
        out[key] = _distribution(values, groups, n_boot, seed)
        if out[key]["n"] == 0:
            missing.append(key)
    slo = M.slo_attainment(s, "arm", slo_ttft_ms=f.slo_ttft_ms, slo_tpot_ms=f.slo_tpot_ms)
    out["slo_attainment"] = float(slo["slo_attainment"].iloc[0]) if len(slo) else math.nan
    tp = f.sub("tput", scenario, arm)
    out["tokens"] = float(finite(s["n_received"]).sum()) if len(s) else 0.0
    span = float(finite(tp["span_s"]).sum()) if tp is not None and len(tp) else 0.0
    out["tokens_per_s"] = float(tp["tokens"].sum()) / span if span > 0 else math.nan
    out["integrity"] = _row_dict(M.integrity(s, "arm"), ("arm",))
    out["bytes"] = _row_dict(f.sub("bytes", scenario, arm), ("scenario", "arm", "tokens"))
    conns = f.sub("connections", scenario, arm)
    ct = M.connection_time(conns, s, "arm")
    out["connections"] = _row_dict(ct, ("arm",))
    if not out["connections"]:
        missing.append("connections")
    else:
        out["connections"]["closed_by"] = M.closed_by_counts(conns)
    cpu = f.sub("cpu", scenario, arm)
    tok = float(finite(cpu["tokens"]).sum()) if cpu is not None and len(cpu) else 0.0
    out["server_cpu_s_per_1k_tokens"] = (
        float(cpu["cpu_s"].sum()) / tok * 1000.0 if tok > 0 else math.nan
    )
    if math.isnan(out["server_cpu_s_per_1k_tokens"]):
        missing.append("server_cpu_s_per_1k_tokens")
    rss = f.sub("rss", scenario, arm)
    out["rss_kib_per_conn"] = (
        float(rss["kib_per_conn"].iloc[0]) if rss is not None and len(rss) else math.nan
    )
    if math.isnan(out["rss_kib_per_conn"]):
        missing.append("rss_kib_per_conn")
    cl = f.sub("client", scenario, arm)
    if cl is not None and len(cl):
        out["client_cpu"] = {
            "cpu_pct_max": float(np.nanmax(cl["cpu_pct_max"])),
            "cpu_pct_median": float(np.nanmedian(cl["cpu_pct_median"])),
            "flagged_phases": sorted(str(p) for p in cl.loc[cl["flag"].astype(bool), "phase"]),
        }
    else:
        out["client_cpu"] = {
            "cpu_pct_max": math.nan,
            "cpu_pct_median": math.nan,
            "flagged_phases": [],
        }
        missing.append("client_cpu")
    rc = f.sub("reconnect", scenario, arm)
    rc = rc if rc is not None else pd.DataFrame()
    out["reconnect"] = {
        "streams_dropped": len(rc),
        "reconnects": int(finite(s["reconnects"]).sum()) if "reconnects" in s and len(s) else 0,
        "gap_ms": describe(rc.get("gap_ms", [])),
        "outcomes": rc["outcome"].astype(object).value_counts().to_dict() if len(rc) else {},
    }
    return out, missing


def _ratios(
    f: _Frames, scenario: str, arms: dict[str, dict[str, Any]], n_boot: int, seed: int
) -> dict[str, Any]:
    if REFERENCE_ARM not in arms:
        return {}
    out: dict[str, Any] = {}
    ref = arms[REFERENCE_ARM]
    for arm, summ in arms.items():
        if arm == REFERENCE_ARM:
            continue
        r: dict[str, Any] = {}
        for key in RATIO_DISTRIBUTIONS:
            src, col = DISTRIBUTIONS[key]
            a = f.sub(src, scenario, REFERENCE_ARM)
            b = f.sub(src, scenario, arm)
            if a is None or b is None or a.empty or b.empty:
                r[f"{key}_p50"] = {
                    "ratio": math.nan,
                    "lo": math.nan,
                    "hi": math.nan,
                    "n_a": 0 if a is None else len(a),
                    "n_b": 0 if b is None else len(b),
                }
                continue
            clustered = src in ("gaps", "delivery")
            rc = ratio_ci(
                a[col],
                b[col],
                0.5,
                groups_a=_groups(a) if clustered else None,
                groups_b=_groups(b) if clustered else None,
                n_boot=n_boot,
                seed=seed,
            )
            r[f"{key}_p50"] = rc
        for key, getter in _POINT_RATIOS.items():
            va, vb = getter(ref), getter(summ)
            ratio = va / vb if _ok(va) and _ok(vb) and vb != 0 else math.nan
            r[key] = {"ratio": ratio, "lo": math.nan, "hi": math.nan}
        out[f"{REFERENCE_ARM}/{arm}"] = r
    return out


def _ok(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


_POINT_RATIOS = {
    "tokens_per_s": lambda a: a.get("tokens_per_s"),
    "server_cpu_s_per_1k_tokens": lambda a: a.get("server_cpu_s_per_1k_tokens"),
    "rss_kib_per_conn": lambda a: a.get("rss_kib_per_conn"),
    "app_bytes_per_token": lambda a: a.get("bytes", {}).get("app_bytes_per_token"),
    "held_s_per_session": lambda a: a.get("connections", {}).get("held_s_per_session"),
    "idle_share": lambda a: a.get("connections", {}).get("idle_share"),
}


def _phase_rows(f: _Frames) -> pd.DataFrame:
    s = f.streams
    cols = [
        "scenario",
        "phase",
        "arm",
        "rep",
        "streams",
        "ttft_p50",
        "itl_p50",
        "e2e_p50",
        "tokens_per_s",
        "cpu_s_per_1k_tokens",
        "client_cpu_flag",
    ]
    if s is None or s.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    itl = f.gaps
    itl_idx = itl.groupby(["phase", "arm"], observed=True, sort=False).indices if len(itl) else {}
    itl_values = itl["itl_ms"].to_numpy() if len(itl) else np.empty(0)
    for (phase, arm), grp in s.groupby(["phase", "arm"], observed=True, sort=True):
        g_itl = itl_values[itl_idx.get((phase, arm), np.empty(0, dtype=np.int64))]
        tp = f.tput[(f.tput["phase"] == phase) & (f.tput["arm"] == arm)]
        cpu = f.cpu[(f.cpu["phase"] == phase) & (f.cpu["arm"] == arm)] if len(f.cpu) else f.cpu
        cl = (
            f.client[(f.client["phase"] == phase) & (f.client["arm"] == arm)]
            if len(f.client)
            else f.client
        )
        rows.append(
            {
                "scenario": _scenario(phase),
                "phase": phase,
                "arm": arm,
                "rep": M.parse_rep(phase),
                "streams": len(grp),
                "ttft_p50": describe(grp["ttft_ms"])["p50"],
                "itl_p50": describe(g_itl)["p50"],
                "e2e_p50": describe(grp["e2e_ms"])["p50"],
                "tokens_per_s": float(tp["tokens_per_s"].iloc[0]) if len(tp) else math.nan,
                "cpu_s_per_1k_tokens": float(cpu["cpu_s_per_1k_tokens"].iloc[0])
                if len(cpu)
                else math.nan,
                "client_cpu_flag": bool(cl["flag"].any()) if len(cl) else None,
            }
        )
    return pd.DataFrame(rows, columns=cols)


def summarize(
    source: RunData | Run | Mapping[str, Any] | Path | str,
    *,
    slo_ttft_ms: float = 1000.0,
    slo_tpot_ms: float = 50.0,
    n_boot: int = 1000,
    seed: int = 0,
    capacity_slo: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Headline figures of a run (see module docstring for every key). JSON-serialisable:
    figures that could not be computed are None, never NaN."""
    data = as_run_data(source)
    f = _Frames(data, slo_ttft_ms, slo_tpot_ms)
    man = data.manifest
    flags: list[str] = []
    not_measured: list[str] = []
    if man.get("status") and man.get("status") != "complete":
        reason = man.get("incomplete_reason")
        flags.append(f"run incomplete{': ' + str(reason) if reason else ''}")
    scenarios: dict[str, Any] = {}
    s = f.streams
    if s is None or s.empty:
        flags.append("no streams recorded in this run: nothing was measured")
    flags += CL.exclusion_flags(f.clock_excluded)
    pairs = (
        s[["scenario", "arm"]].astype(object).drop_duplicates().itertuples(index=False)
        if len(s)
        else []
    )
    by_scenario: dict[str, list[str]] = {}
    for sc, arm in pairs:
        by_scenario.setdefault(sc, []).append(arm)
    phases = _phase_rows(f)
    for sc in sorted(by_scenario):
        arms: dict[str, Any] = {}
        for arm in sort_arms(by_scenario[sc]):
            summ, missing = _arm_summary(f, sc, arm, n_boot, seed)
            arms[arm] = summ
            not_measured += [f"{sc}/{arm}/{m}" for m in missing]
            for p in summ["client_cpu"]["flagged_phases"]:
                flags.append(
                    f"{p}: client CPU above {R.CLIENT_CPU_THRESHOLD:g}% for at least "
                    f"{R.CLIENT_CPU_MIN_SHARE:.0%} of samples — client timings may drift"
                )
            integ = summ["integrity"]
            if integ.get("lost", 0) or integ.get("checksum_fail", 0) or integ.get("dup", 0):
                flags.append(
                    f"{sc}/{arm}: integrity — lost {integ.get('lost', 0)}, dup "
                    f"{integ.get('dup', 0)}, out of order {integ.get('out_of_order', 0)}, "
                    f"checksum failures {integ.get('checksum_fail', 0)}"
                )
            if summ["connections"].get("unclosed"):
                flags.append(
                    f"{sc}/{arm}: {summ['connections']['unclosed']} connection(s) without a "
                    "close stamp (excluded from connection-seconds)"
                )
        ph = phases[phases["scenario"] == sc]
        reps = repetitions_summary(ph, ["ttft_p50", "itl_p50", "e2e_p50", "tokens_per_s"])
        scenarios[sc] = {
            "arms": arms,
            "ratios": _ratios(f, sc, arms, n_boot, seed),
            "repetitions": {
                str(r["arm"]): {k: v for k, v in r.items() if k != "arm"}
                for r in reps.to_dict("records")
            },
        }
    out = {
        "schema_version": man.get("schema_version", SCHEMA_VERSION),
        "run_id": data.run_id,
        "status": man.get("status"),
        "scenario_name": man.get("scenario_name"),
        "reference_arm": REFERENCE_ARM,
        "slo": {"ttft_ms": slo_ttft_ms, "tpot_ms": slo_tpot_ms},
        "bootstrap": {"n_boot": n_boot, "seed": seed, "conf": 0.95},
        "scenarios": scenarios,
        "phases": phases.to_dict("records"),
        "flags": flags,
        "not_measured": not_measured,
        # capacity within the SLO (analysis.capacity); capacity_slo: slo_ttft_p99_ms, …
        "capacity": CAP.capacity(
            data.streams, data.tokens, data.resources, **dict(capacity_slo or {})
        ),
    }
    return to_jsonable(out)


# --------------------------------------------------------------------------- text table

_ROWS: list[tuple[str, tuple[str, ...], str]] = [
    ("streams", ("streams",), "{:.0f}"),
    ("TTFT p50 ms", ("ttft_ms", "p50"), "{:.1f}"),
    ("TTFT p99 ms", ("ttft_ms", "p99"), "{:.1f}"),
    ("ITL p50 ms", ("itl_ms", "p50"), "{:.2f}"),
    ("ITL p99 ms", ("itl_ms", "p99"), "{:.2f}"),
    ("TPOT p50 ms", ("tpot_ms", "p50"), "{:.2f}"),
    ("E2E p50 ms", ("e2e_ms", "p50"), "{:.0f}"),
    ("E2E p99 ms", ("e2e_ms", "p99"), "{:.0f}"),
    ("delivery p50 ms", ("delivery_ms", "p50"), "{:.2f}"),
    ("delivery p99 ms", ("delivery_ms", "p99"), "{:.2f}"),
    ("dispatch delay p99 ms", ("dispatch_delay_ms", "p99"), "{:.1f}"),
    ("connect p50 ms", ("connect_ms", "p50"), "{:.2f}"),
    ("SLO attainment", ("slo_attainment",), "{:.1%}"),
    ("tokens/s", ("tokens_per_s",), "{:,.0f}"),
    ("lost tokens", ("integrity", "lost"), "{:.0f}"),
    ("dup tokens", ("integrity", "dup"), "{:.0f}"),
    ("checksum failures", ("integrity", "checksum_fail"), "{:.0f}"),
    ("app bytes/token", ("bytes", "app_bytes_per_token"), "{:.1f}"),
    ("conn-s/session", ("connections", "held_s_per_session"), "{:.2f}"),
    ("idle share", ("connections", "idle_share"), "{:.1%}"),
    ("server CPU s/1k tok", ("server_cpu_s_per_1k_tokens",), "{:.4f}"),
    ("RSS KiB/conn", ("rss_kib_per_conn",), "{:.1f}"),
    ("client CPU max %", ("client_cpu", "cpu_pct_max"), "{:.0f}"),
]
_RATIO_KEYS = {
    "TTFT p50 ms": "ttft_ms_p50",
    "ITL p50 ms": "itl_ms_p50",
    "TPOT p50 ms": "tpot_ms_p50",
    "E2E p50 ms": "e2e_ms_p50",
    "delivery p50 ms": "delivery_ms_p50",
    "tokens/s": "tokens_per_s",
    "app bytes/token": "app_bytes_per_token",
    "conn-s/session": "held_s_per_session",
    "idle share": "idle_share",
    "server CPU s/1k tok": "server_cpu_s_per_1k_tokens",
    "RSS KiB/conn": "rss_kib_per_conn",
}


def _get(d: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    cur: Any = d
    for p in path:
        if not isinstance(cur, Mapping) or p not in cur:
            return None
        cur = cur[p]
    return cur


def _cell(arm: Mapping[str, Any], path: tuple[str, ...], fmt: str) -> str:
    v = _get(arm, path)
    if v is None:
        if len(path) == 2 and isinstance(arm.get(path[0]), Mapping) and "n" in arm[path[0]]:
            n = arm[path[0]]["n"]
            return f"n/a (n={n})" if n else "n/m"
        return "n/m"
    try:
        return fmt.format(v)
    except (TypeError, ValueError):
        return str(v)


def _ratio_cell(r: Mapping[str, Any] | None) -> str:
    if not r or r.get("ratio") is None:
        return "n/a" if r and r.get("n_a") and r.get("n_b") else "n/m"
    txt = f"{r['ratio']:.3f}"
    if r.get("lo") is not None and r.get("hi") is not None:
        txt += f" [{r['lo']:.3f}, {r['hi']:.3f}]"
    return txt


def format_table(summary: Mapping[str, Any]) -> str:
    """Plain-text tables (one per scenario): metrics × arms, plus SSE/arm ratios with CIs."""
    lines: list[str] = []
    head = f"run {summary.get('run_id') or '?'}  status {summary.get('status') or '?'}"
    lines.append(head)
    for sc, block in (summary.get("scenarios") or {}).items():
        arms = block.get("arms", {})
        ratio_names = list(block.get("ratios", {}))
        header = ["scenario " + sc, *arms, *ratio_names]
        body = []
        for label, path, fmt in _ROWS:
            row = [label] + [_cell(a, path, fmt) for a in arms.values()]
            for rn in ratio_names:
                key = _RATIO_KEYS.get(label)
                row.append(_ratio_cell(block["ratios"][rn].get(key)) if key else "")
            body.append(row)
        widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
        lines.append("")
        lines.append(
            "  ".join(
                h.ljust(w) if i == 0 else h.rjust(w)
                for i, (h, w) in enumerate(zip(header, widths, strict=True))
            )
        )
        lines.append("  ".join("-" * w for w in widths))
        for r in body:
            lines.append(
                "  ".join(
                    c.ljust(w) if i == 0 else c.rjust(w)
                    for i, (c, w) in enumerate(zip(r, widths, strict=True))
                )
            )
    lines.append("")
    lines.append("n/m = not measured in this run; n/a (n=…) = too few samples for that percentile;")
    lines.append("ratios = sse ÷ arm, median ratios with 95% bootstrap CI.")
    for fl in summary.get("flags") or []:
        lines.append(f"! {fl}")
    return "\n".join(lines)
