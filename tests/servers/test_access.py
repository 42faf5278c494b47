"""Item 9: cross-site safety. Host and Origin checks, the optional token, on all servers.

The policy is sans-I/O (servers.access) and tested here without sockets; then every
server is checked to apply it before any endpoint answers or any upgrade happens, and to
still answer a well-behaved loopback client that sends no Origin exactly as before.
"""

from __future__ import annotations

import json

import pytest
import requests
import websocket

from servers.access import AccessPolicy, host_name
from servers.config import ServerConfig
from tests.servers.clients import sse_stream, ws_close, ws_read
from tests.servers.conftest import Server, ServerPool, start_server, stop_server

KINDS = ("sse", "ws", "ws-websockets")
OK = {"seed": 1, "tokens": 5, "ttft_ms": 1, "gap_ms": 1, "stream": "acc"}


def _policy(**kw: object) -> AccessPolicy:
    return AccessPolicy.from_config(ServerConfig(kind="sse", **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("127.0.0.1:8081", "127.0.0.1"),
        ("[::1]:8081", "::1"),
        ("LocalHost.", "localhost"),
        ("evil.example:80", "evil.example"),
        ("::1", "::1"),
    ],
)
def test_host_name(value: str, name: str) -> None:
    assert host_name(value) == name


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        (None, True),  # HTTP/1.0 tools send none; browsers always do
        ("127.0.0.1:9", True),
        ("127.8.9.10", True),
        ("localhost:80", True),
        ("app.localhost", True),
        ("[::1]:80", True),
        ("evil.example", False),  # DNS rebinding: a hostile name resolving to 127.0.0.1
        ("127.0.0.1.nip.io", False),
        ("localhost.evil.example", False),
        ("0.0.0.0", False),
    ],
)
def test_host_check_default(host: str | None, ok: bool) -> None:
    assert _policy().host_ok(host) is ok


def test_host_check_allows_bound_address_and_flag() -> None:
    p = _policy(host="192.0.2.7", allow_hosts=("bench.example",))
    assert p.host_ok("192.0.2.7:8081") and p.host_ok("BENCH.example")
    assert not p.host_ok("other.example")
    assert _policy(allow_hosts=("*",)).host_ok("anything.example")


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        (None, True),  # not a browser
        ("http://127.0.0.1:8081", True),
        ("https://127.0.0.1:8443", True),  # the browser check through nginx
        ("http://localhost:3000", True),
        ("http://[::1]:8080", True),
        ("https://evil.example", False),
        ("null", False),  # sandboxed frames, file: pages
        ("http://127.0.0.1.evil.example", False),
        ("ftp://127.0.0.1", False),
        ("http://[::1", False),  # malformed
        ("", False),
    ],
)
def test_origin_check_default(origin: str | None, ok: bool) -> None:
    assert _policy().origin_ok(origin) is ok


def test_origin_check_flag() -> None:
    p = _policy(allow_origins=("https://app.example:8443/",))
    assert p.origin_ok("https://APP.example:8443") and not p.origin_ok("https://app.example")
    assert _policy(allow_origins=("*",)).origin_ok("null")


def test_token_check() -> None:
    p = _policy(token="s3cret")
    assert p.token_ok("/healthz", None)  # readiness probes stay open
    assert p.token_ok("/metrics", "Bearer s3cret") and p.token_ok("/v1/ws", "bearer  s3cret ")
    for auth in (None, "", "Bearer", "Bearer s3cre", "Basic s3cret", "Bearer s3cretx"):
        assert not p.token_ok("/metrics", auth), auth
    assert _policy().token_ok("/metrics", None)


