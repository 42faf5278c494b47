"""Server-Sent Events codec (sans-I/O): the bytes the SSE server sends, and a decoder for them.

Encoder: what the project's SSE server writes (the interface contract: README, "Endpoint
reference"). A token is
``id: <seq>\\ndata: <payload>\\n\\n``; the end is
``event: done\\ndata: {"count":N,"sha256":"<hex>"}\\n\\n``; heartbeats are
``: keepalive\\n\\n``; the reconnection delay is ``retry: <ms>\\n\\n``.

Decoder: `SSEDecoder` interprets an event stream exactly as the WHATWG HTML Living
Standard §9.2.6 ("Interpreting an event stream") says, fed bytes in whatever pieces the
network delivers (docs/methodology.md, pitfall 5): events split across reads, many events in one
read, CR / LF / CRLF line ends (a CRLF may be split between reads), comments, a
leading BOM, ``retry`` and ``id`` persistence. It is stdlib only and does no I/O.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SSEDecoder",
    "SSEEvent",
    "encode_comment",
    "encode_done",
    "encode_event",
    "encode_retry",
    "encode_token",
]

# --------------------------------------------------------------------------- encoder


def _split_lines_bytes(data: bytes) -> list[bytes]:
    # Every line terminator the decoder recognises (CRLF, CR, LF) starts a new data line,
    # so what is sent is what a spec-following client reads (with LF as the separator).
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data.split(b"\n")


def encode_event(
    data: bytes | str,
    *,
    event: str | None = None,
    id: str | int | None = None,
    retry_ms: int | None = None,
) -> bytes:
    """One complete event: fields in the order event, id, retry, data, then a blank line.

    Multi-line data (split on CRLF, CR or LF) becomes one ``data:`` line per line. A value
    that starts with a space survives the round trip: the decoder strips exactly one space,
    the one written after the colon. Raises ValueError for an id containing LF, CR or NUL
    (a client would cut or ignore it), an event name containing LF or CR, or a negative retry.
    """
    parts: list[bytes] = []
    if event is not None:
        if "\n" in event or "\r" in event:
            raise ValueError(f"SSE event name must not contain CR or LF: {event!r}")
        parts.append(b"event: %s\n" % event.encode("utf-8"))
    if id is not None:
        if isinstance(id, bool):
            raise ValueError("SSE id must be a str or an int, not a bool")
        sid = str(id)
        if "\n" in sid or "\r" in sid or "\0" in sid:
            raise ValueError(f"SSE id must not contain CR, LF or NUL: {sid!r}")
        parts.append(b"id: %s\n" % sid.encode("utf-8"))
    if retry_ms is not None:
        parts.append(_retry_line(retry_ms))
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    for line in _split_lines_bytes(raw):
        parts.append(b"data: %s\n" % line)
    parts.append(b"\n")
    return b"".join(parts)


def _retry_line(ms: int) -> bytes:
    if isinstance(ms, bool) or not isinstance(ms, int) or ms < 0:
        raise ValueError(f"SSE retry must be a non-negative integer of milliseconds, got {ms!r}")
    return b"retry: %d\n" % ms


def encode_comment(text: str = "keepalive") -> bytes:
    """A comment (heartbeat): ``: keepalive\\n\\n``. Multi-line text gives one ``:`` line each.

    The trailing blank line dispatches nothing when sent between events (the data buffer
    is empty), but it must not be sent in the middle of an event.
    """
    lines = _split_lines_bytes(text.encode("utf-8"))
    return b"".join([b": %s\n" % line for line in lines]) + b"\n"


def encode_retry(ms: int) -> bytes:
    """A lone reconnection-delay field: ``retry: <ms>\\n\\n``."""
    return _retry_line(ms) + b"\n"


def encode_token(seq: int, payload: bytes) -> bytes:
    """Fast path for one token: ``id: <seq>\\ndata: <payload>\\n\\n``.

    The payload must hold no CR or LF; `core.schedule.token_payload` (compact JSON, which
    escapes control characters) never does, so nothing is checked here.
    """
    return b"id: %d\ndata: %s\n\n" % (seq, payload)


def encode_done(summary: dict[str, Any]) -> bytes:
    """The final event: ``event: done\\ndata: {"count":N,"sha256":"<hex>"}\\n\\n``.

    Compact JSON in the dict's own key order; JSON escapes control characters, so the
    data is always one line.
    """
    body = json.dumps(summary, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return b"event: done\ndata: %s\n\n" % body


# --------------------------------------------------------------------------- decoder


def _retry_value(value: str) -> int | None:
    """The spec's rule: only a non-empty run of ASCII digits sets the reconnection time."""
    if not (value.isascii() and value.isdigit()):
        return None
    try:
        return int(value)
    except ValueError:  # longer than Python's int-from-str digit limit: ignore it
        return None


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """A dispatched event. `type` is "message" unless an ``event:`` field named it.

    `last_event_id` is the decoder's last-event-ID buffer at dispatch time: it persists
    across events until another ``id:`` field changes it (it is "" if none was seen).
    """

    type: str
    data: str
    last_event_id: str


