"""WS client core (sans-I/O): one WebSocket connection, its streams one after another.

websockets' sans-I/O `ClientProtocol` does the upgrade, control frames (it queues the pong
for a ping and the reply to a close), extensions (permessage-deflate when offered) and
validation. Without an extension, the server's plain TEXT / CONTINUATION frames are parsed
here (`_parse_frames`, a few slices a frame): websockets' generator-based parser cost about
a third of the client's per-token time. Every other frame goes whole to the protocol
object, which sits at a frame boundary and so handles it exactly as before. A frame is
handled once its last byte is read, as websockets does.

The payload is the format's `WSReader`: it writes the start / resume / cancel messages and
turns the server's messages of the stream in flight into Token / Done / Failed.

Use: `handshake()` → bytes to send; `feed_handshake(t, data)` until `connecting` is False
(`handshake_error` says why it failed); then `start(params)` → bytes; `feed(t, data, out)`
for every read (b"" = EOF; it returns False once the connection is over, and
`close_code` / `close_reason` then say how), sending `data_to_send()` after it (pongs,
close replies).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import websockets
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from core.client.events import Closed, FirstByte, FirstEvent, Heartbeat, StreamEvent
from core.wsmsg import CLOSE_NORMAL

if TYPE_CHECKING:  # pragma: no cover
    from core.formats import PayloadFormat, WSReader
    from core.schedule import StreamParams

#: What the manifest records as the WS client's library.
LIBRARY = f"websockets {websockets.__version__} ClientProtocol (sans-I/O)"


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
        "_fast",
        "_fragments",
        "_headers",
        "_proto",
        "_reader",
        "_rx",
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
        extensions = [ClientPerMessageDeflateFactory()] if compression == "deflate" else None
        self._proto = ClientProtocol(parse_uri(uri), extensions=extensions)
        self._headers = extra_headers  # on the upgrade request (e.g. Authorization)
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
        return self._proto.state is State.CONNECTING

    @property
    def is_open(self) -> bool:
        return self._proto.state is State.OPEN

    @property
    def closed(self) -> bool:
        return self._proto.state is State.CLOSED

    @property
    def handshake_error(self) -> BaseException | None:
        return self._proto.handshake_exc

    @property
    def extensions(self) -> list[str]:
        """Extensions negotiated (empty = no compression)."""
        return [ext.name for ext in self._proto.extensions]

    @property
    def current(self) -> str | None:
        """The stream in flight (str of its id), or None."""
        return self._reader.current

    @property
    def close_code(self) -> int | None:
        """The code of the close frame the server sent (None: none, e.g. EOF)."""
        # close_code / close_reason only answer once the state is CLOSED; the close frame
        # the server sent (close_rcvd) is there as soon as it is parsed.
        rcvd = self._proto.close_rcvd
        return rcvd.code if rcvd is not None else None

    @property
    def close_reason(self) -> str | None:
        rcvd = self._proto.close_rcvd
        return rcvd.reason if rcvd is not None else None

    def data_to_send(self) -> bytes:
        """What the protocol queued (pongs, close replies, our messages); SEND_EOF is b""."""
        return b"".join(self._proto.data_to_send())

    def take_bytes(self) -> int:
        n, self.body_bytes = self.body_bytes, 0
        return n

    # ------------------------------------------------------------------ handshake
    def handshake(self) -> bytes:
        proto = self._proto
        request = proto.connect()
        for name, value in self._headers:
            request.headers[name] = value
        proto.send_request(request)
        return self.data_to_send()

    def feed_handshake(self, t_ns: int, data: bytes) -> None:
        """The upgrade's response (b"" = EOF); `t_open_ns` is set when it is read."""
        proto = self._proto
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

    # ------------------------------------------------------------------ streams
    def _text(self, text: str) -> bytes:
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
        if self._proto.state is not State.OPEN:
            return b""
        self._proto.send_close(code, reason)
        return self.data_to_send()

    # ------------------------------------------------------------------ bytes in
    def feed(self, t_ns: int, data: bytes, out: list[StreamEvent]) -> bool:
        """One read's bytes (b"" = EOF); True while the connection is open. When it ends, a
        stream in flight gets `Closed` (by the server)."""
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
