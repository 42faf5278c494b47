"""A deliberately tiny stand-in server for client tests: raw asyncio, one file, no aiohttp.

    python tests/loadtests/tinyserver.py {sse,ws} PORT [WS_PING_S]

Speaks just enough of the interface contract (README, Endpoint reference) for the client tests:
SSE `GET /v1/stream?...` (chunked, keep-alive, Last-Event-ID resume, drop_after) and WS
`/v1/ws` start/resume messages (via websockets' asyncio server, compression off). Emission
follows core.schedule offsets against absolute times, one write per token, so a stream
with ttft_ms=0, pause_at=1, pause_ms=1000 sends its first token at once and the rest a
second later — the buffering check. Prints "listening on http://127.0.0.1:PORT" when ready
(port 0: the kernel picks one).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import parse_qsl, urlsplit

from core.schedule import StreamPlan, parse_params, stream_id_json, token_payload
from core.sse import encode_done, encode_token


def _plan(fields: dict) -> StreamPlan:
    return StreamPlan.build(parse_params(fields))


async def _emit(plan: StreamPlan, start: int, write, drop) -> bool:
    """Send tokens start.. on schedule; returns False if the stream was dropped."""
    t0 = time.monotonic_ns()
    base = plan.offsets[start] if start < plan.n else 0
    sj = stream_id_json(plan.params.stream)
    drop_after = plan.params.drop_after
    for seq in range(start, plan.n):
        if drop_after is not None and start < drop_after and seq >= drop_after:
            await drop()
            return False
        due = t0 + (plan.offsets[seq] - base if start else plan.offsets[seq])
        delay = (due - time.monotonic_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        await write(seq, token_payload(sj, seq, time.monotonic_ns(), plan.ids[seq]))
    return True


async def _sse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            target = lines[0].split(" ")[1]
            headers = {
                k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
            }
            url = urlsplit(target)
            if url.path == "/healthz":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
                continue
            plan = _plan(dict(parse_qsl(url.query)))
            start = int(headers["last-event-id"]) + 1 if "last-event-id" in headers else 0
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )

            def chunk(b: bytes) -> bytes:
                return b"%x\r\n%s\r\n" % (len(b), b)

            async def write(seq: int, payload: bytes) -> None:
                writer.write(chunk(encode_token(seq, payload)))
                await writer.drain()

            async def drop() -> None:
                writer.transport.abort()

            if not await _emit(plan, start, write, drop):
                return
            writer.write(chunk(encode_done(plan.done())) + b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _ws(conn) -> None:
    from websockets.exceptions import ConnectionClosed

    try:
        async for message in conn:
            obj = json.loads(message)
            kind = obj.pop("type")
            start = 0
            if kind == "resume":
                start = obj.pop("after") + 1
            plan = _plan(obj)

            async def write(seq: int, payload: bytes) -> None:
                await conn.send(payload.decode())

            async def drop() -> None:
                conn.transport.abort()

            if not await _emit(plan, start, write, drop):
                return
            await conn.send(
                json.dumps({"type": "done", **plan.done(), "stream": plan.params.stream})
            )
    except ConnectionClosed:
        pass


async def main(kind: str, port: int, ping_s: float | None = None) -> None:
    if kind == "sse":
        server = await asyncio.start_server(_sse, "127.0.0.1", port, backlog=2048)
    else:
        from websockets.asyncio.server import serve

        server = await serve(
            _ws,
            "127.0.0.1",
            port,
            compression=None,
            ping_interval=ping_s,
            ping_timeout=ping_s,
            backlog=2048,
        )
    bound = server.sockets[0].getsockname()[1]  # port 0: the kernel's pick, announced
    print(f"listening on http://127.0.0.1:{bound}", flush=True)
    async with server:
        await asyncio.Event().wait()


if __name__ == "__main__":
    ping = float(sys.argv[3]) if len(sys.argv) > 3 else None  # WS ping interval = timeout
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), ping))
