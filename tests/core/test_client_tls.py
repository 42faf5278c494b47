"""The client core's sans-I/O TLS layer (core.client.tls) against a server-side SSLObject in
memory — no socket: verification on by default (a self-signed server refused without its
certificate, accepted with it as the CA file or with insecure), a stream of SSE bytes split
at every byte offset decrypts to the same bytes with each read's stamp, EOF and
close_notify end it."""

from __future__ import annotations

import contextlib
import ssl
from pathlib import Path

import pytest

from core.client.events import Done, Token
from core.client.sse import SSEClient
from core.client.tls import TLSClient, TLSError, TLSSettings, client_context, is_tls_url
from core.client.urls import parse_url
from core.formats import get_format
from core.schedule import StreamParams, StreamPlan
from core.tlscert import describe_cert, make_self_signed_cert, server_context

NATIVE = get_format("native")


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_self_signed_cert(tmp_path_factory.mktemp("tls"))


class MemoryServer:
    """The server end of one TLS connection, in memory."""

    def __init__(self, cert: tuple[Path, Path]) -> None:
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = server_context(*cert).wrap_bio(self._in, self._out, server_side=True)

    def receive(self, data: bytes) -> bytes:
        """Client bytes in → what the server sends back (handshake flights, records)."""
        self._in.write(data)
        with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLError):
            self.obj.do_handshake()
        return self._out.read()

    def send(self, plaintext: bytes) -> bytes:
        self.obj.write(plaintext)
        return self._out.read()

    def close_notify(self) -> bytes:
        with contextlib.suppress(ssl.SSLWantReadError):
            self.obj.unwrap()
        return self._out.read()

    def read(self, data: bytes) -> bytes:
        self._in.write(data)
        try:
            return self.obj.read(65536)
        except ssl.SSLWantReadError:
            return b""


def connect(client: TLSClient, server: MemoryServer) -> None:
    """Run the handshake through memory (TLSError raised as the client sees it); what the
    server sends after it (TLS 1.3 session tickets) reaches the client as no plaintext."""
    out = client.start()
    while out:
        back = server.receive(out)
        if client.established:
            assert client.decrypt(back) == b"" if back else True
            return
        out = client.receive_handshake(back)


def test_self_signed_refused_without_its_certificate(cert) -> None:
    client = TLSClient(client_context(), "127.0.0.1")
    with pytest.raises(TLSError, match="certificate verify failed"):
        connect(client, MemoryServer(cert))
    assert not client.established


def test_self_signed_accepted_with_ca_file_or_insecure(cert) -> None:
    for settings in (TLSSettings(ca_file=str(cert[0])), TLSSettings(insecure=True)):
        client = TLSClient(settings.context(), "127.0.0.1")
        connect(client, MemoryServer(cert))
        assert client.established and client.version in ("TLSv1.2", "TLSv1.3")
        assert client.resumed is False
    assert TLSSettings(insecure=True).describe()["verify"] is False


def test_name_checked_against_the_certificate(cert) -> None:
    """The certificate names localhost / 127.0.0.1 / ::1, not another host."""
    client = TLSClient(client_context(ca_file=str(cert[0])), "example.org")
    with pytest.raises(TLSError, match="certificate verify failed"):
        connect(client, MemoryServer(cert))
    ok = TLSClient(client_context(ca_file=str(cert[0])), "localhost")
    connect(ok, MemoryServer(cert))
    assert ok.established


def test_eof_during_handshake_is_a_tls_error(cert) -> None:
    client = TLSClient(client_context(ca_file=str(cert[0])), "127.0.0.1")
    client.start()
    with pytest.raises(TLSError, match="closed"):
        client.receive_handshake(b"")


