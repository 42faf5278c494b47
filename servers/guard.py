"""Per-connection timeouts: header, idle and slow consumer, the same on all three servers.

A connection that never finishes its request head, sits idle, or stops reading what we
write would otherwise hold a socket (and its stream) for ever: SSE waited on drain without
a timeout, the `websockets` keepalive cannot even queue its ping once the buffer is full,
and 400 connections that never sent a request locked /healthz out of a 256-fd server.

One `ConnectionGuard` per connection holds up to three timer handles; nothing runs per
token or per write:

- header (``--header-timeout-s``): from the connection's start until its first request
  head (HTTP request or WS upgrade) is complete;
- slow consumer (``--send-timeout-s``): from the moment the transport pauses writing (our
  buffer passed its high-water mark: the peer does not keep up) until it resumes (the
  peer drained it below the low-water mark). Paused that long, the connection is aborted
  (a close could not be flushed): the stream's pending or next write fails and it ends
  "disconnected". A peer that reads nothing, or reads far slower than it is sent, is cut;
- idle (``--idle-timeout-s``): armed by the server while a connection has nothing in
  progress: HTTP between requests, WS with no stream running since the last client
  message (`servers.ws_session` closes those with 1001 "idle timeout").

Hooks: the aiohttp servers use `servers.http_common.GuardedHandler` (aiohttp's protocol,
reporting connection_made/lost and pause/resume_writing here), the `websockets` server a
`ServerConnection` subclass doing the same (servers.ws_websockets). Each expiry is counted
by reason on /metrics: ``ssevsws_connections_closed_total{reason=...}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from servers.config import ServerState
from servers.stats import HEADER_TIMEOUT, IDLE, SLOW_CONSUMER


class Guards:
    """The server-wide settings and counters every ConnectionGuard of a server shares."""

    __slots__ = ("closed", "header_s", "idle_s", "send_s")

    def __init__(self, state: ServerState) -> None:
        cfg = state.config
        self.send_s = cfg.send_timeout_s
        self.header_s = cfg.header_timeout_s
        self.idle_s = cfg.idle_timeout_s
        self.closed = state.stats.connections_closed


class ConnectionGuard:
    """The timers of one connection (see the module docstring)."""

    __slots__ = ("_guards", "_header", "_idle", "_send", "_transport")

    def __init__(self, guards: Guards) -> None:
        self._guards = guards
        self._transport: asyncio.Transport | None = None
        self._header: asyncio.TimerHandle | None = None
        self._send: asyncio.TimerHandle | None = None
        self._idle: asyncio.TimerHandle | None = None

    def start(self, transport: Any) -> None:
        """The connection is open: the header clock starts."""
        self._transport = transport
        if self._guards.header_s > 0:
            self._header = asyncio.get_running_loop().call_later(
                self._guards.header_s, self._expire, HEADER_TIMEOUT, None
            )

    def head_received(self) -> None:
        if self._header is not None:
            self._header.cancel()
            self._header = None

    def writing_paused(self) -> None:
        if self._guards.send_s > 0 and self._send is None and self._transport is not None:
            self._send = asyncio.get_running_loop().call_later(
                self._guards.send_s, self._expire, SLOW_CONSUMER, None
            )

    def writing_resumed(self) -> None:
        if self._send is not None:
            self._send.cancel()
            self._send = None

    def idle_start(self, on_expire: Callable[[], object] | None = None) -> None:
        """Nothing is in progress: close after the idle timeout, by `on_expire()` if given
        (a WS close frame), else by closing the transport. Restarts a running idle clock."""
        self.idle_stop()
        if self._guards.idle_s > 0 and self._transport is not None:
            self._idle = asyncio.get_running_loop().call_later(
                self._guards.idle_s, self._expire, IDLE, on_expire
            )

    def idle_stop(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def lost(self) -> None:
        """The connection is gone: every clock stops."""
        for handle in (self._header, self._send, self._idle):
            if handle is not None:
                handle.cancel()
        self._header = self._send = self._idle = None
        self._transport = None

    def _expire(self, reason: str, on_expire: Callable[[], object] | None) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._guards.closed[reason] += 1
        if on_expire is not None:
            on_expire()
        elif reason == SLOW_CONSUMER:
            transport.abort()  # its buffer will never drain: a close would wait for ever
        else:
            transport.close()


class _Protocol(Protocol):
    guard: ConnectionGuard

    def connection_made(self, transport: asyncio.BaseTransport) -> None: ...
    def connection_lost(self, exc: Any) -> None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...


class GuardHooks:
    """Mixin for an asyncio protocol with a `guard`: reports the connection's start and end
    and its flow control to it. Put it first among the bases; it adds no state."""

    __slots__ = ()

    def connection_made(self: _Protocol, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self.guard.start(transport)

    def connection_lost(self: _Protocol, exc: Any) -> None:
        self.guard.lost()
        super().connection_lost(exc)  # type: ignore[misc]

    def pause_writing(self: _Protocol) -> None:
        super().pause_writing()  # type: ignore[misc]
        self.guard.writing_paused()

    def resume_writing(self: _Protocol) -> None:
        super().resume_writing()  # type: ignore[misc]
        self.guard.writing_resumed()
