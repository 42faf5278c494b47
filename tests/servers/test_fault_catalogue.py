"""The servers' fault catalogue: hostile and broken input against all three servers.

Data-driven: `CATALOGUE` lists every input (bad parameters, bodies, headers, WebSocket
frames, paths, hostile Origins and Hosts, slow and stuck clients) with the answer it must
get. Each case runs against each server it applies to; after each, a fresh client's
/healthz must succeed (the server keeps serving others) and the process must be alive.
The session fixture fails if a server logged a traceback or did not exit 0 on SIGTERM.
`catalogue_counts()` is what the README states (a test keeps them equal).
"""

from __future__ import annotations

import json
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import requests
import websocket

from tests.servers.clients import ws_close, ws_connect, ws_read
from tests.servers.conftest import ROOT, Server, ServerPool
from tests.servers.rawclients import (
    HUGE,
    closed_by_server,
    raw_connect,
    start_never_reading,
    wait_counter,
    ws_frame,
)

ALL = ("sse", "ws", "ws-websockets")
WS = ("ws", "ws-websockets")
#: Short timeouts so the stuck-client cases end in about a second.
ARGS = ("--heartbeat-s", "0", "--send-timeout-s", "1", "--header-timeout-s", "0.5")
ARGS += ("--idle-timeout-s", "1")


@dataclass(frozen=True)
class Case:
    category: str
    name: str
    kinds: tuple[str, ...]
    #: Sends the input to the server and asserts the answer; returns how many distinct
    #: inputs it tried (1, or the clients a stuck-client case ran at once).
    run: Callable[[Server], int]
    inputs: int = 1


# -- answers ------------------------------------------------------------------------------
def _http(
    method: str,
    path: str,
    status: int,
    field: str | None = None,
    **kw: object,
) -> Callable[[Server], int]:
    def run(srv: Server) -> int:
        r = requests.request(method, srv.http + path, timeout=5, **kw)  # type: ignore[arg-type]
        assert r.status_code == status, (method, path, r.status_code, r.text[:200])
        if field is not None:
            assert r.json()["field"] == field, r.text
        return 1

    return run


def _raw_http(request: bytes, status: bytes | None) -> Callable[[Server], int]:
    """Send raw bytes; expect a status code starting with `status` (b"403", b"4"), or
    (None) any 4xx or a plain close. Never a 5xx."""

    def run(srv: Server) -> int:
        sock = raw_connect(srv.port)
        try:
            sock.sendall(request)
            sock.settimeout(5)
            try:
                head = sock.recv(4096)
            except ConnectionError:
                head = b""
        finally:
            sock.close()
        code = head[9:12] if head.startswith(b"HTTP/1.") else b""
        assert not code.startswith(b"5"), head[:100]
        if status is not None:
            assert code.startswith(status), head[:100]
        else:
            assert head == b"" or code.startswith(b"4"), head[:100]
        return 1

    return run


def _ws_close(send: Callable[[websocket.WebSocket], None], codes: tuple[int, ...], part: str = ""):
    def run(srv: Server) -> int:
        ws = ws_connect(srv.ws_url)
        try:
            send(ws)
            res = ws_read(ws, until_type=None)
        finally:
            ws_close(ws)
        assert res.close_code in codes, (res.close_code, res.close_reason)
        assert part in res.close_reason, res.close_reason
        return 1

    return run


def _ws_text(message: str, code: int, part: str = "") -> Callable[[Server], int]:
    return _ws_close(lambda ws: ws.send(message), (code,), part)


def _ws_raw(frame: bytes, codes: tuple[int, ...]) -> Callable[[Server], int]:
    return _ws_close(lambda ws: ws.sock.sendall(frame), codes)


def _ws_error(messages: list[str], field: str) -> Callable[[Server], int]:
    """Recoverable mistakes: an `error` message naming the field, the connection stays."""

    def run(srv: Server) -> int:
        ws = ws_connect(srv.ws_url)
        try:
            for m in messages:
                ws.send(m)
            res = ws_read(ws, until_type="error")
            assert res.control[-1]["field"] == field, res.control
            ws.send(json.dumps({"type": "start", **OK, "stream": "after-error"}))
            assert ws_read(ws).done is not None
        finally:
            ws_close(ws)
        return 1

    return run


def _ws_upgrade(status: int, **kw: str) -> Callable[[Server], int]:
    """A handshake with `origin=` / `host=` (websocket-client sends its own otherwise)."""

    def run(srv: Server) -> int:
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            websocket.create_connection(srv.ws_url, timeout=5, **kw)
        assert info.value.status_code == status
        return 1

    return run


