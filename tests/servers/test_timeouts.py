"""Item 7: clients that never read, never finish a request head, or sit idle are released.

Servers here run with short timeouts (below); each test checks the connection is closed
by the server within a bound, the close is counted by reason on /metrics, and a fresh
client is served. Legitimate long gaps (a stream's pause with heartbeats off) are not cut.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests

from tests.servers.clients import sse_stream, ws_close, ws_connect, ws_read
from tests.servers.conftest import Server, ServerPool, start_server, stop_server
from tests.servers.rawclients import (
    HUGE,
    closed_by_server,
    raw_connect,
    start_never_reading,
    wait_blocked,
    wait_counter,
)

KINDS = ("sse", "ws", "ws-websockets")
SHORT = ("--send-timeout-s", "1", "--header-timeout-s", "0.5", "--idle-timeout-s", "1")


def _short(servers: ServerPool, kind: str) -> Server:
    return servers.get(kind, "--heartbeat-s", "0", *SHORT)


def _closed(srv: Server, reason: str) -> float:
    return srv.metrics().get(f"ssevsws_connections_closed_total{{reason={reason}}}", 0.0)


@pytest.mark.parametrize("kind", KINDS)
def test_slow_consumer_is_cut_after_the_send_timeout(servers: ServerPool, kind: str) -> None:
    srv = _short(servers, kind)
    before = srv.wait_idle()
    key = "ssevsws_connections_closed_total{reason=slow_consumer}"
    sock = start_never_reading(srv, {**HUGE, "stream": "stuck"})
    try:
        wait_blocked(srv, before["ssevsws_tokens_sent_total"])
        took = wait_counter(srv, key, before.get(key, 0.0), within_s=8)
        assert took <= 5, took  # send timeout 1 s (+ the blocked check's 0.3 s)
        after = srv.wait_idle()
        assert after["ssevsws_streams_active"] == 0
        assert after[key] == before.get(key, 0.0) + 1
        closed_by_server(sock, within_s=5)  # what was buffered, then the end
    finally:
        sock.close()
    assert requests.get(srv.http + "/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"])
def test_unfinished_request_head_is_closed(servers: ServerPool, kind: str, sent: bytes) -> None:
    srv = _short(servers, kind)
    before = _closed(srv, "header_timeout")
    sock = raw_connect(srv.port)
    try:
        sock.sendall(sent)
        took = closed_by_server(sock, within_s=5)
    finally:
        sock.close()
    assert took <= 3, took
    assert _closed(srv, "header_timeout") == before + 1


def test_idle_keepalive_connection_is_closed(servers: ServerPool) -> None:
    srv = _short(servers, "sse")
    before = _closed(srv, "idle")
    sock = raw_connect(srv.port)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        took = closed_by_server(sock, within_s=5)
    finally:
        sock.close()
    assert 0.5 <= took <= 3, took
    assert _closed(srv, "idle") == before + 1


@pytest.mark.parametrize("kind", ["ws", "ws-websockets"])
def test_idle_ws_connection_closes_1001(servers: ServerPool, kind: str) -> None:
    srv = _short(servers, kind)
    before = _closed(srv, "idle")
    ws = ws_connect(srv.ws_url)
    try:
        t0 = time.monotonic()
        res = ws_read(ws, until_type=None)
        took = time.monotonic() - t0
    finally:
        ws_close(ws)
    assert res.close_code == 1001 and "idle" in res.close_reason, res
    assert 0.5 <= took <= 3, took
    assert _closed(srv, "idle") == before + 1


@pytest.mark.parametrize("kind", KINDS)
def test_long_pause_in_a_stream_is_not_idle(servers: ServerPool, kind: str) -> None:
    """A stream whose pause (1.6 s, heartbeats off) outlasts the idle timeout (1 s) is
    in progress, not idle: it completes (the idle-hold scenarios depend on this)."""
    srv = _short(servers, kind)
    params = {"seed": 3, "tokens": 3, "ttft_ms": 0, "gap_ms": 1, "pause_ms": 1600, "pause_at": 1}
    if kind == "sse":
        got = sse_stream(srv.http + "/v1/stream", params={**params, "stream": "pause"})
        done = got.done
    else:
        ws = ws_connect(srv.ws_url)
        try:
            ws.send(json.dumps({"type": "start", **params, "stream": "pause"}))
            done = ws_read(ws).done
        finally:
            ws_close(ws)
    assert done is not None and done["count"] == 3


@pytest.mark.parametrize("kind", KINDS)
def test_timeouts_are_described(servers: ServerPool, kind: str) -> None:
    srv = _short(servers, kind)
    cfg = requests.get(srv.http + "/v1/stats", timeout=5).json()["config"]
    assert (cfg["send_timeout_s"], cfg["header_timeout_s"], cfg["idle_timeout_s"]) == (1, 0.5, 1)
    info = [k for k in srv.metrics() if k.startswith("ssevsws_server_info")]
    assert info and "send_timeout_s=1.0" in info[0]


@pytest.mark.parametrize("kind", KINDS)
def test_idle_connections_no_longer_lock_out_healthz(kind: str) -> None:
    """400 connections that never sent a request locked /healthz out of a 256-fd aiohttp
    server for good; with the header timeout they are released and /healthz answers."""
    srv = start_server(kind, "--header-timeout-s", "0.5", max_open_files=64)
    socks: list[socket.socket] = []
    try:
        for _ in range(80):
            try:
                socks.append(raw_connect(srv.port))
            except OSError:
                break
        time.sleep(0.2)  # the server has taken every fd it can
        deadline = time.monotonic() + 10
        status = 0
        while time.monotonic() < deadline and status != 200:
            try:
                status = requests.get(srv.http + "/healthz", timeout=2).status_code
            except requests.RequestException:
                time.sleep(0.1)
        assert status == 200
    finally:
        for s in socks:
            s.close()
        assert stop_server(srv) == 0
