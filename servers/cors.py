"""CORS for the aiohttp servers: a browser page of an origin the server admits may read
its answers.

A page served from one origin (the browser load generator's, ``loadtests/browser``)
reads streams from a server on another port — or another ``*.localhost`` name — which is
a cross-origin request: without ``Access-Control-Allow-Origin`` the browser hides the
response (EventSource fails, ``fetch`` rejects). A POST with a JSON body, or with a
``Last-Event-ID`` or ``X-Cancel-Secret`` header, is not a "simple" request either: the
browser first sends an ``OPTIONS`` preflight and waits for its answer.

Which origins: exactly those the access policy admits (servers.access: loopback origins,
plus ``--allow-origin``) — one rule for who may talk to the server and who may read it.

- Every response to a request with an admitted ``Origin`` carries
  ``Access-Control-Allow-Origin: <that origin>`` (never ``*``: the answer names who may
  read), ``Vary: Origin`` and ``Access-Control-Expose-Headers`` for the headers a page
  needs (``X-Stream-Id``; ``X-Cancel-Secret``, which the cancel endpoint asks back).
- ``OPTIONS`` on every path the server serves (added to each route once all are in, so an
  unknown path is still a 404), from an admitted ``Origin`` to an admitted ``Host``, with
  ``Access-Control-Request-Method`` GET or POST, answers 204 with the methods and request
  headers the endpoints take and ``Access-Control-Max-Age``, so a page preflights once per
  origin and URL, not per stream. A preflight carries no credentials, so it is not asked
  for the bearer token (the request it announces is). Anything else: 403.

WebSockets are not subject to CORS (the browser sends ``Origin`` and the access policy
decides), so only the HTTP answers need this. `headers_for` and `preflight_headers` are
sans-I/O (tested without sockets); `install` adds them to an aiohttp app.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from aiohttp import web

from servers.endpoints import CANCEL_SECRET_HEADER

ALLOW_METHODS = "GET, POST"
ALLOW_HEADERS = f"Content-Type, Last-Event-ID, Authorization, {CANCEL_SECRET_HEADER}"
EXPOSE_HEADERS = f"X-Stream-Id, {CANCEL_SECRET_HEADER}"
#: Seconds a browser may cache a preflight answer (Chromium caps it at 7,200).
MAX_AGE_S = 600


class Admits(Protocol):
    """What CORS asks of the access policy (servers.access.AccessPolicy)."""

    def origin_ok(self, value: str | None) -> bool: ...

    def host_ok(self, value: str | None) -> bool: ...


def headers_for(policy: Admits, origin: str | None) -> dict[str, str]:
    """The CORS headers of an actual response to a request from `origin` ({} for none)."""
    if origin is None or not policy.origin_ok(origin):
        return {}
    return {
        "Access-Control-Allow-Origin": origin.strip(),
        "Access-Control-Expose-Headers": EXPOSE_HEADERS,
    }


def preflight_headers(policy: Admits, request_headers: Mapping[str, str]) -> dict[str, str] | None:
    """The headers of a 204 answer to an OPTIONS preflight, or None to refuse it (403)."""
    origin = request_headers.get("Origin")
    method = (request_headers.get("Access-Control-Request-Method") or "").strip().upper()
    if origin is None or method not in ("GET", "POST"):
        return None
    if not policy.origin_ok(origin) or not policy.host_ok(request_headers.get("Host")):
        return None
    return {
        "Access-Control-Allow-Origin": origin.strip(),
        "Access-Control-Allow-Methods": ALLOW_METHODS,
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": str(MAX_AGE_S),
        "Vary": "Origin",
    }


def install(app: web.Application, policy: Admits) -> None:
    """Add CORS to an aiohttp app whose routes are all in: headers on every response, an
    OPTIONS preflight on every route's path."""

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        # runs as the response's headers are about to be sent (streamed SSE bodies too)
        extra = headers_for(policy, request.headers.get("Origin"))
        if extra:
            response.headers.update(extra)
            response.headers.add("Vary", "Origin")

    async def preflight(request: web.Request) -> web.Response:
        headers = preflight_headers(policy, request.headers)
        if headers is None:
            return web.Response(status=403, text="CORS preflight refused: origin not admitted\n")
        return web.Response(status=204, headers=headers)

    app.on_response_prepare.append(on_prepare)
    for resource in list(app.router.resources()):
        if not any(route.method == "OPTIONS" for route in resource):
            resource.add_route("OPTIONS", preflight)
