"""TLS both ways on loopback: the reference servers serve https / wss with a self-signed
certificate, the Locust transports (the same code Locust runs) verify it by default —
refused without the certificate, accepted with it as the CA file or with insecure — and
record each connection's TLS handshake; keep-alive reuse pays no second handshake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.accounting import ERROR, OK
from core.client.tls import TLSSettings
from core.scenario import SessionSpec, StreamSpec
from core.tlscert import make_self_signed_cert

from .conftest import drive, run_user, start_server, stop_server

ARMS = ("sse", "ws", "ws-websockets")
FAST = StreamSpec(tokens=30, ttft_ms=10, gap_ms=2)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_urls(cert: tuple[Path, Path]) -> Iterator[dict[str, str]]:
    procs, urls = [], {}
    try:
        for arm in ARMS:
            args = ["-m", "servers", arm, "--port", "{port}", "--tls-cert", str(cert[0])]
            proc, port = start_server([*args, "--tls-key", str(cert[1])])
            procs.append(proc)
            assert proc.line.startswith(f"listening on https://127.0.0.1:{port}")
            urls[arm] = f"{'https' if arm == 'sse' else 'wss'}://127.0.0.1:{port}"
        yield urls
    finally:
        for p in procs:
            stop_server(p)


@pytest.mark.parametrize("arm", ARMS)
def test_verified_tls_streams_and_records_the_handshake(tls_urls, cert, arm: str) -> None:
    accts, sink = run_user(
        arm,
        tls_urls[arm],
        stream=FAST,
        session=SessionSpec(turns=2, think_s=0.05),
        tls=TLSSettings(ca_file=str(cert[0])),
    )
    assert [a.outcome for a in accts] == [OK, OK]
    assert all(a.checksum_ok and a.n_lost == 0 for a in accts)
    assert [a.reused_conn for a in accts] == [False, True]  # one handshake for both turns
    (c,) = sink.connections
    assert c.tls_version in ("TLSv1.2", "TLSv1.3") and c.tls_resumed is False
    assert c.t_connect_ns <= c.t_tcp_ns <= c.t_tls_ns <= c.t_open_ns
    # the connection's bytes are ciphertext: more than the application bytes it carried
    assert c.bytes_in > sum(a.bytes_in for a in accts)


@pytest.mark.parametrize("arm", ARMS)
def test_self_signed_refused_by_default_accepted_insecure(tls_urls, arm: str) -> None:
    (bad,), sink = run_user(arm, tls_urls[arm], stream=FAST)
    assert bad.outcome == ERROR and "certificate verify failed" in (bad.error or "")
    (c,) = sink.connections
    assert c.closed_by == "error" and c.t_tls_ns is None
    (ok,), sink = run_user(arm, tls_urls[arm], stream=FAST, tls=TLSSettings(insecure=True))
    assert ok.outcome == OK and ok.checksum_ok


def test_plain_client_on_a_tls_port_is_an_error_not_a_hang(tls_urls) -> None:
    url = tls_urls["sse"].replace("https://", "http://")
    (a,), _ = run_user("sse", url, stream=FAST)
    assert a.outcome != OK


def test_server_makes_its_own_certificate(tmp_path: Path) -> None:
    """`--tls-self-signed`: the listening line names the certificate; a client trusting it
    streams the native texts (checksum)."""
    proc, port = start_server(["-m", "servers", "sse", "--port", "{port}", "--tls-self-signed"])
    try:
        (line,) = [x for x in proc.output().splitlines() if x.startswith("listening on")]
        assert line.startswith(f"listening on https://127.0.0.1:{port}") and "tls=" in line
        cert = line.split("tls=", 1)[1].rstrip(")").strip()
        assert Path(cert).is_file()
        (a,), sink = run_user(
            "sse", f"https://127.0.0.1:{port}", stream=FAST, tls=TLSSettings(ca_file=cert)
        )
        assert a.outcome == OK and a.checksum_ok
        assert sink.connections[0].t_tls_ns is not None
    finally:
        stop_server(proc)


@pytest.mark.parametrize("arm", ["sse", "ws"])
def test_many_users_over_tls_under_gevent(tls_urls, cert, arm: str) -> None:
    """loadtests.drive (gevent monkey-patched, the Locust read path): 20 users, every token
    of every stream once, one handshake per connection."""
    out = drive(
        arm,
        tls_urls[arm],
        "--users", "20", "--tokens", "40", "--ttft-ms", "20", "--gap-ms", "5",
        "--turns", "2", "--ca-file", str(cert[0]), "--rows",
    )  # fmt: skip
    assert out["outcomes"] == {"ok": 40} and out["lost"] == 0 and out["checksum_ok"] == 40
    conns = out["conn_rows"]
    assert len(conns) == 20 and all(c["t_tls_ns"] and c["tls_version"] for c in conns)


def test_prepared_tls_connection_is_used_despite_session_tickets(tls_urls, cert) -> None:
    """TLS 1.3 session tickets arrive after the handshake and sit unread until the first
    request: the keep-alive check must not take them for a closed connection (the user's
    first stream goes on the connection prepare() made — one connection, one handshake)."""
    from core.schedule import StreamParams
    from loadtests.memsink import MemorySink
    from loadtests.sse_transport import SSETransport
    from loadtests.transport import TransportContext

    sink = MemorySink()
    ctx = TransportContext("t", "sse", "test", 0, "t/0.0", sink)
    tr = SSETransport(ctx, tls_urls["sse"], tls=TLSSettings(ca_file=str(cert[0])))
    tr.prepare()
    import time

    time.sleep(0.1)  # the tickets are in the socket now
    started = tr.start(StreamParams(seed=1, tokens=3, ttft_ms=0, gap_ms=0, stream="p"))
    assert started.reused is False
    while tr.poll(time.monotonic_ns() + 5 * 10**9):
        pass
    tr.close()
    assert len(sink.connections) == 1 and sink.connections[0].streams == 1
