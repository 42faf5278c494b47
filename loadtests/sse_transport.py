"""SSE client transport under Locust: the client core's `SSEClient` over a `wire.Channel`.

The parsing (response head, body framing, SSE events, the payload format) is
core.client.sse's; this shell owns the socket, the deadlines, the connection records and the
session-level choices. Reads reach the client core through the connection's `Inbox` (the
channel's sink: under gevent it runs in the process reader's pass, and the session's tokens
are counted there without waking the user); all events parsed from one read carry its stamp.

One request per stream; the connection is kept alive and reused for the next turn when the
server allows it (recorded as `reused_conn`), and closed by the client after
`keepalive_expiry_s` of idleness — httpx's default (5 s), so think time is not counted as a
held connection the way a WS session holds one. Resume after a drop sends the same request
with `Last-Event-ID: <last seq received>`. Cancel: close the connection, or the format's
cancel request on a second connection (native: `POST /v1/streams/{id}/cancel` with the
`X-Cancel-Secret` header the stream's response carried), then let the response end.

An https:// URL is TLS (wire.Channel, with the phase's verification settings): every new
connection pays its handshake, a reused one does not. A URL with its own path is requested
as given; a bare scheme://host:port gets the format's path (core.client.urls). `headers`
go on every request (an API key: the phase config holds them, the records never do).
"""

from __future__ import annotations

import time

from core.client.sse import HttpResponseReader, SSEClient
from core.client.tls import TLSSettings, context_for
from core.formats import PayloadFormat, get_format
from core.schedule import StreamParams
from loadtests.inbox import Inbox, Take
from loadtests.transport import (
    Started,
    StreamEvent,
    Transport,
    TransportContext,
)
from loadtests.wire import Channel, endpoint

DEFAULT_KEEPALIVE_EXPIRY_S = 5.0  # httpx's keepalive_expiry default
DRAIN_S = 2.0  # how long to wait for the end of a response after done / cancel


