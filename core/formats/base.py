"""The interfaces a payload format implements (see the package docstring for the design).

Client side: `PayloadFormat.sse_request` builds the HTTP request of a stream,
`PayloadFormat.sse_reader` turns one SSE response's events into neutral events,
`PayloadFormat.ws_reader` speaks one WS connection's messages (start / resume / cancel out,
server messages in). Server side: `sse_params` / `ws_client_message` read a request,
`sse_writer` / `ws_writer` encode one stream's preamble, tokens, end and errors.

All of it is sans-I/O: bytes and strings in, bytes, strings and events out; no clock is
read here (every event's stamp is the ``t_ns`` passed in).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from core.arms import Protocol
from core.client.events import StreamEvent
from core.schedule import StreamId, StreamParams, StreamPlan
from core.wsmsg import ClientMessage

#: An SSE event as core.sse.SSEDecoder.feed_tuples gives it: (type, data, last_event_id).
SSETuple = tuple[str, str, str]

#: Keys of `StreamParams.extra` the session script sets for a format's request body (a
#: format without the notion ignores them): the model name (``ssevsws run --model``) and,
#: in a chain of turns (``session.chain``), the previous response's id
#: (`core.client.events.Done.response_id`; OpenAI Responses' ``previous_response_id``).
EXTRA_MODEL = "model"
EXTRA_PREVIOUS_RESPONSE = "previous_response_id"


class UnsupportedRequest(ValueError):
    """The format cannot express this request (e.g. a resume where the API has none)."""


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What a format asks the SSE client to send; the client adds Host, User-Agent and
    Content-Length and frames it as HTTP/1.1."""

    method: str
    target: str  # path and query, e.g. "/v1/stream?seed=1&tokens=5"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


# --------------------------------------------------------------------------- client side
class SSEReader(ABC):
    """One SSE response of one stream: its events → neutral events.

    `on_events` gets every event one read completed (a list, so a format loops in its own
    code, not one call per token) and appends `Token` for content deltas only, `Done` /
    `Failed` for the end; everything else (role-only chunks, pings, a format's bookkeeping
    events) appends nothing. `done` turns True once the end marker was read, so the client
    can tell a complete response from one cut short.
    """

    __slots__ = ("done", "status")

    def __init__(self, status: int) -> None:
        self.status = status
        self.done = False

    @abstractmethod
    def on_events(self, t_ns: int, events: list[SSETuple], out: list[StreamEvent]) -> None: ...


class WSReader(ABC):
    """One WS connection: the client's messages, and the server's messages of the stream in
    flight → neutral events. Streams run one after another on a connection; `current` names
    the one in flight (None: frames that still arrive for a finished or cancelled stream are
    ignored)."""

    __slots__ = ("current",)

    def __init__(self) -> None:
        self.current: str | None = None

    @abstractmethod
    def start(self, params: StreamParams, *, resume_after: int | None = None) -> str:
        """The text message that starts (or, with `resume_after`, resumes after that seq;
        -1 = from the start) a stream; it becomes `current`."""

    @abstractmethod
    def cancel(self) -> str | None:
        """The message that cancels `current` (None if the format has none); clears it."""

    def finish(self) -> None:
        """The current stream ended (done / error): later frames of it are ignored."""
        self.current = None

    @abstractmethod
    def on_message(self, t_ns: int, data: bytes, out: list[StreamEvent]) -> bool:
        """Decode one complete text message; True if it belonged to the current stream (its
        bytes count as the stream's), False if ignored."""


# --------------------------------------------------------------------------- server side
#: What the engine calls once per token: (seq, server send stamp ns, vocabulary id) → bytes.
TokenEncoder = Callable[[int, int, int], bytes]


class SSEWriter(ABC):
    """One SSE stream on the server: the bytes of each event (whole events; the server
    frames them as HTTP/1.1 chunks)."""

    #: Written every heartbeat interval while no token is due (an SSE comment, or the
    #: format's own keepalive event), or None.
    heartbeat: bytes | None = None

    @abstractmethod
    def preamble(self) -> bytes:
        """Sent with the headers, before any token (b"" for none): the format's
        bookkeeping events (a role-only chunk, ``response.created``, ``message_start``…)."""

    @abstractmethod
    def token(self, seq: int, t_ns: int, vocab_id: int) -> bytes:
        """Token `seq` (vocabulary id `vocab_id`), stamped with the server's send time."""

    @abstractmethod
    def done(self) -> bytes:
        """The end of a completed stream (every event after the last token)."""

    def encoder(self) -> TokenEncoder:
        """The per-token function the engine calls (`token`, or a faster equivalent)."""
        return self.token


