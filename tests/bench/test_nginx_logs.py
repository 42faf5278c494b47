"""bench.nginx_logs on nginx's own wording (lines as nginx 1.22 writes them, trimmed).

No nginx needed: the real-nginx proof is tests/bench/test_proxy_run.py.
"""

from __future__ import annotations

from pathlib import Path

from bench.nginx_logs import (
    CLOSE_EVENTS,
    count_log_events,
    proxy_closes,
    read_error_log,
    summarize_closes,
)

SSE_TARGET = "/v1/stream?seed=7&tokens=20&stream=7.0.1.0.0&pause_ms=3000.0&pause_at=10"
LINES = [
    # SSE stream cut by proxy_read_timeout
    "2026/11/23 23:35:12 [error] 19004#19004: *3 upstream timed out (110: Connection timed "
    "out) while reading upstream, client: 127.0.0.1, server: localhost, request: "
    f'"GET {SSE_TARGET} HTTP/1.1", upstream: "http://127.0.0.1:33399{SSE_TARGET}", '
    'host: "127.0.0.1:47329"',
    # the same cut logged a second time: one outcome
    "2026/11/23 23:35:12 [error] 19004#19004: *3 upstream timed out (110: Connection timed "
    "out) while reading upstream, client: 127.0.0.1, server: localhost, request: "
    f'"GET {SSE_TARGET} HTTP/1.1", upstream: "http://127.0.0.1:33399{SSE_TARGET}"',
    # WS connection cut, named by the client's conn= on the upgrade URL
    "2026/11/23 23:35:16 [info] 19020#19020: *8 upstream timed out (110: Connection timed "
    "out) while proxying upgraded connection, client: 127.0.0.1, server: localhost, "
    'request: "GET /v1/ws?conn=proxy-idle.idle-nohb/ws/r1/0.1.c2 HTTP/1.1", upstream: '
    '"http://127.0.0.1:38617/v1/ws?conn=proxy-idle.idle-nohb/ws/r1/0.1.c2"',
    # the server hung up (drop_after): by server
    "2026/11/23 23:35:20 [error] 19020#19020: *9 upstream prematurely closed connection "
    "while reading upstream, client: 127.0.0.1, server: localhost, request: "
    '"GET /v1/stream?stream=9.0.0.1.0 HTTP/1.1", upstream: "http://127.0.0.1:1/x"',
    # the client left: by client
    "2026/11/23 23:35:21 [info] 19020#19020: *10 client prematurely closed connection while "
    'sending to client, client: 127.0.0.1, server: localhost, request: "GET /v1/ws HTTP/1.1"',
    # noise nginx writes at level info: not an outcome
    "2026/11/23 23:35:24 [info] 19033#19033: *2 client 127.0.0.1 closed keepalive connection",
    "2026/11/23 23:35:24 [notice] 19033#19033: signal process started",
]


def write_log(tmp_path: Path) -> Path:
    path = tmp_path / "error.log"
    path.write_text("\n".join(LINES) + "\n")
    return path


def test_read_error_log_parses_serial_event_and_target(tmp_path: Path) -> None:
    rows = read_error_log(write_log(tmp_path))
    assert [r["event"] for r in rows] == [
        "upstream_timed_out",
        "upstream_timed_out",
        "upstream_timed_out",
        "upstream_closed",
        "client_closed",
    ]
    first = rows[0]
    assert first["nginx_conn"] == 3 and first["level"] == "error"
    assert first["time"] == "2026/11/23 23:35:12"
    assert first["target"] == SSE_TARGET
    assert first["message"].startswith("upstream timed out") and "client:" not in first["message"]


def test_count_log_events_counts_lines(tmp_path: Path) -> None:
    counts = count_log_events(write_log(tmp_path))
    assert counts["upstream_timed_out"] == 3
    assert counts["upstream_closed"] == 1 and counts["client_closed"] == 1
    assert counts["connect_failed"] == 0
    assert count_log_events(tmp_path / "missing.log") == dict.fromkeys(counts, 0)


def test_proxy_closes_names_stream_or_connection_and_who_closed(tmp_path: Path) -> None:
    closes = proxy_closes(write_log(tmp_path))
    assert len(closes) == 4  # the repeated *3 line is one outcome
    sse, ws, server, client = closes
    assert (sse["closed_by"], sse["stream_id"], sse["conn_uid"]) == ("proxy", "7.0.1.0.0", None)
    assert (ws["closed_by"], ws["conn_uid"]) == ("proxy", "proxy-idle.idle-nohb/ws/r1/0.1.c2")
    assert ws["nginx_conn"] == 8 and ws["stream_id"] is None
    assert (server["closed_by"], server["stream_id"]) == ("server", "9.0.0.1.0")
    assert (client["closed_by"], client["stream_id"], client["conn_uid"]) == ("client", None, None)
    assert summarize_closes(closes) == {
        "closes": 4,
        "by": {"client": 1, "proxy": 2, "server": 1},
        "events": {"client_closed": 1, "upstream_closed": 1, "upstream_timed_out": 2},
        "unplaced": 1,
    }


def test_every_event_has_a_closer() -> None:
    from bench.nginx_logs import LOG_PATTERNS

    assert set(CLOSE_EVENTS) == set(LOG_PATTERNS)
    assert set(CLOSE_EVENTS.values()) <= {"proxy", "server", "client"}
