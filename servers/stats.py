"""Server counters and the server-lag sketch, updated on the hot path as plain ints.

Per-token work must stay tiny (`make perf` measures the servers against raw asyncio),
so nothing here calls prometheus_client per token: the emission loop increments
attributes of one `Stats` object, and `servers.metrics` turns them into Prometheus
families (and the `/v1/stats` JSON) only when someone scrapes.

Server lag = send stamp − scheduled time. It goes into `LagSketch`, a
log-linear histogram in microseconds: exact below 64 µs, then 32 sub-buckets per power
of two (≤ 3.2 % relative error), so p50/p99 are good to a few percent at any scale and
recording costs a handful of integer operations.
"""

from __future__ import annotations

import time
from typing import Any

#: Why the server closed a connection itself (servers.guard, servers.ws_session).
SLOW_CONSUMER = "slow_consumer"
IDLE = "idle"
HEADER_TIMEOUT = "header_timeout"
CLOSE_REASONS = (SLOW_CONSUMER, IDLE, HEADER_TIMEOUT)
#: Why a request was refused before it reached its endpoint (servers.access).
REFUSE_REASONS = ("host", "origin", "token")

_SUB_BITS = 5
_SUB = 1 << _SUB_BITS  # 32 sub-buckets per octave
_LINEAR = 2 * _SUB  # values below 64 µs get their own bucket
_N_BUCKETS = 64 * _SUB  # covers up to 2**63 µs, far beyond any real lag


def bucket_index(us: int) -> int:
    """Bucket of a non-negative lag in µs (log-linear, see module docstring)."""
    if us < _LINEAR:
        return us
    e = us.bit_length() - _SUB_BITS - 1
    return (e << _SUB_BITS) + (us >> e)


def bucket_bounds(idx: int) -> tuple[int, int]:
    """[low, high) in µs of bucket `idx` (inverse of bucket_index)."""
    if idx < _LINEAR:
        return idx, idx + 1
    e = (idx >> _SUB_BITS) - 1
    m = (idx & (_SUB - 1)) + _SUB
    return m << e, (m + 1) << e


class LagSketch:
    """Histogram of server lag. `record` is the hot path; the rest runs at scrape time."""

    __slots__ = ("counts", "early", "max_ns", "n", "sum_ns")

    def __init__(self) -> None:
        self.counts = [0] * _N_BUCKETS
        self.n = 0
        self.sum_ns = 0
        self.max_ns = 0
        #: Tokens sent before their due time (should stay 0: the engine never sends early).
        self.early = 0

    def record(self, lag_ns: int) -> None:
        self.n += 1
        if lag_ns < 0:
            self.early += 1
            lag_ns = 0
        self.sum_ns += lag_ns
        if lag_ns > self.max_ns:
            self.max_ns = lag_ns
        us = lag_ns // 1000
        if us < _LINEAR:
            self.counts[us] += 1
        else:
            e = us.bit_length() - _SUB_BITS - 1
            self.counts[(e << _SUB_BITS) + (us >> e)] += 1

    def copy(self) -> LagSketch:
        other = LagSketch()
        other.counts = list(self.counts)
        other.n, other.sum_ns, other.max_ns, other.early = (
            self.n,
            self.sum_ns,
            self.max_ns,
            self.early,
        )
        return other

    def minus(self, base: LagSketch) -> LagSketch:
        """The samples recorded since `base` was copied (max is kept by the caller)."""
        out = LagSketch()
        out.counts = [a - b for a, b in zip(self.counts, base.counts, strict=True)]
        out.n = self.n - base.n
        out.sum_ns = self.sum_ns - base.sum_ns
        out.early = self.early - base.early
        return out

    def quantile_us(self, q: float) -> float | None:
        """Approximate q-quantile in µs (bucket midpoint), or None without samples."""
        if self.n <= 0:
            return None
        rank = q * (self.n - 1)
        seen = 0
        for idx, c in enumerate(self.counts):
            if c and seen + c > rank:
                lo, hi = bucket_bounds(idx)
                return lo if hi - lo == 1 else (lo + hi) / 2
            seen += c
        lo, hi = bucket_bounds(_N_BUCKETS - 1)
        return float(hi)

    def cumulative_le_us(self, bounds_us: list[int]) -> list[int]:
        """Cumulative counts at each upper bound (bounds must be bucket edges, e.g. 2**k)."""
        out: list[int] = []
        total = 0
        idx = 0
        for b in bounds_us:
            limit = bucket_index(b)  # first bucket starting at b
            while idx < limit:
                total += self.counts[idx]
                idx += 1
            out.append(total)
        return out


