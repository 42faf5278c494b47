"""Interface contract (README "Endpoint reference"): same (seq, text) on every server,
done count/sha256 verify."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from core.schedule import done_summary, token_texts
from tests.servers.clients import sse_stream, ws_close, ws_connect, ws_read
from tests.servers.conftest import Server, ServerPool

SEED, N, STREAM = 42, 200, "contract-1"
FAST = {"seed": SEED, "tokens": N, "ttft_ms": 5, "gap_ms": 1, "stream": STREAM}


def _expected() -> tuple[list[tuple[int, str]], dict[str, object]]:
    texts = token_texts(SEED, STREAM, N)
    return list(enumerate(texts)), done_summary(texts)


def _sha(tokens: list[tuple[int, str]]) -> str:
    return hashlib.sha256("".join(t for _, t in tokens).encode("utf-8")).hexdigest()


def _check(tokens: list[tuple[int, str]], done: dict[str, object] | None) -> None:
    expected, summary = _expected()
    assert tokens == expected
    assert done is not None
    assert done["count"] == summary["count"] == N
    assert done["sha256"] == summary["sha256"] == _sha(tokens)


def test_sse_get_and_post_identical(servers: ServerPool) -> None:
    srv = servers.get("sse")
    got = sse_stream(srv.http + "/v1/stream", params=FAST)
    assert got.status == 200
    _check(got.tokens, got.done)
    posted = sse_stream(srv.http + "/v1/stream", json_body=FAST)
    assert posted.status == 200
    _check(posted.tokens, posted.done)
    # Stamps are server monotonic ns, non-decreasing; "s" is the stream id.
    stamps = [p["t"] for p in got.payloads]
    assert stamps == sorted(stamps) and stamps[0] > 0
    assert {p["s"] for p in got.payloads} == {STREAM}
    assert set(got.done) == {"count", "sha256"}


@pytest.mark.parametrize("kind", ["ws", "ws-websockets"])
def test_ws_identical(servers: ServerPool, kind: str) -> None:
    srv = servers.get(kind)
    ws = ws_connect(srv.ws_url)
    try:
        ws.send(json.dumps({"type": "start", **FAST}))
        res = ws_read(ws)
    finally:
        ws_close(ws)
    _check(res.tokens, res.done)
    assert res.done is not None and res.done["type"] == "done"


def test_payload_bytes_identical_across_arms(servers: ServerPool) -> None:
    """The SSE data line and the WS text frame carry the same JSON shape and key order."""
    srv = servers.get("sse")
    got = sse_stream(srv.http + "/v1/stream", params={**FAST, "tokens": 3})
    ws = ws_connect(servers.get("ws").ws_url)
    try:
        ws.send(json.dumps({"type": "start", **FAST, "tokens": 3}))
        res = ws_read(ws)
    finally:
        ws_close(ws)
    for a, b in zip(got.payloads, res.payloads, strict=True):
        assert list(a) == list(b) == ["s", "i", "t", "d"]
        assert (a["s"], a["i"], a["d"]) == (b["s"], b["i"], b["d"])


def test_concurrent_streams_on_one_ws(ws_server: Server) -> None:
    ws = ws_connect(ws_server.ws_url)
    try:
        a = {**FAST, "tokens": 50, "stream": "multi-a"}
        b = {**FAST, "tokens": 30, "stream": "multi-b", "seed": 7}
        ws.send(json.dumps({"type": "start", **a}))
        ws.send(json.dumps({"type": "start", **b}))
        ws.send(json.dumps({"type": "start", **a}))  # already running -> error, not close
        got: dict[str, list[tuple[int, str]]] = {"multi-a": [], "multi-b": []}
        dones: dict[str, dict[str, object]] = {}
        errors = []
        while len(dones) < 2:
            r = ws_read(ws, until_type="done", stop_after=1)
            assert r.close_code is None and not r.broken
            for p in r.payloads:
                got[p["s"]].append((p["i"], p["d"]))
            for c in r.control:
                if c["type"] == "done":
                    dones[c["stream"]] = c
                elif c["type"] == "error":
                    errors.append(c)
    finally:
        ws_close(ws)
    assert errors and errors[0]["stream"] == "multi-a" and errors[0]["field"] == "stream"
    for sid, seed, n in (("multi-a", SEED, 50), ("multi-b", 7, 30)):
        texts = token_texts(seed, sid, n)
        assert got[sid] == list(enumerate(texts))
        assert dones[sid]["sha256"] == done_summary(texts)["sha256"]


def test_sse_headers_and_retry_default(servers: ServerPool) -> None:
    srv = servers.get("sse")
    got = sse_stream(srv.http + "/v1/stream", params={**FAST, "tokens": 2})
    assert got.headers["Content-Type"].startswith("text/event-stream")
    assert got.headers["Cache-Control"] == "no-cache"
    assert got.headers["X-Accel-Buffering"] == "no"
    assert got.headers["X-Stream-Id"] == STREAM
    assert got.raw_start.startswith(b"retry: 3000\n\n")
    assert got.retry == 3000


def test_sse_no_accel_header_and_retry_flag(servers: ServerPool) -> None:
    srv = servers.get("sse", "--no-accel-header", "--retry-ms", "1234", "--heartbeat-s", "0.2")
    got = sse_stream(srv.http + "/v1/stream", params={**FAST, "tokens": 2})
    assert got.status == 200
    assert "X-Accel-Buffering" not in got.headers
    assert got.raw_start.startswith(b"retry: 1234\n\n")


@pytest.mark.parametrize("kind", ["sse", "ws", "ws-websockets"])
def test_healthz_and_metrics(servers: ServerPool, kind: str) -> None:
    import requests

    srv = servers.get(kind)
    t0 = time.monotonic_ns()
    h = requests.get(srv.http + "/healthz", timeout=5)
    t1 = time.monotonic_ns()
    assert h.status_code == 200
    body = h.json()
    assert body["status"] == "ok" and body["kind"] == kind and body["pid"] == srv.proc.pid
    # the server's monotonic clock as it answered: one host, one clock, so inside the trip
    assert t0 <= body["monotonic_ns"] <= t1
    m = srv.metrics()
    for name in (
        "ssevsws_connections_active",
        "ssevsws_streams_active",
        "ssevsws_streams_started_total",
        "ssevsws_streams_completed_total",
        "ssevsws_streams_cancelled_total",
        "ssevsws_streams_disconnected_total",
        "ssevsws_tokens_sent_total",
        "ssevsws_tokens_wasted_total",
        "ssevsws_server_lag_seconds_count",
        "process_cpu_seconds_total",
    ):
        assert name in m, name
    assert m["ssevsws_bytes_sent_total{part=token}"] >= 0
    stats = requests.get(srv.http + "/v1/stats", timeout=5).json()
    assert stats["kind"] == kind and "p50" in stats["lag_us"]
    assert stats["config"]["compression"] == "off"


@pytest.mark.parametrize("kind", ["sse", "ws", "ws-websockets"])
def test_stats_window_reset(servers: ServerPool, kind: str) -> None:
    import requests

    srv = servers.get(kind)
    srv.wait_idle()
    reset = srv.http + "/v1/stats/reset"
    assert requests.post(reset, timeout=5).status_code == 200
    if kind == "sse":
        sse_stream(srv.http + "/v1/stream", params={**FAST, "tokens": 20})
    else:
        ws = ws_connect(srv.ws_url)
        try:
            ws.send(json.dumps({"type": "start", **FAST, "tokens": 20}))
            ws_read(ws)
        finally:
            ws_close(ws)
    stats = requests.post(reset, timeout=5).json()
    assert stats["tokens_sent"] == 20 and stats["lag_us"]["count"] == 20
    assert stats["lag_us"]["early"] == 0
    assert 0 <= stats["lag_us"]["p50"] <= stats["lag_us"]["p99"] <= stats["lag_us"]["max"] * 1.04
    after = requests.get(srv.http + "/v1/stats", timeout=5).json()
    assert after["tokens_sent"] == 0 and after["lag_us"]["p50"] is None
    # item 9: a GET must not change state (any page can send one cross-site, no Origin)
    r = requests.get(srv.http + "/v1/stats", params={"reset": "1"}, timeout=5)
    assert r.status_code == 400 and r.json()["field"] == "reset"
