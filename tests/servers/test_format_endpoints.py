"""The provider-format endpoints of the reference servers, read with plain clients
(`requests`, `websocket-client`, raw sockets: not the project's decoders).

- POST /v1/chat/completions, /v1/responses, /v1/messages (SSE) and the WebSocket mode at
  GET /v1/responses give the native token texts for the same seed, length and stream id,
  and count on /metrics like native;
- the servers' limits, access policy and waste accounting apply to them as to native;
- bad requests are 400 (SSE) or a 1008 close (WS); several responses follow one another
  on one WS connection, each continuing the last with previous_response_id.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
import requests
import websocket

from core.schedule import token_texts
from tests.servers.conftest import ServerPool, start_server, stop_server
from tests.servers.rawclients import HUGE, raw_connect, wait_blocked

#: path → how a content event's text is found in its JSON
TEXT_OF = {
    "/v1/chat/completions": lambda o: ((o.get("choices") or [{}])[0].get("delta") or {}).get(
        "content"
    ),
    "/v1/responses": lambda o: o.get("delta") if o["type"].endswith("text.delta") else None,
    "/v1/messages": lambda o: (o.get("delta") or {}).get("text"),
}
TOKENS = {"/v1/chat/completions": "max_tokens", "/v1/responses": "max_output_tokens",
          "/v1/messages": "max_tokens"}  # fmt: skip


def _body(path: str, n: int, knobs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "m", "stream": True, TOKENS[path]: n, "ssevsws": knobs, **extra}


def _events(resp: requests.Response) -> list[dict[str, Any]]:
    """Every ``data:`` JSON object of an SSE body (``[DONE]`` as {"done": True})."""
    out = []
    for line in resp.iter_lines():
        if line.startswith(b"data: "):
            data = line[6:]
            out.append({"done": True} if data == b"[DONE]" else json.loads(data))
    return out


@pytest.mark.parametrize("path", list(TEXT_OF))
def test_sse_endpoints_stream_the_native_texts_and_count(servers: ServerPool, path: str) -> None:
    srv = servers.get("sse")
    before = srv.wait_idle()
    stream = "fmt" + path.replace("/", ".")
    knobs = {"seed": 5, "stream": stream, "ttft_ms": 0, "gap_ms": 1}
    with requests.post(srv.http + path, json=_body(path, 40, knobs), stream=True, timeout=10) as r:
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        assert r.headers["X-Cancel-Secret"] and r.headers["X-Stream-Id"] == stream
        events = _events(r)
    texts = [t for t in (TEXT_OF[path](e) for e in events) if t]
    assert texts == token_texts(5, stream, 40)
    after = srv.wait_idle()
    assert after["ssevsws_tokens_sent_total"] - before["ssevsws_tokens_sent_total"] == 40
    assert after["ssevsws_streams_completed_total"] - before["ssevsws_streams_completed_total"] == 1


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/chat/completions", {"model": "m", "messages": []}, "stream"),
        ("/v1/responses", {"stream": True, "ssevsws": {"tokens": 0}}, "tokens"),
        ("/v1/messages", {"stream": True, "ssevsws": {"gap": 1}}, "gap"),
        ("/v1/messages", [1, 2], "body"),
    ],
)
def test_bad_requests_are_400(servers: ServerPool, path: str, body: Any, field: str) -> None:
    srv = servers.get("sse")
    r = requests.post(srv.http + path, json=body, timeout=5)
    assert r.status_code == 400 and r.json()["field"] == field
    assert requests.get(srv.http + path, timeout=5).status_code == 405  # POST only


def test_limits_apply_to_the_provider_endpoints(servers: ServerPool) -> None:
    srv = servers.get("sse", "--max-planned-tokens", "1000")
    before = srv.metrics()["ssevsws_streams_refused_total{limit=planned_tokens}"]
    for path in TEXT_OF:
        r = requests.post(srv.http + path, json=_body(path, 1001, {}), timeout=5)
        assert r.status_code == 400 and r.json()["limit"] == "planned_tokens", path
    after = srv.metrics()["ssevsws_streams_refused_total{limit=planned_tokens}"]
    assert after - before == len(TEXT_OF)


def test_the_token_is_required_and_x_api_key_carries_it() -> None:
    srv = start_server("sse", env={"SSEVSWS_TOKEN": "t0ken"})
    try:
        body = _body("/v1/messages", 3, {"ttft_ms": 0, "gap_ms": 0})
        url = srv.http + "/v1/messages"
        assert requests.post(url, json=body, timeout=5).status_code == 401
        bad = requests.post(url, json=body, headers={"x-api-key": "nope"}, timeout=5)
        assert bad.status_code == 401
        ok = requests.post(url, json=body, headers={"x-api-key": "t0ken"}, timeout=5)
        assert ok.status_code == 200 and b"message_stop" in ok.content
        chat = _body("/v1/chat/completions", 3, {"ttft_ms": 0, "gap_ms": 0})
        auth = {"Authorization": "Bearer t0ken"}
        r = requests.post(srv.http + "/v1/chat/completions", json=chat, headers=auth, timeout=5)
        assert r.status_code == 200 and r.content.endswith(b"data: [DONE]\n\n")
    finally:
        assert stop_server(srv) == 0


def test_a_never_reading_client_wastes_the_unsent_due_tokens(servers: ServerPool) -> None:
    """servers.engine's waste definition on a provider endpoint: a client that never reads
    a 100,000-token stream all due at once, then resets: sent + wasted == 100,000."""
    srv = servers.get("sse")
    before = srv.wait_idle()
    knobs = {k: v for k, v in HUGE.items() if k != "tokens"}
    body = json.dumps(_body("/v1/chat/completions", HUGE["tokens"], knobs)).encode()
    sock = raw_connect(srv.port, rcvbuf=4096)
    try:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        wait_blocked(srv, before["ssevsws_tokens_sent_total"])
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        sock.close()
        after = srv.wait_idle(timeout=10)
    finally:
        sock.close()
    sent = after["ssevsws_tokens_sent_total"] - before["ssevsws_tokens_sent_total"]
    wasted = after["ssevsws_tokens_wasted_total"] - before["ssevsws_tokens_wasted_total"]
    assert sent + wasted == HUGE["tokens"] and wasted > 1_000, (sent, wasted)


# --------------------------------------------------------------------------- WebSocket mode
def _ws_response(ws: websocket.WebSocket) -> list[dict[str, Any]]:
    """The events of one response, through response.completed (or an error)."""
    out = []
    while True:
        event = json.loads(ws.recv())
        out.append(event)
        if event["type"] in ("response.completed", "error"):
            return out


def test_ws_mode_several_responses_on_one_connection(servers: ServerPool) -> None:
    srv = servers.get("ws")
    before = srv.wait_idle()
    ws = websocket.create_connection(f"ws://127.0.0.1:{srv.port}/v1/responses", timeout=10)
    try:
        previous = None
        for turn in range(3):
            knobs = {"seed": turn, "ttft_ms": 0, "gap_ms": 1}
            create: dict[str, Any] = {"type": "response.create", "model": "m", "input": "hi",
                                      "max_output_tokens": 20, "ssevsws": knobs}  # fmt: skip
            if previous:
                create["previous_response_id"] = previous
            ws.send(json.dumps(create))
            events = _ws_response(ws)
            assert [e["sequence_number"] for e in events] == list(range(len(events)))
            texts = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
            assert texts == token_texts(turn, 0, 20)  # stream id 0: native's default
            done = events[-1]["response"]
            assert done["status"] == "completed" and done["previous_response_id"] == previous
            assert done["usage"]["output_tokens"] == 20
            previous = done["id"]
    finally:
        ws.close()
    after = srv.wait_idle()
    assert after["ssevsws_tokens_sent_total"] - before["ssevsws_tokens_sent_total"] == 60
    assert after["ssevsws_streams_completed_total"] - before["ssevsws_streams_completed_total"] == 3


@pytest.mark.parametrize(
    "message",
    ['{"type":"response.cancel"}', '{"type":"response.create","model":7}', "[1]"],
)
def test_ws_mode_bad_events_close_1008(servers: ServerPool, message: str) -> None:
    srv = servers.get("ws")
    ws = websocket.create_connection(f"ws://127.0.0.1:{srv.port}/v1/responses", timeout=10)
    try:
        ws.send(message)
        opcode, data = ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(data[:2], "big") == 1008
    finally:
        ws.close()


def test_ws_mode_limits_answer_with_an_error_event(servers: ServerPool) -> None:
    srv = servers.get("ws", "--max-planned-tokens", "1000")
    ws = websocket.create_connection(f"ws://127.0.0.1:{srv.port}/v1/responses", timeout=10)
    try:
        ws.send(json.dumps({"type": "response.create", "max_output_tokens": 1001}))
        error = json.loads(ws.recv())
        assert error["type"] == "error" and error["error"]["code"] == "planned_tokens"
        opcode, data = ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(data[:2], "big") == 1008  # never fits: policy violation
    finally:
        ws.close()
