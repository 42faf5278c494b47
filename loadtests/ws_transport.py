"""WS client transport: websockets' sans-I/O `ClientProtocol` over a plain socket.

`websockets.sync` crashed Locust's gevent hub (DESIGN pitfall 3); the sans-I/O protocol
object has no threads or event loop of its own, so over a (gevent-patched) blocking socket
it is just parsing. One connection per session, held through think time (idle reads answer
server pings — the protocol object queues the pong; we send it). No extension is offered,
so permessage-deflate is off unless `compression="deflate"`; `extensions` says what was
negotiated. A drop is followed (if the session resumes) by a new connection and
`{"type":"resume","stream":ID,"after":SEQ,...}`; a cancel is `{"type":"cancel"}` (the
connection stays) or a close handshake.

Without extensions, the server's TEXT / CONTINUATION frames are parsed here
(`_parse_frames`, a few slices a frame); every other frame goes whole to the protocol object.
"""

from __future__ import annotations

import contextlib
import time
from urllib.parse import quote

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from core.schedule import StreamParams
from core.wsmsg import (
    CLOSE_NORMAL,
    cancel_message,
    parse_server_message,
    resume_message,
    start_message,
)
from loadtests.transport import (
    Closed,
    Done,
    Failed,
    Started,
    StreamEvent,
    Token,
    Transport,
    TransportContext,
    TransportError,
)
from loadtests.wire import Channel, split_url

CLOSE_WAIT_S = 1.0  # how long a client close waits for the server's close frame


