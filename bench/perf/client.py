"""The load client beside the server in `ssevsws perf`: CPU per token and per stream, and
the hold of many mostly idle streams by one client process.

Both run `python -m loadtests.drive` (the transports and session script Locust runs,
under gevent, one process) pinned to the client core(s), against a project server pinned
to the server core, and read both processes' own CPU times and memory (psutil):

- `cost`: two runs of `users` streams at 50 tokens/s each — long streams (`long_tokens`
  tokens: the CPU goes to tokens) and short ones (`short_tokens` tokens, `short_sessions`
  back to back: the CPU goes to streams: connect, request or upgrade, head, close, records).
  Each run's CPU seconds, the client's from its own process times, the server's over the
  same run, solve ``cpu = a·tokens + b·streams``: µs per token (a) and per stream (b) for
  the client and the server side by side, from the same streams.
- `hold`: `n` streams held at once by one client process, one token every
  `token_every_s` and the server's heartbeat on; both processes' RSS and open descriptors
  sampled as the connections open give the memory per connection (least-squares slope of
  RSS over descriptors), then both CPUs while all are held. The server's own count of
  heartbeats written over the run (its /metrics; SSE keepalive comments) shows they were on.
"""

from __future__ import annotations

import math
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import psutil

from bench.perf.ceiling import Profiling, drive_argv
from bench.perf.flood import rss_slope
from bench.perf.procs import run_json

__all__ = ["cost", "hold"]

GAP_MS = 20.0  # 50 tokens/s per stream, as the ceiling and the end-to-end runs


