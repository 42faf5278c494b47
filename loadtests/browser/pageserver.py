"""The harness's own tiny web server on loopback: the page files and the clock.

- ``GET /`` and ``GET /<file>.js``: `page/` (index.html, harness.js, the clients), sent
  with ``Cross-Origin-Opener-Policy: same-origin`` + ``Cross-Origin-Embedder-Policy:
  require-corp``: the page is then cross-origin isolated, and Chromium coarsens
  ``performance.now()`` to 5 µs instead of 100 µs. (Under COEP every cross-origin
  response the page reads must allow it: the reference servers answer loopback origins
  with CORS headers, servers/cors.py; WebSockets are not affected.)
- ``GET /clock`` (WebSocket): answers every message with ``time.monotonic_ns()`` as text —
  the harness's clock, for the page's round trips (core.clock_sync).
- ``GET /control?page=N`` (WebSocket): the harness's line to page N (opened as
  ``/?page=N``; no DevTools client is attached to the pages, see `chromium.py`).
  `PageChannel.call(method, *args)` runs ``ssevsws[method](...args)`` in the page and
  returns its (JSON) result; the page also pushes its uncaught errors there.

It runs on the load generator's own event loop, so a busy loop answers late; that only
widens a round trip, which the clock estimate already bounds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

from aiohttp import WSMsgType, web

from loadtests.browser.clients import PAGE_DIR

LOOPBACK = "127.0.0.1"

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cache-Control": "no-store",
}
_TYPES = {".html": "text/html", ".js": "text/javascript"}


async def _file(request: web.Request) -> web.Response:
    name = request.match_info.get("name") or "index.html"
    path = PAGE_DIR / name
    if path.parent != PAGE_DIR or path.suffix not in _TYPES or not path.is_file():
        return web.Response(status=404, text="not a page file\n")
    return web.Response(
        body=path.read_bytes(),
        content_type=_TYPES[path.suffix],
        charset="utf-8",
        headers=ISOLATION_HEADERS,
    )


async def _clock(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=False, max_msg_size=1024)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            await ws.send_str(str(time.monotonic_ns()))
    return ws


class PageError(RuntimeError):
    """A page call failed in the page, or the page went away (message says which)."""


class PageChannel:
    """The harness's end of one page's control WebSocket."""

    def __init__(self, page: int, ws: web.WebSocketResponse) -> None:
        self.page = page
        self._ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self.errors: list[str] = []  # pushed by the page (uncaught errors)
        self.closed = asyncio.Event()

    async def call(self, method: str, *args: Any, timeout_s: float = 60.0) -> Any:
        if self.closed.is_set():
            raise PageError(f"page {self.page} is gone")
        msg_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = fut
        await self._ws.send_str(json.dumps({"id": msg_id, "method": method, "args": list(args)}))
        try:
            return await asyncio.wait_for(fut, timeout_s)
        finally:
            self._waiting.pop(msg_id, None)

    def _receive(self, text: str) -> None:
        data = json.loads(text)
        if "event" in data:
            self.errors.append(str(data.get("text")))
            return
        fut = self._waiting.get(data.get("id", -1))
        if fut is None or fut.done():
            return
        if "error" in data:
            fut.set_exception(PageError(f"page {self.page}: {data['error']}"))
        else:
            fut.set_result(data.get("result"))

    def _gone(self) -> None:
        self.closed.set()
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(PageError(f"page {self.page} closed its control socket"))


class PageServer:
    """Start with `await PageServer.start()`; `url` is the page, `clock_url` the clock,
    `await channel(n)` page n's control line once it has connected."""

    def __init__(self, runner: web.AppRunner, port: int, channels: dict[int, PageChannel]) -> None:
        self._runner = runner
        self.port = port
        self._channels = channels

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    @property
    def clock_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}/clock"

    def page_url(self, page: int) -> str:
        return f"{self.url}?page={page}"

    async def channel(self, page: int, timeout_s: float = 20.0) -> PageChannel:
        deadline = time.monotonic() + timeout_s
        while page not in self._channels:
            if time.monotonic() > deadline:
                raise PageError(f"page {page} did not connect within {timeout_s:g} s")
            await asyncio.sleep(0.02)
        return self._channels[page]

    @classmethod
    async def start(cls) -> PageServer:
        channels: dict[int, PageChannel] = {}

        async def control(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse(compress=False, max_msg_size=0)
            await ws.prepare(request)
            ch = PageChannel(int(request.query.get("page", "-1")), ws)
            channels[ch.page] = ch
            try:
                async for msg in ws:
                    if msg.type is WSMsgType.TEXT:
                        ch._receive(msg.data)
            finally:
                ch._gone()
            return ws

        app = web.Application()
        app.router.add_get("/clock", _clock)
        app.router.add_get("/control", control)
        app.router.add_get("/", _file)
        app.router.add_get("/{name}", _file)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, LOOPBACK, 0)
        await site.start()
        return cls(runner, runner.addresses[0][1], channels)

    async def stop(self) -> None:
        await self._runner.cleanup()