def _tuple3(a: str, b: str, c: str) -> tuple[str, str, str]:
    return (a, b, c)


class SSEDecoder:
    """Incremental event-stream parser (WHATWG HTML §9.2.6). Feed bytes, get events.

    - `feed(chunk)` returns the events completed by that chunk (possibly none, possibly many).
    - `close()` ends the stream: a trailing event without its blank line is discarded, as
      the spec requires (returns an empty list; kept for symmetry). `feed` after `close`
      raises ValueError.

    State a client may read at any time:

    - `retry_ms`: the last valid ``retry:`` value (ASCII digits only), or None.
    - `last_event_id`: the EventSource "last event ID string" — set from the last-event-ID
      buffer each time a blank line is processed (even if no event is dispatched). This is
      what a reconnecting client sends as ``Last-Event-ID``.
    - `comments`: number of comment lines seen (heartbeats such as ``: keepalive``).
      Pass `on_comment` to be called with each comment's text (one leading space removed)
      at the moment it is parsed, e.g. to timestamp heartbeats.
    """

    __slots__ = (
        "_after_cr",
        "_closed",
        "_data",
        "_decode",
        "_event",
        "_id",
        "_tail",
        "comments",
        "last_event_id",
        "on_comment",
        "retry_ms",
    )

    def __init__(self, on_comment: Callable[[str], None] | None = None) -> None:
        # "utf-8-sig" strips one leading BOM (even if split across chunks) and only at the
        # very start, like the spec's "UTF-8 decode"; a later U+FEFF is kept as a character.
        self._decode = codecs.getincrementaldecoder("utf-8-sig")(errors="replace").decode
        self._after_cr = False  # the previous text ended with CR: drop one LF that follows
        self._tail: list[str] = []  # pieces of the current, not yet terminated line
        self._data: list[str] = []  # data buffer, as lines (joined with LF at dispatch)
        self._event = ""  # event type buffer
        self._id = ""  # last event ID buffer
        self._closed = False
        self.on_comment = on_comment
        self.comments = 0
        self.retry_ms: int | None = None
        self.last_event_id = ""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        lines = self._lines(chunk)
        return self._process(lines, SSEEvent) if lines else []

    def feed_tuples(self, chunk: bytes) -> list[tuple[str, str, str]]:
        """Like `feed`, as (type, data, last_event_id) tuples: the load-test client's hot
        path, where building an SSEEvent per token costs more than the tuple."""
        lines = self._lines(chunk)
        return self._process(lines, _tuple3) if lines else []

    def _lines(self, chunk: bytes) -> list[str] | None:
        """The lines `chunk` completed (None if none), keeping any unterminated rest."""
        if self._closed:
            raise ValueError("SSEDecoder.feed() after close()")
        text = self._decode(chunk)
        if not text:
            return None
        # Split CRLF: a CR that ended the previous text already ended its line (a lone CR
        # is a line terminator), so a LF right after it is the second half of that CRLF
        # and is dropped, not read as an empty line (which would dispatch an event early).
        # The flag survives chunks that decode to nothing (a held multi-byte prefix).
        if self._after_cr:
            self._after_cr = False
            if text[0] == "\n":
                text = text[1:]
                if not text:
                    return None
        if "\r" in text:
            # Within one text a CRLF is whole, so normalising CRLF then CR to LF yields the
            # spec's lines; a CR at the very end becomes a line end and sets the flag.
            self._after_cr = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        if len(lines) == 1:
            self._tail.append(text)
            return None
        if self._tail:
            self._tail.append(lines[0])
            lines[0] = "".join(self._tail)
            self._tail = []
        last = lines.pop()
        if last:
            self._tail.append(last)
        return lines

    def close(self) -> list[SSEEvent]:
        """End of stream: discard any incomplete line and undispatched event (spec: "Once the
        end of the file is reached, any pending data must be discarded")."""
        if not self._closed:
            self._closed = True
            self._decode(b"", True)
            self._tail = []
            self._data = []
            self._event = ""
        return []

    def _process(self, lines: list[str], make: Callable[[str, str, str], Any]) -> list[Any]:
        events: list[Any] = []
        data = self._data
        for line in lines:
            if not line:
                # Blank line: dispatch. The last event ID string is set even when the data
                # buffer is empty; the id buffer itself is never reset.
                self.last_event_id = self._id
                if data:
                    events.append(make(self._event or "message", "\n".join(data), self._id))
                    data.clear()
                self._event = ""
                continue
            name, _, value = line.partition(":")
            if value[:1] == " ":
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "id":
                if "\0" not in value:
                    self._id = value
            elif not name:  # the line started with ":" - a comment
                self.comments += 1
                if self.on_comment is not None:
                    self.on_comment(value)
            elif name == "event":
                self._event = value
            elif name == "retry" and (ms := _retry_value(value)) is not None:
                self.retry_ms = ms
            # any other field name is ignored
        return events