def _cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def _drive(
    proto: str,
    url: str,
    cpus: set[int],
    *,
    users: int,
    sessions: int,
    tokens: int,
    ttft_ms: float,
    gap_ms: float,
    limit_s: float,
    spawn_s: float | None = None,
    on_start: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    argv = drive_argv(
        proto, url, users, sessions=sessions, ttft_ms=ttft_ms, limit_s=limit_s, seed=7,
        tokens=tokens, gap_ms=gap_ms, spawn_s=spawn_s,
    )  # fmt: skip
    return run_json(argv, cpus, timeout=limit_s + 60, on_start=on_start)


def cost(
    proto: str,
    url: str,
    server_pid: int,
    cpus: set[int],
    *,
    users: int,
    long_tokens: int,
    short_tokens: int,
    short_sessions: int,
    limit_s: float,
    profile: Profiling | None = None,
) -> dict[str, Any]:
    """Client and server CPU per token and per stream (see the module docstring); with
    `profile`, py-spy samples the client during the long-stream run."""
    server = psutil.Process(server_pid)
    runs = []
    for kind, sessions, tokens, prof in (
        ("long", 1, long_tokens, profile),
        ("short", short_sessions, short_tokens, None),
    ):
        s0 = _cpu_s(server)
        r = _drive(
            proto, url, cpus, users=users, sessions=sessions, tokens=tokens, ttft_ms=GAP_MS,
            gap_ms=GAP_MS, limit_s=limit_s, on_start=prof.start if prof is not None else None,
        )  # fmt: skip
        if prof is not None:
            prof.join()
        runs.append(
            {
                "kind": kind,
                "users": users,
                "sessions": sessions,
                "tokens_per_stream": tokens,
                "streams": r["streams"],
                "tokens": r["tokens_received"],
                "lost": r["lost"],
                "outcomes": r["outcomes"],
                "wall_s": r["wall_s"],
                "client_cpu_s": r["client_cpu_s"],
                "server_cpu_s": _cpu_s(server) - s0,
                "delivery_ms_p99": r["delivery_ms_p99"],
            }
        )
    out: dict[str, Any] = {"proto": proto, "runs": runs}
    for side in ("client", "server"):
        per_token, per_stream = _solve(runs, f"{side}_cpu_s")
        out[f"{side}_us_per_token"] = per_token
        out[f"{side}_us_per_stream"] = per_stream
    return out


def _solve(runs: list[dict[str, Any]], key: str) -> tuple[float | None, float | None]:
    """(µs per token, µs per stream) from two runs: cpu = a·tokens + b·streams."""
    (t1, s1, c1), (t2, s2, c2) = ((r["tokens"], r["streams"], r[key]) for r in runs)
    det = t1 * s2 - t2 * s1
    if not det:
        return None, None
    return 1e6 * (c1 * s2 - c2 * s1) / det, 1e6 * (t1 * c2 - t2 * c1) / det


class _Sampler:
    """RSS, open descriptors and CPU seconds of the client and the server, every `every_s`
    (a thread: the caller waits for the client)."""

    def __init__(self, server_pid: int, every_s: float = 0.25) -> None:
        self.server = psutil.Process(server_pid)
        self.client: psutil.Process | None = None
        self.every_s = every_s
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hold-sampler", daemon=True)

    def start(self, client_pid: int) -> None:
        self.client = psutil.Process(client_pid)
        self._thread.start()

    def _run(self) -> None:
        assert self.client is not None
        while not self._stop.is_set():
            try:
                with self.client.oneshot(), self.server.oneshot():
                    self.samples.append(
                        {
                            "t": time.monotonic(),
                            "client_rss": self.client.memory_info().rss,
                            "client_fds": self.client.num_fds(),
                            "client_cpu_s": _cpu_s(self.client),
                            "server_rss": self.server.memory_info().rss,
                            "server_fds": self.server.num_fds(),
                            "server_cpu_s": _cpu_s(self.server),
                        }
                    )
            except psutil.Error:  # the client has exited
                return
            self._stop.wait(self.every_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


def hold(
    proto: str,
    url: str,
    server_pid: int,
    cpus: set[int],
    *,
    n: int,
    token_every_s: float,
    hold_s: float,
    limit_s: float,
) -> dict[str, Any]:
    """`n` streams held by one client process (see the module docstring)."""
    tokens = max(2, math.ceil(hold_s / token_every_s))
    every_ms = token_every_s * 1000
    sampler = _Sampler(server_pid)
    beats0 = heartbeats_sent(url)
    try:
        r = _drive(
            proto, url, cpus, users=n, sessions=1, tokens=tokens, ttft_ms=every_ms,
            gap_ms=every_ms, limit_s=limit_s, spawn_s=n / 1000, on_start=sampler.start,
        )  # fmt: skip
    finally:
        sampler.stop()
    s = sampler.samples
    out: dict[str, Any] = {
        "proto": proto,
        "n": n,
        "tokens_per_stream": tokens,
        "token_every_s": token_every_s,
        "outcomes": r["outcomes"],
        "lost": r["lost"],
        "tokens_received": r["tokens_received"],
        "connections": r["connections"],
        "delivery_ms_p99": r["delivery_ms_p99"],
        "client_cpu_pct": r["client_cpu_pct"],
        "errors": r["errors"],
        "samples": len(s),
        "server_heartbeats_sent": _diff(heartbeats_sent(url), beats0),
    }
    if len(s) < 3:
        return {**out, "note": "too few samples"}
    base = s[0]
    peak = max(s, key=lambda x: x["client_fds"])
    # held = every sample with (nearly) all connections open
    held = [x for x in s if x["client_fds"] >= peak["client_fds"] - max(5, n // 1000)]
    ramp = [x for x in s if x["t"] <= peak["t"]]
    for side in ("client", "server"):
        slope = rss_slope([(x[f"{side}_fds"], x[f"{side}_rss"]) for x in ramp])
        out[f"{side}_kib_per_conn"] = slope / 1024 if slope is not None else None
        out[f"{side}_rss_mib_base"] = base[f"{side}_rss"] / 2**20
        out[f"{side}_rss_mib_held"] = peak[f"{side}_rss"] / 2**20
        dt = held[-1]["t"] - held[0]["t"] if len(held) > 1 else 0.0
        cpu = held[-1][f"{side}_cpu_s"] - held[0][f"{side}_cpu_s"] if dt else 0.0
        out[f"{side}_cpu_pct_held"] = 100 * cpu / dt if dt else None
    out["streams_concurrent_max"] = r["streams_concurrent_max"]
    out["held_s"] = round(held[-1]["t"] - held[0]["t"], 1)
    return out


def heartbeats_sent(url: str) -> int | None:
    """The server's ``ssevsws_heartbeats_sent`` (SSE keepalive comments written so far;
    WS pings are the WebSocket library's and not counted), None if it has no such metric."""
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("ssevsws_heartbeats_sent"):
            return int(float(line.split()[-1]))
    return None


def _diff(after: int | None, before: int | None) -> int | None:
    return after - before if after is not None and before is not None else None
