"""The proxy's clocks: absolute-time timers, one release wheel, and its own lateness.

uvloop's clock is in milliseconds and its timers round to them, so nothing here trusts
the loop for an instant: due times are `time.monotonic_ns()` values; a `Timer` armed half
a slack early and re-armed when the loop fires too early writes its work within
``±SLACK_NS / 2`` of the instant, median near zero. `ReleaseWheel` keeps one timer for every
direction's next release (many releases share a loop wake-up under load); `Lateness`
measures how late the proxy really was, for its `stop` line.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["SLACK_NS", "Lateness", "ReleaseWheel", "Timer"]

#: Work due within this of now is done now (half a libuv tick).
SLACK_NS = 500_000


class Pumped(Protocol):
    """What the wheel drives: something with a pending wake-up time and a `pump()`."""

    wake_ns: int | None

    def pump(self) -> None: ...


class Timer:
    """Call `fn` at absolute monotonic ns `t_ns` (re-armed when the loop fires early)."""

    __slots__ = ("_fn", "_handle", "_loop", "t_ns")

    def __init__(self, loop: asyncio.AbstractEventLoop, t_ns: int, fn: Callable[[], Any]):
        self._loop, self._fn, self.t_ns = loop, fn, t_ns
        self._handle: asyncio.Handle | None = None
        self._arm()

    def _arm(self) -> None:
        delay = (self.t_ns - SLACK_NS // 2 - time.monotonic_ns()) / 1e9
        self._handle = self._loop.call_later(max(0.0, delay), self._fire)

    def _fire(self) -> None:
        if self.t_ns - time.monotonic_ns() > SLACK_NS:
            self._arm()
            return
        self._handle = None
        self._fn()

    @property
    def pending(self) -> bool:
        return self._handle is not None

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class ReleaseWheel:
    """One timer for every direction's next release, instead of one per direction: under
    load many releases fall within the same tick and are written in one loop wake-up."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._heap: list[tuple[int, int, Pumped]] = []
        self._seq = 0
        self._timer: Timer | None = None

    def wake(self, d: Pumped, t_ns: int) -> None:
        """Pump `d` at `t_ns` (unless it is already due to be pumped no later)."""
        if d.wake_ns is not None and d.wake_ns <= t_ns:
            return
        d.wake_ns = t_ns
        self._seq += 1
        heapq.heappush(self._heap, (t_ns, self._seq, d))
        top = self._heap[0][0]
        if self._timer is None or not self._timer.pending or top < self._timer.t_ns:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = Timer(self.loop, top, self._fire)

    def _fire(self) -> None:
        horizon = time.monotonic_ns() + SLACK_NS
        heap = self._heap
        while heap and heap[0][0] <= horizon:
            t_ns, _, d = heapq.heappop(heap)
            if d.wake_ns == t_ns:
                d.wake_ns = None
                d.pump()
        while heap and heap[0][2].wake_ns != heap[0][0]:
            heapq.heappop(heap)  # stale: that direction was pumped or re-timed since
        if heap and (self._timer is None or not self._timer.pending):
            self._timer = Timer(self.loop, heap[0][0], self._fire)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


class Lateness:
    """How late the proxy wrote each scheduled piece against its release time — the
    proxy's own accuracy, reported in its `stop` line (100 µs buckets up to 1 s). Early
    writes (within the slack) count as 0."""

    BUCKET_NS = 100_000
    BUCKETS = 10_000

    def __init__(self) -> None:
        self.counts = [0] * (self.BUCKETS + 1)
        self.n = 0
        self.max_ns = 0

    def add(self, late_ns: int) -> None:
        if late_ns > self.max_ns:
            self.max_ns = late_ns
        self.counts[min(self.BUCKETS, max(0, late_ns) // self.BUCKET_NS)] += 1
        self.n += 1

    def quantile_ms(self, q: float) -> float | None:
        """Upper edge of the bucket holding the q-quantile (None without data)."""
        if not self.n:
            return None
        rank, seen = q * self.n, 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                return (i + 1) * self.BUCKET_NS / 1e6
        return self.max_ns / 1e6

    def summary(self) -> dict[str, Any]:
        return {
            "pieces": self.n,
            "p50_ms": self.quantile_ms(0.5),
            "p99_ms": self.quantile_ms(0.99),
            "max_ms": self.max_ns / 1e6 if self.n else None,
        }
