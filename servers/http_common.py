"""aiohttp pieces both aiohttp servers (SSE and WS) share: the app, its guard, the endpoints.

Routes (answers in servers.endpoints):
  GET  /healthz, GET /metrics, GET /v1/stats, POST /v1/stats/reset,
  POST /v1/streams/{id}/cancel
Every request first passes the access policy (servers.access: Host, Origin, token) in a
middleware, which also tells the connection's guard (servers.guard) when a request head
arrived and when the connection goes idle between requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CollectorRegistry

from servers import endpoints
from servers.access import AccessPolicy, joined
from servers.config import ServerState
from servers.endpoints import Answer
from servers.guard import ConnectionGuard, Guards
from servers.metrics import CONTENT_TYPE, make_registry, render_metrics


class ConnectionCount:
    """Open TCP connections, read from the aiohttp low-level server once the runner exists."""

    __slots__ = ("server",)

    def __init__(self) -> None:
        self.server: web.Server | None = None

    def __call__(self) -> int:
        return len(self.server.connections) if self.server is not None else 0


STATE_KEY = web.AppKey("state", ServerState)
CONNECTIONS_KEY = web.AppKey("connections", ConnectionCount)
PROM_KEY = web.AppKey("prom_registry", CollectorRegistry)
ACCESS_KEY = web.AppKey("access", AccessPolicy)

#: Largest request body (POST /v1/stream JSON); control input is tiny.
MAX_BODY = 16 * 1024


def response(answer: Answer) -> web.Response:
    return web.Response(
        body=answer.body,
        status=answer.status,
        content_type=answer.content_type,
        headers=dict(answer.headers),
    )


# -- the connection guard ----------------------------------------------------------------
class GuardedHandler(web.RequestHandler):
    """aiohttp's HTTP protocol, reporting the connection's life to its ConnectionGuard."""

    __slots__ = ("guard",)
    guard: ConnectionGuard

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.guard.start(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.guard.lost()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        self.guard.writing_paused()

    def resume_writing(self) -> None:
        super().resume_writing()
        self.guard.writing_resumed()

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """A malformed request (aiohttp answers it 4xx) is the client's error, not the
        server's: a debug line, not an error traceback per hostile request."""
        exc = kw.get("exc_info")
        if isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500:
            self.logger.debug("bad request: %s", exc)
        else:
            super().log_exception(*args, **kw)


class GuardedServer(web.Server):
    """aiohttp's low-level server making GuardedHandlers (aiohttp's own `__call__` with the
    handler class swapped). Installed by `guard_server`."""

    guards: Guards

    def __call__(self) -> GuardedHandler:
        handler = GuardedHandler(self, loop=self._loop, **self._kwargs)
        handler.guard = ConnectionGuard(self.guards)
        return handler


def guard_server(server: web.Server, state: ServerState) -> None:
    """Make the runner's server create GuardedHandlers. The object stays the same (the
    runner and its sites hold it); only its class changes, to a subclass that adds
    nothing but `guards`."""
    server.__class__ = GuardedServer
    assert isinstance(server, GuardedServer)
    server.guards = Guards(state)


def request_guard(request: web.BaseRequest) -> ConnectionGuard | None:
    """The guard of the connection carrying `request` (None outside a GuardedServer)."""
    protocol = request.protocol
    return protocol.guard if isinstance(protocol, GuardedHandler) else None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def guard_and_access(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse what the access policy refuses; keep the guard's header and idle clocks."""
    guard = request_guard(request)
    if guard is not None:
        guard.head_received()
        guard.idle_stop()
    try:
        header = joined(lambda name: request.headers.getall(name, []))
        refusal = request.app[ACCESS_KEY].refusal(request.path, header)
        if refusal is not None:
            request.app[STATE_KEY].stats.requests_refused[refusal.reason] += 1
            return response(endpoints.refused(refusal))
        return await handler(request)
    finally:
        if guard is not None:
            guard.idle_start()


# -- endpoints ----------------------------------------------------------------------------
def _connections(request: web.Request) -> int:
    return request.app[CONNECTIONS_KEY]()


async def healthz(request: web.Request) -> web.Response:
    return response(endpoints.healthz(request.app[STATE_KEY]))


async def metrics(request: web.Request) -> web.Response:
    body = render_metrics(request.app[PROM_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def stats(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return response(
        endpoints.stats(state, _connections(request), reset_asked="reset" in request.query)
    )


async def stats_reset(request: web.Request) -> web.Response:
    return response(endpoints.stats_reset(request.app[STATE_KEY], _connections(request)))


async def cancel(request: web.Request) -> web.Response:
    secret = request.headers.get(endpoints.CANCEL_SECRET_HEADER)
    return response(endpoints.cancel(request.app[STATE_KEY], request.match_info["id"], secret))


def make_app(state: ServerState) -> web.Application:
    """The base app; the SSE or WS module adds its streaming route."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[guard_and_access])
    app[STATE_KEY] = state
    app[ACCESS_KEY] = AccessPolicy.from_config(state.config)
    count = ConnectionCount()  # servers.run points it at the runner's server
    app[CONNECTIONS_KEY] = count
    app[PROM_KEY] = make_registry(state, count)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/stats", stats)
    app.router.add_post(endpoints.STATS_RESET_PATH, stats_reset)
    app.router.add_post("/v1/streams/{id}/cancel", cancel)
    return app