class SSETransport(Transport):
    protocol = "sse"

    def __init__(
        self,
        ctx: TransportContext,
        url: str,
        *,
        method: str | None = None,
        cancel_url: str | None = None,
        keepalive_expiry_s: float = DEFAULT_KEEPALIVE_EXPIRY_S,
        fmt: PayloadFormat | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        tls: TLSSettings | None = None,
    ) -> None:
        if method not in (None, "GET", "POST"):
            raise ValueError(f"method must be GET or POST, got {method!r}")
        self._ctx = ctx
        self._fmt = fmt or get_format("native")
        self.resumable = self._fmt.resumable
        ep = endpoint(url)
        default = self._fmt.sse_path or ""
        self._host, self._port, self._base = ep.host, ep.port, ep.base(default)
        self._path = ep.path or None  # None: the format's own path
        self._authority = ep.authority
        self._headers = headers
        settings = tls or TLSSettings()
        self._tls = context_for(settings) if ep.tls else None
        cep = endpoint(cancel_url or url)
        self._cancel = cep
        self._cancel_base = cep.base(default)
        self._cancel_tls = context_for(settings) if cep.tls else None
        self._method = method
        self._keepalive_expiry_s = keepalive_expiry_s
        self._chan: Channel | None = None
        self._client: SSEClient | None = None
        self._inbox = Inbox(self._feed)
        self._fresh = False  # connection made by prepare() and not yet used
        self._head_pending = False  # the current response's head is not recorded yet
        self._stray = False  # bytes arrived with no response in flight: not reusable
        self._n_conn = 0
        self._params: StreamParams | None = None
        self._bytes = 0  # body bytes of connections already given up, not yet taken

    # ------------------------------------------------------------------ connections
    @property
    def open_connections(self) -> int:
        return int(self._chan is not None and not self._chan.closed)

    def _reusable(self) -> bool:
        c, cl = self._chan, self._client
        return (
            c is not None
            and cl is not None
            and not c.closed
            and cl.reusable
            and not self._stray
            and not c.peer_closed()
        )

    def _drop_connection(self, by: str, reason: str) -> None:
        if self._chan is not None:
            self._chan.close(by, self._client.status if self._client else None, reason)
        self._forget()

    def _forget(self) -> None:
        """No connection any more; the bytes its client counted are still to be taken."""
        if self._client is not None:
            self._bytes += self._client.take_bytes()
        self._chan = None
        self._client = None

    def _new_connection(self) -> None:
        if self._chan is not None and not self._chan.closed:
            self._drop_connection("client", "not reusable")
        self._n_conn += 1
        self._chan = Channel.connect(
            self._host,
            self._port,
            self._ctx,
            f"{self._ctx.conn_prefix}.c{self._n_conn}",
            tls=self._tls,
        )
        self._client = SSEClient(
            self._fmt,
            self._authority,
            self._base,
            method=self._method,
            extra_headers=self._headers,
            path=self._path,
        )
        self._inbox.discard()
        self._stray = False
        self._chan.set_sink(self._inbox.on_read)
        self._fresh = True

    def prepare(self) -> None:
        if not self._reusable():
            self._new_connection()

    # ------------------------------------------------------------------ streams
    def start(self, params: StreamParams, *, resume_after: int | None = None) -> Started:
        if self._reusable():
            reused = not self._fresh
        else:
            self._new_connection()
            reused = False
        self._fresh = False
        assert self._chan is not None and self._client is not None
        self._params = params
        self._inbox.discard()
        data = self._client.request(params, resume_after=resume_after)
        self._head_pending = True
        t = time.monotonic_ns()
        self._chan.send(data)
        self._chan.acct.stream_started(t)
        return Started(t, self._chan.acct.labels.conn_uid, reused)

    def take_bytes(self) -> int:
        n, self._bytes = self._bytes, 0
        return n + (self._client.take_bytes() if self._client is not None else 0)

    def _feed(self, t_ns: int, data: bytes, out: list[StreamEvent]) -> bool:
        """The inbox's parser (in the reader's pass under gevent): one read into the client
        core; True once the response or the connection is over (the transport's business)."""
        client, chan = self._client, self._chan
        if client is None or chan is None:
            return False
        if client.ended:  # nothing asked for: an idle keep-alive connection spoke or closed
            self._stray = True
            return False
        client.feed(t_ns, data, out)
        if self._head_pending and client.t_head_ns is not None:
            self._head_pending = False
            chan.acct.opened(client.t_head_ns)
        return client.ended

    def _settle(self) -> bool:
        """After a wake: close a connection the client core gave up; True while the
        response can still bring bytes."""
        chan, client = self._chan, self._client
        if chan is None or client is None or chan.closed:
            return False
        if client.drop is not None:
            self._drop_connection(*client.drop)
            return False
        return not client.ended

    def poll(self, deadline_ns: int, take: Take | None = None) -> list[StreamEvent]:
        def step() -> bool:
            return self._settle() and self._chan is not None and self._chan.wait(deadline_ns)

        events = self._inbox.poll(take, step)
        self._settle()
        return events

    def _drain(self, seconds: float) -> None:
        """Wait (discarding its events) for the rest of the current response, so the
        connection can be reused."""
        deadline = time.monotonic_ns() + int(seconds * 1e9)
        inbox = self._inbox
        inbox.discard()
        while self._settle() and self._chan is not None and self._chan.wait(deadline):
            inbox.discard()
        inbox.discard()
        if self._client is not None and not self._client.ended:
            self._drop_connection("client", "response did not end")

    def finish_stream(self, t_ns: int) -> None:
        if self._chan is not None:
            self._chan.acct.stream_ended(t_ns)
        self._drain(DRAIN_S)

    def cancel(self, mode: str) -> None:
        req = None
        if mode != "close" and self._params is not None:
            headers = self._client.headers if self._client is not None else None
            req = self._fmt.sse_cancel_request(
                self._params.stream, base_path=self._cancel_base, response_headers=headers
            )
        if req is None:
            self._drop_connection("client", "cancel")
            return
        if self._headers:
            req = type(req)(req.method, req.target, (*req.headers, *self._headers), req.body)
        self._post_cancel(HttpResponseReader(req, self._cancel.authority))
        if self._chan is not None:
            self._chan.acct.stream_ended(time.monotonic_ns())
        self._drain(DRAIN_S)

    def _post_cancel(self, exchange: HttpResponseReader) -> None:
        """Send the cancel request on a short-lived second connection (recorded like any)."""
        cep = self._cancel
        self._n_conn += 1
        uid = f"{self._ctx.conn_prefix}.c{self._n_conn}x"
        chan = Channel.connect(cep.host, cep.port, self._ctx, uid, tls=self._cancel_tls)
        chan.send(exchange.data)
        deadline = time.monotonic_ns() + int(self._ctx.connect_timeout_s * 1e9)
        while not exchange.ended:
            got = chan.recv_some(deadline)
            if got is None:
                break
            exchange.feed(*got)
            if exchange.t_head_ns is not None and chan.acct.t_open_ns is None:
                chan.acct.opened(exchange.t_head_ns)
        chan.close("client", exchange.status, "cancel request")

    def abort(self, reason: str = "client abort") -> None:
        if self._chan is not None:
            self._chan.abort(reason)
        self._forget()

    def idle(self, seconds: float) -> None:
        if self._chan is not None and seconds > self._keepalive_expiry_s:
            time.sleep(self._keepalive_expiry_s)
            self._drop_connection("client", "keep-alive expiry")
            seconds -= self._keepalive_expiry_s
        if seconds > 0:
            time.sleep(seconds)

    def close(self) -> None:
        self._drop_connection("client", "session end")
