"""SSE codec: exact server bytes; the decoder against WHATWG HTML §9.2.6, in any chunking."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.schedule import (
    StreamParams,
    StreamPlan,
    parse_token_payload,
    stream_id_json,
    token_payload,
)
from core.sse import (
    SSEDecoder,
    SSEEvent,
    encode_comment,
    encode_done,
    encode_event,
    encode_retry,
    encode_token,
)

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decode(data: bytes, chunks: list[int] | None = None) -> tuple[list[SSEEvent], SSEDecoder]:
    """Decode `data` whole, or cut at the given offsets; close() must add nothing."""
    dec = SSEDecoder()
    out: list[SSEEvent] = []
    cuts = [0, *(chunks or []), len(data)]
    for a, b in itertools.pairwise(cuts):
        out += dec.feed(data[a:b])
    assert dec.close() == []
    return out, dec


def ev(data: str, type: str = "message", last_event_id: str = "") -> SSEEvent:
    return SSEEvent(type=type, data=data, last_event_id=last_event_id)


# --------------------------------------------------------------------------- encoder


def test_encode_token_exact_bytes() -> None:
    assert encode_token(0, b'{"i":0}') == b'id: 0\ndata: {"i":0}\n\n'
    assert encode_token(1799, b"x") == b"id: 1799\ndata: x\n\n"


def test_encode_event_field_order_and_multiline() -> None:
    got = encode_event("a\nb\r\nc\rd", event="e", id=5, retry_ms=3000)
    assert got == b"event: e\nid: 5\nretry: 3000\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
    assert encode_event(b"x") == b"data: x\n\n"
    assert encode_event("") == b"data: \n\n"
    assert encode_event("caf\u00e9", id="k") == "id: k\ndata: caf\u00e9\n\n".encode()


def test_encode_event_matches_fast_token_path() -> None:
    assert encode_event(b'{"d":"x"}', id=42) == encode_token(42, b'{"d":"x"}')


@pytest.mark.parametrize("bad_id", ["a\nb", "a\rb", "a\0b"])
def test_encode_event_rejects_bad_id(bad_id: str) -> None:
    with pytest.raises(ValueError):
        encode_event("x", id=bad_id)


@pytest.mark.parametrize("bad_event", ["a\nb", "a\rb"])
def test_encode_event_rejects_bad_event_name(bad_event: str) -> None:
    with pytest.raises(ValueError):
        encode_event("x", event=bad_event)


@pytest.mark.parametrize("bad", [-1, True, 1.5, "3000"])
def test_encode_retry_rejects_non_integers(bad: object) -> None:
    with pytest.raises(ValueError):
        encode_retry(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        encode_event("x", retry_ms=bad)  # type: ignore[arg-type]


def test_encode_comment_retry_done() -> None:
    assert encode_comment() == b": keepalive\n\n"
    assert encode_comment("a\nb") == b": a\n: b\n\n"
    assert encode_retry(3000) == b"retry: 3000\n\n"
    summary = {"count": 3, "sha256": "ab" * 32}
    assert encode_done(summary) == (
        b'event: done\ndata: {"count":3,"sha256":"' + b"ab" * 32 + b'"}\n\n'
    )
    # the dict's key order is kept
    assert (
        encode_done({"sha256": "x", "count": 1})
        == b'event: done\ndata: {"sha256":"x","count":1}\n\n'
    )


# --------------------------------------------------------------------------- decoder rules


@pytest.mark.parametrize("eol", ["\n", "\r", "\r\n"])
def test_line_endings(eol: str) -> None:
    raw = f"id: 1{eol}data: a{eol}data: b{eol}{eol}data: c{eol}{eol}".encode()
    assert decode(raw)[0] == [ev("a\nb", last_event_id="1"), ev("c", last_event_id="1")]


def test_mixed_line_endings() -> None:
    raw = b"data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r"
    assert decode(raw)[0] == [ev("a\nb\nc"), ev("d")]


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: a\r") == []
    # The LF completes the CRLF: no empty line, so no dispatch yet.
    assert dec.feed(b"\ndata: b\r") == []
    assert dec.feed(b"\n") == []
    assert dec.feed(b"\r") == [ev("a\nb")]
    assert dec.feed(b"\n") == []  # second half of that CRLF, not a blank line


def test_cr_then_lf_after_an_empty_decoded_chunk() -> None:
    # The CR flag must survive a chunk that decodes to nothing (half a multi-byte character).
    dec = SSEDecoder()
    assert dec.feed(b"data: a\r") == []
    assert dec.feed(b"\n\r\ndata: \xc3") == [ev("a")]
    assert dec.feed(b"\xa9\r") == []
    assert dec.feed(b"\n") == []
    assert dec.feed(b"\r\n") == [ev("\u00e9")]


def test_lone_cr_at_chunk_end_then_other_text() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: a\r") == []
    assert dec.feed(b"\r") == [ev("a")]


def test_comments_ignored_and_counted() -> None:
    seen: list[str] = []
    dec = SSEDecoder(on_comment=seen.append)
    out = dec.feed(b": keepalive\n\n:x\ndata: a\n:  two spaces\n\n")
    assert out == [ev("a")]
    assert dec.comments == 3
    assert seen == ["keepalive", "x", " two spaces"]


def test_bom_stripped_once_at_start_only() -> None:
    bom = "\ufeff".encode()
    assert decode(bom + b"data: a\n\n")[0] == [ev("a")]
    # A second BOM is a character: the first line's field name becomes "\ufeffdata" (ignored).
    assert decode(bom + bom + b"data: a\n\ndata: b\n\n")[0] == [ev("b")]
    # Not at the start: kept as data.
    assert decode(b"data: " + bom + b"a\n\n")[0] == [ev("\ufeffa")]
    # A BOM split across chunks is still stripped.
    assert decode(bom + b"data: a\n\n", chunks=[1, 2])[0] == [ev("a")]


def test_id_persists_across_events() -> None:
    raw = b"id: 7\ndata: a\n\ndata: b\n\nid: 8\ndata: c\n\nid\ndata: d\n\n"
    out, dec = decode(raw)
    assert out == [
        ev("a", last_event_id="7"),
        ev("b", last_event_id="7"),
        ev("c", last_event_id="8"),
        ev("d", last_event_id=""),  # "id" with no value resets it to empty
    ]
    assert dec.last_event_id == ""


def test_id_with_nul_ignored() -> None:
    out, dec = decode(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n")
    assert out == [ev("a", last_event_id="1"), ev("b", last_event_id="1")]
    assert dec.last_event_id == "1"


def test_last_event_id_set_on_blank_line_even_without_dispatch() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"id: 5\n") == []
    assert dec.last_event_id == ""  # only the buffer is set until the blank line
    assert dec.feed(b"\n") == []  # empty data: nothing dispatched
    assert dec.last_event_id == "5"
    assert dec.feed(b"data: x\n\n") == [ev("x", last_event_id="5")]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"retry: 3000", 3000),
        (b"retry:10", 10),
        (b"retry: 0", 0),
        (b"retry: 007", 7),
        (b"retry: 30s", None),
        (b"retry: -1", None),
        (b"retry: 1.5", None),
        (b"retry: ", None),
        (b"retry", None),
        (b"retry:  5", None),  # only one space is stripped; " 5" is not all digits
        ("retry: \u0663".encode(), None),  # Arabic-Indic digit: not ASCII
        ("retry: \u00b2".encode(), None),  # superscript two
    ],
)
def test_retry_digits_only(line: bytes, expected: int | None) -> None:
    dec = SSEDecoder()
    assert dec.feed(line + b"\n\n") == []
    assert dec.retry_ms == expected


def test_retry_keeps_last_valid_value() -> None:
    dec = SSEDecoder()
    dec.feed(b"retry: 100\n\nretry: x\n\n")
    assert dec.retry_ms == 100
    dec.feed(b"retry: 5" + b"9" * 5000 + b"\n\n")  # absurd but all digits: not a crash
    assert dec.retry_ms is not None


def test_retry_applies_without_blank_line() -> None:
    dec = SSEDecoder()
    dec.feed(b"retry: 250\n")
    assert dec.retry_ms == 250


def test_unknown_fields_ignored() -> None:
    raw = b"foo: bar\ndata: a\nData: b\nDATA\nevent_x: y\n\n"
    assert decode(raw)[0] == [ev("a")]


def test_no_dispatch_without_blank_line() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: a\n") == []
    assert dec.feed(b"data: b\n") == []
    assert dec.feed(b"\n") == [ev("a\nb")]


def test_empty_data_buffer_dispatches_nothing_and_resets_event_type() -> None:
    out, _ = decode(b"event: foo\n\ndata: x\n\n\n\n")
    assert out == [ev("x")]  # the type "foo" was reset by the first blank line


def test_empty_data_line_dispatches_empty_string() -> None:
    assert decode(b"data\n\n")[0] == [ev("")]
    assert decode(b"data:\n\n")[0] == [ev("")]
    assert decode(b"data\ndata\n\n")[0] == [ev("\n")]


def test_multiline_data() -> None:
    assert decode(b"data: a\ndata:\ndata: c\n\n")[0] == [ev("a\n\nc")]


def test_only_one_leading_space_stripped() -> None:
    assert decode(b"data:  a \n\n")[0] == [ev(" a ")]
    assert decode(b"data:a\n\n")[0] == [ev("a")]
    assert decode(b"data:\ta\n\n")[0] == [ev("\ta")]
    assert decode(b"event:  t\ndata: x\n\n")[0] == [ev("x", type=" t")]


def test_value_keeps_later_colons() -> None:
    assert decode(b"data: a: b:c\n\n")[0] == [ev("a: b:c")]


def test_field_with_no_colon() -> None:
    assert decode(b"data\n\n")[0] == [ev("")]
    out, _ = decode(b"event\ndata: x\n\n")
    assert out == [ev("x")]  # empty event type -> "message"


def test_event_type_default_and_named() -> None:
    out, _ = decode(b"data: a\n\nevent: done\ndata: b\n\ndata: c\n\n")
    assert out == [ev("a"), ev("b", type="done"), ev("c")]


def test_close_discards_unterminated_event() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: a\n\ndata: b\n") == [ev("a")]
    assert dec.close() == []
    dec = SSEDecoder()
    assert dec.feed(b"data: a\n\ndata: b") == [ev("a")]
    assert dec.close() == []
    assert dec.close() == []  # idempotent
    with pytest.raises(ValueError):
        dec.feed(b"\n\n")


def test_many_events_in_one_read() -> None:
    raw = b"".join(encode_token(i, b"p%d" % i) for i in range(1000))
    out, dec = decode(raw)
    assert [e.data for e in out] == [f"p{i}" for i in range(1000)]
    assert [e.last_event_id for e in out] == [str(i) for i in range(1000)]
    assert dec.last_event_id == "999"


def test_invalid_utf8_replaced() -> None:
    out, _ = decode(b"data: a\xffb\xe2\x82\n\n")
    assert out == [ev("a\ufffdb\ufffd")]


def test_other_unicode_line_breaks_are_not_line_ends() -> None:
    # str.splitlines() would split on these; the spec does not.
    text = "data: a\u2028b\u0085c\x0bd\x0ce\x1cf\n\n"
    assert decode(text.encode())[0] == [ev("a\u2028b\u0085c\x0bd\x0ce\x1cf")]


# --------------------------------------------------------------------------- server bytes


def server_stream(n: int = 50) -> tuple[bytes, StreamPlan]:
    plan = StreamPlan.build(StreamParams(seed=3, tokens=n, stream="abc"))
    sid = stream_id_json(plan.params.stream)
    parts = [encode_retry(3000)]
    for i, vid in enumerate(plan.ids):
        parts.append(encode_token(i, token_payload(sid, i, 1_000_000 + i, vid)))
        if i == n // 2:
            parts.append(encode_comment())
    parts.append(encode_done(plan.done()))
    return b"".join(parts), plan


def test_decodes_the_server_stream_in_any_chunking() -> None:
    raw, plan = server_stream()
    assert raw.startswith(b'retry: 3000\n\nid: 0\ndata: {"s":"abc","i":0,"t":1000000,')
    reference, _ = decode(raw)
    rng = random.Random(1)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(raw)), rng.randint(1, 40)))
        out, dec = decode(raw, cuts)
        assert out == reference
        assert dec.retry_ms == 3000
        assert dec.comments == 1
    tokens = reference[:-1]
    assert [e.type for e in tokens] == ["message"] * plan.n
    parsed = [parse_token_payload(e.data) for e in tokens]
    assert [p[1] for p in parsed] == list(range(plan.n))
    assert [e.last_event_id for e in tokens] == [str(i) for i in range(plan.n)]
    assert [p[3] for p in parsed] == plan.texts()
    assert all(p[0] == "abc" for p in parsed)
    done = reference[-1]
    assert done.type == "done"
    assert json.loads(done.data) == plan.done()


def test_server_stream_one_byte_at_a_time() -> None:
    raw, _ = server_stream(20)
    assert decode(raw, list(range(1, len(raw))))[0] == decode(raw)[0]


# --------------------------------------------------------------------------- round trip

_line_text = st.text(st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)))
_any_text = st.text(
    st.one_of(
        st.characters(exclude_categories=("Cs",)),
        st.sampled_from(["\r", "\n", " ", ":", "\ufeff", "\u00e9", "\U0001f680"]),
    )
)


@st.composite
def encoded_events(draw: st.DrawFn) -> tuple[bytes, list[SSEEvent]]:
    parts: list[bytes] = []
    expected: list[SSEEvent] = []
    last_id = ""
    for _ in range(draw(st.integers(0, 6))):
        data = draw(_any_text)
        event = draw(st.none() | _line_text)
        id_ = draw(st.none() | st.integers(0, 10**12) | _line_text.filter(lambda s: "\0" not in s))
        retry = draw(st.none() | st.integers(0, 10**9))
        as_bytes = draw(st.booleans())
        parts.append(
            encode_event(data.encode() if as_bytes else data, event=event, id=id_, retry_ms=retry)
        )
        if id_ is not None:
            last_id = str(id_)
        want = data.replace("\r\n", "\n").replace("\r", "\n")
        expected.append(SSEEvent(event or "message", want, last_id))
        if draw(st.booleans()):
            parts.append(encode_comment(draw(_any_text)))
    return b"".join(parts), expected


@PROPS
@given(encoded_events(), st.data())
def test_round_trip(stream: tuple[bytes, list[SSEEvent]], data: st.DataObject) -> None:
    raw, expected = stream
    assert decode(raw)[0] == expected
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=12).map(sorted))
    assert decode(raw, cuts)[0] == expected


# --------------------------------------------------------------------------- generated streams


@dataclass
class Model:
    """What a conforming parser must report for a generated stream."""

    lines: list[str] = field(default_factory=list)
    events: list[SSEEvent] = field(default_factory=list)
    id_buffer: str = ""
    last_event_id: str = ""
    retry_ms: int | None = None
    comments: int = 0


_FIELD_KINDS = ["data", "data", "data", "event", "id", "retry", "comment", "unknown"]
_id_text = st.text(
    st.one_of(
        st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)),
        st.just("\0"),
    ),
    max_size=6,
)
_retry_text = st.one_of(st.from_regex(r"\A[0-9]{1,6}\Z"), _line_text.map(lambda s: s[:6]))
_unknown_name = st.text(
    st.characters(exclude_characters="\r\n:", exclude_categories=("Cs",)), min_size=1, max_size=6
).filter(lambda s: s not in ("data", "event", "id", "retry") and not s.startswith("\ufeff"))
# (a name starting with U+FEFF as the stream's first line would lose it as a leading BOM)


def _strip_one_space(value: str) -> str:
    return value[1:] if value.startswith(" ") else value


@st.composite
def generated_streams(draw: st.DrawFn) -> tuple[bytes, Model]:
    """Blocks of fields (random order, comments and unknown fields mixed in) ended by a
    blank line, then maybe an unterminated event; random line terminator per line."""
    m = Model()
    data: list[str] = []
    event_type = ""

    def emit(name: str, value: str | None) -> str:
        """Render a field line; value None means no colon at all. Returns the parsed value."""
        if value is None:
            m.lines.append(name)
            return ""
        sep = draw(st.sampled_from([": ", ":"]))
        m.lines.append(f"{name}{sep}{value}")
        return _strip_one_space(sep[1:] + value)

    n_blocks = draw(st.integers(0, 6))
    unterminated = False
    for block in range(n_blocks + 1):
        trailing = block == n_blocks  # the last block is never terminated
        kinds = draw(st.lists(st.sampled_from(_FIELD_KINDS), max_size=5))
        if trailing and not draw(st.booleans()):
            kinds = []
        # In the trailing block the very last line may lack its terminator: then it is
        # never processed, so its effects (retry, comment count) must not reach the model.
        unterminated = trailing and bool(kinds) and draw(st.booleans())
        for j, kind in enumerate(kinds):
            saved = (m.retry_ms, m.comments)
            if kind == "comment":
                m.lines.append(":" + draw(_line_text))
                m.comments += 1
            elif kind == "unknown":
                name = draw(_unknown_name)
                emit(name, draw(st.none() | _line_text))
            elif kind == "retry":
                raw = draw(_retry_text)
                value = emit("retry", raw if raw or draw(st.booleans()) else None)
                if value and value.isascii() and value.isdigit():
                    m.retry_ms = int(value)
            else:
                text = draw(_id_text if kind == "id" else _line_text)
                value = emit(kind, None if not text and draw(st.booleans()) else text)
                if kind == "data":
                    data.append(value)
                elif kind == "event":
                    event_type = value
                elif "\0" not in value:
                    m.id_buffer = value
            if unterminated and j == len(kinds) - 1:
                m.retry_ms, m.comments = saved
        if trailing:
            break
        m.lines.append("")  # blank line: dispatch
        m.last_event_id = m.id_buffer
        if data:
            m.events.append(SSEEvent(event_type or "message", "\n".join(data), m.id_buffer))
        data = []
        event_type = ""

    # Serialise with a random terminator per line. A CR-terminated line followed by an
    # empty LF-terminated line would read as one CRLF, so that empty line gets CRLF instead.
    out: list[str] = []
    prev = ""
    for i, line in enumerate(m.lines):
        if unterminated and i == len(m.lines) - 1:
            eol = ""
        else:
            eol = draw(st.sampled_from(["\n", "\r", "\r\n"]))
            if prev == "\r" and not line and eol == "\n":
                eol = "\r\n"
        out.append(line + eol)
        prev = eol
    raw = "".join(out).encode("utf-8")
    if draw(st.booleans()):
        raw = "\ufeff".encode() + raw
    return raw, m


def _check(raw: bytes, m: Model, cuts: list[int]) -> None:
    out, dec = decode(raw, cuts)
    assert out == m.events
    assert dec.last_event_id == m.last_event_id
    assert dec.retry_ms == m.retry_ms
    assert dec.comments == m.comments


@PROPS
@given(generated_streams())
def test_generated_stream_whole_and_every_two_way_split(stream: tuple[bytes, Model]) -> None:
    raw, m = stream
    _check(raw, m, [])
    for k in range(1, len(raw)):
        _check(raw, m, [k])


@PROPS
@given(generated_streams(), st.data())
def test_generated_stream_random_multiway_split(
    stream: tuple[bytes, Model], data: st.DataObject
) -> None:
    raw, m = stream
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=20).map(sorted))
    _check(raw, m, cuts)


@PROPS
@given(generated_streams())
def test_generated_stream_one_byte_at_a_time(stream: tuple[bytes, Model]) -> None:
    raw, m = stream
    _check(raw, m, list(range(1, len(raw))))


@PROPS
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=4),
            st.sampled_from(
                [b"\r", b"\n", b"\r\n", b"data:", b"id: ", b"\xef\xbb\xbf", b"\xe2\x82"]
            ),
        ),
        max_size=40,
    ).map(b"".join)
)
def test_arbitrary_bytes_any_split_same_result(raw: bytes) -> None:
    """Invalid UTF-8, stray BOMs, CR/LF anywhere: chunking never changes the result."""
    whole, dec = decode(raw)
    for k in range(len(raw) + 1):
        out, d2 = decode(raw, [k])
        assert out == whole
        assert (d2.last_event_id, d2.retry_ms, d2.comments) == (
            dec.last_event_id,
            dec.retry_ms,
            dec.comments,
        )
    assert decode(raw, list(range(1, len(raw))))[0] == whole
