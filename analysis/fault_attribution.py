"""What the fault proxy did to each connection, joined onto the client's connection records.

A `[network]` phase's fault log (core.faultlog, ``network/<phase>/faults.jsonl``, named in
the manifest's ``phases[].network.logs.faults``) numbers connections in accept order and
names them by the first request line: WS upgrades carry ``conn=<conn_uid>`` (exact); SSE
requests carry only ``stream=``. An SSE connection is placed through the streams table:
the stream's (worker, user) — one Locust user opens one connection at a time — and, among
that user's connections in the phase, the last one whose ``connect()`` came before the
proxy's accept. That also places a resumed stream's second connection, which the streams
table does not name.

`connection_faults` is one row per proxied connection (what was injected: stalls,
blackholes, holds, refusals, the cut); `attribute_fault_cuts` gives connections the client
saw end as an EOF / error (it cannot tell a proxy's reset from the server's close) the
proxy's verdict, as analysis.attribution does with nginx's. The raw records are never
rewritten: these are views built when a run is loaded.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.attribution import CLIENT_SIDE_UNSURE, phase_log_rows
from core.faultlog import FAULT_EVENTS, connection_ids, read_fault_log

__all__ = [
    "attribute_fault_cuts",
    "connection_faults",
    "fault_rows_of_run",
    "place_connections",
]

FAULT_COLUMNS = [
    "phase",
    "conn",
    "conn_uid",
    "client_addr",
    "stream_id",
    "t_accept_ns",
    "faults",
    "stalls",
    "stall_ms",
    "blackholes",
    "held_ms",
    "refused",
    "cut_cause",
    "cut_client",
    "cut_server",
    "t_cut_ns",
    "t_cut_sched_ns",
]


def fault_rows_of_run(manifest: Mapping[str, Any], run_dir: Path | None) -> list[dict]:
    """Every `[network]` phase's fault-log rows, each tagged with its ``phase``."""
    return phase_log_rows(manifest, run_dir, "network", "faults", read_fault_log)


def _user_connections(connections: pd.DataFrame) -> dict[tuple, tuple[list[int], list[str]]]:
    """(phase, worker, user) → (sorted t_connect_ns, conn_uids in that order)."""
    out: dict[tuple, tuple[list[int], list[str]]] = {}
    cols = ["phase", "worker", "user", "t_connect_ns", "conn_uid"]
    if connections.empty or not set(cols) <= set(connections.columns):
        return out
    df = connections[cols].dropna(subset=["t_connect_ns"]).sort_values("t_connect_ns")
    for phase, worker, user, t, uid in df.itertuples(index=False):
        ts, uids = out.setdefault((phase, worker, user), ([], []))
        ts.append(int(t))
        uids.append(str(uid))
    return out


def place_connections(
    connections: pd.DataFrame, streams: pd.DataFrame, rows: list[dict]
) -> dict[tuple[str, int], str | None]:
    """(phase, proxy conn serial) → the client's conn_uid (None: could not be placed)."""
    by_phase: dict[str, list[dict]] = {}
    for r in rows:
        by_phase.setdefault(str(r.get("phase")), []).append(r)
    known = set(connections["conn_uid"].astype(str)) if not connections.empty else set()
    owner: dict[tuple[str, str], tuple] = {}  # (phase, stream_id) → (phase, worker, user)
    if not streams.empty and {"phase", "stream_id", "worker", "user"} <= set(streams.columns):
        for phase, sid, worker, user in streams[
            ["phase", "stream_id", "worker", "user"]
        ].itertuples(index=False):
            owner.setdefault((str(phase), str(sid)), (phase, worker, user))
    per_user = _user_connections(connections)
    out: dict[tuple[str, int], str | None] = {}
    for phase, prow in by_phase.items():
        for serial, ids in connection_ids(prow).items():
            uid = ids["conn_uid"]
            if uid is not None:
                out[(phase, serial)] = str(uid) if str(uid) in known else None
                continue
            key = owner.get((phase, str(ids["stream_id"])))
            t_accept = ids["t_accept_ns"]
            if key is None or t_accept is None or key not in per_user:
                out[(phase, serial)] = None
                continue
            ts, uids = per_user[key]
            i = bisect.bisect_right(ts, int(t_accept)) - 1
            out[(phase, serial)] = uids[i] if i >= 0 else None
    return out


