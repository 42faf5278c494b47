"""The load client's side of `ssevsws perf` (bench.perf.client): one client process holds
2,000 mostly idle streams with heartbeats on (issue 17's 10,000 scaled down for CI time),
and the per-token / per-stream solve and the concurrency count are right on known inputs."""

from __future__ import annotations

import os

import pytest

from bench.perf.client import _solve, hold
from bench.perf.cmd import SERVER_ARGV
from bench.perf.procs import start_server
from core.accounting import StreamAccount, StreamLabels
from loadtests.memsink import concurrent_max

HOLD_N = 2000


@pytest.mark.timeout(120)
@pytest.mark.parametrize("proto", ["sse", "ws"])
def test_one_client_process_holds_2000_idle_streams(proto, tmp_path):
    """2,000 streams open at once in one `loadtests.drive` process (the transports and
    session script Locust runs), a token a second for 4 s, the server's heartbeat every 2 s
    (aiohttp's WS server drops a connection whose pong is 1 s late: a client that cannot
    answer in time loses connections here): every stream is held to its end with every
    token, on 2,000 connections."""
    cpus = set(os.sched_getaffinity(0))
    srv = start_server(proto, [*SERVER_ARGV[proto][0], "--heartbeat-s", "2"], cpus, tmp_path)
    try:
        r = hold(proto, srv.url, srv.pid, cpus, n=HOLD_N, token_every_s=1.0, hold_s=4.0,
                 limit_s=90.0)  # fmt: skip
    finally:
        srv.stop()
    assert r["errors"] == [] and r["outcomes"] == {"ok": HOLD_N}, r
    assert r["connections"] == HOLD_N and r["lost"] == 0
    assert r["tokens_received"] == HOLD_N * r["tokens_per_stream"]
    # all 2,000 in flight at the same time, by the client's own stamps ...
    assert r["streams_concurrent_max"] == HOLD_N
    # ... and by the process: its descriptors peaked above one per connection
    assert r["samples"] >= 3 and r["client_kib_per_conn"] is not None
    if proto == "sse":  # the server wrote keepalive comments to the held streams
        assert r["server_heartbeats_sent"] >= HOLD_N, r


def test_solve_gives_cost_per_token_and_per_stream():
    """Two runs made of a known 3 µs a token and 150 µs a stream give those back."""
    runs = [
        {"tokens": 50_000, "streams": 200, "cpu_s": (50_000 * 3 + 200 * 150) / 1e6},
        {"tokens": 2_000, "streams": 1_000, "cpu_s": (2_000 * 3 + 1_000 * 150) / 1e6},
    ]
    per_token, per_stream = _solve(runs, "cpu_s")
    assert per_token == pytest.approx(3.0) and per_stream == pytest.approx(150.0)
    same_shape = [runs[0], {**runs[0], "cpu_s": 1.0}]  # no second equation: no answer
    assert _solve(same_shape, "cpu_s") == (None, None)


def _stream(i: int, t_send: int | None, t_end: int | None) -> StreamAccount:
    labels = StreamLabels(f"u{i}", "p", "sse", "w", i, 0, 0, str(i), 1, 2)
    a = StreamAccount(labels)
    a.t_send_ns, a.t_end_ns = t_send, t_end
    return a


def test_concurrent_max_counts_streams_in_flight_together():
    # [0,10) [5,15) [9,20) overlap at 9; [20,30) starts as the third ends; one never sent
    streams = [_stream(0, 0, 10), _stream(1, 5, 15), _stream(2, 9, 20), _stream(3, 20, 30),
               _stream(4, None, None)]  # fmt: skip
    assert concurrent_max(streams) == 3
    assert concurrent_max(streams[3:]) == 1 and concurrent_max([]) == 0