OK = {"seed": 1, "tokens": 3, "ttft_ms": 0, "gap_ms": 0}

# -- bad stream parameters: SSE query string and WS start message --------------------------
BAD_PARAMS: list[tuple[str, object, str]] = [
    ("tokens", 0, "tokens"),
    ("tokens", -1, "tokens"),
    ("tokens", 100_001, "tokens"),
    ("tokens", "abc", "tokens"),
    ("tokens", "1_000", "tokens"),
    ("tokens", "١٢٣", "tokens"),
    ("tokens", "5.5", "tokens"),
    ("ttft_ms", "nan", "ttft_ms"),
    ("ttft_ms", "inf", "ttft_ms"),
    ("ttft_ms", "1e400", "ttft_ms"),
    ("gap_ms", -1, "gap_ms"),
    ("jitter", 2, "jitter"),
    ("seed", "²", "seed"),
    ("seed", "1" * 5000, "seed"),
    ("stream", "²", "stream"),
    ("stream", "bad id!", "stream"),
    ("stream", "x" * 200, "stream"),
    ("pause_at", 9, "pause_at"),
    ("drop_after", 0, "drop_after"),
    ("bogus", 1, "bogus"),
]


def _bad_param_cases() -> list[Case]:
    out = []
    for key, value, field in BAD_PARAMS:
        label = f"{key}={str(value)[:12]}"
        query = {**OK, key: str(value)}
        out.append(
            Case(
                "parameters", label, ("sse",), _http("GET", "/v1/stream", 400, field, params=query)
            )
        )
        msg = json.dumps({"type": "start", **OK, key: value})
        out.append(Case("parameters", label, WS, _ws_text(msg, 1008, field)))
    return out


# -- SSE request bodies and headers --------------------------------------------------------
def _post(body: bytes, status: int, field: str | None = "body") -> Callable[[Server], int]:
    headers = {"Content-Type": "application/json"}
    return _http("POST", "/v1/stream", status, field, data=body, headers=headers)


BODY_CASES = [
    Case("bodies", "not JSON", ("sse",), _post(b"not json", 400)),
    Case("bodies", "empty", ("sse",), _post(b"", 400)),
    Case("bodies", "array", ("sse",), _post(b"[1, 2]", 400)),
    Case("bodies", "string", ("sse",), _post(b'"tokens"', 400)),
    Case("bodies", "10,000 [", ("sse",), _post(b"[" * 10_000, 400)),
    Case("bodies", "deep object", ("sse",), _post(b'{"a":' * 2000 + b"1" + b"}" * 2000, 400)),
    Case("bodies", "invalid UTF-8", ("sse",), _post(b'{"seed": "\xff\xfe"}', 400)),
    Case("bodies", "NaN literal", ("sse",), _post(b'{"tokens": NaN}', 400, "tokens")),
    Case("bodies", "1e999", ("sse",), _post(b'{"ttft_ms": 1e999}', 400, "ttft_ms")),
    Case("bodies", "huge int", ("sse",), _post(b'{"seed": ' + b"9" * 40 + b"}", 400, "seed")),
    Case("bodies", "20 KB", ("sse",), _post(b"{" + b" " * 20_000 + b"}", 413, None)),
]
HEADER_CASES = [
    Case(
        "headers",
        f"Last-Event-ID {v!r}",
        ("sse",),
        _http(
            "GET",
            "/v1/stream",
            400,
            "Last-Event-ID",
            params=OK,
            headers={"Last-Event-ID": v.encode()},
        ),
    )
    for v in ("abc", "١", "-5", "99999999999999999999", "1 2", "3")  # tokens=3: 3 is too far
]