def connection_faults(
    connections: pd.DataFrame, streams: pd.DataFrame, rows: list[dict]
) -> pd.DataFrame:
    """One row per proxied connection (`FAULT_COLUMNS`): what the proxy injected into it
    and the client connection it was (conn_uid None when it could not be placed)."""
    placed = place_connections(connections, streams, rows)
    acc: dict[tuple[str, int], dict[str, Any]] = {}
    for r in rows:
        if r.get("conn") is None:
            continue
        key = (str(r["phase"]), int(r["conn"]))
        a = acc.setdefault(
            key,
            {c: None for c in FAULT_COLUMNS}
            | {
                "phase": key[0],
                "conn": key[1],
                "faults": 0,
                "stalls": 0,
                "stall_ms": 0.0,
                "blackholes": 0,
                "refused": False,
                "conn_uid": placed.get(key),
            },
        )
        for k in ("client_addr", "stream_id"):
            a[k] = r.get(k) if r.get(k) is not None else a[k]
        ev = r["ev"]
        if ev in FAULT_EVENTS:
            a["faults"] += 1
        if ev == "accept":
            a["t_accept_ns"] = r["t_ns"]
        elif ev == "stall":
            a["stalls"] += 1
            a["stall_ms"] += float(r.get("stall_ms") or 0.0)
        elif ev == "blackhole":
            a["blackholes"] += 1
        elif ev == "held":
            a["held_ms"] = (int(r["release_ns"]) - int(r["t_ns"])) / 1e6
        elif ev == "refused":
            a["refused"] = True
        elif ev == "cut":
            a.update(
                cut_cause=r.get("cause"),
                cut_client=r.get("client"),
                cut_server=r.get("server"),
                t_cut_ns=r["t_ns"],
                t_cut_sched_ns=r.get("t_sched_ns"),
            )
    return pd.DataFrame(list(acc.values()), columns=FAULT_COLUMNS)


def attribute_fault_cuts(
    connections: pd.DataFrame, streams: pd.DataFrame, rows: list[dict]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """`connections` with the fault proxy's cuts and refusals applied where the client saw
    only an EOF or an error; counts (cuts, matched, changed, unplaced)."""
    faults = connection_faults(connections, streams, rows)
    ended = faults[faults["cut_cause"].notna() | faults["refused"].astype(bool)]
    stats = {"cuts": len(ended), "matched": 0, "changed": 0, "unplaced": 0}
    if ended.empty or connections.empty:
        stats["unplaced"] = len(ended)
        return connections, stats
    out = connections.copy()
    pos = {str(uid): n for n, uid in enumerate(out["conn_uid"])}
    closed_by = [None if pd.isna(x) else str(x) for x in out["closed_by"]]
    reason = [None if pd.isna(x) else str(x) for x in out["close_reason"]]
    for f in ended.itertuples(index=False):
        n = pos.get(str(f.conn_uid)) if f.conn_uid is not None else None
        if n is None:
            stats["unplaced"] += 1
            continue
        stats["matched"] += 1
        if closed_by[n] is not None and closed_by[n] not in CLIENT_SIDE_UNSURE:
            continue  # the client closed it itself first
        what = (
            "refused (network down)"
            if f.refused
            else f"cut {f.cut_cause} ({f.cut_client} to the client, {f.cut_server} to the server)"
        )
        seen = f" (client saw: {reason[n]})" if reason[n] else ""
        if closed_by[n] != "proxy":
            stats["changed"] += 1
        closed_by[n], reason[n] = "proxy", f"faultproxy: {what}{seen}"
    out["closed_by"] = pd.array(closed_by, dtype=connections["closed_by"].dtype)
    out["close_reason"] = pd.array(reason, dtype=connections["close_reason"].dtype)
    return out, stats
