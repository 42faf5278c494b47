"""Resume after a forced (server drop_after) or client-side disconnect: every token exactly once."""

from __future__ import annotations

import hashlib
import json

import pytest

from core.schedule import done_summary, token_texts
from tests.servers.clients import SSEResult, WSResult, sse_stream, ws_close, ws_connect, ws_read
from tests.servers.conftest import Server, ServerPool

N, K = 200, 57


def _params(stream: str, **extra: object) -> dict[str, object]:
    return {"seed": 3, "tokens": N, "ttft_ms": 5, "gap_ms": 1, "stream": stream, **extra}


def _assert_exactly_once(stream: str, parts: list[list[tuple[int, str]]], done: dict) -> None:
    tokens = [t for part in parts for t in part]
    texts = token_texts(3, stream, N)
    assert [s for s, _ in tokens] == list(range(N)), "lost, duplicated or out of order"
    assert tokens == list(enumerate(texts))
    joined = "".join(t for _, t in tokens)
    assert done["count"] == N
    assert done["sha256"] == hashlib.sha256(joined.encode()).hexdigest()
    assert done["sha256"] == done_summary(texts)["sha256"]


def test_sse_resume_after_server_drop(servers: ServerPool) -> None:
    srv = servers.get("sse")
    url = srv.http + "/v1/stream"
    p = _params("sse-drop", drop_after=K)
    first = sse_stream(url, params=p)
    assert first.broken and first.done is None
    assert [s for s, _ in first.tokens] == list(range(K))
    last = first.tokens[-1][0]
    second = sse_stream(url, params=p, headers={"Last-Event-ID": str(last)})
    assert not second.broken and second.done is not None
    _assert_exactly_once("sse-drop", [first.tokens, second.tokens], second.done)
    m = srv.wait_idle()
    assert m["ssevsws_streams_dropped_total"] >= 1


def test_sse_resume_after_client_abort(servers: ServerPool) -> None:
    srv = servers.get("sse")
    url = srv.http + "/v1/stream"
    p = _params("sse-client-abort")
    first = sse_stream(url, json_body=p, stop_after=33)
    assert len(first.tokens) == 33
    second = sse_stream(url, json_body=p, headers={"Last-Event-ID": str(first.tokens[-1][0])})
    assert second.done is not None
    _assert_exactly_once("sse-client-abort", [first.tokens, second.tokens], second.done)


def test_sse_resume_from_unknown_stream_continues_one_gap_later(servers: ServerPool) -> None:
    """A server that never saw the stream still resumes it (t0 re-anchored)."""
    srv = servers.get("sse")
    p = _params("sse-never-seen", gap_ms=2)
    got = sse_stream(srv.http + "/v1/stream", params=p, headers={"Last-Event-ID": "149"})
    assert [s for s, _ in got.tokens] == list(range(150, N))
    assert got.done is not None and got.done["count"] == N


def _ws_first_leg(srv: Server, start: dict[str, object], stop_after: int | None) -> WSResult:
    ws = ws_connect(srv.ws_url)
    try:
        ws.send(json.dumps(start))
        res = ws_read(ws, stop_after=stop_after)
    finally:
        if stop_after is not None:
            ws.sock.close()  # abrupt client-side close: no close frame
            ws.sock = None
        else:
            ws_close(ws)
    return res


@pytest.mark.parametrize("with_params", [False, True])
def test_ws_resume_after_server_drop(ws_server: Server, with_params: bool) -> None:
    stream = f"{ws_server.kind}-drop-{with_params}"
    p = _params(stream, drop_after=K)
    first = _ws_first_leg(ws_server, {"type": "start", **p}, None)
    assert first.broken and first.close_code is None, "drop must not send a close frame"
    assert [s for s, _ in first.tokens] == list(range(K))
    resume: dict[str, object] = {"type": "resume", "stream": stream, "after": K - 1}
    if with_params:
        resume.update({k: v for k, v in p.items() if k != "stream"})
    ws = ws_connect(ws_server.ws_url)
    try:
        ws.send(json.dumps(resume))
        second = ws_read(ws)
    finally:
        ws_close(ws)
    assert second.done is not None, second
    _assert_exactly_once(stream, [first.tokens, second.tokens], second.done)


def test_ws_resume_after_client_abort(ws_server: Server) -> None:
    stream = f"{ws_server.kind}-client-abort"
    p = _params(stream)
    first = _ws_first_leg(ws_server, {"type": "start", **p}, 40)
    assert len(first.tokens) == 40
    ws = ws_connect(ws_server.ws_url)
    try:
        ws.send(json.dumps({"type": "resume", "stream": stream, "after": 39}))
        second = ws_read(ws)
    finally:
        ws_close(ws)
    assert second.done is not None
    _assert_exactly_once(stream, [first.tokens, second.tokens], second.done)


def test_ws_resume_unknown_stream_is_an_error_message(ws_server: Server) -> None:
    ws = ws_connect(ws_server.ws_url)
    try:
        ws.send(json.dumps({"type": "resume", "stream": "never-started-xyz", "after": 3}))
        res = ws_read(ws, until_type="error")
        assert res.control[-1]["type"] == "error" and res.control[-1]["field"] == "stream"
        # the connection is still usable
        ws.send(json.dumps({"type": "start", **_params("after-error", tokens=5)}))
        ok = ws_read(ws)
        assert ok.done is not None and ok.done["count"] == 5
    finally:
        ws_close(ws)


def test_sse_resume_rejects_bad_last_event_id(servers: ServerPool) -> None:
    srv = servers.get("sse")
    url = srv.http + "/v1/stream"
    for bad in ("abc", "-2", str(N), "1.5"):
        got: SSEResult = sse_stream(url, params=_params("bad-leid"), headers={"Last-Event-ID": bad})
        assert got.status == 400, bad
        assert got.body_json["field"] == "Last-Event-ID"
