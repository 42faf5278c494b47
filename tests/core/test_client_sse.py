"""The SSE client core without sockets: recorded responses fed in any split, every framing."""

from __future__ import annotations

import gzip
import itertools
from urllib.parse import parse_qsl, urlsplit

import h11
import pytest

from core.client.events import Closed, Done, Failed, FirstByte, FirstEvent, Opened, Token
from core.client.sse import HttpResponseReader, SSEClient
from core.formats import HttpRequest, get_format
from core.schedule import StreamParams, StreamPlan, done_summary

NATIVE = get_format("native")
PARAMS = StreamParams(seed=2, tokens=6, ttft_ms=0, gap_ms=0, stream=7)
PLAN = StreamPlan.build(PARAMS)


def _events() -> list[bytes]:
    w = NATIVE.sse_writer(PLAN, retry_ms=3000)
    out = [w.preamble()]
    for seq in range(PLAN.n):
        out.append(w.token(seq, 100 + seq, PLAN.ids[seq]))
        if seq == 2:
            assert w.heartbeat is not None
            out.append(w.heartbeat)
    return [*out, w.done()]


def chunked(events: list[bytes]) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    head += b"Transfer-Encoding: chunked\r\n\r\n"
    return head + b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"


def run(client: SSEClient, wire: bytes, cuts: list[int], eof: bool = False) -> list:
    """Feed `wire` cut at `cuts`; read i is stamped i + 1."""
    out: list = []
    bounds = [0, *cuts, len(wire)]
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        client.feed(i + 1, wire[a:b], out)
    if eof:
        client.feed(len(bounds), b"", out)
    return out


def fresh() -> SSEClient:
    c = SSEClient(NATIVE, "127.0.0.1:1", "")
    c.request(PARAMS)
    return c


def kinds(out: list) -> list[str]:
    return [type(e).__name__ for e in out]


def test_whole_response() -> None:
    c = fresh()
    out = run(c, chunked(_events()), [])
    assert kinds(out) == ["Opened", "FirstByte", "FirstEvent"] + ["Token"] * PLAN.n + ["Done"]
    assert out[:3] == [Opened(1, 200), FirstByte(1), FirstEvent(1)]
    assert [e.text for e in out if isinstance(e, Token)] == PLAN.texts()
    assert out[-1] == Done(1, PLAN.n, done_summary(PLAN.texts())["sha256"])
    assert c.ended and c.complete and c.reusable and c.drop is None and c.done
    assert c.comments == 1
    assert c.take_bytes() == sum(len(e) for e in _events()) and c.take_bytes() == 0


def test_every_two_way_split_gives_the_same_events_stamped_by_the_completing_read() -> None:
    wire = chunked(_events())
    want = run(fresh(), wire, [])
    token_ends = []  # offset just past each token's last byte in `wire`
    pos = wire.index(b"\r\n\r\n") + 4
    for e in _events():
        pos += len(b"%x\r\n" % len(e)) + len(e)
        if e.startswith(b"id: "):
            token_ends.append(pos - 1)  # the blank line's last LF
        pos += 2
    for cut in range(1, len(wire)):
        c = fresh()
        got = run(c, wire, [cut])
        assert kinds(got) == kinds(want), cut
        assert [(e.seq, e.text) for e in got if isinstance(e, Token)] == [
            (e.seq, e.text) for e in want if isinstance(e, Token)
        ]
        stamps = [e.t_ns for e in got if isinstance(e, Token)]
        assert stamps == [1 if end < cut else 2 for end in token_ends], cut
        assert c.ended and c.reusable, cut


def test_one_byte_at_a_time() -> None:
    wire = chunked(_events())
    c = fresh()
    got = run(c, wire, list(range(1, len(wire))))
    assert [e.seq for e in got if isinstance(e, Token)] == list(range(PLAN.n))
    assert isinstance(got[-1], Done) and c.reusable
    assert c.t_head_ns is not None and c.t_first_byte_ns is not None
    assert c.t_head_ns <= c.t_first_byte_ns <= c.t_first_event_ns  # type: ignore[operator]
    # native's first body bytes are its retry field, which is not an event
    firsts = {type(e): e.t_ns for e in got if isinstance(e, FirstByte | FirstEvent)}
    assert firsts == {FirstByte: c.t_first_byte_ns, FirstEvent: c.t_first_event_ns}
    assert c.t_first_event_ns > c.t_first_byte_ns


