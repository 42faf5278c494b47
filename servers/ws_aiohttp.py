"""The aiohttp WebSocket server: upgrade at `GET /v1/ws` (native) and at every other
payload format's WS path (`GET /v1/responses`: openai-responses); protocol in
servers.ws_session.

Compression is chosen explicitly (off by default), pings every
heartbeat interval (aiohttp `heartbeat=`; a pong missing for half an interval closes the
connection: the streams end with ``ended_by = ping_timeout``, not counted as a protocol
error), client messages capped at 16 KiB (1009).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from functools import partial

from aiohttp import WSMsgType, web

from core.formats import PayloadFormat, format_names, get_format
from core.wsmsg import CLOSE_UNSUPPORTED_DATA, MAX_CLIENT_MESSAGE, ProtocolError
from servers.config import ServerState
from servers.http_common import STATE_KEY, admit, finish_app, make_app, request_guard
from servers.ws_session import WSSession, WSSink


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def _close(ws: web.WebSocketResponse, code: int, reason: str) -> Awaitable[bool]:
    return ws.close(code=code, message=reason.encode())


async def ws_handler(request: web.Request, fmt: PayloadFormat) -> web.StreamResponse:
    """One WebSocket connection speaking payload format `fmt` (the upgrade path's)."""
    refused = admit(request)
    if refused is not None:
        return refused
    state: ServerState = request.app[STATE_KEY]
    cfg = state.config
    ws = web.WebSocketResponse(
        heartbeat=cfg.heartbeat_s or None,
        compress=cfg.compression == "deflate",
        max_msg_size=MAX_CLIENT_MESSAGE,
    )
    if not ws.can_prepare(request).ok:
        return web.Response(status=426, text="WebSocket upgrade required\n")
    await ws.prepare(request)
    state.stats.ws_connections_total += 1
    sink = WSSink(
        partial(ws.send_frame, opcode=WSMsgType.TEXT),
        partial(_abort, request),
        (ConnectionError,),
        ws,
        _close,
        request.query.get("conn"),
    )
    session = WSSession(state, sink, request_guard(request), fmt)
    cause = "close"
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                try:
                    await session.on_text(msg.data)
                except ProtocolError as exc:
                    await session.close()
                    await ws.close(code=exc.code, message=exc.reason.encode())
                    break
            elif msg.type is WSMsgType.BINARY:
                state.stats.ws_protocol_errors += 1
                await session.close()
                await ws.close(
                    code=CLOSE_UNSUPPORTED_DATA, message=b"binary frames are not supported"
                )
                break
            elif msg.type is WSMsgType.ERROR:  # e.g. oversized: aiohttp already closed with 1009
                if isinstance(msg.data, asyncio.TimeoutError):  # a ping went unanswered
                    cause = "ping_timeout"
                else:
                    state.stats.ws_protocol_errors += 1
                break
    except ConnectionError:
        pass
    finally:
        await session.close(cause)
    return ws


def make_ws_app(state: ServerState) -> web.Application:
    """Every registered payload format with a WS form, upgraded at its path (native
    ``/v1/ws``, openai-responses ``/v1/responses``)."""
    app = make_app(state)
    for name in format_names():
        fmt = get_format(name)
        if "ws" in fmt.protocols and fmt.ws_path is not None:
            app.router.add_get(fmt.ws_path, partial(ws_handler, fmt=fmt))
    return finish_app(app)
