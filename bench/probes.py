"""One stream through a client that timestamps every read: what a proxy delivers, and when.

`probe_sse()` / `probe_ws()` open a fresh connection, send one stream's request, and record
every read (time, bytes) and every token as the client core parses it, so proxy batching
shows as it happens (a read is never asked for a fixed number of bytes). The clock starts
just before the request is written (connect is excluded). Used by the nginx tests,
`benchmarks/proxy_probe.py`, and usable by the orchestrator as a pre-phase check. They are
plain functions (each runs its own asyncio loop over bench.aclient), callable from any
thread that has no running loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from bench.aclient import AsyncConnection, ClientError
from core.client.events import Closed, Done, Failed, StreamEvent, Token
from core.formats import get_format
from core.schedule import parse_params

NATIVE = get_format("native")


@dataclass
class _Probe:
    """What both probes share: the request time, per-token receive times, the done event."""

    url: str
    t_sent_ns: int = 0  # request (SSE) / start message (WS) written
    token_t_ns: list[int] = field(default_factory=list)  # receive time per content token
    token_seq: list[int] = field(default_factory=list)
    text_sha256: str = ""
    done: dict[str, Any] | None = None
    outcome: str = "error"
    error: str | None = None
    t_end_ns: int | None = None  # when the outcome was settled (end, cut, deadline)

    def _ms(self, t: int | None) -> float | None:
        return None if t is None else (t - self.t_sent_ns) / 1e6

    @property
    def ttft_ms(self) -> float | None:
        return self._ms(self.token_t_ns[0]) if self.token_t_ns else None

    @property
    def e2e_ms(self) -> float | None:
        return self._ms(self.token_t_ns[-1]) if self.token_t_ns else None

    @property
    def end_ms(self) -> float | None:
        return self._ms(self.t_end_ns)

    @property
    def tokens(self) -> int:
        return len(self.token_t_ns)

    @property
    def sha_ok(self) -> bool | None:
        if self.done is None:
            return None
        return self.done.get("sha256") == self.text_sha256 and self.done.get("count") == self.tokens


@dataclass
class SSEProbe(_Probe):
    """One SSE stream as a raw client saw it. Times are `time.monotonic_ns()`.

    outcome: "complete" (done event and a well-formed end), "cut" (the connection closed
    before the done event or mid-body), "timeout" (our own deadline), "http-<status>"
    (non-200), "error" (connect refused, reset, protocol error — see `error`).
    """

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    t_headers_ns: int | None = None
    t_first_byte_ns: int | None = None  # first body byte (before gunzip)
    t_last_byte_ns: int | None = None
    recvs: list[tuple[int, int]] = field(default_factory=list)  # (t, bytes) per recv()
    token_server_ns: list[int] = field(default_factory=list)
    comments: int = 0
    body_bytes: int = 0

    @property
    def first_byte_ms(self) -> float | None:
        return self._ms(self.t_first_byte_ns)

    @property
    def headers_ms(self) -> float | None:
        return self._ms(self.t_headers_ns)

    @property
    def deliveries(self) -> int:
        """Distinct receive instants that carried tokens (tokens / deliveries = batch size)."""
        return len(set(self.token_t_ns))

    def summary(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "status": self.status,
            "tokens": self.tokens,
            "ttft_ms": self.ttft_ms,
            "e2e_ms": self.e2e_ms,
            "first_byte_ms": self.first_byte_ms,
            "headers_ms": self.headers_ms,
            "end_ms": self.end_ms,
            "deliveries": self.deliveries,
            "recvs": len(self.recvs),
            "body_bytes": self.body_bytes,
            "content_encoding": self.headers.get("content-encoding"),
            "comments": self.comments,
            "sha_ok": self.sha_ok,
            "error": self.error,
        }


@dataclass
class WSProbe(_Probe):
    """One WS stream (start message → token frames → done) as a raw client saw it.
    outcome: complete | cut | timeout | error."""

    t_connect_ns: int = 0
    t_open_ns: int | None = None
    close_code: int | None = None
    close_reason: str = ""

    @property
    def connect_ms(self) -> float | None:
        return None if self.t_open_ns is None else (self.t_open_ns - self.t_connect_ns) / 1e6

    def summary(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "tokens": self.tokens,
            "ttft_ms": self.ttft_ms,
            "e2e_ms": self.e2e_ms,
            "connect_ms": self.connect_ms,
            "end_ms": self.end_ms,
            "close_code": self.close_code,
            "close_reason": self.close_reason,
            "sha_ok": self.sha_ok,
            "error": self.error,
        }


class _Recorder:
    """Collects a probe's tokens (time, seq, server stamp, text hash) and its done event."""

    def __init__(self, probe: _Probe) -> None:
        self.probe = probe
        self.hasher = hashlib.sha256()
        self.server_ns: list[int] = []

    def on_events(self, events: list[StreamEvent]) -> None:
        p = self.probe
        for ev in events:
            if isinstance(ev, Token):
                p.token_t_ns.append(ev.t_ns)
                p.token_seq.append(ev.seq)
                self.server_ns.append(ev.t_server_ns or 0)
                self.hasher.update(ev.text.encode("utf-8"))
            elif isinstance(ev, Done):
                p.done = {"count": ev.count, "sha256": ev.sha256}

    def finish(self) -> None:
        self.probe.text_sha256 = self.hasher.hexdigest()


