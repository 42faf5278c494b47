"""The WebSocket protocol (core.wsmsg), shared by the aiohttp and `websockets` servers.

One `WSSession` per connection. The server's read loop hands it each text frame; it
starts, cancels and resumes streams, each stream in its own task so several can run on
one connection. Protocol violations raise `core.wsmsg.ProtocolError` (the read loop
closes with its code); recoverable mistakes (a start for a running id, a cancel or resume
for an unknown one) get an `error` message and the connection stays open.

A start or resume is admitted first (servers.limits): refused, it gets an `error` message
naming the limit (`{"type":"error","error":...,"limit":...,"stream":ID}`) and the
connection is closed: 1013 "try again later" when the server is busy, 1008 when this
request can never be served (too many streams on this connection, or one stream over the
whole token budget).

While no stream runs, the connection's idle clock (servers.guard) runs from the last
client message; when it expires the session closes with 1001 "idle timeout".

A session holds nothing until a stream starts (idle connections must stay cheap).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from core.formats import PayloadFormat, get_format
from core.schedule import StreamId, StreamParams, StreamPlan
from core.wsmsg import (
    CLOSE_GOING_AWAY,
    CLOSE_POLICY_VIOLATION,
    CLOSE_TRY_AGAIN_LATER,
    Cancel,
    ProtocolError,
    Resume,
    Start,
)
from servers.config import ServerState
from servers.engine import run_stream
from servers.guard import ConnectionGuard
from servers.limits import LimitExceeded
from servers.streams import ActiveStream, Outcome


class LimitRefusal(ProtocolError):
    """A stream refused by a limit: the connection closes with its code, but it is not a
    protocol error (not counted as one; counted by limit in servers.limits)."""


class WSSink:
    """Engine sink over one WS connection; `send` writes bytes (UTF-8 JSON) as a text frame,
    `close(code, reason)` starts the close handshake (through the library's `closer`, one
    function per server kind, so a connection holds no closure for it)."""

    __slots__ = ("_abort", "_closer", "_conn", "errors", "label", "send")
    frame = None
    heartbeat = None  # WS keepalive is the library's ping, not a frame of ours

    def __init__(
        self,
        send: Callable[[bytes], Awaitable[object]],
        abort: Callable[[], None],
        errors: tuple[type[BaseException], ...],
        conn: Any,
        closer: Callable[[Any, int, str], Awaitable[object]],
        label: str | None = None,
    ) -> None:
        self.send = send
        self._abort = abort
        self.errors = errors
        self._conn = conn
        self._closer = closer
        #: The connection's name in the client's records (the upgrade URL's ``conn=``).
        self.label = label

    def abort(self) -> None:
        self._abort()

    def close(self, code: int, reason: str) -> Awaitable[object]:
        return self._closer(self._conn, code, reason)


class WSSession:
    """One connection speaking payload format `fmt` (the upgrade path's; native by default):
    its client messages, preamble, tokens, end and error messages."""

    __slots__ = ("_closing", "_fmt", "_guard", "_sink", "_state", "_streams")

    def __init__(
        self,
        state: ServerState,
        sink: WSSink,
        guard: ConnectionGuard | None,
        fmt: PayloadFormat | None = None,
    ) -> None:
        self._state = state
        self._sink = sink
        self._guard = guard
        self._fmt = fmt or get_format("native")
        self._streams: dict[StreamId, tuple[ActiveStream, asyncio.Task[None]]] | None = None
        self._closing: asyncio.Task[object] | None = None
        self._idle()

    async def on_text(self, text: str) -> None:
        """Handle one client text frame. Raises ProtocolError for a close-worthy message
        (counted as a protocol error unless it is a limit refusal)."""
        try:
            await self._on_text(text)
        except LimitRefusal:
            raise
        except ProtocolError:
            self._state.stats.ws_protocol_errors += 1
            raise
        finally:
            if not self._streams:
                self._idle()  # a message restarts the idle clock of a connection at rest

    async def _on_text(self, text: str) -> None:
        arrived = time.monotonic_ns()
        msg = self._fmt.ws_client_message(text)
        if isinstance(msg, Start):
            await self._start(msg.params, None, arrived)
        elif isinstance(msg, Cancel):
            entry = self._streams.get(msg.stream) if self._streams else None
            if entry is None:
                await self._reply(
                    self._fmt.ws_error("no active stream with this id", msg.stream, "stream")
                )
            else:
                entry[0].stop(Outcome.CANCELLED)  # the stream's task replies "cancelled"
        elif isinstance(msg, Resume):
            await self._resume(msg, arrived)

    async def _resume(self, msg: Resume, arrived: int) -> None:
        params = msg.params
        if params is None:
            recent = self._state.registry.lookup(msg.stream)
            if recent is None:
                await self._reply(
                    self._fmt.ws_error(
                        "unknown stream: send its parameters to resume", msg.stream, "stream"
                    )
                )
                return
            params = recent.params
        n = params.n_tokens
        if msg.after >= n:
            await self._reply(self._fmt.ws_error(f"after must be below {n}", msg.stream, "after"))
            return
        await self._start(params, msg.after, arrived)

    async def _start(self, params: StreamParams, after: int | None, arrived: int) -> None:
        """Admit, plan and run a stream: fresh from `arrived` (after None) or resumed after
        seq `after` on its original schedule."""
        stream = params.stream
        streams = self._streams
        if streams is not None and stream in streams:
            await self._reply(self._fmt.ws_error("stream already running", stream, "stream"))
            return
        admission = self._state.admission
        n = params.n_tokens
        try:
            admission.admit(n, len(streams) if streams else 0)
        except LimitExceeded as exc:
            await self._reply(self._fmt.ws_error(exc.message, stream, limit=exc.limit))
            code = CLOSE_POLICY_VIOLATION if exc.permanent else CLOSE_TRY_AGAIN_LATER
            raise LimitRefusal(code, f"{exc.limit}: {exc.message}") from None
        try:
            plan = StreamPlan.build(params)
            if after is None:
                start, t0 = 0, arrived
            else:
                start, t0 = after + 1, self._state.registry.resume_t0(plan, after, arrived)
            handle = ActiveStream(stream)
            handle.conn = self._sink.label
            task = asyncio.create_task(self._run(handle, plan, start, t0))
        except BaseException:
            admission.release(n)
            raise
        if streams is None:
            streams = self._streams = {}
        streams[stream] = (handle, task)
        if self._guard is not None:
            self._guard.idle_stop()

    async def _run(self, handle: ActiveStream, plan: StreamPlan, start: int, t0: int) -> None:
        try:
            writer = self._fmt.ws_writer(plan, created_s=int(time.time()))
            for text in writer.preamble():
                await self._reply(text)
            outcome = await run_stream(
                self._state, handle, plan, start, t0, self._sink, writer.encoder()
            )
            if outcome is Outcome.COMPLETED:
                for text in writer.done():
                    await self._reply(text)
            elif outcome is Outcome.CANCELLED:
                await self._reply(writer.cancelled(handle.sent))
        except self._sink.errors:
            pass
        finally:
            # A stop never cancels a task before it first ran (run_stream sets handle.task),
            # so this runs for every admitted stream (short of the process's own exit).
            self._state.admission.release(plan.n)
            streams = self._streams
            if streams is not None and streams.get(handle.stream, (None,))[0] is handle:
                del streams[handle.stream]
                if not streams:
                    self._idle()

    def _idle(self) -> None:
        """No stream runs: (re)start the idle clock; it ends in a 1001 close."""
        if self._guard is not None:
            self._guard.idle_start(self._idle_close)

    def _idle_close(self) -> None:
        self._closing = asyncio.ensure_future(self._close_idle())

    async def _close_idle(self) -> None:
        with contextlib.suppress(Exception):  # the peer may be gone already
            await self._sink.close(CLOSE_GOING_AWAY, "idle timeout")

    async def _reply(self, text: str) -> None:
        data = text.encode()
        await self._sink.send(data)
        self._state.stats.bytes_control += len(data)

    async def close(self, cause: str = "close") -> None:
        """The connection is over: stop every stream (client gone) and wait for them.
        `cause`: what told the server (the stream log's ``ended_by``: ``close`` for a close
        frame or EOF, ``ping_timeout`` for an unanswered ping)."""
        if self._guard is not None:
            self._guard.idle_stop()
        if not self._streams:
            return
        entries = list(self._streams.values())
        for handle, _ in entries:
            handle.stop(Outcome.DISCONNECTED, cause)
        await asyncio.gather(*(task for _, task in entries), return_exceptions=True)
