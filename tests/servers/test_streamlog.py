"""The stream log (``--stream-log``): one line per emission, its counts equal to /metrics',
and what told the server that a stream ended — a completed stream, a resumed part, a
client that reset its connection (the next write fails), and a WebSocket client that went
quiet (never reads, never answers a ping: aiohttp closes it after half a heartbeat)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from core.streamlog import ENDED_BY, read_stream_log
from tests.servers.clients import sse_stream, ws_close, ws_connect, ws_read
from tests.servers.conftest import Server, start_server, stop_server
from tests.servers.rawclients import start_never_reading

KINDS = ("sse", "ws", "ws-websockets")
HB_S = 0.3
STREAM = {"seed": 3, "tokens": 30, "ttft_ms": 0, "gap_ms": 5}


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Server, Path]]]:
    d = tmp_path_factory.mktemp("streamlog")
    out = {}
    try:
        for kind in KINDS:
            path = d / f"{kind}.jsonl"
            srv = start_server(kind, "--heartbeat-s", f"{HB_S:g}", "--stream-log", str(path))
            out[kind] = (srv, path)
        yield out
    finally:
        for srv, _ in out.values():
            assert stop_server(srv) == 0


def _lines(path: Path, stream: str, n: int, timeout_s: float = 10.0) -> list[dict]:
    """The log's lines for `stream` once there are `n` (the server flushes every 0.5 s)."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = [r for r in read_stream_log(path) if str(r["stream"]) == stream]
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def _read_whole(srv: Server, stream: str, after: int | None = None) -> None:
    if srv.kind == "sse":
        headers = {} if after is None else {"Last-Event-ID": str(after)}
        res = sse_stream(f"{srv.http}/v1/stream", params={**STREAM, "stream": stream},
                         headers=headers)  # fmt: skip
        assert res.done is not None
        return
    ws = ws_connect(srv.ws_url + "?conn=t%2Fc1")
    try:
        if after is None:
            ws.send(json.dumps({"type": "start", **STREAM, "stream": stream}))
        else:
            ws.send(json.dumps({"type": "resume", "stream": stream, "after": after, **STREAM}))
        assert ws_read(ws).done is not None
    finally:
        ws_close(ws)


@pytest.mark.parametrize("kind", KINDS)
def test_complete_and_resumed_emissions(logged, kind: str) -> None:
    srv, path = logged[kind]
    _read_whole(srv, f"done-{kind}")
    _read_whole(srv, f"done-{kind}", after=11)
    first, resumed = _lines(path, f"done-{kind}", 2)
    assert (first["start"], first["sent"], first["wasted"]) == (0, 30, 0)
    assert (resumed["start"], resumed["sent"], resumed["wasted"]) == (12, 18, 0)
    for r in (first, resumed):
        assert (r["outcome"], r["ended_by"], r["n"], r["kind"]) == (
            "completed",
            "complete",
            30,
            kind,
        )
        assert r["t0_ns"] <= r["t_start_ns"] <= r["t_end_ns"]
    assert resumed["t0_ns"] == first["t0_ns"]  # resumed on the original schedule
    assert first["conn"] == (None if kind == "sse" else "t/c1")


@pytest.mark.parametrize("kind", KINDS)
def test_reset_by_the_client_is_learned_on_a_write(logged, kind: str) -> None:
    """A client that resets its connection mid-stream: SSE learns on its next write; a WS
    server on that write or from its read loop, whichever comes first."""
    srv, path = logged[kind]
    stream = f"reset-{kind}"
    sock = start_never_reading(srv, {**STREAM, "tokens": 400, "gap_ms": 10, "stream": stream})
    time.sleep(0.2)  # before aiohttp's first ping (0.3 s) could time out
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
    sock.close()
    (r,) = _lines(path, stream, 1)
    assert r["outcome"] == "disconnected" and 0 < r["sent"] < 400
    assert r["ended_by"] in (("write",) if kind == "sse" else ("write", "close"))
    assert r["sent"] + r["wasted"] <= 400


def test_ws_ping_unanswered_is_a_ping_timeout(logged) -> None:
    """aiohttp pings every 0.3 s and closes after 0.15 s without a pong; a client that
    never reads never answers: the stream ends ping_timeout (not a protocol error)."""
    srv, path = logged["ws"]
    before = srv.metrics()
    sock = start_never_reading(srv, {**STREAM, "tokens": 400, "gap_ms": 20, "stream": "quiet"})
    try:
        (r,) = _lines(path, "quiet", 1)
    finally:
        sock.close()
    assert (r["outcome"], r["ended_by"]) == ("disconnected", "ping_timeout")
    assert (r["t_end_ns"] - r["t_start_ns"]) / 1e9 < 8 * 0.02 * 400  # long before its end
    after = srv.metrics()
    assert after["ssevsws_ws_protocol_errors_total"] == before["ssevsws_ws_protocol_errors_total"]
    key = "ssevsws_stream_disconnects_total{detected_by=ping_timeout}"
    assert after[key] - before.get(key, 0.0) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_log_totals_equal_the_metrics(logged, kind: str) -> None:
    srv, path = logged[kind]
    _read_whole(srv, f"sum-{kind}")
    m = srv.wait_idle()
    time.sleep(0.7)  # one flush
    rows = read_stream_log(path)
    assert rows and all(r["ended_by"] in ENDED_BY for r in rows)
    assert sum(r["sent"] for r in rows) == m["ssevsws_tokens_sent_total"]
    assert sum(r["wasted"] for r in rows) == m["ssevsws_tokens_wasted_total"]
    assert sum(r["start"] > 0 for r in rows) == m["ssevsws_streams_resumed_total"]
    by: dict[str, int] = {}
    for r in rows:
        if r["outcome"] == "disconnected":
            by[r["ended_by"]] = by.get(r["ended_by"], 0) + 1
    for cause, n in by.items():
        assert m[f"ssevsws_stream_disconnects_total{{detected_by={cause}}}"] == n
    assert requests.get(f"{srv.http}/healthz", timeout=5).status_code == 200
