"""How streams got through a bad network: the faults that hit each stream, how long each
end took to notice, how long the user waited, and what the recovery cost (claim C9).

Inputs: the client's streams / tokens / connections, the fault proxy's log (core.faultlog,
joined by analysis.fault_attribution) and the servers' stream logs with every emission's
tokens attributed (analysis.ledger.attribute). Definitions (docs/methodology.md, "Bad
networks"):

- a *fault* hits a stream when it starts while the stream is in flight (request sent →
  end): a network-wide window (a blackhole — the link goes dark —, a handover — every
  connection cut —) or a cut of one of its user's connections (the `cuts` profile);
- *client detect* = the stream's drop (the client saw a reset / EOF, or declared the
  connection dead after its silence) − the latest fault before it;
- *server detect* = the end of an emission that the server stopped as disconnected − the
  latest fault during it; an emission hit by a fault that nevertheless ran to its end,
  writing into a dead connection (void > 0), "never noticed";
- *fault → next token* = the first token the client read after the fault that the server
  sent after it − the fault (the outage as the user sees it: detection, reconnect and
  resume included). Tokens already on their way at the fault — in the client's socket, or
  read a few ms late — are not the recovery, so they do not count (a token the server
  wrote just before a blackhole and the path held through it is followed by the next
  one within a token gap);
- *stall* = a stream's longest gap between two tokens (max ITL);
- *completed* = outcome ok with no token lost; *nobody* = tokens generated for nobody
  (ledger); the cost in connections and bytes per answer from the connection records.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis.fault_attribution import connection_faults

__all__ = [
    "STREAM_COLUMNS",
    "behaviour_of",
    "fault_times",
    "recovery_streams",
    "recovery_summary",
]

#: What `recovery_streams` adds per stream.
STREAM_COLUMNS = [
    "hit",
    "faults",
    "completed",
    "client_detect_ms",
    "fault_to_token_ms",
    "stall_ms",
]


def fault_times(
    rows: list[dict], connections: pd.DataFrame, streams: pd.DataFrame
) -> dict[str, tuple[list[int], dict[tuple[str, int], list[int]]]]:
    """Per phase: the network-wide fault instants (blackhole and handover starts, as the
    proxy acted) and the cut instants of each (worker, user)'s connections."""
    out: dict[str, tuple[list[int], dict[tuple[str, int], list[int]]]] = {}
    for r in rows:
        if r.get("ev") in ("blackhole_start", "handover"):
            out.setdefault(str(r["phase"]), ([], {}))[0].append(int(r["t_ns"]))
    cuts = connection_faults(connections, streams, rows)
    cuts = cuts[cuts["t_cut_ns"].notna() & cuts["cut_cause"].ne("handover")]
    if not cuts.empty and not connections.empty:
        owner = {
            str(u): (str(w), int(us))
            for u, w, us in connections[["conn_uid", "worker", "user"]].itertuples(index=False)
        }
        for phase, uid, t in cuts[["phase", "conn_uid", "t_cut_ns"]].itertuples(index=False):
            key = owner.get(str(uid)) if uid is not None else None
            if key is not None:
                out.setdefault(str(phase), ([], {}))[1].setdefault(key, []).append(int(t))
    for wide, per_user in out.values():
        wide.sort()
        for ts in per_user.values():
            ts.sort()
    return out


def _within(ts: list[int], lo: int, hi: int) -> list[int]:
    return ts[bisect.bisect_left(ts, lo) : bisect.bisect_right(ts, hi)]


def _next_token_ms(t_rx: np.ndarray, t_tx: np.ndarray, fault: int) -> float | None:
    """Fault → the first token read after it that the server sent after it (a token
    without a send stamp — a foreign server — counts when read after the fault)."""
    k = int(np.searchsorted(t_rx, fault, side="right"))
    later = t_tx[k:]
    ok = np.isnan(later) | (later > fault)
    if not ok.any():
        return None
    return (int(t_rx[k + int(np.argmax(ok))]) - fault) / 1e6


