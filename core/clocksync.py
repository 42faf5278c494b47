"""How far a load process's monotonic clock is from the server's, and whether delivery
latency (client receive − server stamp) may be computed across them. Sans-I/O: the round
trips are taken elsewhere (loadtests.clockprobe) and handed in as numbers.

Delivery latency subtracts a server stamp from a client stamp, so it is only a latency
when both come from one clock. On one Linux machine every process reads the same
CLOCK_MONOTONIC — network namespaces included — unless it runs in a time namespace with
a monotonic offset. On two machines the clocks count from different boots: their
difference is anything from seconds to weeks.

Estimate (the midpoint method). A round trip gives three stamps: the client's send ``t0``,
the server's own time ``ts`` in the answer, the client's receive ``t1``. The server read its
clock between the client's two reads, so the offset θ = server clock − client clock
satisfies ``ts − t1 ≤ θ ≤ ts − t0``: the midpoint ``ts − (t0 + t1)/2`` with an uncertainty of
half the round trip. Several round trips narrow it: θ lies in the intersection of their
intervals, reported as its midpoint ± half its width. An empty intersection means the
clocks moved against each other during the probe (or a stamp is wrong): no estimate.

Verdict (`delivery_verdict`): delivery latency is measured for a load process when
- the hosts say they share one clock (same kernel boot and same time namespace as the
  server), or
- the estimate is consistent with a shared clock (0 lies inside θ's interval) and its
  uncertainty is at most `MAX_UNCERTAINTY_NS` — the error it could add to a latency;
otherwise it is "not measured", with the reason. A process with no estimate and no host
facts keeps the single-host assumption the harness always made (older runs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

#: Largest offset uncertainty under which a clock consistent with the server's is trusted
#: for delivery latency: the most it can shift a per-token latency of a few ms.
MAX_UNCERTAINTY_NS = 1_000_000
MEASURED = "measured"
NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class RoundTrip:
    """One probe: client send, server time in the answer, client receive (ns)."""

    t_send_ns: int
    t_server_ns: int
    t_recv_ns: int

    @property
    def rtt_ns(self) -> int:
        return self.t_recv_ns - self.t_send_ns

    @property
    def offset_ns(self) -> float:
        """Midpoint estimate of server clock − client clock."""
        return self.t_server_ns - (self.t_send_ns + self.t_recv_ns) / 2

    @property
    def bounds_ns(self) -> tuple[int, int]:
        """The offsets this round trip allows: [ts − t1, ts − t0]."""
        return self.t_server_ns - self.t_recv_ns, self.t_server_ns - self.t_send_ns


@dataclass(frozen=True)
class ClockEstimate:
    """Server clock − client clock, from `samples` round trips."""

    offset_ns: float  # midpoint of the interval
    uncertainty_ns: float  # half its width: the true offset is within offset ± this
    low_ns: int
    high_ns: int
    samples: int
    rtt_min_ns: int
    rtt_max_ns: int

    @property
    def shared_clock_possible(self) -> bool:
        """0 lies in the interval: the two clocks may be one."""
        return self.low_ns <= 0 <= self.high_ns

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["offset_ms"] = self.offset_ns / 1e6
        d["uncertainty_ms"] = self.uncertainty_ns / 1e6
        d["shared_clock_possible"] = self.shared_clock_possible
        return d


class InconsistentRoundTrips(ValueError):
    """The round trips' offset intervals do not overlap (a clock stepped or drifted)."""


def estimate(trips: Iterable[RoundTrip]) -> ClockEstimate:
    """The offset interval all round trips agree on (ValueError without any; an
    InconsistentRoundTrips when they agree on none)."""
    trips = list(trips)
    if not trips:
        raise ValueError("no round trips")
    bad = [t for t in trips if t.rtt_ns < 0]
    if bad:
        raise ValueError(f"a round trip ends before it starts: {bad[0]}")
    low = max(t.bounds_ns[0] for t in trips)
    high = min(t.bounds_ns[1] for t in trips)
    if low > high:
        raise InconsistentRoundTrips(
            f"offset intervals do not overlap ({low} > {high} ns over {len(trips)} round trips)"
        )
    rtts = [t.rtt_ns for t in trips]
    return ClockEstimate(
        offset_ns=(low + high) / 2,
        uncertainty_ns=(high - low) / 2,
        low_ns=low,
        high_ns=high,
        samples=len(trips),
        rtt_min_ns=min(rtts),
        rtt_max_ns=max(rtts),
    )


def same_clock_by_host(
    worker: Mapping[str, Any] | None, server: Mapping[str, Any] | None
) -> bool | None:
    """Do the host facts (``boot_id``, ``time_ns``: the kernel boot and the time
    namespace, see `clock_facts` in loadtests.clockprobe) say both read one monotonic
    clock? None when either side's facts are unknown."""
    if not worker or not server:
        return None
    keys = ("boot_id", "time_ns")
    if any(not worker.get(k) or not server.get(k) for k in keys):
        return None
    return all(worker[k] == server[k] for k in keys)


def delivery_verdict(
    clock: Mapping[str, Any] | None,
    server_host: Mapping[str, Any] | None = None,
    *,
    max_uncertainty_ns: float = MAX_UNCERTAINTY_NS,
) -> tuple[str, str]:
    """(MEASURED or NOT_MEASURED, why) for one load process.

    `clock` is what the process recorded: ``host`` (its clock facts), ``estimates`` (a
    list of `ClockEstimate.to_dict()`, e.g. at the start and the end of the phase) and
    ``error`` (why there is none). `server_host`: the server's clock facts when known.
    """
    if not clock:
        return MEASURED, "no clock record: one host assumed"
    same = same_clock_by_host(clock.get("host"), server_host)
    if same:
        return MEASURED, "same kernel boot and time namespace as the server: one clock"
    estimates = list(clock.get("estimates") or [])
    if not estimates:
        why = clock.get("error") or "no offset estimate"
        if same is False:
            return NOT_MEASURED, f"another host or time namespace than the server, and {why}"
        return MEASURED, f"{why}; one host assumed"
    for est in estimates:
        low, high, unc = est["low_ns"], est["high_ns"], est["uncertainty_ns"]
        if not low <= 0 <= high:
            return NOT_MEASURED, (
                f"clock offset {est['offset_ns'] / 1e6:+.3f} ± {unc / 1e6:.3f} ms from the "
                "server's: not one clock"
            )
        if unc > max_uncertainty_ns:
            return NOT_MEASURED, (
                f"clock offset uncertainty {unc / 1e6:.3f} ms > "
                f"{max_uncertainty_ns / 1e6:g} ms: cannot tell the clocks apart"
            )
    worst = max(e["uncertainty_ns"] for e in estimates)
    return MEASURED, f"offset consistent with one clock within ± {worst / 1e6:.3f} ms"
