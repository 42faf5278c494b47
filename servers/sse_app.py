"""The SSE server (aiohttp): every payload format's SSE endpoint → text/event-stream.

Native (`GET|POST /v1/stream`, the interface contract): `retry: <ms>`, then one
`id: <seq>` / `data: <payload>` event per token, `: keepalive` comments every heartbeat
interval, and `event: done` with the WHOLE stream's count and sha256 (also after a
resume), then the response ends. `Last-Event-ID: <seq>` resumes at seq+1.
The provider formats (core.formats): `POST /v1/chat/completions` (openai-chat),
`POST /v1/responses` (openai-responses), `POST /v1/messages` (anthropic) with
`"stream": true`: the format's preamble events at once, one content event per token,
its end events; the same token texts as native for the same seed, length and stream id.
A cancel ends the body without end events; drop_after aborts the TCP connection.

Each stream's response carries `X-Cancel-Secret: <random>`; `POST /v1/streams/{id}/cancel`
must send it back in the same header (servers.endpoints). A stream is admitted against
the server's limits before its plan is built (servers.limits): refused, 503 or 400 with
`{"error":...,"limit":...}`. The access policy, timeouts, limits, waste accounting and
/metrics counts are the same for every endpoint (one handler, `stream`).
"""

from __future__ import annotations

import secrets
import time
from functools import partial

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from core.formats import PayloadFormat, format_names, get_format
from core.schedule import ParamError, StreamPlan
from servers import endpoints
from servers.config import ServerState
from servers.engine import run_stream
from servers.http_common import STATE_KEY, admit, finish_app, finished, make_app, response
from servers.limits import LimitExceeded
from servers.streams import ActiveStream, Outcome

#: Wait for the client (drain) once this much is queued in the transport: aiohttp's own
#: writer uses the same 64 KiB, and the transport pauses writing above its high-water mark.
_DRAIN_ABOVE = 0x10000


class SSESink:
    """Engine sink over an aiohttp StreamResponse whose headers are sent (chunked body).

    Events go straight to the transport as one pre-framed HTTP/1.1 chunk each
    (``<hex len>\r\n<event>\r\n``, the bytes aiohttp's writer would produce; as they are
    to an HTTP/1.0 peer, whose body ends with the connection): aiohttp's
    write path (StreamResponse.write → StreamWriter.write → chunk framing → writelines)
    was ~half of the server's CPU per token in the flood profile. Flow control stays:
    above `_DRAIN_ABOVE` queued bytes the writer's drain() waits for the client; a closed
    transport raises ConnectionResetError like aiohttp's writer does. The response's end
    (done event, terminating chunk) still goes through aiohttp.
    """

    __slots__ = (
        "_chunked",
        "_request",
        "_transport",
        "_writer",
        "errors",
        "heartbeat",
    )

    def __init__(
        self, request: web.Request, writer: AbstractStreamWriter, heartbeat: bytes | None
    ) -> None:
        self._request = request
        self._transport = request.transport
        self._writer = writer
        # HTTP/1.0 peers (nginx's default upstream protocol) get a close-delimited body
        self._chunked = bool(getattr(writer, "chunked", False))
        self.heartbeat = heartbeat
        self.errors = (ConnectionError,)

    async def send(self, event: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        data = b"%x\r\n%s\r\n" % (len(event), event) if self._chunked else event
        transport.write(data)
        self._writer.output_size += len(data)
        if transport.get_write_buffer_size() > _DRAIN_ABOVE:
            await self._writer.drain()

    def abort(self) -> None:
        transport = self._request.transport
        if transport is not None:
            transport.abort()


def _last_event_id(request: web.Request, n: int) -> int:
    raw = request.headers.get("Last-Event-ID")
    if raw is None or raw.strip() == "":
        return -1
    text = raw.strip()
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 18):
        raise ParamError("Last-Event-ID", f"must be an integer, got {raw[:40]!r}")
    after = int(text)
    if not -1 <= after < n:
        raise ParamError("Last-Event-ID", f"must be between -1 and {n - 1}, got {after}")
    return after


async def stream(request: web.Request, fmt: PayloadFormat) -> web.StreamResponse:
    """One stream in payload format `fmt` (the route's): parameters from its query or body,
    its writer's preamble with the headers, tokens by the engine, its end events."""
    arrived = time.monotonic_ns()  # t0 of a fresh stream: when the request arrived
    refused = admit(request)
    if refused is not None:
        return refused
    try:  # one coroutine for the whole stream (no helper frame): it lives as long as it
        state: ServerState = request.app[STATE_KEY]
        try:
            body = await request.read() if request.method == "POST" else None
            params = fmt.sse_params(request.query, body)
            after = _last_event_id(request, params.n_tokens) if fmt.resumable else -1
            state.admission.admit(params.n_tokens)
        except ParamError as exc:
            return response(endpoints.param_error(exc))
        except LimitExceeded as exc:
            return response(endpoints.limit_refused(exc))
        try:
            plan = StreamPlan.build(params)
            start = after + 1
            t0 = arrived if start == 0 else state.registry.resume_t0(plan, after, arrived)
            cfg = state.config
            secret = secrets.token_urlsafe(12)
            headers = {
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Stream-Id": str(params.stream),
                endpoints.CANCEL_SECRET_HEADER: secret,
            }
            if cfg.accel_header:
                headers["X-Accel-Buffering"] = "no"
            resp = web.StreamResponse(headers=headers)
            handle = ActiveStream(params.stream, secret)
            events = fmt.sse_writer(plan, retry_ms=cfg.retry_ms, created_s=int(time.time()))
            try:
                writer = await resp.prepare(request)
                preamble = events.preamble()
                await resp.write(preamble)  # sends the headers with it
                state.stats.bytes_control += len(preamble)
            except ConnectionError:
                return resp
            if writer is None:  # prepared before: not this handler's response
                return resp
            sink = SSESink(request, writer, events.heartbeat)
            outcome = await run_stream(state, handle, plan, start, t0, sink, events.encoder())
            if outcome is Outcome.COMPLETED or outcome is Outcome.CANCELLED:
                try:
                    if outcome is Outcome.COMPLETED:
                        done = events.done()
                        await resp.write(done)
                        state.stats.bytes_control += len(done)
                    await resp.write_eof()
                except ConnectionError:
                    pass
            # DROPPED: the sink aborted the connection; DISCONNECTED: nobody to write to.
            return resp
        finally:
            state.admission.release(params.n_tokens)
    finally:
        finished(request)


def make_sse_app(state: ServerState) -> web.Application:
    """Every registered payload format with an SSE form, at its path: POST, and GET too for
    a format whose requests are GETs (native: ``GET|POST /v1/stream``)."""
    app = make_app(state)
    for name in format_names():
        fmt = get_format(name)
        if "sse" not in fmt.protocols or fmt.sse_path is None:
            continue
        handler = partial(stream, fmt=fmt)
        if fmt.sse_method == "GET":
            app.router.add_get(fmt.sse_path, handler)
        app.router.add_post(fmt.sse_path, handler)
    return finish_app(app)
