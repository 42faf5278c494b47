"""The WebSocket protocol (DESIGN §4, core.wsmsg), shared by the aiohttp and `websockets` servers.

One `WSSession` per connection. The server's read loop hands it each text frame; it
starts, cancels and resumes streams, each stream in its own task so several can run on
one connection. Protocol violations raise `core.wsmsg.ProtocolError` (the read loop
closes with its code); recoverable mistakes (a start for a running id, a cancel or resume
for an unknown one) get an `error` message and the connection stays open.

A session holds nothing until a stream starts (idle connections must stay cheap).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from core.schedule import StreamId, StreamPlan
from core.wsmsg import (
    Cancel,
    Resume,
    Start,
    cancelled_message,
    done_message,
    error_message,
    parse_client_message,
)
from servers.config import ServerState
from servers.engine import run_stream
from servers.streams import ActiveStream, Outcome


class WSSink:
    """Engine sink over one WS connection; `send` writes bytes (UTF-8 JSON) as a text frame."""

    __slots__ = ("_abort", "errors", "send")
    frame = None
    heartbeat = None  # WS keepalive is the library's ping, not a frame of ours

    def __init__(
        self,
        send: Callable[[bytes], Awaitable[object]],
        abort: Callable[[], None],
        errors: tuple[type[BaseException], ...],
    ) -> None:
        self.send = send
        self._abort = abort
        self.errors = errors

    def abort(self) -> None:
        self._abort()


class WSSession:
    __slots__ = ("_sink", "_state", "_streams")

    def __init__(self, state: ServerState, sink: WSSink) -> None:
        self._state = state
        self._sink = sink
        self._streams: dict[StreamId, tuple[ActiveStream, asyncio.Task[None]]] | None = None

    async def on_text(self, text: str) -> None:
        """Handle one client text frame. Raises ProtocolError for a close-worthy message."""
        arrived = time.monotonic_ns()
        msg = parse_client_message(text)
        if isinstance(msg, Start):
            await self._start(StreamPlan.build(msg.params), 0, arrived)
        elif isinstance(msg, Cancel):
            entry = self._streams.get(msg.stream) if self._streams else None
            if entry is None:
                await self._reply(
                    error_message("no active stream with this id", msg.stream, "stream")
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
                    error_message(
                        "unknown stream: send its parameters to resume", msg.stream, "stream"
                    )
                )
                return
            params = recent.params
        plan = StreamPlan.build(params)
        if msg.after >= plan.n:
            await self._reply(error_message(f"after must be below {plan.n}", msg.stream, "after"))
            return
        t0 = self._state.registry.resume_t0(plan, msg.after, arrived)
        await self._start(plan, msg.after + 1, t0)

    async def _start(self, plan: StreamPlan, start: int, t0: int) -> None:
        stream = plan.params.stream
        if self._streams is None:
            self._streams = {}
        elif stream in self._streams:
            await self._reply(error_message("stream already running", stream, "stream"))
            return
        handle = ActiveStream(stream)
        task = asyncio.create_task(self._run(handle, plan, start, t0))
        self._streams[stream] = (handle, task)

    async def _run(self, handle: ActiveStream, plan: StreamPlan, start: int, t0: int) -> None:
        try:
            outcome = await run_stream(self._state, handle, plan, start, t0, self._sink)
            if outcome is Outcome.COMPLETED:
                await self._reply(done_message(plan.done(), handle.stream))
            elif outcome is Outcome.CANCELLED:
                await self._reply(cancelled_message(handle.stream, handle.sent))
        except self._sink.errors:
            pass
        finally:
            streams = self._streams
            if streams is not None and streams.get(handle.stream, (None,))[0] is handle:
                del streams[handle.stream]

    async def _reply(self, text: str) -> None:
        data = text.encode()
        await self._sink.send(data)
        self._state.stats.bytes_control += len(data)

    async def close(self) -> None:
        """The connection is over: stop every stream (client gone) and wait for them."""
        if not self._streams:
            return
        entries = list(self._streams.values())
        for handle, _ in entries:
            handle.stop(Outcome.DISCONNECTED)
        await asyncio.gather(*(task for _, task in entries), return_exceptions=True)
