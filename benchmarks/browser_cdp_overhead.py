"""What Playwright's DevTools instrumentation costs a streaming browser.

The browser load generator drives Chromium through Playwright, which keeps the DevTools
protocol's Network domain on for every page: the browser process then serialises an event
for every chunk a page receives. A user's browser does none of that. This runs the same
page, the same users and streams twice — once driven by Playwright, once a plain headless
Chromium started on the page with ``/?auto`` (it fetches its users from the page server
and starts by itself; no DevTools client attached) — and prints Chromium's CPU by process
kind over the same window. Not a test: the figure goes beside the report's CPU per stream.

    python benchmarks/browser_cdp_overhead.py --arm browser-ws --users 60 --seconds 8
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.arms import get_arm  # noqa: E402 - after the path fix-up
from core.browser import CHROMIUM_FLAGS, find_chromium  # noqa: E402
from core.scenario import scenario_from_dict  # noqa: E402
from loadtests.browser.driver import page_config  # noqa: E402
from loadtests.browser.layout import host_rules, layout  # noqa: E402
from loadtests.browser.pageserver import PageServer  # noqa: E402
from loadtests.browser.procsample import kind_of  # noqa: E402


def _start_server(kind: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "servers", kind, "--port", "0", "--host", "127.0.0.1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    port = int(line.split("127.0.0.1:")[1].split()[0])
    return proc, f"{'ws' if kind == 'ws' else 'http'}://127.0.0.1:{port}"


def _cpu_by_kind(root: psutil.Process, seconds: float) -> dict[str, float]:
    """CPU % (100 = one core) per process kind of `root`'s descendants over `seconds`."""

    def snapshot() -> dict[int, tuple[str, float]]:
        out = {}
        for p in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                kind = kind_of(p.cmdline())
                if kind is not None and kind != "browser-driver":
                    t = p.cpu_times()
                    out[p.pid] = (kind, t.user + t.system)
        return out

    a = snapshot()
    time.sleep(seconds)
    b = snapshot()
    total: dict[str, float] = {}
    for pid, (kind, cpu) in b.items():
        if pid in a:
            total[kind] = total.get(kind, 0.0) + 100.0 * (cpu - a[pid][1]) / seconds
    return total


async def _playwright(
    url: str, server: PageServer, cfg: dict, users: list, args: argparse.Namespace
) -> dict[str, float]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(find_chromium()), args=[*CHROMIUM_FLAGS, *host_rules(url, 4)]
        )
        page = await (await browser.new_context()).new_page()
        await page.goto(server.url)
        await page.evaluate("c => ssevsws.init(c)", cfg)
        await page.evaluate(
            "([u]) => ssevsws.start(performance.timeOrigin + performance.now() + 100, u)", [users]
        )
        await asyncio.sleep(args.warmup)
        cpu = await asyncio.to_thread(_cpu_by_kind, psutil.Process(), args.seconds)
        await browser.close()
    return cpu


async def _direct(url: str, server: PageServer, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(
            [
                str(find_chromium()),
                *CHROMIUM_FLAGS,
                *host_rules(url, 4),
                f"--user-data-dir={profile}",
                f"{server.url}?auto",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            await asyncio.sleep(args.warmup + 1.0)
            return await asyncio.to_thread(_cpu_by_kind, psutil.Process(), args.seconds)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


async def main_async(args: argparse.Namespace) -> None:
    arm = get_arm(args.arm)
    server_proc, url = _start_server(arm.server_kind or "sse")
    try:
        s = scenario_from_dict(
            {
                "name": "cdp",
                "load": {"users": args.users, "spawn_rate": 1000, "duration_s": 600},
                "stream": {"tokens": 100, "ttft_ms": 100, "gap_ms": args.gap_ms},
                "browser": {"users_per_page": args.users},
            }
        )
        cfg = page_config_for(s, arm.client)
        users = [
            u.to_page()
            for u in layout(s, phase="cdp/x/r1", arm=arm.name, worker="b", seed=1, url=url)
        ]
        rows = {}
        for mode in ("playwright", "direct"):
            server = await PageServer.start(auto={"cfg": cfg, "users": users})
            try:
                if mode == "playwright":
                    rows[mode] = await _playwright(url, server, cfg, users, args)
                else:
                    rows[mode] = await _direct(url, server, args)
            finally:
                await server.stop()
        tok_s = args.users * 1000.0 / args.gap_ms
        print(
            f"{args.arm}: {args.users} streams at {1000 / args.gap_ms:g} tokens/s each "
            f"({tok_s:,.0f} tokens/s)"
        )
        kinds = sorted({k for r in rows.values() for k in r})
        print(f"{'process':<20}" + "".join(f"{m:>14}" for m in rows))
        for k in [*kinds, "total"]:
            vals = [sum(r.values()) if k == "total" else r.get(k, 0.0) for r in rows.values()]
            print(f"{k:<20}" + "".join(f"{v:>13.1f}%" for v in vals))
        pw, direct = sum(rows["playwright"].values()), sum(rows["direct"].values())
        print(
            f"CPU per token: Playwright {pw / 100 / tok_s * 1e6:.0f} µs, "
            f"direct {direct / 100 / tok_s * 1e6:.0f} µs"
        )
    finally:
        server_proc.terminate()
        server_proc.wait(10)


def page_config_for(s, client: str) -> dict:
    from core.scenario import PhaseConfig

    cfg = PhaseConfig("", "cdp/x/r1", "x", "sse", "", s.to_dict(), seed=1)
    return page_config(cfg, s, client)


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
