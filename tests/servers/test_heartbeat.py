"""Heartbeats (SSE `: keepalive` comments, WS pings) and the WS compression switch."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from core.schedule import token_texts
from tests.servers.clients import sse_stream
from tests.servers.conftest import ServerPool

PAUSED = {
    "seed": 5,
    "tokens": 3,
    "ttft_ms": 20,
    "gap_ms": 10,
    "pause_ms": 1000,
    "pause_at": 1,
    "stream": "hb",
}


def test_sse_keepalive_comments_during_pause(servers: ServerPool) -> None:
    srv = servers.get("sse", "--no-accel-header", "--retry-ms", "1234", "--heartbeat-s", "0.2")
    got = sse_stream(srv.http + "/v1/stream", params=PAUSED)
    assert got.tokens == list(enumerate(token_texts(5, "hb", 3)))
    assert got.done is not None and got.done["count"] == 3
    # ~1.03 s of stream life at 0.2 s: about 5; generous for a noisy machine
    assert 2 <= got.comments.count("keepalive") <= 8, got.comments
    assert srv.metrics()["ssevsws_heartbeats_sent_total"] >= 2


def test_sse_no_comments_by_default_on_short_stream(servers: ServerPool) -> None:
    srv = servers.get("sse")  # heartbeat 15 s
    got = sse_stream(srv.http + "/v1/stream", params={**PAUSED, "pause_ms": 300})
    assert got.comments == []


async def _count_pings(url: str) -> tuple[int, int]:
    pings = tokens = 0
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, autoping=False, timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws,
    ):
        await ws.send_json({"type": "start", **PAUSED})
        async with asyncio.timeout(10):
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.PING:
                    pings += 1
                    await ws.pong(msg.data)
                elif msg.type is aiohttp.WSMsgType.TEXT:
                    data = msg.json()
                    if data.get("type") == "done":
                        break
                    tokens += 1
                else:
                    break
    return pings, tokens


@pytest.mark.parametrize("kind", ["ws", "ws-websockets"])
def test_ws_server_sends_pings(servers: ServerPool, kind: str) -> None:
    srv = servers.get(kind, "--heartbeat-s", "0.2")
    pings, tokens = asyncio.run(_count_pings(srv.ws_url))
    assert tokens == 3
    assert 2 <= pings <= 8, pings


def test_ws_no_pings_when_heartbeat_off(servers: ServerPool) -> None:
    srv = servers.get("ws-websockets", "--heartbeat-s", "0")
    pings, tokens = asyncio.run(_count_pings(srv.ws_url))
    assert tokens == 3 and pings == 0


async def _stream_compressed(url: str) -> tuple[list[str], int]:
    texts: list[str] = []
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, compress=15) as ws,
    ):
        negotiated = ws.compress  # window bits agreed with the server, 0 = no deflate
        await ws.send_json({"type": "start", **{**PAUSED, "pause_ms": 0}})
        async with asyncio.timeout(10):
            async for msg in ws:
                data = msg.json()
                if data.get("type") == "done":
                    break
                texts.append(data["d"])
    return texts, negotiated


@pytest.mark.parametrize("kind", ["ws", "ws-websockets"])
def test_ws_deflate_is_opt_in_and_recorded(servers: ServerPool, kind: str) -> None:
    srv = servers.get(kind, "--ws-compression", "deflate")
    texts, ext = asyncio.run(_stream_compressed(srv.ws_url))
    assert texts == token_texts(5, "hb", 3)
    assert ext > 0
    info = [k for k in srv.metrics() if k.startswith("ssevsws_server_info")]
    assert info and "compression=deflate" in info[0]
    off = servers.get(kind)
    _, ext_off = asyncio.run(_stream_compressed(off.ws_url))
    assert ext_off == 0
