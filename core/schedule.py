"""The synthetic model: what a stream says and when each token is due.

Everything here is a pure function of the request parameters, so every server
(SSE, aiohttp WS, `websockets` WS) emits the same `(seq, text)` sequence at the
same offsets, and every client can know the truth it is measured against.

Token texts come from a fixed vocabulary (about 4 characters a token, with a few
tokens that exercise JSON escaping and multi-byte UTF-8). The RNG is seeded from a
SHA-256 of `(seed, stream)`, so results do not depend on Python's hash seed.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field, fields
from typing import Any

StreamId = int | str

#: Vocabulary of token texts. Order matters: token ids index into it. Never
#: reorder or edit in place (it would change every published checksum); append.
_WORDS = (  # noqa: SIM905 - one readable string beats 200 quoted words
    "the of and to in is that for it as was with be by on not he this are or his "
    "from at which but have an they you were her she there been one all we their "
    "has would when if so no will can more about said up out them some could into "
    "than other what time only new its two may first then do any like my now over "
    "such our man me even most made after also did many before must through back "
    "years where much your way well down should because each just those people how "
    "too little state good very make world still own see men work long get here "
    "between both life being under never day same another know while last might us "
    "great old year off come since against go came right used take three stream "
    "token server client model latency event socket proxy answer request response "
    "cost user data value system network message buffer connection"
).split()
_PUNCT = [".", ",", ":", ";", "!", "?", " -", "'s", "n't", "(", ")", "\n", "\n\n"]
_TRICKY = [
    '"',
    "\\",
    " \u00e9t\u00e9",
    " na\u00efve",
    " \u2014",
    " \u00b5s",
    " \U0001f680",
    "\t",
    " </s>",
]
_SUBWORDS = ["ing", "ed", "ly", "er", "tion", "s", "es", "al", "ment", "ness"]

VOCAB: tuple[str, ...] = tuple(
    [" " + w for w in _WORDS] + [w.capitalize() for w in _WORDS[:40]] + _PUNCT + _TRICKY + _SUBWORDS
)
#: JSON-encoded (quoted, escaped, UTF-8) form of each vocabulary entry, for fast payloads.
VOCAB_JSON: tuple[bytes, ...] = tuple(
    json.dumps(t, ensure_ascii=False).encode("utf-8") for t in VOCAB
)
_VOCAB_WEIGHTS = tuple(
    [6.0] * len(_WORDS)
    + [1.5] * 40
    + [4.0] * len(_PUNCT)
    + [0.5] * len(_TRICKY)
    + [2.0] * len(_SUBWORDS)
)

LIMITS: dict[str, tuple[float, float]] = {
    "seed": (0, 2**63 - 1),
    "tokens": (1, 100_000),
    "ttft_ms": (0, 600_000),
    "gap_ms": (0, 60_000),
    "jitter": (0, 1),
    "pause_ms": (0, 600_000),
    "pause_at": (0, 100_000),
    "drop_after": (1, 100_000),
}
_STREAM_ID_MAX = 128
DEFAULT_TOKENS_MEDIAN = 1800


class ParamError(ValueError):
    """A request parameter is missing, malformed or out of range (maps to HTTP 400 / WS 1008)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"error": self.message, "field": self.field}


@dataclass(frozen=True, slots=True)
class StreamParams:
    """One stream request. Field names are the interface contract's (README "Endpoint reference").

    jitter is relative: each TTFT and gap is multiplied by `1 + U(-jitter, +jitter)`.
    pause_ms is an extra idle gap inserted before token `pause_at` (0 = lengthens TTFT,
    a "reasoning pause"). drop_after makes the server cut the connection abruptly once
    `drop_after` tokens (absolute sequence count) have been sent — once: a resumed stream
    is not cut again, wherever it resumes.
    """

    seed: int = 0
    tokens: int | None = None
    ttft_ms: float = 400.0
    gap_ms: float = 20.0
    jitter: float = 0.0
    stream: StreamId = 0
    pause_ms: float = 0.0
    pause_at: int = 0
    drop_after: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def n_tokens(self) -> int:
        return self.tokens if self.tokens is not None else default_length(self.seed, self.stream)

    def to_dict(self) -> dict[str, Any]:
        """The contract's fields in declaration order, None left out (built by hand: the
        client calls this once per stream and `dataclasses.asdict` cost ~18 µs)."""
        d = {
            "seed": self.seed,
            "tokens": self.tokens,
            "ttft_ms": self.ttft_ms,
            "gap_ms": self.gap_ms,
            "jitter": self.jitter,
            "stream": self.stream,
            "pause_ms": self.pause_ms,
            "pause_at": self.pause_at,
            "drop_after": self.drop_after,
        }
        return {k: v for k, v in d.items() if v is not None}


