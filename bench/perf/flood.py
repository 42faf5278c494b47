"""The perf load client: an asyncio process that loads one server and measures it.

Run as ``python -m bench.perf.flood '<json spec>'`` (the perf command starts it pinned to
the client core and reads one JSON object from its stdout). Modes:

- ``flood``: N concurrent streams with ttft 0 and gap 0 (the server yields once per token);
  a stream that ends is replaced at once on the same connection where possible, so N
  streams stay in flight. After every stream has delivered, `warmup_s`, then a window of
  `window_s`: tokens received in it and the server's CPU time (psutil on its PID) give
  tokens/s and server µs per token.
- ``paced``: N streams of `tokens` at `gap_ms` (50 tokens/s), starts spread over `spread_s`;
  the rate received in a window where all are running, against the nominal N·1000/gap, and
  how late each stream's end arrived against its schedule.
- ``idle``: N connections each holding a stream whose first token is far away (SSE with
  heartbeat comments, WS with pings), opened `batch` at a time; server RSS sampled as they
  open (slope = bytes per connection), then CPU and bytes written/read by the server while
  all are held for `hold_s`.

Tokens are counted by the client core (bench.aclient over core.client), exactly as the load
test counts them: content tokens only — the retry hint, heartbeat comments, pings and the
done event are not tokens — with one callback per read and nothing else per token. Every
connection is its own asyncio protocol (no connection pool, so no pool limit). Everything
is bounded: `limit_s` caps each stream and the whole run; connections are reset (RST, no
TIME_WAIT) at the end of the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.aclient import AsyncConnection, ClientError
from core.client.events import Closed, Done, Failed, StreamEvent, Token
from core.schedule import StreamParams
from core.stats import nearest_rank


def raise_nofile() -> tuple[int, int]:
    """Raise the open-files soft limit to the hard limit; the new (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


class ServerProbe:
    """CPU seconds, RSS and syscall I/O bytes of the server process (and its children)."""

    def __init__(self, pid: int | None) -> None:
        self.proc = psutil.Process(pid) if pid else None

    def _procs(self) -> list[psutil.Process]:
        if self.proc is None:
            return []
        try:
            return [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            return [self.proc]

    def sample(self) -> dict[str, float]:
        cpu = rss = wchar = rchar = 0.0
        for p in self._procs():
            with contextlib.suppress(psutil.Error), p.oneshot():
                t = p.cpu_times()
                cpu += t.user + t.system
                rss += p.memory_info().rss
                io = p.io_counters()
                wchar += io.write_chars
                rchar += io.read_chars
        return {"t": time.monotonic(), "cpu_s": cpu, "rss": rss, "wchar": wchar, "rchar": rchar}


@dataclass
class State:
    total: int = 0  # events (SSE) / text messages (WS) received
    started: int = 0  # streams that delivered at least one event
    stop: bool = False
    errors: list[str] = field(default_factory=list)
    streams_done: int = 0
    lateness_ms: list[float] = field(default_factory=list)
    kept: list[float] = field(default_factory=list)  # scheduled / actual first→last span
    connect_ms: list[float] = field(default_factory=list)
    opened: int = 0
    #: paced: (first, last) token time of every finished stream, and the first-token time
    #: of streams still running — the streams active in the window (`active_seconds`)
    spans: list[tuple[float, float]] = field(default_factory=list)
    live: dict[str, float] = field(default_factory=dict)

    def first_token(self, sid: str, t: float) -> None:
        self.live[sid] = t

    def active_seconds(self, w0: float, w1: float) -> float:
        """Stream-seconds of token flow inside the window [w0, w1] (a stream counts from its
        first to its last token; one still running counts up to w1)."""
        ends = [*self.spans, *((t, w1) for t in self.live.values())]
        return sum(max(0.0, min(b, w1) - max(a, w0)) for a, b in ends)

    def error(self, msg: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(msg)


def _params(spec: dict[str, Any], sid: str) -> StreamParams:
    return StreamParams(
        seed=int(spec.get("seed", 1)),
        tokens=int(spec["tokens"]),
        ttft_ms=float(spec.get("ttft_ms", 0.0)),
        gap_ms=float(spec.get("gap_ms", 0.0)),
        stream=sid,
    )


def _finished(st: State, p: StreamParams, t_send: float, t_first: float, t_last: float) -> None:
    """A stream ended: how late its end was against the schedule, and the share of the
    scheduled rate it kept between its first and last event."""
    st.streams_done += 1
    if st.live.pop(str(p.stream), None) is not None:
        st.spans.append((t_first, t_last))
    sched = (p.ttft_ms + (p.n_tokens - 1) * p.gap_ms) / 1000
    st.lateness_ms.append((t_last - t_send - sched) * 1000)
    span = (p.n_tokens - 1) * p.gap_ms / 1000
    if span > 0 and t_last > t_first > 0:
        st.kept.append(min(span / (t_last - t_first), 10.0))


# ----------------------------------------------------------------------------- streams
class _Seen:
    """One load task's view of its streams: counts the tokens of each read (one callback a
    read, no per-token work beyond the client core's)."""

    __slots__ = ("delivered", "sid", "st", "t_first", "t_last", "ws")

    def __init__(self, st: State, ws: bool) -> None:
        self.st = st
        self.ws = ws
        self.delivered = False  # one of this task's streams delivered a token
        self.sid = ""
        self.t_first = self.t_last = 0.0

    def begin(self, sid: str) -> None:
        self.sid = sid
        self.t_first = self.t_last = 0.0

    def on_events(self, events: list[StreamEvent]) -> None:
        n = t = 0
        for ev in events:
            if ev.__class__ is Token:
                n += 1
                t = ev.t_ns
            elif self.ws and ev.__class__ is Done:
                self.t_last = ev.t_ns / 1e9  # a WS stream ends at its done message
        if n:
            st = self.st
            st.total += n
            if not self.ws or not self.t_last:
                self.t_last = t / 1e9
            if not self.t_first:
                self.t_first = t / 1e9
                st.first_token(self.sid, self.t_first)
            if not self.delivered:
                self.delivered = True
                st.started += 1


def _compression(spec: dict[str, Any], default: bool) -> str:
    """Offer permessage-deflate (as browsers do) when the spec says so (WS only)."""
    return "deflate" if spec["proto"] == "ws" and spec.get("offer_deflate", default) else "off"


async def load_stream(
    spec: dict[str, Any], st: State, i: int, *, repeat: bool, delay_s: float = 0.0
) -> None:
    """Streams one after another on one connection (a new one when the server closed it),
    tokens counted by the client core; each stream's end is timed against its schedule."""
    if delay_s:
        await asyncio.sleep(delay_s)
    proto = spec["proto"]
    limit_s = float(spec.get("limit_s", 120))
    seen = _Seen(st, proto == "ws")
    conn: AsyncConnection | None = None
    k = 0
    try:
        while not st.stop:
            if conn is None or not conn.reusable:
                if conn is not None:
                    conn.abort()
                conn = await AsyncConnection.connect(
                    spec["url"], proto, compression=_compression(spec, True), timeout_s=15
                )
            p = _params(spec, f"{i}.{k}")
            k += 1
            seen.begin(str(p.stream))
            t_send = conn.start(p, seen.on_events) / 1e9
            if not await conn.wait_end(limit_s):
                st.error(f"{proto}: no end within {limit_s:g} s")
                return
            if st.stop:
                return
            end = conn.end
            if isinstance(end, Failed):
                st.error(f"{proto}: {end.error}"[:160])
                return
            if isinstance(end, Closed):
                st.error(f"{proto}: {end.reason}"[:160])
                return
            _finished(st, p, t_send, seen.t_first, seen.t_last)
            if not repeat:
                return
    except ClientError as exc:
        st.error(f"{proto}: {exc}")
    except Exception as exc:  # reported in the phase's errors, never silently lost
        st.error(f"{proto}: {type(exc).__name__}: {exc}")
    finally:
        if conn is not None:
            conn.abort()  # RST, not FIN: no TIME_WAIT left behind by big phases


# ----------------------------------------------------------------------------- phases
async def _wait(pred, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while not pred():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def _profile_window(spec: dict[str, Any]) -> asyncio.Future[str | None] | None:
    """With `profile_path` in the spec: sample the server with py-spy for the window (in a
    thread: py-spy runs as its own process, this loop keeps reading)."""
    path = spec.get("profile_path")
    if not path or not spec.get("server_pid"):
        return None
    from bench.perf.profile import record

    secs = float(spec["window_s"])
    return asyncio.ensure_future(
        asyncio.to_thread(record, int(spec["server_pid"]), secs, Path(path))
    )


async def run_load(spec: dict[str, Any]) -> dict[str, Any]:
    """flood / paced: returns tokens/s in the window, server CPU, µs/token, lateness."""
    mode = spec["mode"]
    n = int(spec["n"])
    limit_s = float(spec.get("limit_s", 120))
    t_begin = time.monotonic()
    probe = ServerProbe(spec.get("server_pid"))
    me = psutil.Process()
    st = State()
    spread = float(spec.get("spread_s", 0.0))
    tasks = [
        asyncio.create_task(
            load_stream(spec, st, i, repeat=mode == "flood", delay_s=spread * i / n)
        )
        for i in range(n)
    ]
    all_started = await _wait(lambda: st.started >= n, min(limit_s / 2, 30 + spread))
    t_ready = time.monotonic() - t_begin
    await asyncio.sleep(float(spec.get("warmup_s", 1.0)))
    s0, c0, tot0 = probe.sample(), me.cpu_times(), st.total
    profiling = _profile_window(spec)
    await asyncio.sleep(float(spec["window_s"]))
    s1, c1, tot1 = probe.sample(), me.cpu_times(), st.total
    profile_error = await profiling if profiling is not None else None
    active_s = st.active_seconds(s0["t"], s1["t"])
    if mode == "paced":  # let the streams finish: lateness of every stream's end
        rest = max(0.0, limit_s - (time.monotonic() - t_begin) - 5)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), rest)
    st.stop = True
    for t in tasks:
        if not t.done():
            t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    dt = s1["t"] - s0["t"]
    tokens = tot1 - tot0
    cpu = s1["cpu_s"] - s0["cpu_s"]
    client_cpu = (c1.user - c0.user) + (c1.system - c0.system)
    out: dict[str, Any] = {
        "mode": mode,
        "proto": spec["proto"],
        "n": n,
        "all_started": all_started,
        "streams_started": st.started,
        "ready_s": round(t_ready, 3),
        "window_s": round(dt, 3),
        "tokens": tokens,
        "tokens_per_s": tokens / dt if dt > 0 else None,
        "server_cpu_s": cpu,
        "server_cpu_pct": 100 * cpu / dt if dt > 0 else None,
        "server_us_per_token": 1e6 * cpu / tokens if tokens else None,
        "tokens_per_server_cpu_s": tokens / cpu if cpu > 0 else None,
        "server_rss_mib": s1["rss"] / 2**20,
        "client_cpu_pct": 100 * client_cpu / dt if dt > 0 else None,
        "client_us_per_token": 1e6 * client_cpu / tokens if tokens else None,
        "errors": st.errors,
    }
    if profiling is not None:
        out["profile_error"] = profile_error
    if mode == "paced":
        per_stream = 1000.0 / float(spec["gap_ms"])
        nominal = n * per_stream
        lat = sorted(st.lateness_ms)
        kept = sorted(st.kept)
        # Streams whose tokens flowed in the window: with slow connection setup the first
        # streams can end before the last ones start, and N x rate would blame the server.
        active = active_s / dt if dt > 0 else None
        out.update(
            nominal_tokens_per_s=nominal,
            active_streams_mean=active,
            window_rate_kept=(tokens / dt) / (active * per_stream) if active else None,
            # per stream: scheduled first->last span / actual span; p50 and the worst 1 %
            rate_kept=nearest_rank(kept, 0.5, presorted=True),
            rate_kept_p01=nearest_rank(kept, 0.01, presorted=True),
            streams_done=st.streams_done,
            end_lateness_ms_p50=nearest_rank(lat, 0.5, presorted=True),
            end_lateness_ms_p99=nearest_rank(lat, 0.99, presorted=True),
            end_lateness_ms_max=lat[-1] if lat else None,
        )
    return out


# ----------------------------------------------------------------------------- idle
async def hold(
    spec: dict[str, Any], st: State, i: int, opened: asyncio.Event, release: asyncio.Event
) -> None:
    """One connection holding a stream whose first token is far away: SSE reads heartbeat
    comments, WS answers pings (the client core queues the pongs). Open once the SSE
    response head arrived / the WS start message left."""
    proto = spec["proto"]
    p = _params(spec, f"idle.{i}")
    t = time.monotonic()
    conn: AsyncConnection | None = None
    try:
        conn = await AsyncConnection.connect(
            spec["url"], proto, compression=_compression(spec, False), timeout_s=15
        )
        head = asyncio.get_running_loop().create_future()

        def on_events(_: list[StreamEvent]) -> None:
            if not head.done():
                head.set_result(None)

        conn.start(p, on_events)
        if proto == "sse":
            async with asyncio.timeout(15):
                await head
        st.connect_ms.append((time.monotonic() - t) * 1000)
        st.opened += 1
        opened.set()
        await release.wait()
    except (ClientError, TimeoutError) as exc:
        st.error(f"idle {proto}: {type(exc).__name__}: {exc}")
        opened.set()
    finally:
        if conn is not None:
            conn.abort()


async def run_idle(spec: dict[str, Any]) -> dict[str, Any]:
    n = int(spec["n"])
    batch = int(spec.get("batch", 250))
    limit_s = float(spec.get("limit_s", 300))
    hold_s = float(spec["hold_s"])
    probe = ServerProbe(spec.get("server_pid"))
    st = State()
    spec = {**spec, "tokens": 1, "ttft_ms": float(spec.get("ttft_ms", 600_000)), "gap_ms": 0}
    release = asyncio.Event()
    samples: list[tuple[int, float]] = []
    tasks: list[asyncio.Task[None]] = []
    t_start = time.monotonic()
    await asyncio.sleep(0.3)
    samples.append((0, probe.sample()["rss"]))
    every = max(batch, n // 10)
    t0 = time.monotonic()
    for start in range(0, n, batch):
        if time.monotonic() - t_start > limit_s / 2:
            st.error(f"idle: stopped opening at {start} connections (time limit)")
            break
        events = []
        for i in range(start, min(n, start + batch)):
            ev = asyncio.Event()
            events.append(ev)
            tasks.append(asyncio.create_task(hold(spec, st, i, ev, release)))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 30)
        if (start + batch) % every < batch or start + batch >= n:
            await asyncio.sleep(0.2)
            samples.append((st.opened, probe.sample()["rss"]))
    connect_wall = time.monotonic() - t0
    await asyncio.sleep(1.0)
    h0 = probe.sample()
    samples.append((st.opened, h0["rss"]))
    await asyncio.sleep(hold_s)
    h1 = probe.sample()
    still = sum(1 for t in tasks if not t.done())
    release.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    dt = h1["t"] - h0["t"]
    conns = max(1, st.opened)
    lat = sorted(st.connect_ms)
    slope = rss_slope(samples)
    return {
        "mode": "idle",
        "proto": spec["proto"],
        "n": n,
        "opened": st.opened,
        "held_to_end": still,
        "connect_wall_s": round(connect_wall, 3),
        "connect_ms_p50": nearest_rank(lat, 0.5, presorted=True),
        "connect_ms_p99": nearest_rank(lat, 0.99, presorted=True),
        "rss_samples": samples,
        "rss_base_mib": samples[0][1] / 2**20,
        "rss_held_mib": h1["rss"] / 2**20,
        "kib_per_conn": slope / 1024 if slope is not None else None,
        "hold_s": round(dt, 3),
        "idle_cpu_pct": 100 * (h1["cpu_s"] - h0["cpu_s"]) / dt if dt > 0 else None,
        "heartbeat_bytes_out_per_conn_hour": (h1["wchar"] - h0["wchar"]) / conns * 3600 / dt,
        "bytes_in_per_conn_hour": (h1["rchar"] - h0["rchar"]) / conns * 3600 / dt,
        "errors": st.errors,
    }


def rss_slope(samples: list[tuple[int, float]]) -> float | None:
    """Least-squares bytes per connection over (connections, RSS) samples."""
    pts = [(float(x), y) for x, y in samples]
    if len({x for x, _ in pts}) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx


async def main_async(spec: dict[str, Any]) -> dict[str, Any]:
    if spec["mode"] == "idle":
        return await run_idle(spec)
    return await run_load(spec)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(argv[0])
    nofile = raise_nofile()
    try:
        import uvloop

        out = uvloop.run(main_async(spec))
    except ImportError:  # pragma: no cover
        out = asyncio.run(main_async(spec))
    out["client_nofile"] = list(nofile)
    out["client_pid"] = psutil.Process().pid
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
