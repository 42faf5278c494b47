"""``openai-responses``: the OpenAI Responses API, over SSE and over its WebSocket mode.

Sources (the provider's reference; shapes and worked examples followed):

- https://developers.openai.com/api/reference/resources/responses (streaming events) and
  its OpenAPI document, openai/openai-openapi ``openapi.yaml``: ``ResponseCreatedEvent``,
  ``ResponseInProgressEvent``, ``ResponseOutputItemAddedEvent``,
  ``ResponseContentPartAddedEvent``, ``ResponseTextDeltaEvent`` (``item_id``,
  ``output_index``, ``content_index``, ``delta``, ``sequence_number``, ``logprobs``),
  ``ResponseTextDoneEvent``, ``ResponseContentPartDoneEvent``,
  ``ResponseOutputItemDoneEvent``, ``ResponseCompletedEvent``, ``ResponseErrorEvent`` and
  their examples (ids ``resp_`` / ``msg_`` + 48 hex characters); ``ResponseUsage``;
  ``stream_options.include_obfuscation`` ("random characters to an ``obfuscation`` field on
  streaming delta events ... included by default").
- WebSocket mode: https://developers.openai.com/api/docs/guides/websocket-mode and
  https://developers.openai.com/api/reference/resources/responses/websocket-events — the
  client sends ``{"type": "response.create", …the create body…}`` ("stream is implicit over
  WebSocket and should not be sent"), the server answers with the same ``response.*``
  events as text messages, responses follow one another on one connection, each turn may
  continue the last with ``previous_response_id``; there is no client message that
  cancels a response (closing the connection does). The SDK's types:
  openai/openai-python ``src/openai/types/responses/responses_client_event.py`` and
  ``responses_server_event.py`` (``ResponseWsError``: ``{"type": "error", "status",
  "error": {"type", "code", "message", "param"}}``). The guide's ``response.create``
  examples ("Connect and create responses", "Continue with incremental inputs") are test
  data, verbatim (tests/core/test_formats_providers.py).

The request (SSE): ``POST /v1/responses`` with ``{"model", "input", "stream": true,
"max_output_tokens", "previous_response_id"?, "ssevsws": {...}}``; over WS the same body,
``"type": "response.create"`` instead of ``stream``. The Responses API has no ``seed``: it
rides in the extension object (core.formats.llmapi).

The events, as the reference servers send them (SSE: ``event: <type>`` + ``data: <json>``;
WS: the JSON as one text message), ``sequence_number`` counting every event from 0::

    response.created, response.in_progress,                              ← at once
    response.output_item.added, response.content_part.added              ← at once
    response.output_text.delta  ×N   (+ "obfuscation", "ssevsws_t")      ← per token
    response.output_text.done, response.content_part.done,
    response.output_item.done (the full text, three times),
    response.completed (the response with its output and usage, + "ssevsws": integrity)

The four events before the first token go out at once (the provider sends the item and
part events just before the first delta; they are bookkeeping either way, never content).
Not resumable.

Client side: a non-empty ``response.output_text.delta`` is a Token (seq by arrival);
``response.completed`` (or ``response.incomplete``, a stream that ended early but well) is
the Done, with the response id for ``previous_response_id`` and a Usage before it;
``response.failed`` and ``error`` fail the stream. Everything else is bookkeeping.
A conversation continues when the caller puts ``previous_response_id`` in
``StreamParams.extra`` (the session script does, from the last Done's ``response_id``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from core.client.events import Done, Failed, StreamEvent, Token
from core.formats import llmapi
from core.formats.base import SSEReader, SSETuple, SSEWriter, TokenEncoder, WSReader, WSWriter
from core.schedule import VOCAB_JSON, ParamError, StreamId, StreamParams, StreamPlan
from core.sse import encode_comment
from core.wsmsg import CLOSE_POLICY_VIOLATION, ClientMessage, ProtocolError, Start

_HEARTBEAT = encode_comment("keepalive")
_CREATE = "response.create"
_DELTA = "response.output_text.delta"
#: Events before the first token (created, in_progress, output_item.added, part.added).
_PREAMBLE_EVENTS = 4


# --------------------------------------------------------------------------- client side
class ResponsesDecoder:
    """One response's events (JSON objects) → neutral events; shared by SSE and WS."""

    __slots__ = ("_st", "ended")

    def __init__(self) -> None:
        self._st = llmapi.ReaderState()
        self.ended = False

    def decode(
        self, t_ns: int, data: str | bytes, kind: str, status: int | None, out: list[StreamEvent]
    ) -> None:
        try:
            obj = json.loads(data)
        except ValueError:
            if kind == "error":
                out.append(Failed(t_ns, status, str(data)[:500]))
            return
        if not isinstance(obj, dict):
            return
        st = self._st
        typ = obj.get("type") or kind
        if typ == _DELTA:  # once per token
            text = obj.get("delta")
            if text and isinstance(text, str):
                n = len(data) if isinstance(data, bytes) or data.isascii() else len(data.encode())
                out.append(Token(t_ns, st.seq, llmapi.stamp(obj), n, text))
                st.seq += 1
        elif typ in ("response.completed", "response.incomplete"):
            response = obj.get("response")
            if isinstance(response, dict):
                st.note_id(response.get("id"))
                llmapi.usage_event(
                    t_ns, response.get("usage"), "input_tokens", "output_tokens", out
                )
            st.note_summary(obj)
            self.ended = True
            out.append(Done(t_ns, *st.summary, st.response_id))
        elif typ in ("response.created", "response.in_progress"):
            response = obj.get("response")
            if isinstance(response, dict):
                st.note_id(response.get("id"))
        elif typ == "response.failed":
            response = obj.get("response")
            why = response.get("error") if isinstance(response, dict) else None
            out.append(Failed(t_ns, status, llmapi.error_text({"error": why or "failed"})))
        elif typ == "error":
            out.append(Failed(t_ns, status, llmapi.error_text(obj)))


