"""Pick the transport for a protocol with the scenario's client settings."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Any

import locust

from core.client.sse import LIBRARY as SSE_LIBRARY
from core.client.tls import TLSSettings
from core.client.ws import LIBRARY as WS_LIBRARY
from core.formats import get_format
from core.scenario import HEADERS_ENV, PhaseConfig, Scenario
from loadtests.sse_transport import DEFAULT_KEEPALIVE_EXPIRY_S, SSETransport
from loadtests.transport import Transport, TransportContext
from loadtests.wire import RECV_SIZE
from loadtests.ws_transport import WSTransport


def make_transport(
    protocol: str,
    ctx: TransportContext,
    url: str,
    scenario: Scenario,
    *,
    cancel_url: str | None = None,
    sse_method: str | None = None,
    payload_format: str = "native",
    headers: tuple[tuple[str, str], ...] = (),
    tls: TLSSettings | None = None,
) -> Transport:
    """The transport of `protocol` speaking `payload_format` (a core.formats name; its SSE
    requests use the format's method unless `sse_method` says); `headers` on every
    request, `tls` how an https / wss server is verified.

    With a dead-peer watch (behaviour.dead_after_*), connecting (TCP, TLS, a WS upgrade)
    may take no longer than its silence either: a handshake that stays unanswered that
    long is a dead connection too, on both arms alike."""
    silence = scenario.behaviour.silence_s(scenario.server)
    if 0 < silence < ctx.connect_timeout_s:
        ctx = replace(ctx, connect_timeout_s=silence)
    fmt = get_format(payload_format)
    if protocol == "sse":
        method = sse_method or fmt.sse_method
        return SSETransport(
            ctx, url, method=method, cancel_url=cancel_url, fmt=fmt, headers=headers, tls=tls
        )
    if protocol == "ws":
        compression = scenario.server.ws_compression
        return WSTransport(ctx, url, compression=compression, fmt=fmt, headers=headers, tls=tls)
    raise ValueError(f"unknown protocol {protocol!r} (sse | ws)")


def request_headers(phase: PhaseConfig) -> tuple[tuple[str, str], ...]:
    """The phase's extra request headers: names from its config, values from
    $SSEVSWS_HEADERS (bench sets it for the load processes). A named header whose value is
    missing is an error at start, not a silently unauthenticated run."""
    if not phase.headers:
        return ()
    try:
        pairs = json.loads(os.environ.get(HEADERS_ENV) or "[]")
        values = {str(name).lower(): str(value) for name, value in pairs}
    except (ValueError, TypeError) as exc:
        raise RuntimeError(f"${HEADERS_ENV} is not a JSON list of [name, value]: {exc}") from None
    missing = [n for n in phase.headers if n.lower() not in values]
    if missing:
        raise RuntimeError(f"${HEADERS_ENV} has no value for header(s) {', '.join(missing)}")
    return tuple((n, values[n.lower()]) for n in phase.headers)


def client_settings(
    protocol: str,
    scenario: Scenario,
    *,
    sse_method: str | None = None,
    payload_format: str = "native",
    phase: PhaseConfig | None = None,
) -> dict[str, Any]:
    """What the manifest records about the client side of a phase (header values never:
    their names, each "redacted")."""
    tls = TLSSettings.from_dict(phase.tls if phase is not None else None)
    common = {
        "protocol": protocol,
        "payload_format": payload_format,
        "recv_size": RECV_SIZE,
        "tcp_nodelay": True,
        "timestamps": "time.monotonic_ns() when the read carrying the event returned",
        "resume": scenario.behaviour.resume,
        "restart": scenario.behaviour.restart,
        "resume_wait_ms": 0,
        "dead_after_s": scenario.behaviour.silence_s(scenario.server),
        "locust": locust.__version__,
        "tls": tls.describe(),
        "headers": {name: "redacted" for name in (phase.headers if phase else [])},
        "model": phase.model if phase else None,
    }
    if protocol == "sse":
        return {
            **common,
            "library": SSE_LIBRARY,
            "method": sse_method or get_format(payload_format).sse_method,
            "keepalive": True,
            "keepalive_expiry_s": DEFAULT_KEEPALIVE_EXPIRY_S,
        }
    deflate = scenario.server.ws_compression == "deflate"
    return {
        **common,
        "library": WS_LIBRARY,
        "extensions_offered": ["permessage-deflate"] if deflate else [],
        "compression": "deflate" if deflate else "off",
        "answers_pings": True,
    }