class Stats:
    """Everything a server counts. Plain attributes: `+= 1` on the hot path, read at scrape."""

    __slots__ = (
        "_window_base",
        "_window_counts",
        "_window_since",
        "bytes_control",
        "bytes_heartbeat",
        "bytes_token",
        "connections_closed",
        "disconnects",
        "heartbeats_sent",
        "lag",
        "requests_refused",
        "started_at",
        "streams_active",
        "streams_cancelled",
        "streams_completed",
        "streams_disconnected",
        "streams_dropped",
        "streams_resumed",
        "streams_started",
        "tokens_sent",
        "tokens_wasted",
        "ws_connections_total",
        "ws_protocol_errors",
    )

    def __init__(self) -> None:
        self.started_at = time.time()
        self.streams_active = 0
        self.streams_started = 0
        self.streams_resumed = 0
        self.streams_completed = 0
        self.streams_cancelled = 0
        self.streams_disconnected = 0
        self.streams_dropped = 0
        self.tokens_sent = 0
        self.tokens_wasted = 0
        self.heartbeats_sent = 0
        self.bytes_token = 0
        self.bytes_heartbeat = 0
        self.bytes_control = 0
        self.ws_connections_total = 0
        self.ws_protocol_errors = 0
        #: Connections the server closed, by reason (CLOSE_REASONS).
        self.connections_closed = dict.fromkeys(CLOSE_REASONS, 0)
        #: Streams whose client left, by what told the server (core.streamlog.ENDED_BY:
        #: write, ping_timeout, close, shutdown).
        self.disconnects: dict[str, int] = {}
        #: Requests refused by the access policy, by reason (REFUSE_REASONS).
        self.requests_refused = dict.fromkeys(REFUSE_REASONS, 0)
        self.lag = LagSketch()
        self._window_base = LagSketch()
        self._window_counts: dict[str, int] = {}
        self._window_since = time.monotonic()

    _WINDOW_FIELDS = (
        "streams_started",
        "streams_completed",
        "streams_cancelled",
        "streams_disconnected",
        "streams_dropped",
        "tokens_sent",
        "tokens_wasted",
        "bytes_token",
    )

    def reset_window(self) -> None:
        """Start a new `/v1/stats` window (Prometheus counters keep counting)."""
        self._window_base = self.lag.copy()
        self._window_counts = {f: getattr(self, f) for f in self._WINDOW_FIELDS}
        self.lag.max_ns = 0  # max is only meaningful per window; Prometheus does not export it
        self._window_since = time.monotonic()

    def window(self) -> dict[str, Any]:
        """Counts and lag percentiles (µs) since start or the last reset_window()."""
        win = self.lag.minus(self._window_base)
        elapsed = time.monotonic() - self._window_since
        counts = {f: getattr(self, f) - self._window_counts.get(f, 0) for f in self._WINDOW_FIELDS}
        lag: dict[str, Any] = {"count": win.n, "early": win.early}
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)):
            lag[name] = win.quantile_us(q)
        lag["mean"] = (win.sum_ns / win.n / 1000) if win.n else None
        lag["max"] = self.lag.max_ns / 1000 if win.n else None
        return {
            "window_s": round(elapsed, 3),
            "streams_active": self.streams_active,
            **counts,
            "tokens_per_s": counts["tokens_sent"] / elapsed if elapsed > 0 else None,
            "lag_us": lag,
        }
