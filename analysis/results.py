"""Typed results of one run: what `analysis.summary.summarize` returns, what the claims,
the report and `ssevsws compare` read, and what ``summary.json`` stores.

Every class is a frozen dataclass with ``to_json()`` (plain JSON types, None where a figure
was not measured — never NaN) and ``from_json()`` (tolerant: a summary.json written by an
older version reads back with its missing keys as "not measured"). The JSON keys are the
ones summary.json has always had; metric definitions are in docs/methodology.md.

    RunSummary
      scenarios: {group: ScenarioSummary}      group = "<scenario>" or "<scenario>.<variant>"
        arms: {arm: ArmSummary}
          ttft_ms, itl_ms, …: Distribution     n, mean, p50 … p99, p50_ci
          integrity: Integrity, bytes: WireBytes, connections: ConnectionUse,
          client_cpu: ClientCpu, reconnect: ReconnectSummary,
          chains: ChainSummary (agent tool chains only)
        ratios: {"sse/<arm>": {key: RatioCI}}
        chain_pairs: {"<sse arm>/<ws arm>": ChainPair}   the same chains on both arms
        traits: ScenarioTraits                 what the scenario's configuration exercises
      phases: [PhaseRow]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from analysis.legacy import group_identity
from analysis.traits import ScenarioTraits, traits_of

if TYPE_CHECKING:  # pragma: no cover
    from analysis.manifest import Manifest

__all__ = [
    "DISTRIBUTION_KEYS",
    "ArmSummary",
    "ChainPair",
    "ChainSummary",
    "ClientCpu",
    "ConnectionUse",
    "Distribution",
    "Integrity",
    "PhaseRow",
    "RatioCI",
    "ReconnectSummary",
    "RunSummary",
    "ScenarioSummary",
    "WireBytes",
]

#: The distributions of an arm, in summary.json order (definitions: docs/methodology.md).
DISTRIBUTION_KEYS = (
    "ttft_ms",
    "ttfb_ms",
    "first_event_ms",
    "itl_ms",
    "tpot_ms",
    "e2e_ms",
    "e2e_sched_ms",
    "e2e_cancelled_ms",
    "dispatch_delay_ms",
    "open_ms",
    "connect_ms",
    "delivery_ms",
)


def num(v: Any) -> float | None:
    """A finite float, else None (bools, strings, NaN and inf are not numbers here)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def count(v: Any) -> int:
    """A non-negative count; 0 when absent."""
    x = num(v)
    return int(x) if x is not None else 0


def _counts(d: Any) -> dict[str, int]:
    return {str(k): count(v) for k, v in (d or {}).items()} if isinstance(d, Mapping) else {}


def _mapping(d: Any) -> Mapping[str, Any]:
    return d if isinstance(d, Mapping) else {}


def _numbers_from_json(cls: type, d: Any) -> Any:
    """A dataclass whose fields are all ``float | None`` (or counts) from a mapping."""
    d = _mapping(d)
    kw = {}
    for f in fields(cls):
        v = d.get(f.name)
        kw[f.name] = count(v) if f.type == "int" else num(v)
    return cls(**kw)


def _numbers_to_json(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


# --------------------------------------------------------------------------- distributions


@dataclass(frozen=True)
class Distribution:
    """A sample summarised: ``n`` finite values, their mean and gated percentiles (None when
    n is too small for that percentile: no p95 below 72 samples, no p99 below 368), and the
    95 % bootstrap CI of the median (``p50_ci``; None when the summary has none)."""

    n: int = 0
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    p50_ci: tuple[float | None, float | None] | None = None

    @property
    def measured(self) -> bool:
        return self.n > 0

    def stat(self, name: str) -> float | None:
        """``"p50"``, ``"p99"``, ``"mean"``… by name."""
        v = getattr(self, name, None)
        return v if isinstance(v, float) else None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "n": self.n,
            "mean": self.mean,
            "p50": self.p50,
            "p90": self.p90,
            "p95": self.p95,
            "p99": self.p99,
        }
        if self.p50_ci is not None:
            d["p50_ci"] = list(self.p50_ci)
        return d

    @classmethod
    def from_json(cls, d: Any) -> Distribution:
        d = _mapping(d)
        ci = d.get("p50_ci")
        p50_ci = (num(ci[0]), num(ci[1])) if isinstance(ci, list | tuple) and len(ci) == 2 else None
        return cls(
            n=count(d.get("n")),
            mean=num(d.get("mean")),
            p50=num(d.get("p50")),
            p90=num(d.get("p90")),
            p95=num(d.get("p95")),
            p99=num(d.get("p99")),
            p50_ci=p50_ci,
        )


