"""`summarize`: the headline figures of one run as a typed `analysis.results.RunSummary`
(summary.json is its ``to_json()``), for the report, the claims and `ssevsws compare`.

Figures are grouped by *scenario group* — ``<scenario>`` or ``<scenario>.<variant>`` with
a ``[proxy]`` variant, from the records' ``scenario`` and ``variant`` columns — because
pooling TTFT of a chat scenario with that of a reconnect scenario would mean nothing.
Within a group every arm gets the same figures (analysis.results.ArmSummary; definitions
in docs/methodology.md, "Metrics"):

``streams``, ``sessions``, ``outcomes``
    number of streams, user sessions, and stream outcome counts (ok, cancelled, …).
``ttft_ms``, ``itl_ms``, ``tpot_ms``, ``e2e_ms``, ``e2e_sched_ms``, ``dispatch_delay_ms``,
``open_ms``, ``connect_ms``, ``delivery_ms``, ``e2e_cancelled_ms``
    distributions (E2E over completed streams, the cancelled ones apart): ``n``,
    ``mean``, ``p50``, ``p90``, ``p95``, ``p99`` (None when n is too small for that
    percentile, see analysis.stats), and ``p50_ci`` = 95 % bootstrap CI of
    the median (ITL and delivery: cluster bootstrap over streams). ``n == 0`` means not
    measured in this run. TTFT/ITL/TPOT/E2E use streams with at least one content token.
``slo_attainment``
    share of the streams that finished ok (or were cancelled / stopped by the client after
    their first token: judged on what they delivered) with TTFT ≤ their scheduled TTFT +
    ``slo.ttft_over_schedule_ms`` and TPOT ≤ their scheduled gap +
    ``slo.tpot_over_schedule_ms`` (``slo.ttft_ms`` / ``slo.tpot_ms`` for a stream without a
    recorded schedule); analysis.metrics.slo_attainment.
``tokens``, ``tokens_per_s``
    content tokens received; tokens per second summed over phases ÷ their spans.
``integrity``, ``bytes``, ``connections``
    token integrity sums, bytes per token, connection-seconds and idle share, who closed
    the connections (proxy only through a proxy whose log names the close).
``server_cpu_s_per_1k_tokens``, ``rss_kib_per_conn``, ``client_cpu``
    server CPU per 1k tokens, RSS slope per open connection (fit up to the peak connection
    count), load-generator CPU (pitfall 6).
``invalid``
    metric key → why that figure is not published (analysis.validity); it is None then.
``reconnect``
    streams_dropped, reconnects, gap_ms (first drop → next token), their outcomes.

Per group also ``ratios`` (``"<ref>/<arm>"`` → key → the reference SSE arm's figure ÷ that
arm's, the reference being core.arms.reference_sse_arm — ``sse``, else the SSE arm of the
WS arm's format: bootstrap CI
for distribution medians, point ratios for the per-unit rows of analysis.tables.METRICS),
``repetitions`` (median/min/max over repetitions of per-phase figures) and ``traits`` (what
the group's configuration exercises, analysis.traits). Run-wide: ``phases`` (one row per
phase and arm), ``capacity`` (analysis.capacity, on the ramp and idle-holding groups),
``flags`` (what a reader must know) and ``not_measured`` (``group/arm/metric``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import capacity as CAP
from analysis import chains as CH
from analysis import clocks as CL
from analysis import metrics as M
from analysis import resources as R
from analysis import validity as V
from analysis.load import RunData, as_run_data
from analysis.results import (
    ArmSummary,
    ChainPair,
    ChainSummary,
    PhaseRow,
    RatioCI,
    RunSummary,
    ScenarioSummary,
)
from analysis.stats import (
    bootstrap_ci,
    describe,
    finite,
    ratio_ci,
    repetitions_summary,
    to_jsonable,
)
from analysis.tables import METRICS, format_summary_table, point_ratios
from analysis.traits import ScenarioTraits, traits_of
from core.arms import get_arm, is_known, reference_sse_arm, sort_arms
from core.records import SCHEMA_VERSION
from core.runfolder import Run

REFERENCE_ARM = "sse"
GROUP = "group"

#: Distribution metrics in the summary: key → (source frame, column).
DISTRIBUTIONS: dict[str, tuple[str, str]] = {
    "ttft_ms": ("streams", "ttft_ms"),
    "ttfb_ms": ("streams", "ttfb_ms"),
    "first_event_ms": ("streams", "first_event_ms"),
    "itl_ms": ("gaps", "itl_ms"),
    "tpot_ms": ("streams", "tpot_ms"),
    "e2e_ms": ("streams_ok", "e2e_ms"),
    "e2e_sched_ms": ("streams_ok", "e2e_sched_ms"),
    "e2e_cancelled_ms": ("streams_cancelled", "e2e_ms"),
    "dispatch_delay_ms": ("streams", "dispatch_delay_ms"),
    "open_ms": ("streams", "open_ms"),
    "connect_ms": ("streams", "connect_ms"),
    "delivery_ms": ("delivery", "delivery_ms"),
}
#: SLO headroom over each stream's own schedule (docs/methodology.md, "SLO attainment"): on
#: the chat schedule (first token 300 ms, a token every 20 ms) TTFT ≤ 1 s and TPOT ≤ 50 ms.
SLO_TTFT_OVER_SCHEDULE_MS = 700.0
SLO_TPOT_OVER_SCHEDULE_MS = 30.0

#: Distributions whose medians get a ratio with a bootstrap CI.
RATIO_DISTRIBUTIONS = ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms", "delivery_ms")


def _row_dict(df: pd.DataFrame, drop: tuple[str, ...]) -> dict[str, Any]:
    if df is None or df.empty:
        return {}
    return {k: v for k, v in df.iloc[0].to_dict().items() if k not in drop}


class _Frames:
    """Derived frames shared by every part of the summary (computed once)."""

    def __init__(self, data: RunData, slo: Mapping[str, float]) -> None:
        self.data = data
        streams = data.streams
        self.streams = M.stream_metrics(streams, data.connections)
        outcome = M.column(self.streams, "outcome").astype(object)
        self.streams_ok = self.streams[(outcome == "ok").to_numpy(dtype=bool)]
        self.streams_cancelled = self.streams[(outcome == "cancelled").to_numpy(dtype=bool)]
        self.gaps = M.token_gaps(data.tokens, streams)
        self.clock_excluded = CL.delivery_exclusions(data.manifest)
        self.delivery = M.delivery_latency(data.tokens, streams, self.clock_excluded)
        self.connections = data.connections
        self.resources = data.resources
        self.slo = slo
        by = [GROUP, "phase", "arm"]
        self.cpu = R.server_cpu(data.resources, streams, data.tokens, by=by)
        self.client = R.client_cpu(data.resources, by=by)
        # up to each process's peak connection count, as the idle-hold capacity fit
        self.rss = R.rss_per_connection(
            CAP.upto_peak(R.role_rows(self.resources, "server")), by=[GROUP, "arm"]
        )
        self.tput = M.throughput(streams, data.tokens, by=by)
        self.reconnect = M.reconnect_gaps(streams, data.tokens)
        self.bytes = M.bytes_per_token(
            self.streams, data.tokens, self.connections, by=[GROUP, "arm"]
        )
        self._index: dict[str, dict[Any, np.ndarray]] = {}

    def frame(self, name: str) -> pd.DataFrame:
        return getattr(self, name)

    def sub(self, name: str, group: str, arm: str) -> pd.DataFrame:
        """Rows of frame `name` for one group and arm (group indices cached: the token
        level frames have millions of rows)."""
        df = self.frame(name)
        if df is None or df.empty or GROUP not in df:
            return df.iloc[0:0] if df is not None else df
        if name not in self._index:
            self._index[name] = df.groupby([GROUP, "arm"], observed=True, sort=False).indices
        rows = self._index[name].get((group, arm))
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
    f: _Frames, group: str, arm: str, n_boot: int, seed: int
) -> tuple[ArmSummary, list[str]]:
    s = f.sub("streams", group, arm)
    out: dict[str, Any] = {"streams": len(s)}
    missing: list[str] = []
    out["sessions"] = int(M.sessions(s, "arm").sum()) if len(s) else 0
    oc = M.outcome_counts(s, "arm")
    out["outcomes"] = _row_dict(oc, ("arm",))
    for key, (src, col) in DISTRIBUTIONS.items():
        df = f.sub(src, group, arm)
        values = df[col] if df is not None and col in df else pd.Series(dtype=float)
        groups = _groups(df) if src in ("gaps", "delivery") and df is not None else None
        out[key] = _distribution(values, groups, n_boot, seed)
        if out[key]["n"] == 0:
            missing.append(key)
    invalid: dict[str, str] = {}
    slo = M.slo_attainment(s, "arm", **f.slo)
    out["slo_attainment"] = float(slo["slo_attainment"].iloc[0]) if len(slo) else math.nan
    judged = int(slo["streams"].iloc[0]) if len(slo) else 0
    if len(s) and (why := V.share(judged)):
        invalid["slo_attainment"] = why
        out["slo_attainment"] = math.nan
    tp = f.sub("tput", group, arm)
    out["tokens"] = float(finite(s["n_received"]).sum()) if len(s) else 0.0
    span = float(finite(tp["span_s"]).sum()) if tp is not None and len(tp) else 0.0
    out["tokens_per_s"] = float(tp["tokens"].sum()) / span if span > 0 else math.nan
    # a server whose schedule is unknown (your own endpoint) gives no expected lengths:
    # integrity is not measured there, not "0 lost"
    scheduled = len(s) > 0 and bool(M.column(s, "tokens_expected").notna().any())
    out["integrity"] = _row_dict(M.integrity(s, "arm"), ("arm",)) if scheduled else {}
    out["bytes"] = _row_dict(f.sub("bytes", group, arm), (GROUP, "arm", "tokens"))
    conns = f.sub("connections", group, arm)
    out["connections"] = _row_dict(M.connection_time(conns, s, "arm"), ("arm",))
    if not out["connections"]:
        missing.append("connections")
    else:
        out["connections"]["closed_by"] = M.closed_by_counts(conns)
    cpu = f.sub("cpu", group, arm)
    tok = float(finite(cpu["tokens"]).sum()) if cpu is not None and len(cpu) else 0.0
    out["server_cpu_s_per_1k_tokens"] = (
        float(cpu["cpu_s"].sum()) / tok * 1000.0 if tok > 0 else math.nan
    )
    if math.isnan(out["server_cpu_s_per_1k_tokens"]):
        missing.append("server_cpu_s_per_1k_tokens")
    elif why := V.cpu_per_token(tok):
        invalid["server_cpu_s_per_1k_tokens"] = why
        out["server_cpu_s_per_1k_tokens"] = math.nan
    rss = f.sub("rss", group, arm)
    out["rss_kib_per_conn"] = math.nan
    if rss is not None and len(rss):
        fit = rss.iloc[0]
        kib = float(fit["kib_per_conn"])
        why = V.rss_fit(kib, float(fit["r2"]), float(fit["conn_min"]), float(fit["conn_max"]))
        if why:
            invalid["rss_kib_per_conn"] = why
        else:
            out["rss_kib_per_conn"] = kib
    else:
        missing.append("rss_kib_per_conn")
    cl = f.sub("client", group, arm)
    if cl is not None and len(cl):
        out["client_cpu"] = {
            "cpu_pct_max": float(np.nanmax(cl["cpu_pct_max"])),
            "cpu_pct_median": float(np.nanmedian(cl["cpu_pct_median"])),
            "flagged_phases": sorted(str(p) for p in cl.loc[cl["flag"].astype(bool), "phase"]),
        }
    else:
        missing.append("client_cpu")
    rc = f.sub("reconnect", group, arm)
    rc = rc if rc is not None else pd.DataFrame()
    out["reconnect"] = {
        "streams_dropped": len(rc),
        "reconnects": int(finite(s["reconnects"]).sum()) if "reconnects" in s and len(s) else 0,
        "gap_ms": describe(rc.get("gap_ms", [])),
        "outcomes": rc["outcome"].astype(object).value_counts().to_dict() if len(rc) else {},
    }
    summ = ArmSummary.from_json(to_jsonable(out))
    for m in METRICS:  # no headline figure is negative
        if m.key not in invalid and (why := V.non_negative(m.get(summ))):
            invalid[m.key] = why
    return replace(summ, invalid=invalid), missing


def _ratios(
    f: _Frames, group: str, arms: Mapping[str, ArmSummary], n_boot: int, seed: int
) -> dict[str, dict[str, RatioCI]]:
    ref = reference_sse_arm(list(arms))
    if ref is None:
        return {}
    out: dict[str, dict[str, RatioCI]] = {}
    for arm, summ in arms.items():
        if arm == ref:
            continue
        r: dict[str, RatioCI] = {}
        for key in RATIO_DISTRIBUTIONS:
            src, col = DISTRIBUTIONS[key]
            a = f.sub(src, group, ref)
            b = f.sub(src, group, arm)
            if a is None or b is None or a.empty or b.empty:
                n_a, n_b = (0 if x is None else len(x) for x in (a, b))
                r[f"{key}_p50"] = RatioCI(n_a=n_a, n_b=n_b)
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
            r[f"{key}_p50"] = RatioCI.from_json(to_jsonable(rc))
        r.update(point_ratios(arms[ref], summ))
        out[f"{ref}/{arm}"] = r
    return out


def _phase_rows(f: _Frames) -> list[PhaseRow]:
    s = f.streams
    if s is None or s.empty:
        return []
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
        reps = grp["rep"].dropna() if "rep" in grp else []
        row = {
            "scenario": grp[GROUP].iloc[0] if GROUP in grp else None,
            "phase": phase,
            "arm": arm,
            "rep": int(reps.iloc[0]) if len(reps) else None,
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
        rows.append(PhaseRow.from_json(to_jsonable(row)))
    return rows


def _group_traits(data: RunData) -> dict[str, ScenarioTraits]:
    """group → traits of its recorded configuration (analysis.traits), for every group
    with rows in any table."""
    triples: set[tuple[str, Any, Any]] = set()
    for df in (data.streams, data.connections, data.resources):
        if df is None or df.empty or GROUP not in df:
            continue
        cols = df[[GROUP, "scenario", "variant"]].astype(object).drop_duplicates()
        for g, sc, var in cols.itertuples(index=False):
            if isinstance(g, str):
                triples.add(
                    (g, sc if isinstance(sc, str) else None, var if isinstance(var, str) else None)
                )
    return {g: traits_of(data.manifest, sc, var) for g, sc, var in sorted(triples, key=str)}


class _Chains:
    """The tool-chain groups' turn and chain frames (analysis.chains), computed once."""

    def __init__(self, data: RunData, traits: Mapping[str, ScenarioTraits]) -> None:
        groups = [g for g, t in traits.items() if t.tool_chain]
        s = data.streams
        rows = s[s[GROUP].astype(object).isin(groups)] if len(groups) and GROUP in s else s[:0]
        k = {}
        for g in groups:
            sc = data.manifest.scenario(traits[g].scenario)
            if sc is not None:
                k[g] = sc.session.turns
        self.groups = set(groups)
        self.turns = CH.turn_frame(rows)
        self.chains = CH.chain_frame(self.turns, data.connections, k)

    def arm(self, group: str, arm: str, n_boot: int, seed: int) -> ChainSummary | None:
        if group not in self.groups:
            return None
        t = self.turns[(self.turns["group"] == group) & (self.turns["arm"] == arm)]
        c = self.chains[(self.chains["group"] == group) & (self.chains["arm"] == arm)]
        ok = t[t["outcome"] == "ok"]
        later = ok[ok["turn"] >= 1]
        new = later[later["reused_conn"].fillna(True) == False]  # noqa: E712 - NA aware
        done = c[c["complete"].astype(bool)]

        def dist(values: pd.Series) -> dict[str, Any]:
            return _distribution(values, None, n_boot, seed)

        def mean(col: str) -> float | None:
            v = finite(done[col])
            return float(v.mean()) if len(v) else None

        return ChainSummary.from_json(
            to_jsonable(
                {
                    "chains": len(done),
                    "incomplete": len(c) - len(done),
                    "turns": int(done["turns"].sum()) if len(done) else 0,
                    "new_connection_turns": len(new),
                    "transport_ms": dist(later["transport_ms"]),
                    "first_transport_ms": dist(ok[ok["turn"] == 0]["transport_ms"]),
                    "new_connection_transport_ms": dist(new["transport_ms"]),
                    "to_first_ms": dist(later["to_first_ms"]),
                    "chain_s": dist(done["chain_s"]),
                    "connections_per_chain": mean("connections"),
                    "tls_handshakes_per_chain": mean("tls_handshakes"),
                }
            )
        )

    def pairs(
        self, group: str, arms: Mapping[str, ArmSummary], n_boot: int, seed: int
    ) -> dict[str, ChainPair]:
        """Each SSE arm against the WS arm of its payload format (else the first WS arm)."""
        if group not in self.groups:
            return {}
        known = [a for a in arms if is_known(a)]
        out: dict[str, ChainPair] = {}
        for a in [x for x in known if get_arm(x).is_sse]:
            ws = [x for x in known if get_arm(x).is_ws]
            same = [x for x in ws if get_arm(x).format == get_arm(a).format]
            b = (same or ws or [None])[0]
            if b is None:
                continue
            pc = CH.paired_chains(self.chains[self.chains["group"] == group], a, b)
            pt = CH.paired_turns(self.turns[self.turns["group"] == group], a, b)
            a_chains = arms[a].chains
            p50 = a_chains.chain_s.p50 if a_chains is not None else None
            saving = _distribution(pc["saving_ms"], None, n_boot, seed)
            share = saving["p50"] / (p50 * 1000.0) if p50 and len(pc) else None
            out[f"{a}/{b}"] = ChainPair.from_json(
                to_jsonable(
                    {
                        "sse": a,
                        "ws": b,
                        "chains": len(pc),
                        "chain_saving_ms": saving,
                        "turn_saving_ms": _distribution(pt["saving_ms"], None, n_boot, seed),
                        "sse_chain_s_p50": p50,
                        "saving_share": share,
                    }
                )
            )
        return out


