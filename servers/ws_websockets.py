"""The `websockets` WebSocket server (asyncio implementation), same protocol as the aiohttp one.

`websockets` speaks only GET handshakes, so plain HTTP routes are answered from its
`process_request` hook on the same port: `/healthz`, `/metrics`, `/v1/stats[?reset=1]`.
There is no cancel endpoint here (it would need POST); cancel with the WS message.
"""

from __future__ import annotations

import email.utils
import http
from collections.abc import Callable
from functools import partial
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from core.wsmsg import CLOSE_UNSUPPORTED_DATA, MAX_CLIENT_MESSAGE, ProtocolError
from servers.config import ServerState
from servers.metrics import CONTENT_TYPE, healthz_body, make_registry, render_metrics, stats_body
from servers.ws_session import WSSession, WSSink

_JSON = "application/json"


def _response(status: int, body: bytes, content_type: str) -> Response:
    st = http.HTTPStatus(status)
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Content-Length", str(len(body))),
            ("Content-Type", content_type),
        ]
    )
    return Response(st.value, st.phrase, headers, body)


class WebsocketsServer:
    """Builds the handler and the HTTP hook around one ServerState."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.server: Server | None = None
        self._prom = make_registry(state, self.connections)

    def connections(self) -> int:
        return len(self.server.connections) if self.server is not None else 0

    def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        path = url.path
        if path == "/v1/ws":
            return None  # go on with the WebSocket handshake
        if path == "/healthz":
            return _response(200, healthz_body(self.state), _JSON)
        if path == "/metrics":
            return _response(200, render_metrics(self._prom), CONTENT_TYPE)
        if path == "/v1/stats":
            reset = parse_qs(url.query).get("reset", [""])[-1] in ("1", "true")
            return _response(200, stats_body(self.state, self.connections(), reset=reset), _JSON)
        return _response(404, b'{"error":"not found","field":"path"}', _JSON)

    async def handler(self, conn: ServerConnection) -> None:
        state = self.state
        state.stats.ws_connections_total += 1
        abort: Callable[[], None] = conn.transport.abort
        sink = WSSink(partial(conn.send, text=True), abort, (ConnectionClosed, ConnectionError))
        session = WSSession(state, sink)
        try:
            async for message in conn:
                if isinstance(message, str):
                    try:
                        await session.on_text(message)
                    except ProtocolError as exc:
                        state.stats.ws_protocol_errors += 1
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
        finally:
            await session.close()

    def serve(self) -> serve:
        cfg = self.state.config
        ping = cfg.heartbeat_s or None
        return serve(
            self.handler,
            cfg.host,
            cfg.port,
            process_request=self.process_request,
            compression="deflate" if cfg.compression == "deflate" else None,
            ping_interval=ping,
            ping_timeout=max(20.0, 2 * ping) if ping else None,
            max_size=MAX_CLIENT_MESSAGE,
            backlog=cfg.backlog,
            server_header=None,
        )
