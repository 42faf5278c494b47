"""Server lag of the twin reference servers at N concurrent paced streams (not a test).

For each server kind: start `python -m servers KIND` on a free loopback port pinned to
CPU 0 (this client runs on CPU 1 when the machine has two), reset the server's stats
window (`POST /v1/stats/reset`), open N concurrent streams (one connection each, read by
the client core through bench.aclient), read every token, then read the server's own
lag figures (send stamp − scheduled time, recorded by the server: the client cannot know
the server's t0) and its CPU time (psutil).

Client-side checks: the inter-arrival of the server stamps "t" against the scheduled gap
(a server that drifts or bunches shows here), and delivery latency (client receive −
server stamp; one monotonic clock for all processes on Linux).

    python benchmarks/server_lag.py                      # 200 streams, 200 tokens, 20 ms gap
    python benchmarks/server_lag.py --streams 1000 --kinds sse ws
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.aclient import AsyncConnection  # noqa: E402 - after the path fix-up
from bench.procs import Listening, start_listening  # noqa: E402
from core.arms import all_arms, get_arm  # noqa: E402
from core.client.events import Closed, Done, Failed, StreamEvent, Token  # noqa: E402
from core.schedule import parse_params  # noqa: E402
from core.stats import nearest_rank  # noqa: E402

#: Every registered arm with a reference server (core.arms).
KINDS = tuple(a.name for a in all_arms() if a.server_kind)


@dataclass
class StreamRecord:
    stamps: list[int] = field(default_factory=list)  # server "t" per token
    recv: list[int] = field(default_factory=list)  # client receive time per token
    done: bool = False
    error: str | None = None


def start_server(kind: str, loop: str, server_cpu: int | None) -> tuple[Listening, int]:
    """`python -m servers KIND` on port 0, pinned to `server_cpu` when this machine has it
    (bench.procs.start_listening); the server and its port."""
    server = str(get_arm(kind).server_kind)
    cmd = [sys.executable, "-m", "servers", server, "--port", "0", "--host", "127.0.0.1"]
    cmd += ["--loop", loop, "--heartbeat-s", "15"]
    cpus = None
    if server_cpu is not None and server_cpu in os.sched_getaffinity(0):
        cpus = {server_cpu}
    ready = start_listening(f"{kind}-server", cmd, cwd=ROOT, cpus=cpus)
    return ready, ready.port


def stop_server(server: Listening) -> None:
    server.stop(grace_s=10)


async def one_stream(
    kind: str, base: str, params: dict[str, Any], rec: StreamRecord, delay_s: float, limit_s: float
) -> None:
    """One stream through the client core (bench.aclient): every token's server stamp and
    the time the read carrying it returned."""
    await asyncio.sleep(delay_s)
    arm = get_arm(kind)

    def on_events(events: list[StreamEvent]) -> None:
        for ev in events:
            if isinstance(ev, Token):
                rec.stamps.append(ev.t_server_ns or 0)
                rec.recv.append(ev.t_ns)
            elif isinstance(ev, Done):
                rec.done = True
            elif isinstance(ev, Failed):
                rec.error = ev.error
            elif isinstance(ev, Closed):
                rec.error = ev.reason

    try:
        conn = await AsyncConnection.connect(
            base, arm.protocol, payload_format=arm.format, timeout_s=10
        )
        conn.start(parse_params(params), on_events)
        if not await conn.wait_end(limit_s):
            rec.error = f"no end within {limit_s:g} s"
        await conn.aclose()
    except Exception as exc:  # recorded and reported, never silently dropped
        rec.error = f"{type(exc).__name__}: {exc}"


async def drive(kind: str, port: int, args: argparse.Namespace) -> tuple[list[StreamRecord], float]:
    base = f"http://127.0.0.1:{port}"
    records = [StreamRecord() for _ in range(args.streams)]
    t_start = time.monotonic()
    await asyncio.gather(
        *(
            one_stream(
                kind,
                base,
                {
                    "seed": i,
                    "tokens": args.tokens,
                    "ttft_ms": args.ttft_ms,
                    "gap_ms": args.gap_ms,
                    "stream": f"lag-{i}",
                },
                rec,
                args.stagger_ms / 1000 * i / args.streams,
                args.timeout,
            )
            for i, rec in enumerate(records)
        )
    )
    return records, time.monotonic() - t_start


def _pct(values: list[float], q: float) -> float:
    """core.stats.nearest_rank, NaN for no values (the table prints it)."""
    got = nearest_rank(values, q)
    return float("nan") if got is None else got


def client_figures(records: list[StreamRecord], gap_ms: float) -> dict[str, Any]:
    gap_ns = gap_ms * 1e6
    itl_err: list[float] = []
    delivery: list[float] = []
    for rec in records:
        itl_err.extend(abs((b - a) - gap_ns) / 1e3 for a, b in pairwise(rec.stamps))
        delivery.extend((r - t) / 1e3 for r, t in zip(rec.recv, rec.stamps, strict=True))
    tokens = sum(len(r.stamps) for r in records)
    return {
        "tokens": tokens,
        "complete": sum(r.done for r in records),
        "errors": [r.error for r in records if r.error][:3],
        "stamp_gap_err_p50_us": statistics.median(itl_err) if itl_err else float("nan"),
        "stamp_gap_err_p99_us": _pct(itl_err, 0.99),
        "delivery_p50_us": statistics.median(delivery) if delivery else float("nan"),
        "delivery_p99_us": _pct(delivery, 0.99),
    }


def run_kind(kind: str, args: argparse.Namespace, server_cpu: int | None) -> dict[str, Any]:
    import requests

    load_before = os.getloadavg()[0]
    proc, port = start_server(kind, args.loop, server_cpu)
    try:
        base = f"http://127.0.0.1:{port}"
        ps = psutil.Process(proc.pid)
        requests.post(base + "/v1/stats/reset", timeout=5).raise_for_status()
        cpu0 = ps.cpu_times()
        t0 = time.monotonic()
        records, wall = asyncio.run(drive(kind, port, args))
        cpu1 = ps.cpu_times()
        stats = requests.post(base + "/v1/stats/reset", timeout=5).json()
        elapsed = time.monotonic() - t0
    finally:
        stop_server(proc)
    cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    client = client_figures(records, args.gap_ms)
    lag = stats["lag_us"]
    return {
        "kind": kind,
        "server_cpu": server_cpu,
        "wall_s": wall,
        "lag_p50_us": lag["p50"],
        "lag_p99_us": lag["p99"],
        "lag_max_us": lag["max"],
        "lag_samples": lag["count"],
        "early": lag["early"],
        "server_tokens": stats["tokens_sent"],
        "tokens_per_s": client["tokens"] / wall if wall else float("nan"),
        "cpu_pct": 100 * cpu_s / elapsed,
        "cpu_us_per_token": 1e6 * cpu_s / max(1, stats["tokens_sent"]),
        "loadavg_1m": load_before,
        **client,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    p.add_argument("--streams", type=int, default=200)
    p.add_argument("--tokens", type=int, default=200)
    p.add_argument("--ttft-ms", type=float, default=300)
    p.add_argument("--gap-ms", type=float, default=20)
    p.add_argument(
        "--stagger-ms",
        type=float,
        default=None,
        help="spread stream starts evenly over this many ms (default: one gap, so token\n"
        "phases are uniform - steady load; 0 = all streams in lockstep, a burst every gap)",
    )
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    p.add_argument("--timeout", type=float, default=120, help="per-run client time limit (s)")
    p.add_argument("--no-pin", action="store_true", help="do not pin server and client to CPUs")
    p.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = p.parse_args(argv)
    if args.stagger_ms is None:
        args.stagger_ms = args.gap_ms
    if not 1 <= args.streams <= 5000 or not 1 <= args.tokens <= 10_000:
        p.error("--streams must be 1..5000 and --tokens 1..10000")

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpu = cpus[0] if len(cpus) >= 2 and not args.no_pin else None
    if server_cpu is not None:
        os.sched_setaffinity(0, {cpus[1]})  # this client on the other core
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    rows = [run_kind(kind, args, server_cpu) for kind in args.kinds]
    print(
        f"\n{args.streams} streams x {args.tokens} tokens, ttft {args.ttft_ms:g} ms, "
        f"gap {args.gap_ms:g} ms, starts spread over {args.stagger_ms:g} ms, "
        f"server loop {args.loop}, server pinned to CPU {server_cpu}"
    )
    head = (
        f"{'server':<14}{'lag p50':>9}{'lag p99':>9}{'lag max':>9}{'samples':>9}{'tok/s':>8}"
        f"{'CPU%':>6}{'us/tok':>7}{'gap err p50/p99':>17}{'deliv p50/p99':>15}"
        f"{'done':>6}{'load':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['kind']:<14}{r['lag_p50_us'] / 1000:>7.2f}ms{r['lag_p99_us'] / 1000:>7.2f}ms"
            f"{r['lag_max_us'] / 1000:>7.1f}ms{r['lag_samples']:>9}{r['tokens_per_s']:>8.0f}"
            f"{r['cpu_pct']:>6.0f}{r['cpu_us_per_token']:>7.1f}"
            f"{r['stamp_gap_err_p50_us'] / 1000:>8.2f}/{r['stamp_gap_err_p99_us'] / 1000:.2f}ms"
            f"{r['delivery_p50_us'] / 1000:>7.2f}/{r['delivery_p99_us'] / 1000:.2f}ms"
            f"{r['complete']:>6}{r['loadavg_1m']:>6.1f}"
        )
        if r["errors"]:
            print(f"  errors: {r['errors']}")
    print(
        "lag = server send stamp - scheduled time (server-side sketch); gap err = |stamp "
        "inter-arrival - gap|; deliv = client receive - server stamp; CPU% of one core;\n"
        "load = 1-min load average before the run (other processes make lag noisy)."
    )
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