def _flags(group: str, arm: str, summ: ArmSummary) -> list[str]:
    flags = [
        f"{p}: client CPU above {R.CLIENT_CPU_THRESHOLD:g}% for at least "
        f"{R.CLIENT_CPU_MIN_SHARE:.0%} of samples — client timings may drift"
        for p in summ.client_cpu.flagged_phases
    ]
    integ = summ.integrity
    if integ is not None and (integ.lost or integ.checksum_fail or integ.dup):
        flags.append(
            f"{group}/{arm}: integrity — lost {integ.lost}, dup {integ.dup}, out of order "
            f"{integ.out_of_order}, checksum failures {integ.checksum_fail}"
        )
    if summ.connections is not None and summ.connections.unclosed:
        flags.append(
            f"{group}/{arm}: {summ.connections.unclosed} connection(s) without a close stamp "
            "(excluded from connection-seconds)"
        )
    return flags


def summarize(
    source: RunData | Run | Mapping[str, Any] | Path | str,
    *,
    slo_ttft_ms: float = 1000.0,
    slo_tpot_ms: float = 50.0,
    ttft_over_schedule_ms: float = SLO_TTFT_OVER_SCHEDULE_MS,
    tpot_over_schedule_ms: float = SLO_TPOT_OVER_SCHEDULE_MS,
    n_boot: int = 1000,
    seed: int = 0,
    capacity_slo: Mapping[str, float] | None = None,
) -> RunSummary:
    """Headline figures of a run (see the module docstring). ``.to_json()`` is strict
    JSON: figures that could not be computed are None, never NaN."""
    data = as_run_data(source)
    slo = {
        "slo_ttft_ms": slo_ttft_ms,
        "slo_tpot_ms": slo_tpot_ms,
        "ttft_over_schedule_ms": ttft_over_schedule_ms,
        "tpot_over_schedule_ms": tpot_over_schedule_ms,
    }
    f = _Frames(data, slo)
    man = data.manifest
    flags: list[str] = []
    not_measured: list[str] = []
    if man.status not in ("complete", "unknown"):
        reason = man.status_reason
        flags.append(f"run {man.status}{': ' + reason if reason else ''}")
    s = f.streams
    if s is None or s.empty:
        flags.append("no streams recorded in this run: nothing was measured")
    flags += CL.exclusion_flags(f.clock_excluded)
    by_group: dict[str, list[str]] = {}
    if s is not None and len(s) and GROUP in s:
        for group, arm in s[[GROUP, "arm"]].astype(object).drop_duplicates().itertuples(False):
            if isinstance(group, str):
                by_group.setdefault(group, []).append(str(arm))
    traits = _group_traits(data)
    chains = _Chains(data, traits)
    phases = _phase_rows(f)
    phase_frame = pd.DataFrame([p.to_json() for p in phases])
    scenarios: dict[str, ScenarioSummary] = {}
    for group in sorted(by_group):
        arms: dict[str, ArmSummary] = {}
        for arm in sort_arms(by_group[group]):
            arms[arm], missing = _arm_summary(f, group, arm, n_boot, seed)
            arms[arm] = replace(arms[arm], chains=chains.arm(group, arm, n_boot, seed))
            not_measured += [f"{group}/{arm}/{m}" for m in missing]
            flags += _flags(group, arm, arms[arm])
        ph = phase_frame[phase_frame["scenario"] == group] if len(phase_frame) else phase_frame
        reps = repetitions_summary(ph, ["ttft_p50", "itl_p50", "e2e_p50", "tokens_per_s"])
        scenarios[group] = ScenarioSummary(
            arms=arms,
            ratios=_ratios(f, group, arms, n_boot, seed),
            repetitions={
                str(r["arm"]): {k: v for k, v in r.items() if k != "arm"}
                for r in to_jsonable(reps.to_dict("records"))
            },
            traits=traits.get(group, ScenarioTraits()),
            chain_pairs=chains.pairs(group, arms, n_boot, seed),
        )
    ramp = [g for g, t in traits.items() if t.ramp]
    idle = [g for g, t in traits.items() if t.held_idle]
    capacity = CAP.capacity(
        data.streams,
        data.tokens,
        data.resources,
        ramp_scenarios=ramp,
        idle_scenarios=idle,
        **dict(capacity_slo or {}),
    )
    return RunSummary(
        schema_version=man.schema_version or SCHEMA_VERSION,
        run_id=data.run_id,
        status=man.status if man.status != "unknown" else None,
        scenario_name=man.scenario_name,
        reference_arm=REFERENCE_ARM,
        slo={
            "ttft_ms": slo_ttft_ms,
            "tpot_ms": slo_tpot_ms,
            "ttft_over_schedule_ms": ttft_over_schedule_ms,
            "tpot_over_schedule_ms": tpot_over_schedule_ms,
        },
        bootstrap={"n_boot": n_boot, "seed": seed, "conf": 0.95},
        scenarios=scenarios,
        phases=tuple(phases),
        flags=tuple(flags),
        not_measured=tuple(not_measured),
        capacity=capacity,
    )


def format_table(summary: RunSummary | Mapping[str, Any]) -> str:
    """Plain-text tables of a summary (analysis.tables.format_summary_table)."""
    return format_summary_table(
        summary if isinstance(summary, RunSummary) else RunSummary.from_json(summary)
    )
