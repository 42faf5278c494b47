"""The SSE server (aiohttp): `GET|POST /v1/stream` → text/event-stream (DESIGN §4).

Body: `retry: <ms>`, then one `id: <seq>` / `data: <payload>` event per token, `: keepalive`
comments every heartbeat interval, and `event: done` with the WHOLE stream's count and
sha256 (also after a resume), then the response ends. `Last-Event-ID: <seq>` resumes at
seq+1. A cancel ends the body without a done event; drop_after aborts the TCP connection.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from core.schedule import ParamError, StreamParams, StreamPlan, parse_params
from core.sse import encode_comment, encode_done, encode_retry, encode_token
from servers.config import ServerState
from servers.engine import run_stream
from servers.http_common import STATE_KEY, make_app, param_error
from servers.streams import ActiveStream, Outcome


class SSESink:
    """Engine sink over an aiohttp StreamResponse (chunked transfer encoding)."""

    __slots__ = ("_request", "errors", "frame", "heartbeat", "send")

    def __init__(self, request: web.Request, resp: web.StreamResponse, heartbeat: bytes) -> None:
        self._request = request
        self.send = resp.write
        self.frame = encode_token
        self.heartbeat = heartbeat
        self.errors = (ConnectionError,)

    def abort(self) -> None:
        transport = self._request.transport
        if transport is not None:
            transport.abort()


_HEARTBEAT = encode_comment("keepalive")


async def _read_params(request: web.Request) -> StreamParams:
    if request.method == "GET":
        return parse_params(dict(request.query))
    raw = await request.read()
    try:
        obj: Any = json.loads(raw)
    except ValueError:
        raise ParamError("body", "must be a JSON object") from None
    if not isinstance(obj, dict):
        raise ParamError("body", "must be a JSON object")
    return parse_params(obj)


def _last_event_id(request: web.Request, n: int) -> int:
    raw = request.headers.get("Last-Event-ID")
    if raw is None or raw.strip() == "":
        return -1
    try:
        after = int(raw.strip())
    except ValueError:
        raise ParamError("Last-Event-ID", f"must be an integer, got {raw[:40]!r}") from None
    if not -1 <= after < n:
        raise ParamError("Last-Event-ID", f"must be between -1 and {n - 1}, got {after}")
    return after


async def stream(request: web.Request) -> web.StreamResponse:
    arrived = time.monotonic_ns()  # t0 of a fresh stream: when the request arrived
    state: ServerState = request.app[STATE_KEY]
    try:
        params = await _read_params(request)
        after = _last_event_id(request, params.n_tokens)
    except ParamError as exc:
        return param_error(exc)
    plan = StreamPlan.build(params)
    start = after + 1
    t0 = arrived if start == 0 else state.registry.resume_t0(plan, after, arrived)

    cfg = state.config
    headers = {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "X-Stream-Id": str(params.stream),
    }
    if cfg.accel_header:
        headers["X-Accel-Buffering"] = "no"
    resp = web.StreamResponse(headers=headers)
    handle = ActiveStream(params.stream)
    try:
        await resp.prepare(request)
        retry = encode_retry(cfg.retry_ms)
        await resp.write(retry)
        state.stats.bytes_control += len(retry)
    except ConnectionError:
        return resp
    outcome = await run_stream(state, handle, plan, start, t0, SSESink(request, resp, _HEARTBEAT))
    if outcome is Outcome.COMPLETED or outcome is Outcome.CANCELLED:
        try:
            if outcome is Outcome.COMPLETED:
                done = encode_done(plan.done())
                await resp.write(done)
                state.stats.bytes_control += len(done)
            await resp.write_eof()
        except ConnectionError:
            pass
    # DROPPED: the sink already aborted the connection; DISCONNECTED: nobody to write to.
    return resp


def make_sse_app(state: ServerState) -> web.Application:
    app = make_app(state)
    app.router.add_get("/v1/stream", stream)
    app.router.add_post("/v1/stream", stream)
    return app
