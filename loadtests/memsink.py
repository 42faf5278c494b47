"""An in-memory RecordSink and the summary figures tests and benchmarks print."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from core.accounting import ConnectionAccount, StreamAccount
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


def summarize(streams: list[StreamAccount]) -> dict[str, Any]:
    """Median TTFT / ITL, delivery latency percentiles and integrity totals, in ms."""
    ttft = [a.ttft_ns / 1e6 for a in streams if a.ttft_ns is not None]
    itl = [g / 1e6 for a in streams for g in a.itl_ns]
    delivery = [
        (r - s) / 1e6
        for a in streams
        for r, s in zip(a.t_recv_ns, a.t_server_ns, strict=True)
        if s is not None
    ]
    return {
        "streams": len(streams),
        "outcomes": dict(Counter(a.outcome for a in streams)),
        "ttft_ms_median": statistics.median(ttft) if ttft else None,
        "ttft_ms_p99": nearest_rank(ttft, 0.99),
        "itl_ms_median": statistics.median(itl) if itl else None,
        "itl_ms_p99": nearest_rank(itl, 0.99),
        "delivery_ms_p50": nearest_rank(delivery, 0.50),
        "delivery_ms_p99": nearest_rank(delivery, 0.99),
        "tokens_received": sum(a.n_received for a in streams),
        "tokens_expected": sum(a.labels.tokens_expected for a in streams),
        "lost": sum(a.n_lost or 0 for a in streams),
        "dup": sum(a.n_dup for a in streams),
        "out_of_order": sum(a.n_out_of_order for a in streams),
        "checksum_ok": sum(1 for a in streams if a.checksum_ok),
        "checksum_bad": sum(1 for a in streams if a.checksum_ok is False),
        "reconnects": sum(a.reconnects for a in streams),
        "errors": sorted({a.error for a in streams if a.error})[:5],
    }