_INT_FIELDS = {"seed", "tokens", "pause_at", "drop_after"}
#: Numbers in strings (query strings, headers): ASCII only. `int()`/`float()` also take
#: other scripts' digits ("١٢٣"), digit separators ("1_000"), spaces and a "+".
_INT_TEXT = re.compile(r"-?[0-9]+")
_FLOAT_TEXT = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_FLOAT_FIELDS = {"ttft_ms", "gap_ms", "jitter", "pause_ms"}
PARAM_FIELDS = tuple(f.name for f in fields(StreamParams) if f.name != "extra")


def _coerce_number(name: str, raw: Any) -> int | float:
    if isinstance(raw, bool):
        raise ParamError(name, "must be a number, not a boolean")
    want_int = name in _INT_FIELDS
    if isinstance(raw, str):
        if len(raw) > 64 or (_INT_TEXT if want_int else _FLOAT_TEXT).fullmatch(raw) is None:
            kind = "an integer" if want_int else "a number"
            raise ParamError(name, f"must be {kind} in ASCII digits, got {raw[:40]!r}")
        value: int | float = int(raw) if want_int else float(raw)
    elif isinstance(raw, int):
        value = raw
    elif isinstance(raw, float):
        if want_int:
            if not raw.is_integer():
                raise ParamError(name, f"must be an integer, got {raw!r}")
            value = int(raw)
        else:
            value = raw
    else:
        raise ParamError(name, f"must be a number, got {type(raw).__name__}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ParamError(name, "must be finite")
    lo, hi = LIMITS[name]
    if not lo <= value <= hi:
        raise ParamError(name, f"must be between {lo:g} and {hi:g}, got {value!r}")
    return value


def coerce_stream_id(raw: Any) -> StreamId:
    if isinstance(raw, bool):
        raise ParamError("stream", "must be an integer or a short string")
    if isinstance(raw, int):
        if not 0 <= raw <= 2**63 - 1:
            raise ParamError("stream", "integer id must be between 0 and 2**63-1")
        return raw
    if isinstance(raw, str):
        if raw.isascii() and raw.isdigit() and len(raw) <= 18:
            return int(raw)
        if not 1 <= len(raw) <= _STREAM_ID_MAX or not all(
            c.isascii() and (c.isalnum() or c in "-_.:") for c in raw
        ):
            raise ParamError("stream", f"must be 1-{_STREAM_ID_MAX} characters of [A-Za-z0-9-_.:]")
        return raw
    raise ParamError("stream", f"must be an integer or a string, got {type(raw).__name__}")


def parse_params(raw: dict[str, Any], *, allow_unknown: bool = False) -> StreamParams:
    """Validate a query-string or JSON mapping into StreamParams, or raise ParamError.

    Numeric strings are accepted (query strings); unknown fields are refused unless
    allow_unknown (the WS message's own `type` etc. are stripped by the caller).
    """
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "stream":
            values["stream"] = coerce_stream_id(value)
        elif key in _INT_FIELDS or key in _FLOAT_FIELDS:
            if value is None and key in ("tokens", "drop_after"):
                continue
            values[key] = _coerce_number(key, value)
        elif allow_unknown:
            extra[key] = value
        else:
            raise ParamError(key, "unknown parameter")
    params = StreamParams(**values, extra=extra)
    if params.pause_at and params.pause_at >= params.n_tokens:
        raise ParamError("pause_at", "must be below tokens")
    return params


def _rng(seed: int, stream: StreamId, purpose: str) -> random.Random:
    digest = hashlib.sha256(f"{purpose}|{seed}|{stream!r}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def default_length(seed: int, stream: StreamId) -> int:
    """Response length when `tokens` is not given: lognormal, median ~1,800, in [16, 8000]."""
    rng = _rng(seed, stream, "length")
    n = round(rng.lognormvariate(7.5, 0.5))
    return max(16, min(8000, n))


def token_ids(seed: int, stream: StreamId, n: int) -> list[int]:
    """Vocabulary indices of the n tokens of a stream (deterministic)."""
    rng = _rng(seed, stream, "text")
    return rng.choices(range(len(VOCAB)), weights=_VOCAB_WEIGHTS, k=n)


def token_texts(seed: int, stream: StreamId, n: int) -> list[str]:
    return [VOCAB[i] for i in token_ids(seed, stream, n)]


def offsets_ns(params: StreamParams) -> list[int]:
    """Scheduled send time of each token, in ns after the request arrived.

    Absolute offsets (t0 + offset_i), never "sleep gap after each write", so the
    server does not drift.
    """
    n = params.n_tokens
    jit = params.jitter
    rng = _rng(params.seed, params.stream, "timing") if jit > 0 else None

    def scaled(ms: float) -> float:
        if rng is None:
            return ms
        return ms * (1.0 + rng.uniform(-jit, jit))

    out: list[int] = []
    t_ms = scaled(params.ttft_ms)
    if params.pause_at == 0:
        t_ms += params.pause_ms
    out.append(round(t_ms * 1e6))
    for i in range(1, n):
        t_ms += scaled(params.gap_ms)
        if i == params.pause_at:
            t_ms += params.pause_ms
        out.append(round(t_ms * 1e6))
    return out


def first_offset_ns(params: StreamParams) -> int:
    """`offsets_ns(params)[0]` — when the first token is due after the request arrived —
    without computing the others (the client records it for every stream)."""
    t_ms = params.ttft_ms
    if params.jitter > 0:
        rng = _rng(params.seed, params.stream, "timing")
        t_ms *= 1.0 + rng.uniform(-params.jitter, params.jitter)
    if params.pause_at == 0:
        t_ms += params.pause_ms
    return round(t_ms * 1e6)


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """Everything a server needs to emit one stream: texts (as vocab ids) and due times."""

    params: StreamParams
    ids: list[int]
    offsets: list[int]

    @classmethod
    def build(cls, params: StreamParams) -> StreamPlan:
        n = params.n_tokens
        return cls(params, token_ids(params.seed, params.stream, n), offsets_ns(params))

    @property
    def n(self) -> int:
        return len(self.ids)

    def text(self, seq: int) -> str:
        return VOCAB[self.ids[seq]]

    def texts(self) -> list[str]:
        return [VOCAB[i] for i in self.ids]

    def done(self) -> dict[str, Any]:
        return done_summary(self.texts())


def done_summary(texts: list[str]) -> dict[str, Any]:
    """The `done` event body: token count and SHA-256 over the concatenated UTF-8 texts."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
    return {"count": len(texts), "sha256": h.hexdigest()}


def stream_id_json(stream: StreamId) -> bytes:
    return json.dumps(stream).encode("ascii")


def token_payload(stream_json: bytes, seq: int, server_ns: int, vocab_id: int) -> bytes:
    """The token payload, byte-identical in both arms: {"s":ID,"i":SEQ,"t":NS,"d":"text"}."""
    return b'{"s":%s,"i":%d,"t":%d,"d":%s}' % (stream_json, seq, server_ns, VOCAB_JSON[vocab_id])


def parse_token_payload(data: str | bytes) -> tuple[StreamId, int, int, str]:
    """Inverse of token_payload: (stream, seq, server_ns, text). Raises ValueError if not one.

    The load-test clients call this once per token, so the exact layout token_payload writes
    is sliced (no JSON parse unless a string holds escapes); anything else — other key
    order, whitespace, escapes, a foreign server's payload — goes through json.loads.
    """
    if isinstance(data, bytes | bytearray):
        data = data.decode("utf-8")
    # A '"' inside a JSON string is escaped, so ',"i":' etc. cannot occur within "s" or "d".
    if data[:5] == '{"s":' and data[-1:] == "}":
        i = data.find(',"i":', 5)
        t = data.find(',"t":', i + 5) if i > 0 else -1
        d = data.find(',"d":', t + 5) if t > 0 else -1
        if d > 0:
            seq_s, ns_s, s_s, d_s = data[i + 5 : t], data[t + 5 : d], data[5:i], data[d + 5 : -1]
            if seq_s.isdigit() and ns_s.isdigit() and seq_s.isascii() and ns_s.isascii():
                text = _fast_json_str(d_s)
                if s_s.isdigit() and s_s.isascii() and (s_s == "0" or s_s[0] != "0"):
                    sid: StreamId | None = int(s_s)
                else:
                    sid = _fast_json_str(s_s)
                if text is not None and sid is not None:
                    return sid, int(seq_s), int(ns_s), text
    obj = json.loads(data)
    if not isinstance(obj, dict) or "i" not in obj or "d" not in obj:
        raise ValueError("not a token payload")
    return obj.get("s", 0), int(obj["i"]), int(obj.get("t", 0)), str(obj["d"])


def _fast_json_str(s: str) -> str | None:
    """The value of a JSON string literal without escapes or control characters, else None."""
    if len(s) < 2 or s[0] != '"' or s[-1] != '"':
        return None
    inner = s[1:-1]
    if "\\" in inner or '"' in inner or (inner and min(inner) < " "):
        return None
    return inner