def test_refusal_order_and_bodies() -> None:
    p = _policy(token="t")
    headers = {"Host": "evil.example", "Origin": "https://evil.example"}
    r = p.refusal("/v1/stream", headers.get)
    assert r is not None and (r.status, r.reason, r.field) == (403, "host", "Host")
    r = p.refusal("/v1/stream", {"Origin": "null"}.get)
    assert r is not None and (r.status, r.reason) == (403, "origin")
    r = p.refusal("/v1/stream", {}.get)
    assert r is not None and r.status == 401 and r.headers() == {"WWW-Authenticate": "Bearer"}
    assert p.refusal("/v1/stream", {"Authorization": "Bearer t"}.get) is None


# -- the servers ---------------------------------------------------------------------------
HOSTILE: list[tuple[str, dict[str, str], str]] = [
    ("evil origin", {"Origin": "https://evil.example"}, "origin"),
    ("null origin", {"Origin": "null"}, "origin"),
    ("rebound host", {"Host": "evil.example:8081"}, "host"),
]


def _routes(srv: Server) -> list[tuple[str, str]]:
    common = [
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/v1/stats"),
        ("POST", "/v1/stats/reset"),
        ("POST", "/v1/streams/0/cancel"),
    ]
    if srv.kind == "sse":
        return [*common, ("GET", "/v1/stream?tokens=3&ttft_ms=0&gap_ms=0"), ("POST", "/v1/stream")]
    return [*common, ("GET", "/v1/ws")]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("label", "headers", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_requests_are_refused_everywhere(
    servers: ServerPool, kind: str, label: str, headers: dict[str, str], reason: str
) -> None:
    srv = servers.get(kind)
    key = f"ssevsws_requests_refused_total{{reason={reason}}}"
    m0 = srv.metrics()
    routes = _routes(srv)
    for method, path in routes:
        body = {} if path == "/v1/stream" else None  # websockets refuses request bodies
        r = requests.request(method, srv.http + path, headers=headers, json=body, timeout=5)
        assert r.status_code == 403, (label, method, path, r.status_code, r.text)
        assert r.json()["field"] == reason.capitalize(), r.text
    m1 = srv.metrics()
    assert m1[key] == m0[key] + len(routes)
    assert m1["ssevsws_streams_started_total"] == m0["ssevsws_streams_started_total"]


@pytest.mark.parametrize("kind", ["ws", "ws-websockets"])
def test_ws_upgrade_from_a_hostile_page_is_refused(servers: ServerPool, kind: str) -> None:
    srv = servers.get(kind)
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(srv.ws_url, origin="https://evil.example", timeout=5)
    assert info.value.status_code == 403
    ws = websocket.create_connection(srv.ws_url, origin="https://127.0.0.1:8443", timeout=5)
    try:  # the browser check's origin (through nginx) still works
        ws.send(json.dumps({"type": "start", **OK}))
        assert ws_read(ws).done is not None
    finally:
        ws_close(ws)


@pytest.mark.parametrize("kind", KINDS)
def test_token_is_required_when_set(kind: str) -> None:
    srv = start_server(kind, env={"SSEVSWS_TOKEN": "t0ken"})
    try:
        assert requests.get(srv.http + "/healthz", timeout=5).status_code == 200
        r = requests.get(srv.http + "/metrics", timeout=5)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
        auth = {"Authorization": "Bearer t0ken"}
        assert requests.get(srv.http + "/metrics", headers=auth, timeout=5).status_code == 200
        cfg = requests.get(srv.http + "/v1/stats", headers=auth, timeout=5).json()["config"]
        assert cfg["token"] is True  # recorded as set, never the value
        if kind == "sse":
            bad = sse_stream(srv.http + "/v1/stream", params=OK)
            assert bad.status == 401
            got = sse_stream(srv.http + "/v1/stream", params=OK, headers=auth)
            assert got.done is not None
        else:
            with pytest.raises(websocket.WebSocketBadStatusException):
                websocket.create_connection(srv.ws_url, timeout=5)
            ws = websocket.create_connection(srv.ws_url, header=auth, timeout=5)
            try:
                ws.send(json.dumps({"type": "start", **OK}))
                assert ws_read(ws).done is not None
            finally:
                ws_close(ws)
    finally:
        assert stop_server(srv) == 0