@dataclass(frozen=True)
class RatioCI:
    """SSE figure ÷ another arm's: a median ratio with its bootstrap CI (``lo``, ``hi``), or
    a point ratio (no CI) for per-unit figures. ``n_a``/``n_b``: samples on each side."""

    ratio: float | None = None
    lo: float | None = None
    hi: float | None = None
    n_a: int | None = None
    n_b: int | None = None

    @property
    def has_ci(self) -> bool:
        return self.lo is not None and self.hi is not None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"ratio": self.ratio, "lo": self.lo, "hi": self.hi}
        if self.n_a is not None or self.n_b is not None:
            d.update(n_a=self.n_a, n_b=self.n_b)
        return d

    @classmethod
    def from_json(cls, d: Any) -> RatioCI:
        d = _mapping(d)
        n_a, n_b = num(d.get("n_a")), num(d.get("n_b"))
        return cls(
            ratio=num(d.get("ratio")),
            lo=num(d.get("lo")),
            hi=num(d.get("hi")),
            n_a=int(n_a) if n_a is not None else None,
            n_b=int(n_b) if n_b is not None else None,
        )


# --------------------------------------------------------------------------- per-arm blocks


@dataclass(frozen=True)
class Integrity:
    """Token integrity summed over streams (analysis.metrics.integrity)."""

    streams: int = 0
    tokens_expected: int = 0
    received: int = 0
    unique: int = 0
    lost: int = 0
    dup: int = 0
    out_of_order: int = 0
    checksum_fail: int = 0
    checksum_missing: int = 0
    done: int = 0

    to_json = _numbers_to_json

    @classmethod
    def from_json(cls, d: Any) -> Integrity:
        return _numbers_from_json(cls, d)


@dataclass(frozen=True)
class WireBytes:
    """Bytes per content token: the bare token event, application bytes, connection bytes."""

    event_bytes_per_token: float | None = None
    app_bytes_per_token: float | None = None
    conn_bytes_per_token: float | None = None

    to_json = _numbers_to_json

    @classmethod
    def from_json(cls, d: Any) -> WireBytes:
        return _numbers_from_json(cls, d)


@dataclass(frozen=True)
class ConnectionUse:
    """Connection-seconds held and their idle share (analysis.metrics.connection_time), and
    who closed the connections (``closed_by``: client / server / proxy / error / unknown)."""

    connections: int = 0
    unclosed: int = 0
    held_s: float | None = None
    busy_s: float | None = None
    idle_s: float | None = None
    idle_share: float | None = None
    sessions: float | None = None
    held_s_per_session: float | None = None
    idle_s_per_session: float | None = None
    connect_ms_p50: float | None = None
    closed_by: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "closed_by"}
        d["closed_by"] = dict(self.closed_by)
        return d

    @classmethod
    def from_json(cls, d: Any) -> ConnectionUse:
        d = _mapping(d)
        base = _numbers_from_json(cls, {k: v for k, v in d.items() if k != "closed_by"})
        return cls(**{**_numbers_to_json(base), "closed_by": _counts(d.get("closed_by"))})


@dataclass(frozen=True)
class ClientCpu:
    """The load generator's own CPU (pitfall 6): max and median %, phases flagged."""

    cpu_pct_max: float | None = None
    cpu_pct_median: float | None = None
    flagged_phases: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "cpu_pct_max": self.cpu_pct_max,
            "cpu_pct_median": self.cpu_pct_median,
            "flagged_phases": list(self.flagged_phases),
        }

    @classmethod
    def from_json(cls, d: Any) -> ClientCpu:
        d = _mapping(d)
        return cls(
            num(d.get("cpu_pct_max")),
            num(d.get("cpu_pct_median")),
            tuple(str(p) for p in d.get("flagged_phases") or ()),
        )


