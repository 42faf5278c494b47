"""The bad-network section: claim C9 per network profile (recovery from tunnels, handovers,
cuts: completed answers, time to notice on each end, the outage the user sees, tokens
generated for nobody, the cost in connections and bytes), the token ledger that proves
every token is accounted for, and the RTT sweep (analysis.recovery, analysis.ledger)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from analysis.fault_attribution import fault_rows_of_run
from analysis.ledger import attribute, emissions_of_run, ledger
from analysis.plots_network import plot_recovery, plot_rtt
from analysis.recovery import behaviour_of, fault_times, recovery_streams, recovery_summary
from analysis.sections.base import Items, Section, Text
from analysis.tables import fmt

if TYPE_CHECKING:  # pragma: no cover
    from analysis.report_data import Report

__all__ = ["NETWORK", "NetworkData", "network_data", "recovery_rows"]


@dataclass(frozen=True)
class NetItem:
    name: str
    title: str
    kind: Literal["table", "figure", "text"]
    value: Any
    caption: str = ""


@dataclass
class NetworkData:
    """What the section shows, computed once per report."""

    recovery: list[dict[str, Any]]  # one row per (group, arm) of a fault-injecting profile
    ledger: pd.DataFrame  # one row per phase of those groups
    rtt: pd.DataFrame  # latency-only profiles: TTFT first / later turns


def _label(rep: Report, group: str) -> tuple[str, str | None]:
    """The network entry's label and profile name of a group (from its phases' records)."""
    for p in rep.manifest.phases_of(group):
        net = p.raw.get("network")
        if isinstance(net, dict) and net.get("label"):
            return str(net["label"]), net.get("profile")
    return group, None


def _recovery(rep: Report, faults: dict, em: pd.DataFrame) -> list[dict[str, Any]]:
    """Every network group of a scenario that has a fault-injecting profile somewhere (its
    fault-free profiles are the control: no fault hits them)."""
    rows = []
    faulty = {
        rep.summary.scenarios[g].traits.scenario for g in rep.summary.groups("network_faults")
    }
    for g in rep.summary.groups("network"):
        if rep.summary.scenarios[g].traits.scenario not in faulty:
            continue
        tr = rep.summary.scenarios[g].traits
        sc = rep.manifest.scenario(tr.scenario)
        if sc is None:
            continue
        label, profile = _label(rep, g)
        streams = rep.rows("streams", g)
        tokens = rep.tokens(g)
        conns = rep.rows("connections", g)
        for arm in rep.summary.scenarios[g].arms:
            s = streams[streams["arm"].astype(object) == arm]
            if s.empty:
                continue
            c = conns[conns["arm"].astype(object) == arm]
            mine = tokens[tokens["stream_uid"].isin(s["stream_uid"])]
            s = recovery_streams(s, mine, faults, c)
            e = em[em["phase"].isin(s["phase"].unique())]
            rows.append(
                {
                    "group": g,
                    "scenario": tr.scenario,
                    "label": label,
                    "profile": profile,
                    "behaviour": behaviour_of(sc.behaviour.resume, sc.behaviour.restart),
                    "heartbeat_s": sc.server.heartbeat_s,
                    "silence_s": sc.behaviour.silence_s(sc.server),
                    "arm": arm,
                    **recovery_summary(s, e, c, faults),
                }
            )
    return rows


def _rtt(rep: Report) -> pd.DataFrame:
    """TTFT by turn per network group of the scenarios with no fault-injecting profile (a
    latency sweep), one row per (group, arm), with its ``scenario`` (`rtt_rows`)."""
    rows = []
    faulty = {
        rep.summary.scenarios[g].traits.scenario for g in rep.summary.groups("network_faults")
    }
    for g in rep.summary.groups("network"):
        scenario = rep.summary.scenarios[g].traits.scenario
        if scenario in faulty:
            continue
        rows += rtt_rows(rep.rows("streams", g), g, scenario, rep.summary.scenarios[g].arms)
    return pd.DataFrame(rows)


def rtt_rows(
    streams: pd.DataFrame, group: str, scenario: str | None, arms: list[str]
) -> list[dict[str, Any]]:
    """One group's TTFT medians per arm, first turn and later turns, counted from the moment
    the user asked (``t_sched_ns``: the turn's start, or an agent's tool result; the
    request's send where there is none) — so a turn that opens a connection pays its TLS /
    upgrade round trips here. ``label``: the configuration within the scenario ("rtt50",
    or "tls.rtt50" beside a [proxy] entry), so the bars of one figure never share one."""
    s = streams
    label = group[len(scenario) + 1 :] if scenario and group.startswith(f"{scenario}.") else group
    asked = s["t_sched_ns"].where(s["t_sched_ns"].notna(), s["t_send_ns"])
    ttft = (s["t_first_ns"] - asked) / 1e6
    rows = []
    for arm in arms:
        mine = s["arm"].astype(object) == arm
        first = ttft[mine & (s["turn"] == 0)].dropna()
        later = ttft[mine & (s["turn"] > 0)].dropna()
        rows.append(
            {
                "scenario": scenario,
                "label": label,
                "arm": arm,
                "ttft_first_p50": float(first.median()) if len(first) else None,
                "ttft_later_p50": float(later.median()) if len(later) else None,
                "first_n": len(first),
                "later_n": len(later),
            }
        )
    return rows


def network_data(rep: Report) -> NetworkData:
    def compute() -> NetworkData:
        data = rep.data
        faults = fault_times(
            fault_rows_of_run(rep.manifest, data.path), data.connections, data.streams
        )
        em = attribute(data.streams, data.tokens, emissions_of_run(rep.manifest, data.path))
        groups = rep.summary.groups("network")
        streams = data.streams[data.streams["group"].isin(groups)]
        return NetworkData(
            recovery=_recovery(rep, faults, em),
            ledger=ledger(streams, data.tokens, em[em["phase"].isin(streams["phase"])]),
            rtt=_rtt(rep),
        )

    return rep.cached("network", compute)


def recovery_rows(rep: Report) -> list[dict[str, Any]]:
    """The C9 rows (analysis.claims.claim_c9); empty without a fault-injecting profile."""
    if not rep.summary.groups("network_faults"):
        return []
    return network_data(rep).recovery


def _ms(x: float | None) -> str:
    return fmt(None if x is None else x / 1000.0, "{:.2f}")


def _recovery_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "profile": r["label"],
                "behaviour": r["behaviour"],
                "heartbeat s": fmt(r["heartbeat_s"], "{:g}"),
                "arm": r["arm"],
                "answers": r["answers"],
                "hit by a fault": r["hit"],
                "hit completed %": fmt(
                    None if r["hit_completed_share"] is None else 100 * r["hit_completed_share"],
                    "{:.1f}",
                ),
                "client detect p50 s": _ms(r["client_detect_p50_ms"]),
                "server detect p50 s": _ms(r["server_detect_p50_ms"]),
                "server never noticed": r["server_never"],
                "fault→token p50 s": _ms(r["fault_to_token_p50_ms"]),
                "stall max s": _ms(r["stall_max_ms"]),
                "lost": r["lost"],
                "dup": r["dup"],
                "nobody": r["nobody"],
                "conns/answer": fmt(r["connections_per_answer"], "{:.2f}"),
                "KB/answer": fmt(
                    None if r["bytes_per_answer"] is None else r["bytes_per_answer"] / 1000,
                    "{:.1f}",
                ),
            }
            for r in rows
        ]
    )


_TABLE_CAPTION = (
    "Per profile, recovery behaviour and arm: answers hit by a fault (a blackhole, handover "
    "or cut starting while they were in flight) and the share of those that completed with "
    "no token lost; how long the client took to notice (its drop − the fault: a reset seen, "
    "or its dead-peer silence) and the server (the end of an emission it stopped as "
    "disconnected − the fault; 'never noticed': it wrote the whole answer into a dead "
    "connection); the outage the user saw (fault → next token) and the longest gap between "
    "two tokens; tokens lost, read twice (restart), generated for nobody (the ledger); "
    "connections opened and wire bytes per answer."
)
_LEDGER_CAPTION = (
    "Every token accounted for, per phase: the client's side (expected = unique + lost) "
    "and the server's (generated = sent + wasted = received + generated for nobody). "
    "'unexplained' counts tokens the server wrote on a connection the client never lost "
    "that did not arrive, and 'gaps' tokens missing from the middle of a connection's "
    "delivery; 'unaccounted' adds to them every token that breaks either identity (sent ≠ "
    "received + void, expected ≠ unique + lost): all must be 0."
)


def _items(rep: Report) -> list[NetItem]:
    nd = network_data(rep)
    out: list[NetItem] = []
    for label in dict.fromkeys(r["label"] for r in nd.recovery):
        rows = [r for r in nd.recovery if r["label"] == label]
        df = pd.DataFrame(
            {
                "behaviour": r["behaviour"] + ("" if r["heartbeat_s"] else " (no hb)"),
                "arm": r["arm"],
                "hit_completed_pct": None
                if r["hit_completed_share"] is None
                else 100 * r["hit_completed_share"],
                "fault_to_token_p50_s": None
                if r["fault_to_token_p50_ms"] is None
                else r["fault_to_token_p50_ms"] / 1000,
                "nobody_per_answer": r["nobody"] / r["answers"] if r["answers"] else None,
            }
            for r in rows
        )
        hits = ", ".join(f"{r['arm']} {r['behaviour']}: {r['hit']}" for r in rows)
        out.append(
            NetItem(
                f"c9_{label}",
                f"C9 on '{label}'",
                "figure",
                plot_recovery(df, label),
                f"Profile '{label}' (bench/networks/{rows[0]['profile']}.toml and the "
                "scenario's overrides): per recovery behaviour (resume after the last token "
                "received; restart = ask again from the start; lost = a cut answer is not "
                "picked up, as LLM APIs behave; 'no hb' = without heartbeats) and arm, the "
                "share of fault-hit answers that completed, the median outage from the fault "
                "to the next token, and the tokens the server generated for nobody per "
                f"answer. Fault-hit answers: {hits}.",
            )
        )
    if nd.recovery:
        out.append(NetItem("recovery", "", "table", _recovery_table(nd.recovery), _TABLE_CAPTION))
    if not nd.ledger.empty:
        out.append(NetItem("ledger", "Token ledger", "table", nd.ledger, _LEDGER_CAPTION))
    for scenario, rtt in nd.rtt.groupby("scenario", sort=False) if not nd.rtt.empty else ():
        out.append(
            NetItem(
                f"rtt_{scenario}",
                f"RTT sweep ({scenario})",
                "figure",
                plot_rtt(rtt),
                "Time to first token from the moment the user asked (connection set-up "
                "included), medians per added round-trip time (fault proxy, latency only), "
                "configuration and arm: the first turn of a session pays for a new "
                "connection on both arms (TCP, TLS, the WS upgrade); later "
                "turns reuse the WebSocket, while SSE reuses its keep-alive connection only "
                "when the think time was shorter than its expiry (5 s). Streams per bar: "
                + ", ".join(
                    f"{r.label}/{r.arm} {r.first_n}+{r.later_n}"
                    for r in rtt.itertuples(index=False)
                )
                + ".",
            )
        )
    return out


def _intro(rep: Report) -> str:
    nd = network_data(rep)
    if not nd.recovery:
        return "Latency-only profiles (the RTT sweep) ran; no profile injected faults."
    hb = sorted({r["heartbeat_s"] for r in nd.recovery})
    sil = sorted({r["silence_s"] for r in nd.recovery})
    return (
        'Chat sessions through the fault proxy (bench/networks/; README, "Bad networks"). '
        "A client declares a silent connection dead after "
        + " / ".join(f"{s:g} s" for s in sil)
        + " (heartbeat interval "
        + " / ".join(f"{h:g} s" for h in hb)
        + '; docs/methodology.md, "Bad networks") and recovers per its behaviour. '
        "Claim C9 is judged on the resume rows (the claims section)."
    )


def _headline(rep: Report) -> str | None:
    nd = network_data(rep)
    parts = []
    for r in nd.recovery:
        if r["behaviour"] == "resume" and r["heartbeat_s"] and r["hit_completed_share"] is not None:
            parts.append(f"{r['label']} {r['arm']} {100 * r['hit_completed_share']:.0f}%")
    unaccounted = int(nd.ledger["unaccounted"].sum()) if not nd.ledger.empty else 0
    if not parts:
        return None
    return (
        "Bad networks: fault-hit answers completed with resume — "
        + ", ".join(parts)
        + f"; tokens unaccounted for: {unaccounted}."
    )


NETWORK = Section(
    "network",
    "Bad networks (claim C9)",
    lambda rep: bool(rep.summary.groups("network")),
    "a scenario run through the fault proxy (a [network] profile other than loopback)",
    (Text(_intro), Items("network", _items)),
    headline=_headline,
)
