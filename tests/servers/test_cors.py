"""CORS (servers/cors.py): a page of a loopback origin may read the aiohttp servers' answers;
other origins get no CORS headers and a refused preflight."""

from __future__ import annotations

import pytest
import requests

from servers import cors
from servers.access import AccessPolicy
from servers.config import ServerConfig
from tests.servers.clients import sse_stream
from tests.servers.conftest import ServerPool

PAGE = "http://127.0.0.1:41234"
FAST = {"seed": 1, "tokens": 3, "ttft_ms": 0, "gap_ms": 1, "stream": "cors-1"}


POLICY = AccessPolicy.from_config(ServerConfig(kind="sse"))


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        ("http://127.0.0.1:8000", True),
        ("https://localhost", True),
        ("http://u3.localhost:9000", True),
        ("http://[::1]:80", True),
        ("https://example.com", False),
        ("http://127.0.0.1.example.com", False),
        ("null", False),
        ("file://", False),
        (None, False),
    ],
)
def test_cors_answers_the_origins_the_access_policy_admits(origin: str | None, ok: bool) -> None:
    assert bool(cors.headers_for(POLICY, origin)) is ok
    if origin is not None:
        assert POLICY.origin_ok(origin) is ok  # one rule for who may talk and who may read
    extra = AccessPolicy.from_config(
        ServerConfig(kind="sse", allow_origins=("https://app.example",))
    )
    assert cors.headers_for(extra, "https://app.example")


def test_preflight_answers_posts_with_a_json_body_and_last_event_id() -> None:
    ask = {
        "Origin": PAGE,
        "Host": "u1.localhost:8081",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,last-event-id,x-cancel-secret",
    }
    h = cors.preflight_headers(POLICY, ask)
    assert h is not None and h["Access-Control-Allow-Origin"] == PAGE
    allowed = {x.strip().lower() for x in h["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "last-event-id", "x-cancel-secret"} <= allowed
    assert int(h["Access-Control-Max-Age"]) > 0
    assert (
        cors.preflight_headers(POLICY, {**ask, "Access-Control-Request-Method": "DELETE"}) is None
    )
    assert cors.preflight_headers(POLICY, {**ask, "Origin": "https://evil.example"}) is None
    assert cors.preflight_headers(POLICY, {**ask, "Host": "evil.example"}) is None  # rebinding


def test_sse_server_streams_with_cors_headers_for_a_loopback_page(servers: ServerPool) -> None:
    srv = servers.get("sse")
    got = sse_stream(srv.http + "/v1/stream", params=FAST, headers={"Origin": PAGE})
    assert got.status == 200 and got.done is not None  # the stream itself is unchanged
    assert got.headers["Access-Control-Allow-Origin"] == PAGE
    assert "Origin" in got.headers.get("Vary", "")
    exposed = got.headers["Access-Control-Expose-Headers"]
    assert "X-Stream-Id" in exposed and "X-Cancel-Secret" in exposed
    pre = requests.options(
        srv.http + "/v1/stream",
        headers={
            "Origin": PAGE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,last-event-id",
        },
        timeout=5,
    )
    assert pre.status_code == 204 and pre.headers["Access-Control-Allow-Origin"] == PAGE
    foreign = sse_stream(
        srv.http + "/v1/stream", params=FAST, headers={"Origin": "https://x.example"}
    )
    assert "Access-Control-Allow-Origin" not in foreign.headers
    refused = requests.options(
        srv.http + "/v1/stream",
        headers={"Origin": "https://x.example", "Access-Control-Request-Method": "POST"},
        timeout=5,
    )
    assert refused.status_code == 403
    # no Origin (not a browser): nothing added
    plain = sse_stream(srv.http + "/v1/stream", params=FAST)
    assert "Access-Control-Allow-Origin" not in plain.headers