@dataclass(frozen=True)
class ReconnectSummary:
    """Streams that saw a drop: how many, reconnects, drop → next token gap, outcomes."""

    streams_dropped: int = 0
    reconnects: int = 0
    gap_ms: Distribution = field(default_factory=Distribution)
    outcomes: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "streams_dropped": self.streams_dropped,
            "reconnects": self.reconnects,
            "gap_ms": self.gap_ms.to_json(),
            "outcomes": dict(self.outcomes),
        }

    @classmethod
    def from_json(cls, d: Any) -> ReconnectSummary:
        d = _mapping(d)
        return cls(
            count(d.get("streams_dropped")),
            count(d.get("reconnects")),
            Distribution.from_json(d.get("gap_ms")),
            _counts(d.get("outcomes")),
        )


@dataclass(frozen=True)
class ChainSummary:
    """Agent tool chains of one arm (analysis.chains): the per-turn transport share (after
    a tool result: turns ≥ 1; of the prompt: turn 0; of the turns that had to open a
    connection), complete chains' completion time, and connections and TLS handshakes per
    complete chain (means)."""

    chains: int = 0  # complete chains
    incomplete: int = 0  # cut short (the phase ended, a turn failed)
    turns: int = 0  # turns of the complete chains
    new_connection_turns: int = 0  # turns ≥ 1 that did not reuse a connection
    transport_ms: Distribution = field(default_factory=Distribution)
    first_transport_ms: Distribution = field(default_factory=Distribution)
    new_connection_transport_ms: Distribution = field(default_factory=Distribution)
    to_first_ms: Distribution = field(default_factory=Distribution)
    chain_s: Distribution = field(default_factory=Distribution)
    connections_per_chain: float | None = None
    tls_handshakes_per_chain: float | None = None

    _DISTS = (
        "transport_ms",
        "first_transport_ms",
        "new_connection_transport_ms",
        "to_first_ms",
        "chain_s",
    )

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in self._DISTS
        }
        d.update({k: getattr(self, k).to_json() for k in self._DISTS})
        return d

    @classmethod
    def from_json(cls, d: Any) -> ChainSummary:
        d = _mapping(d)
        return cls(
            chains=count(d.get("chains")),
            incomplete=count(d.get("incomplete")),
            turns=count(d.get("turns")),
            new_connection_turns=count(d.get("new_connection_turns")),
            connections_per_chain=num(d.get("connections_per_chain")),
            tls_handshakes_per_chain=num(d.get("tls_handshakes_per_chain")),
            **{k: Distribution.from_json(d.get(k)) for k in cls._DISTS},
        )


@dataclass(frozen=True)
class ChainPair:
    """The same chains on an SSE arm and a WS arm (analysis.chains.paired_chains): per
    chain complete on both, the SSE chain time − the WS one (``chain_saving_ms``; > 0: WS
    finished first); per turn ≥ 1 ok on both, the SSE transport share − the WS one
    (``turn_saving_ms``); and the median saving as a share of the SSE arm's median chain."""

    sse: str = ""
    ws: str = ""
    chains: int = 0
    chain_saving_ms: Distribution = field(default_factory=Distribution)
    turn_saving_ms: Distribution = field(default_factory=Distribution)
    sse_chain_s_p50: float | None = None
    saving_share: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "sse": self.sse,
            "ws": self.ws,
            "chains": self.chains,
            "chain_saving_ms": self.chain_saving_ms.to_json(),
            "turn_saving_ms": self.turn_saving_ms.to_json(),
            "sse_chain_s_p50": self.sse_chain_s_p50,
            "saving_share": self.saving_share,
        }

    @classmethod
    def from_json(cls, d: Any) -> ChainPair:
        d = _mapping(d)
        return cls(
            sse=str(d.get("sse") or ""),
            ws=str(d.get("ws") or ""),
            chains=count(d.get("chains")),
            chain_saving_ms=Distribution.from_json(d.get("chain_saving_ms")),
            turn_saving_ms=Distribution.from_json(d.get("turn_saving_ms")),
            sse_chain_s_p50=num(d.get("sse_chain_s_p50")),
            saving_share=num(d.get("saving_share")),
        )


