"""WS client core (sans-I/O): one WebSocket connection, its streams one after another.

websockets' sans-I/O `ClientProtocol` does control frames (it queues the pong for a ping and
the reply to a close), extensions (permessage-deflate when offered) and validation. The
upgrade is done here when no extension is offered (request written, response head read by
core.client.http1, status 101, ``Upgrade``, ``Connection`` and ``Sec-WebSocket-Accept``
checked, no extension or subprotocol accepted), and the protocol object starts OPEN: its own
handshake objects and generator-based parser cost a fifth of the client's per-connection
CPU. With permessage-deflate offered, websockets does the upgrade, as it must negotiate.

Without an extension, the server's plain TEXT / CONTINUATION frames are parsed
here (`_parse_frames`, a few slices a frame): websockets' generator-based parser cost about
a third of the client's per-token time. Every other frame goes whole to the protocol
object, which sits at a frame boundary and so handles it exactly as before. A frame is
handled once its last byte is read, as websockets does.

The payload is the format's `WSReader`: it writes the start / resume / cancel messages and
turns the server's messages of the stream in flight into Token / Done / Failed.

Use: `handshake()` → bytes to send; `feed_handshake(t, data)` until `connecting` is False
(`handshake_error` says why it failed); then `start(params)` → bytes; `feed(t, data, out)`
for every read (b"" = EOF; it returns False once the connection is over, and
`close_code` / `close_reason` then say how), sending `data_to_send()` after it when
`wants_send` (pongs, close replies).
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import TYPE_CHECKING

import websockets
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidHeader, InvalidUpgrade
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import USER_AGENT, Response
from websockets.protocol import State
from websockets.uri import WebSocketURI, parse_uri

from core.client.events import Closed, FirstByte, FirstEvent, Heartbeat, StreamEvent
from core.client.http1 import HeadReader
from core.client.http1 import request_bytes as http1_request
from core.formats.base import HttpRequest
from core.wsmsg import CLOSE_NORMAL

if TYPE_CHECKING:  # pragma: no cover
    from core.formats import PayloadFormat, WSReader
    from core.schedule import StreamParams

#: What the manifest records as the WS client's library.
LIBRARY = (
    f"websockets {websockets.__version__} ClientProtocol (sans-I/O; the upgrade without "
    "extensions by core.client.ws)"
)
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3


def ws_uri(host: str, port: int, path: str, query: str = "", *, tls: bool = False) -> str:
    """The ws:// (wss:// with `tls`) URI of a connection (a bad one raises websockets'
    InvalidURI); the scheme's default port is left out, so the Host header has none."""
    host = f"[{host}]" if ":" in host else host
    netloc = host if port == (443 if tls else 80) else f"{host}:{port}"
    uri = f"{'wss' if tls else 'ws'}://{netloc}{path}" + (f"?{query}" if query else "")
    parse_uri(uri)
    return uri


