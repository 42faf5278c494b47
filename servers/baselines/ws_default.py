"""The `websockets` library with its defaults: what a user picks instead of aiohttp WS.

`serve(handler, host, port)` and nothing else: permessage-deflate on (accepted when the
client offers it, as browsers do), ping every 20 s, default queues and limits. Only the
ping interval follows `--heartbeat-s` when given (idle runs), and `--ws-compression off`
gives the same library without compression, for reference.
"""

from __future__ import annotations

import http
import time

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from core.schedule import StreamPlan
from core.wsmsg import ProtocolError, Start, done_message, parse_client_message
from servers.baselines.common import emit


def _process_request(conn: ServerConnection, request: Request) -> Response | None:
    if request.path.startswith("/v1/ws"):
        return None
    body = b'{"status":"ok","kind":"websockets-default"}' if request.path == "/healthz" else b"{}"
    status = http.HTTPStatus.OK if request.path == "/healthz" else http.HTTPStatus.NOT_FOUND
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return Response(status.value, status.phrase, headers, body)


async def handler(conn: ServerConnection) -> None:
    async def send(data: bytes) -> None:
        await conn.send(data.decode(), text=True)

    try:
        async for message in conn:
            try:
                m = parse_client_message(message)
            except ProtocolError as exc:
                await conn.close(exc.code, exc.reason)
                return
            if isinstance(m, Start):
                t0 = time.monotonic_ns()
                plan = StreamPlan.build(m.params)
                await emit(plan, t0, send)
                await conn.send(done_message(plan.done(), m.params.stream))
    except ConnectionClosed:
        pass


def server(host: str, port: int, *, heartbeat_s: float | None, compression: str):
    kwargs: dict[str, object] = {}
    if heartbeat_s is not None:
        kwargs["ping_interval"] = heartbeat_s or None
    if compression == "off":
        kwargs["compression"] = None
    return serve(handler, host, port, process_request=_process_request, **kwargs)