@dataclass(frozen=True)
class ArmSummary:
    """Every headline figure of one arm in one scenario group (docs/methodology.md).

    ``e2e_ms`` / ``e2e_sched_ms`` are over completed streams (outcome ok) and
    ``e2e_cancelled_ms`` over the streams their users cancelled: mixing the two makes a
    median of nothing. ``invalid``: metric key (analysis.tables.METRICS) → why that figure
    is not published (analysis.validity); the figure itself is then None."""

    streams: int = 0
    sessions: int = 0
    outcomes: Mapping[str, int] = field(default_factory=dict)
    ttft_ms: Distribution = field(default_factory=Distribution)
    #: time to first byte / to first event (nullable columns added within schema 2;
    #: empty for older runs: not measured)
    ttfb_ms: Distribution = field(default_factory=Distribution)
    first_event_ms: Distribution = field(default_factory=Distribution)
    itl_ms: Distribution = field(default_factory=Distribution)
    tpot_ms: Distribution = field(default_factory=Distribution)
    e2e_ms: Distribution = field(default_factory=Distribution)
    e2e_sched_ms: Distribution = field(default_factory=Distribution)
    e2e_cancelled_ms: Distribution = field(default_factory=Distribution)
    dispatch_delay_ms: Distribution = field(default_factory=Distribution)
    open_ms: Distribution = field(default_factory=Distribution)
    connect_ms: Distribution = field(default_factory=Distribution)
    delivery_ms: Distribution = field(default_factory=Distribution)
    slo_attainment: float | None = None
    tokens: float = 0.0
    tokens_per_s: float | None = None
    #: None = not measured (no streams / no connection rows / no byte counts).
    integrity: Integrity | None = None
    bytes: WireBytes | None = None
    connections: ConnectionUse | None = None
    server_cpu_s_per_1k_tokens: float | None = None
    rss_kib_per_conn: float | None = None
    client_cpu: ClientCpu = field(default_factory=ClientCpu)
    reconnect: ReconnectSummary = field(default_factory=ReconnectSummary)
    invalid: Mapping[str, str] = field(default_factory=dict)
    #: Agent tool chains (a group with the tool_chain trait); None otherwise.
    chains: ChainSummary | None = None

    def distribution(self, key: str) -> Distribution:
        """``ttft_ms``, ``itl_ms``… (DISTRIBUTION_KEYS) by name."""
        if key not in DISTRIBUTION_KEYS:
            raise KeyError(f"unknown distribution {key!r} (known: {', '.join(DISTRIBUTION_KEYS)})")
        return getattr(self, key)

    def outcome(self, name: str) -> int:
        return int(self.outcomes.get(name, 0))

    @property
    def lost_tokens(self) -> int:
        return self.integrity.lost if self.integrity else 0

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "streams": self.streams,
            "sessions": self.sessions,
            "outcomes": dict(self.outcomes),
        }
        for key in DISTRIBUTION_KEYS:
            d[key] = self.distribution(key).to_json()
        d.update(
            slo_attainment=self.slo_attainment,
            tokens=self.tokens,
            tokens_per_s=self.tokens_per_s,
            integrity=self.integrity.to_json() if self.integrity else {},
            bytes=self.bytes.to_json() if self.bytes else {},
            connections=self.connections.to_json() if self.connections else {},
            server_cpu_s_per_1k_tokens=self.server_cpu_s_per_1k_tokens,
            rss_kib_per_conn=self.rss_kib_per_conn,
            client_cpu=self.client_cpu.to_json(),
            reconnect=self.reconnect.to_json(),
            invalid=dict(self.invalid),
        )
        if self.chains is not None:
            d["chains"] = self.chains.to_json()
        return d

    @classmethod
    def from_json(cls, d: Any) -> ArmSummary:
        d = _mapping(d)
        dists = {k: Distribution.from_json(d.get(k)) for k in DISTRIBUTION_KEYS}
        return cls(
            streams=count(d.get("streams")),
            sessions=count(d.get("sessions")),
            outcomes=_counts(d.get("outcomes")),
            **dists,
            slo_attainment=num(d.get("slo_attainment")),
            tokens=num(d.get("tokens")) or 0.0,
            tokens_per_s=num(d.get("tokens_per_s")),
            integrity=Integrity.from_json(d["integrity"]) if d.get("integrity") else None,
            bytes=WireBytes.from_json(d["bytes"]) if d.get("bytes") else None,
            connections=ConnectionUse.from_json(d["connections"]) if d.get("connections") else None,
            server_cpu_s_per_1k_tokens=num(d.get("server_cpu_s_per_1k_tokens")),
            rss_kib_per_conn=num(d.get("rss_kib_per_conn")),
            client_cpu=ClientCpu.from_json(d.get("client_cpu")),
            reconnect=ReconnectSummary.from_json(d.get("reconnect")),
            invalid={str(k): str(v) for k, v in _mapping(d.get("invalid")).items()},
            chains=ChainSummary.from_json(d["chains"]) if d.get("chains") else None,
        )