# -- WebSocket frames ----------------------------------------------------------------------
FRAME_CASES = [
    Case("frames", "not JSON", WS, _ws_text("this is not json", 1008, "JSON")),
    Case("frames", "array", WS, _ws_text("[1,2,3]", 1008, "object")),
    Case("frames", "10,000 [", WS, _ws_text("[" * 10_000, 1008, "JSON")),
    Case("frames", "unknown type", WS, _ws_text(json.dumps({"type": "explode"}), 1008)),
    Case("frames", "no type", WS, _ws_text(json.dumps({"tokens": 3}), 1008)),
    Case("frames", "resume w/o after", WS, _ws_text('{"type":"resume","stream":1}', 1008)),
    Case(
        "frames", "resume after=-2", WS, _ws_text('{"type":"resume","stream":1,"after":-2}', 1008)
    ),
    Case("frames", "cancel extra", WS, _ws_text('{"type":"cancel","stream":1,"x":2}', 1008)),
    Case(
        "frames", "oversized", WS, _ws_text(json.dumps({"type": "start", "p": "x" * 17000}), 1009)
    ),
    Case("frames", "binary", WS, _ws_close(lambda ws: ws.send_binary(b"{}"), (1003,), "binary")),
    Case("frames", "invalid UTF-8", WS, _ws_raw(ws_frame(b'{"type":"\xff"}'), (1007,))),
    Case("frames", "reserved opcode", WS, _ws_raw(ws_frame(b"x", opcode=0x3), (1002,))),
    Case("frames", "lone continuation", WS, _ws_raw(ws_frame(b"x", opcode=0x0), (1002,))),
    Case("frames", "fragmented ping", WS, _ws_raw(ws_frame(b"x", opcode=0x9, fin=False), (1002,))),
    Case("frames", "long ping", WS, _ws_raw(ws_frame(b"x" * 200, opcode=0x9), (1002,))),
    Case(
        "frames",
        "unmasked",
        WS,
        _ws_raw(bytes([0x81, 2]) + b"{}", (1002, 1008)),  # aiohttp reads it (then 1008)
    ),
    Case(
        "frames",
        "start running id",
        WS,
        _ws_error(
            [json.dumps({"type": "start", **OK, "ttft_ms": 60_000, "stream": "dup"})] * 2,
            "stream",
        ),
    ),
    Case(
        "frames", "cancel unknown", WS, _ws_error(['{"type":"cancel","stream":"nope"}'], "stream")
    ),
    Case(
        "frames",
        "resume unknown",
        WS,
        _ws_error(['{"type":"resume","stream":"never-seen","after":1}'], "stream"),
    ),
]