class WSWriter(ABC):
    """One stream on a WS connection on the server: the text of each message it sends."""

    def preamble(self) -> tuple[str, ...]:
        """Messages sent when the stream starts, before any token (none by default)."""
        return ()

    @abstractmethod
    def token(self, seq: int, t_ns: int, vocab_id: int) -> bytes:
        """One text frame's payload (UTF-8) for token `seq`."""

    @abstractmethod
    def done(self) -> tuple[str, ...]:
        """The messages that end a completed stream, in order."""

    @abstractmethod
    def cancelled(self, sent: int) -> str:
        """The acknowledgement of a cancel, after `sent` tokens."""

    def encoder(self) -> TokenEncoder:
        """The per-token function the engine calls (`token`, or a faster equivalent)."""
        return self.token


# --------------------------------------------------------------------------- the format
class PayloadFormat(ABC):
    """A named payload format: one module implements it, `core.formats` registers it.

    A format without a WS form (``protocols == ("sse",)``) keeps the WS methods' defaults,
    which raise UnsupportedRequest.
    """

    name: ClassVar[str]
    #: The transports it has a form for ("sse", "ws").
    protocols: ClassVar[tuple[Protocol, ...]]
    #: Default request paths, appended to a base URL (None where the protocol is absent).
    sse_path: ClassVar[str | None] = None
    ws_path: ClassVar[str | None] = None
    #: The HTTP method of its SSE requests when the client does not choose one.
    sse_method: ClassVar[str] = "GET"
    #: Whether a dropped stream can be resumed (SSE Last-Event-ID / a WS resume message).
    resumable: ClassVar[bool] = False

    # client side
    @abstractmethod
    def sse_request(
        self,
        params: StreamParams,
        *,
        base_path: str = "",
        resume_after: int | None = None,
        method: str | None = None,
    ) -> HttpRequest:
        """The request for one stream (`method` None: the format's own; UnsupportedRequest
        if it cannot be expressed)."""

    def sse_cancel_request(
        self,
        stream: StreamId,
        *,
        base_path: str = "",
        response_headers: Mapping[str, str] | None = None,
    ) -> HttpRequest | None:
        """The request that cancels a running stream on another connection (given the
        stream's response headers, lower-case names), or None when the only way is to close
        the stream's connection (the default)."""
        return None

    @abstractmethod
    def sse_reader(self, status: int) -> SSEReader:
        """A reader for one response whose head said `status` (200: a stream)."""

    def ws_reader(self) -> WSReader:
        """A reader for one new WS connection."""
        raise self._no_ws()

    # server side
    @abstractmethod
    def sse_params(self, query: Mapping[str, str], body: bytes | None) -> StreamParams:
        """The stream parameters of a request (query string, or body for a POST); raises
        core.schedule.ParamError (HTTP 400)."""

    @abstractmethod
    def sse_writer(self, plan: StreamPlan, *, retry_ms: int, created_s: int = 0) -> SSEWriter:
        """The writer of one stream; `created_s` is the server's wall clock (Unix seconds)
        for formats whose events carry one (formats never read a clock)."""

    def ws_client_message(self, text: str) -> ClientMessage:
        """Decode one client text frame, or raise core.wsmsg.ProtocolError (close code)."""
        raise self._no_ws()

    def ws_writer(self, plan: StreamPlan, *, created_s: int = 0) -> WSWriter:
        raise self._no_ws()

    def ws_error(
        self,
        message: str,
        stream: StreamId | None = None,
        field: str | None = None,
        limit: str | None = None,
    ) -> str:
        """An error message that keeps the connection open (e.g. a cancel of an unknown id):
        the request `field` at fault, or the server `limit` that refused it."""
        raise self._no_ws()

    def _no_ws(self) -> UnsupportedRequest:
        return UnsupportedRequest(f"the {self.name} format has no WebSocket form")