# --------------------------------------------------------------------------- per scenario, run


@dataclass(frozen=True)
class ScenarioSummary:
    """One scenario group: its arms, the SSE ÷ arm ratios, per-repetition spread, and the
    traits of its configuration (what it exercises: reconnects, cancels, a proxy…)."""

    arms: Mapping[str, ArmSummary] = field(default_factory=dict)
    #: ``"<reference SSE arm>/<arm>"`` (core.arms.reference_sse_arm) → ratio key
    #: (``ttft_ms_p50``, ``tokens_per_s``…) → RatioCI.
    ratios: Mapping[str, Mapping[str, RatioCI]] = field(default_factory=dict)
    #: arm → median/min/max over repetitions of per-phase figures (analysis.stats).
    repetitions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    traits: ScenarioTraits = field(default_factory=ScenarioTraits)
    #: ``"<sse arm>/<ws arm>"`` → the same agent chains on both (tool_chain groups only).
    chain_pairs: Mapping[str, ChainPair] = field(default_factory=dict)

    @property
    def streams(self) -> int:
        return sum(a.streams for a in self.arms.values())

    def ratio(self, arm: str, key: str, reference: str | None = None) -> RatioCI | None:
        """`arm`'s ratio `key` against `reference` (default: the group's reference arm)."""
        if reference is None:
            name = next((n for n in self.ratios if n.partition("/")[2] == arm), None)
            return (self.ratios.get(name) or {}).get(key) if name else None
        return (self.ratios.get(f"{reference}/{arm}") or {}).get(key)

    def to_json(self) -> dict[str, Any]:
        return {
            "arms": {a: s.to_json() for a, s in self.arms.items()},
            "ratios": {
                name: {k: r.to_json() for k, r in entries.items()}
                for name, entries in self.ratios.items()
            },
            "repetitions": {a: dict(r) for a, r in self.repetitions.items()},
            "traits": self.traits.to_json(),
            **(
                {"chain_pairs": {k: p.to_json() for k, p in self.chain_pairs.items()}}
                if self.chain_pairs
                else {}
            ),
        }

    @classmethod
    def from_json(cls, d: Any) -> ScenarioSummary:
        d = _mapping(d)
        return cls(
            arms={str(a): ArmSummary.from_json(s) for a, s in _mapping(d.get("arms")).items()},
            ratios={
                str(name): {str(k): RatioCI.from_json(r) for k, r in _mapping(entries).items()}
                for name, entries in _mapping(d.get("ratios")).items()
            },
            repetitions={
                str(a): dict(_mapping(r)) for a, r in _mapping(d.get("repetitions")).items()
            },
            traits=ScenarioTraits.from_json(d.get("traits")),
            chain_pairs={
                str(k): ChainPair.from_json(p) for k, p in _mapping(d.get("chain_pairs")).items()
            },
        )


@dataclass(frozen=True)
class PhaseRow:
    """One (phase, arm): its repetition and main per-phase figures."""

    scenario: str | None
    phase: str
    arm: str
    rep: int | None = None
    streams: int = 0
    ttft_p50: float | None = None
    itl_p50: float | None = None
    e2e_p50: float | None = None
    tokens_per_s: float | None = None
    cpu_s_per_1k_tokens: float | None = None
    client_cpu_flag: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, d: Any) -> PhaseRow:
        d = _mapping(d)
        rep = num(d.get("rep"))
        flag = d.get("client_cpu_flag")
        return cls(
            scenario=d.get("scenario"),
            phase=str(d.get("phase") or "?"),
            arm=str(d.get("arm") or "?"),
            rep=int(rep) if rep is not None else None,
            streams=count(d.get("streams")),
            ttft_p50=num(d.get("ttft_p50")),
            itl_p50=num(d.get("itl_p50")),
            e2e_p50=num(d.get("e2e_p50")),
            tokens_per_s=num(d.get("tokens_per_s")),
            cpu_s_per_1k_tokens=num(d.get("cpu_s_per_1k_tokens")),
            client_cpu_flag=flag if isinstance(flag, bool) else None,
        )


