"""SSE client transport: h11 for the request and the response head, then the body decoded
here (core.chunked for chunked transfer coding) and fed to SSEDecoder, over a plain socket.

h11 stops at the response head: running its state machine once per body event cost more than
the rest of the token path, and the body framing of a stream is one of three simple cases
(chunked, Content-Length, until close). Every read goes through `Channel.recv_some`, the same
call (and timestamp) the WS transport uses; all events parsed from one read carry its stamp.

One request per stream; the connection is kept alive and reused for the next turn when the
server allows it (recorded as `reused_conn`), and closed by the client after
`keepalive_expiry_s` of idleness — httpx's default (5 s), so think time is not counted as a
held connection the way a WS session holds one. Resume after a drop sends the same request
with `Last-Event-ID: <last seq received>`. Cancel: close the connection, or
`POST /v1/streams/{id}/cancel` on a second connection, with the `X-Cancel-Secret` header the
stream's response carried, and let the response end.
"""

from __future__ import annotations

import json
import time
from urllib.parse import quote, urlencode

import h11

from core.chunked import ChunkedDecoder
from core.schedule import StreamParams, parse_token_payload
from core.sse import SSEDecoder
from loadtests.transport import (
    Closed,
    Done,
    Failed,
    Opened,
    Started,
    StreamEvent,
    Token,
    Transport,
    TransportContext,
)
from loadtests.wire import Channel, split_url

MAX_ERROR_BODY = 64 * 1024
DEFAULT_KEEPALIVE_EXPIRY_S = 5.0  # httpx's keepalive_expiry default
DRAIN_S = 2.0  # how long to wait for the end of a response after done / cancel
_USER_AGENT = "sse-vs-ws-loadtest"


