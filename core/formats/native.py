"""``native``: the project's own payload, the interface contract (never change its bytes).

A token is the JSON object ``{"s":ID,"i":SEQ,"t":NS,"d":"text"}`` (core.schedule.token_payload),
byte-identical on both transports; ``t`` is the server's send stamp.

- SSE: ``GET|POST /v1/stream`` (parameters in the query or a JSON body); the body is
  ``retry: <ms>``, one ``id: <seq>`` / ``data: <payload>`` event per token, ``: keepalive``
  comments, and ``event: done`` with ``{"count":N,"sha256":…}``; a stream is resumed with
  ``Last-Event-ID: <seq>``. An ``event: error`` (a foreign server's) fails the stream.
- WS: upgrade at ``/v1/ws``; client messages ``start`` / ``resume`` / ``cancel``
  (core.wsmsg); the server sends one text frame per token (the payload), then
  ``{"type":"done",…}``, or ``{"type":"error",…}`` / ``{"type":"cancelled",…}``.

Content tokens are the token payloads; ``retry``, comments, ``cancelled`` acknowledgements
and unknown events are not content.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import partial
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

from core.client.events import Done, Failed, StreamEvent, Token
from core.formats.base import (
    HttpRequest,
    PayloadFormat,
    SSEReader,
    SSETuple,
    SSEWriter,
    TokenEncoder,
    UnsupportedRequest,
    WSReader,
    WSWriter,
)
from core.schedule import (
    VOCAB_JSON,
    ParamError,
    StreamId,
    StreamParams,
    StreamPlan,
    parse_params,
    parse_token_payload,
    stream_id_json,
    token_payload,
)
from core.sse import encode_comment, encode_done, encode_retry, encode_token
from core.wsmsg import (
    ClientMessage,
    cancel_message,
    cancelled_message,
    done_message,
    error_message,
    parse_client_message,
    parse_server_message,
    resume_message,
    start_message,
)

_SSE_HEADERS = (("Accept", "text/event-stream"), ("Cache-Control", "no-cache"))
_HEARTBEAT = encode_comment("keepalive")


def _sse_token(sj: bytes, seq: int, t_ns: int, vocab_id: int) -> bytes:
    """encode_token(seq, token_payload(sj, seq, t_ns, vocab_id)), in one step (same bytes:
    tests/core/test_formats.py)."""
    return b'id: %d\ndata: {"s":%s,"i":%d,"t":%d,"d":%s}\n\n' % (
        seq,
        sj,
        seq,
        t_ns,
        VOCAB_JSON[vocab_id],
    )


# --------------------------------------------------------------------------- client side
class NativeSSEReader(SSEReader):
    __slots__ = ()

    def on_events(self, t_ns: int, events: list[SSETuple], out: list[StreamEvent]) -> None:
        for kind, data, _ in events:
            if kind == "message":  # a token: this runs once per token
                try:
                    _, seq, t_server, text = parse_token_payload(data)
                except (ValueError, TypeError):
                    continue  # not a token payload (e.g. a foreign server's extra events)
                # payload bytes; str.isascii() is O(1), so ASCII data needs no encode
                n = len(data) if data.isascii() else len(data.encode())
                out.append(Token(t_ns, seq, t_server or None, n, text))
            elif kind == "done":
                try:
                    body = json.loads(data)
                    done = Done(t_ns, int(body["count"]), str(body["sha256"]))
                except (ValueError, TypeError, KeyError):
                    out.append(Failed(t_ns, self.status, f"malformed done event: {data[:200]!r}"))
                    continue
                self.done = True
                out.append(done)
            elif kind == "error":
                out.append(Failed(t_ns, self.status, data))


class NativeWSReader(WSReader):
    __slots__ = ()

    def start(self, params: StreamParams, *, resume_after: int | None = None) -> str:
        self.current = str(params.stream)
        if resume_after is None:
            return start_message(params)
        return resume_message(params.stream, max(resume_after, -1), params)

    def cancel(self) -> str | None:
        current, self.current = self.current, None
        return None if current is None else cancel_message(current)

    def on_message(self, t_ns: int, data: bytes, out: list[StreamEvent]) -> bool:
        current = self.current
        if current is None:
            return False  # late frames of a finished or cancelled stream
        if data[:5] == b'{"s":':  # the servers' own token layout: sliced, not parsed (hot path)
            try:
                sid, seq, t_server, text = parse_token_payload(data)
            except ValueError:
                pass  # not that layout after all: the general path decides
            else:
                if str(sid) != current:
                    return False
                out.append(Token(t_ns, seq, t_server or None, len(data), text))
                return True
        try:
            event = self._decode(t_ns, data, current)
        except (ValueError, TypeError, KeyError):
            event = Failed(t_ns, None, f"malformed server message: {data[:200]!r}")
        if event is None:
            return False
        out.append(event)
        return True

    @staticmethod
    def _decode(t_ns: int, data: bytes, current: str) -> StreamEvent | None:
        """A token / done / error of the current stream in any JSON layout; None for
        anything else."""
        obj = parse_server_message(data)
        if "i" in obj:
            if str(obj.get("s")) != current:
                return None
            t_server = obj.get("t")
            return Token(
                t_ns, int(obj["i"]), int(t_server) if t_server else None, len(data), str(obj["d"])
            )
        if "stream" in obj and str(obj["stream"]) != current:
            return None
        kind = obj.get("type")
        if kind == "done":
            return Done(t_ns, int(obj["count"]), str(obj["sha256"]))
        if kind == "error":
            field = f"{obj['field']}: " if obj.get("field") else ""
            return Failed(t_ns, None, f"{field}{obj.get('error')}")
        return None  # "cancelled" acknowledgements and anything unknown


# --------------------------------------------------------------------------- server side
class NativeSSEWriter(SSEWriter):
    __slots__ = ("_plan", "_retry_ms", "_sj")
    heartbeat = _HEARTBEAT

    def __init__(self, plan: StreamPlan, retry_ms: int) -> None:
        self._plan = plan
        self._retry_ms = retry_ms
        self._sj = stream_id_json(plan.params.stream)

    def preamble(self) -> bytes:
        return encode_retry(self._retry_ms)

    def token(self, seq: int, t_ns: int, vocab_id: int) -> bytes:
        return encode_token(seq, token_payload(self._sj, seq, t_ns, vocab_id))

    def done(self) -> bytes:
        return encode_done(self._plan.done())

    def encoder(self) -> TokenEncoder:
        # The servers' hot path: the bytes of `token` in one %-format, no call inside.
        return partial(_sse_token, self._sj)


class NativeWSWriter(WSWriter):
    __slots__ = ("_plan", "_sj")

    def __init__(self, plan: StreamPlan) -> None:
        self._plan = plan
        self._sj = stream_id_json(plan.params.stream)

    def token(self, seq: int, t_ns: int, vocab_id: int) -> bytes:
        return token_payload(self._sj, seq, t_ns, vocab_id)

    def done(self) -> tuple[str, ...]:
        return (done_message(self._plan.done(), self._plan.params.stream),)

    def encoder(self) -> TokenEncoder:
        return partial(token_payload, self._sj)

    def cancelled(self, sent: int) -> str:
        return cancelled_message(self._plan.params.stream, sent)


# --------------------------------------------------------------------------- the format
class NativeFormat(PayloadFormat):
    name: ClassVar[str] = "native"
    protocols = ("sse", "ws")
    sse_path = "/v1/stream"
    ws_path = "/v1/ws"
    resumable = True

    def sse_request(
        self,
        params: StreamParams,
        *,
        base_path: str = "",
        resume_after: int | None = None,
        method: str | None = None,
    ) -> HttpRequest:
        method = method or "GET"
        fields = params.to_dict()
        headers = _SSE_HEADERS
        if resume_after is not None and resume_after >= 0:
            headers = (*headers, ("Last-Event-ID", str(resume_after)))
        path = f"{base_path}{self.sse_path}"
        if method == "GET":
            return HttpRequest("GET", f"{path}?{urlencode(fields)}", headers)
        if method == "POST":
            body = json.dumps(fields).encode()
            return HttpRequest("POST", path, (*headers, ("Content-Type", "application/json")), body)
        raise UnsupportedRequest(f"native SSE streams are GET or POST, not {method}")

    def sse_cancel_request(
        self,
        stream: StreamId,
        *,
        base_path: str = "",
        response_headers: Mapping[str, str] | None = None,
    ) -> HttpRequest | None:
        # a server that hands out a per-stream cancel secret wants it back
        secret = (response_headers or {}).get("x-cancel-secret")
        headers = (("X-Cancel-Secret", secret),) if secret else ()
        target = f"{base_path}/v1/streams/{quote(str(stream), safe='')}/cancel"
        return HttpRequest("POST", target, headers)

    def sse_reader(self, status: int) -> SSEReader:
        return NativeSSEReader(status)

    def ws_reader(self) -> WSReader:
        return NativeWSReader()

    def sse_params(self, query: Mapping[str, str], body: bytes | None) -> StreamParams:
        if body is None:
            return parse_params(dict(query))
        try:
            obj: Any = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: e.g. 10,000 nested "["
            raise ParamError("body", "must be a JSON object") from None
        if not isinstance(obj, dict):
            raise ParamError("body", "must be a JSON object")
        return parse_params(obj)

    def sse_writer(self, plan: StreamPlan, *, retry_ms: int, created_s: int = 0) -> SSEWriter:
        return NativeSSEWriter(plan, retry_ms)

    def ws_client_message(self, text: str) -> ClientMessage:
        return parse_client_message(text)

    def ws_writer(self, plan: StreamPlan, *, created_s: int = 0) -> WSWriter:
        return NativeWSWriter(plan)

    def ws_error(
        self,
        message: str,
        stream: StreamId | None = None,
        field: str | None = None,
        limit: str | None = None,
    ) -> str:
        return error_message(message, stream, field, limit)
