"""The client's gevent path: `wire._ReadWaiter` (one io watcher per connection, one timer
per deadline, no gevent.Timeout per read) under the transports. The in-process transport
tests use plain sockets, so the gevent path is driven here through `python -m
loadtests.drive`. (The WS frame parser is the client core's: tests/core/test_client_ws.py.)
"""

from __future__ import annotations

from .conftest import TINY, drive, start_server, stop_server

# --------------------------------------------------------------------------- under gevent
STREAM = ("--tokens", "30", "--ttft-ms", "50", "--gap-ms", "10", "--jitter", "0")


def _ok(out: dict, n: int) -> None:
    assert out["killed"] == 0 and not out["greenlet_errors"], out
    assert out["outcomes"] == {"ok": n}, out
    assert out["checksum_ok"] == n and out["lost"] == 0 and out["dup"] == 0, out


def test_stream_timeout_fires_at_the_deadline(ref: dict[str, str]) -> None:
    for arm in ("sse", "ws"):
        out = drive(
            arm,
            ref[arm],
            "--users",
            "20",
            "--tokens",
            "50",
            "--ttft-ms",
            "300",
            "--gap-ms",
            "20",
            "--stream-timeout-s",
            "0.5",
            "--rows",
        )
        assert out["outcomes"] == {"timeout": 20}, out
        for row in out["rows"]:
            took = (row["t_end_ns"] - row["t_send_ns"]) / 1e9
            assert 0.5 <= took < 0.7, (arm, took)
            assert 5 <= row["n_received"] < 50


def test_drops_aborts_cancels_and_turns_under_gevent(ref: dict[str, str]) -> None:
    for arm in ("sse", "ws"):
        p = "sse" if arm == "sse" else "ws"
        _ok(drive(p, ref[arm], "--users", "20", *STREAM, "--drop-after", "10"), 20)
        _ok(drive(p, ref[arm], "--users", "20", *STREAM, "--client-abort-after", "7"), 20)
        _ok(drive(p, ref[arm], "--users", "10", *STREAM, "--turns", "3", "--think-s", "0.3"), 30)
        out = drive(
            p,
            ref[arm],
            "--users",
            "10",
            *STREAM,
            "--turns",
            "2",
            "--cancel-prob",
            "1",
            "--cancel-after",
            "5",
            "--cancel-mode",
            "cancel",
        )
        assert out["outcomes"] == {"cancelled": 20} and not out["greenlet_errors"], out


def test_ws_answers_pings_while_idle_under_gevent() -> None:
    """The tiny server pings every 0.2 s and closes a client that has not answered within
    0.2 s; two turns with 1.5 s of think time between them stay on one connection."""
    proc, port = start_server([str(TINY), "ws", "{port}", "0.2"])
    try:
        out = drive(
            "ws",
            f"ws://127.0.0.1:{port}",
            "--users",
            "5",
            *STREAM,
            "--turns",
            "2",
            "--think-s",
            "1.5",
            "--rows",
        )
    finally:
        stop_server(proc)
    assert out["outcomes"] == {"ok": 10}, out
    assert out["connections"] == 5, out
    assert all(c["closed_by"] == "client" for c in out["conn_rows"]), out["conn_rows"]
