"""What the three provider formats (openai-chat, openai-responses, anthropic) share.

**The request's extension object.** The providers' standard fields drive the synthetic
model where they exist: ``seed`` (chat completions only), ``max_tokens`` /
``max_completion_tokens`` / ``max_output_tokens`` (the answer's length). Everything else
the model needs — the timing knobs and the stream id — rides in one optional object of
the request body named ``ssevsws`` (`EXT`), with the interface contract's field names:

    {"model": "...", "messages": [...], "stream": true, "max_tokens": 200, "seed": 7,
     "ssevsws": {"ttft_ms": 300, "gap_ms": 20, "jitter": 0.1, "pause_ms": 0, "pause_at": 0,
                 "stream": "s-1", "drop_after": null}}

Any contract field may be in it (``seed`` and ``tokens`` too, for the APIs without a
standard field for them); a field given both ways must agree. Official SDKs send it as an
extra body field (``extra_body={"ssevsws": {...}}``); servers that do not know it ignore it
(vLLM, LiteLLM and the providers do). Without it, the defaults of the native endpoints
apply (stream id 0, TTFT 400 ms, a token every 20 ms).

**What the reference servers add to the providers' events**, in fields the official SDKs
ignore (their models keep unknown fields and nobody reads them):

- ``"ssevsws_t": <ns>`` (`STAMP`) on every content event: the server's
  ``time.monotonic_ns()`` when it wrote the event (the native payload's ``t``). It costs
  about 30 bytes an event that a provider does not send; the bytes-per-token figures
  include it (docs/methodology.md, "Bytes per token").
- ``"ssevsws": {"count": N, "sha256": "<hex>"}`` on the stream's last JSON event: the
  native ``done`` event's integrity figures.

The token texts are the native ones for the same seed, length and stream id (the same
`core.schedule.StreamPlan`), one content delta per token.

**Client requests.** Every provider format creates a stream with one ``POST`` of a JSON
body and none can resume one: `PostFormat` holds that request (method, path, headers, the
refusals); a format adds its body (`PostFormat.request_body`).

Sources of the shapes are cited in each format's module.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, ClassVar

from core.client.events import StreamEvent, Usage
from core.formats.base import HttpRequest, PayloadFormat, UnsupportedRequest
from core.schedule import ParamError, StreamParams, StreamPlan, parse_params

#: The request body's extension object (timing knobs, stream id) and the final event's
#: integrity record.
EXT = "ssevsws"
#: The server's send stamp on every content event.
STAMP = "ssevsws_t"
#: The model name clients send when none is given, and servers echo when the body has none.
DEFAULT_MODEL = "ssevsws-synthetic"
#: The user message the harness sends (the synthetic model does not read it).
PROMPT = (
    "Explain, in plain words and in some detail, how the tokens of an answer travel from a "
    "language model to the person reading it, and what can slow them down on the way."
)
#: Longest model name / response id accepted.
_MAX_NAME = 256

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_HEX = "0123456789abcdef"


# --------------------------------------------------------------------------- ids, padding
def random_id(prefix: str, n: int, alphabet: str = _BASE62) -> str:
    """``prefix`` + `n` random characters of `alphabet` (the providers' id shapes)."""
    raw = os.urandom(n)
    k = len(alphabet)
    return prefix + "".join(alphabet[b % k] for b in raw)


def hex_id(prefix: str, n: int) -> str:
    return random_id(prefix, n, _HEX)


def _obfuscation_table() -> tuple[bytes, ...]:
    rng = random.Random(0x0B5C)
    return tuple("".join(rng.choice(_BASE62) for _ in range(8 + i % 8)).encode() for i in range(64))


#: OpenAI's ``obfuscation`` field: "random characters ... to normalize payload sizes",
#: included by default (``stream_options.include_obfuscation``). Its length rule is not
#: published; the reference's examples show 8 and 13 characters, so the reference servers
#: send 8–15 characters (11.5 on average), picked per event from a fixed table.
OBFUSCATION = _obfuscation_table()


def obfuscation(seq: int, vocab_id: int) -> bytes:
    return OBFUSCATION[(seq * 31 + vocab_id) & 63]


def dumps(obj: Any) -> bytes:
    """Compact JSON, UTF-8 (as the providers send their events)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


#: Placeholders of `token_template`: the token's text (a JSON string value), the
#: obfuscation characters (inside a JSON string) and an event counter (a JSON number).
TEXT = "\ue000"
PAD = "\ue001"
SEQ = -7_770_001


def token_template(
    event: dict[str, Any], *, prefix: bytes = b"", suffix: bytes = b"", seq: bool = False
) -> bytes:
    """A content event as a ``%``-format, so the per-token work is one format operation.

    `event` is the event as a dict, built like the format's other events, with `TEXT`
    where the token's text goes, `PAD` where the obfuscation characters go, `SEQ` where an
    event number goes, and ``STAMP: 0`` as its last key; the result takes, in the order
    they appear, ``%d`` for SEQ, ``%s`` for the JSON-encoded text (core.schedule.VOCAB_JSON),
    ``%s`` for the padding and ``%d`` for the stamp. `prefix` / `suffix` frame it (SSE).
    `seq` says whether the event holds `SEQ` (only server-made values may sit beside it:
    a client's model name could hold its digits)."""
    raw = (prefix + dumps(event) + suffix).replace(b"%", b"%%")
    stamp_key = b'"%s":0}' % STAMP.encode()
    if stamp_key not in raw:
        raise ValueError(f"the event must end with {STAMP}: 0")
    raw = raw.replace(stamp_key, stamp_key[:-2] + b"%d}")
    raw = raw.replace(dumps(TEXT), b"%s").replace(PAD.encode(), b"%s")
    return raw.replace(str(SEQ).encode(), b"%d") if seq else raw


# --------------------------------------------------------------------------- requests (server)
def json_object(body: bytes | None) -> dict[str, Any]:
    """The request body as a JSON object, or ParamError (HTTP 400)."""
    if body is None:
        raise ParamError("body", "this endpoint takes a JSON body (POST)")
    try:
        obj: Any = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: e.g. 10,000 nested "["
        raise ParamError("body", "must be a JSON object") from None
    if not isinstance(obj, dict):
        raise ParamError("body", "must be a JSON object")
    return obj


def stream_params(
    obj: Mapping[str, Any], standard: Mapping[str, str], extra: dict[str, Any]
) -> StreamParams:
    """The StreamParams of a request body: the `EXT` object's contract fields, plus the
    API's standard fields (`standard`: contract field → body field, e.g. ``{"tokens":
    "max_tokens"}``) where the body has them. `extra` becomes ``params.extra`` (what only
    the format's writer reads: model, usage options…). ParamError for a bad value."""
    knobs = obj.get(EXT)
    if knobs is None:
        raw: dict[str, Any] = {}
    elif isinstance(knobs, dict):
        raw = dict(knobs)
    else:
        raise ParamError(EXT, "must be an object of stream parameters")
    for field, body_field in standard.items():
        value = obj.get(body_field)
        if value is None:
            continue
        if field in raw and raw[field] != value:
            raise ParamError(body_field, f"disagrees with {EXT}.{field}")
        raw[field] = value
    return replace(parse_params(raw), extra=extra)


def require_stream(obj: Mapping[str, Any]) -> None:
    if obj.get("stream") is not True:
        raise ParamError("stream", "this server only streams: set stream to true")


def model_of(obj: Mapping[str, Any]) -> str:
    model = obj.get("model", DEFAULT_MODEL)
    if (
        not isinstance(model, str)
        or not 0 < len(model) <= _MAX_NAME
        or not model.isprintable()
        or TEXT in model
        or PAD in model
    ):
        raise ParamError("model", f"must be 1-{_MAX_NAME} printable characters")
    return model


def optional_name(obj: Mapping[str, Any], field: str) -> str | None:
    value = obj.get(field)
    if value is not None and (not isinstance(value, str) or not 0 < len(value) <= _MAX_NAME):
        raise ParamError(field, f"must be a string of 1-{_MAX_NAME} characters")
    return value


def flag(options: Any, field: str, default: bool) -> bool:
    """A boolean of an options object (``stream_options``), its default when absent."""
    if options is None:
        return default
    if not isinstance(options, dict):
        raise ParamError("stream_options", "must be an object")
    value = options.get(field, default)
    if not isinstance(value, bool):
        raise ParamError(f"stream_options.{field}", "must be true or false")
    return value


def input_tokens(*parts: Any) -> int:
    """Prompt tokens the usage records report: about 4 characters a token (the synthetic
    vocabulary's rate) over every string in the request's input fields."""
    chars = sum(_text_chars(p, 0) for p in parts)
    return max(1, -(-chars // 4))


def _text_chars(obj: Any, depth: int) -> int:
    if isinstance(obj, str):
        return len(obj)
    if depth > 32:
        return 0
    if isinstance(obj, dict):
        return sum(_text_chars(v, depth + 1) for v in obj.values())
    if isinstance(obj, list):
        return sum(_text_chars(v, depth + 1) for v in obj)
    return 0


# --------------------------------------------------------------------------- requests (client)
def knobs(params: StreamParams, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The `EXT` object a client sends: the contract fields of `params` not in `skip` (those
    the API has a standard field for)."""
    skipped = set(skip)
    return {k: v for k, v in params.to_dict().items() if k not in skipped}


def client_model(params: StreamParams) -> str:
    model = params.extra.get("model")
    return model if isinstance(model, str) and model else DEFAULT_MODEL


def refuse_resume(resume_after: int | None, what: str) -> None:
    """UnsupportedRequest for a resume (`resume_after` ≥ 0): no provider API resumes a
    stream. `what` names the stream ("a message stream")."""
    if resume_after is not None and resume_after >= 0:
        raise UnsupportedRequest(f"{what} cannot be resumed")


class PostFormat(PayloadFormat):
    """What the provider formats share on the client side: a stream is one ``POST`` of a
    JSON body (`request_body`) to the format's path with its `request_headers`; any other
    method, and any resume, is an UnsupportedRequest naming `creates` (what the POST
    creates, e.g. "a chat completion")."""

    sse_method = "POST"
    resumable = False
    request_headers: ClassVar[tuple[tuple[str, str], ...]] = (
        ("Content-Type", "application/json"),
        ("Accept", "text/event-stream"),
    )
    creates: ClassVar[str] = "a stream"

    def request_body(self, params: StreamParams) -> dict[str, Any]:
        """The JSON body of the POST for `params` (standard fields + the `EXT` object)."""
        raise NotImplementedError

    def sse_request(
        self,
        params: StreamParams,
        *,
        base_path: str = "",
        resume_after: int | None = None,
        method: str | None = None,
    ) -> HttpRequest:
        if method not in (None, "POST"):
            raise UnsupportedRequest(f"{self.creates} is created with POST, not {method}")
        refuse_resume(resume_after, f"{self.creates} stream")
        body = dumps(self.request_body(params))
        return HttpRequest("POST", f"{base_path}{self.sse_path}", self.request_headers, body)


# --------------------------------------------------------------------------- server side
def summary(plan: StreamPlan) -> dict[str, Any]:
    """The integrity record of the last event (the native done event's count and sha256)."""
    return plan.done()


def extra_int(plan: StreamPlan, key: str, default: int) -> int:
    value = plan.params.extra.get(key, default)
    return value if isinstance(value, int) else default


# --------------------------------------------------------------------------- client side
class ReaderState:
    """What a client reader of an API format keeps for one stream: the next token's seq
    (the APIs number events, not tokens: content deltas are numbered in arrival order), the
    API's response id, the integrity record and the usage seen."""

    __slots__ = ("input_tokens", "response_id", "seq", "summary")

    def __init__(self) -> None:
        self.seq = 0
        self.response_id: str | None = None
        self.summary: tuple[int | None, str | None] = (None, None)
        self.input_tokens: int | None = None

    def note_summary(self, obj: Mapping[str, Any]) -> None:
        rec = obj.get(EXT)
        if isinstance(rec, dict):
            count, sha = rec.get("count"), rec.get("sha256")
            self.summary = (
                count if isinstance(count, int) else None,
                sha if isinstance(sha, str) else None,
            )

    def note_id(self, value: Any) -> None:
        if isinstance(value, str) and value:
            self.response_id = value


def stamp(obj: Mapping[str, Any]) -> int | None:
    value = obj.get(STAMP)
    return value if isinstance(value, int) and value > 0 else None


def usage_event(
    t_ns: int, usage: Any, input_key: str, output_key: str, out: list[StreamEvent]
) -> None:
    """Append a Usage event for an API's usage object (nothing when it is not one)."""
    if not isinstance(usage, dict):
        return
    n_in, n_out = usage.get(input_key), usage.get(output_key)
    out.append(
        Usage(
            t_ns,
            n_in if isinstance(n_in, int) else None,
            n_out if isinstance(n_out, int) else None,
        )
    )


def error_text(obj: Any) -> str:
    """The message of a provider's error object (``{"error": {"message": …}}``, an error
    event), else the JSON itself."""
    if isinstance(obj, dict):
        err = obj.get("error", obj)
        if isinstance(err, dict):
            kind = err.get("code") or (err.get("type") if err.get("type") != "error" else None)
            msg = err.get("message")
            if msg:
                return f"{kind}: {msg}" if kind else str(msg)
        elif isinstance(err, str):
            return err
    return json.dumps(obj)[:500]
