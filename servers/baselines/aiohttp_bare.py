"""The bare framework: minimal aiohttp SSE and WS handlers with no stream bookkeeping.

What an aiohttp user writes in twenty lines, with the project's payload, schedule and
settings (WS compression off, heartbeat as configured), so that "ours / bare" isolates the
cost of the project's stream bookkeeping (registry, counters, lag sketch, resume memory).
"""

from __future__ import annotations

import time

from aiohttp import WSMsgType, web

from core.schedule import ParamError, StreamPlan, parse_params
from core.sse import encode_comment, encode_done, encode_token
from core.wsmsg import ProtocolError, Start, done_message, parse_client_message
from servers.baselines.common import emit

_HB = encode_comment("keepalive")


def _health(kind: str):
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "kind": kind})

    return healthz


def make_sse_app(heartbeat_s: float) -> web.Application:
    async def stream(request: web.Request) -> web.StreamResponse:
        t0 = time.monotonic_ns()
        try:
            plan = StreamPlan.build(parse_params(dict(request.query)))
        except ParamError as exc:
            return web.json_response(exc.as_dict(), status=400)
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await resp.prepare(request)
        try:
            await emit(plan, t0, resp.write, encode_token, heartbeat=_HB, heartbeat_s=heartbeat_s)
            await resp.write(encode_done(plan.done()))
            await resp.write_eof()
        except ConnectionError:
            pass
        return resp

    app = web.Application()
    app.router.add_get("/healthz", _health("aiohttp-sse"))
    app.router.add_get("/v1/stream", stream)
    return app


def make_ws_app(heartbeat_s: float) -> web.Application:
    async def ws_handler(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=heartbeat_s or None, compress=False)
        await ws.prepare(request)

        async def send(data: bytes) -> None:
            await ws.send_frame(data, WSMsgType.TEXT)

        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    break
                try:
                    m = parse_client_message(msg.data)
                except ProtocolError as exc:
                    await ws.close(code=exc.code, message=exc.reason.encode())
                    break
                if isinstance(m, Start):
                    t0 = time.monotonic_ns()
                    plan = StreamPlan.build(m.params)
                    await emit(plan, t0, send)
                    await ws.send_str(done_message(plan.done(), m.params.stream))
        except ConnectionError:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/healthz", _health("aiohttp-ws"))
    app.router.add_get("/v1/ws", ws_handler)
    return app


__all__ = ["make_sse_app", "make_ws_app"]
