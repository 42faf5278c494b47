"""Prometheus exposition and the `/healthz` and `/v1/stats` bodies, built at scrape time.

A per-server `CollectorRegistry` (never the global one) holds one custom collector that
reads the plain-int `Stats` (so the hot path never touches prometheus_client) plus the
standard process collector (CPU seconds, RSS, open fds) for resource figures.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from servers.config import ServerState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Lag histogram bounds: powers of two in µs (64 µs … ~1 s) — exact edges of the sketch.
_LAG_BOUNDS_US = [1 << k for k in range(6, 21)]


class _StatsCollector(Collector):
    def __init__(self, state: ServerState, connections: Callable[[], int]) -> None:
        self._state = state
        self._connections = connections

    def collect(self) -> Iterator[Metric]:
        st = self._state.stats
        cfg = self._state.config
        info = InfoMetricFamily("ssevsws_server", "Reference server configuration")
        info.add_metric([], {k: str(v) for k, v in cfg.describe().items()})
        yield info
        yield GaugeMetricFamily(
            "ssevsws_connections_active", "Open client connections", value=self._connections()
        )
        yield GaugeMetricFamily(
            "ssevsws_streams_active", "Streams currently emitting", value=st.streams_active
        )
        started = CounterMetricFamily("ssevsws_streams_started", "Streams started (incl. resumed)")
        started.add_metric([], st.streams_started)
        yield started
        resumed = CounterMetricFamily("ssevsws_streams_resumed", "Streams resumed after a seq")
        resumed.add_metric([], st.streams_resumed)
        yield resumed
        for name, doc, value in (
            (
                "ssevsws_streams_completed",
                "Streams that sent their done event",
                st.streams_completed,
            ),
            ("ssevsws_streams_cancelled", "Streams stopped by a cancel", st.streams_cancelled),
            ("ssevsws_streams_disconnected", "Streams whose client left", st.streams_disconnected),
            ("ssevsws_streams_dropped", "Streams cut on purpose (drop_after)", st.streams_dropped),
            ("ssevsws_tokens_sent", "Token frames written", st.tokens_sent),
            (
                "ssevsws_tokens_wasted",
                "Tokens due by the time a stream was stopped early that were never written",
                st.tokens_wasted,
            ),
            ("ssevsws_heartbeats_sent", "SSE keepalive comments written", st.heartbeats_sent),
            ("ssevsws_ws_connections", "WebSocket connections accepted", st.ws_connections_total),
            (
                "ssevsws_ws_protocol_errors",
                "WebSocket connections closed for a protocol violation",
                st.ws_protocol_errors,
            ),
        ):
            c = CounterMetricFamily(name, doc)
            c.add_metric([], value)
            yield c
        for name, doc, label, counts in (
            (
                "ssevsws_connections_closed",
                "Connections the server closed itself: slow consumer, idle, header timeout",
                "reason",
                st.connections_closed,
            ),
            (
                "ssevsws_requests_refused",
                "Requests refused by the access policy: Host, Origin, token",
                "reason",
                st.requests_refused,
            ),
            (
                "ssevsws_streams_refused",
                "Streams refused by a limit: per connection, active streams, planned tokens",
                "limit",
                self._state.admission.refused,
            ),
            (
                "ssevsws_stream_disconnects",
                "Streams whose client left, by what told the server: a failed write, an "
                "unanswered WS ping, the WS read loop (close / EOF), shutdown",
                "detected_by",
                st.disconnects,
            ),
        ):
            fam = CounterMetricFamily(name, doc, labels=[label])
            for key, value in counts.items():
                fam.add_metric([key], value)
            yield fam
        by = CounterMetricFamily(
            "ssevsws_bytes_sent",
            "Application bytes written (SSE framing included; no chunked/WS framing)",
            labels=["part"],
        )
        by.add_metric(["token"], st.bytes_token)
        by.add_metric(["heartbeat"], st.bytes_heartbeat)
        by.add_metric(["control"], st.bytes_control)
        yield by
        lag = st.lag
        cum = lag.cumulative_le_us(_LAG_BOUNDS_US)
        buckets = [(f"{b / 1e6:.6f}", c) for b, c in zip(_LAG_BOUNDS_US, cum, strict=True)]
        buckets.append(("+Inf", lag.n))
        yield HistogramMetricFamily(
            "ssevsws_server_lag_seconds",
            "Server lag: send stamp minus scheduled time, per token",
            buckets=buckets,
            sum_value=lag.sum_ns / 1e9,
        )


def make_registry(state: ServerState, connections: Callable[[], int]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatsCollector(state, connections))
    ProcessCollector(registry=registry)
    return registry


def render_metrics(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def healthz_body(state: ServerState) -> bytes:
    """`GET /healthz`; ``monotonic_ns`` is the server's clock as it answers, so a client can
    estimate its own clock's offset from round trips (core.clocksync)."""
    return _dumps(
        {
            "status": "ok",
            "kind": state.config.kind,
            "pid": state.pid,
            "monotonic_ns": time.monotonic_ns(),
        }
    )


def stats_body(state: ServerState, connections: int, reset: bool = False) -> bytes:
    """`GET /v1/stats`: window counters and lag percentiles; `reset` starts a new window
    after taking this snapshot."""
    body = {
        "kind": state.config.kind,
        "pid": state.pid,
        "config": state.config.describe(),
        "connections_active": connections,
        **state.stats.window(),
        # since the server started (not per window)
        "connections_closed": dict(state.stats.connections_closed),
        "requests_refused": dict(state.stats.requests_refused),
        "streams_refused": dict(state.admission.refused),
    }
    if reset:
        state.stats.reset_window()
    return _dumps(body)