class WSClient:
    """The WS side of the client core for one connection (see the module docstring)."""

    __slots__ = (
        "_error",
        "_fast",
        "_fragments",
        "_head",
        "_headers",
        "_key",
        "_proto",
        "_reader",
        "_rx",
        "_uri",
        "body_bytes",
        "t_first_event_ns",
        "t_open_ns",
    )

    def __init__(
        self,
        fmt: PayloadFormat,
        uri: str,
        *,
        compression: str = "off",
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        if compression not in ("off", "deflate"):
            raise ValueError(f"compression must be 'off' or 'deflate', got {compression!r}")
        self._headers = extra_headers  # on the upgrade request (e.g. Authorization)
        self._uri: WebSocketURI = parse_uri(uri)
        self._error: BaseException | None = None  # why our own upgrade failed
        self._key = b""
        #: the protocol object: websockets' upgrade (deflate offered) or, when the upgrade is
        #: ours, made OPEN once it succeeded (None until then)
        self._proto: ClientProtocol | None = None
        self._head: HeadReader | None = None  # our own upgrade's response head, while read
        if compression == "deflate":
            self._proto = ClientProtocol(self._uri, extensions=[ClientPerMessageDeflateFactory()])
        self._reader: WSReader = fmt.ws_reader()
        self._fragments: list[bytes] | None = None
        # Server→client data frames are parsed here (see _parse_frames) while `_fast`.
        self._fast = False
        self._rx = b""  # the start of a frame not yet complete
        self.body_bytes = 0  # message bytes of the current stream (take_bytes)
        self.t_open_ns: int | None = None  # the upgrade's response was read
        self.t_first_event_ns: int | None = None  # first message of the current stream

    # ------------------------------------------------------------------ state
    @property
    def connecting(self) -> bool:
        proto = self._proto
        if proto is None:
            return self._error is None
        return proto.state is State.CONNECTING

    @property
    def is_open(self) -> bool:
        return self._proto is not None and self._proto.state is State.OPEN

    @property
    def closed(self) -> bool:
        proto = self._proto
        if proto is None:
            return self._error is not None
        return proto.state is State.CLOSED

    @property
    def handshake_error(self) -> BaseException | None:
        return self._error if self._proto is None else self._proto.handshake_exc

    @property
    def extensions(self) -> list[str]:
        """Extensions negotiated (empty = no compression)."""
        return [ext.name for ext in self._proto.extensions] if self._proto is not None else []

    @property
    def current(self) -> str | None:
        """The stream in flight (str of its id), or None."""
        return self._reader.current

    @property
    def close_code(self) -> int | None:
        """The code of the close frame the server sent (None: none, e.g. EOF)."""
        # close_code / close_reason only answer once the state is CLOSED; the close frame
        # the server sent (close_rcvd) is there as soon as it is parsed.
        rcvd = self._proto.close_rcvd if self._proto is not None else None
        return rcvd.code if rcvd is not None else None

    @property
    def close_reason(self) -> str | None:
        rcvd = self._proto.close_rcvd if self._proto is not None else None
        return rcvd.reason if rcvd is not None else None

    @property
    def wants_send(self) -> bool:
        """The protocol queued bytes to send (a pong, a close reply): `data_to_send()`."""
        return self._proto is not None and bool(self._proto.writes)

    def data_to_send(self) -> bytes:
        """What the protocol queued (pongs, close replies, our messages); SEND_EOF is b""."""
        return b"".join(self._proto.data_to_send()) if self._proto is not None else b""

    def take_bytes(self) -> int:
        n, self.body_bytes = self.body_bytes, 0
        return n

    # ------------------------------------------------------------------ handshake
    def handshake(self) -> bytes:
        """The upgrade request."""
        proto = self._proto
        if proto is not None:
            request = proto.connect()
            for name, value in self._headers:
                request.headers[name] = value
            proto.send_request(request)
            return self.data_to_send()
        uri = self._uri
        self._key = base64.b64encode(os.urandom(16))
        self._head = HeadReader()
        host = f"[{uri.host}]" if ":" in uri.host else uri.host
        port = "" if uri.port == (443 if uri.secure else 80) else f":{uri.port}"
        headers = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", self._key.decode()),
            ("Sec-WebSocket-Version", "13"),
            *self._headers,
        ]
        if not any(name.lower() == "user-agent" for name, _ in self._headers):
            headers.append(("User-Agent", USER_AGENT))
        return http1_request(HttpRequest("GET", uri.resource_name, tuple(headers)), host + port)

    def feed_handshake(self, t_ns: int, data: bytes) -> None:
        """The upgrade's response (b"" = EOF); `t_open_ns` is set when it is read."""
        proto = self._proto
        if proto is None:
            self._own_upgrade(t_ns, data)
            return
        if data:
            proto.receive_data(data)
        else:
            proto.receive_eof()
        for ev in proto.events_received():
            if isinstance(ev, Response):
                self.t_open_ns = t_ns
        if proto.state is State.OPEN:
            # No extension (no compression): plain frames, which _parse_frames reads itself.
            self._fast = not proto.extensions

    def _own_upgrade(self, t_ns: int, data: bytes) -> None:
        head = self._head
        if head is None or self._error is not None:
            return
        try:
            if not data:
                raise InvalidHandshake("connection closed during the upgrade")
            got = head.feed(data)
            if got is None:
                return
            self.t_open_ns = t_ns
            status, _, headers, rest = got
            _check_upgrade(status, dict(headers), self._key)
        except (InvalidHandshake, ValueError) as exc:
            self._error = exc
            return
        self._head = None
        self._proto = ClientProtocol(self._uri, state=State.OPEN)
        self._fast = True
        if rest:  # frames sent right behind the 101 (a ping): answered as any other
            self._parse_frames(t_ns, rest, [])

    # ------------------------------------------------------------------ streams
    def _text(self, text: str) -> bytes:
        assert self._proto is not None, "not connected"
        self._proto.send_text(text.encode())
        return self.data_to_send()

    def start(self, params: StreamParams, *, resume_after: int | None = None) -> bytes:
        """The frame that starts (or resumes after `resume_after`) a stream."""
        self.t_first_event_ns = None
        return self._text(self._reader.start(params, resume_after=resume_after))

    def cancel(self) -> bytes | None:
        """The frame that cancels the current stream (None if the format has no cancel
        message); later frames of the stream are ignored either way."""
        msg = self._reader.cancel()
        return None if msg is None else self._text(msg)

    def finish(self) -> None:
        """The current stream ended: later frames of it are ignored."""
        self._reader.finish()

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> bytes:
        """Start the close handshake: the close frame to send (b"" if not open)."""
        self._reader.finish()
        self._fast = False  # what follows (the server's close frame) is the protocol's
        if self._proto is None or self._proto.state is not State.OPEN:
            return b""
        self._proto.send_close(code, reason)
        return self.data_to_send()

    # ------------------------------------------------------------------ bytes in
    def feed(self, t_ns: int, data: bytes, out: list[StreamEvent]) -> bool:
        """One read's bytes (b"" = EOF); True while the connection is open. When it ends, a
        stream in flight gets `Closed` (by the server)."""
        if self._proto is None:  # not upgraded (yet)
            return False
        first = self.t_first_event_ns is None
        n0 = len(out)
        if self._fast and data:  # `_fast` holds only while the connection is open
            self._parse_frames(t_ns, data, out)
            if self._fast:
                if first and self.body_bytes:  # this read carried the stream's first message
                    self._first_message(t_ns, out, n0)
                return True
        else:
            proto = self._proto
            if data:
                proto.receive_data(data)
            else:
                proto.receive_eof()
            self._frames_received(t_ns, out)
        if first and self.body_bytes:
            self._first_message(t_ns, out, n0)
        if self._proto.state is State.OPEN:
            return True
        if self._reader.current is not None:
            code = self.close_code
            why = f"closed {code} {self.close_reason}".strip() if code is not None else None
            out.append(Closed(t_ns, "server", why or "connection closed"))
            self._reader.finish()
        return False

    def _first_message(self, t: int, out: list[StreamEvent], n0: int) -> None:
        """The stream's first message was read: on WS it is both the first byte and the
        first event (`FirstByte`, `FirstEvent`, ahead of this read's other events)."""
        self.t_first_event_ns = t
        out[n0:n0] = (FirstByte(t), FirstEvent(t))

    def _frames_received(self, t: int, out: list[StreamEvent]) -> None:
        for ev in self._proto.events_received():
            if isinstance(ev, Frame):
                self._on_frame(t, ev, out)

    def _parse_frames(self, t: int, data: bytes, out: list[StreamEvent]) -> None:
        """Parse the server's frames in `data` (after any incomplete one kept from the last
        read): plain TEXT / CONTINUATION frames here, anything else via the protocol."""
        proto = self._proto
        if self._rx:
            data = self._rx + data
        on_message = self._reader.on_message
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
                        if on_message(t, payload, out):
                            self.body_bytes += stop - pos - head
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
        self._proto.receive_data(data)
        self._frames_received(t, out)

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
        elif frame.opcode is Opcode.PING:
            # the protocol already queued the PONG; a dead-peer watch hears the server
            out.append(Heartbeat(t))
        # PONG / BINARY / CLOSE: nothing to do here.

    def _on_message(self, t: int, data: bytes, out: list[StreamEvent]) -> None:
        if self._reader.on_message(t, data, out):
            self.body_bytes += len(data)


def _check_upgrade(status: int, headers: dict[bytes, bytes], key: bytes) -> None:
    """What websockets checks of a 101 when nothing was offered beyond the upgrade
    (InvalidHandshake: the server refused, or answered something else)."""
    if status != 101:
        raise InvalidHandshake(f"server rejected WebSocket connection: HTTP {status}")
    connection = [v.strip().lower() for v in headers.get(b"connection", b"").split(b",")]
    if b"upgrade" not in connection:
        raise InvalidUpgrade("Connection", headers.get(b"connection", b"").decode() or None)
    if headers.get(b"upgrade", b"").strip().lower() != b"websocket":
        raise InvalidUpgrade("Upgrade", headers.get(b"upgrade", b"").decode() or None)
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    if headers.get(b"sec-websocket-accept") != accept:
        raise InvalidHeader("Sec-WebSocket-Accept", "does not match the key")
    for name in (b"sec-websocket-extensions", b"sec-websocket-protocol"):
        if name in headers:
            raise InvalidHeader(name.decode(), "not offered")
