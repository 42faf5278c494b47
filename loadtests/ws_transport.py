"""WS client transport under Locust: the client core's `WSClient` over a `wire.Channel`.

`websockets.sync` crashed Locust's gevent hub; the client core (core.client.ws, on
websockets' sans-I/O protocol) has no threads or event loop of its own, so over a
(gevent-patched) blocking socket it is just parsing. This shell owns the socket, deadlines
and connection records. One connection per session, held through think time (idle reads
answer server pings — the core queues the pong; we send it). No extension is offered, so
permessage-deflate is off unless `compression="deflate"`; `extensions` says what was
negotiated. A drop is followed (if the session resumes) by a new connection and the
format's resume message; a cancel is the format's cancel message (the connection stays)
or a close handshake.

A wss:// URL is TLS (wire.Channel, with the phase's verification settings), its handshake
paid once per connection. A URL with its own path is used exactly as given; a bare
scheme://host:port gets the format's path and a ``conn=`` query naming the connection
(joined with a proxy's logs). `headers` go on the upgrade request.
"""

from __future__ import annotations

import contextlib
import time
from urllib.parse import quote

from core.client.tls import TLSSettings, context_for
from core.client.ws import CLOSE_NORMAL, WSClient, ws_uri
from core.formats import PayloadFormat, get_format
from core.schedule import StreamParams
from loadtests.inbox import Inbox, Take
from loadtests.transport import (
    Started,
    StreamEvent,
    Transport,
    TransportContext,
    TransportError,
)
from loadtests.wire import Channel, endpoint

CLOSE_WAIT_S = 1.0  # how long a client close waits for the server's close frame


