"""The Python limit: a bare asyncio Protocol streaming SSE-framed tokens over HTTP/1.1.

Just enough HTTP: read the request head, answer ``GET /healthz`` and
``GET /v1/stream?seed=&tokens=&ttft_ms=&gap_ms=&stream=`` with an unchunked
``text/event-stream`` body (``Connection: close``, the body ends when the socket closes),
``id: <seq>\\ndata: <payload>\\n\\n`` per token and ``event: done`` at the end. Same
payload, same schedule, same one-yield-per-token rule as the project's servers, nothing
else: no routing, no header parsing, no chunked framing, no counters.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qsl

from core.schedule import ParamError, StreamPlan, parse_params, stream_id_json, token_payload
from core.sse import encode_done

_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Connection: close\r\n\r\n"
)
_MAX_HEAD = 16 * 1024


def _simple(status: str, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n%s" % (status.encode(), len(body), body)
    )


class RawSSE(asyncio.Protocol):
    __slots__ = ("buf", "lost", "paused", "task", "transport", "waiter")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.task: asyncio.Task[None] | None = None
        self.paused = False
        self.lost = False
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.task is not None:
            return  # one request per connection; anything after it is ignored
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > _MAX_HEAD:
                self.transport.close()  # type: ignore[union-attr]
            return
        line = self.buf[: self.buf.find(b"\r\n")].decode("latin-1")
        parts = line.split(" ")
        target = parts[1] if len(parts) == 3 else ""
        self.task = asyncio.get_running_loop().create_task(self.serve(target))

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def serve(self, target: str) -> None:
        t0 = time.monotonic_ns()
        tr = self.transport
        assert tr is not None
        path, _, query = target.partition("?")
        if path == "/healthz":
            tr.write(_simple("200 OK", b'{"status":"ok","kind":"raw"}'))
            tr.close()
            return
        if path != "/v1/stream":
            tr.write(_simple("404 Not Found", b'{"error":"not found","field":"path"}'))
            tr.close()
            return
        try:
            plan = StreamPlan.build(parse_params(dict(parse_qsl(query))))
        except ParamError as exc:
            body = b'{"error":"%s"}' % str(exc).replace('"', "'").encode()
            tr.write(_simple("400 Bad Request", body))
            tr.close()
            return
        write = tr.write
        write(_HEAD)
        ids, offs, n = plan.ids, plan.offsets, plan.n
        sj = stream_id_json(plan.params.stream)
        mono = time.monotonic_ns
        sleep = asyncio.sleep
        seq = 0
        slept = False
        while seq < n:
            if self.lost:
                return
            due = t0 + offs[seq]
            now = mono()
            if now < due:
                await sleep(max((due - now) / 1e9, 0.001))
                slept = True
                continue
            if self.paused:  # the only wait a write can need: kernel buffer full
                self.waiter = asyncio.get_running_loop().create_future()
                await self.waiter
                self.waiter = None
                continue
            if not slept:
                await sleep(0)  # one yield per token (pitfall 11)
                if self.lost:
                    return
            slept = False
            write(b"id: %d\ndata: %s\n\n" % (seq, token_payload(sj, seq, mono(), ids[seq])))
            seq += 1
        write(encode_done(plan.done()))
        tr.close()


async def serve(host: str, port: int, backlog: int = 4096) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(RawSSE, host, port, backlog=backlog)
    return server, server.sockets[0].getsockname()[1]
