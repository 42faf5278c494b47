"""The fault proxy measured against itself: a real client and server on loopback, the proxy
as its own process (`python -m bench.faultproxy`), every expectation computed from the
profile and the schedule (never an absolute time).

Tolerances (issue 15): added latency within ±1 ms of the setting (median, measured side by
side with a direct connection), bandwidth within ±5 %, cuts / blackholes / handovers at
the scheduled instant ±5 ms, bytes unchanged both ways, FIN and RST seen as such.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench.faultproxy.__main__ import _override, proxy_command
from bench.faultproxy.profile import load_profile
from bench.faultproxy.schedule import MS, DelayLine, LossPlan, S, retransmit_after, rng
from bench.procs import spawn, wait_for_listening
from core.faultlog import FAULT_LOG, read_fault_log
from tests.bench.faultproxy_peers import (
    ECHO_REP,
    ECHO_REQ,
    TICK,
    Client,
    ServerConn,
    connect,
    seeded_bytes,
    serve,
)

REPO = Path(__file__).resolve().parents[2]
TOL_NS = 5 * MS  # instants
pytestmark = pytest.mark.timeout(60)


@contextmanager
def proxy(
    tmp_path: Path, upstream: int, sets: list[str], *, seed: int = 1
) -> Iterator[tuple[int, Path, int]]:
    """The proxy on the `passthrough` profile with `--set` overrides; yields (port, log
    path, t0_ns — the schedule's origin, when it began listening, from its announcement).
    The log is complete once the block exits (the proxy is stopped first)."""
    cmd = proxy_command(
        f"127.0.0.1:{upstream}", "passthrough", tmp_path / "net", seed=seed, sets=sets
    )
    child = spawn("faultproxy", cmd, log_path=tmp_path / "proxy.log", cwd=REPO)
    try:
        _, port = wait_for_listening(child, timeout_s=20)
        t0 = int(re.search(r"t0_ns=(\d+)", (tmp_path / "proxy.log").read_text())[1])
        yield port, tmp_path / "net" / FAULT_LOG, t0
    finally:
        child.stop(grace_s=5)


def events(log: Path, ev: str) -> list[dict]:
    return [r for r in read_fault_log(log) if r["ev"] == ev]


def one_way_delays(client: Client) -> tuple[list[int], list[int]]:
    """(up, down) one-way delays of every echoed frame."""
    up, down = [], []
    for t_recv, frame in client.frames(ECHO_REP.size):
        _, t_sent, t_srv_recv, t_srv_send = ECHO_REP.unpack(frame)
        up.append(t_srv_recv - t_sent)
        down.append(t_recv - t_srv_send)
    return up, down


async def echo_side_by_side(direct: int, proxied: int, frames: int, gap_ms: float):
    a, b = await connect(direct, "echo"), await connect(proxied, "echo")
    await asyncio.sleep(0.05)
    for seq in range(frames):
        for c in (a, b):
            c.transport.write(ECHO_REQ.pack(seq, time.monotonic_ns()))
        await asyncio.sleep(gap_ms / 1000)
    await asyncio.sleep(0.3)
    return one_way_delays(a), one_way_delays(b)


def scheduled_delays(sets: list[str], direction: str, chunks: list[bytes], seed: int = 1):
    """The truth: each chunk's delay as the schedule sets it for the proxy's first
    connection (the same profile, seed and jitter draws), chunks pushed far apart."""
    profile = load_profile("passthrough", dict(_override(x) for x in sets))
    line = DelayLine(profile, direction, seed, 1)
    return [line.push(c, i * S)[0][0].release_ns - i * S for i, c in enumerate(chunks)]


@pytest.mark.parametrize("jitter_ms", [0.0, 5.0])
def test_added_latency_median_within_1ms_each_way(tmp_path: Path, jitter_ms: float) -> None:
    up_ms, down_ms, frames = 20.0, 35.0, 80
    sets = [
        f"up.latency_ms={up_ms}",
        f"down.latency_ms={down_ms}",
        f"up.jitter_ms={jitter_ms}",
        f"down.jitter_ms={jitter_ms}",
    ]

    async def main():
        server, port = await serve([])
        with proxy(tmp_path, port, sets) as (pport, _, _):
            # 25 ms apart: farther than the jitter reaches, so no frame is held behind another
            direct, through = await echo_side_by_side(port, pport, frames=frames, gap_ms=25)
        server.close()
        return direct, through

    (d_up, d_down), (p_up, p_down) = asyncio.run(main())
    assert len(p_up) == len(d_up) == frames
    # the client's first chunk is its command line, then one chunk per frame each way
    sched_up = scheduled_delays(sets, "up", [b"echo\n"] + [b"f" * ECHO_REQ.size] * frames)[1:]
    sched_down = scheduled_delays(sets, "down", [b"r" * ECHO_REP.size] * frames)
    added_up = (statistics.median(p_up) - statistics.median(d_up)) / MS
    added_down = (statistics.median(p_down) - statistics.median(d_down)) / MS
    # per frame: what the proxy added beyond the direct path, against what it was told to add
    err_up = statistics.median(
        p - s - statistics.median(d_up) for p, s in zip(p_up, sched_up, strict=True)
    )
    err_down = statistics.median(
        p - s - statistics.median(d_down) for p, s in zip(p_down, sched_down, strict=True)
    )
    print(
        f"\nlatency (jitter {jitter_ms}): added up {added_up:.3f} ms (set {up_ms}), "
        f"down {added_down:.3f} ms (set {down_ms}); median error against the schedule "
        f"up {err_up / MS:+.3f}, down {err_down / MS:+.3f} ms"
    )
    assert abs(err_up) <= 1 * MS and abs(err_down) <= 1 * MS
    if not jitter_ms:
        assert added_up == pytest.approx(up_ms, abs=1.0)
        assert added_down == pytest.approx(down_ms, abs=1.0)
    else:  # the jitter is really there, and it is the schedule's
        assert statistics.pstdev(sched_down) / MS > 0.5 * jitter_ms
        # each frame got its own draw: the per-frame error scatters far less than the jitter
        # (independent draws would scatter by ~σ·0.95); median absolute deviation, robust to
        # a frame the loaded machine held up
        errs = [p - s for p, s in zip(p_down, sched_down, strict=True)]
        mid = statistics.median(errs)
        assert statistics.median(abs(e - mid) for e in errs) < 0.2 * jitter_ms * MS


def test_bandwidth_within_5_percent_each_way(tmp_path: Path) -> None:
    down_rate, up_rate, burst = 1_000_000, 500_000, 16_384  # bytes/s, bytes
    down_n, up_n = 1_000_000, 500_000

    async def main():
        conns: list[ServerConn] = []
        server, port = await serve(conns)
        sets = [
            f"down.bandwidth_kbps={down_rate * 8 / 1000}",
            f"up.bandwidth_kbps={up_rate * 8 / 1000}",
            f"down.burst_bytes={burst}",
            f"up.burst_bytes={burst}",
        ]
        with proxy(tmp_path, port, sets) as (pport, _, _):
            bulk = await connect(pport, f"bulk {down_n} 1")
            sink = await connect(pport, f"sink {up_n}")
            sink.transport.write(seeded_bytes(up_n, 2))
            await asyncio.wait_for(asyncio.gather(bulk.closed, sink.closed), 10)
        server.close()
        return bulk, next(c for c in conns if c.command.startswith("sink"))

    bulk, sink = asyncio.run(main())
    assert len(bulk.data) == down_n and sink.received == up_n
    # the bucket starts full: the first `burst` bytes go at once, the rest at the rate
    span_down = (bulk.chunks[-1][0] - bulk.chunks[0][0]) / S
    span_up = (sink.t_last_ns - sink.t_first_ns) / S
    print(
        f"\nbandwidth: down {span_down / ((down_n - burst) / down_rate):.4f}, "
        f"up {span_up / ((up_n - burst) / up_rate):.4f} of the scheduled transfer time"
    )
    assert span_down == pytest.approx((down_n - burst) / down_rate, rel=0.05)
    assert span_up == pytest.approx((up_n - burst) / up_rate, rel=0.05)


@pytest.mark.parametrize(
    "sets",
    [
        [],
        [
            "down.latency_ms=3",
            "down.jitter_ms=2",
            "down.loss=0.01",
            "up.loss=0.01",
            "tcp.rto_ms=10",
            "down.bandwidth_kbps=200000",
            "up.bandwidth_kbps=200000",
        ],
    ],
    ids=["passthrough", "jitter-loss-bandwidth"],
)
def test_bytes_arrive_unchanged_both_ways(tmp_path: Path, sets: list[str]) -> None:
    n = 1_000_000

    async def main():
        conns: list[ServerConn] = []
        server, port = await serve(conns)
        with proxy(tmp_path, port, sets) as (pport, log, _):
            bulk = await connect(pport, f"bulk {n} 11")
            sink = await connect(pport, f"sink {n}")
            sink.transport.write(seeded_bytes(n, 12))
            await asyncio.wait_for(asyncio.gather(bulk.closed, sink.closed), 20)
        server.close()
        return bulk, next(c for c in conns if c.command.startswith("sink")), log

    bulk, sink, log = asyncio.run(main())
    assert hashlib.sha256(bulk.data).digest() == hashlib.sha256(seeded_bytes(n, 11)).digest()
    assert sink.sha.digest() == hashlib.sha256(seeded_bytes(n, 12)).digest()
    if sets:
        assert events(log, "stall")  # the faults were really on


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_cut_after_time_at_the_instant_and_seen_as_fin_or_rst(tmp_path: Path, how: str) -> None:
    after_s = 0.4

    async def main():
        conns: list[ServerConn] = []
        server, port = await serve(conns)
        with proxy(tmp_path, port, [f'cuts=[{{after_s={after_s}, how="{how}"}}]']) as (
            pport,
            log,
            _,
        ):
            client = await connect(pport, "tick 5 400 16")
            await asyncio.wait_for(client.closed, 5)
            await asyncio.sleep(0.05)
        server.close()
        return client, conns[0], log

    client, srv, log = asyncio.run(main())
    (accept,), (cut,) = events(log, "accept"), events(log, "cut")
    t_cut = accept["t_ns"] + round(after_s * S)
    assert cut["t_sched_ns"] == t_cut and abs(cut["t_ns"] - t_cut) <= TOL_NS
    assert (cut["client"], cut["server"], cut["cause"]) == (how, how, "after_s")
    seen_client = client.end.t_lost_ns if how == "rst" else client.end.t_eof_ns
    seen_server = srv.end.t_lost_ns if how == "rst" else srv.end.t_eof_ns
    assert client.end.reset is (how == "rst") and srv.end.reset is (how == "rst")
    print(
        f"\ncut {how}: client saw it {(seen_client - t_cut) / MS:+.3f} ms, server "
        f"{(seen_server - t_cut) / MS:+.3f} ms from the scheduled instant"
    )
    assert abs(seen_client - t_cut) <= TOL_NS
    assert abs(seen_server - t_cut) <= TOL_NS
    assert len(client.data) // TICK.size >= 60  # it was streaming up to the cut


def test_cut_after_bytes_delivers_exactly_that_many(tmp_path: Path) -> None:
    async def main():
        server, port = await serve([])
        with proxy(tmp_path, port, ['cuts=[{after_bytes=1000, how="fin"}]']) as (pport, log, _):
            client = await connect(pport, "tick 2 200 16")
            await asyncio.wait_for(client.closed, 5)
        server.close()
        return client, log

    client, log = asyncio.run(main())
    assert len(client.data) == 1000 and client.end.t_eof_ns is not None
    assert not client.end.reset
    (cut,) = events(log, "cut")
    assert (cut["cause"], cut["bytes_down"]) == ("after_bytes", 1000)


def test_stalls_hit_the_scheduled_bytes_for_the_scheduled_time(tmp_path: Path) -> None:
    seed, rto_ms, size = 5, 100.0, 1448  # one frame = one segment

    sets = ["down.loss=0.08", f"tcp.rto_ms={rto_ms}"]

    async def main():
        server, port = await serve([])
        with proxy(tmp_path, port, sets, seed=seed) as (pport, log, _):
            client = await connect(pport, f"tick 40 40 {size}")
            await asyncio.sleep(40 * 0.04 + 1.0)
            client.transport.close()
        server.close()
        return client, log

    client, log = asyncio.run(main())
    stalls = events(log, "stall")
    # the truth, from the schedule: conn 1's down-direction loss plan for this seed
    plan = LossPlan(0.08, 6, rng(seed, "conn", 1, "down", "loss"))
    expected = []
    while plan.next_index < 40:
        offset = int(plan.next_index) * size
        expected.append((offset, plan.take()))
    assert [(s["offset"], s["retries"]) for s in stalls] == expected and expected
    frames = client.frames(size)
    assert len(frames) == 40
    # when each frame should arrive: the schedule's delay line fed the frames as they were
    # sent (a frame behind a stalled one waits for it: a later stall can end later still)
    line = DelayLine(load_profile("passthrough", dict(_override(x) for x in sets)), "down", seed, 1)
    due = [line.push(f, TICK.unpack_from(f)[1])[0][0].release_ns for _, f in frames]
    for s in stalls:
        k = s["offset"] // size
        t_recv, frame = frames[k]
        held = due[k] - TICK.unpack_from(frame)[1]
        assert held >= rto_ms * MS * (2 ** s["retries"] - 1)  # at least its own backoff
        assert abs(t_recv - due[k]) <= TOL_NS


@pytest.mark.parametrize("recovery", ["instant", "rto"])
def test_blackhole_stops_both_ways_without_closing(tmp_path: Path, recovery: str) -> None:
    start_s, dur_s, period_ms = 0.5, 0.5, 5.0

    async def main():
        conns: list[ServerConn] = []
        server, port = await serve(conns)
        sets = [
            f"blackholes={{first_at_s={start_s}, duration_s={dur_s}, interval_s=100, "
            f'recovery="{recovery}"}}'
        ]
        with proxy(tmp_path, port, sets) as (pport, log, t0):
            ticks = await connect(pport, f"tick {period_ms} 300 16")
            await asyncio.sleep(start_s + 0.1 - (time.monotonic_ns() - t0) / S)
            late = await connect(pport, "echo")  # a new connection inside the blackhole
            late.transport.write(ECHO_REQ.pack(0, time.monotonic_ns()))
            await asyncio.sleep(start_s + dur_s + 1.5 - (time.monotonic_ns() - t0) / S)
            assert not ticks.end.t_eof_ns and not ticks.end.t_lost_ns  # never closed
            ticks.transport.close()
            late.transport.close()
        server.close()
        return t0, ticks, late, log

    t0, ticks, late, log = asyncio.run(main())
    start, end = t0 + round(start_s * S), t0 + round((start_s + dur_s) * S)
    (hole,) = [e for e in events(log, "blackhole") if e["conn"] == 1 and e["dir"] == "down"]
    assert start <= hole["t_lost_ns"] <= start + period_ms * MS + TOL_NS
    resume = (
        retransmit_after(hole["t_lost_ns"], end, 200 * MS, 120 * S) if recovery == "rto" else end
    )
    assert hole["resume_ns"] == resume
    arrivals = [t for t, _ in ticks.frames(TICK.size)]
    seqs = [TICK.unpack(f)[0] for _, f in ticks.frames(TICK.size)]
    assert seqs == list(range(len(seqs))) and len(seqs) == 300  # nothing lost or reordered
    inside = [t for t in arrivals if start + TOL_NS < t < resume - TOL_NS]
    assert not inside
    # a frame released just before the start can arrive just after it: look past TOL
    first_after = min(t for t in arrivals if t > start + TOL_NS)
    print(
        f"\nblackhole {recovery}: bytes resumed {(first_after - resume) / MS:+.3f} ms from "
        f"the scheduled resume ({(resume - start) / MS:.1f} ms after the start)"
    )
    assert abs(first_after - resume) <= TOL_NS
    (held,) = events(log, "held")
    syn_release = retransmit_after(held["t_ns"], end, 1 * S, 120 * S) if recovery == "rto" else end
    assert held["release_ns"] == syn_release
    ((t_reply, _),) = late.frames(ECHO_REP.size)
    assert abs(t_reply - syn_release) <= TOL_NS


def test_handover_cuts_all_then_refuses_then_works(tmp_path: Path) -> None:
    at_s, gap_s = 0.4, 0.4

    async def main():
        conns: list[ServerConn] = []
        server, port = await serve(conns)
        sets = [
            f'handover={{first_at_s={at_s}, gap_s={gap_s}, interval_s=100, client="rst", '
            'server="fin", new_connections="refuse"}'
        ]
        with proxy(tmp_path, port, sets) as (pport, log, t0):
            a = await connect(pport, "tick 5 400 16")
            b = await connect(pport, "tick 5 400 16")
            await asyncio.sleep(at_s + 0.15 - (time.monotonic_ns() - t0) / S)
            t_try = time.monotonic_ns()
            try:
                refused = await connect(pport, "echo")
                await asyncio.wait_for(refused.closed, 2)
            except ConnectionResetError:  # the reset can beat connect() to the finish
                refused = Client()
                refused.end.t_lost_ns, refused.end.reset = time.monotonic_ns(), True
            await asyncio.sleep(at_s + gap_s + 0.1 - (time.monotonic_ns() - t0) / S)
            ok = await connect(pport, "echo")
            ok.transport.write(ECHO_REQ.pack(7, time.monotonic_ns()))
            await asyncio.sleep(0.2)
            ok.transport.close()
        server.close()
        return t0, t_try, (a, b), refused, ok, conns, log

    t0, t_try, old, refused, ok, conns, log = asyncio.run(main())
    t_handover = t0 + round(at_s * S)
    print(
        "\nhandover: client resets at "
        + ", ".join(f"{(c.end.t_lost_ns - t_handover) / MS:+.3f}" for c in old)
        + " ms from the scheduled instant"
    )
    for c in old:
        assert c.end.reset and abs(c.end.t_lost_ns - t_handover) <= TOL_NS
    for srv in conns[:2]:  # the server side saw a FIN at the same instant
        assert not srv.end.reset and abs(srv.end.t_eof_ns - t_handover) <= TOL_NS
    assert refused.end.reset and refused.end.t_lost_ns - t_try <= TOL_NS
    assert len(ok.frames(ECHO_REP.size)) == 1
    assert [e["cause"] for e in events(log, "cut")] == ["handover", "handover"]
    assert len(events(log, "refused")) == 1


def test_silent_side_gets_nothing_and_its_close_is_noticed(tmp_path: Path) -> None:
    async def main():
        conns: list[ServerConn] = []
        server, port = await serve(conns)
        sets = [
            'cuts=[{after_s=0.3, client="fin", server="silent"}]',
            "tcp.silent_window_bytes=1000",
        ]
        with proxy(tmp_path, port, sets) as (pport, log, _):
            client = await connect(pport, "tick 2 1000 16")
            await asyncio.wait_for(client.closed, 5)
            await asyncio.sleep(0.6)
            srv = conns[0]
            assert srv.end.t_eof_ns is None and srv.end.t_lost_ns is None  # nothing reached it
            t_close = time.monotonic_ns()
            srv.transport.close()
            await asyncio.sleep(0.6)
        server.close()
        return client, t_close, log

    client, t_close, log = asyncio.run(main())
    assert client.end.t_eof_ns is not None and not client.end.reset
    (gone,) = events(log, "silent_closed")
    assert gone["side"] == "server" and gone["discarded"] >= 1000
    # the proxy stopped reading after the window, so it notices by polling (every 0.25 s)
    assert 0 <= gone["t_ns"] - t_close <= 0.25 * S + TOL_NS


def test_a_close_crosses_the_path_like_its_bytes(tmp_path: Path) -> None:
    """A client's FIN reaches the server one (up) latency later, not at once; a client's
    reset sent inside a blackhole reaches the server at the first retransmission after
    it (the phone that gives up in a tunnel does not tell the server until it is out)."""
    lat_ms, start_s, dur_s = 40.0, 0.4, 0.6
    linger0 = b"\1\0\0\0\0\0\0\0"

    async def main():
        conns: list[ServerConn] = []
        server, port = await serve(conns)
        sets = [
            f"up.latency_ms={lat_ms}",
            f"blackholes={{first_at_s={start_s}, duration_s={dur_s}, interval_s=100, "
            'recovery="rto"}',
        ]
        with proxy(tmp_path, port, sets) as (pport, log, t0):
            fin = await connect(pport, "sink 1000000")
            gone = await connect(pport, "tick 5 1000 16")
            await asyncio.sleep(0.15)
            t_fin = time.monotonic_ns()
            fin.transport.close()  # FIN, outside the blackhole
            await asyncio.sleep(start_s + 0.2 - (time.monotonic_ns() - t0) / S)
            sock = gone.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
            t_rst = time.monotonic_ns()
            gone.transport.abort()  # a reset, inside the blackhole
            await asyncio.sleep(start_s + dur_s + 0.6 - (time.monotonic_ns() - t0) / S)
        server.close()
        return t0, t_fin, t_rst, conns, log

    t0, t_fin, t_rst, conns, log = asyncio.run(main())
    by_cmd = {c.command.split()[0]: c for c in conns}
    got_fin = by_cmd["sink"].end.t_eof_ns
    assert got_fin is not None and abs(got_fin - (t_fin + lat_ms * MS)) <= TOL_NS
    end = t0 + round((start_s + dur_s) * S)
    due = retransmit_after(t_rst + round(lat_ms * MS), end, 200 * MS, 120 * S)
    srv = by_cmd["tick"]
    print(
        f"\nclose crossing: FIN {(got_fin - t_fin) / MS:.2f} ms (latency {lat_ms:g} ms); "
        f"reset in a blackhole reached the server {(srv.end.t_lost_ns - due) / MS:+.2f} ms "
        f"from the retransmission after it ({(due - t_rst) / MS:.0f} ms after it was sent)"
    )
    assert srv.end.reset and abs(srv.end.t_lost_ns - due) <= TOL_NS
    (flight,) = events(log, "close_in_flight")
    assert flight["side"] == "client" and abs(flight["release_ns"] - due) <= TOL_NS
