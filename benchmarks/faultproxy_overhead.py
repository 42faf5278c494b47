"""What the fault proxy itself costs (not a test): added latency with every fault off, CPU
per token event and per forwarded MB.

    python benchmarks/faultproxy_overhead.py [--streams 100 1000] [--rounds 2] [--out FILE]

- **Added latency**: N concurrent SSE token streams from the reference server (`python -m
  servers sse`, heartbeat off), read through the client core (bench.aclient) in this
  process, which stamps every read; delivery latency = receive − the server's send stamp
  ("t"; one monotonic clock on the host). The same load runs direct and through the proxy
  (`passthrough` profile, its own process), interleaved A B A B; added p50 / p99 = proxied
  − direct. Only tokens inside a window where all N streams are running count.
- **CPU per token event**: the proxy's CPU seconds (psutil, user + system) over that window
  ÷ token events forwarded in it — with faults off (`passthrough`) and with the delay line
  on (`4g`: latency, jitter, loss, bandwidth cap).
- **CPU per MB**: a bulk source (a child process writing a preallocated buffer) read
  through the proxy; proxy CPU ÷ MB forwarded, for `passthrough` and for `4g` with the
  bandwidth cap and loss lifted (latency and jitter: the delay line still schedules every
  chunk).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.aclient import AsyncConnection  # noqa: E402 - after the path fix-up
from bench.faultproxy.__main__ import proxy_command  # noqa: E402
from bench.procs import Child, spawn, wait_for_listening  # noqa: E402
from core.client.events import StreamEvent, Token  # noqa: E402
from core.schedule import StreamParams  # noqa: E402

GAP_MS = 100  # per stream: 10 tokens/s, so N = 1000 is 10k events/s through the proxy
SPREAD_S = 2.0  # stream starts spread over this
WINDOW_S = 6.0  # measured while every stream runs
BULK_MB = 200


@dataclass
class Window:
    t0: int = 0
    t1: int = 0
    delays: list[int] = field(default_factory=list)
    events: int = 0


def _window_delays(win: Window) -> Callable[[list[StreamEvent]], None]:
    """Per token read inside the window: delivery = its read time − its server stamp."""

    def on_events(events: list[StreamEvent]) -> None:
        for ev in events:
            if isinstance(ev, Token) and win.t0 <= ev.t_ns <= win.t1 and ev.t_server_ns:
                win.delays.append(ev.t_ns - ev.t_server_ns)
                win.events += 1

    return on_events


async def _one_stream(port: int, params: StreamParams, win: Window) -> None:
    """One SSE stream through the client core (bench.aclient), read to its end."""
    conn = await AsyncConnection.connect(f"http://127.0.0.1:{port}", "sse")
    conn.start(params, _window_delays(win))
    await conn.wait_end(60)
    await conn.aclose()


async def token_load(port: int, n: int, proxy_pid: int | None) -> dict[str, Any]:
    tokens = int((SPREAD_S + WINDOW_S + 1.5) * 1000 / GAP_MS)
    win = Window()
    start = time.monotonic_ns()
    win.t0 = start + int((SPREAD_S + 0.5) * 1e9)
    win.t1 = win.t0 + int(WINDOW_S * 1e9)
    dones = []
    for i in range(n):
        params = StreamParams(seed=i, tokens=tokens, ttft_ms=0, gap_ms=GAP_MS, stream=f"b{i}")
        dones.append(asyncio.create_task(_one_stream(port, params, win)))
        await asyncio.sleep(max(0.0, start / 1e9 + SPREAD_S * (i + 1) / n - time.monotonic()))
    proc = psutil.Process(proxy_pid) if proxy_pid else None
    await asyncio.sleep(max(0.0, (win.t0 - time.monotonic_ns()) / 1e9))
    cpu0 = sum(proc.cpu_times()[:2]) if proc else 0.0
    await asyncio.sleep(max(0.0, (win.t1 - time.monotonic_ns()) / 1e9))
    cpu1 = sum(proc.cpu_times()[:2]) if proc else 0.0
    await asyncio.wait_for(asyncio.gather(*dones), 60)
    d = sorted(win.delays)
    return {
        "streams": n,
        "events": win.events,
        "events_per_s": win.events / WINDOW_S,
        "p50_ms": d[len(d) // 2] / 1e6,
        "p99_ms": d[min(len(d) - 1, int(0.99 * len(d)))] / 1e6,
        "proxy_cpu_s": (cpu1 - cpu0) if proc else None,
        "proxy_us_per_event": ((cpu1 - cpu0) / win.events * 1e6) if proc and win.events else None,
    }


async def bulk_read(port: int, proxy_pid: int) -> dict[str, Any]:
    proc = psutil.Process(proxy_pid)
    cpu0, t0 = sum(proc.cpu_times()[:2]), time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    got = 0
    while chunk := await reader.read(1 << 20):
        got += len(chunk)
    writer.close()
    cpu1, t1 = sum(proc.cpu_times()[:2]), time.monotonic()
    mb = got / 1e6
    return {
        "mb": mb,
        "s": t1 - t0,
        "mb_per_s": mb / (t1 - t0),
        "proxy_cpu_ms_per_mb": (cpu1 - cpu0) / mb * 1e3,
    }


def bulk_source_main(mb: int) -> None:
    """Child mode: accept connections, write `mb` MB to each, close."""
    srv = socket.create_server(("127.0.0.1", 0))
    print(f"listening on http://127.0.0.1:{srv.getsockname()[1]} (bulk source)", flush=True)
    block = os.urandom(1 << 20)
    while True:
        conn, _ = srv.accept()
        with conn:
            for _ in range(mb):
                conn.sendall(block)


def start(name: str, cmd: list[str], logdir: Path) -> tuple[Child, int]:
    child = spawn(name, cmd, log_path=logdir / f"{name}.log", cwd=ROOT)
    _, port = wait_for_listening(child, timeout_s=30)
    return child, port


def proxy_cmd(upstream: int, profile: str, logdir: Path, sets: list[str] | None = None) -> list:
    return proxy_command(f"127.0.0.1:{upstream}", profile, logdir / f"net-{profile}", sets=sets)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import uvloop

    logdir = Path(tempfile.mkdtemp(prefix="faultproxy-overhead-"))
    server, sport = start(
        "server",
        [sys.executable, "-m", "servers", "sse", "--port", "0", "--heartbeat-s", "0"],
        logdir,
    )
    children = [server]
    out: dict[str, Any] = {
        "gap_ms": GAP_MS,
        "window_s": WINDOW_S,
        "latency": [],
        "cpu": [],
        "bulk": [],
        "load_before": os.getloadavg(),
        "logs": str(logdir),
    }
    try:
        for n in args.streams:
            px, pport = start(f"proxy-{n}", proxy_cmd(sport, "passthrough", logdir), logdir)
            children.append(px)
            for rnd in range(args.rounds):
                for arm, port, pid in (("direct", sport, None), ("proxy", pport, px.pid)):
                    r = uvloop.run(token_load(port, n, pid))
                    out["latency"].append({"arm": arm, "round": rnd + 1, **r})
                    print(json.dumps(out["latency"][-1]), flush=True)
            px.stop(grace_s=5)
            children.remove(px)
        px, pport = start("proxy-4g", proxy_cmd(sport, "4g", logdir), logdir)
        children.append(px)
        r = uvloop.run(token_load(pport, max(args.streams), px.pid))
        out["cpu"].append({"profile": "4g", **r})
        print(json.dumps(out["cpu"][-1]), flush=True)
        px.stop(grace_s=5)
        children.remove(px)
        src, bport = start(
            "bulk", [sys.executable, __file__, "--bulk-source", str(BULK_MB)], logdir
        )
        children.append(src)
        for profile, sets in (
            ("passthrough", []),
            ("4g", ["down.bandwidth_kbps=0", "up.bandwidth_kbps=0", "down.loss=0", "up.loss=0"]),
        ):
            px, pport = start(
                f"proxy-bulk-{profile}", proxy_cmd(bport, profile, logdir, sets), logdir
            )
            children.append(px)
            for _ in range(args.rounds):
                r = uvloop.run(bulk_read(pport, px.pid))
                out["bulk"].append({"profile": profile, **r})
                print(json.dumps(out["bulk"][-1]), flush=True)
            px.stop(grace_s=5)
            children.remove(px)
    finally:
        for c in children:
            c.stop(grace_s=5)
    out["summary"] = summarize(out)
    return out


def summarize(out: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = {}
    for n in sorted({r["streams"] for r in out["latency"]}):
        rows = {
            arm: [r for r in out["latency"] if r["streams"] == n and r["arm"] == arm]
            for arm in ("direct", "proxy")
        }
        med = {
            arm: {k: statistics.median(r[k] for r in rs) for k in ("p50_ms", "p99_ms")}
            for arm, rs in rows.items()
        }
        s[f"n{n}"] = {
            "direct_p50_ms": med["direct"]["p50_ms"],
            "proxy_p50_ms": med["proxy"]["p50_ms"],
            "added_p50_ms": med["proxy"]["p50_ms"] - med["direct"]["p50_ms"],
            "direct_p99_ms": med["direct"]["p99_ms"],
            "proxy_p99_ms": med["proxy"]["p99_ms"],
            "added_p99_ms": med["proxy"]["p99_ms"] - med["direct"]["p99_ms"],
            "events_per_s": statistics.median(r["events_per_s"] for r in rows["proxy"]),
            "proxy_us_per_event": statistics.median(r["proxy_us_per_event"] for r in rows["proxy"]),
        }
    for r in out["cpu"]:
        s[f"{r['profile']}_us_per_event_n{r['streams']}"] = r["proxy_us_per_event"]
    for profile in sorted({r["profile"] for r in out["bulk"]}):
        rows = [r for r in out["bulk"] if r["profile"] == profile]
        s[f"bulk_{profile}_cpu_ms_per_mb"] = statistics.median(
            r["proxy_cpu_ms_per_mb"] for r in rows
        )
        s[f"bulk_{profile}_mb_per_s"] = statistics.median(r["mb_per_s"] for r in rows)
    return s


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--bulk-source":
        bulk_source_main(int(sys.argv[2]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    out = run(args)
    print(json.dumps(out["summary"], indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
