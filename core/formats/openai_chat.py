"""``openai-chat``: OpenAI Chat Completions streaming, SSE only.

Sources (the provider's reference; shapes and the worked example followed exactly):

- https://developers.openai.com/api/reference/resources/chat/subresources/completions/streaming-events
  (``chat.completion.chunk``: id, object, created, model, system_fingerprint, choices[
  {index, delta{role?, content?}, logprobs, finish_reason}], obfuscation, usage) and the
  OpenAPI document behind it, openai/openai-openapi ``openapi.yaml``
  (``CreateChatCompletionStreamResponse`` and its example; ``ChatCompletionStreamOptions``:
  with ``include_usage`` "an additional chunk will be streamed before the ``data: [DONE]``
  message ... the ``choices`` field will always be an empty array. All other chunks will
  also include a ``usage`` field, but with a null value"; ``include_obfuscation``: the
  ``obfuscation`` field "included by default").
- The SDK's own type: openai/openai-python ``src/openai/types/chat/chat_completion_chunk.py``.

The request: ``POST /v1/chat/completions`` with ``{"model", "messages", "stream": true,
"stream_options": {"include_usage": true}, "seed", "max_tokens", "ssevsws": {...}}``
(``max_completion_tokens`` is read too; the extension object: core.formats.llmapi).

The stream, as the reference servers send it::

    data: {"id":"chatcmpl-…","object":"chat.completion.chunk","created":…,"model":"…",
           "system_fingerprint":"fp_…","choices":[{"index":0,"delta":{"role":"assistant",
           "content":""},"logprobs":null,"finish_reason":null}],"obfuscation":"…"}   ← at once
    data: {… "choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,
           "finish_reason":null}],"obfuscation":"…","ssevsws_t":…}               ← per token
    data: {… "choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],
           "obfuscation":"","ssevsws":{"count":N,"sha256":"…"}}
    data: {… "choices":[],"usage":{…},"obfuscation":"…"}          ← with include_usage
    data: [DONE]

No ``event:`` or ``id:`` lines; comments (``: keepalive``) are heartbeats. The role-only
chunk goes out with the headers, so a client that times the first byte or the first event
sees ~0 ms; TTFT is the first non-empty ``delta.content``. The synthetic model ends every
answer on its own (``finish_reason: "stop"``) after ``max_tokens`` tokens. Not resumable:
a dropped stream is lost, as with the provider.

Client side: a ``data:`` chunk's non-empty ``choices[0].delta.content`` is a Token (seq by
arrival), ``usage`` a Usage, ``[DONE]`` the Done (with the server's integrity record when
it sent one, and the chunk id); an ``error`` object in a chunk, or an ``error`` event,
fails the stream. Role-only chunks, ``refusal``/tool-call deltas and unknown fields are not
content.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from core.client.events import Done, Failed, StreamEvent, Token
from core.formats import llmapi
from core.formats.base import SSEReader, SSETuple, SSEWriter, TokenEncoder
from core.schedule import VOCAB_JSON, StreamParams, StreamPlan
from core.sse import encode_comment

_HEARTBEAT = encode_comment("keepalive")
_DONE = b"data: [DONE]\n\n"


# --------------------------------------------------------------------------- client side
class OpenAIChatSSEReader(SSEReader):
    __slots__ = ("_st",)

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self._st = llmapi.ReaderState()

    def on_events(self, t_ns: int, events: list[SSETuple], out: list[StreamEvent]) -> None:
        st = self._st
        for kind, data, _ in events:
            if data == "[DONE]":
                self.done = True
                out.append(Done(t_ns, *st.summary, st.response_id))
                continue
            try:
                obj = json.loads(data)
            except ValueError:
                if kind == "error":
                    out.append(Failed(t_ns, self.status, data[:500]))
                continue
            if not isinstance(obj, dict):
                continue
            if kind == "error" or "error" in obj:
                out.append(Failed(t_ns, self.status, llmapi.error_text(obj)))
                continue
            for choice in obj.get("choices") or ():
                delta = choice.get("delta") if isinstance(choice, dict) else None
                text = delta.get("content") if isinstance(delta, dict) else None
                if text and isinstance(text, str) and choice.get("index", 0) == 0:
                    n = len(data) if data.isascii() else len(data.encode())
                    out.append(Token(t_ns, st.seq, llmapi.stamp(obj), n, text))
                    st.seq += 1
            if st.response_id is None:
                st.note_id(obj.get("id"))
            if obj.get("usage") is not None:
                llmapi.usage_event(t_ns, obj["usage"], "prompt_tokens", "completion_tokens", out)
            if llmapi.EXT in obj:
                st.note_summary(obj)


# --------------------------------------------------------------------------- server side
class OpenAIChatSSEWriter(SSEWriter):
    __slots__ = ("_base", "_obfuscate", "_plan", "_tail", "_tpl", "_usage")
    heartbeat = _HEARTBEAT

    def __init__(self, plan: StreamPlan, created_s: int) -> None:
        self._plan = plan
        extra = plan.params.extra
        self._usage = bool(extra.get("include_usage", False))
        self._obfuscate = bool(extra.get("include_obfuscation", True))
        self._base: dict[str, Any] = {
            "id": llmapi.random_id("chatcmpl-", 29),
            "object": "chat.completion.chunk",
            "created": created_s,
            "model": extra.get("model", llmapi.DEFAULT_MODEL),
            "system_fingerprint": llmapi.hex_id("fp_", 10),
        }
        self._tpl = llmapi.token_template(
            self._chunk({"content": llmapi.TEXT}, None, llmapi.PAD, stamp=True),
            prefix=b"data: ",
            suffix=b"\n\n",
        )

    def _chunk(
        self,
        delta: dict[str, Any] | None,
        finish: str | None,
        pad: str,
        *,
        usage: dict[str, Any] | None = None,
        stamp: bool = False,
    ) -> dict[str, Any]:
        """One chunk, keys in the reference's order (``delta`` None: the usage chunk)."""
        chunk = dict(self._base)
        if delta is None:
            chunk["choices"] = []
        else:
            chunk["choices"] = [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            ]
        if self._usage:
            chunk["usage"] = usage
        if self._obfuscate:
            chunk["obfuscation"] = pad
        if stamp:
            chunk[llmapi.STAMP] = 0
        return chunk

    @staticmethod
    def _event(chunk: dict[str, Any]) -> bytes:
        return b"data: %s\n\n" % llmapi.dumps(chunk)

    def _pad(self, i: int) -> str:
        return llmapi.obfuscation(i, 7).decode()

    def preamble(self) -> bytes:
        return self._event(self._chunk({"role": "assistant", "content": ""}, None, self._pad(0)))

    def token(self, seq: int, t_ns: int, vocab_id: int) -> bytes:
        if self._obfuscate:
            return self._tpl % (VOCAB_JSON[vocab_id], llmapi.obfuscation(seq, vocab_id), t_ns)
        return self._tpl % (VOCAB_JSON[vocab_id], t_ns)

    def encoder(self) -> TokenEncoder:
        tpl, vj, pad = self._tpl, VOCAB_JSON, llmapi.obfuscation
        if not self._obfuscate:
            return lambda seq, t, vid: tpl % (vj[vid], t)
        return lambda seq, t, vid: tpl % (vj[vid], pad(seq, vid), t)

    def done(self) -> bytes:
        plan = self._plan
        last = self._chunk({}, "stop", "")
        last[llmapi.EXT] = llmapi.summary(plan)
        parts = [self._event(last)]
        if self._usage:
            prompt = llmapi.extra_int(plan, "input_tokens", 1)
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": plan.n,
                "total_tokens": prompt + plan.n,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            }
            parts.append(self._event(self._chunk(None, None, self._pad(1), usage=usage)))
        parts.append(_DONE)
        return b"".join(parts)