# -- paths, methods, raw requests ----------------------------------------------------------
PATH_CASES = [
    Case("paths", "unknown path", ALL, _http("GET", "/nope", 404)),
    Case("paths", "cancel id ²", ALL, _http("POST", "/v1/streams/%C2%B2/cancel", 400, "stream")),
    Case(
        "paths", "cancel long id", ALL, _http("POST", "/v1/streams/" + "a" * 300 + "/cancel", 400)
    ),
    Case(
        "paths",
        "cancel, no secret",
        ALL,
        _http("POST", "/v1/streams/0/cancel", 400, "X-Cancel-Secret"),
    ),
    Case(
        "paths",
        "cancel, wrong secret",
        ALL,
        _http("POST", "/v1/streams/0/cancel", 404, "stream", headers={"X-Cancel-Secret": "x"}),
    ),
    Case("paths", "GET reset", ALL, _http("GET", "/v1/stats?reset=1", 400, "reset")),
    Case("paths", "GET reset (bare)", ALL, _http("GET", "/v1/stats?reset", 400, "reset")),
    Case("paths", "garbage request line", ALL, _raw_http(b"BLAH\r\n\r\n", None)),
    Case("paths", "HTTP/2 preface", ALL, _raw_http(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", None)),
    Case(
        "paths",
        "100 KB header",
        ALL,
        _raw_http(b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 100_000 + b"\r\n\r\n", None),
    ),
    Case(
        "paths",
        "NUL in path",
        ALL,
        _raw_http(b"GET /v1/str\x00eam HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", None),
    ),
]
PATH_CASES += [
    Case("paths", "PUT /v1/stream", ("sse",), _http("PUT", "/v1/stream", 405)),
    Case(
        "paths", "plain GET /v1/ws", WS, _raw_http(b"GET /v1/ws HTTP/1.1\r\nHost: x\r\n\r\n", None)
    ),
]

# -- hostile pages -------------------------------------------------------------------------
EVIL = {"Origin": "https://evil.example"}
ORIGIN_CASES = [
    Case(
        "origins",
        "evil Origin /v1/stream",
        ("sse",),
        _http("GET", "/v1/stream", 403, "Origin", params=OK, headers=EVIL),
    ),
    Case(
        "origins",
        "evil Origin POST",
        ("sse",),
        _http("POST", "/v1/stream", 403, "Origin", json=OK, headers=EVIL),
    ),
    Case("origins", "evil Origin upgrade", WS, _ws_upgrade(403, origin=EVIL["Origin"])),
    Case("origins", "null Origin upgrade", WS, _ws_upgrade(403, origin="null")),
    Case(
        "origins",
        "lookalike Origin",
        WS,
        _ws_upgrade(403, origin="http://127.0.0.1.evil.example"),
    ),
    Case("origins", "rebound Host upgrade", WS, _ws_upgrade(403, host="evil.example")),
    Case(
        "origins",
        "evil Origin reset",
        ALL,
        _http("POST", "/v1/stats/reset", 403, "Origin", headers=EVIL),
    ),
    Case(
        "origins",
        "evil Origin cancel",
        ALL,
        _http("POST", "/v1/streams/0/cancel", 403, "Origin", headers=EVIL),
    ),
    Case(
        "origins",
        "rebound Host",
        ALL,
        _http("GET", "/metrics", 403, "Host", headers={"Host": "localhost.evil.example"}),
    ),
    Case(
        "origins",
        "nip.io Host",
        ALL,
        _http("GET", "/v1/stats", 403, "Host", headers={"Host": "127.0.0.1.nip.io"}),
    ),
    Case(
        "origins",
        "two Origins",
        ALL,
        _raw_http(
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://127.0.0.1\r\n"
            b"Origin: https://evil.example\r\n\r\n",
            b"403",
        ),
    ),
    Case(
        "origins",
        "two Hosts",
        ALL,
        _raw_http(
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n",
            b"4",  # aiohttp's parser: 400; websockets: 403
        ),
    ),
]


# -- slow and stuck clients (all at once, then one wait) -------------------------------------
IDLE_CONNECTIONS = 100


def _stuck_clients(srv: Server) -> int:
    """At once: a never-reading stream, a slowloris head, a silent connection, an idle
    keep-alive (SSE) or idle WS connection, and 100 connections that never send a byte.
    All must be released by the server's own timeouts, each counted by reason."""
    key = "ssevsws_connections_closed_total{{reason={}}}".format
    before = srv.wait_idle()
    socks: list[socket.socket] = [start_never_reading(srv, {**HUGE, "stream": "cat-stuck"})]
    slowloris = raw_connect(srv.port)
    slowloris.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: ")
    socks.append(slowloris)
    socks += [raw_connect(srv.port) for _ in range(IDLE_CONNECTIONS + 1)]
    idle = raw_connect(srv.port)
    if srv.kind == "sse":
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    else:
        idle.sendall(
            b"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: "
            b"Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
    try:
        wait_counter(srv, key("slow_consumer"), before.get(key("slow_consumer"), 0), 8)
        wait_counter(srv, key("idle"), before.get(key("idle"), 0), 8)
        for s in socks[1:]:
            closed_by_server(s, within_s=3)
        if srv.kind == "sse":  # a WS peer gets a 1001 close frame (its reply ends the TCP)
            closed_by_server(idle, within_s=3)
        m = srv.wait_idle()
        assert m[key("header_timeout")] - before.get(key("header_timeout"), 0) == (
            IDLE_CONNECTIONS + 2
        )
        assert m["ssevsws_streams_active"] == 0
    finally:
        for s in (*socks, idle):
            s.close()
    return 4 + IDLE_CONNECTIONS


STUCK_CASES = [
    Case("slow and stuck clients", "all at once", ALL, _stuck_clients, 4 + IDLE_CONNECTIONS)
]

CATALOGUE: list[Case] = [
    *_bad_param_cases(),
    *BODY_CASES,
    *HEADER_CASES,
    *FRAME_CASES,
    *PATH_CASES,
    *ORIGIN_CASES,
    *STUCK_CASES,
]


def catalogue_counts() -> tuple[Counter[str], int]:
    """Inputs tried per category, over every server each case applies to; and the total."""
    per: Counter[str] = Counter()
    for case in CATALOGUE:
        per[case.category] += case.inputs * len(case.kinds)
    return per, sum(per.values())


PARAMS = [
    pytest.param(case, kind, id=f"{kind}:{case.category}:{case.name}")
    for case in CATALOGUE
    for kind in case.kinds
]


@pytest.mark.parametrize(("case", "kind"), PARAMS)
def test_fault(servers: ServerPool, case: Case, kind: str) -> None:
    srv = servers.get(kind, *ARGS)
    assert case.run(srv) == case.inputs
    assert srv.proc.poll() is None, "the server died"
    r = requests.get(srv.http + "/healthz", timeout=5)  # a fresh client is still served
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_readme_states_the_catalogue_counts() -> None:
    per, total = catalogue_counts()
    text = " ".join((ROOT / "README.md").read_text().split())  # line breaks as spaces
    assert f"{total} hostile inputs" in text, f"README must state {total} hostile inputs"
    for category, n in per.items():
        assert f"{n} {category}" in text, f"README must state '{n} {category}'"


def test_catalogue_is_not_empty() -> None:
    per, total = catalogue_counts()
    assert total >= 150 and len(per) == 7, per
