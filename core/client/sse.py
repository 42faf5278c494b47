"""SSE client core (sans-I/O): one HTTP/1.1 connection, its responses one after another.

`SSEClient.request(params)` gives the bytes of a stream's request (built by the payload
format, written by core.client.http1); `feed(t_ns, data, out)` takes whatever one read
returned (``b""`` = EOF) and appends the stream's events, each stamped ``t_ns``. The response
head is parsed by core.client.http1 (h11 cost a quarter of the client's per-stream CPU); the
body is framed here — chunked (core.chunked), Content-Length or until close — then inflated
when ``Content-Encoding: gzip``, split into events by core.sse.SSEDecoder, and turned into
Token / Done / Failed by the format's `SSEReader`.

The stream's first body byte and its first SSE event of any kind (a role-only chunk, a
ping, a token) also come out as `FirstByte` / `FirstEvent`, once per response, before the
events of the same read: time to first byte and time to first event are their own figures,
TTFT is the first `Token`'s.

What the shell reads after a feed: `ended` (this response is over), `drop` (the connection
must be closed: ``(by, reason)``), `reusable` (it may carry the next request), `status`,
`t_head_ns`. The client never reads a clock and never touches a socket.
"""

from __future__ import annotations

import json
import zlib
from typing import TYPE_CHECKING, Any

import h11

from core.chunked import ChunkedDecoder
from core.client.events import (
    Closed,
    Failed,
    FirstByte,
    FirstEvent,
    Heartbeat,
    Opened,
    StreamEvent,
)
from core.client.http1 import HeadReader
from core.client.http1 import request_bytes as http1_request
from core.sse import SSEDecoder

if TYPE_CHECKING:  # pragma: no cover
    from core.formats import HttpRequest, PayloadFormat, SSEReader
    from core.schedule import StreamParams

#: What the manifest records as the SSE client's HTTP library.
LIBRARY = "core.client.http1 (HTTP/1.1 request writer and response-head parser)"
MAX_ERROR_BODY = 64 * 1024
USER_AGENT = "sse-vs-ws-loadtest"


def request_bytes(
    req: HttpRequest,
    authority: str,
    *,
    user_agent: str | None = USER_AGENT,
    close: bool = False,
) -> bytes:
    """An HttpRequest as HTTP/1.1 bytes (core.client.http1.request_bytes; the project's
    User-Agent unless told otherwise)."""
    return http1_request(req, authority, user_agent=user_agent, close=close)


