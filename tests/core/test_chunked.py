"""Chunked transfer-coding decoder: exact body in any split of the bytes, strict framing."""

from __future__ import annotations

import itertools

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.chunked import ChunkedDecoder

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def encode(chunks: list[bytes], ext: bool = False, trailers: bytes = b"") -> bytes:
    out = b"".join(b"%x%s\r\n%s\r\n" % (len(c), b";x=1" if ext else b"", c) for c in chunks if c)
    return out + b"0\r\n" + trailers + b"\r\n"


def decode(data: bytes, cuts: list[int]) -> tuple[bytes, ChunkedDecoder]:
    dec = ChunkedDecoder()
    body = b""
    for a, b in itertools.pairwise([0, *cuts, len(data)]):
        body += dec.feed(data[a:b])
    return body, dec


SSE = [b'id: %d\ndata: {"s":"x","i":%d,"t":1,"d":"tok"}\n\n' % (i, i) for i in range(3)]


def test_every_single_split() -> None:
    data = encode(SSE, ext=True, trailers=b"X-T: 1\r\n") + b"NEXT"
    for cut in range(len(data) + 1):
        body, dec = decode(data, [cut])
        assert body == b"".join(SSE) and dec.done and dec.tail == b"NEXT", cut


def test_every_pair_of_splits() -> None:
    data = encode(SSE[:2])
    for a in range(len(data) + 1):
        for b in range(a, len(data) + 1):
            body, dec = decode(data, [a, b])
            assert body == b"".join(SSE[:2]) and dec.done and dec.tail == b""


def test_byte_by_byte_yields_data_as_it_comes() -> None:
    """No waiting for a whole chunk: each data byte comes out of the feed that carried it."""
    data = encode([b"hello"])
    dec = ChunkedDecoder()
    got = [dec.feed(data[i : i + 1]) for i in range(len(data))]
    assert [g for g in got if g] == [b"h", b"e", b"l", b"l", b"o"]
    assert dec.done


@PROPS
@given(
    st.lists(st.binary(min_size=0, max_size=300), max_size=8),
    st.lists(st.integers(0, 4000), max_size=10),
    st.booleans(),
)
def test_any_chunking_any_split(chunks: list[bytes], cuts: list[int], ext: bool) -> None:
    data = encode(chunks, ext=ext)
    body, dec = decode(data, sorted(c % (len(data) + 1) for c in cuts))
    assert body == b"".join(chunks) and dec.done and dec.tail == b""


@PROPS
@given(st.lists(st.binary(min_size=1, max_size=200), max_size=6))
def test_agrees_with_h11(chunks: list[bytes]) -> None:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    conn.next_event(), conn.next_event()
    resp = h11.Response(status_code=200, headers=[("Transfer-Encoding", "chunked")])
    wire = conn.send(resp).split(b"\r\n\r\n", 1)[1]
    for c in chunks:
        wire += conn.send(h11.Data(data=c))
    wire += conn.send(h11.EndOfMessage())
    body, dec = decode(wire, [])
    assert body == b"".join(chunks) and dec.done


@pytest.mark.parametrize(
    "bad",
    [b"zz\r\nab\r\n", b"-1\r\n", b"0x2\r\nab\r\n", b"2\r\nabXY", b"\r\n", b"1_0\r\n", b"+2\r\nab"],
)
def test_bad_framing_raises(bad: bytes) -> None:
    with pytest.raises(ValueError):
        ChunkedDecoder().feed(bad + b"\r\n0\r\n\r\n")


def test_overlong_size_line_raises() -> None:
    dec = ChunkedDecoder()
    with pytest.raises(ValueError):
        dec.feed(b"1" * 5000)


def test_after_done_bytes_go_to_tail() -> None:
    dec = ChunkedDecoder()
    assert dec.feed(b"2\r\nab\r\n0\r\n\r\n") == b"ab"
    assert dec.done
    assert dec.feed(b"more") == b"" and dec.tail == b"more"
