"""The fault proxy's log: one JSON object per line, one line per injected fault or
connection event (`faults.jsonl` in the phase's network folder).

The proxy (bench.faultproxy) writes it; the analysis reads it and joins it onto the
client's connection records. This module is where both meet, so both use the same names.

Every line has ``ev`` (one of `EVENTS`) and ``t_ns`` (time.monotonic_ns() when the proxy
acted — the same clock as the client's and the server's records on one host). Lines about
one connection also carry:

- ``conn``: the proxy's accept-order serial (1, 2, …) — the key within one log;
- ``client_addr``: the client's ``ip:port`` as the proxy saw it;
- ``stream_id`` / ``conn_uid``: from the first request line the client sent (the query's
  ``stream=`` for an SSE GET, ``conn=`` on a WS upgrade URL), once seen — None before.

Scheduled faults also carry ``t_sched_ns``: the instant the schedule asked for, so the
analysis (and the proxy's own tests) can compare the two. Directions are ``up``
(client → server) and ``down`` (server → client).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "CONN_EVENTS",
    "EVENTS",
    "FAULT_EVENTS",
    "FAULT_LOG",
    "FaultLogWriter",
    "connection_ids",
    "encode_event",
    "faults_by_connection",
    "read_fault_log",
]

#: The file name inside the folder given to the proxy (`--log DIR`).
FAULT_LOG = "faults.jsonl"

#: Every event name, and what its line holds beyond ev / t_ns.
EVENTS = {
    "start": "proxy up: profile (resolved), seed, t0_ns (schedule origin), listen, upstream",
    "accept": "a client connected: conn, client_addr",
    "request": "first request line seen: conn, method, path, stream_id, conn_uid",
    "upstream": "the proxy's connection to the server is open: conn",
    "upstream_failed": "the server could not be reached: conn, error",
    "stall": "a lost segment, retransmitted after an RTO: conn, dir, segment (index), offset "
    "(its first byte), retries, stall_ms, release_ns (when its bytes go out)",
    "blackhole": "a connection's bytes were caught in a blackhole: conn, dir, t_lost_ns (first "
    "byte that would have crossed it), resume_ns (the retransmission after it ended)",
    "blackhole_start": "the whole network goes dark: t_sched_ns, until_ns, open (connections)",
    "blackhole_end": "the network is back: t_sched_ns",
    "handover": "every open connection is cut and new ones fail for a gap: t_sched_ns, "
    "until_ns, open",
    "handover_end": "new connections work again: t_sched_ns",
    "held": "a new connection arrived while the network was down; it is held (SYN "
    "retransmitted) until release_ns: conn, cause",
    "refused": "a new connection arrived during a handover gap and was reset: conn, cause",
    "cut": "the proxy cut a connection: conn, cause (after_s | after_bytes | handover), "
    "rule, client (fin | rst | silent), server (fin | rst | silent), t_sched_ns, "
    "bytes_up, bytes_down",
    "close_in_flight": "a peer reset its side while the path delays its bytes (latency, a "
    "blackhole): the other side is reset at release_ns, when the reset has crossed: conn, "
    "side, release_ns",
    "silent_closed": "a side the proxy had gone silent towards closed its end: conn, side, "
    "discarded (bytes taken and dropped), silent_s",
    "close": "the connection is gone: conn, closed_by (client | server | proxy), how "
    "(fin | rst | error), bytes_up, bytes_down",
    "stop": "proxy stopping: counts of every event, open (connections), lateness (how late "
    "scheduled bytes were written against their release: pieces, p50_ms, p99_ms, max_ms)",
}

#: The events that are injected faults (the rest describe what happened around them).
FAULT_EVENTS = ("stall", "blackhole", "cut", "held", "refused")

#: Events that name one connection (carry conn / client / stream_id / conn_uid).
CONN_EVENTS = (
    "accept",
    "request",
    "upstream",
    "upstream_failed",
    "stall",
    "blackhole",
    "held",
    "refused",
    "cut",
    "close_in_flight",
    "silent_closed",
    "close",
)


def encode_event(ev: str, t_ns: int, fields: dict[str, Any]) -> str:
    """One log line (no newline). Unknown event names are a programming error."""
    if ev not in EVENTS:
        raise ValueError(f"unknown fault-log event {ev!r}")
    return json.dumps({"ev": ev, "t_ns": int(t_ns), **fields}, separators=(",", ":"))


class FaultLogWriter:
    """Appends events to a file, buffered; `flush()` writes them out (the proxy calls it on
    a timer and when it stops, so a crash loses at most one interval)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open
        self._pending: list[str] = []
        self.counts: dict[str, int] = {}

    def write(self, ev: str, t_ns: int, **fields: Any) -> None:
        self._pending.append(encode_event(ev, t_ns, fields))
        self.counts[ev] = self.counts.get(ev, 0) + 1

    def flush(self) -> None:
        if self._pending and not self._file.closed:
            self._file.write("\n".join(self._pending) + "\n")
            self._file.flush()
            self._pending.clear()

    def close(self) -> None:
        self.flush()
        self._file.close()


def read_fault_log(path: Path | str) -> list[dict[str, Any]]:
    """Every well-formed line of a fault log, in order (a torn last line is skipped)."""
    rows: list[dict[str, Any]] = []
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return rows
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("ev") in EVENTS:
            rows.append(row)
    return rows


def connection_ids(rows: Iterable[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """conn serial → {client_addr, stream_id, conn_uid, t_accept_ns}: what names each one."""
    out: dict[int, dict[str, Any]] = {}
    for row in rows:
        conn = row.get("conn")
        if conn is None or row.get("ev") not in CONN_EVENTS:
            continue
        ids = out.setdefault(
            int(conn),
            {"client_addr": None, "stream_id": None, "conn_uid": None, "t_accept_ns": None},
        )
        for key in ("client_addr", "stream_id", "conn_uid"):
            if row.get(key) is not None:
                ids[key] = row[key]
        if row["ev"] in ("accept", "held", "refused") and ids["t_accept_ns"] is None:
            ids["t_accept_ns"] = row["t_ns"]
    return out


def faults_by_connection(rows: Iterable[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(conn, row) for every injected fault (`FAULT_EVENTS`) that names a connection."""
    for row in rows:
        if row.get("ev") in FAULT_EVENTS and row.get("conn") is not None:
            yield int(row["conn"]), row
