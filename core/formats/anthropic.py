"""``anthropic``: Anthropic Messages streaming, SSE only.

Sources (the provider's reference; shapes and the worked example followed):

- https://platform.claude.com/docs/en/build-with-claude/streaming ("Streaming Messages"):
  each event has ``event:`` equal to its data's ``type``; the flow is ``message_start``
  (a Message with empty ``content``), per content block ``content_block_start``, one or
  more ``content_block_delta`` (``text_delta``), ``content_block_stop``, then one or more
  ``message_delta`` (``stop_reason``; "the token counts shown in the usage field of the
  message_delta event are cumulative"), and ``message_stop``; any number of ``ping``
  events; ``error`` events such as ``{"type": "error", "error": {"type":
  "overloaded_error", "message": "Overloaded"}}``. Its worked examples ("Basic streaming
  request", "Streaming request with tool use") are test data, verbatim
  (tests/core/test_formats_providers.py).
- The SDK's own recorded stream, anthropics/anthropic-sdk-python
  ``tests/lib/streaming/fixtures/basic_response.txt`` (ids ``msg_`` + 34 characters, the
  ``{"type": "ping"}`` spelling), and its types ``src/anthropic/types/usage.py`` /
  ``message_delta_usage.py``.

The request: ``POST /v1/messages`` with ``{"model", "max_tokens", "messages", "stream":
true, "ssevsws": {...}}`` (no ``seed`` in this API: it rides in the extension object,
core.formats.llmapi). The reference servers also accept ``x-api-key`` for their token
(the SDK's header; servers/access.py).

The stream, as the reference servers send it::

    event: message_start        (message: id, model, empty content, usage)   ← at once
    event: content_block_start  (index 0, an empty text block)               ← at once
    event: ping                                                              ← at once
    event: content_block_delta  {"delta": {"type": "text_delta", "text": …},
                                 "ssevsws_t": …}                           ← per token
    event: content_block_stop
    event: message_delta        (stop_reason "end_turn", usage.output_tokens = N)
    event: message_stop         (+ "ssevsws": the integrity record)

Heartbeats are ``ping`` events (the provider's keepalive), not SSE comments. Not
resumable.

Client side: a non-empty ``text_delta`` is a Token (seq by arrival); ``message_delta``'s
cumulative usage (with ``message_start``'s input tokens) a Usage; ``message_stop`` the
Done (with the message id); ``error`` fails the stream; ``message_start``,
``content_block_start``, ``ping`` and other block types are not content.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from core.client.events import Done, Failed, StreamEvent, Token, Usage
from core.formats import llmapi
from core.formats.base import SSEReader, SSETuple, SSEWriter, TokenEncoder
from core.schedule import VOCAB_JSON, StreamParams, StreamPlan

#: The API version header the SDK sends (its own default).
API_VERSION = "2023-06-01"
_HEADERS = (*llmapi.PostFormat.request_headers, ("anthropic-version", API_VERSION))
_DELTA = "content_block_delta"
_PING = b'event: ping\ndata: {"type": "ping"}\n\n'


# --------------------------------------------------------------------------- client side
class AnthropicSSEReader(SSEReader):
    __slots__ = ("_st",)

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self._st = llmapi.ReaderState()

    def on_events(self, t_ns: int, events: list[SSETuple], out: list[StreamEvent]) -> None:
        st = self._st
        for kind, data, _ in events:
            if kind == "ping":
                continue
            try:
                obj = json.loads(data)
            except ValueError:
                if kind == "error":
                    out.append(Failed(t_ns, self.status, data[:500]))
                continue
            if not isinstance(obj, dict):
                continue
            typ = obj.get("type") or kind
            if typ == _DELTA:  # once per token
                delta = obj.get("delta")
                text = delta.get("text") if isinstance(delta, dict) else None
                if text and isinstance(text, str) and delta.get("type") == "text_delta":
                    n = len(data) if data.isascii() else len(data.encode())
                    out.append(Token(t_ns, st.seq, llmapi.stamp(obj), n, text))
                    st.seq += 1
            elif typ == "message_start":
                message = obj.get("message")
                if isinstance(message, dict):
                    st.note_id(message.get("id"))
                    usage = message.get("usage")
                    if isinstance(usage, dict) and isinstance(usage.get("input_tokens"), int):
                        st.input_tokens = usage["input_tokens"]
            elif typ == "message_delta":
                usage = obj.get("usage")
                if isinstance(usage, dict):
                    n_in = usage.get("input_tokens")
                    n_out = usage.get("output_tokens")
                    out.append(
                        Usage(
                            t_ns,
                            n_in if isinstance(n_in, int) else st.input_tokens,
                            n_out if isinstance(n_out, int) else None,
                        )
                    )
            elif typ == "message_stop":
                st.note_summary(obj)
                self.done = True
                out.append(Done(t_ns, *st.summary, st.response_id))
            elif typ == "error":
                out.append(Failed(t_ns, self.status, llmapi.error_text(obj)))


# --------------------------------------------------------------------------- server side
def _event(obj: dict[str, Any]) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (obj["type"].encode(), llmapi.dumps(obj))


class AnthropicSSEWriter(SSEWriter):
    __slots__ = ("_id", "_model", "_plan", "_tpl")
    heartbeat = _PING

    def __init__(self, plan: StreamPlan) -> None:
        self._plan = plan
        self._id = llmapi.random_id("msg_", 34)
        self._model = plan.params.extra.get("model", llmapi.DEFAULT_MODEL)
        delta = {
            "type": _DELTA,
            "index": 0,
            "delta": {"type": "text_delta", "text": llmapi.TEXT},
            llmapi.STAMP: 0,
        }
        self._tpl = llmapi.token_template(
            delta, prefix=b"event: %s\ndata: " % _DELTA.encode(), suffix=b"\n\n"
        )

    def preamble(self) -> bytes:
        message = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self._model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": llmapi.extra_int(self._plan, "input_tokens", 1),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 1,
                "service_tier": "standard",
            },
        }
        block = {"type": "content_block_start", "index": 0,
                 "content_block": {"type": "text", "text": ""}}  # fmt: skip
        return _event({"type": "message_start", "message": message}) + _event(block) + _PING

    def token(self, seq: int, t_ns: int, vocab_id: int) -> bytes:
        return self._tpl % (VOCAB_JSON[vocab_id], t_ns)

    def encoder(self) -> TokenEncoder:
        tpl, vj = self._tpl, VOCAB_JSON
        return lambda seq, t, vid: tpl % (vj[vid], t)

    def done(self) -> bytes:
        plan = self._plan
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": plan.n},
        }
        stop = {"type": "message_stop", llmapi.EXT: llmapi.summary(plan)}
        return b"".join(
            (_event({"type": "content_block_stop", "index": 0}), _event(delta), _event(stop))
        )


# --------------------------------------------------------------------------- the format
class AnthropicFormat(llmapi.PostFormat):
    name: ClassVar[str] = "anthropic"
    protocols = ("sse",)
    sse_path = "/v1/messages"
    request_headers = _HEADERS
    creates = "a message"

    def request_body(self, params: StreamParams) -> dict[str, Any]:
        body: dict[str, Any] = {"model": llmapi.client_model(params)}
        if params.tokens is not None:
            body["max_tokens"] = params.tokens
        body["messages"] = [{"role": "user", "content": llmapi.PROMPT}]
        body["stream"] = True
        body[llmapi.EXT] = llmapi.knobs(params, skip=("tokens",))
        return body

    def sse_reader(self, status: int) -> SSEReader:
        return AnthropicSSEReader(status)

    def sse_params(self, query: Mapping[str, str], body: bytes | None) -> StreamParams:
        obj = llmapi.json_object(body)
        llmapi.require_stream(obj)
        extra = {
            "model": llmapi.model_of(obj),
            "input_tokens": llmapi.input_tokens(obj.get("messages"), obj.get("system")),
        }
        return llmapi.stream_params(obj, {"tokens": "max_tokens"}, extra)

    def sse_writer(self, plan: StreamPlan, *, retry_ms: int, created_s: int = 0) -> SSEWriter:
        return AnthropicSSEWriter(plan)
