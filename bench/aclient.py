"""The asyncio shell over the client core: one connection, SSE or WS, any payload format.

Used by everything outside Locust that reads streams: the perf load client
(bench.perf.flood), the proxy probes (bench.probes), the server-lag benchmark. It owns the
socket (an `asyncio.Protocol`, the cheapest read path on uvloop) and the clock; parsing is
the client core's (core.client), so these tools count and time tokens exactly as the load
test does. Every event is stamped with `time.monotonic_ns()` taken in `data_received`,
before any parsing: the time its bytes were read.

A stream's events go to a callback, once per read, as a list that is only valid during the
call (no per-read future or task: the flood client runs tens of thousands of reads a
second). `wait_end` returns when the stream is over: for SSE when the response ended (or
the connection did), for WS at its Done / Failed / Closed.

    conn = await AsyncConnection.connect("http://127.0.0.1:8081", "sse")
    t_send = conn.start(params, on_events)
    ended = await conn.wait_end(timeout_s=30)
    conn.abort()  # or await conn.aclose()

An ``https://`` / ``wss://`` URL goes through the client core's sans-I/O TLS layer
(core.client.tls) inside this protocol, as in the Locust shells: the handshake after the
TCP connect (`t_tcp_ns`, `t_tls_ns`), ciphertext decrypted in `data_received` — the
plaintext keeps the read's stamp — and `tls` (TLSSettings) for verification. A URL with
its own path is requested as given; a bare scheme://host:port gets the format's path.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Callable

from websockets.exceptions import InvalidURI

from core.arms import Protocol
from core.client.events import Closed, Done, Failed, StreamEvent
from core.client.sse import SSEClient
from core.client.tls import TLSClient, TLSError, TLSSettings, context_for
from core.client.urls import parse_url
from core.client.ws import CLOSE_NORMAL, WSClient, ws_uri
from core.formats import get_format
from core.schedule import StreamParams

EventsCallback = Callable[[list[StreamEvent]], None]
_ENDS = (Done, Failed, Closed)


class ClientError(Exception):
    """Connecting, upgrading or sending failed (the message says which step)."""


class AsyncConnection(asyncio.Protocol):
    """One connection driven by asyncio (see the module docstring). Read `sse` / `ws` for
    the core's state (status, headers, first byte, close code …)."""

    def __init__(
        self,
        protocol: Protocol,
        core: SSEClient | WSClient,
        on_read: Callable[[int, int], None] | None = None,
    ) -> None:
        self.protocol = protocol
        self.sse = core if isinstance(core, SSEClient) else None
        self.ws = core if isinstance(core, WSClient) else None
        #: Called with (t_ns, bytes) for every read, before parsing (a probe's recv log).
        self.on_read = on_read
        self.transport: asyncio.Transport | None = None
        self.tls: TLSClient | None = None  # over https / wss
        self.t_connect_ns = 0  # connect() was called
        self.t_tcp_ns: int | None = None  # TCP connected
        self.t_tls_ns: int | None = None  # TLS handshake done (None: no TLS)
        self.t_send_ns: int | None = None  # the current stream's request / start left
        self.end: StreamEvent | None = None  # what ended the current stream, if an event did
        self.lost = False  # the connection is gone
        self._on_events: EventsCallback | None = None
        self._out: list[StreamEvent] = []
        self._ended: asyncio.Future[None] | None = None
        self._handshake: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._tls_error: TLSError | None = None

    # ------------------------------------------------------------------ connect
    @classmethod
    async def connect(
        cls,
        url: str,
        protocol: Protocol,
        *,
        payload_format: str = "native",
        compression: str = "off",
        extra_headers: tuple[tuple[str, str], ...] = (),
        ws_query: str = "",
        timeout_s: float = 10.0,
        on_read: Callable[[int, int], None] | None = None,
        tls: TLSSettings | None = None,
    ) -> AsyncConnection:
        """TCP connect (TLS handshake, WS upgrade) to the server at `url` (see the module
        docstring for its path). `extra_headers` go on every request / the upgrade.
        Raises ClientError."""
        fmt = get_format(payload_format)
        core: SSEClient | WSClient
        try:
            ep = parse_url(url)
            host, port = ep.host, ep.port
            if protocol == "sse":
                core = SSEClient(
                    fmt,
                    ep.authority,
                    ep.base(fmt.sse_path or ""),
                    extra_headers=extra_headers,
                    path=ep.path or None,
                )
            else:
                path = ep.stream_path(fmt.ws_path or "")
                uri = ws_uri(host, port, path, ws_query, tls=ep.tls)
                core = WSClient(fmt, uri, compression=compression, extra_headers=extra_headers)
            context = context_for(tls or TLSSettings()) if ep.tls else None
        except (ValueError, InvalidURI, OSError) as exc:  # OSError: an unreadable CA file
            raise ClientError(str(exc)) from None
        loop = asyncio.get_running_loop()
        t0 = time.monotonic_ns()
        conn: AsyncConnection | None = None
        try:
            async with asyncio.timeout(timeout_s):
                _, conn = await loop.create_connection(
                    lambda: cls(protocol, core, on_read), host, port
                )
                conn.t_connect_ns = t0
                conn.t_tcp_ns = time.monotonic_ns()
                if context is not None:
                    await conn._start_tls(TLSClient(context, host))
                if conn.ws is not None:
                    await conn._upgrade()
        except (OSError, TimeoutError) as exc:
            if conn is not None:
                conn.abort()
            raise ClientError(f"connect {host}:{port}: {type(exc).__name__}: {exc}") from None
        except TLSError as exc:
            if conn is not None:
                conn.abort()
            raise ClientError(f"TLS with {host}:{port}: {exc}") from None
        return conn

    async def _start_tls(self, tls: TLSClient) -> None:
        """The TLS handshake (TLSError if it fails); reads feed it until it is done."""
        assert self.transport is not None
        self.tls = tls
        self._handshake = asyncio.get_running_loop().create_future()
        self.transport.write(tls.start())
        await self._handshake
        if not tls.established:
            raise self._tls_error or TLSError("the connection closed during the TLS handshake")

    def _tls_handshake_bytes(self, t: int, data: bytes) -> None:
        tls = self.tls
        assert tls is not None
        try:
            reply = tls.receive_handshake(data)
        except TLSError as exc:
            self._tls_error = exc
            reply = b""
        if reply and self.transport is not None and not self.transport.is_closing():
            self.transport.write(reply)
        if tls.established:
            self.t_tls_ns = t
        done = tls.established or self._tls_error is not None
        if done and self._handshake is not None and not self._handshake.done():
            self._handshake.set_result(None)

    def _write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(self.tls.encrypt(data) if self.tls is not None else data)

    async def _upgrade(self) -> None:
        assert self.ws is not None and self.transport is not None
        self._handshake = asyncio.get_running_loop().create_future()
        self._write(self.ws.handshake())
        await self._handshake
        if not self.ws.is_open:
            self.abort()
            raise ClientError(f"WS upgrade failed: {self.ws.handshake_error or 'EOF'}")

    # ------------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they have its methods
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        t = time.monotonic_ns()
        if self.on_read is not None:
            self.on_read(t, len(data))
        tls = self.tls
        if tls is None:
            self._feed(t, data)
            return
        if not tls.established:
            self._tls_handshake_bytes(t, data)
            return
        plain = tls.decrypt(data)
        reply = tls.data_to_send()
        if reply and self.transport is not None and not self.transport.is_closing():
            self.transport.write(reply)
        if plain:
            self._feed(t, plain)
        if tls.eof:
            self._eof()

    def eof_received(self) -> bool:
        if self.tls is not None and not self.tls.established:
            self._tls_handshake_bytes(time.monotonic_ns(), b"")
        self._eof()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof()
        for fut in (self._handshake, self._ended, self._closed):
            if fut is not None and not fut.done():
                fut.set_result(None)

    # ------------------------------------------------------------------ bytes in
    def _eof(self) -> None:
        if not self.lost:
            self.lost = True
            self._feed(time.monotonic_ns(), b"")

    def _feed(self, t: int, data: bytes) -> None:
        out = self._out
        ws = self.ws
        if ws is not None:
            if ws.connecting:
                ws.feed_handshake(t, data)
                if not ws.connecting and self._handshake is not None:
                    self._handshake.set_result(None)
                return
            open_ = ws.feed(t, data, out)
            pending = ws.data_to_send()  # pongs, the reply to a close
            if pending and self.transport is not None and not self.transport.is_closing():
                self._write(pending)
            if not open_ and self.transport is not None:
                if ws.closed and self._closed is not None and not self._closed.done():
                    self._closed.set_result(None)
                self.transport.close()
        else:
            sse = self.sse
            assert sse is not None
            sse.feed(t, data, out)
        if out:
            if self._on_events is not None:
                self._on_events(out)
            last = out[-1]  # an end (done, error, drop) is the last event of its read
            if isinstance(last, _ENDS):
                self.end = last
                if ws is not None:  # a WS stream is over at its end event
                    ws.finish()
                    self._stream_over()
            out.clear()
        sse = self.sse
        if sse is not None and sse.ended:  # an SSE stream is over when its response is
            if sse.drop is not None and self.transport is not None:
                self.transport.close()
            self._stream_over()

    def _stream_over(self) -> None:
        fut = self._ended
        if fut is not None and not fut.done():
            fut.set_result(None)

    # ------------------------------------------------------------------ streams
    @property
    def reusable(self) -> bool:
        """The connection can carry the next stream."""
        if self.lost or self.transport is None or self.transport.is_closing():
            return False
        if self.ws is not None:
            return self.ws.is_open
        assert self.sse is not None
        return self.sse.reusable

    def start(
        self,
        params: StreamParams,
        on_events: EventsCallback | None = None,
        *,
        resume_after: int | None = None,
    ) -> int:
        """Send a stream's request (SSE) or start message (WS); its events go to
        `on_events`. Returns the time it was written."""
        if not self.reusable or self.transport is None:
            raise ClientError("the connection cannot carry another stream")
        if self.ws is not None:
            data = self.ws.start(params, resume_after=resume_after)
        else:
            assert self.sse is not None
            data = self.sse.request(params, resume_after=resume_after)
        self._on_events = on_events
        self.end = None
        self._ended = asyncio.get_running_loop().create_future()
        t = self.t_send_ns = time.monotonic_ns()
        self._write(data)
        return t

    async def wait_end(self, timeout_s: float | None = None) -> bool:
        """True once the stream is over (see the module docstring), False at the timeout."""
        fut = self._ended
        if fut is None:
            return True
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(fut)  # a timeout must not cancel the stream's future
        except TimeoutError:
            return False
        return True

    def take_bytes(self) -> int:
        core = self.ws if self.ws is not None else self.sse
        return core.take_bytes() if core is not None else 0

    # ------------------------------------------------------------------ closing
    def abort(self) -> None:
        """Reset the connection (SO_LINGER 0 → RST: no TIME_WAIT left behind by big runs)."""
        tr = self.transport
        if tr is None or self.lost:
            return
        sock = tr.get_extra_info("socket")
        if sock is not None:
            # ValueError: uvloop's stand-in socket of a transport already closed
            with contextlib.suppress(OSError, ValueError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        tr.abort()

    async def aclose(self, timeout_s: float = 2.0) -> None:
        """Close politely: a WS close handshake (waiting up to `timeout_s` for the server's
        close frame), then the TCP connection."""
        tr = self.transport
        if tr is None or tr.is_closing():
            return
        if self.ws is not None and self.ws.is_open:
            self._closed = asyncio.get_running_loop().create_future()
            self._write(self.ws.close(CLOSE_NORMAL, ""))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._closed
        tr.close()