class SSEClient:
    """The SSE side of the client core for one connection (see the module docstring).

    ``extra_headers`` go on every request (e.g. ``Accept-Encoding: gzip`` for a proxy
    probe, ``Authorization`` for an API); ``method`` None lets the format choose. ``path``
    (a URL's own path, core.client.urls) replaces the format's ``base_path + sse_path`` in
    the request target; ``base_path`` stays the base of the format's other endpoints.
    """

    __slots__ = (
        "_body",
        "_chunked",
        "_comments_seen",
        "_decoder",
        "_error_body",
        "_head",
        "_inflate",
        "_keepalive",
        "_reader",
        "_remaining",
        "authority",
        "base_path",
        "body_bytes",
        "complete",
        "drop",
        "ended",
        "extra_headers",
        "fmt",
        "headers",
        "method",
        "path",
        "reusable",
        "status",
        "t_first_byte_ns",
        "t_first_event_ns",
        "t_head_ns",
        "t_last_byte_ns",
    )

    def __init__(
        self,
        fmt: PayloadFormat,
        authority: str,
        base_path: str = "",
        *,
        method: str | None = None,
        extra_headers: tuple[tuple[str, str], ...] = (),
        path: str | None = None,
    ) -> None:
        self.fmt = fmt
        self.authority = authority
        self.base_path = base_path
        self.method = method
        self.extra_headers = extra_headers
        self.path = path
        self.drop: tuple[str, str] | None = None
        self.reusable = True  # a fresh connection may carry a request
        self.body_bytes = 0  # body bytes received (on the wire, dechunked), not yet taken
        self._reset()
        self.ended = True  # no response in flight

    def _reset(self) -> None:
        self._head = HeadReader()
        self._decoder = SSEDecoder()
        self._comments_seen = 0  # comments already reported as Heartbeat events
        self._reader: SSEReader | None = None
        self._body: str | None = None  # None (reading the head) | chunked | length | close
        self._chunked = ChunkedDecoder()
        self._remaining = 0  # Content-Length body bytes still to come
        self._keepalive = False
        self._inflate: Any = None
        self._error_body: bytearray | None = None
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.ended = False
        self.complete = False  # the response ended as HTTP says (not cut by EOF / an error)
        self.t_head_ns: int | None = None
        self.t_first_byte_ns: int | None = None  # first body byte
        self.t_last_byte_ns: int | None = None
        self.t_first_event_ns: int | None = None  # first SSE event of any kind

    # ------------------------------------------------------------------ requests
    def request(self, params: StreamParams, *, resume_after: int | None = None) -> bytes:
        """The bytes of the request for one stream; the response to it is fed next."""
        req = self.fmt.sse_request(
            params, base_path=self.base_path, resume_after=resume_after, method=self.method
        )
        target = req.target
        if self.path is not None:
            own = f"{self.base_path}{self.fmt.sse_path or ''}"
            if target == own or target.startswith((own + "?", own + "#")):
                target = self.path + target[len(own) :]
        if self.extra_headers or target is not req.target:
            req = type(req)(req.method, target, (*req.headers, *self.extra_headers), req.body)
        data = request_bytes(req, self.authority)
        self._reset()
        self.reusable = False
        return data

    @property
    def done(self) -> bool:
        """The format's end marker was read in this response."""
        return self._reader is not None and self._reader.done

    @property
    def comments(self) -> int:
        """SSE comment lines (heartbeats) read in this response."""
        return self._decoder.comments

    def take_bytes(self) -> int:
        """Body bytes received since the last call."""
        n, self.body_bytes = self.body_bytes, 0
        return n

    # ------------------------------------------------------------------ bytes in
    def feed(self, t_ns: int, data: bytes, out: list[StreamEvent]) -> None:
        """One read's bytes (b"" = EOF), every event they complete appended to `out`."""
        if self.ended:
            return
        try:
            if self._body is None:
                self._on_head_bytes(t_ns, data, out)
            else:
                self._on_body_bytes(t_ns, data, out)
        except (ValueError, zlib.error) as exc:
            if not self.ended:
                out.append(Closed(t_ns, "server", f"connection closed: {exc}"))
            self.ended = True
            self._drop("server", str(exc))

    def _drop(self, by: str, reason: str) -> None:
        if self.drop is None:  # the first reason is the one recorded
            self.drop = (by, reason)
        self.reusable = False

    def _on_head_bytes(self, t: int, data: bytes, out: list[StreamEvent]) -> None:
        if not data:
            self._on_eof(t, out)
            return
        head = self._head.feed(data)
        if head is None:
            return
        status, version, raw_headers, rest = head
        self.status = status
        self.t_head_ns = t
        out.append(Opened(t, status))
        if status != 200:
            self._error_body = bytearray()
        te = cl = ce = b""
        close = version != "1.1"
        headers = self.headers
        for name, value in raw_headers:
            headers[name.decode("latin-1")] = value.decode("latin-1")
            if name == b"transfer-encoding":
                te = value.lower()
            elif name == b"content-length":
                cl = value
            elif name == b"content-encoding":
                ce = value.lower()
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if te:
            if te != b"chunked":
                raise ValueError(f"unsupported transfer-encoding {te!r}")
            self._body, self._chunked = "chunked", ChunkedDecoder()
        elif cl:
            if not cl.isdigit():
                raise ValueError(f"bad content-length {cl!r}")
            self._body, self._remaining = "length", int(cl)
        else:
            self._body, close = "close", True
        if ce == b"gzip":
            self._inflate = zlib.decompressobj(wbits=31)
        self._keepalive = not close
        self._reader = self.fmt.sse_reader(status)
        if rest or (self._body == "length" and not self._remaining):
            self._on_body_bytes(t, rest, out, eof=False)

    def _on_body_bytes(
        self, t: int, data: bytes, out: list[StreamEvent], *, eof: bool | None = None
    ) -> None:
        if eof is None:
            eof = not data
        if eof:
            if self._body == "close":
                self._end_of_message(t, out)
            self._on_eof(t, out)
            return
        mode = self._body
        if mode == "chunked":
            dec = self._chunked
            body = dec.feed(data)
            if body:
                self._on_body(t, body, out)
            if dec.done:
                self._keepalive = self._keepalive and not dec.tail
                self._end_of_message(t, out)
        elif mode == "length":
            body = data[: self._remaining]
            self._remaining -= len(body)
            if body:
                self._on_body(t, body, out)
            if not self._remaining:
                self._keepalive = self._keepalive and len(body) == len(data)
                self._end_of_message(t, out)
        else:
            self._on_body(t, data, out)

    def _on_body(self, t: int, body: bytes, out: list[StreamEvent]) -> None:
        self.t_last_byte_ns = t
        if self._error_body is not None:
            if self.t_first_byte_ns is None:
                self.t_first_byte_ns = t
            self._error_body += body[: MAX_ERROR_BODY - len(self._error_body)]
            return
        if self.t_first_byte_ns is None:
            self.t_first_byte_ns = t
            out.append(FirstByte(t))
        self.body_bytes += len(body)
        if self._inflate is not None:
            body = self._inflate.decompress(body)
        decoder = self._decoder
        events = decoder.feed_tuples(body)
        if events:
            if self.t_first_event_ns is None:
                self.t_first_event_ns = t
                out.append(FirstEvent(t))
            reader = self._reader
            assert reader is not None
            reader.on_events(t, events, out)
        elif decoder.comments != self._comments_seen:
            # a read with comments and no event (a heartbeat): the peer is alive. Checked
            # only on reads without events, so a token's path never pays for it.
            self._comments_seen = decoder.comments
            out.append(Heartbeat(t))

    def _end_of_message(self, t: int, out: list[StreamEvent]) -> None:
        self.ended = True
        self.complete = True
        if self._error_body is not None:
            text = _error_text(bytes(self._error_body))
            out.append(Failed(t, self.status, f"HTTP {self.status}: {text}"))
        elif not self.done:
            out.append(Closed(t, "server", "response ended without done"))
        if self._keepalive:
            self.reusable = True
        else:
            self._drop("client", "not keep-alive")

    def _on_eof(self, t: int, out: list[StreamEvent]) -> None:
        if not self.ended:
            self.ended = True
            if not self.done:
                out.append(Closed(t, "server", "connection closed"))
        self._drop("server", "connection closed")


