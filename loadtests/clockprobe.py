"""Round trips to a server's ``/healthz`` for the clock-offset estimate (core.clocksync),
and the facts that say which monotonic clock this process reads.

Each round trip opens its own connection first (the `websockets` server closes the
connection after answering ``/healthz``), then stamps the request's send and the answer's
receive with this process's monotonic clock around the server's ``monotonic_ns``. Plain
`http.client`, so under Locust it runs on gevent's patched sockets; a few ms per probe.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

from core.client.tls import TLSSettings, context_for, is_tls_url
from core.clocksync import InconsistentRoundTrips, RoundTrip, estimate

DEFAULT_ROUND_TRIPS = 8


def clock_facts() -> dict[str, Any]:
    """Which clock this process reads: the kernel boot (``boot_id``) and the time
    namespace (``time_ns``, e.g. "time:[4026531834]"); processes with both equal read one
    CLOCK_MONOTONIC. Missing facts are None."""
    facts: dict[str, Any] = {"hostname": socket.gethostname(), "boot_id": None, "time_ns": None}
    with contextlib.suppress(OSError), open("/proc/sys/kernel/random/boot_id") as f:
        facts["boot_id"] = f.read().strip()
    with contextlib.suppress(OSError):
        facts["time_ns"] = os.readlink("/proc/self/ns/time")
    return facts


def healthz_address(url: str) -> tuple[str, int]:
    """(host, port) of the server behind a phase URL (http:// or ws:// base)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}")
    default = 443 if parts.scheme in ("https", "wss") else 80
    return parts.hostname, parts.port or default


def round_trip(
    host: str, port: int, timeout_s: float, context: ssl.SSLContext | None = None
) -> RoundTrip:
    """One GET /healthz on a fresh connection (TLS with `context`, its handshake before the
    stamps); ValueError when the answer carries no ``monotonic_ns`` (a server that does not
    offer it)."""
    conn = (
        http.client.HTTPSConnection(host, port, timeout=timeout_s, context=context)
        if context is not None
        else http.client.HTTPConnection(host, port, timeout=timeout_s)
    )
    try:
        conn.connect()
        t0 = time.monotonic_ns()
        conn.request("GET", "/healthz", headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read()
        t1 = time.monotonic_ns()
    finally:
        conn.close()
    if resp.status != 200:
        raise ValueError(f"/healthz answered {resp.status}")
    try:
        ts = json.loads(body)["monotonic_ns"]
    except (ValueError, KeyError, TypeError):
        raise ValueError("the server's /healthz has no monotonic_ns") from None
    if not isinstance(ts, int):
        raise ValueError(f"/healthz monotonic_ns is not an integer: {ts!r}")
    return RoundTrip(t0, ts, t1)


def probe(
    url: str,
    n: int = DEFAULT_ROUND_TRIPS,
    timeout_s: float = 2.0,
    tls: TLSSettings | None = None,
) -> dict[str, Any]:
    """`n` round trips → ``ClockEstimate.to_dict()`` plus ``t_ns`` (when, this clock), or
    ``{"error": why}``; never raises (a missing estimate must not stop a phase). An https /
    wss URL is verified with `tls`."""
    t_ns = time.monotonic_ns()
    try:
        host, port = healthz_address(url)
        ctx = context_for(tls or TLSSettings()) if is_tls_url(url) else None
        trips = [round_trip(host, port, timeout_s, ctx) for _ in range(n)]
        return {"t_ns": t_ns, **estimate(trips).to_dict()}
    except (OSError, ValueError, http.client.HTTPException) as exc:
        kind = "inconsistent round trips" if isinstance(exc, InconsistentRoundTrips) else ""
        return {"t_ns": t_ns, "error": f"{kind or type(exc).__name__}: {exc}"}