class SSETransport(Transport):
    protocol = "sse"

    def __init__(
        self,
        ctx: TransportContext,
        url: str,
        *,
        method: str = "GET",
        cancel_url: str | None = None,
        keepalive_expiry_s: float = DEFAULT_KEEPALIVE_EXPIRY_S,
    ) -> None:
        if method not in ("GET", "POST"):
            raise ValueError(f"method must be GET or POST, got {method!r}")
        self._ctx = ctx
        self._host, self._port, base = split_url(url, 80)
        self._authority = f"{self._host}:{self._port}"
        self._stream_path = f"{base}/v1/stream"
        c_host, c_port, c_base = split_url(cancel_url or url, 80)
        self._cancel_addr = (c_host, c_port, f"{c_host}:{c_port}", c_base)
        self._method = method
        self._keepalive_expiry_s = keepalive_expiry_s
        self._chan: Channel | None = None
        self._h11: h11.Connection | None = None
        self._fresh = False  # connection made by prepare() and not yet used
        self._n_conn = 0
        self._params: StreamParams | None = None
        self._decoder = SSEDecoder()
        self._status: int | None = None
        self._error_body: bytearray | None = None
        self._done = False
        self._ended = True  # the current response's body has ended
        self._body: str | None = None  # None (reading the head) | chunked | length | close
        self._chunked = ChunkedDecoder()
        self._remaining = 0  # Content-Length body bytes still to come
        self._keepalive = False  # the response allows another request on the connection
        self._idle = False  # a response completed and the connection may carry the next one
        self._bytes = 0
        self._t_last = 0
        self._cancel_secret: bytes | None = None  # the X-Cancel-Secret of this response

    # ------------------------------------------------------------------ connections
    @property
    def open_connections(self) -> int:
        return int(self._chan is not None and not self._chan.closed)

    def _reusable(self) -> bool:
        c = self._chan
        return c is not None and not c.closed and self._idle and not c.peer_closed()

    def _drop_connection(self, by: str, reason: str) -> None:
        if self._chan is not None:
            self._chan.close(by, self._status, reason)
        self._chan = None
        self._h11 = None
        self._idle = False

    def _new_connection(self) -> None:
        if self._chan is not None and not self._chan.closed:
            self._drop_connection("client", "not reusable")
        self._n_conn += 1
        self._chan = Channel.connect(
            self._host, self._port, self._ctx, f"{self._ctx.conn_prefix}.c{self._n_conn}"
        )
        self._h11 = h11.Connection(h11.CLIENT)
        self._idle = True
        self._fresh = True

    def prepare(self) -> None:
        if not self._reusable():
            self._new_connection()

    # ------------------------------------------------------------------ streams
    def _request_bytes(self, params: StreamParams, resume_after: int | None) -> bytes:
        self._h11 = h11.Connection(h11.CLIENT)  # one per request: it only sees request + head
        fields = params.to_dict()
        headers = [
            ("Host", self._authority),
            ("Accept", "text/event-stream"),
            ("Cache-Control", "no-cache"),
            ("User-Agent", _USER_AGENT),
        ]
        if resume_after is not None and resume_after >= 0:
            headers.append(("Last-Event-ID", str(resume_after)))
        if self._method == "GET":
            req = h11.Request(
                method="GET", target=f"{self._stream_path}?{urlencode(fields)}", headers=headers
            )
            return self._h11.send(req) + self._h11.send(h11.EndOfMessage())
        body = json.dumps(fields).encode()
        headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        req = h11.Request(method="POST", target=self._stream_path, headers=headers)
        return (
            self._h11.send(req)
            + self._h11.send(h11.Data(data=body))
            + self._h11.send(h11.EndOfMessage())
        )

    def start(self, params: StreamParams, *, resume_after: int | None = None) -> Started:
        if self._reusable():
            reused = not self._fresh
        else:
            self._new_connection()
            reused = False
        self._fresh = False
        assert self._chan is not None
        self._params = params
        self._decoder = SSEDecoder()
        self._status = None
        self._error_body = None
        self._done = False
        self._ended = False
        self._idle = False
        self._body = None
        data = self._request_bytes(params, resume_after)
        t = time.monotonic_ns()
        self._chan.send(data)
        self._chan.acct.stream_started(t)
        return Started(t, self._chan.acct.labels.conn_uid, reused)

    def take_bytes(self) -> int:
        n, self._bytes = self._bytes, 0
        return n

    def _read(self, deadline_ns: int, out: list[StreamEvent]) -> bool:
        """One socket read, parsed into `out`; False at the deadline or once the response or
        the connection has ended."""
        chan = self._chan
        if chan is None or chan.closed or self._ended:
            return False
        got = chan.recv_some(deadline_ns)
        if got is None:
            return False
        t, data = got
        self._t_last = t
        try:
            if self._body is None:
                self._on_head_bytes(t, data, out)
            else:
                self._on_body_bytes(t, data, out)
        except (h11.RemoteProtocolError, ValueError) as exc:
            if not self._ended:
                out.append(Closed(t, "server", f"connection closed: {exc}"))
            self._ended = True
            self._drop_connection("server", str(exc))
        return not self._ended

    def _on_head_bytes(self, t: int, data: bytes, out: list[StreamEvent]) -> None:
        h = self._h11
        assert h is not None
        h.receive_data(data)  # b"" = EOF
        while True:
            ev = h.next_event()
            if ev is h11.NEED_DATA:
                return
            if isinstance(ev, h11.ConnectionClosed):
                self._on_eof(t, out)
                return
            if isinstance(ev, h11.Response):
                break
            # an InformationalResponse (1xx): the real head follows
        self._status = ev.status_code
        self._cancel_secret = None
        assert self._chan is not None
        self._chan.acct.opened(t)
        out.append(Opened(t, ev.status_code))
        if ev.status_code != 200:
            self._error_body = bytearray()
        te = cl = b""
        close = ev.http_version != b"1.1"
        for name, value in ev.headers:
            if name == b"transfer-encoding":
                te = value.lower()
            elif name == b"content-length":
                cl = value
            elif name == b"connection" and b"close" in value.lower():
                close = True
            elif name == b"x-cancel-secret":
                self._cancel_secret = value
        if te:
            if te != b"chunked":
                raise ValueError(f"unsupported transfer-encoding {te!r}")
            self._body, self._chunked = "chunked", ChunkedDecoder()
        elif cl:
            self._body, self._remaining = "length", int(cl)
        else:
            self._body, close = "close", True
        self._keepalive = not close
        rest, _ = h.trailing_data
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
                self._drop_connection("server", "connection closed")
            else:
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
        if self._error_body is not None:
            self._error_body += body[: MAX_ERROR_BODY - len(self._error_body)]
            return
        self._bytes += len(body)
        for kind, data, _ in self._decoder.feed_tuples(body):
            if kind == "message":  # a token, inlined: this runs once per token
                try:
                    _, seq, t_server, text = parse_token_payload(data)
                except (ValueError, TypeError):
                    continue  # not a token payload (e.g. a foreign server's extra events)
                # payload bytes; str.isascii() is O(1), so ASCII data needs no encode
                n = len(data) if data.isascii() else len(data.encode())
                out.append(Token(t, seq, t_server or None, n, text))
            else:
                self._on_sse_event(t, kind, data, out)

    def _end_of_message(self, t: int, out: list[StreamEvent]) -> None:
        self._ended = True
        if self._error_body is not None:
            text = _error_text(bytes(self._error_body))
            out.append(Failed(t, self._status, f"HTTP {self._status}: {text}"))
        elif not self._done:
            out.append(Closed(t, "server", "response ended without done"))
        self._recycle()

    def _on_eof(self, t: int, out: list[StreamEvent]) -> None:
        self._ended = True
        if not self._done:
            out.append(Closed(t, "server", "connection closed"))
        self._drop_connection("server", "connection closed")

    def poll(self, deadline_ns: int) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        while not events and self._read(deadline_ns, events):
            pass
        return events

    def _on_sse_event(self, t: int, kind: str, data: str, out: list[StreamEvent]) -> None:
        if kind == "message":
            try:
                _, seq, t_server, text = parse_token_payload(data)
            except (ValueError, TypeError):
                return  # not a token payload (e.g. a foreign server's extra events)
            out.append(Token(t, seq, t_server or None, len(data.encode()), text))
        elif kind == "done":
            try:
                body = json.loads(data)
                done = Done(t, int(body["count"]), str(body["sha256"]))
            except (ValueError, TypeError, KeyError):
                out.append(Failed(t, self._status, f"malformed done event: {data[:200]!r}"))
                return
            self._done = True
            out.append(done)
        elif kind == "error":
            out.append(Failed(t, self._status, data))

    def _recycle(self) -> None:
        """After a complete response: ready the connection for the next request, or close it."""
        if self._keepalive:
            self._idle = True
        else:
            self._drop_connection("client", "not keep-alive")

    def _drain(self, seconds: float) -> None:
        """Read (and discard) the rest of the current response so the connection can be reused."""
        deadline = time.monotonic_ns() + int(seconds * 1e9)
        sink: list[StreamEvent] = []
        while self._read(deadline, sink):
            sink.clear()
        if not self._ended:
            self._drop_connection("client", "response did not end")
            self._ended = True

    def finish_stream(self, t_ns: int) -> None:
        if self._chan is not None:
            self._chan.acct.stream_ended(t_ns)
        self._drain(DRAIN_S)

    def cancel(self, mode: str) -> None:
        if mode == "close" or self._params is None:
            self._drop_connection("client", "cancel")
            return
        self._post_cancel(self._params.stream)
        if self._chan is not None:
            self._chan.acct.stream_ended(time.monotonic_ns())
        self._drain(DRAIN_S)

    def _post_cancel(self, stream: object) -> None:
        """POST the cancel endpoint on a short-lived second connection (recorded like any)."""
        host, port, authority, base = self._cancel_addr
        self._n_conn += 1
        chan = Channel.connect(host, port, self._ctx, f"{self._ctx.conn_prefix}.c{self._n_conn}x")
        conn = h11.Connection(h11.CLIENT)
        headers = [("Host", authority), ("Content-Length", "0"), ("Connection", "close")]
        if self._cancel_secret is not None:
            headers.append(("X-Cancel-Secret", self._cancel_secret))
        req = h11.Request(
            method="POST",
            target=f"{base}/v1/streams/{quote(str(stream), safe='')}/cancel",
            headers=headers,
        )
        chan.send(conn.send(req) + conn.send(h11.EndOfMessage()))
        deadline = time.monotonic_ns() + int(self._ctx.connect_timeout_s * 1e9)
        status = None
        try:
            while True:
                ev = conn.next_event()
                if ev is h11.NEED_DATA:
                    got = chan.recv_some(deadline)
                    if got is None:
                        break
                    conn.receive_data(got[1])
                elif isinstance(ev, h11.Response):
                    status = ev.status_code
                    chan.acct.opened(time.monotonic_ns())
                elif isinstance(ev, h11.EndOfMessage | h11.ConnectionClosed):
                    break
        except h11.RemoteProtocolError:
            pass
        chan.close("client", status, "cancel request")

    def abort(self) -> None:
        if self._chan is not None:
            self._chan.abort()
        self._chan = None
        self._h11 = None
        self._ended = True

    def idle(self, seconds: float) -> None:
        if self._chan is not None and seconds > self._keepalive_expiry_s:
            time.sleep(self._keepalive_expiry_s)
            self._drop_connection("client", "keep-alive expiry")
            seconds -= self._keepalive_expiry_s
        if seconds > 0:
            time.sleep(seconds)

    def close(self) -> None:
        self._drop_connection("client", "session end")


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
