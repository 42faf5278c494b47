"""The neutral stream events the client core emits, whatever the protocol and payload format.

Every event carries ``t_ns``: the client's ``time.monotonic_ns()`` taken when the read that
carried its last byte returned (the shell passes it in; the core never reads a clock).

- `Opened`: the response head was parsed (SSE). A WS stream is open when its start message
  leaves (the shell knows that time).
- `FirstByte` / `FirstEvent`: the stream's first body byte (SSE) and its first event of any
  kind were read — once per response (SSE) or per stream (WS, where a message is both).
  "Time to first byte" and "time to first event" are measured on them, TTFT on `Token`.
- `Token`: one *content* delta, the thing TTFT and ITL are measured on. Role-only chunks,
  ``response.created``, ``message_start``, ``ping``, keepalive comments are never tokens.
- `Usage`: the token counts the stream reported (an API's ``usage``), when it carries them.
- `Done`: the stream's end marker (count and checksum when the format carries them; the
  API's id of the finished response, when it has one, to continue a conversation from).
- `Failed`: the server refused or aborted the stream with a message (HTTP status, error event).
- `Closed`: the connection carrying the stream ended before its end marker (a drop).
- `Heartbeat`: the server showed it is there without sending content: SSE comments (such
  as ``: keepalive``) in a read that completed no other event — so a token's path never
  pays for the check —, or a WS ping frame. A client's dead-peer watch
  (core.client.deadpeer) counts it, like any event, as hearing from the peer.

`Token` is the one per-token object, so it is a mutable slotted dataclass (a frozen one's
``__init__`` costs ~3x); the others are rare.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Opened:
    """Response headers parsed (SSE). WS streams are open when their start message leaves."""

    t_ns: int
    status: int


@dataclass(frozen=True, slots=True)
class FirstByte:
    """The stream's first body byte was read (SSE: after the head; WS: its first message)."""

    t_ns: int


@dataclass(frozen=True, slots=True)
class FirstEvent:
    """The stream's first event of any kind was parsed (a role-only chunk, a ping, a token…)."""

    t_ns: int


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs 3x (one per token)
class Token:
    t_ns: int  # client monotonic ns when the bytes carrying it were read
    seq: int
    t_server_ns: int | None  # the server's send stamp, when the payload carries one
    nbytes: int  # payload bytes (the token's event data / message)
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts the stream reported (None where the API gave none)."""

    t_ns: int
    input_tokens: int | None
    output_tokens: int | None


@dataclass(frozen=True, slots=True)
class Done:
    t_ns: int
    #: Tokens and SHA-256 of their texts as the server reports them (the reference servers
    #: do, in every format); None from a server that does not (integrity not measured).
    count: int | None
    sha256: str | None
    #: The API's id of the finished response (``resp_…``, ``chatcmpl-…``, ``msg_…``).
    response_id: str | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """The server refused or aborted the stream with a message (HTTP status / error event)."""

    t_ns: int
    status: int | None
    error: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection carrying the stream ended before done (a drop)."""

    t_ns: int
    by: str  # server | error
    reason: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The peer is alive but sent no content: an SSE comment or a WS ping was read."""

    t_ns: int


StreamEvent = Opened | FirstByte | FirstEvent | Token | Usage | Done | Failed | Closed | Heartbeat
