"""Read what nginx wrote about a phase: who closed which stream, and streams per connection.

Two logs, both rendered into the phase's nginx folder by `bench.nginx_conf`:

- access.log (format `bench`): one row per request when it ended, with nginx's connection
  serial (`conn=`), the request's index on it and the protocol — streams per TCP
  connection is a group-by on `conn` (C7).
- error.log (level info): the close events. nginx prefixes each line with `*<serial>`
  (the same serial as `conn=` for HTTP/1.1) and ends it with the request line, which
  carries the stream's id (SSE: `stream=` in the query) or the client connection's id
  (WS: the client puts `conn=<conn_uid>` on its upgrade URL). `proxy_closes` turns those
  lines into per-connection outcomes the analysis joins onto the client's records: the
  client alone cannot tell nginx closing from the server closing (both are an EOF).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from core.stats import nearest_rank

__all__ = [
    "CLOSE_EVENTS",
    "LOG_PATTERNS",
    "count_log_events",
    "proxy_closes",
    "read_access_log",
    "read_error_log",
    "summarize_access_log",
    "summarize_closes",
]

#: error.log phrases (nginx 1.22 wording) → the event they mark.
LOG_PATTERNS = {
    "upstream_timed_out": "upstream timed out",
    "client_closed": "client prematurely closed",
    "upstream_closed": "upstream prematurely closed",
    "client_timed_out": "client timed out",
    "connect_failed": "connect() failed",
}

#: event → who ended the client's stream. nginx's proxy_read_timeout (upstream timed out)
#: and send_timeout (client timed out) are nginx's own decisions; a refused upstream
#: connect is answered by nginx (502); "upstream prematurely closed" is the server hanging
#: up (nginx passes the close on); "client prematurely closed" is the client leaving.
CLOSE_EVENTS = {
    "upstream_timed_out": "proxy",
    "client_timed_out": "proxy",
    "connect_failed": "proxy",
    "upstream_closed": "server",
    "client_closed": "client",
}

_ACCESS_RE = re.compile(
    r'^(?P<addr>\S+) \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d+) (?P<bytes>\d+) '
    r"rt=(?P<rt>\S+) urt=(?P<urt>\S+) us=(?P<us>\S+) conn=(?P<conn>\d+) "
    r"reqs=(?P<reqs>\d+) proto=(?P<proto>\S+)$"
)
_ERROR_RE = re.compile(
    r"^(?P<time>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(?P<level>\w+)\] \d+#\d+: "
    r"(?:\*(?P<conn>\d+) )?(?P<message>.*)$"
)
_REQUEST_RE = re.compile(r', request: "(?P<request>[^"]*)"')


def _lines(path: Path | str) -> list[str]:
    try:
        return Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return []


def _num(x: str) -> float | None:
    # $upstream_response_time is "-" without an upstream, "a, b" after a retry: keep the last
    try:
        return float(x.split(",")[-1].strip())
    except ValueError:
        return None


def _target(request: str) -> str:
    """The target of a request line ("GET /v1/stream?x=1 HTTP/1.1" → "/v1/stream?x=1")."""
    parts = request.split(" ")
    return parts[1] if len(parts) >= 3 else (parts[-1] if parts else "")


def read_access_log(path: Path | str) -> list[dict[str, Any]]:
    """Rows of the `bench` access-log format: one per request, logged when it ended.

    `conn` is nginx's connection serial number and `reqs` the request's index on it, so
    streams per TCP connection (HTTP/1.1 vs HTTP/2, C7) is a group-by on `conn`. A stream
    nginx cut for idleness has `request_time` ≈ proxy_read_timeout and an
    "upstream timed out" line in error.log.
    """
    rows: list[dict[str, Any]] = []
    for line in _lines(path):
        m = _ACCESS_RE.match(line)
        if not m:
            continue
        method, _, rest = m["request"].partition(" ")
        rows.append(
            {
                "time": m["time"],
                "method": method,
                "target": rest.rsplit(" ", 1)[0],
                "status": int(m["status"]),
                "bytes_sent": int(m["bytes"]),
                "request_time_s": _num(m["rt"]),
                "upstream_response_time_s": _num(m["urt"]),
                "upstream_status": m["us"],
                "connection": int(m["conn"]),
                "connection_requests": int(m["reqs"]),
                "protocol": m["proto"],
            }
        )
    return rows


def summarize_access_log(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-connection view of one phase's access log, for the manifest / proxy.json.

    Only stream requests count (`/v1/stream`, `/v1/ws`). ``status`` counts (101 = WS
    upgrade, 504 = nginx's read timeout before the response head), request_time p50/max,
    streams per TCP connection (nginx's `$connection` serial). Streams nginx cut for
    idleness are counted from error.log (`count_log_events`, `proxy_closes`): a cut after
    the response head still logs status 200 / 101 here.
    """
    streams = [r for r in rows if str(r["target"]).startswith(("/v1/stream", "/v1/ws"))]
    by_status: dict[str, int] = {}
    for r in streams:
        by_status[str(r["status"])] = by_status.get(str(r["status"]), 0) + 1
    per_conn: dict[int, int] = {}
    for r in streams:
        per_conn[r["connection"]] = per_conn.get(r["connection"], 0) + 1
    rts = [r["request_time_s"] for r in streams if r["request_time_s"] is not None]
    return {
        "requests": len(rows),
        "stream_requests": len(streams),
        "status": dict(sorted(by_status.items())),
        "request_time_s_p50": nearest_rank(rts, 0.5),
        "request_time_s_max": max(rts) if rts else None,
        "connections": len(per_conn),
        "streams_per_connection_max": max(per_conn.values()) if per_conn else 0,
        "streams_per_connection_mean": (len(streams) / len(per_conn)) if per_conn else None,
        "protocols": sorted({str(r["protocol"]) for r in streams}),
        "bytes_sent": sum(int(r["bytes_sent"]) for r in streams),
    }