class ResponsesSSEReader(SSEReader):
    __slots__ = ("_dec",)

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self._dec = ResponsesDecoder()

    def on_events(self, t_ns: int, events: list[SSETuple], out: list[StreamEvent]) -> None:
        dec = self._dec
        for kind, data, _ in events:
            dec.decode(t_ns, data, kind, self.status, out)
        if dec.ended:
            self.done = True


class ResponsesWSReader(WSReader):
    """One WS connection: ``response.create`` out, the current response's events in."""

    __slots__ = ("_dec",)

    def __init__(self) -> None:
        super().__init__()
        self._dec = ResponsesDecoder()

    def start(self, params: StreamParams, *, resume_after: int | None = None) -> str:
        llmapi.refuse_resume(resume_after, "a response")
        self.current = str(params.stream)
        self._dec = ResponsesDecoder()
        body = {"type": _CREATE, **_create_body(params)}
        return llmapi.dumps(body).decode()

    def cancel(self) -> str | None:
        self.current = None
        return None  # WebSocket mode has no cancel message: closing the connection is it

    def on_message(self, t_ns: int, data: bytes, out: list[StreamEvent]) -> bool:
        if self.current is None:
            return False  # frames of a response that is over
        self._dec.decode(t_ns, data, "", None, out)
        return True


def _create_body(params: StreamParams) -> dict[str, Any]:
    """The create body both transports send (without ``stream`` / ``type``)."""
    body: dict[str, Any] = {
        "model": llmapi.client_model(params),
        "input": [{"role": "user", "content": llmapi.PROMPT}],
    }
    if params.tokens is not None:
        body["max_output_tokens"] = params.tokens
    previous = params.extra.get("previous_response_id")
    if isinstance(previous, str) and previous:
        body["previous_response_id"] = previous
    body[llmapi.EXT] = llmapi.knobs(params, skip=("tokens",))
    return body