def probe_sse(
    base_url: str,
    params: dict[str, Any],
    *,
    accept_gzip: bool = False,
    timeout_s: float = 30.0,
    connect_timeout_s: float = 5.0,
) -> SSEProbe:
    """GET one SSE stream over a fresh TCP connection; timestamp every read.

    With `accept_gzip` the request says `Accept-Encoding: gzip` (as browsers do) and a gzip
    body is inflated as it arrives, so tokens are timed when they become readable, not when
    the compressed bytes arrive.
    """
    return asyncio.run(_probe_sse(base_url, params, accept_gzip, timeout_s, connect_timeout_s))


async def _probe_sse(
    base_url: str, params: dict[str, Any], accept_gzip: bool, timeout_s: float, connect_s: float
) -> SSEProbe:
    stream = parse_params(params)
    probe = SSEProbe(url=f"{base_url}{NATIVE.sse_path}?{urlencode(params)}" if params else base_url)
    rec = _Recorder(probe)
    encoding = (("Accept-Encoding", "gzip" if accept_gzip else "identity"),)
    try:
        conn = await AsyncConnection.connect(
            base_url,
            "sse",
            extra_headers=encoding,
            timeout_s=connect_s,
            on_read=lambda t, n: probe.recvs.append((t, n)),
        )
    except ClientError as exc:
        probe.error = str(exc)
        return probe
    probe.t_sent_ns = conn.start(stream, rec.on_events)
    ended = await conn.wait_end(timeout_s)
    probe.t_end_ns = time.monotonic_ns()
    sse = conn.sse
    assert sse is not None
    if not ended:
        probe.outcome = "timeout"
    elif sse.complete and probe.done is not None:
        probe.outcome = "complete"
    else:
        # the connection closed before the done event or mid-body (e.g. nginx's
        # proxy_read_timeout fired): a cut stream, not a client bug
        probe.outcome = "cut"
        if isinstance(conn.end, Closed):
            probe.error = conn.end.reason
    probe.status = sse.status
    probe.headers = dict(sse.headers)
    probe.t_headers_ns = sse.t_head_ns
    probe.t_first_byte_ns = sse.t_first_byte_ns
    probe.t_last_byte_ns = sse.t_last_byte_ns
    probe.body_bytes = conn.take_bytes()
    probe.comments = sse.comments
    probe.token_server_ns = rec.server_ns
    rec.finish()
    if probe.status is not None and probe.status != 200:
        probe.outcome = f"http-{probe.status}"
    await conn.aclose()
    return probe


def probe_ws(base_url: str, params: dict[str, Any], *, timeout_s: float = 30.0) -> WSProbe:
    """Open the WS endpoint (compression off), start one stream, read frames until done,
    close or the deadline."""
    return asyncio.run(_probe_ws(base_url, params, timeout_s))


async def _probe_ws(base_url: str, params: dict[str, Any], timeout_s: float) -> WSProbe:
    stream = parse_params(params)
    probe = WSProbe(url=base_url.rstrip("/") + str(NATIVE.ws_path))
    rec = _Recorder(probe)
    probe.t_connect_ns = time.monotonic_ns()
    try:
        conn = await AsyncConnection.connect(base_url, "ws", timeout_s=5.0)
    except ClientError as exc:
        probe.outcome = "error"
        probe.error = str(exc)
        return probe
    assert conn.ws is not None
    probe.t_open_ns = conn.ws.t_open_ns
    probe.t_sent_ns = conn.start(stream, rec.on_events)
    ended = await conn.wait_end(timeout_s)
    probe.t_end_ns = time.monotonic_ns()
    end = conn.end
    if not ended:
        probe.outcome = "timeout"
    elif isinstance(end, Done):
        probe.outcome = "complete"
    elif isinstance(end, Failed):
        probe.outcome = "error"
        probe.error = end.error
    else:
        probe.outcome = "cut"
        probe.close_code = conn.ws.close_code or 1006
        probe.close_reason = conn.ws.close_reason or "no close frame"
    rec.finish()
    await conn.aclose()
    return probe
