"""Synthetic runs with known truth for the analysis tests.

Every stream follows a scripted clock: request sent `dispatch_ms` after its scheduled
time, stream open `open_ms` later, first token `ttft_ms` after the send, then one token
every `gap_ms`; each token is stamped by the "server" `delivery_ms` before it arrives.
Frames are built through the record schema (core.records) and converted with
core.runfolder.to_pandas, so they carry the same nullable dtypes as a real run. Like the
load client, every row with a phase carries the phase's ``scenario`` / ``variant`` /
``rep`` columns (schema 2); the scripts name them through their phase names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from analysis.legacy import phase_identity
from core.records import TABLES
from core.runfolder import to_pandas

MS = 1_000_000
S = 1_000_000_000
BASE = 10_000 * S  # a realistic monotonic_ns value (~2.8 h of uptime)


@dataclass(frozen=True)
class Script:
    arm: str = "sse"
    phase: str = "chat/sse/rep1"
    streams: int = 4
    tokens: int = 50
    ttft_ms: float = 300.0
    gap_ms: float = 20.0
    dispatch_ms: float = 2.0
    open_ms: float = 5.0
    connect_ms: float = 3.0
    delivery_ms: float | None = 1.5  # None: foreign server, no stamps
    spacing_s: float = 2.0  # between stream sends
    start_ns: int = BASE
    users_target: int | None = None
    bytes_per_token: int = 60
    server_stamps: bool = True
    #: first body byte / first event after the send (nullable in schema 2); None: not recorded
    first_byte_ms: float | None = None
    first_event_ms: float | None = None


def phase_columns(phase: str | None) -> dict[str, Any]:
    """The scenario / variant / rep a load client writes for rows of ``phase``."""
    scenario, variant, rep = phase_identity(phase)
    return {"scenario": scenario, "variant": variant, "rep": rep}


def frame(table: str, rows: list[dict[str, Any]]) -> Any:
    """A frame of ``table``; rows with a phase get its columns unless they carry them."""
    if "scenario" in TABLES[table].names:
        rows = [{**phase_columns(r.get("phase")), **r} if "scenario" not in r else r for r in rows]
    return to_pandas(pa.Table.from_pylist(rows, schema=TABLES[table]))


def build(scripts: list[Script]) -> dict[str, Any]:
    """{'streams', 'tokens', 'connections', 'resources'} frames for the given scripts."""
    streams, tokens, conns = [], [], []
    for sc in scripts:
        for k in range(sc.streams):
            uid = f"{sc.phase}/{k}"
            t_sched = sc.start_ns + int(k * sc.spacing_s * S)
            t_send = t_sched + int(sc.dispatch_ms * MS)
            t_conn = t_send - int(sc.connect_ms * MS)
            t_open = t_send + int(sc.open_ms * MS)
            recv = [
                t_send + int(sc.ttft_ms * MS) + int(i * sc.gap_ms * MS) for i in range(sc.tokens)
            ]
            t_end = recv[-1] + 1 * MS
            for i, t in enumerate(recv):
                tokens.append(
                    {
                        "stream_uid": uid,
                        "seq": i,
                        "t_recv_ns": t,
                        "t_server_ns": t - int(sc.delivery_ms * MS)
                        if sc.delivery_ms is not None
                        else None,
                        "nbytes": sc.bytes_per_token,
                    }
                )
            streams.append(
                {
                    "stream_uid": uid,
                    "phase": sc.phase,
                    "arm": sc.arm,
                    "worker": "w1",
                    "user": k,
                    "session": 0,
                    "turn": 0,
                    "stream_id": str(k),
                    "conn_uid": f"{sc.phase}/c{k}",
                    "seed": 1,
                    "tokens_expected": sc.tokens,
                    "ttft_ms_sched": sc.ttft_ms,
                    "gap_ms_sched": sc.gap_ms,
                    "t_sched_ns": t_sched,
                    "t_send_ns": t_send,
                    "t_open_ns": t_open,
                    "t_first_ns": recv[0],
                    "t_last_ns": recv[-1],
                    "t_end_ns": t_end,
                    "n_received": sc.tokens,
                    "n_unique": sc.tokens,
                    "n_lost": 0,
                    "n_dup": 0,
                    "n_out_of_order": 0,
                    "checksum_ok": True,
                    "done": True,
                    "outcome": "ok",
                    "reconnects": 0,
                    "bytes_in": sc.tokens * (sc.bytes_per_token + 10) + 50,
                    "reused_conn": False,
                    "users_target": sc.users_target,
                    "t_first_byte_ns": None
                    if sc.first_byte_ms is None
                    else t_send + int(sc.first_byte_ms * MS),
                    "t_first_event_ns": None
                    if sc.first_event_ms is None
                    else t_send + int(sc.first_event_ms * MS),
                }
            )
            conns.append(
                {
                    "conn_uid": f"{sc.phase}/c{k}",
                    "phase": sc.phase,
                    "arm": sc.arm,
                    "worker": "w1",
                    "user": k,
                    "t_connect_ns": t_conn,
                    "t_open_ns": t_conn + int(sc.connect_ms * MS),
                    "t_close_ns": t_end,
                    "closed_by": "client",
                    "streams": 1,
                    "busy_ns": t_end - t_send,
                    "bytes_in": sc.tokens * (sc.bytes_per_token + 10) + 250,
                    "bytes_out": 200,
                }
            )
    return {
        "streams": frame("streams", streams),
        "tokens": frame("tokens", tokens),
        "connections": frame("connections", conns),
        "resources": frame("resources", []),
    }
