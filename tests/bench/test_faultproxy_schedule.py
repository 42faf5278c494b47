"""The fault schedule without sockets: release times, losses, buckets, windows, cuts."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest

from bench.faultproxy.profile import parse_profile
from bench.faultproxy.schedule import (
    MS,
    DelayLine,
    LossPlan,
    S,
    Timeline,
    TokenBucket,
    admit,
    plan_cuts,
    retransmit_after,
    rng,
)

T0 = 10 * S  # an arbitrary origin: nothing below may depend on it being 0


def prof(**table):
    return parse_profile({"name": "t", **table})


def line(direction: str = "down", seed: int = 1, serial: int = 1, timeline=None, **table):
    return DelayLine(prof(**table), direction, seed, serial, timeline)


def test_rng_is_deterministic_and_independent_per_name() -> None:
    a = [rng(5, "conn", 1, "down", "loss").random() for _ in range(3)]
    b = [rng(5, "conn", 1, "down", "loss").random() for _ in range(3)]
    c = [rng(5, "conn", 2, "down", "loss").random() for _ in range(3)]
    assert a == b != c


def test_retransmissions_double_until_after_the_outage() -> None:
    rto, cap = 200 * MS, 120 * S
    assert retransmit_after(T0, T0, rto, cap) == T0
    assert retransmit_after(T0, T0 + 1, rto, cap) == T0 + 200 * MS
    # 0.2, 0.6, 1.4, 3.0, 6.2 s after the loss
    assert retransmit_after(T0, T0 + 5 * S, rto, cap) == T0 + 6_200 * MS
    assert retransmit_after(T0, T0 + 1_400 * MS, rto, cap) == T0 + 1_400 * MS
    # the gap stops doubling at the cap
    assert retransmit_after(T0, T0 + 2 * S, rto, 400 * MS) == T0 + 2_200 * MS


def test_latency_is_added_exactly_and_order_is_kept_under_jitter() -> None:
    dl = line(down={"latency_ms": 30})
    pieces, events = dl.push(b"x" * 100, T0)
    assert [p.release_ns for p in pieces] == [T0 + 30 * MS] and not events
    dl = line(down={"latency_ms": 30, "jitter_ms": 20})
    releases = []
    for i in range(2000):
        releases += [p.release_ns for p in dl.push(b"y", T0 + i * MS)[0]]
    assert releases == sorted(releases)  # a delay line, not a reordering


@pytest.mark.parametrize("dist", ["normal", "uniform"])
def test_symmetric_jitter_keeps_the_median_delay_at_the_latency(dist: str) -> None:
    dl = line(down={"latency_ms": 40, "jitter_ms": 5, "jitter_dist": dist})
    # chunks 100 ms apart: the no-reordering rule never holds one back
    delays = [
        dl.push(b"z", T0 + i * 100 * MS)[0][0].release_ns - (T0 + i * 100 * MS) for i in range(2001)
    ]
    assert statistics.median(delays) == pytest.approx(40 * MS, abs=0.5 * MS)
    assert min(delays) < 38 * MS and max(delays) > 42 * MS


def test_exponential_jitter_is_one_sided_with_its_mean() -> None:
    dl = line(down={"latency_ms": 10, "jitter_ms": 8, "jitter_dist": "exponential"})
    extra = [
        dl.push(b"z", T0 + i * S)[0][0].release_ns - (T0 + i * S) - 10 * MS for i in range(4000)
    ]
    assert min(extra) >= 0
    assert statistics.fmean(extra) == pytest.approx(8 * MS, rel=0.08)


def test_losses_are_per_segment_and_fixed_by_the_seed() -> None:
    table = {"down": {"loss": 0.05}}
    data = bytes(range(256)) * 1448  # 256 segments
    runs = []
    for chunk in (1448, 2896, 14480, 1448 * 64):  # whole segments, grouped differently
        dl = line(**table)
        stalls, out = [], b""
        for i in range(0, len(data), chunk):
            pieces, events = dl.push(data[i : i + chunk], T0)
            stalls += [(e["offset"], e["segment"], e["retries"]) for e in events]
            out += b"".join(p.data for p in pieces)
        assert out == data
        runs.append(stalls)
    assert runs[0] == runs[1] == runs[2] == runs[3]
    assert all(off == seg * 1448 for off, seg, _ in runs[0]) and len(runs[0]) > 3
    whole = line(**table).push(data, T0)[1]  # one read of all 256 segments
    assert [(e["offset"], e["segment"], e["retries"]) for e in whole] == runs[0]
    other_seed = line(seed=2, **table).push(data, T0)[1]
    assert [e["segment"] for e in other_seed] != [s for _, s, _ in runs[0]]


def test_a_small_write_is_a_segment_of_its_own() -> None:
    """Token events (Nagle off) are one segment each: a 5% loss stalls ~5% of them."""
    dl = line(down={"loss": 0.05})
    stalled = sum(bool(dl.push(b"e" * 90, T0 + i * S)[1]) for i in range(8000))
    assert abs(stalled - 400) < 5 * math.sqrt(8000 * 0.05 * 0.95)


def test_a_lost_segment_holds_its_bytes_for_the_backed_off_rto() -> None:
    dl = line(down={"latency_ms": 5, "loss": 0.2}, tcp={"rto_ms": 100})
    t, found = T0, []
    for _ in range(400):
        pieces, events = dl.push(b"q" * 1448, t)
        for e in events:
            stall = 100 * MS * (2 ** e["retries"] - 1)
            assert e["stall_ms"] * MS == pytest.approx(stall)
            assert pieces[0].release_ns >= t + 5 * MS + stall
            found.append(e["retries"])
        t += S  # far apart: nothing else holds a piece back
    assert 1 in found and max(found) >= 2  # repeated losses back off


def test_loss_rate_matches_the_setting() -> None:
    p, n_segments = 0.03, 200_000
    plan = LossPlan(p, 6, rng(9, "x"))
    lost = 0
    while plan.next_index < n_segments:
        plan.take()
        lost += 1
    sd = math.sqrt(n_segments * p * (1 - p))
    assert abs(lost - n_segments * p) < 5 * sd


def test_token_bucket_paces_a_bulk_transfer_at_the_rate() -> None:
    rate = 1_000_000  # bytes/s
    dl = line(down={"bandwidth_kbps": rate * 8 / 1000, "burst_bytes": 20_000})
    size = 1_200_000
    pieces, _ = dl.push(b"b" * size, T0)
    assert max(len(p.data) for p in pieces) <= 16_384
    assert pieces[0].release_ns == T0
    expect = (size - 20_000) / rate * S
    assert pieces[-1].release_ns - T0 == pytest.approx(
        expect, abs=pieces[-1].data.__len__() / rate * S
    )
    bucket = TokenBucket(1000.0, 100)  # 1000 B/s, 100 B deep
    assert bucket.depart(100, T0) == T0
    assert bucket.depart(50, T0) == T0 + 50 * MS
    assert bucket.depart(10, T0 + 5 * S) == T0 + 5 * S  # refilled (capped at 100)


def test_timeline_windows_are_deterministic_and_found() -> None:
    p = prof(blackholes={"first_at_s": [1, 2], "interval_s": [3, 5], "duration_s": [0.5, 1]})
    a, b = Timeline(p, 7, T0), Timeline(p, 7, T0)
    wa, wb = a.windows("blackhole", T0 + 60 * S), b.windows("blackhole", T0 + 60 * S)
    assert wa == wb and len(wa) >= 8
    assert 1 * S <= wa[0].start_ns - T0 <= 2 * S
    for w, nxt in itertools.pairwise(wa):
        assert 0.5 * S <= w.end_ns - w.start_ns <= 1 * S
        assert 3 * S <= nxt.start_ns - w.end_ns <= 5 * S
    w = wa[3]
    assert a.at("blackhole", w.start_ns) == w
    assert a.at("blackhole", w.end_ns) is None
    assert a.next_window("blackhole", w.start_ns) == wa[4]
    assert Timeline(p, 8, T0).windows("blackhole", T0 + 60 * S) != wa


def test_bytes_caught_in_a_blackhole_resume_at_the_next_retransmission() -> None:
    p = {"blackholes": {"first_at_s": 1, "interval_s": 100, "duration_s": 2}}
    tl = Timeline(prof(**p), 1, T0)
    dl = line(timeline=tl, down={"latency_ms": 10}, **p)
    before, ev = dl.push(b"a", T0 + 500 * MS)
    assert before[0].release_ns == T0 + 510 * MS and not ev
    lost_at = T0 + 1_000 * MS + 90 * MS  # arrives at 1.08 s, would leave at 1.09 s
    caught, ev = dl.push(b"b", lost_at - 10 * MS)
    resume = retransmit_after(lost_at, T0 + 3 * S, 200 * MS, 120 * S)
    assert caught[0].release_ns == resume == lost_at + 3_000 * MS
    assert ev == [
        {"ev": "blackhole", "dir": "down", "window": 0, "t_lost_ns": lost_at, "resume_ns": resume}
    ]
    later, ev = dl.push(b"c", T0 + 2 * S)  # in the same window: behind the first, not logged
    assert later[0].release_ns == resume and not ev
    p["blackholes"]["recovery"] = "instant"
    dl = line(timeline=Timeline(prof(**p), 1, T0), **p)
    assert dl.push(b"b", lost_at)[0][0].release_ns == T0 + 3 * S


def test_cut_plans_follow_share_and_distribution() -> None:
    p = prof(cuts=[{"share": 0.25, "after_s_mean": 4.0, "how": "rst"}])
    plans = [plan_cuts(p, 3, serial) for serial in range(1, 4001)]
    timed = [c.timed for c in plans if c.timed is not None]
    assert abs(len(timed) - 1000) < 5 * math.sqrt(4000 * 0.25 * 0.75)
    assert statistics.fmean(c.after_ns for c in timed) == pytest.approx(4 * S, rel=0.1)
    assert plans == [plan_cuts(p, 3, serial) for serial in range(1, 4001)]
    both = prof(cuts=[{"after_s": 9, "client": "fin", "server": "silent"}, {"after_bytes": 500}])
    c = plan_cuts(both, 1, 1)
    assert c.timed.after_ns == 9 * S and c.timed.server == "silent"
    assert c.by_bytes.after_bytes == 500 and c.by_bytes.rule == 1


def test_admission_in_gaps_and_blackholes() -> None:
    h = {"handover": {"first_at_s": 1, "interval_s": 100, "gap_s": 2}}
    tl = Timeline(prof(**h), 1, T0)
    assert admit(tl, prof(**h), T0 + 500 * MS).action == "ok"
    refused = admit(tl, prof(**h), T0 + 1_500 * MS)
    assert (refused.action, refused.cause) == ("refuse", "handover")
    h["handover"]["new_connections"] = "hold"
    held = admit(tl, prof(**h), T0 + 1_500 * MS)
    # SYN retransmissions 1 s, 3 s after the attempt: the gap ends at 3 s → 4.5 s
    assert (held.action, held.release_ns) == ("hold", T0 + 4_500 * MS)
    b = {"blackholes": {"first_at_s": 1, "interval_s": 100, "duration_s": 0.5}}
    dark = admit(Timeline(prof(**b), 1, T0), prof(**b), T0 + 1_200 * MS)
    assert (dark.action, dark.release_ns, dark.cause) == ("hold", T0 + 2_200 * MS, "blackhole")
    assert admit(None, prof(), T0).action == "ok"


def test_lateness_quantiles_from_buckets() -> None:
    from bench.faultproxy.timing import Lateness

    lt = Lateness()
    assert lt.summary() == {"pieces": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    for late_us in [-300] * 10 + [50] * 40 + [1_250] * 49 + [30_000]:
        lt.add(late_us * 1000)
    s = lt.summary()
    assert s["pieces"] == 100
    assert s["p50_ms"] == 0.1  # early and 50 µs writes share the first 100 µs bucket
    assert s["p99_ms"] == 1.3  # 1.25 ms falls in [1.2, 1.3)
    assert s["max_ms"] == 30.0