@dataclass(frozen=True)
class RunSummary:
    """The headline figures of one run (summary.json)."""

    schema_version: int | None = None
    run_id: str | None = None
    status: str | None = None
    scenario_name: str | None = None
    reference_arm: str = "sse"
    slo: Mapping[str, float] = field(default_factory=dict)
    bootstrap: Mapping[str, Any] = field(default_factory=dict)
    scenarios: Mapping[str, ScenarioSummary] = field(default_factory=dict)
    phases: tuple[PhaseRow, ...] = ()
    flags: tuple[str, ...] = ()
    not_measured: tuple[str, ...] = ()
    #: Capacity within the SLO per arm, as analysis.capacity.capacity returns it.
    capacity: Mapping[str, Any] = field(default_factory=dict)

    def arm(self, group: str, arm: str) -> ArmSummary | None:
        sc = self.scenarios.get(group)
        return sc.arms.get(arm) if sc is not None else None

    def groups(self, trait: str | None = None) -> list[str]:
        """Scenario groups in summary order; with ``trait``, only those whose configuration
        has it (ScenarioTraits field name: ``"reconnects"``, ``"cancels"``…)."""
        if trait is None:
            return list(self.scenarios)
        return [g for g, sc in self.scenarios.items() if sc.traits.has(trait)]

    @property
    def main_scenario(self) -> str | None:
        """The group the headline latency, bytes and cost figures come from
        (ScenarioTraits.headline_rank, then the most streams)."""
        return main_group({g: (sc.traits, sc.streams) for g, sc in self.scenarios.items()})

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "run_id": self.run_id,
            "status": self.status,
            "scenario_name": self.scenario_name,
            "reference_arm": self.reference_arm,
            "slo": dict(self.slo),
            "bootstrap": dict(self.bootstrap),
            "scenarios": {g: sc.to_json() for g, sc in self.scenarios.items()},
            "phases": [p.to_json() for p in self.phases],
            "flags": list(self.flags),
            "not_measured": list(self.not_measured),
            "capacity": dict(self.capacity),
        }

    @classmethod
    def from_json(cls, d: Any, manifest: Manifest | None = None) -> RunSummary:
        """``manifest``: the run's, to give the groups of an older summary.json (written
        before groups carried their traits) the traits of their recorded configuration."""
        d = _mapping(d)
        version = num(d.get("schema_version"))
        scenarios = {
            str(g): ScenarioSummary.from_json(sc) for g, sc in _mapping(d.get("scenarios")).items()
        }
        if manifest is not None:
            for g, sc in scenarios.items():
                if not _mapping(_mapping(d["scenarios"][g]).get("traits")):
                    scenarios[g] = replace(sc, traits=traits_of(manifest, *group_identity(g)))
        return cls(
            schema_version=int(version) if version is not None else None,
            run_id=d.get("run_id"),
            status=d.get("status"),
            scenario_name=d.get("scenario_name"),
            reference_arm=str(d.get("reference_arm") or "sse"),
            slo=dict(_mapping(d.get("slo"))),
            bootstrap=dict(_mapping(d.get("bootstrap"))),
            scenarios=scenarios,
            phases=tuple(PhaseRow.from_json(p) for p in d.get("phases") or ()),
            flags=tuple(str(f) for f in d.get("flags") or ()),
            not_measured=tuple(str(f) for f in d.get("not_measured") or ()),
            capacity=dict(_mapping(d.get("capacity"))),
        )


def main_group(groups: Mapping[str, tuple[ScenarioTraits, int]]) -> str | None:
    """The best-ranked group (ScenarioTraits.headline_rank), most streams breaking ties,
    then the name (so the choice is stable)."""
    if not groups:
        return None
    return min(sorted(groups), key=lambda g: (groups[g][0].headline_rank, -groups[g][1]))


def arms_in(summary: RunSummary, groups: Iterable[str]) -> list[tuple[str, str, ArmSummary]]:
    """(group, arm, its summary) for every arm of the given groups, in order."""
    return [
        (g, arm, a)
        for g in groups
        if g in summary.scenarios
        for arm, a in summary.scenarios[g].arms.items()
    ]
