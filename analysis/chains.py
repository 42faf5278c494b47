"""Agent tool chains (the ``tool_chain`` trait: ``session.chain``): per-turn and per-chain
figures from the streams and connections tables (docs/methodology.md, "Agent chains").

A *chain* is one session of one user: ``turns`` streams, each turn sent when the previous
turn's tool call ended. Its rows share the stream id up to the turn
(``<seed>.<worker index>.<user>.<session>``), which is the same on every arm of one
repetition — both arms run the same chains (same lengths, same tool calls), so they can be
compared chain by chain.

=========================  ================================================================
``to_first_ms``            t_first − t_sched: from the tool result (the turn's scheduled
                           send; the prompt for turn 0) to the turn's first content token
``transport_ms``           to_first_ms − the server's scheduled TTFT of this stream
                           (``ttft_ms_sched``: its own first-token offset, jitter included)
                           = what the transport added: a new connection (TCP, TLS, upgrade)
                           if one was needed, the request, the server's queueing, the first
                           token's delivery. NaN where the schedule is unknown (a foreign
                           server): never guessed
``chain_s``                a complete chain: last turn's end − first turn's t_sched
``connections``            connections the chain's user opened between its start and end
``tls_handshakes``         … of which completed a TLS handshake (``t_tls_ns``)
=========================  ================================================================

A chain is *complete* when all its turns ran and ended ok; only complete chains give
chain_s, connections and handshakes (a chain cut by the end of a phase would look short).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from analysis.metrics import column, ns_diff_ms

__all__ = ["chain_frame", "paired_chains", "paired_turns", "turn_frame"]

#: Columns that locate a chain across arms: a repetition's chains have the same ids.
PAIR_KEYS = ("group", "rep", "chain")


def turn_frame(streams: pd.DataFrame) -> pd.DataFrame:
    """One row per stream: group, arm, phase, rep, worker, user, session, chain, turn,
    outcome, reused_conn, t_sched_ns, t_end_ns, to_first_ms, sched_ttft_ms, transport_ms."""
    cols = [
        "group", "arm", "phase", "rep", "worker", "user", "session", "chain", "turn",
        "outcome", "reused_conn", "t_sched_ns", "t_end_ns",
        "to_first_ms", "sched_ttft_ms", "transport_ms",
    ]  # fmt: skip
    if streams is None or streams.empty:
        return pd.DataFrame(columns=cols)
    sid = streams["stream_id"].astype(object).astype(str)
    out = pd.DataFrame(
        {
            "group": column(streams, "group").astype(object),
            "arm": streams["arm"].astype(object),
            "phase": streams["phase"].astype(object),
            "rep": column(streams, "rep"),
            "worker": streams["worker"].astype(object),
            "user": streams["user"],
            "session": streams["session"],
            "chain": sid.str.rpartition(".")[0],
            "turn": streams["turn"],
            "outcome": streams["outcome"].astype(object),
            "reused_conn": column(streams, "reused_conn").astype("boolean"),
            "t_sched_ns": streams["t_sched_ns"],
            "t_end_ns": streams["t_end_ns"],
        }
    )
    out["to_first_ms"] = ns_diff_ms(streams["t_first_ns"], streams["t_sched_ns"])
    sched = column(streams, "ttft_ms_sched").to_numpy(dtype=np.float64, na_value=np.nan)
    out["sched_ttft_ms"] = sched
    out["transport_ms"] = out["to_first_ms"].to_numpy() - sched
    return out.reset_index(drop=True)


def chain_frame(
    turns: pd.DataFrame,
    connections: pd.DataFrame | None,
    turns_per_chain: int | Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """One row per chain (group, arm, phase, rep, worker, user, session, chain): turns,
    ok_turns, complete, t_start_ns, t_end_ns, chain_s, connections, tls_handshakes.

    `turns_per_chain`: the configured K, one for all or per group (None, or a group not in
    the mapping: the most turns any chain of its group has)."""
    cols = [
        "group", "arm", "phase", "rep", "worker", "user", "session", "chain", "turns",
        "ok_turns", "complete", "t_start_ns", "t_end_ns", "chain_s", "connections",
        "tls_handshakes",
    ]  # fmt: skip
    if turns is None or turns.empty:
        return pd.DataFrame(columns=cols)
    keys = ["group", "arm", "phase", "rep", "worker", "user", "session", "chain"]
    t = turns.assign(_ok=(turns["outcome"] == "ok").astype(int))
    g = t.groupby(keys, dropna=False, sort=False, observed=True)
    ch = g.agg(
        turns=("turn", "size"),
        max_turn=("turn", "max"),
        ok_turns=("_ok", "sum"),
        t_start_ns=("t_sched_ns", "min"),
        t_end_ns=("t_end_ns", "max"),
    ).reset_index()
    k_of = ch.groupby("group", dropna=False)["turns"].transform("max").astype(float)
    if isinstance(turns_per_chain, int):
        k_of[:] = turns_per_chain
    elif turns_per_chain is not None:
        given = ch["group"].map(dict(turns_per_chain)).astype(float)
        k_of = given.where(given.notna(), k_of)
    ch["complete"] = (
        (ch["turns"] == k_of) & (ch["ok_turns"] == ch["turns"]) & (ch["max_turn"] == k_of - 1)
    )
    ch["chain_s"] = ns_diff_ms(ch["t_end_ns"], ch["t_start_ns"]) / 1000.0
    ch.loc[~ch["complete"], "chain_s"] = np.nan
    ch[["connections", "tls_handshakes"]] = _connections_per_chain(ch, connections)
    ch.loc[~ch["complete"], ["connections", "tls_handshakes"]] = np.nan
    return ch[cols]


def _connections_per_chain(ch: pd.DataFrame, connections: pd.DataFrame | None) -> np.ndarray:
    """(connections, TLS handshakes) each chain's user opened within [start, end]."""
    out = np.zeros((len(ch), 2), dtype=np.float64)
    if connections is None or connections.empty or ch.empty:
        out[:] = np.nan if connections is None or connections.empty else 0
        return out
    c = pd.DataFrame(
        {
            "phase": connections["phase"].astype(object),
            "worker": connections["worker"].astype(object),
            "user": connections["user"].astype("Int64"),
            "t_connect_ns": connections["t_connect_ns"].astype("Int64"),
            "tls": column(connections, "t_tls_ns").notna().to_numpy(),
        }
    )
    left = ch[["phase", "worker", "user", "t_start_ns", "t_end_ns"]].copy()
    left["user"] = left["user"].astype("Int64")
    left["_row"] = np.arange(len(ch))
    m = left.merge(c, on=["phase", "worker", "user"], how="inner")
    inside = (m["t_connect_ns"] >= m["t_start_ns"]) & (m["t_connect_ns"] <= m["t_end_ns"])
    m = m[inside.fillna(False).to_numpy(dtype=bool)]
    counts = m.groupby("_row").agg(n=("tls", "size"), tls=("tls", "sum"))
    out[counts.index.to_numpy(), 0] = counts["n"].to_numpy()
    out[counts.index.to_numpy(), 1] = counts["tls"].to_numpy()
    return out


