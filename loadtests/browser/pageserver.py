"""The harness's own tiny web server on loopback: the page files and the clock.

- ``GET /`` and ``GET /<file>.js``: `page/` (index.html, harness.js, the clients), sent
  with ``Cross-Origin-Opener-Policy: same-origin`` + ``Cross-Origin-Embedder-Policy:
  require-corp``: the page is then cross-origin isolated, and Chromium coarsens
  ``performance.now()`` to 5 µs instead of 100 µs. (Under COEP every cross-origin
  response the page reads must allow it: the reference servers answer loopback origins
  with CORS headers, servers/cors.py; WebSockets are not affected.)
- ``GET /clock`` (WebSocket): answers every message with ``time.monotonic_ns()`` as text —
  the harness's clock, for the page's round trips (core.clock_sync).
- ``GET /auto``: the JSON a page opened as ``/?auto`` starts from by itself, when one was
  given (`auto`; benchmarks/browser_cdp_overhead.py: a browser no DevTools client drives).

It runs on the load generator's own event loop, so a busy loop answers late; that only
widens a round trip, which the clock estimate already bounds.
"""

from __future__ import annotations

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


class PageServer:
    """Start with `await PageServer.start()`; `url` is the page, `clock_url` the clock."""

    def __init__(self, runner: web.AppRunner, port: int) -> None:
        self._runner = runner
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    @property
    def clock_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}/clock"

    @classmethod
    async def start(cls, auto: dict[str, Any] | None = None) -> PageServer:
        app = web.Application()
        app.router.add_get("/clock", _clock)
        if auto is not None:
            body = json.dumps(auto)

            async def _auto(request: web.Request) -> web.Response:
                return web.Response(text=body, content_type="application/json")

            app.router.add_get("/auto", _auto)
        app.router.add_get("/", _file)
        app.router.add_get("/{name}", _file)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, LOOPBACK, 0)
        await site.start()
        return cls(runner, runner.addresses[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()
