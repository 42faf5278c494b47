"""What a DevTools client on the pages (Playwright's way) costs a streaming browser.

Playwright attaches a DevTools session to every page it creates and keeps the protocol's
Network domain on: Chromium then serialises an event for every chunk a page receives (and
every WebSocket frame, payload included). The browser load generator therefore steers
Chromium at the browser level only (loadtests/browser/chromium.py) and talks to its pages
over a loopback WebSocket. This runs the same page, users and streams both ways — a page
Playwright drives, and a page the load generator opens — and prints Chromium's CPU by
process kind over the same window. Not a test: the figures are for the report.

    python -m loadtests.browser.cdp_overhead --arm browser-ws --users 60 --seconds 8

(A benchmark, not a test: it lives beside the load generator it measures, since only
loadtests may import it.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from core.arms import get_arm
from core.browser import CHROMIUM_FLAGS, find_chromium
from core.scenario import PhaseConfig, scenario_from_dict
from loadtests.browser.chromium import Chromium
from loadtests.browser.driver import page_config
from loadtests.browser.layout import host_rules, layout
from loadtests.browser.pageserver import PageServer
from loadtests.browser.procsample import DRIVER_ROLE, kind_of

ROOT = Path(__file__).resolve().parents[2]


def _start_server(kind: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "servers", kind, "--port", "0", "--host", "127.0.0.1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline().split("127.0.0.1:")[1].split()[0])
    return proc, f"{'ws' if kind == 'ws' else 'http'}://127.0.0.1:{port}"


def _cpu_by_kind(seconds: float) -> dict[str, float]:
    """CPU % (100 = one core) per kind of this process's browser descendants (Playwright's
    driver left out) over `seconds`."""

    def snapshot() -> dict[int, tuple[str, float]]:
        out = {}
        for p in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                kind = kind_of(p.cmdline())
                if kind is not None and kind != DRIVER_ROLE:
                    t = p.cpu_times()
                    out[p.pid] = (kind, t.user + t.system)
        return out

    a = snapshot()
    time.sleep(seconds)
    total: dict[str, float] = {}
    for pid, (kind, cpu) in snapshot().items():
        if pid in a:
            total[kind] = total.get(kind, 0.0) + 100.0 * (cpu - a[pid][1]) / seconds
    return total


async def _playwright(url: str, server: PageServer, cfg: dict, users: list, a: Any) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(find_chromium()), args=[*CHROMIUM_FLAGS, *host_rules(url, 4)]
        )
        try:
            page = await (await browser.new_context()).new_page()
            await page.goto(server.url)
            await page.evaluate("c => ssevsws.init(c)", cfg)
            await page.evaluate("u => ssevsws.start(ssevsws.now() + 100, u)", users)
            await asyncio.sleep(a.warmup)
            return await asyncio.to_thread(_cpu_by_kind, a.seconds)
        finally:
            await browser.close()


async def _harness(url: str, server: PageServer, cfg: dict, users: list, a: Any) -> dict:
    browser = await Chromium.launch(find_chromium(), host_rules(url, 4))
    try:
        await browser.open_page(server.page_url(0))
        ch = await server.channel(0)
        await ch.call("init", cfg)
        await ch.call("start", float(await ch.call("now")) + 100, users)
        await asyncio.sleep(a.warmup)
        return await asyncio.to_thread(_cpu_by_kind, a.seconds)
    finally:
        await browser.close()


async def main_async(a: argparse.Namespace) -> None:
    arm = get_arm(a.arm)
    server_proc, url = _start_server(arm.server_kind or "sse")
    try:
        s = scenario_from_dict(
            {
                "name": "cdp",
                "load": {"users": a.users, "spawn_rate": 1000, "duration_s": 600},
                "stream": {"tokens": 100, "ttft_ms": 100, "gap_ms": a.gap_ms},
                "browser": {"users_per_page": a.users},
            }
        )
        cfg = page_config(
            PhaseConfig("", "cdp/x/r1", arm.name, "sse", url, s.to_dict(), 1), s, arm.client
        )
        users = [
            u.to_page()
            for u in layout(s, phase="cdp/x/r1", arm=arm.name, worker="b", seed=1, url=url)
        ]
        rows = {}
        for mode, run in (("playwright", _playwright), ("load generator", _harness)):
            server = await PageServer.start()
            try:
                rows[mode] = await run(url, server, cfg, users, a)
            finally:
                await server.stop()
        tok_s = a.users * 1000.0 / a.gap_ms
        print(
            f"{a.arm}: {a.users} streams, {1000 / a.gap_ms:g} tokens/s each ({tok_s:,.0f} tokens/s)"
        )
        print(f"{'process':<18}" + "".join(f"{m:>16}" for m in rows))
        kinds = sorted({k for r in rows.values() for k in r})
        for k in [*kinds, "total"]:
            vals = [sum(r.values()) if k == "total" else r.get(k, 0.0) for r in rows.values()]
            print(f"{k:<18}" + "".join(f"{v:>15.1f}%" for v in vals))
        per_token = {m: sum(r.values()) / 100 / tok_s * 1e6 for m, r in rows.items()}
        print("CPU per token: " + ", ".join(f"{m} {v:.0f} µs" for m, v in per_token.items()))
    finally:
        server_proc.terminate()
        server_proc.wait(10)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--arm",
        default="browser-ws",
        choices=["browser-eventsource", "browser-fetch", "browser-ws"],
    )
    p.add_argument("--users", type=int, default=60)
    p.add_argument("--gap-ms", type=float, default=50.0)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--warmup", type=float, default=2.0)
    asyncio.run(main_async(p.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
