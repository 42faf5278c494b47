"""aiohttp pieces both aiohttp servers (SSE and WS) share: the app, health, metrics, stats, cancel.

Routes:
  GET  /healthz                   200 {"status":"ok","kind":...,"pid":...}
  GET  /metrics                   Prometheus text
  GET  /v1/stats[?reset=1]        lag percentiles (µs) and counts for the current window
  POST /v1/stats/reset            same body, then start a new window
  POST /v1/streams/{id}/cancel    200 {"cancelled":k} or 404 {"error":...,"field":"stream"}
"""

from __future__ import annotations

import json

from aiohttp import web
from prometheus_client import CollectorRegistry

from core.schedule import ParamError, coerce_stream_id
from servers import cors
from servers.config import ServerState
from servers.metrics import (
    CONTENT_TYPE,
    healthz_body,
    make_registry,
    render_metrics,
    stats_body,
)


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

#: Largest request body (POST /v1/stream JSON); control input is tiny.
MAX_BODY = 16 * 1024

JSON = "application/json"


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(), status=status, content_type=JSON
    )


def param_error(exc: ParamError) -> web.Response:
    return json_response(exc.as_dict(), status=400)


def _connections(request: web.Request) -> int:
    return request.app[CONNECTIONS_KEY]()


async def healthz(request: web.Request) -> web.Response:
    return web.Response(body=healthz_body(request.app[STATE_KEY]), content_type=JSON)


async def metrics(request: web.Request) -> web.Response:
    body = render_metrics(request.app[PROM_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def stats(request: web.Request) -> web.Response:
    reset = request.method == "POST" or request.query.get("reset", "") in ("1", "true")
    body = stats_body(request.app[STATE_KEY], _connections(request), reset=reset)
    return web.Response(body=body, content_type=JSON)


async def cancel(request: web.Request) -> web.Response:
    try:
        stream = coerce_stream_id(request.match_info["id"])
    except ParamError as exc:
        return param_error(exc)
    k = request.app[STATE_KEY].registry.cancel(stream)
    if not k:
        return json_response({"error": "no active stream with this id", "field": "stream"}, 404)
    return json_response({"cancelled": k})


def make_app(state: ServerState) -> web.Application:
    """The base app; the SSE or WS module adds its streaming route."""
    app = web.Application(client_max_size=MAX_BODY)
    app[STATE_KEY] = state
    count = ConnectionCount()  # servers.run points it at the runner's server
    app[CONNECTIONS_KEY] = count
    app[PROM_KEY] = make_registry(state, count)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/stats", stats)
    app.router.add_post("/v1/stats/reset", stats)
    app.router.add_post("/v1/streams/{id}/cancel", cancel)
    cors.install(app)  # browser pages of loopback origins (servers.cors)
    return app