def _error_text(body: bytes) -> str:
    """The error message of a JSON error body ({"error": ...}), else the body itself."""
    try:
        obj = json.loads(body)
        if isinstance(obj, dict) and "error" in obj:
            field = f"{obj['field']}: " if obj.get("field") else ""
            return f"{field}{obj['error']}"
    except ValueError:
        pass
    return body.decode("utf-8", "replace")[:500]


class HttpResponseReader:
    """A plain (non-streaming) HTTP/1.1 exchange, e.g. a cancel endpoint's: `data` is the
    request to send, then feed the reads (b"" = EOF) until `ended`; `status` is the answer.
    Rare (one per cancel), so h11 frames the response."""

    __slots__ = ("_h11", "data", "ended", "status", "t_head_ns")

    def __init__(self, req: HttpRequest, authority: str, *, close: bool = True) -> None:
        self.data = request_bytes(req, authority, user_agent=None, close=close)
        # h11 only needs to have seen the request (its method frames the response)
        self._h11 = h11.Connection(h11.CLIENT)
        self._h11.send(h11.Request(method=req.method, target=req.target, headers=[("Host", "h")]))
        self._h11.send(h11.EndOfMessage())
        self.status: int | None = None
        self.t_head_ns: int | None = None
        self.ended = False

    def feed(self, t_ns: int, data: bytes) -> None:
        if self.ended:
            return
        try:
            self._h11.receive_data(data)
            while True:
                ev = self._h11.next_event()
                if ev is h11.NEED_DATA:
                    return
                if isinstance(ev, h11.Response):
                    self.status = ev.status_code
                    self.t_head_ns = t_ns
                elif isinstance(ev, h11.EndOfMessage | h11.ConnectionClosed):
                    self.ended = True
                    return
        except h11.RemoteProtocolError:
            self.ended = True