def read_error_log(path: Path | str) -> list[dict[str, Any]]:
    """error.log lines that name one of `LOG_PATTERNS`, parsed.

    Each row: time (nginx's local wall clock, 1 s resolution), level, nginx_conn (the
    `*serial`, None for process-level lines), event (a `LOG_PATTERNS` key), message (up to
    ", client:"), target (the request's target, "" when the line names no request).
    """
    rows: list[dict[str, Any]] = []
    for line in _lines(path):
        event = next((k for k, needle in LOG_PATTERNS.items() if needle in line), None)
        if event is None:
            continue
        m = _ERROR_RE.match(line)
        if not m:
            continue
        req = _REQUEST_RE.search(line)
        rows.append(
            {
                "time": m["time"],
                "level": m["level"],
                "nginx_conn": int(m["conn"]) if m["conn"] else None,
                "event": event,
                "message": m["message"].split(", client:", 1)[0],
                "target": _target(req["request"]) if req else "",
            }
        )
    return rows


def count_log_events(path: Path | str) -> dict[str, int]:
    """How many error-log lines name each `LOG_PATTERNS` event (0 for the others)."""
    counts = dict.fromkeys(LOG_PATTERNS, 0)
    for row in read_error_log(path):
        counts[row["event"]] += 1
    return counts


def proxy_closes(error_log: Path | str) -> list[dict[str, Any]]:
    """Per-connection outcomes from error.log: which stream / client connection ended, why,
    and who ended it (`CLOSE_EVENTS`).

    Each row: nginx_conn, time, event, closed_by (proxy | server | client), message,
    stream_id (SSE: the request's `stream=`), conn_uid (WS: the upgrade URL's `conn=`).
    A row whose request names neither keeps both None (the analysis cannot place it and
    says so). One row per nginx connection and event: nginx can log the same cut twice.
    """
    out: list[dict[str, Any]] = []
    seen: set[tuple[int | None, str, str]] = set()
    for row in read_error_log(error_log):
        key = (row["nginx_conn"], row["event"], row["target"])
        if row["nginx_conn"] is not None and key in seen:
            continue
        seen.add(key)
        query = parse_qs(urlsplit(row["target"]).query)
        out.append(
            {
                "nginx_conn": row["nginx_conn"],
                "time": row["time"],
                "event": row["event"],
                "closed_by": CLOSE_EVENTS[row["event"]],
                "message": row["message"],
                "stream_id": (query.get("stream") or [None])[-1],
                "conn_uid": (query.get("conn") or [None])[-1],
            }
        )
    return out


def summarize_closes(closes: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts of `proxy_closes` rows by who closed and by event, and how many name no
    stream or connection (those cannot be joined onto the client's records)."""
    by: dict[str, int] = {}
    events: dict[str, int] = {}
    for c in closes:
        by[c["closed_by"]] = by.get(c["closed_by"], 0) + 1
        events[c["event"]] = events.get(c["event"], 0) + 1
    unplaced = sum(1 for c in closes if c["stream_id"] is None and c["conn_uid"] is None)
    return {
        "closes": len(closes),
        "by": dict(sorted(by.items())),
        "events": dict(sorted(events.items())),
        "unplaced": unplaced,
    }
