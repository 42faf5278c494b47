"""Payload formats: what the bytes inside a stream say, on both sides (sans-I/O), by name.

Design note
-----------
A *payload format* is the application shape of a token stream: the request that starts it,
the events that carry its tokens and its end, and how a resume or a cancel is said. It is
independent of the *transport*, which is the client core's and the servers' job (HTTP/1.1
response framing and SSE event framing in core.client.sse and core.sse; WebSocket frames in
core.client.ws). So adding a format never touches a socket, and the same format (OpenAI
Responses, say) can have an SSE form and a WS form. The pieces:

- **Client, SSE**: `PayloadFormat.sse_request` → `HttpRequest` (method, target, headers,
  body); `sse_reader(status)` → an `SSEReader` per response, fed the (type, data, id)
  tuples of every SSE event one read completed. It appends a `Token` for each *content*
  delta (the TTFT token), `Done` at the end marker (and sets `done`), `Failed` for an error
  event; non-content events (a role-only chunk, ``response.created``, ``message_start``,
  ``ping``, keepalive comments) append nothing.
- **Client, WS**: `ws_reader()` → a `WSReader` per connection. It writes the client's
  messages (`start` with an optional resume point, `cancel`) and remembers the stream in
  flight (`current`), so several streams — or several responses of one conversation — can
  follow one another on one connection; `on_message` decodes one text message.
- **Server**: `sse_params` / `ws_client_message` read a request; `sse_writer(plan)` /
  `ws_writer(plan)` encode one stream's preamble, tokens (stamped with the send time), end
  and errors; `ws_error` answers a mistake without closing the connection.
- **Timing** is the client core's, not the format's: it stamps the first body byte, the
  first event of any kind and every content token with the time their read returned, so
  "time to first byte", "time to first event" and TTFT stay three different figures for
  every format.

Events are batched per read (`SSEReader.on_events` loops over a list) so the per-token path
is one loop in the format's own module, and the only per-token object is the `Token`. A
format that carries more than tokens and an end (a usage record) adds its event class to
core.client.events; the session script and the shells pass over event types they do not
know, so only the code that records the new figure changes.

The formats: ``native`` (the interface contract), ``openai-chat``, ``openai-responses``
(SSE and the WebSocket mode) and ``anthropic``; the three provider formats share
core.formats.llmapi (the request's ``ssevsws`` extension object, the send stamp and
integrity fields the SDKs ignore, ids, padding, token templates).

What a new format adds: one module here with a `PayloadFormat` subclass (requests with its
own paths and body; readers that map its events to Token / Usage / Done / Failed, assign
``seq`` by order when the API has none, and read the server's send stamp from an extra
field the official SDKs ignore; writers that produce the same token texts as native), one
`register_format(...)` line below, one arm in core/arms.py per transport it is measured
on, and its round-trip and split-stream tests. The servers route every registered format
at its paths; the clients take it by name. docs/architecture.md, "Add a payload format",
lists every file.
"""

from __future__ import annotations

from core.formats.anthropic import AnthropicFormat
from core.formats.base import (
    HttpRequest,
    PayloadFormat,
    SSEReader,
    SSETuple,
    SSEWriter,
    UnsupportedRequest,
    WSReader,
    WSWriter,
)
from core.formats.native import NativeFormat
from core.formats.openai_chat import OpenAIChatFormat
from core.formats.openai_responses import OpenAIResponsesFormat
from core.registry import Registry

__all__ = [
    "HttpRequest",
    "PayloadFormat",
    "SSEReader",
    "SSETuple",
    "SSEWriter",
    "UnknownFormat",
    "UnsupportedRequest",
    "WSReader",
    "WSWriter",
    "format_names",
    "get_format",
    "register_format",
]


class UnknownFormat(KeyError):
    """A format name that is not registered (the message lists the known ones)."""

    def __str__(self) -> str:
        return str(self.args[0])


_FORMATS: Registry[PayloadFormat] = Registry("payload format", UnknownFormat)


def register_format(fmt: PayloadFormat) -> PayloadFormat:
    """Add a format (a name may be registered once)."""
    return _FORMATS.add(fmt.name, fmt)


def get_format(name: str) -> PayloadFormat:
    """The registered format of that name, or UnknownFormat naming the known ones."""
    return _FORMATS.get(name)


def format_names() -> tuple[str, ...]:
    return _FORMATS.names()


# --------------------------------------------------------------------------- the formats
register_format(NativeFormat())
register_format(OpenAIChatFormat())
register_format(OpenAIResponsesFormat())
register_format(AnthropicFormat())