# --------------------------------------------------------------------------- the format
class OpenAIChatFormat(llmapi.PostFormat):
    name: ClassVar[str] = "openai-chat"
    protocols = ("sse",)
    sse_path = "/v1/chat/completions"
    creates = "a chat completion"

    def request_body(self, params: StreamParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": llmapi.client_model(params),
            "messages": [{"role": "user", "content": llmapi.PROMPT}],
            "stream": True,
            "stream_options": {"include_usage": True},
            "seed": params.seed,
        }
        if params.tokens is not None:
            body["max_tokens"] = params.tokens
        body[llmapi.EXT] = llmapi.knobs(params, skip=("seed", "tokens"))
        return body

    def sse_reader(self, status: int) -> SSEReader:
        return OpenAIChatSSEReader(status)

    def sse_params(self, query: Mapping[str, str], body: bytes | None) -> StreamParams:
        obj = llmapi.json_object(body)
        llmapi.require_stream(obj)
        options = obj.get("stream_options")
        tokens_field = "max_completion_tokens" if "max_completion_tokens" in obj else "max_tokens"
        extra = {
            "model": llmapi.model_of(obj),
            "include_usage": llmapi.flag(options, "include_usage", False),
            "include_obfuscation": llmapi.flag(options, "include_obfuscation", True),
            "input_tokens": llmapi.input_tokens(obj.get("messages")),
        }
        return llmapi.stream_params(obj, {"seed": "seed", "tokens": tokens_field}, extra)

    def sse_writer(self, plan: StreamPlan, *, retry_ms: int, created_s: int = 0) -> SSEWriter:
        return OpenAIChatSSEWriter(plan, created_s)