# --------------------------------------------------------------------------- server side
class ResponsesEvents:
    """The JSON of one response's events (both transports), keys in the reference's order."""

    __slots__ = ("_created_s", "_obfuscate", "_plan", "item_id", "response_id", "tpl_json")

    def __init__(self, plan: StreamPlan, created_s: int) -> None:
        self._plan = plan
        self._created_s = created_s
        self._obfuscate = bool(plan.params.extra.get("include_obfuscation", True))
        self.response_id = llmapi.hex_id("resp_", 48)
        self.item_id = llmapi.hex_id("msg_", 48)

    def response(self, status: str, output: list[Any], usage: Any) -> dict[str, Any]:
        extra = self._plan.params.extra
        done = status != "in_progress"
        end_s = self._created_s + -(-self._plan.offsets[-1] // 1_000_000_000)
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self._created_s,
            "status": status,
            "completed_at": end_s if done else None,
            "error": None,
            "incomplete_details": None,
            "instructions": extra.get("instructions"),
            "max_output_tokens": self._plan.params.tokens,
            "model": extra.get("model", llmapi.DEFAULT_MODEL),
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": extra.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "store": extra.get("store", True),
            "temperature": 1,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1,
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": {},
        }

    def preamble(self) -> list[dict[str, Any]]:
        item = {
            "id": self.item_id,
            "status": "in_progress",
            "type": "message",
            "role": "assistant",
            "content": [],
        }
        return [
            {"type": "response.created", "response": self.response("in_progress", [], None)},
            {"type": "response.in_progress", "response": self.response("in_progress", [], None)},
            {"type": "response.output_item.added", "output_index": 0, "item": item},
            {
                "type": "response.content_part.added",
                "item_id": self.item_id,
                "output_index": 0,
                "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []},
            },
        ]

    def delta(self) -> dict[str, Any]:
        """The token event with llmapi's placeholders (llmapi.token_template)."""
        event: dict[str, Any] = {
            "type": _DELTA,
            "item_id": self.item_id,
            "output_index": 0,
            "content_index": 0,
            "delta": llmapi.TEXT,
            "sequence_number": llmapi.SEQ,
            "logprobs": [],
        }
        if self._obfuscate:
            event["obfuscation"] = llmapi.PAD
        event[llmapi.STAMP] = 0
        return event

    def end(self) -> list[dict[str, Any]]:
        plan = self._plan
        text = "".join(plan.texts())
        part = {"type": "output_text", "text": text, "annotations": []}
        item = {
            "id": self.item_id,
            "status": "completed",
            "type": "message",
            "role": "assistant",
            "content": [part],
        }
        where = {"item_id": self.item_id, "output_index": 0, "content_index": 0}
        prompt = llmapi.extra_int(plan, "input_tokens", 1)
        usage = {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": plan.n,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + plan.n,
        }
        return [
            {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
            {"type": "response.content_part.done", **where, "part": part},
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {
                "type": "response.completed",
                "response": self.response("completed", [item], usage),
                llmapi.EXT: llmapi.summary(plan),
            },
        ]

    def numbered(self, events: list[dict[str, Any]], first: int) -> list[dict[str, Any]]:
        """`events` with their sequence numbers (after ``type`` and the payload, as in the
        reference's examples), counting from `first`."""
        out = []
        for i, ev in enumerate(events):
            tail = {k: v for k, v in ev.items() if k == llmapi.EXT}
            body = {k: v for k, v in ev.items() if k != llmapi.EXT}
            out.append({**body, "sequence_number": first + i, **tail})
        return out

    def encoder(self, *, prefix: bytes = b"", suffix: bytes = b"") -> TokenEncoder:
        tpl = llmapi.token_template(self.delta(), prefix=prefix, suffix=suffix, seq=True)
        vj, pad, first = VOCAB_JSON, llmapi.obfuscation, _PREAMBLE_EVENTS
        if not self._obfuscate:
            return lambda seq, t, vid: tpl % (vj[vid], first + seq, t)
        return lambda seq, t, vid: tpl % (vj[vid], first + seq, pad(seq, vid), t)

    def end_events(self) -> list[dict[str, Any]]:
        return self.numbered(self.end(), _PREAMBLE_EVENTS + self._plan.n)

    def preamble_events(self) -> list[dict[str, Any]]:
        return self.numbered(self.preamble(), 0)


def _sse_event(event: dict[str, Any]) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (event["type"].encode(), llmapi.dumps(event))


class ResponsesSSEWriter(SSEWriter):
    __slots__ = ("_encode", "_events")
    heartbeat = _HEARTBEAT

    def __init__(self, plan: StreamPlan, created_s: int) -> None:
        self._events = ResponsesEvents(plan, created_s)
        self._encode = self._events.encoder(
            prefix=b"event: %s\ndata: " % _DELTA.encode(), suffix=b"\n\n"
        )

    def preamble(self) -> bytes:
        return b"".join(_sse_event(e) for e in self._events.preamble_events())

    def token(self, seq: int, t_ns: int, vocab_id: int) -> bytes:
        return self._encode(seq, t_ns, vocab_id)

    def encoder(self) -> TokenEncoder:
        return self._encode

    def done(self) -> bytes:
        return b"".join(_sse_event(e) for e in self._events.end_events())


class ResponsesWSWriter(WSWriter):
    __slots__ = ("_encode", "_events")

    def __init__(self, plan: StreamPlan, created_s: int) -> None:
        self._events = ResponsesEvents(plan, created_s)
        self._encode = self._events.encoder()

    def preamble(self) -> tuple[str, ...]:
        return tuple(llmapi.dumps(e).decode() for e in self._events.preamble_events())

    def token(self, seq: int, t_ns: int, vocab_id: int) -> bytes:
        return self._encode(seq, t_ns, vocab_id)

    def encoder(self) -> TokenEncoder:
        return self._encode

    def done(self) -> tuple[str, ...]:
        return tuple(llmapi.dumps(e).decode() for e in self._events.end_events())

    def cancelled(self, sent: int) -> str:
        # Unreachable from a client of this format (it has no cancel message); kept so the
        # server's contract holds for every format.
        error = {"type": "server_error", "code": "cancelled", "message": f"cancelled after "
                 f"{sent} output tokens", "param": None}  # fmt: skip
        return llmapi.dumps({"type": "error", "status": 499, "error": error}).decode()


# --------------------------------------------------------------------------- the format
class OpenAIResponsesFormat(llmapi.PostFormat):
    name: ClassVar[str] = "openai-responses"
    protocols = ("sse", "ws")
    sse_path = "/v1/responses"
    ws_path = "/v1/responses"
    creates = "a response"

    # client side
    def request_body(self, params: StreamParams) -> dict[str, Any]:
        return {**_create_body(params), "stream": True}

    def sse_reader(self, status: int) -> SSEReader:
        return ResponsesSSEReader(status)

    def ws_reader(self) -> WSReader:
        return ResponsesWSReader()

    # server side
    @staticmethod
    def _params(obj: dict[str, Any]) -> StreamParams:
        instructions = obj.get("instructions")
        extra = {
            "model": llmapi.model_of(obj),
            "include_obfuscation": llmapi.flag(
                obj.get("stream_options"), "include_obfuscation", True
            ),
            "input_tokens": llmapi.input_tokens(obj.get("input"), instructions),
            "previous_response_id": llmapi.optional_name(obj, "previous_response_id"),
            "instructions": instructions if isinstance(instructions, str) else None,
            "store": obj.get("store") is not False,
        }
        return llmapi.stream_params(obj, {"tokens": "max_output_tokens"}, extra)

    def sse_params(self, query: Mapping[str, str], body: bytes | None) -> StreamParams:
        obj = llmapi.json_object(body)
        llmapi.require_stream(obj)
        return self._params(obj)

    def sse_writer(self, plan: StreamPlan, *, retry_ms: int, created_s: int = 0) -> SSEWriter:
        return ResponsesSSEWriter(plan, created_s)

    def ws_client_message(self, text: str) -> ClientMessage:
        try:
            obj = llmapi.json_object(text.encode())
        except ParamError:
            raise ProtocolError(CLOSE_POLICY_VIOLATION, "message must be a JSON object") from None
        kind = obj.pop("type", None)
        if kind != _CREATE:
            raise ProtocolError(
                CLOSE_POLICY_VIOLATION, f"unsupported event type {str(kind)[:32]!r}"
            )
        try:
            return Start(self._params(obj))
        except ParamError as exc:
            raise ProtocolError(CLOSE_POLICY_VIOLATION, f"bad {exc.field}: {exc.message}") from None

    def ws_writer(self, plan: StreamPlan, *, created_s: int = 0) -> WSWriter:
        return ResponsesWSWriter(plan, created_s)

    def ws_error(
        self,
        message: str,
        stream: StreamId | None = None,
        field: str | None = None,
        limit: str | None = None,
    ) -> str:
        error = {
            "type": "invalid_request_error" if limit is None else "server_error",
            "code": limit,
            "message": message,
            "param": field,
        }
        return llmapi.dumps({"type": "error", "status": 400 if limit is None else 503,
                             "error": error}).decode()  # fmt: skip
