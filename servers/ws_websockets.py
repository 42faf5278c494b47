"""The `websockets` WebSocket server (asyncio implementation), same protocol as the aiohttp one.

Plain HTTP routes are answered from its `process_request` hook on the same port (answers
in servers.endpoints): GET /healthz, /metrics, /v1/stats; POST /v1/stats/reset and
/v1/streams/{id}/cancel (websockets >= 17 hands non-GET requests to the hook; they carry
no body). Every request passes the access policy (servers.access) first. Connections
are `GuardedConnection`s: the header, idle and slow-consumer clocks of servers.guard.
"""

from __future__ import annotations

import email.utils
import http
import re
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from core.wsmsg import CLOSE_UNSUPPORTED_DATA, MAX_CLIENT_MESSAGE, ProtocolError
from servers import endpoints
from servers.access import AccessPolicy, joined
from servers.config import ServerState
from servers.endpoints import Answer
from servers.guard import ConnectionGuard, GuardHooks, Guards
from servers.metrics import CONTENT_TYPE, make_registry, render_metrics
from servers.ws_session import WSSession, WSSink

_CANCEL_PATH = re.compile(r"/v1/streams/([^/]+)/cancel")


def _response(answer: Answer) -> Response:
    st = http.HTTPStatus(answer.status)
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Content-Length", str(len(answer.body))),
            ("Content-Type", answer.content_type),
            *answer.headers,
        ]
    )
    return Response(st.value, st.phrase, headers, answer.body)


class GuardedConnection(GuardHooks, ServerConnection):
    """websockets' connection, reporting its life to a ConnectionGuard (servers.guard)."""

    def __init__(self, *args: Any, guards: Guards, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = ConnectionGuard(guards)


class WebsocketsServer:
    """Builds the handler and the HTTP hook around one ServerState."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.server: Server | None = None
        self._prom = make_registry(state, self.connections)
        self._access = AccessPolicy.from_config(state.config)

    def connections(self) -> int:
        return len(self.server.connections) if self.server is not None else 0

    def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        if isinstance(conn, GuardedConnection):
            conn.guard.head_received()
        url = urlsplit(request.path)
        path = url.path
        refusal = self._access.refusal(path, joined(request.headers.get_all))
        if refusal is not None:
            self.state.stats.requests_refused[refusal.reason] += 1
            return _response(endpoints.refused(refusal))
        if path == "/v1/ws":
            return None  # go on with the WebSocket handshake (405 if not a GET)
        answer = self._answer(request.method, path, url.query, request.headers)
        return None if answer is None else _response(answer)

    def _answer(self, method: str, path: str, query: str, headers: Headers) -> Answer | None:
        state = self.state
        if method == "GET":
            if path == "/healthz":
                return endpoints.healthz(state)
            if path == "/metrics":
                return Answer(200, render_metrics(self._prom), CONTENT_TYPE)
            if path == "/v1/stats":
                asked = "reset" in parse_qs(query, keep_blank_values=True)
                return endpoints.stats(state, self.connections(), reset_asked=asked)
        elif method == "POST":
            if path == endpoints.STATS_RESET_PATH:
                return endpoints.stats_reset(state, self.connections())
            m = _CANCEL_PATH.fullmatch(path)
            if m is not None:
                secret = joined(headers.get_all)(endpoints.CANCEL_SECRET_HEADER)
                return endpoints.cancel(state, unquote(m.group(1)), secret)
        return endpoints.json_answer({"error": "not found", "field": "path"}, 404)

    async def handler(self, conn: ServerConnection) -> None:
        state = self.state
        state.stats.ws_connections_total += 1
        abort: Callable[[], None] = conn.transport.abort
        path = conn.request.path if conn.request is not None else ""
        label = (parse_qs(urlsplit(path).query).get("conn") or [None])[-1]
        sink = WSSink(
            partial(conn.send, text=True),
            abort,
            (ConnectionClosed, ConnectionError),
            conn,
            ServerConnection.close,
            label,
        )
        guard = conn.guard if isinstance(conn, GuardedConnection) else None
        session = WSSession(state, sink, guard)
        cause = "close"
        try:
            async for message in conn:
                if isinstance(message, str):
                    try:
                        await session.on_text(message)
                    except ProtocolError as exc:
                        await session.close()
                        await conn.close(exc.code, exc.reason)
                        break
                else:
                    state.stats.ws_protocol_errors += 1
                    await session.close()
                    await conn.close(CLOSE_UNSUPPORTED_DATA, "binary frames are not supported")
                    break
        except ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == 1009:  # over max_size
                state.stats.ws_protocol_errors += 1
            elif exc.rcvd is None and exc.sent is not None and exc.sent.code == 1011:
                cause = "ping_timeout"  # websockets' keepalive: "keepalive ping timeout"
        finally:
            await session.close(cause)

    def serve(self) -> serve:
        cfg = self.state.config
        ping = cfg.heartbeat_s or None
        return serve(
            self.handler,
            cfg.host,
            cfg.port,
            process_request=self.process_request,
            create_connection=partial(GuardedConnection, guards=Guards(self.state)),
            open_timeout=None,  # the guard's header clock instead (counted by reason)
            compression="deflate" if cfg.compression == "deflate" else None,
            ping_interval=ping,
            ping_timeout=max(20.0, 2 * ping) if ping else None,
            max_size=MAX_CLIENT_MESSAGE,
            backlog=cfg.backlog,
            server_header=None,
            ssl=cfg.ssl_context(),
        )
