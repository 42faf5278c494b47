"""core.client.http1 without sockets: response heads as h11 writes and reads them, in any
split; malformed heads refused; requests h11 parses back."""

from __future__ import annotations

import h11
import pytest

from core.client.http1 import MAX_HEAD, HeadReader, request_bytes
from core.formats import HttpRequest

RESPONSES = [
    (200, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")], b"1.1"),
    (200, [("Content-Length", "12"), ("X-Cancel-Secret", "a b\tc")], b"1.1"),
    (400, [("Content-Type", "application/json"), ("Content-Length", "2")], b"1.1"),
    (503, [("Retry-After", "1"), ("Content-Length", "0")], b"1.1"),
    (200, [("Content-Type", "text/event-stream")], b"1.0"),
]


def h11_head(status: int, headers: list[tuple[str, str]], version: bytes) -> bytes:
    if version != b"1.1":  # h11 writes only HTTP/1.1 (it reads older ones)
        head = b"HTTP/%s %d X\r\n" % (version, status)
        return (
            head + b"".join(b"%s: %s\r\n" % (n.encode(), v.encode()) for n, v in headers) + b"\r\n"
        )
    server = h11.Connection(h11.SERVER)
    server.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    server.next_event()
    return server.send(h11.Response(status_code=status, headers=headers, http_version=version))


def h11_reads(wire: bytes) -> tuple[int, str, list[tuple[bytes, bytes]]]:
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "h")]))
    client.send(h11.EndOfMessage())
    client.receive_data(wire)
    ev = client.next_event()
    assert isinstance(ev, h11.Response)
    return ev.status_code, ev.http_version.decode(), list(ev.headers)


@pytest.mark.parametrize(("status", "headers", "version"), RESPONSES)
def test_heads_read_as_h11_reads_them_in_any_split(
    status: int, headers: list[tuple[str, str]], version: bytes
) -> None:
    wire = h11_head(status, headers, version) + b"body!"
    want = h11_reads(wire)
    for cut in range(len(wire) + 1):
        reader = HeadReader()
        got = reader.feed(wire[:cut])
        rest = wire[cut:]
        if got is None:
            got, rest = reader.feed(rest), b""
        assert got is not None, cut
        assert got[:3] == want and got[3] + rest == b"body!", cut


def test_interim_heads_are_skipped_and_lf_only_lines_read() -> None:
    wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\nContent-Length: 0\n\nX"
    assert HeadReader().feed(wire) == (200, "1.1", [(b"content-length", b"0")], b"X")


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nNo-Colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nName : v\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: b\r\n  folded\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: b\x00c\r\n\r\n",
    ],
)
def test_malformed_heads_are_refused(head: bytes) -> None:
    with pytest.raises(ValueError):
        HeadReader().feed(head)


def test_an_endless_head_is_refused() -> None:
    reader = HeadReader()
    assert reader.feed(b"HTTP/1.1 200 OK\r\n") is None
    with pytest.raises(ValueError, match="over"):
        for _ in range(MAX_HEAD // 1000 + 2):
            reader.feed(b"X-Pad: " + b"p" * 990 + b"\r\n")


def test_requests_parse_back_with_h11() -> None:
    req = HttpRequest("POST", "/v1/s?x=1", (("Accept", "text/event-stream"),), b'{"a":1}')
    server = h11.Connection(h11.SERVER)
    server.receive_data(request_bytes(req, "h:80", user_agent="ua", close=True))
    ev = server.next_event()
    assert isinstance(ev, h11.Request) and ev.method == b"POST" and ev.target == b"/v1/s?x=1"
    assert list(ev.headers) == [
        (b"host", b"h:80"),
        (b"accept", b"text/event-stream"),
        (b"user-agent", b"ua"),
        (b"content-length", b"7"),
        (b"connection", b"close"),
    ]
    data = server.next_event()
    assert isinstance(data, h11.Data) and data.data == b'{"a":1}'


@pytest.mark.parametrize(
    "req",
    [
        HttpRequest("GE T", "/"),
        HttpRequest("GET", "/a b"),
        HttpRequest("GET", "/", (("Bad Name", "v"),)),
        HttpRequest("GET", "/", (("X", "a\r\nInjected: 1"),)),
    ],
)
def test_bad_requests_are_refused(req: HttpRequest) -> None:
    with pytest.raises(ValueError):
        request_bytes(req, "h:80")