def test_sse_stream_split_at_every_offset_keeps_each_reads_stamp(cert) -> None:
    """The server's TLS records of one SSE response, cut at every byte offset into two
    reads: the client core sees exactly the plaintext bytes, the tokens completed by the
    second read carry its stamp, and no read that completes no record yields bytes."""
    request = b"GET /v1/stream HTTP/1.1\r\nHost: x\r\n\r\n"
    plan = StreamPlan.build(StreamParams(seed=3, tokens=4, ttft_ms=0, gap_ms=0, stream=1))
    writer = NATIVE.sse_writer(plan, retry_ms=0)
    events = [writer.token(i, 1000 + i, plan.ids[i]) for i in range(plan.n)] + [writer.done()]
    body = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    plain = head + body
    context = client_context(ca_file=str(cert[0]))
    cut, n_wire, first_record = 0, 1, 0
    while cut <= n_wire:  # every offset of the ciphertext (a fresh connection each: new keys)
        c = TLSClient(context, "127.0.0.1")
        s = MemoryServer(cert)
        connect(c, s)
        assert s.read(c.encrypt(request)) == request
        # one TLS record per HTTP piece, as a server writes them
        w = s.send(head) + b"".join(s.send(b"%x\r\n%s\r\n" % (len(e), e)) for e in events)
        w += s.send(b"0\r\n\r\n")
        n_wire, first_record = len(w), server_record_length(w)
        sse = SSEClient(NATIVE, "x")
        sse.request(plan.params)
        out: list = []
        got = b""
        for t, part in ((1, w[:cut]), (2, w[cut:])):
            pt = c.decrypt(part) if part else b""
            got += pt
            if pt:
                sse.feed(t, pt, out)
        assert got == plain
        tokens = [e for e in out if isinstance(e, Token)]
        assert [x.text for x in tokens] == plan.texts()
        assert isinstance(out[-1], Done)
        if cut < first_record:  # the first read completed no record: everything is read 2
            assert {x.t_ns for x in tokens} == {2}
        elif cut == n_wire:
            assert {x.t_ns for x in tokens} == {1}
        cut += 1
    assert 0 < first_record < n_wire


def server_record_length(wire: bytes) -> int:
    """Bytes of the first TLS record in `wire` (5-byte header + length)."""
    return 5 + int.from_bytes(wire[3:5], "big")


def test_close_notify_and_socket_eof_end_the_stream(cert) -> None:
    client = TLSClient(client_context(ca_file=str(cert[0])), "127.0.0.1")
    server = MemoryServer(cert)
    connect(client, server)
    server.read(client.encrypt(b"x"))
    assert client.decrypt(server.send(b"hello")) == b"hello" and not client.eof
    assert client.decrypt(server.close_notify()) == b"" and client.eof
    cut = TLSClient(client_context(ca_file=str(cert[0])), "127.0.0.1")
    connect(cut, MemoryServer(cert))
    assert cut.decrypt(b"") == b"" and cut.eof  # EOF without close_notify: EOF all the same


def test_urls_and_certificate_facts(cert) -> None:
    ep = parse_url("https://api.example.com/v1/responses")
    assert (ep.host, ep.port, ep.tls, ep.path, ep.authority) == (
        "api.example.com",
        443,
        True,
        "/v1/responses",
        "api.example.com",
    )
    assert ep.stream_path("/v1/stream") == "/v1/responses" and ep.base("/v1/stream") == ""
    bare = parse_url("http://127.0.0.1:8081")
    assert bare.stream_path("/v1/stream") == "/v1/stream" and bare.authority == "127.0.0.1:8081"
    assert parse_url("http://h/pre/v1/stream").base("/v1/stream") == "/pre"
    assert parse_url("wss://[::1]:9/v1/ws").authority == "[::1]:9"
    assert is_tls_url("wss://x") and not is_tls_url("ws://x")
    with pytest.raises(ValueError, match="expected an http"):
        parse_url("ftp://x")
    facts = describe_cert(cert[0])
    assert len(facts["sha256"]) == 64 and (cert[1].stat().st_mode & 0o077) == 0
