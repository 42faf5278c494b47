"""CORS for the aiohttp servers: browser pages of a loopback origin may read the streams.

A page served from one loopback origin (the browser load generator's, ``loadtests/browser``)
reads streams from a server on another port — or another ``*.localhost`` name — which is
a cross-origin request: without ``Access-Control-Allow-Origin`` the browser hides the
response (EventSource fails, ``fetch`` rejects). A POST with a JSON body, or with a
``Last-Event-ID`` header, is not a "simple" request either: the browser first sends an
``OPTIONS`` preflight and waits for its answer.

- Every response to a request whose ``Origin`` is allowed carries
  ``Access-Control-Allow-Origin: <that origin>`` (never ``*``: the answer names who may
  read), ``Vary: Origin`` and ``Access-Control-Expose-Headers: X-Stream-Id``.
- ``OPTIONS`` on any path with an allowed ``Origin`` and ``Access-Control-Request-Method``
  GET or POST answers 204 with the methods and request headers the endpoints take
  (``Content-Type``, ``Last-Event-ID``, ``Authorization``) and ``Access-Control-Max-Age``,
  so a page preflights once per origin and URL, not per stream.
- Allowed origins: loopback ones (``http``/``https``, host ``localhost``, ``*.localhost``
  or a loopback address; any port). Other origins get no CORS headers — the browser then
  refuses to hand the response to the page — and a 403 preflight.

WebSockets are not subject to CORS (the browser sends ``Origin`` and lets the server
decide), so only the HTTP answers need this. Sans-I/O helpers (`allowed`, `headers_for`,
`preflight_headers`) are tested without sockets; `install` adds them to an aiohttp app.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from aiohttp import web

from servers.config import is_loopback

ALLOW_METHODS = "GET, POST"
ALLOW_HEADERS = "Content-Type, Last-Event-ID, Authorization"
EXPOSE_HEADERS = "X-Stream-Id"
#: Seconds a browser may cache a preflight answer (Chromium caps it at 7,200).
MAX_AGE_S = 600


def allowed(origin: str | None) -> bool:
    """A loopback origin: http(s)://localhost | *.localhost | loopback address [:port]."""
    if not origin:
        return False
    try:
        parts = urlsplit(origin.strip().lower())
        name = parts.hostname
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not name:
        return False
    return name == "localhost" or name.endswith(".localhost") or is_loopback(name)


def headers_for(origin: str | None) -> dict[str, str]:
    """The CORS headers of an actual response to a request from `origin` ({} if refused)."""
    if origin is None or not allowed(origin):
        return {}
    return {
        "Access-Control-Allow-Origin": origin.strip(),
        "Access-Control-Expose-Headers": EXPOSE_HEADERS,
    }


def preflight_headers(request_headers: Mapping[str, str]) -> dict[str, str] | None:
    """The headers of a 204 answer to an OPTIONS preflight, or None to refuse it (403)."""
    origin = request_headers.get("Origin")
    method = (request_headers.get("Access-Control-Request-Method") or "").strip().upper()
    if origin is None or not allowed(origin) or method not in ("GET", "POST"):
        return None
    return {
        "Access-Control-Allow-Origin": origin.strip(),
        "Access-Control-Allow-Methods": ALLOW_METHODS,
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": str(MAX_AGE_S),
        "Vary": "Origin",
    }


async def _on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    # Runs as the response's headers are about to be sent (also for streamed SSE bodies).
    extra = headers_for(request.headers.get("Origin"))
    if extra:
        response.headers.update(extra)
        response.headers.add("Vary", "Origin")


async def _preflight(request: web.Request) -> web.Response:
    headers = preflight_headers(request.headers)
    if headers is None:
        return web.Response(status=403, text="CORS preflight refused: loopback origins only\n")
    return web.Response(status=204, headers=headers)


def install(app: web.Application) -> None:
    """Add CORS to an aiohttp app: headers on every response, OPTIONS preflights answered."""
    app.on_response_prepare.append(_on_prepare)
    app.router.add_route("OPTIONS", "/{tail:.*}", _preflight)
