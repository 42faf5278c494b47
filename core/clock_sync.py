"""A page's clock mapped onto the harness's monotonic clock, with a hard error bound (sans-I/O).

A browser page stamps events with its own clock (``performance.timeOrigin +
performance.now()``, milliseconds as a double). The harness and the servers stamp with
``time.monotonic_ns()``. To put page stamps into the same records (TTFT, ITL, delivery
latency = receive − server send stamp) the page clock is mapped onto the harness clock::

    harness_ns = ref_harness_ns + (page_ms − ref_page_ms) × 1e6

How the map is measured: the page sends a message to the harness and stamps the send
(``a``, page ms) and the reply (``b``); the harness stamps its answer ``h``
(``monotonic_ns``) in between. Whatever the delays each way, ``h`` happened after ``a`` and
before ``b``, so each round trip bounds the unknown ``ref_harness_ns`` to an interval of
the round trip's width; every sample must hold at once, so the bound is the
*intersection* of all samples' intervals (widened by the page clock's resolution, since a
coarsened stamp can be that much off). The estimate is the middle of that interval and the
uncertainty its half-width: not a statistical spread but a bound, given one thing — that
the two clocks run at the same rate over the measurement (both are CLOCK_MONOTONIC on
Linux; the harness checks it by measuring again at the end of a phase: `drift_ns`).

No clock is read here; the samples come from the caller, so a scripted test pins it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


class ClockSyncError(ValueError):
    """No usable samples, or samples that contradict each other (clocks not in step)."""


@dataclass(frozen=True, slots=True)
class ClockSample:
    """One round trip: page stamps before (`a_ms`) and after (`b_ms`), harness stamp `h_ns`."""

    a_ms: float
    h_ns: int
    b_ms: float

    @property
    def rtt_ns(self) -> int:
        return round((self.b_ms - self.a_ms) * 1e6)


@dataclass(frozen=True, slots=True)
class ClockMap:
    """page ms → harness ns, and how well that is known.

    ``half_width_ns`` bounds the error of every mapped stamp (same-rate clocks); it already
    includes the page clock's resolution. ``rtt_min_ns`` is the fastest round trip.
    """

    ref_page_ms: float
    ref_harness_ns: int
    half_width_ns: int
    samples: int
    rtt_min_ns: int
    resolution_ns: int

    def to_harness_ns(self, page_ms: float) -> int:
        # (page_ms − ref) is exact for nearby doubles; multiplying the absolute value by 1e6
        # first would round to 256 ns at today's epoch-ms magnitudes.
        return self.ref_harness_ns + round((page_ms - self.ref_page_ms) * 1e6)

    def to_page_ms(self, harness_ns: int) -> float:
        return self.ref_page_ms + (harness_ns - self.ref_harness_ns) / 1e6

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate(samples: Sequence[ClockSample], *, resolution_ns: int = 0) -> ClockMap:
    """The map every sample agrees with (see the module docstring).

    Raises ClockSyncError without samples, or when the samples' intervals do not overlap —
    the clocks did not keep one rate, or a stamp is wrong; never a silent average.
    """
    good = [s for s in samples if s.b_ms >= s.a_ms]
    if not good:
        raise ClockSyncError("no clock samples (or every one ran backwards)")
    ref = good[0].a_ms
    lo = -(2**63)
    hi = 2**63
    for s in good:
        a_ns = round((s.a_ms - ref) * 1e6)
        b_ns = round((s.b_ms - ref) * 1e6)
        # h happened within [a, b] on the page clock: ref_harness ∈ [h − b, h − a] ± resolution
        lo = max(lo, s.h_ns - b_ns - resolution_ns)
        hi = min(hi, s.h_ns - a_ns + resolution_ns)
    if lo > hi:
        raise ClockSyncError(
            f"clock samples disagree by {(lo - hi) / 1e3:.1f} µs: "
            "the page and harness clocks did not run in step"
        )
    return ClockMap(
        ref_page_ms=ref,
        ref_harness_ns=(lo + hi) // 2,
        half_width_ns=(hi - lo + 1) // 2,
        samples=len(good),
        rtt_min_ns=min(s.rtt_ns for s in good),
        resolution_ns=resolution_ns,
    )


def drift_ns(before: ClockMap, after: ClockMap) -> int:
    """How far the map measured later puts the earlier reference point: 0 for clocks in
    step; compare with the two half-widths."""
    return after.to_harness_ns(before.ref_page_ms) - before.ref_harness_ns


def samples_from_rows(rows: Sequence[Sequence[Any]]) -> list[ClockSample]:
    """ClockSample list from the page's ``[a_ms, "h_ns", b_ms]`` rows (h as a string: a
    JavaScript number would round it)."""
    return [ClockSample(float(a), int(h), float(b)) for a, h, b in rows]
