"""Every input validated: HTTP 400 JSON with the field, WS close codes with reasons."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests

from tests.servers.clients import sse_stream, ws_close, ws_connect, ws_read
from tests.servers.conftest import ROOT, Server, ServerPool

OK = {"seed": 1, "tokens": 5, "ttft_ms": 1, "gap_ms": 1, "stream": "ok"}


def _sse_ok(srv: Server) -> None:
    got = sse_stream(srv.http + "/v1/stream", params=OK)
    assert got.status == 200 and got.done is not None and got.done["count"] == 5


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"tokens": "0"}, "tokens"),
        ({"tokens": "abc"}, "tokens"),
        ({"gap_ms": "-1"}, "gap_ms"),
        ({"jitter": "2"}, "jitter"),
        ({"ttft_ms": "nan"}, "ttft_ms"),
        ({"stream": "bad id!"}, "stream"),
        ({"bogus": "1"}, "bogus"),
        ({"tokens": "5", "pause_at": "9"}, "pause_at"),
        ({"drop_after": "0"}, "drop_after"),
    ],
)
def test_sse_get_rejects(servers: ServerPool, query: dict[str, str], field: str) -> None:
    srv = servers.get("sse")
    r = requests.get(srv.http + "/v1/stream", params=query, timeout=5)
    assert r.status_code == 400
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["field"] == field and body["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"[1, 2]", "body"),
        (b'"tokens"', "body"),
        (json.dumps({"tokens": -1}).encode(), "tokens"),
        (json.dumps({"tokens": True}).encode(), "tokens"),
        (json.dumps({"seed": 1.5}).encode(), "seed"),
        (json.dumps({"stream": [1]}).encode(), "stream"),
    ],
)
def test_sse_post_rejects(servers: ServerPool, body: bytes, field: str) -> None:
    srv = servers.get("sse")
    r = requests.post(
        srv.http + "/v1/stream",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert r.status_code == 400
    assert r.json()["field"] == field
    _sse_ok(srv)


def test_sse_post_oversized_body(servers: ServerPool) -> None:
    srv = servers.get("sse")
    r = requests.post(srv.http + "/v1/stream", data=b"{" + b" " * 20000 + b"}", timeout=5)
    assert r.status_code == 413
    _sse_ok(srv)


def _ws_violation(srv: Server, send: object, binary: bool = False) -> tuple[int | None, str]:
    ws = ws_connect(srv.ws_url)
    try:
        if binary:
            ws.send_binary(send)  # type: ignore[arg-type]
        else:
            ws.send(send)  # type: ignore[arg-type]
        res = ws_read(ws, until_type=None)
    finally:
        ws_close(ws)
    return res.close_code, res.close_reason


def _ws_ok(srv: Server) -> None:
    ws = ws_connect(srv.ws_url)
    try:
        ws.send(json.dumps({"type": "start", **OK}))
        res = ws_read(ws)
    finally:
        ws_close(ws)
    assert res.done is not None and res.done["count"] == 5


@pytest.mark.parametrize(
    ("message", "code", "reason_part"),
    [
        ("this is not json", 1008, "JSON"),
        ("[1,2,3]", 1008, "object"),
        (json.dumps({"type": "start", "tokens": 0}), 1008, "tokens"),
        (json.dumps({"type": "start", "bogus": 1}), 1008, "bogus"),
        (json.dumps({"type": "explode"}), 1008, "explode"),
        (json.dumps({"type": "resume", "stream": 1}), 1008, "after"),
        (json.dumps({"type": "start", "pad": "x" * 17000}), 1009, ""),
    ],
)
def test_ws_violations_close_with_code(
    ws_server: Server, message: str, code: int, reason_part: str
) -> None:
    got_code, reason = _ws_violation(ws_server, message)
    assert got_code == code, (got_code, reason)
    assert reason_part in reason
    _ws_ok(ws_server)


def test_ws_binary_frame_closes_1003(ws_server: Server) -> None:
    got_code, reason = _ws_violation(ws_server, b'{"type":"start"}', binary=True)
    assert got_code == 1003 and "binary" in reason
    _ws_ok(ws_server)


def test_ws_plain_get_on_ws_route_is_refused(ws_server: Server) -> None:
    r = requests.get(ws_server.http + "/v1/ws", timeout=5)
    assert 400 <= r.status_code < 500


def test_refuses_non_loopback_host() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "servers", "sse", "--port", "0", "--host", "0.0.0.0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "--allow-remote" in proc.stderr


# -- item 8: crafted input that gave HTTP 500 or an abnormal close ------------------------
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"stream": "²"}, "stream"),  # isdigit() but not int(): was a 500
        ({"stream": "١٢٣"}, "stream"),  # other scripts' digits: were taken as 123
        ({"tokens": "١٢٣"}, "tokens"),
        ({"tokens": "1_000"}, "tokens"),  # digit separators: were taken as 1000
        ({"seed": "1" * 5000}, "seed"),
    ],
)
def test_sse_get_rejects_non_ascii_numbers(
    servers: ServerPool, query: dict[str, str], field: str
) -> None:
    srv = servers.get("sse")
    r = requests.get(srv.http + "/v1/stream", params=query, timeout=5)
    assert r.status_code == 400 and r.json()["field"] == field, r.text


def test_sse_post_deeply_nested_body_is_400(servers: ServerPool) -> None:
    srv = servers.get("sse")
    r = requests.post(srv.http + "/v1/stream", data=b"[" * 10_000, timeout=5)
    assert r.status_code == 400 and r.json()["field"] == "body"  # was a RecursionError (500)
    _sse_ok(srv)


@pytest.mark.parametrize("value", ["١", "²", "1_0", "abc", "99999999999999999999999"])
def test_sse_last_event_id_ascii_only(servers: ServerPool, value: str) -> None:
    srv = servers.get("sse")
    r = requests.get(
        srv.http + "/v1/stream", params=OK, headers={"Last-Event-ID": value.encode()}, timeout=5
    )
    assert r.status_code == 400 and r.json()["field"] == "Last-Event-ID"


@pytest.mark.parametrize("kind", ["sse", "ws", "ws-websockets"])
@pytest.mark.parametrize("sid", ["%C2%B2", "%D9%A1%D9%A2"])
def test_cancel_path_with_crafted_id_is_400(servers: ServerPool, kind: str, sid: str) -> None:
    srv = servers.get(kind)
    r = requests.post(
        f"{srv.http}/v1/streams/{sid}/cancel", headers={"X-Cancel-Secret": "x"}, timeout=5
    )
    assert r.status_code == 400 and r.json()["field"] == "stream", r.text


@pytest.mark.parametrize("stream", ["²", "١٢٣"])
def test_ws_start_with_crafted_id_closes_1008(ws_server: Server, stream: str) -> None:
    got_code, reason = _ws_violation(
        ws_server, json.dumps({"type": "start", "tokens": 3, "stream": stream})
    )
    assert got_code == 1008 and "stream" in reason, (got_code, reason)
    _ws_ok(ws_server)
