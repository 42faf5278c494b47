"""core.clock_sync: the page clock mapped onto the harness clock, checked against a known
offset with scripted round trips (no browser, no sockets)."""

from __future__ import annotations

import random

import pytest

from core.clock_sync import (
    ClockMap,
    ClockSample,
    ClockSyncError,
    drift_ns,
    estimate,
    samples_from_rows,
)

# page clock = harness clock − OFFSET (page ms at today's epoch magnitudes)
HARNESS_T0 = 5_000_000_000_000  # ns
PAGE_T0 = 1_796_000_000_000.125  # ms


def _page_ms(harness_ns: int) -> float:
    return PAGE_T0 + (harness_ns - HARNESS_T0) / 1e6


def _samples(n: int, seed: int = 1, res_ns: int = 0) -> list[ClockSample]:
    """Round trips with random one-way delays (0.05–0.5 ms out, 0.05–1 ms back), page
    stamps rounded down to the resolution."""
    rng = random.Random(seed)
    out = []
    t = HARNESS_T0
    for _ in range(n):
        send = t
        h = send + rng.randint(50_000, 500_000)
        recv = h + rng.randint(50_000, 1_000_000)
        a, b = _page_ms(send), _page_ms(recv)
        if res_ns:
            step = res_ns / 1e6
            a, b = a - (a - PAGE_T0) % step, b - (b - PAGE_T0) % step
        out.append(ClockSample(a, h, b))
        t = recv + 2_000_000
    return out


def test_estimate_recovers_a_known_offset_within_its_bound() -> None:
    samples = _samples(40)
    m = estimate(samples)
    truth = HARNESS_T0 + 123_456_789
    err = abs(m.to_harness_ns(_page_ms(truth)) - truth)
    assert err <= m.half_width_ns
    # the bound is the intersection: no wider than the fastest round trip's half
    assert m.half_width_ns <= min(s.rtt_ns for s in samples) // 2 + 1
    assert m.rtt_min_ns == min(s.rtt_ns for s in samples)
    assert m.samples == 40


def test_more_round_trips_tighten_the_bound() -> None:
    few = estimate(_samples(3, seed=7))
    many = estimate(_samples(200, seed=7))
    assert many.half_width_ns <= few.half_width_ns


def test_resolution_widens_the_bound_and_keeps_the_truth_inside() -> None:
    res = 100_000  # 100 µs, Chromium's coarsening without cross-origin isolation
    samples = _samples(40, seed=3, res_ns=res)
    m = estimate(samples, resolution_ns=res)
    truth = HARNESS_T0 + 7_000_000
    assert abs(m.to_harness_ns(_page_ms(truth)) - truth) <= m.half_width_ns
    assert m.half_width_ns >= res


def test_epoch_sized_page_stamps_map_to_the_nanosecond_scale() -> None:
    # multiplying an epoch-ms double by 1e6 would round to 256 ns; the map does not
    m = ClockMap(PAGE_T0, HARNESS_T0, 0, 1, 0, 0)
    step = 2**-8  # ms: 3906.25 ns, exact in a double next to PAGE_T0
    assert m.to_harness_ns(PAGE_T0 + step) - HARNESS_T0 == 3906
    assert round((PAGE_T0 + step) * 1e6) - round(PAGE_T0 * 1e6) != 3906  # the naive way
    # back and forth: within the page double's own step (2**-12 ms = 244 ns at this size)
    assert abs(m.to_harness_ns(m.to_page_ms(HARNESS_T0 + 5_000)) - (HARNESS_T0 + 5_000)) <= 244


def test_contradicting_samples_are_refused_not_averaged() -> None:
    good = _samples(5)
    jumped = ClockSample(good[-1].a_ms + 10.0, good[-1].h_ns - 50_000_000, good[-1].b_ms + 10.3)
    with pytest.raises(ClockSyncError, match="disagree"):
        estimate([*good, jumped])
    with pytest.raises(ClockSyncError):
        estimate([])


def test_drift_is_zero_for_clocks_in_step_and_measures_a_rate_error() -> None:
    before = estimate(_samples(40, seed=1))
    later = [
        ClockSample(s.a_ms + 60_000, s.h_ns + 60_000_000_000, s.b_ms + 60_000)
        for s in _samples(40, seed=2)
    ]
    after = estimate(later)
    assert abs(drift_ns(before, after)) <= before.half_width_ns + after.half_width_ns
    slow = [ClockSample(s.a_ms, s.h_ns + 3_000_000, s.b_ms) for s in later]  # 3 ms off
    assert 2_000_000 < drift_ns(before, estimate(slow)) < 4_000_000


def test_rows_from_the_page_keep_the_harness_stamp_exact() -> None:
    rows = [[1.5, "9007199254740993", 2.5]]  # 2**53 + 1: a JS number would round it
    assert samples_from_rows(rows)[0].h_ns == 2**53 + 1
