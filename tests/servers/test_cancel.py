"""Cancel and disconnect: the generator stops within one token interval; wasted tokens counted."""

from __future__ import annotations

import json
import threading
import time

import requests

from tests.servers.clients import (
    SSEResult,
    sse_open,
    sse_read,
    sse_stream,
    ws_close,
    ws_connect,
    ws_read,
)
from tests.servers.conftest import Server, ServerPool

GAP_MS = 50


def _slow(stream: str) -> dict[str, object]:
    # 1,000 tokens 50 ms apart = 50 s: only an early stop ends it within the test.
    return {"seed": 9, "tokens": 1000, "ttft_ms": 0, "gap_ms": GAP_MS, "stream": stream}


def _assert_stopped(srv: Server, before: dict[str, float]) -> dict[str, float]:
    """Active streams back to 0, at most 2 tokens wasted, tokens_sent no longer moving."""
    after = srv.wait_idle(timeout=5)
    assert after["ssevsws_streams_active"] == 0
    wasted = after["ssevsws_tokens_wasted_total"] - before["ssevsws_tokens_wasted_total"]
    assert 0 <= wasted <= 2, wasted
    time.sleep(3 * GAP_MS / 1000)
    later = srv.metrics()
    assert later["ssevsws_tokens_sent_total"] == after["ssevsws_tokens_sent_total"]
    return after


def test_sse_client_disconnect_stops_generator(servers: ServerPool) -> None:
    srv = servers.get("sse")
    before = srv.wait_idle()
    got = sse_stream(srv.http + "/v1/stream", params=_slow("sse-leave"), stop_after=4)
    assert len(got.tokens) == 4
    after = _assert_stopped(srv, before)
    d = after["ssevsws_streams_disconnected_total"] - before["ssevsws_streams_disconnected_total"]
    assert d == 1
    # detected on the next write: the failed token counts as wasted
    assert after["ssevsws_tokens_wasted_total"] - before["ssevsws_tokens_wasted_total"] >= 1


def test_sse_cancel_endpoint(servers: ServerPool) -> None:
    srv = servers.get("sse")
    before = srv.wait_idle()
    result: list[SSEResult] = []
    resp = sse_open(srv.http + "/v1/stream", params=_slow("sse-cx"))
    secret = resp.headers["X-Cancel-Secret"]
    assert len(secret) >= 16
    reader = threading.Thread(target=lambda: result.append(sse_read(resp)), daemon=True)
    reader.start()
    time.sleep(0.2)
    url = srv.http + "/v1/streams/sse-cx/cancel"
    r = requests.post(url, timeout=5)
    assert r.status_code == 400 and r.json()["field"] == "X-Cancel-Secret"
    r = requests.post(url, headers={"X-Cancel-Secret": secret + "x"}, timeout=5)
    assert r.status_code == 404
    r = requests.post(url, headers={"X-Cancel-Secret": secret}, timeout=5)
    assert r.status_code == 200 and r.json() == {"cancelled": 1}
    reader.join(5)
    assert not reader.is_alive(), "the SSE body must end after a cancel"
    got = result[0]
    assert got.done is None and not got.broken and 0 < len(got.tokens) < 1000
    after = _assert_stopped(srv, before)
    assert after["ssevsws_streams_cancelled_total"] - before["ssevsws_streams_cancelled_total"] == 1
    r = requests.post(url, headers={"X-Cancel-Secret": secret}, timeout=5)
    assert r.status_code == 404


def test_ws_cancel_message(ws_server: Server) -> None:
    before = ws_server.wait_idle()
    ws = ws_connect(ws_server.ws_url)
    try:
        ws.send(json.dumps({"type": "start", **_slow("ws-cx")}))
        first = ws_read(ws, stop_after=5)
        ws.send(json.dumps({"type": "cancel", "stream": "ws-cx"}))
        rest = ws_read(ws, until_type="cancelled")
        cancelled = rest.control[-1]
        assert cancelled == {"type": "cancelled", "stream": "ws-cx", "sent": cancelled["sent"]}
        assert cancelled["sent"] == len(first.tokens) + len(rest.tokens)
        # nothing for that stream after "cancelled"; the connection still works
        ws.send(json.dumps({"type": "cancel", "stream": "ws-cx"}))
        err = ws_read(ws, until_type="error")
        assert not err.tokens and err.control[-1]["field"] == "stream"
    finally:
        ws_close(ws)
    after = _assert_stopped(ws_server, before)
    assert after["ssevsws_streams_cancelled_total"] - before["ssevsws_streams_cancelled_total"] == 1


def test_ws_client_disconnect_stops_generator(ws_server: Server) -> None:
    before = ws_server.wait_idle()
    ws = ws_connect(ws_server.ws_url)
    ws.send(json.dumps({"type": "start", **_slow("ws-leave")}))
    ws_read(ws, stop_after=4)
    ws.sock.close()  # vanish without a close frame
    ws.sock = None
    after = _assert_stopped(ws_server, before)
    d = after["ssevsws_streams_disconnected_total"] - before["ssevsws_streams_disconnected_total"]
    assert d == 1


def test_http_cancel_cannot_stop_other_clients_streams(servers: ServerPool) -> None:
    """Item 9: an id alone stopped every stream of that id (three unrelated clients on
    `cancel 0`; the aiohttp WS server's HTTP cancel stopped another connection's WS
    stream). Now only the stream's own secret cancels over HTTP; WS streams never do."""
    sse = servers.get("sse")
    a = sse_open(sse.http + "/v1/stream", params=_slow("shared"))
    b = sse_open(sse.http + "/v1/stream", params=_slow("shared"))
    try:
        url = sse.http + "/v1/streams/shared/cancel"
        r = requests.post(url, headers={"X-Cancel-Secret": a.headers["X-Cancel-Secret"]}, timeout=5)
        assert r.json() == {"cancelled": 1}
        got_b = sse_read(b, stop_after=3)  # b still streams
        assert len(got_b.tokens) == 3
    finally:
        a.close()
        b.close()
    sse.wait_idle()
    for kind in ("ws", "ws-websockets"):
        srv = servers.get(kind)
        ws = ws_connect(srv.ws_url)
        try:
            ws.send(json.dumps({"type": "start", **_slow("ws-http-cx")}))
            ws_read(ws, stop_after=3)
            for secret in ("", "guess"):
                r = requests.post(
                    srv.http + "/v1/streams/ws-http-cx/cancel",
                    headers={"X-Cancel-Secret": secret},
                    timeout=5,
                )
                assert r.status_code in (400, 404), (kind, r.status_code, r.text)
            more = ws_read(ws, stop_after=3)
            assert len(more.tokens) == 3 and not more.control, kind
        finally:
            ws_close(ws)
        srv.wait_idle()
