"""Pick the transport for a protocol with the scenario's client settings."""

from __future__ import annotations

from typing import Any

import locust

from core.client.sse import LIBRARY as SSE_LIBRARY
from core.client.tls import TLSSettings
from core.client.ws import LIBRARY as WS_LIBRARY
from core.formats import get_format
from core.scenario import Scenario
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
    sse_method: str = "GET",
    payload_format: str = "native",
    headers: tuple[tuple[str, str], ...] = (),
    tls: TLSSettings | None = None,
) -> Transport:
    """The transport of `protocol` speaking `payload_format` (a core.formats name);
    `headers` on every request, `tls` how an https / wss server is verified."""
    fmt = get_format(payload_format)
    if protocol == "sse":
        return SSETransport(
            ctx, url, method=sse_method, cancel_url=cancel_url, fmt=fmt, headers=headers, tls=tls
        )
    if protocol == "ws":
        compression = scenario.server.ws_compression
        return WSTransport(ctx, url, compression=compression, fmt=fmt, headers=headers, tls=tls)
    raise ValueError(f"unknown protocol {protocol!r} (sse | ws)")


def client_settings(
    protocol: str, scenario: Scenario, *, sse_method: str = "GET", payload_format: str = "native"
) -> dict[str, Any]:
    """What the manifest records about the client side of a phase."""
    common = {
        "protocol": protocol,
        "payload_format": payload_format,
        "recv_size": RECV_SIZE,
        "tcp_nodelay": True,
        "timestamps": "time.monotonic_ns() when the read carrying the event returned",
        "resume": scenario.behaviour.resume,
        "resume_wait_ms": 0,
        "locust": locust.__version__,
    }
    if protocol == "sse":
        return {
            **common,
            "library": SSE_LIBRARY,
            "method": sse_method,
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