def _pair(rows: pd.DataFrame, a: str, b: str, keys: list[str], value: str) -> pd.DataFrame:
    """Rows of arms `a` and `b` matched on `keys`: ``<value>_a``, ``<value>_b``."""
    sides = [
        rows[rows["arm"] == arm][[*keys, value]].rename(columns={value: f"{value}_{x}"})
        for arm, x in ((a, "a"), (b, "b"))
    ]
    return sides[0].merge(sides[1], on=keys, how="inner")


def paired_chains(chains: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Chains complete on both arms `a` and `b` (same group, repetition and chain id):
    group, rep, chain, chain_s_a, chain_s_b, saving_ms (a − b, in ms)."""
    cols = ["group", "rep", "chain", "chain_s_a", "chain_s_b", "saving_ms"]
    if chains is None or chains.empty:
        return pd.DataFrame(columns=cols)
    m = _pair(chains[chains["complete"].astype(bool)], a, b, list(PAIR_KEYS), "chain_s")
    m["saving_ms"] = (m["chain_s_a"] - m["chain_s_b"]) * 1000.0
    return m[cols].reset_index(drop=True)


def paired_turns(turns: pd.DataFrame, a: str, b: str, *, first: int = 1) -> pd.DataFrame:
    """Turns (from `first` on) that ended ok on both arms: group, rep, chain, turn,
    transport_ms_a, transport_ms_b, saving_ms (a − b)."""
    cols = ["group", "rep", "chain", "turn", "transport_ms_a", "transport_ms_b", "saving_ms"]
    if turns is None or turns.empty:
        return pd.DataFrame(columns=cols)
    ok = turns[(turns["outcome"] == "ok") & (turns["turn"] >= first)]
    m = _pair(ok, a, b, [*PAIR_KEYS, "turn"], "transport_ms")
    m["saving_ms"] = m["transport_ms_a"] - m["transport_ms_b"]
    return m[cols].reset_index(drop=True)
