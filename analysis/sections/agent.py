"""Agent tool chains: the per-turn transport share, chain completion time, connections and
TLS handshakes per chain, SSE against WS on the same chains (analysis.chains; claim C10).
Shown for the groups whose configuration chains its turns (the ``tool_chain`` trait)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from analysis import chains as CH
from analysis import plots as P
from analysis.claims_chains import CHAIN_FASTER_SHARE, NO_CACHE, is_faster
from analysis.sections.base import Fig, Section, Table, Text
from analysis.tables import fmt, md_table

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from analysis.report_data import Report

__all__ = ["CHAINS"]


def _groups(rep: Report) -> list[str]:
    return rep.summary.groups("tool_chain")


def _turns(rep: Report) -> pd.DataFrame:
    import pandas as pd

    def compute() -> pd.DataFrame:
        frames = [CH.turn_frame(rep.streams(g)) for g in _groups(rep)]
        return pd.concat(frames, ignore_index=True) if frames else CH.turn_frame(None)

    return rep.cached("chain_turns", compute)


def _intro(rep: Report) -> str:
    return (
        "Each chain is one user's session of turns: a short answer, then a client-side tool "
        "call, then the next turn continuing the last. Per turn, *transport share* = first "
        "token − tool result − the server's scheduled TTFT of that stream (its own schedule, "
        "so the difference is exactly what the client, the connection and the network "
        "added: a new connection with its TCP and TLS handshakes when one was needed, the "
        "request, the server's queueing, the first token's delivery). Chain time is the "
        "first prompt to the last turn's end, complete chains only. Both arms run the same "
        "chains (same lengths, same tool calls), so they are compared chain by chain. "
        f"{NO_CACHE.capitalize()}."
    )


def _chain_table(rep: Report) -> str | None:
    rows = []
    for g in _groups(rep):
        block = rep.summary.scenarios[g]
        for arm, a in block.arms.items():
            c = a.chains
            if c is None:
                continue
            rows.append(
                [
                    g,
                    arm,
                    "yes" if block.traits.tls else "no",
                    f"{c.chains} (+{c.incomplete} cut)",
                    fmt(c.chain_s.p50, "{:.2f}"),
                    fmt(c.transport_ms.p50, "{:.2f}"),
                    fmt(c.transport_ms.p90, "{:.2f}"),
                    fmt(c.first_transport_ms.p50, "{:.2f}"),
                    f"{c.new_connection_turns}",
                    fmt(c.connections_per_chain, "{:.2f}"),
                    fmt(c.tls_handshakes_per_chain, "{:.2f}"),
                ]
            )
    if not rows:
        return None
    head = [
        "scenario", "arm", "TLS", "chains", "chain p50 s", "transport/turn p50 ms",
        "p90 ms", "turn 0 p50 ms", "turns on a new connection", "connections/chain",
        "TLS handshakes/chain",
    ]  # fmt: skip
    note = (
        "\n\n*Transport share per turn over turns ≥ 1 (after a tool result); turn 0 is the "
        "prompt, which opens the connection. p90 needs 10+ turns, p99 368+ (analysis.stats)."
        "*"
    )
    return md_table(head, rows) + note


def _pair_table(rep: Report) -> str | None:
    rows = []
    for g in _groups(rep):
        for key, p in rep.summary.scenarios[g].chain_pairs.items():
            d = p.chain_saving_ms
            ci = (
                f"[{d.p50_ci[0]:.1f}, {d.p50_ci[1]:.1f}]"
                if d.p50_ci is not None and None not in d.p50_ci
                else "n/a"
            )
            faster = is_faster(p)
            rows.append(
                [
                    g,
                    key,
                    p.chains,
                    fmt(d.p50, "{:.1f}"),
                    ci,
                    fmt(p.saving_share, "{:.2%}"),
                    fmt(p.turn_saving_ms.p50, "{:.2f}"),
                    "n/m" if faster is None else ("yes" if faster else "no"),
                ]
            )
    if not rows:
        return None
    head = [
        "scenario", "SSE / WS", "chains on both", "WS saves a chain p50 ms", "95 % CI",
        "share of the SSE chain", "WS saves a turn p50 ms",
        f"WS ≥ {CHAIN_FASTER_SHARE:.0%} faster",
    ]  # fmt: skip
    return "### The same chains on both arms\n\n" + md_table(head, rows)


def _figure(rep: Report) -> Figure | None:
    turns = _turns(rep)
    return P.plot_chain_transport(turns) if len(turns) else None


def _headline(rep: Report) -> str | None:
    parts = []
    for g in _groups(rep):
        for key, p in rep.summary.scenarios[g].chain_pairs.items():
            if p.chains and p.chain_saving_ms.p50 is not None and p.saving_share is not None:
                parts.append(
                    f"{g} {key}: WS saves {p.chain_saving_ms.p50:.1f} ms a chain "
                    f"({p.saving_share:.2%})"
                )
    return f"Agent chains: {'; '.join(parts)}." if parts else None


CHAINS = Section(
    "chains",
    "Agent tool chains",
    lambda rep: bool(_groups(rep)),
    "a scenario whose turns form agent tool chains (session.chain, several turns)",
    (
        Text(_intro),
        Table("chains", _chain_table),
        Fig(
            "chain_transport",
            _figure,
            caption="Median transport share of each turn of the chains, per arm (and per "
            "configuration: plain, TLS…). Turn 0 opens the connection (TCP, TLS, the WS "
            "upgrade); a later turn that sits higher on one arm paid for something the other "
            "did not — on SSE a new connection when the keep-alive one was closed. Flat, "
            "nearly equal lines mean the transport adds the same small time per turn on both.",
        ),
        Table("chain_pairs", _pair_table),
    ),
    headline=_headline,
)