class WSTransport(Transport):
    protocol = "ws"

    def __init__(self, ctx: TransportContext, url: str, *, compression: str = "off") -> None:
        if compression not in ("off", "deflate"):
            raise ValueError(f"compression must be 'off' or 'deflate', got {compression!r}")
        self._ctx = ctx
        self._host, self._port, base = split_url(url, 80)
        self._uri_base = f"ws://{self._host}:{self._port}{base}/v1/ws"
        self._uri = parse_uri(self._uri_base)  # a bad URL fails here, not at a connect
        self._compression = compression
        self._chan: Channel | None = None
        self._proto: ClientProtocol | None = None
        self._fresh = False
        self._n_conn = 0
        self._current: str | None = None  # str() of the stream id in flight
        self._fragments: list[bytes] | None = None
        # Server→client data frames are parsed here (see _parse_frames) while `_fast`.
        self._fast = False
        self._rx = b""  # the start of a frame not yet complete
        self._bytes = 0
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
            and self._proto is not None
            and self._proto.state is State.OPEN
        )

    def _flush(self) -> None:
        """Send whatever the protocol queued (pongs, close replies, our messages)."""
        assert self._proto is not None and self._chan is not None
        data = b"".join(self._proto.data_to_send())  # SEND_EOF (b"") joins to nothing
        if data:
            self._chan.send(data)

    def _connect(self) -> None:
        if self._chan is not None and not self._chan.closed:
            self._chan.close("client", None, "reconnect")
        self._n_conn += 1
        conn_uid = f"{self._ctx.conn_prefix}.c{self._n_conn}"
        chan = Channel.connect(self._host, self._port, self._ctx, conn_uid)
        extensions = [ClientPerMessageDeflateFactory()] if self._compression == "deflate" else None
        # `conn=` names this connection in a proxy's logs (bench.nginx_logs joins nginx's
        # close events onto the connection records by it); the servers ignore it.
        uri = parse_uri(f"{self._uri_base}?conn={quote(conn_uid, safe='/.')}")
        proto = ClientProtocol(uri, extensions=extensions)
        self._chan, self._proto = chan, proto
        proto.send_request(proto.connect())
        self._flush()
        deadline = time.monotonic_ns() + int(self._ctx.connect_timeout_s * 1e9)
        while proto.state is State.CONNECTING:
            got = chan.recv_some(deadline)
            if got is None or not got[1]:
                chan.close("error", None, "upgrade: no response" if got is None else "upgrade: EOF")
                raise TransportError("WS upgrade: no response from server")
            proto.receive_data(got[1])
            for ev in proto.events_received():
                if isinstance(ev, Response):
                    chan.acct.opened(got[0])
        if proto.handshake_exc is not None or proto.state is not State.OPEN:
            chan.close("error", None, f"upgrade: {proto.handshake_exc}")
            raise TransportError(f"WS upgrade failed: {proto.handshake_exc}")
        self.extensions = [ext.name for ext in proto.extensions]
        self._fragments = None
        # No extension (no compression): plain frames, which _parse_frames reads itself.
        self._fast = not proto.extensions
        self._rx = b""
        self._fresh = True

    def prepare(self) -> None:
        if not self._connected():
            self._connect()

    # ------------------------------------------------------------------ streams
    def _send_text(self, text: str) -> int:
        assert self._proto is not None and self._chan is not None
        self._proto.send_text(text.encode())
        data = b"".join(self._proto.data_to_send())
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
        if resume_after is None:
            msg = start_message(params)
        else:
            msg = resume_message(params.stream, max(resume_after, -1), params)
        self._current = str(params.stream)
        t = self._send_text(msg)
        assert self._chan is not None
        self._chan.acct.stream_started(t)
        return Started(t, self._chan.acct.labels.conn_uid, reused, t_open_ns=t)

    def take_bytes(self) -> int:
        n, self._bytes = self._bytes, 0
        return n

    def poll(self, deadline_ns: int) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        while not events and self._current is not None and self._chan is not None:
            if not self._read(deadline_ns, events):
                break
        return events

    def _read(self, deadline_ns: int, out: list[StreamEvent]) -> bool:
        """One socket read, parsed into `out`; False at the deadline or once closed."""
        chan, proto = self._chan, self._proto
        if chan is None or proto is None or chan.closed:
            return False
        got = chan.recv_some(deadline_ns)
        if got is None:
            return False
        t, data = got
        if data and self._fast and proto.state is State.OPEN:
            self._parse_frames(t, data, out)
        else:
            if data:
                proto.receive_data(data)
            else:
                proto.receive_eof()
            for ev in proto.events_received():
                if isinstance(ev, Frame):
                    self._on_frame(t, ev, out)
        if proto.state is State.OPEN:
            self._flush()
            return True
        # The server closed (close frame or EOF): reply if the protocol wants, then record.
        with contextlib.suppress(TransportError):
            self._flush()
        # close_code / close_reason only answer once the state is CLOSED; the close frame
        # the server sent (close_rcvd) is there as soon as it is parsed.
        rcvd = proto.close_rcvd
        code, reason = (rcvd.code, rcvd.reason) if rcvd is not None else (None, None)
        by = "server"
        if self._current is not None:
            why = f"closed {code} {reason}".strip() if code is not None else "connection closed"
            out.append(Closed(t, by, why))
            self._current = None
        if self._chan is not None:
            self._chan.close(by, code, reason or ("EOF" if not data else None))
        self._chan, self._proto = None, None
        return False

    def _parse_frames(self, t: int, data: bytes, out: list[StreamEvent]) -> None:
        """Parse the server's frames in `data` (after any incomplete one kept from the last read).

        websockets' generator-based parser cost about a third of the client's per-token time;
        a server→client frame without extensions is a 2–10 byte header and the payload. Plain
        TEXT / CONTINUATION frames are handled here. Every other frame (ping, pong, close,
        binary, RSV bits, a mask, a size over max_size, a stray continuation) is passed whole
        to the protocol object, which sits at a frame boundary and so parses, answers (pong,
        close reply) and validates it exactly as before. A frame is handled once its last
        byte is read, as websockets does.
        """
        proto = self._proto
        assert proto is not None
        if self._rx:
            data = self._rx + data
        pos, end = 0, len(data)
        limit = getattr(proto, "max_message_size", None)
        while end - pos >= 2:
            b0, b1 = data[pos], data[pos + 1]
            n, head = b1 & 0x7F, 2
            if n == 126:
                if end - pos < 4:
                    break
                n, head = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
            elif n == 127:
                if end - pos < 10:
                    break
                n, head = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
            if b1 & 0x80:
                head += 4  # a masked server frame: the protocol object rejects it
            stop = pos + head + n
            if limit is not None and n > limit:
                # Let the protocol object fail it (1009) as it would; it has the rest now.
                self._fast = False
                self._to_protocol(t, data[pos:], out)
                pos = end
                break
            if stop > end:
                break
            op = b0 & 0x0F
            if not b0 & 0x70 and not b1 & 0x80 and (op == 1 or (op == 0 and self._fragments)):
                payload = data[pos + head : stop]
                if op == 1:
                    if b0 & 0x80:
                        self._on_message(t, payload, out)
                    else:
                        self._fragments = [payload]
                else:
                    assert self._fragments is not None
                    self._fragments.append(payload)
                    if b0 & 0x80:
                        payload, self._fragments = b"".join(self._fragments), None
                        self._on_message(t, payload, out)
            else:
                self._to_protocol(t, data[pos:stop], out)
                if proto.state is not State.OPEN or not self._fast:
                    self._fast = False
                    if stop < end:
                        self._to_protocol(t, data[stop:], out)
                    pos = end
                    break
            pos = stop
        self._rx = data[pos:] if pos < end else b""

    def _to_protocol(self, t: int, data: bytes, out: list[StreamEvent]) -> None:
        proto = self._proto
        assert proto is not None
        proto.receive_data(data)
        for ev in proto.events_received():
            if isinstance(ev, Frame):
                self._on_frame(t, ev, out)

    def _on_frame(self, t: int, frame: Frame, out: list[StreamEvent]) -> None:
        if frame.opcode is Opcode.TEXT:
            if frame.fin:
                self._on_message(t, bytes(frame.data), out)
            else:
                self._fragments = [bytes(frame.data)]
        elif frame.opcode is Opcode.CONT and self._fragments is not None:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                data, self._fragments = b"".join(self._fragments), None
                self._on_message(t, data, out)
        # PING: the protocol already queued the PONG. PONG / BINARY / CLOSE: nothing to do here.

    def _on_message(self, t: int, data: bytes, out: list[StreamEvent]) -> None:
        current = self._current
        if current is None:
            return  # late frames of a finished or cancelled stream
        try:
            event = self._decode(t, data, current)
        except (ValueError, TypeError, KeyError):
            event = Failed(t, None, f"malformed server message: {data[:200]!r}")
        if event is not None:
            self._bytes += len(data)
            out.append(event)

    @staticmethod
    def _decode(t: int, data: bytes, current: str) -> StreamEvent | None:
        """A token / done / error of the current stream; None for anything else."""
        obj = parse_server_message(data)
        if "i" in obj:
            if str(obj.get("s")) != current:
                return None
            t_server = obj.get("t")
            return Token(
                t, int(obj["i"]), int(t_server) if t_server else None, len(data), str(obj["d"])
            )
        if "stream" in obj and str(obj["stream"]) != current:
            return None
        kind = obj.get("type")
        if kind == "done":
            return Done(t, int(obj["count"]), str(obj["sha256"]))
        if kind == "error":
            field = f"{obj['field']}: " if obj.get("field") else ""
            return Failed(t, None, f"{field}{obj.get('error')}")
        return None  # "cancelled" acknowledgements and anything unknown

    def finish_stream(self, t_ns: int) -> None:
        self._current = None
        if self._chan is not None:
            self._chan.acct.stream_ended(t_ns)

    def cancel(self, mode: str) -> None:
        current = self._current
        self._current = None
        if mode == "close" or current is None or not self._connected():
            self._close_handshake("cancel")
            return
        self._send_text(cancel_message(current))
        assert self._chan is not None
        self._chan.acct.stream_ended(time.monotonic_ns())

    def abort(self) -> None:
        self._current = None
        if self._chan is not None:
            self._chan.abort()
        self._chan, self._proto = None, None

    def idle(self, seconds: float) -> None:
        deadline = time.monotonic_ns() + int(seconds * 1e9)
        sink: list[StreamEvent] = []
        while self._chan is not None and time.monotonic_ns() < deadline:
            if not self._read(deadline, sink):
                break
        remaining = (deadline - time.monotonic_ns()) / 1e9
        if remaining > 0:
            time.sleep(remaining)

    def _close_handshake(self, reason: str) -> None:
        """Send a close frame, wait briefly for the server's, close the socket, record it."""
        chan, proto = self._chan, self._proto
        if chan is None or proto is None or chan.closed:
            self._chan, self._proto = None, None
            return
        self._current = None
        try:
            if proto.state is State.OPEN:
                proto.send_close(CLOSE_NORMAL, reason)
                self._flush()
                deadline = time.monotonic_ns() + int(CLOSE_WAIT_S * 1e9)
                while proto.state is not State.CLOSED:
                    got = chan.recv_some(deadline)
                    if got is None:
                        break
                    if got[1]:
                        proto.receive_data(got[1])
                    else:
                        proto.receive_eof()
                    proto.events_received()
        except TransportError:
            pass
        chan.close("client", CLOSE_NORMAL, reason)
        self._chan, self._proto = None, None

    def close(self) -> None:
        self._close_handshake("session end")
