"""core.clocksync against scripted clocks: the true offset is known, so every estimate can
be checked against it (and the verdict against what it must say)."""

from __future__ import annotations

import random

import pytest

from core.clocksync import (
    MAX_UNCERTAINTY_NS,
    MEASURED,
    NOT_MEASURED,
    InconsistentRoundTrips,
    RoundTrip,
    delivery_verdict,
    estimate,
    same_clock_by_host,
)


def trip(theta: int, t0: int, out_ns: int, back_ns: int) -> RoundTrip:
    """A round trip on a scripted network: the client sends at t0 (its clock), the request
    takes out_ns, the server reads its clock (client + theta), the answer takes back_ns."""
    t_server_true = t0 + out_ns
    return RoundTrip(t0, t_server_true + theta, t_server_true + back_ns)


def test_one_round_trip_is_the_midpoint_with_half_the_rtt() -> None:
    t = trip(theta=5_000, t0=1_000_000, out_ns=300, back_ns=100)
    est = estimate([t])
    assert t.rtt_ns == 400
    assert est.offset_ns == t.offset_ns == 5_000 + (300 - 100) / 2  # asymmetry shows as error
    assert est.uncertainty_ns == 200
    assert est.low_ns <= 5_000 <= est.high_ns  # the truth is inside, always


@pytest.mark.parametrize("theta", [0, 7, -123_456, 5_000_000_000, -86_400 * 10**9])
def test_the_truth_is_always_inside_and_more_trips_narrow_it(theta: int) -> None:
    rng = random.Random(theta)
    trips = []
    widths = []
    t0 = 10**12
    for _ in range(12):
        trips.append(trip(theta, t0, rng.randint(50, 5_000), rng.randint(50, 5_000)))
        t0 += 1_000_000
        est = estimate(trips)
        assert est.low_ns <= theta <= est.high_ns
        assert abs(est.offset_ns - theta) <= est.uncertainty_ns
        widths.append(est.uncertainty_ns)
    assert widths == sorted(widths, reverse=True)  # never wider with more trips
    assert est.uncertainty_ns <= min(t.rtt_ns for t in trips) / 2
    assert est.samples == 12
    if theta == 0:
        assert est.shared_clock_possible
    elif abs(theta) > 5_000:  # more than any round trip here: told apart
        assert not est.shared_clock_possible


def test_a_stepped_clock_makes_the_trips_disagree() -> None:
    a = trip(theta=0, t0=0, out_ns=100, back_ns=100)
    b = trip(theta=10_000, t0=1_000_000, out_ns=100, back_ns=100)  # the server clock jumped
    with pytest.raises(InconsistentRoundTrips):
        estimate([a, b])
    with pytest.raises(ValueError):
        estimate([])
    with pytest.raises(ValueError):
        estimate([RoundTrip(10, 5, 3)])


SAME = {"boot_id": "b1", "time_ns": "time:[1]"}


def clock(*ests: dict, host: dict | None = None) -> dict:
    return {"host": host or {}, "estimates": list(ests), "errors": []}


def est_dict(theta: int, rtt: int) -> dict:
    return estimate([trip(theta, 0, rtt // 2, rtt // 2)]).to_dict()


def test_verdict_hosts_decide_first() -> None:
    assert same_clock_by_host(SAME, dict(SAME)) is True
    assert same_clock_by_host(SAME, {**SAME, "time_ns": "time:[2]"}) is False
    assert same_clock_by_host(SAME, {"boot_id": None, "time_ns": "x"}) is None
    # same kernel boot and time namespace: one clock whatever the probe's uncertainty
    v, why = delivery_verdict(clock(est_dict(0, 50_000_000), host=SAME), SAME)
    assert v == MEASURED and "same kernel boot" in why


def test_verdict_offset_and_uncertainty() -> None:
    other = {"boot_id": "b2", "time_ns": "time:[1]"}
    # another machine, offset 5 s: not one clock
    v, why = delivery_verdict(clock(est_dict(5 * 10**9, 200_000), host=other), SAME)
    assert v == NOT_MEASURED and "+5000.000" in why
    # consistent with one clock, tight: measured (the error it can add is below the limit)
    v, why = delivery_verdict(clock(est_dict(0, 200_000), est_dict(0, 300_000)))
    assert v == MEASURED and "0.150 ms" in why
    # consistent but too loose to tell: not measured
    loose = est_dict(0, int(2 * MAX_UNCERTAINTY_NS) + 2)
    v, why = delivery_verdict(clock(loose))
    assert v == NOT_MEASURED and "uncertainty" in why
    # the end-of-phase estimate can veto a good start (a clock that moved)
    v, _ = delivery_verdict(clock(est_dict(0, 200_000), est_dict(3_000_000, 200_000)))
    assert v == NOT_MEASURED


def test_verdict_without_an_estimate() -> None:
    assert delivery_verdict(None)[0] == MEASURED  # older runs: one host, as always
    no_est = {"host": {"boot_id": "b2", "time_ns": "t"}, "estimates": [], "error": "no /healthz"}
    v, why = delivery_verdict(no_est, SAME)
    assert v == NOT_MEASURED and "another host" in why
    assert delivery_verdict({"estimates": [], "error": "x"})[0] == MEASURED
