"""Load generator ceiling and end-to-end runs, with the project's own client transports.

Both run `python -m loadtests.drive` (the transports and session script the Locust users
run, under gevent, one process per "worker") pinned to the client core(s), against the
project's servers pinned to the server core.

Ceiling: for growing numbers of concurrent streams at 50 tokens/s, the client-added delay
= delivery latency (client receive − server stamp) − the loopback floor, where the floor
is the median delivery latency with a handful of streams. The ceiling is the largest load
whose client-added p99 stays ≤ `bound_ms`; with several processes the worst process' p99
is used (percentiles do not add up; this is conservative).
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from pathlib import Path
from typing import Any

from bench.perf.procs import run_json
from bench.perf.profile import record

TOKENS = 50
GAP_MS = 20.0


def drive_argv(
    proto: str,
    url: str,
    users: int,
    *,
    sessions: int,
    ttft_ms: float,
    limit_s: float,
    seed: int,
    tokens: int = TOKENS,
    gap_ms: float = GAP_MS,
    spawn_s: float | None = None,
) -> list[str]:
    """`python -m loadtests.drive` arguments: `users` streams of `tokens` at `gap_ms`,
    started over `spawn_s` (default: 1 s per 1,000 users, at least 0.2 s)."""
    url = url.replace("http://", "ws://", 1) if proto == "ws" else url
    spawn = max(0.2, users / 1000) if spawn_s is None else spawn_s
    return [
        "-m", "loadtests.drive", "--protocol", proto, "--url", url, "--users", str(users),
        "--sessions", str(sessions), "--spawn-s", f"{spawn:g}",
        "--tokens", str(tokens), "--ttft-ms", f"{ttft_ms:g}", "--gap-ms", f"{gap_ms:g}",
        "--jitter", "0", "--limit-s", f"{limit_s:g}", "--seed", str(seed), "--json",
    ]  # fmt: skip


def run_drive(
    proto: str,
    url: str,
    users: int,
    cpus: set[int],
    *,
    processes: int = 1,
    sessions: int = 2,
    ttft_ms: float = 100.0,
    limit_s: float = 90.0,
    profile: Profiling | None = None,
) -> dict[str, Any]:
    """`users` streams split over `processes` drive processes; merged figures. With
    `profile`, the first process is sampled with py-spy (its figures are one process's)."""
    per = [users // processes + (1 if i < users % processes else 0) for i in range(processes)]
    with cf.ThreadPoolExecutor(processes) as ex:
        futs = [
            ex.submit(
                run_json,
                drive_argv(
                    proto, url, u, sessions=sessions, ttft_ms=ttft_ms, limit_s=limit_s, seed=1 + i
                ),
                cpus,
                timeout=limit_s + 60,
                on_start=profile.start if profile is not None and i == 0 else None,
            )
            for i, u in enumerate(per)
            if u > 0
        ]
        parts = [f.result() for f in futs]
    if profile is not None:
        profile.join()
    wall = max(p["wall_s"] for p in parts)
    received = sum(p["tokens_received"] for p in parts)

    def worst(key: str) -> float | None:
        vals = [p[key] for p in parts if p.get(key) is not None]
        return max(vals) if vals else None

    def mean(key: str) -> float | None:
        vals = [p[key] for p in parts if p.get(key) is not None]
        return sum(vals) / len(vals) if vals else None

    return {
        "proto": proto,
        "users": users,
        "processes": len(parts),
        "sessions": sessions,
        "nominal_tokens_per_s": users * 1000.0 / GAP_MS,
        "tokens_received": received,
        "tokens_expected": sum(p["tokens_expected"] for p in parts),
        "lost": sum(p["lost"] for p in parts),
        "dup": sum(p["dup"] for p in parts),
        "wall_s": wall,
        "delivery_ms_p50": worst("delivery_ms_p50"),
        "delivery_ms_p99": worst("delivery_ms_p99"),
        "ttft_ms_median": mean("ttft_ms_median"),
        "ttft_ms_p99": worst("ttft_ms_p99"),
        "ttft_minus_server_ms_p50": worst("ttft_minus_server_ms_p50"),
        "ttft_minus_server_ms_p99": worst("ttft_minus_server_ms_p99"),
        "itl_ms_median": mean("itl_ms_median"),
        "itl_ms_p99": worst("itl_ms_p99"),
        "client_cpu_pct": sum(p["client_cpu_pct"] or 0 for p in parts),
        "client_cpu_s": sum(p["client_cpu_s"] for p in parts),
        "client_runqueue_wait_pct": worst("client_runqueue_wait_pct"),
        "streams": sum(p["streams"] for p in parts),
        "client_cpu_us_per_token": mean("client_cpu_us_per_token"),
        "outcomes": _merge_counts([p.get("outcomes", {}) for p in parts]),
        "errors": sorted({e for p in parts for e in p.get("errors", [])})[:5],
        "client_cpus": sorted({c for p in parts for c in p.get("client_cpus", [])}),
    }


class Profiling:
    """py-spy on a client process from `delay_s` after it starts, for `seconds` (a thread:
    the caller keeps waiting for the client). `error` is None or why there is no profile."""

    def __init__(self, path: Path, delay_s: float, seconds: float) -> None:
        self.path, self.delay_s, self.seconds = path, delay_s, seconds
        self.error: str | None = "not started"
        self._thread: threading.Thread | None = None

    def start(self, pid: int) -> None:
        def run() -> None:
            time.sleep(self.delay_s)
            self.error = record(pid, self.seconds, self.path)

        self._thread = threading.Thread(target=run, name="py-spy", daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(self.delay_s + self.seconds + 40)


def _merge_counts(dicts: list[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


def client_added(point: dict[str, Any], floor_ms: float) -> float | None:
    p99 = point.get("delivery_ms_p99")
    return None if p99 is None else p99 - floor_ms


def find_ceiling(
    proto: str,
    url: str,
    cpus: set[int],
    points: list[int],
    *,
    processes: int = 1,
    bound_ms: float = 5.0,
    sessions: int = 2,
    floor_users: int = 5,
    limit_s: float = 90.0,
    log=print,
) -> dict[str, Any]:
    """Measure the floor, then each point in order until one misses the bound."""
    floor = run_drive(proto, url, floor_users, cpus, sessions=sessions, limit_s=limit_s)
    floor_ms = floor["delivery_ms_p50"] or 0.0
    rows = []
    best: dict[str, Any] | None = None
    for users in points:
        pt = run_drive(
            proto, url, users, cpus, processes=processes, sessions=sessions, limit_s=limit_s
        )
        pt["client_added_ms_p99"] = client_added(pt, floor_ms)
        pt["ok"] = (
            pt["client_added_ms_p99"] is not None
            and pt["client_added_ms_p99"] <= bound_ms
            and pt["lost"] == 0
        )
        rows.append(pt)
        log(
            f"  ceiling {proto} x{processes} users={users}: delivery p99 "
            f"{pt['delivery_ms_p99']} ms (client-added {pt['client_added_ms_p99']}), "
            f"client CPU {pt['client_cpu_pct']:.0f}% -> {'ok' if pt['ok'] else 'over'}"
        )
        if pt["ok"]:
            best = pt
        else:
            break
    return {
        "proto": proto,
        "processes": processes,
        "bound_ms": bound_ms,
        "floor_ms": floor_ms,
        "floor_point": floor,
        "points": rows,
        "ceiling_streams": best["users"] if best else 0,
        "ceiling_tokens_per_s": best["nominal_tokens_per_s"] if best else 0.0,
        "client_cpu_pct_at_ceiling": best["client_cpu_pct"] if best else None,
        "bounded_by_points": best is not None and best is rows[-1],
    }
