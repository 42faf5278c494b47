"""An in-memory RecordSink and the summary figures tests and benchmarks print."""

from __future__ import annotations

import hashlib
import statistics
from collections import Counter
from typing import Any

from core.accounting import NO_STAMP, ConnectionAccount, StreamAccount
from core.stats import nearest_rank


class MemorySink:
    """Keeps every finished stream and closed connection (for tests and the driver)."""

    def __init__(self) -> None:
        self.streams: list[StreamAccount] = []
        self.connections: list[ConnectionAccount] = []

    def stream(self, acct: StreamAccount) -> None:
        self.streams.append(acct)

    def connection(self, acct: ConnectionAccount) -> None:
        self.connections.append(acct)


def _since_send_ms(streams: list[StreamAccount], attr: str) -> float | None:
    vals = [
        (getattr(a, attr) - a.t_send_ns) / 1e6
        for a in streams
        if getattr(a, attr) is not None and a.t_send_ns is not None
    ]
    return statistics.median(vals) if vals else None


def texts_digest(streams: list[StreamAccount]) -> str:
    """One SHA-256 over every stream's id and received texts: two runs that sent the same
    stream ids got identical texts iff their digests are equal."""
    h = hashlib.sha256()
    for line in sorted(f"{a.labels.stream_id}:{a.received_sha256}" for a in streams):
        h.update(line.encode())
    return h.hexdigest()


def summarize(streams: list[StreamAccount]) -> dict[str, Any]:
    """Median TTFT / ITL (and time to first byte / event), delivery latency percentiles,
    bytes per token and integrity totals, in ms.

    ``ttft_minus_server_ms_*``: the harness's TTFT minus the server's true first send, per
    stream = the first token's arrival − its server send stamp (TTFT is measured from the
    request on the client's clock; the server's first send from the same request on the
    same host's monotonic clock, so the request time cancels out).
    """
    ttft = [a.ttft_ns / 1e6 for a in streams if a.ttft_ns is not None]
    first = [
        (a.t_recv_ns[0] - a.t_server_ns[0]) / 1e6
        for a in streams
        if a.t_recv_ns and a.t_server_ns[0] != NO_STAMP
    ]
    itl = [g / 1e6 for a in streams for g in a.itl_ns]
    delivery = [
        (r - s) / 1e6
        for a in streams
        for r, s in zip(a.t_recv_ns, a.t_server_ns, strict=True)
        if s != NO_STAMP
    ]
    nbytes = [n for a in streams for n in a.nbytes]
    tokens = sum(a.n_received for a in streams)
    return {
        "streams": len(streams),
        "outcomes": dict(Counter(a.outcome for a in streams)),
        "ttft_ms_median": statistics.median(ttft) if ttft else None,
        "ttft_ms_p99": nearest_rank(ttft, 0.99),
        "ttft_minus_server_ms_p50": nearest_rank(first, 0.50),
        "ttft_minus_server_ms_p99": nearest_rank(first, 0.99),
        "ttfb_ms_median": _since_send_ms(streams, "t_first_byte_ns"),
        "first_event_ms_median": _since_send_ms(streams, "t_first_event_ns"),
        "itl_ms_median": statistics.median(itl) if itl else None,
        "itl_ms_p99": nearest_rank(itl, 0.99),
        "delivery_ms_p50": nearest_rank(delivery, 0.50),
        "delivery_ms_p99": nearest_rank(delivery, 0.99),
        "tokens_received": tokens,
        "event_bytes_per_token": statistics.fmean(nbytes) if nbytes else None,
        "app_bytes_per_token": sum(a.bytes_in for a in streams) / tokens if tokens else None,
        "texts_sha256": texts_digest(streams),
        "tokens_expected": sum(a.labels.tokens_expected or 0 for a in streams),
        "lost": sum(a.n_lost or 0 for a in streams),
        "dup": sum(a.n_dup for a in streams),
        "out_of_order": sum(a.n_out_of_order for a in streams),
        "checksum_ok": sum(1 for a in streams if a.checksum_ok),
        "checksum_bad": sum(1 for a in streams if a.checksum_ok is False),
        "reconnects": sum(a.reconnects for a in streams),
        "streams_concurrent_max": concurrent_max(streams),
        "dead_declared": sum(a.dead_declared for a in streams),
        "errors": sorted({a.error for a in streams if a.error})[:5],
    }


def concurrent_max(streams: list[StreamAccount]) -> int:
    """The most streams in flight at once: between the first request sent and the end,
    on the client's clock (a stream that never started is not counted)."""
    edges = sorted(
        edge
        for a in streams
        if a.t_send_ns is not None and a.t_end_ns is not None
        for edge in ((a.t_send_ns, 1), (a.t_end_ns, -1))
    )
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most
