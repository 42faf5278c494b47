"""Chromium started and steered at the browser level only — no DevTools client on the pages.

Playwright attaches a DevTools session to every page it creates and keeps the Network
domain on: Chromium then serialises an event for every chunk a page receives (and every
WebSocket frame, payload included). Measured with loadtests/browser/cdp_overhead.py (60
streams at 20 tokens/s each): 43–45 % of a core with Playwright on the page against
13–19 % without, per arm — the instrumentation made the browser's CPU per token 2.3–3.4
times what a user's browser spends. So the
load generator launches Debian's chromium itself (loopback DevTools port, a fresh profile
directory) and uses the browser-level DevTools connection for three things only:
`Target.createBrowserContext` (one isolated context per page: its own connection pools),
`Target.createTarget` (open the page in it, never attached) and `Browser.close`. The pages
talk to the harness over a loopback WebSocket of the page server (`pageserver.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from core.browser import CHROMIUM_FLAGS

START_TIMEOUT_S = 20.0


class ChromiumError(RuntimeError):
    """Chromium did not start or a DevTools command failed (message says which)."""


class Chromium:
    """One headless Chromium process tree; `await Chromium.launch(exe, flags)`."""

    def __init__(self, proc: subprocess.Popen[bytes], profile: Path) -> None:
        self.proc = proc
        self.profile = profile
        self.version = ""
        self.flags: list[str] = []
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    async def launch(cls, executable: Path, extra_flags: list[str]) -> Chromium:
        profile = Path(tempfile.mkdtemp(prefix="ssevsws-chromium-"))
        flags = [
            *CHROMIUM_FLAGS,
            *extra_flags,
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        proc = subprocess.Popen(
            [str(executable), *flags],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        browser = cls(proc, profile)
        browser.flags = flags
        try:
            await browser._connect()
        except BaseException:
            await browser.close()
            raise
        return browser

    async def _connect(self) -> None:
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_file.is_file() or len(port_file.read_text().splitlines()) < 2:
            if self.proc.poll() is not None:
                raise ChromiumError(f"chromium exited with code {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise ChromiumError(f"chromium gave no DevTools port in {START_TIMEOUT_S:g} s")
            await asyncio.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(
            f"ws://127.0.0.1:{int(port)}{path}", max_msg_size=0, autoping=True
        )
        self._reader = asyncio.create_task(self._read())
        info = await self.send("Browser.getVersion")
        self.version = str(info.get("product", "")).split("/")[-1]

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            fut = self._waiting.pop(data.get("id", -1), None)
            if fut is not None and not fut.done():
                fut.set_result(data)
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(ChromiumError("the DevTools connection closed"))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One browser-level DevTools command; its result (ChromiumError on an error)."""
        if self._ws is None or self._ws.closed:
            raise ChromiumError("not connected to chromium")
        msg_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = fut
        await self._ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        reply = await asyncio.wait_for(fut, START_TIMEOUT_S)
        if "error" in reply:
            raise ChromiumError(f"{method}: {reply['error'].get('message', reply['error'])}")
        return dict(reply.get("result") or {})

    async def open_page(self, url: str) -> str:
        """Open `url` in a new isolated browser context; returns the page's target id."""
        ctx = await self.send("Target.createBrowserContext", disposeOnDetach=False)
        target = await self.send(
            "Target.createTarget", url=url, browserContextId=ctx["browserContextId"]
        )
        return str(target["targetId"])

    async def close(self) -> None:
        """Close the browser (DevTools, then SIGTERM, then SIGKILL), remove its profile."""
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.send("Browser.close"), 5.0)
        for sig, wait_s in ((None, 5.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if sig is not None and self.proc.poll() is None:
                self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self.proc.wait, wait_s)
                break
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        shutil.rmtree(self.profile, ignore_errors=True)
