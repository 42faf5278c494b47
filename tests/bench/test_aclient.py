"""The asyncio shell (bench.aclient) and the perf load client that uses it, against the
reference servers: every token of a known schedule is counted once, through the client
core, with its server stamp; ends, errors and keep-alive reuse are reported."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.aclient import AsyncConnection, ClientError
from bench.perf.flood import State, hold, load_stream
from bench.perf.procs import start_server
from core.client.events import Closed, Done, Failed, Opened, StreamEvent, Token
from core.schedule import StreamParams, StreamPlan, done_summary

pytestmark = pytest.mark.timeout(120)
CPUS = set(os.sched_getaffinity(0))


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    logs = tmp_path_factory.mktemp("aclient")
    started = []
    try:
        for kind in ("sse", "ws"):
            srv = start_server(kind, ["-m", "servers", kind, "--heartbeat-s", "0.2"], CPUS, logs)
            started.append(srv)
        yield {s.name: s.url for s in started}
    finally:
        for s in started:
            s.stop()


def _run(coro, loop: str = "asyncio"):  # type: ignore[no-untyped-def]
    if loop == "uvloop":  # what the perf load client runs on
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


@pytest.mark.parametrize("proto", ["sse", "ws"])
def test_two_streams_on_one_connection_every_token_once(servers: dict[str, str], proto) -> None:
    params = [StreamParams(seed=5, tokens=30, ttft_ms=20, gap_ms=2, stream=f"a{k}") for k in (0, 1)]
    reads: list[tuple[int, int]] = []

    async def main() -> list[list[StreamEvent]]:
        conn = await AsyncConnection.connect(
            servers[proto], proto, on_read=lambda t, n: reads.append((t, n))
        )
        got: list[list[StreamEvent]] = []
        for p in params:
            events: list[StreamEvent] = []
            t_send = conn.start(p, events.extend)
            assert await conn.wait_end(10)
            assert conn.reusable and isinstance(conn.end, Done)
            assert all(e.t_ns >= t_send for e in events)
            got.append(events)
        await conn.aclose()
        return got

    got = _run(main())
    for p, events in zip(params, got, strict=True):
        plan = StreamPlan.build(p)
        tokens = [e for e in events if isinstance(e, Token)]
        assert [t.seq for t in tokens] == list(range(plan.n))
        assert [t.text for t in tokens] == plan.texts()
        assert all(t.t_server_ns and t.t_server_ns <= t.t_ns for t in tokens)
        assert {t.t_ns for t in tokens} <= {t for t, _ in reads}  # stamped at a read
        done = [e for e in events if isinstance(e, Done)]
        assert done == [Done(done[0].t_ns, plan.n, done_summary(plan.texts())["sha256"])]
        assert isinstance(events[0], Opened) == (proto == "sse")


def test_sse_error_status_and_ws_policy_close(servers: dict[str, str]) -> None:
    bad = StreamParams(seed=1, tokens=5, pause_at=9, stream="bad")  # pause_at >= tokens

    async def main() -> tuple[StreamEvent | None, StreamEvent | None]:
        ends = []
        for proto in ("sse", "ws"):
            conn = await AsyncConnection.connect(servers[proto], proto)
            conn.start(bad)
            assert await conn.wait_end(10)
            ends.append(conn.end)
            conn.abort()
        return ends[0], ends[1]

    sse_end, ws_end = _run(main())
    assert isinstance(sse_end, Failed) and sse_end.status == 400 and "pause_at" in sse_end.error
    # a bad start message is a protocol violation: close 1008 with the reason
    assert isinstance(ws_end, Closed) and ws_end.reason.startswith("closed 1008 bad pause_at")


def test_connect_refused_is_a_client_error() -> None:
    async def main() -> None:
        await AsyncConnection.connect("http://127.0.0.1:9", "sse", timeout_s=2)

    with pytest.raises(ClientError, match=r"connect 127\.0\.0\.1:9"):
        _run(main())


def test_server_gone_mid_stream_is_a_drop(servers: dict[str, str]) -> None:
    p = StreamParams(seed=1, tokens=50, ttft_ms=0, gap_ms=1, drop_after=10, stream="drop")

    async def main() -> list[StreamEvent | None]:
        ends = []
        for proto in ("sse", "ws"):
            conn = await AsyncConnection.connect(servers[proto], proto)
            events: list[StreamEvent] = []
            conn.start(p, events.extend)
            assert await conn.wait_end(10)
            assert sum(isinstance(e, Token) for e in events) == 10 and not conn.reusable
            ends.append(conn.end)
        return ends

    assert all(isinstance(e, Closed) and e.by == "server" for e in _run(main()))


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("proto", ["sse", "ws"])
def test_flood_counts_every_token_of_a_known_schedule(
    servers: dict[str, str], proto: str, loop: str
) -> None:
    spec = {"proto": proto, "url": servers[proto], "tokens": 25, "gap_ms": 1.0, "seed": 3}
    st = State()

    async def main() -> None:
        await asyncio.gather(*(load_stream(spec, st, i, repeat=False) for i in range(6)))

    _run(main(), loop)
    assert st.errors == []
    assert st.total == 6 * 25 and st.started == 6 and st.streams_done == 6
    assert len(st.spans) == 6 and all(b >= a > 0 for a, b in st.spans)


def test_flood_replaces_streams_on_new_connections_when_the_server_closes(
    tmp_path: Path,
) -> None:
    """The raw baseline closes after every stream (a close-delimited body): the flood loop
    reconnects, on uvloop as in perf, and loses no stream."""
    srv = start_server("raw", ["-m", "servers.baselines", "raw"], CPUS, tmp_path)
    spec = {"proto": "sse", "url": srv.url, "tokens": 20, "seed": 1}
    st = State()

    async def main() -> None:
        tasks = [asyncio.create_task(load_stream(spec, st, i, repeat=True)) for i in range(2)]
        await asyncio.sleep(0.5)
        st.stop = True
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        _run(main(), "uvloop")
    finally:
        srv.stop()
    assert st.errors == [] and st.streams_done >= 6
    assert st.total >= 20 * st.streams_done  # every finished stream counted whole


@pytest.mark.parametrize("proto", ["sse", "ws"])
def test_idle_hold_keeps_connections_through_heartbeats(
    servers: dict[str, str], proto: str
) -> None:
    spec = {"proto": proto, "url": servers[proto], "tokens": 1, "ttft_ms": 600_000, "gap_ms": 0}
    st = State()

    async def main() -> None:
        release = asyncio.Event()
        opened = [asyncio.Event() for _ in range(5)]
        tasks = [asyncio.create_task(hold(spec, st, i, opened[i], release)) for i in range(5)]
        await asyncio.gather(*(e.wait() for e in opened))
        await asyncio.sleep(0.7)  # > 3 heartbeat intervals: comments / pings answered
        assert not any(t.done() for t in tasks)
        release.set()
        await asyncio.gather(*tasks)

    _run(main(), "uvloop")
    assert st.errors == [] and st.opened == 5 and len(st.connect_ms) == 5


def test_paths_are_the_formats(tmp_path: Path) -> None:
    # a URL with a path is requested as given; a bare scheme://host:port gets the format's
    async def main(path: str) -> str:
        _CAPTURED.clear()
        srv = await asyncio.start_server(_capture, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        conn = await AsyncConnection.connect(f"http://127.0.0.1:{port}{path}", "sse")
        conn.start(StreamParams(seed=1, tokens=1, stream=1))
        await conn.wait_end(5)
        srv.close()
        return _CAPTURED[0]

    assert _run(main("")).startswith("GET /v1/stream?seed=1&tokens=1&")
    assert _run(main("/base/")).startswith("GET /base?seed=1&tokens=1&")
    assert _run(main("/api/v1/stream")).startswith("GET /api/v1/stream?seed=1&tokens=1&")


_CAPTURED: list[str] = []


async def _capture(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    _CAPTURED.append((await reader.readline()).decode())
    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    await writer.drain()
    writer.close()


@pytest.fixture(scope="module")
def tls_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], str]]:
    """The SSE and WS reference servers over TLS (a self-signed certificate) and its path."""
    from core.tlscert import make_self_signed_cert

    d = tmp_path_factory.mktemp("aclient-tls")
    cert, key = make_self_signed_cert(d)
    started = []
    try:
        for kind in ("sse", "ws"):
            tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
            started.append(start_server(kind, ["-m", "servers", kind, *tls], CPUS, d))
        urls = {s.name: s.url.replace("http://", "https://").replace("ws://", "wss://")
                for s in started}  # fmt: skip
        yield urls, str(cert)
    finally:
        for s in started:
            s.stop()


@pytest.mark.parametrize("proto", ["sse", "ws"])
def test_tls_verified_stream_and_refusal(tls_servers, proto) -> None:
    from core.client.tls import TLSSettings

    urls, cert = tls_servers
    params = StreamParams(seed=9, tokens=25, ttft_ms=10, gap_ms=2, stream="tls")
    plan = StreamPlan.build(params)

    async def main() -> list[StreamEvent]:
        with pytest.raises(ClientError, match="certificate verify failed"):
            await AsyncConnection.connect(urls[proto], proto)
        conn = await AsyncConnection.connect(urls[proto], proto, tls=TLSSettings(ca_file=cert))
        assert conn.t_connect_ns <= conn.t_tcp_ns <= conn.t_tls_ns  # type: ignore[operator]
        events: list[StreamEvent] = []
        conn.start(params, events.extend)
        assert await conn.wait_end(10)
        await conn.aclose()
        return events

    events = _run(main())
    tokens = [e for e in events if isinstance(e, Token)]
    assert [t.text for t in tokens] == plan.texts()
    assert all(t.t_server_ns and t.t_ns >= t.t_server_ns for t in tokens)
    assert (
        isinstance(events[-1], Done) and events[-1].sha256 == done_summary(plan.texts())["sha256"]
    )