def test_content_length_and_until_close_bodies() -> None:
    body = b"".join(_events())
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    c = fresh()
    out = run(c, head + body, [len(head) + 10])
    assert isinstance(out[-1], Done) and c.reusable
    c = fresh()
    out = run(c, b"HTTP/1.0 200 OK\r\n\r\n" + body, [30], eof=True)
    assert isinstance(out[-1], Done) and c.complete
    assert c.drop == ("client", "not keep-alive")  # close-delimited: never reused


def test_gzip_body_is_inflated_as_it_arrives() -> None:
    body = gzip.compress(b"".join(_events()))
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body)
    c = fresh()
    out = run(c, head + body, [len(head) + 5, len(head) + len(body) // 2])
    assert [e.seq for e in out if isinstance(e, Token)] == list(range(PLAN.n))
    assert c.headers["content-encoding"] == "gzip" and c.done


def test_keep_alive_carries_the_next_response() -> None:
    c = fresh()
    run(c, chunked(_events()), [])
    assert c.reusable
    c.request(PARAMS, resume_after=2)
    assert not c.reusable and not c.ended
    out = run(c, chunked(_events()), [7])
    assert isinstance(out[-1], Done) and c.reusable


def test_error_status_is_failed_with_the_message() -> None:
    body = b'{"error":"must be >= 1","field":"tokens"}'
    head = b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n" % len(body)
    c = fresh()
    out = run(c, head + body, [len(head) + 5])
    assert out == [Opened(1, 400), Failed(2, 400, "HTTP 400: tokens: must be >= 1")]
    assert c.status == 400 and c.reusable


def test_cut_mid_body_is_closed_by_the_server() -> None:
    wire = chunked(_events())
    cut = len(wire) // 2
    c = fresh()
    out = run(c, wire[:cut], [], eof=True)
    assert out[-1] == Closed(2, "server", "connection closed")
    assert c.drop == ("server", "connection closed") and not c.complete


def test_response_that_ends_without_done() -> None:
    wire = chunked(_events()[:-1])
    c = fresh()
    out = run(c, wire, [])
    assert out[-1] == Closed(1, "server", "response ended without done")
    assert c.reusable  # the response ended properly: the connection is fine


def test_bad_framing_drops_the_connection() -> None:
    wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    c = fresh()
    out = run(c, wire, [])
    assert isinstance(out[-1], Closed) and out[-1].reason.startswith("connection closed:")
    assert c.drop is not None and c.drop[0] == "server" and c.ended


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_request_bytes_parse_back_to_the_stream(method: str) -> None:
    c = SSEClient(NATIVE, "h:80", "/b", method=method, extra_headers=(("X-T", "1"),))
    server = h11.Connection(h11.SERVER)
    server.receive_data(c.request(PARAMS, resume_after=3))
    req = server.next_event()
    assert isinstance(req, h11.Request) and req.method == method.encode()
    headers = dict(req.headers)
    assert headers[b"host"] == b"h:80" and headers[b"last-event-id"] == b"3"
    assert headers[b"x-t"] == b"1" and headers[b"accept"] == b"text/event-stream"
    body = b""
    while not isinstance(ev := server.next_event(), h11.EndOfMessage):
        body += ev.data  # type: ignore[union-attr]
    query = dict(parse_qsl(urlsplit(req.target.decode()).query))
    assert NATIVE.sse_params(query, body if method == "POST" else None) == PARAMS


def test_plain_exchange_reader() -> None:
    ex = HttpResponseReader(HttpRequest("POST", "/v1/streams/7/cancel"), "h:1")
    assert ex.data.startswith(b"POST /v1/streams/7/cancel HTTP/1.1\r\nHost: h:1\r\n")
    assert b"connection: close" in ex.data.lower()
    ex.feed(5, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    assert ex.ended and ex.status == 200 and ex.t_head_ns == 5
