"""aiohttp pieces both aiohttp servers (SSE and WS) share: the app, its guard, the endpoints.

Routes (answers in servers.endpoints):
  GET  /healthz (with the server's monotonic_ns, for clock-offset probes), GET /metrics,
  GET /v1/stats, POST /v1/stats/reset, POST /v1/streams/{id}/cancel
Every handler first calls `admit` (the access policy of servers.access: Host, Origin,
token; the connection's idle clock stops) and `finished` when done (the idle clock of
servers.guard starts). The guarded protocol stops the header clock itself.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CollectorRegistry

from servers import cors, endpoints
from servers.access import AccessPolicy, joined
from servers.config import ServerState
from servers.endpoints import Answer
from servers.guard import ConnectionGuard, GuardHooks, Guards
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
class GuardedHandler(GuardHooks, web.RequestHandler):
    """aiohttp's HTTP protocol, reporting the connection's life to its ConnectionGuard."""

    __slots__ = ("guard",)
    guard: ConnectionGuard

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._request_count:  # aiohttp has parsed a request head: its clock stops
            self.guard.head_received()

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


def admit(request: web.Request) -> web.Response | None:
    """What every handler does first: the connection is no longer idle, and the access
    policy may refuse the request (the answer to send instead). A plain call, not a
    middleware: a middleware's frame and wrappers stay alive for a whole stream (~0.8 KiB)."""
    guard = request_guard(request)
    if guard is not None:
        guard.idle_stop()
    header = joined(lambda name: request.headers.getall(name, []))
    refusal = request.app[ACCESS_KEY].refusal(request.path, header)
    if refusal is None:
        return None
    request.app[STATE_KEY].stats.requests_refused[refusal.reason] += 1
    return response(endpoints.refused(refusal))


def finished(request: web.Request) -> None:
    """A request is over: its connection's idle clock starts (until the next one)."""
    guard = request_guard(request)
    if guard is not None:
        guard.idle_start()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def endpoint(handler: Handler) -> Handler:
    """A short request handler, admitted first and finished after."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return admit(request) or await handler(request)
        finally:
            finished(request)

    return wrapped


# -- endpoints ----------------------------------------------------------------------------
def _connections(request: web.Request) -> int:
    return request.app[CONNECTIONS_KEY]()


@endpoint
async def healthz(request: web.Request) -> web.Response:
    return response(endpoints.healthz(request.app[STATE_KEY]))


@endpoint
async def metrics(request: web.Request) -> web.Response:
    body = render_metrics(request.app[PROM_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


@endpoint
async def stats(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return response(
        endpoints.stats(state, _connections(request), reset_asked="reset" in request.query)
    )


@endpoint
async def stats_reset(request: web.Request) -> web.Response:
    return response(endpoints.stats_reset(request.app[STATE_KEY], _connections(request)))


@endpoint
async def cancel(request: web.Request) -> web.Response:
    secret = request.headers.get(endpoints.CANCEL_SECRET_HEADER)
    return response(endpoints.cancel(request.app[STATE_KEY], request.match_info["id"], secret))


def make_app(state: ServerState) -> web.Application:
    """The base app; the SSE or WS module adds its streaming route."""
    app = web.Application(client_max_size=MAX_BODY)
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


def finish_app(app: web.Application) -> web.Application:
    """Once every route is in: CORS for browser pages of the origins the server admits
    (servers.cors: a preflight on each route's path, headers on every answer)."""
    cors.install(app, app[ACCESS_KEY])
    return app