class WSTransport(Transport):
    protocol = "ws"

    def __init__(
        self,
        ctx: TransportContext,
        url: str,
        *,
        compression: str = "off",
        fmt: PayloadFormat | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        tls: TLSSettings | None = None,
    ) -> None:
        if compression not in ("off", "deflate"):
            raise ValueError(f"compression must be 'off' or 'deflate', got {compression!r}")
        self._ctx = ctx
        self._fmt = fmt or get_format("native")
        self.resumable = self._fmt.resumable
        ep = endpoint(url)
        self._host, self._port = ep.host, ep.port
        self._own_path = bool(ep.path)  # used as given: no conn= query added
        self._path = ep.stream_path(self._fmt.ws_path or "")
        self._headers = headers
        self._tls = context_for(tls or TLSSettings()) if ep.tls else None
        # a bad URL fails here, not at a connect
        ws_uri(self._host, self._port, self._path, tls=ep.tls)
        self._compression = compression
        self._chan: Channel | None = None
        self._ws: WSClient | None = None
        self._inbox = Inbox(self._feed)
        #: None while open; once the server has closed it (close frame or EOF), the reason
        #: recorded when its close frame gave none ("EOF" when there was no close frame)
        self._over: str | None = None
        self._fresh = False
        self._n_conn = 0
        self._bytes = 0  # message bytes of connections already given up, not yet taken
        #: Extensions negotiated on the last connection (empty = no compression).
        self.extensions: list[str] = []

    # ------------------------------------------------------------------ connections
    @property
    def open_connections(self) -> int:
        return int(self._connected())

    def _connected(self) -> bool:
        return (
            self._chan is not None
            and not self._chan.closed
            and self._ws is not None
            and self._ws.is_open
        )

    def _forget(self) -> None:
        """No connection any more; the bytes its client counted are still to be taken."""
        if self._ws is not None:
            self._bytes += self._ws.take_bytes()
        self._chan, self._ws = None, None

    def _flush(self) -> None:
        """Send whatever the protocol queued (pongs, close replies)."""
        assert self._ws is not None and self._chan is not None
        data = self._ws.data_to_send()
        if data:
            self._chan.send(data)

    def _connect(self) -> None:
        if self._chan is not None and not self._chan.closed:
            self._chan.close("client", None, "reconnect")
        self._forget()
        self._n_conn += 1
        conn_uid = f"{self._ctx.conn_prefix}.c{self._n_conn}"
        chan = Channel.connect(self._host, self._port, self._ctx, conn_uid, tls=self._tls)
        # `conn=` names this connection in a proxy's logs (bench.nginx_logs joins nginx's
        # close events onto the connection records by it); the servers ignore it.
        query = "" if self._own_path else f"conn={quote(conn_uid, safe='/.')}"
        uri = ws_uri(self._host, self._port, self._path, query, tls=self._tls is not None)
        ws = WSClient(self._fmt, uri, compression=self._compression, extra_headers=self._headers)
        self._chan, self._ws = chan, ws
        chan.send(ws.handshake())
        deadline = time.monotonic_ns() + int(self._ctx.connect_timeout_s * 1e9)
        while ws.connecting:
            got = chan.recv_some(deadline)
            if got is None or not got[1]:
                chan.close("error", None, "upgrade: no response" if got is None else "upgrade: EOF")
                raise TransportError("WS upgrade: no response from server")
            ws.feed_handshake(*got)
            if ws.t_open_ns is not None:
                chan.acct.opened(ws.t_open_ns)
        if ws.handshake_error is not None or not ws.is_open:
            chan.close("error", None, f"upgrade: {ws.handshake_error}")
            raise TransportError(f"WS upgrade failed: {ws.handshake_error}")
        self.extensions = ws.extensions
        self._inbox.discard()
        self._over = None
        chan.set_sink(self._inbox.on_read)
        self._fresh = True

    def prepare(self) -> None:
        if not self._connected():
            self._connect()

    # ------------------------------------------------------------------ streams
    def _send(self, data: bytes) -> int:
        assert self._chan is not None
        t = time.monotonic_ns()
        self._chan.send(data)
        return t

    def start(self, params: StreamParams, *, resume_after: int | None = None) -> Started:
        if self._connected():
            reused = not self._fresh
        else:
            self._connect()
            reused = False
        self._fresh = False
        assert self._ws is not None and self._chan is not None
        self._inbox.discard()
        t = self._send(self._ws.start(params, resume_after=resume_after))
        self._chan.acct.stream_started(t)
        return Started(t, self._chan.acct.labels.conn_uid, reused, t_open_ns=t)

    def take_bytes(self) -> int:
        n, self._bytes = self._bytes, 0
        return n + (self._ws.take_bytes() if self._ws is not None else 0)

    def _feed(self, t_ns: int, data: bytes, out: list[StreamEvent]) -> bool:
        """The inbox's parser (in the reader's pass under gevent): one read into the client
        core; True if the transport must act (a pong or close reply to send, the connection
        over)."""
        ws = self._ws
        if ws is None or self._over is not None:
            return False
        if not ws.feed(t_ns, data, out):
            self._over = "" if data else "EOF"
            return True
        return ws.wants_send

    def _settle(self) -> bool:
        """After a wake: send what the protocol queued; once the server has closed, reply
        if the protocol wants, record the close and forget the connection. True while open."""
        chan, ws = self._chan, self._ws
        if chan is None or ws is None or chan.closed:
            return False
        if self._over is None:
            if ws.wants_send:
                self._flush()
            return True
        with contextlib.suppress(TransportError):
            self._flush()
        if self._chan is not None:
            self._chan.close("server", ws.close_code, ws.close_reason or self._over or None)
        self._forget()
        return False

    def poll(self, deadline_ns: int, take: Take | None = None) -> list[StreamEvent]:
        def step() -> bool:
            return (
                self._ws is not None
                and self._ws.current is not None
                and self._settle()
                and self._chan is not None
                and self._chan.wait(deadline_ns)
            )

        events = self._inbox.poll(take, step)
        self._settle()
        return events

    def finish_stream(self, t_ns: int) -> None:
        if self._ws is not None:
            self._ws.finish()
        if self._chan is not None:
            self._chan.acct.stream_ended(t_ns)

    def cancel(self, mode: str) -> None:
        ws = self._ws
        if mode == "close" or ws is None or ws.current is None or not self._connected():
            self._close_handshake("cancel")
            return
        data = ws.cancel()
        self._inbox.discard()
        if data is None:  # the format has no cancel message: closing is the cancel
            self._close_handshake("cancel")
            return
        self._send(data)
        assert self._chan is not None
        self._chan.acct.stream_ended(time.monotonic_ns())

    def abort(self, reason: str = "client abort") -> None:
        if self._ws is not None:
            self._ws.finish()
        if self._chan is not None:
            self._chan.abort(reason)
        self._forget()

    def idle(self, seconds: float) -> None:
        deadline = time.monotonic_ns() + int(seconds * 1e9)
        inbox = self._inbox
        while self._settle() and self._chan is not None:
            inbox.discard()  # late frames of a finished stream
            if not self._chan.wait(deadline):
                break
        inbox.discard()
        remaining = (deadline - time.monotonic_ns()) / 1e9
        if remaining > 0:
            time.sleep(remaining)

    def _close_handshake(self, reason: str) -> None:
        """Send a close frame, wait briefly for the server's, close the socket, record it."""
        chan, ws = self._chan, self._ws
        if chan is None or ws is None or chan.closed:
            self._forget()
            return
        try:
            data = ws.close(CLOSE_NORMAL, reason)
            if data:
                chan.send(data)
                deadline = time.monotonic_ns() + int(CLOSE_WAIT_S * 1e9)
                while not ws.closed and self._over is None and chan.wait(deadline):
                    self._inbox.discard()
        except TransportError:
            pass
        self._inbox.discard()
        chan.close("client", CLOSE_NORMAL, reason)
        self._forget()

    def close(self) -> None:
        self._close_handshake("session end")