def recovery_streams(
    streams: pd.DataFrame,
    tokens: pd.DataFrame,
    faults: Mapping[str, Any],
    connections: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """`streams` with `STREAM_COLUMNS` (lists in ``client_detect_ms`` /
    ``fault_to_token_ms``: one value per drop / per fault). With `connections`, a cut of
    the stream's connection between its connect and the request counts too (it was
    opened for the stream just before: a WS upgrade, an SSE connect)."""
    opened: dict[str, int] = {}
    if connections is not None and not connections.empty:
        for uid, t in connections[["conn_uid", "t_connect_ns"]].itertuples(index=False):
            if not pd.isna(t):
                opened[str(uid)] = int(t)
    recv: dict[str, np.ndarray] = {}
    sent: dict[str, np.ndarray] = {}  # the server's send stamps, in the order of `recv`
    for uid, g in tokens.groupby("stream_uid", sort=False):
        g = g.sort_values("t_recv_ns")
        recv[str(uid)] = g["t_recv_ns"].to_numpy(dtype="int64")
        srv = g["t_server_ns"] if "t_server_ns" in g else pd.Series(np.nan, index=g.index)
        sent[str(uid)] = pd.to_numeric(srv, errors="coerce").astype("float64").to_numpy()
    cols: dict[str, list[Any]] = {c: [] for c in STREAM_COLUMNS}
    view = streams[
        ["stream_uid", "phase", "worker", "user", "t_send_ns", "t_end_ns", "t_drops_ns",
         "outcome", "n_lost", "conn_uid"]
    ]  # fmt: skip
    for uid, phase, worker, user, t_send, t_end, drops, outcome, lost, conn in view.itertuples(
        index=False
    ):
        wide, per_user = faults.get(str(phase), ([], {}))
        lo = 0 if pd.isna(t_send) else int(t_send)
        lo = min(lo, opened.get(str(conn), lo))
        hi = np.iinfo(np.int64).max if pd.isna(t_end) else int(t_end)
        mine = per_user.get((str(worker), int(user)), [])
        hits = sorted(_within(wide, lo, hi) + _within(mine, lo, hi))
        t_rx = recv.get(str(uid), np.empty(0, dtype="int64"))
        t_tx = sent.get(str(uid), np.empty(0, dtype="float64"))
        detect = []
        for d in sorted(int(x) for x in drops) if isinstance(drops, list | np.ndarray) else []:
            before = [f for f in hits if f <= d]
            if before:
                detect.append((d - before[-1]) / 1e6)
        to_token = [_next_token_ms(t_rx, t_tx, f) for f in hits]
        cols["hit"].append(bool(hits))
        cols["faults"].append(len(hits))
        cols["completed"].append(outcome == "ok" and not pd.isna(lost) and int(lost) == 0)
        cols["client_detect_ms"].append(detect)
        cols["fault_to_token_ms"].append(to_token)
        cols["stall_ms"].append(float(np.diff(t_rx).max()) / 1e6 if len(t_rx) > 1 else None)
    return streams.assign(**cols)


def server_detect(em: pd.DataFrame, faults: Mapping[str, Any]) -> pd.DataFrame:
    """Attributed emissions (analysis.ledger.attribute) hit by a network-wide fault or a cut
    of their client's connection while they ran: ``detect_ms`` (None: never noticed —
    completed with a void), ``noticed``."""
    rows = []
    for r in em.itertuples(index=False):
        wide, _ = faults.get(str(r.phase), ([], {}))
        hits = _within(wide, int(r.t_start_ns), int(r.t_end_ns))
        if not hits:
            continue
        noticed = r.outcome == "disconnected"
        if not noticed and r.void <= 0:
            continue  # it delivered everything: nothing to notice
        rows.append(
            {
                "phase": r.phase,
                "stream_uid": r.stream_uid,
                "noticed": noticed,
                "detect_ms": (int(r.t_end_ns) - hits[-1]) / 1e6 if noticed else None,
                "ended_by": r.ended_by,
                "nobody": int(r.nobody),
            }
        )
    return pd.DataFrame(rows, columns=["phase", "stream_uid", "noticed", "detect_ms",
                                       "ended_by", "nobody"])  # fmt: skip


def behaviour_of(resume: bool, restart: bool) -> str:
    """The recovery behaviour's short name: resume | restart | lost."""
    return "resume" if resume else ("restart" if restart else "lost")


def _p(values: list[float], q: float) -> float | None:
    v = [x for x in values if x is not None and not pd.isna(x)]
    return float(np.percentile(v, q)) if v else None


def recovery_summary(
    streams: pd.DataFrame,
    em: pd.DataFrame,
    connections: pd.DataFrame,
    faults: Mapping[str, Any],
) -> dict[str, Any]:
    """One arm of one group: the C9 figures (recovery_streams' columns must be there)."""
    hit = streams[streams["hit"]]
    sd = server_detect(em, faults)
    detect = [x for xs in hit["client_detect_ms"] for x in xs]
    to_token = [x for xs in hit["fault_to_token_ms"] for x in xs]
    n = len(streams)
    conns = connections[connections["phase"].isin(streams["phase"].unique())]
    wire = conns["bytes_in"].fillna(0).sum() + conns["bytes_out"].fillna(0).sum()
    return {
        "answers": n,
        "hit": len(hit),
        "faults": int(hit["faults"].sum()),
        "completed_share": float(streams["completed"].mean()) if n else None,
        "hit_completed_share": float(hit["completed"].mean()) if len(hit) else None,
        "client_detect_p50_ms": _p(detect, 50),
        "drops_detected": len(detect),
        "dead_declared": int(streams["dead_declared"].fillna(0).sum()),
        "server_detect_p50_ms": _p(sd["detect_ms"].tolist(), 50),
        "server_noticed": int(sd["noticed"].sum()) if len(sd) else 0,
        "server_never": int((~sd["noticed"]).sum()) if len(sd) else 0,
        "fault_to_token_p50_ms": _p(to_token, 50),
        "fault_to_token_p90_ms": _p(to_token, 90),
        "no_token_after_fault": sum(1 for x in to_token if x is None),
        "stall_p50_ms": _p(hit["stall_ms"].tolist(), 50),
        "stall_max_ms": _p(hit["stall_ms"].tolist(), 100),
        "lost": int(streams["n_lost"].fillna(0).sum()),
        "dup": int(streams["n_dup"].fillna(0).sum()),
        "generated": int((em["sent"] + em["wasted"]).sum()),
        "nobody": int(em["nobody"].sum()),
        "connections_per_answer": len(conns) / n if n else None,
        "bytes_per_answer": float(wire) / n if n else None,
        "reconnects": int(streams["reconnects"].fillna(0).sum()),
    }
