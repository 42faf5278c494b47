"""WebSocket message codec (sans-I/O): client control messages and server messages.

Client → server (JSON text frames):
  {"type":"start", <StreamParams fields>}
  {"type":"cancel","stream":ID}
  {"type":"resume","stream":ID,"after":SEQ[, <StreamParams fields>]}
Server → client:
  one text frame per token: the token payload (core.schedule.token_payload), byte-identical to SSE
  {"type":"done","count":N,"sha256":"<hex>"[,"stream":ID]}
  {"type":"error","error":"...","field":"...","stream":ID}   ("limit" instead of "field"
                                                            when a server limit refused it)
  {"type":"cancelled","stream":ID,"sent":N}

Protocol violations map to close codes (RFC 6455 §7.4.1): bad JSON or parameters 1008
(policy violation), binary frames 1003 (unsupported data), oversized 1009. A server that
refuses a stream by one of its limits closes with 1013 (try again later) or 1008; an idle
connection is closed with 1001 (going away).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.schedule import ParamError, StreamId, StreamParams, coerce_stream_id, parse_params

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009
CLOSE_SERVER_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013

#: Largest client message the servers accept (control messages are tiny).
MAX_CLIENT_MESSAGE = 16 * 1024


class ProtocolError(Exception):
    """A client message the server refuses; carries the close code and reason to send."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        # RFC 6455: the close reason must fit in 123 bytes of UTF-8.
        self.reason = reason.encode("utf-8")[:123].decode("utf-8", "ignore")


@dataclass(frozen=True, slots=True)
class Start:
    params: StreamParams


@dataclass(frozen=True, slots=True)
class Cancel:
    stream: StreamId


@dataclass(frozen=True, slots=True)
class Resume:
    stream: StreamId
    after: int
    #: Full parameters when the client sent them; None means "look the stream up".
    params: StreamParams | None


ClientMessage = Start | Cancel | Resume


def parse_client_message(text: str) -> ClientMessage:
    """Decode one client text frame, or raise ProtocolError with the close code to use."""
    if len(text) > MAX_CLIENT_MESSAGE:
        raise ProtocolError(CLOSE_TOO_BIG, f"message over {MAX_CLIENT_MESSAGE} bytes")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError(CLOSE_POLICY_VIOLATION, "message is not valid JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError(CLOSE_POLICY_VIOLATION, "message must be a JSON object")
    kind = obj.pop("type", None)
    try:
        if kind == "start":
            return Start(parse_params(obj))
        if kind == "cancel":
            if set(obj) - {"stream"} or "stream" not in obj:
                raise ProtocolError(CLOSE_POLICY_VIOLATION, "cancel takes exactly: stream")
            return Cancel(coerce_stream_id(obj["stream"]))
        if kind == "resume":
            if "stream" not in obj or "after" not in obj:
                raise ProtocolError(CLOSE_POLICY_VIOLATION, "resume needs stream and after")
            after = obj.pop("after")
            if isinstance(after, bool) or not isinstance(after, int) or after < -1:
                raise ProtocolError(CLOSE_POLICY_VIOLATION, "after must be an integer >= -1")
            stream = coerce_stream_id(obj["stream"])
            params = parse_params(obj) if len(obj) > 1 else None
            return Resume(stream, after, params)
    except ParamError as exc:
        raise ProtocolError(CLOSE_POLICY_VIOLATION, f"bad {exc.field}: {exc.message}") from None
    raise ProtocolError(CLOSE_POLICY_VIOLATION, f"unknown message type {str(kind)[:32]!r}")


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def start_message(params: StreamParams) -> str:
    return _dump({"type": "start", **params.to_dict()})


def cancel_message(stream: StreamId) -> str:
    return _dump({"type": "cancel", "stream": stream})


def resume_message(stream: StreamId, after: int, params: StreamParams | None = None) -> str:
    body: dict[str, Any] = {"type": "resume", "stream": stream, "after": after}
    if params is not None:
        body.update({k: v for k, v in params.to_dict().items() if k != "stream"})
    return _dump(body)


def done_message(summary: dict[str, Any], stream: StreamId) -> str:
    return _dump({"type": "done", **summary, "stream": stream})


def error_message(
    error: str, stream: StreamId | None = None, field: str | None = None, limit: str | None = None
) -> str:
    body: dict[str, Any] = {"type": "error", "error": error}
    if field is not None:
        body["field"] = field
    if limit is not None:
        body["limit"] = limit
    if stream is not None:
        body["stream"] = stream
    return _dump(body)


def cancelled_message(stream: StreamId, sent: int) -> str:
    return _dump({"type": "cancelled", "stream": stream, "sent": sent})


def parse_server_message(text: str | bytes) -> dict[str, Any]:
    """Decode a server frame: token payloads have "i"; control messages have "type"."""
    obj = json.loads(text)
    if not isinstance(obj, dict):
        raise ValueError("server message must be a JSON object")
    return obj
