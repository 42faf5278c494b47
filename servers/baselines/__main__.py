"""`python -m servers.baselines KIND --port P [--host 127.0.0.1] [--heartbeat-s H]`."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from servers.baselines import KINDS
from servers.baselines.common import listening_line
from servers.config import is_loopback


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _run_raw(args: argparse.Namespace) -> None:
    from servers.baselines.raw import serve

    server, port = await serve(args.host, args.port)
    print(listening_line("raw", args.host, port), flush=True)
    try:
        await _until_signal()
    finally:
        server.close()


async def _run_aiohttp(args: argparse.Namespace) -> None:
    from aiohttp import web

    from servers.baselines import aiohttp_bare

    hb = 15.0 if args.heartbeat_s is None else args.heartbeat_s
    make = aiohttp_bare.make_sse_app if args.kind == "aiohttp-sse" else aiohttp_bare.make_ws_app
    runner = web.AppRunner(make(hb), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=4096, shutdown_timeout=1.0)
    await site.start()
    port = runner.addresses[0][1]
    print(listening_line(args.kind, args.host, port, heartbeat=f"{hb:g}s"), flush=True)
    try:
        await _until_signal()
    finally:
        await runner.cleanup()


async def _run_websockets(args: argparse.Namespace) -> None:
    import websockets

    from servers.baselines.ws_default import server

    comp = "deflate (default)" if args.ws_compression == "default" else "off"
    async with server(
        args.host, args.port, heartbeat_s=args.heartbeat_s, compression=args.ws_compression
    ) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        hb = "20s (default)" if args.heartbeat_s is None else f"{args.heartbeat_s:g}s"
        print(
            listening_line(
                args.kind,
                args.host,
                port,
                websockets=websockets.__version__,
                compression=comp,
                ping=hb,
            ),
            flush=True,
        )
        await _until_signal()


async def _run_starlette(args: argparse.Namespace) -> None:
    import uvicorn

    from servers.baselines.starlette_app import make_app

    hb = 15.0 if args.heartbeat_s is None else args.heartbeat_s
    config = uvicorn.Config(
        make_app(hb),
        host=args.host,
        port=args.port,
        loop="uvloop",
        log_level="warning",
        access_log=False,
        backlog=4096,
        timeout_graceful_shutdown=1,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    for _ in range(2000):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if not server.started:
        await task
        raise SystemExit("uvicorn did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    print(
        listening_line(
            "starlette",
            args.host,
            port,
            uvicorn=uvicorn.__version__,
            http=config.http_protocol_class.__name__,
            heartbeat=f"{hb:g}s",
        ),
        flush=True,
    )
    await _until_signal()
    server.should_exit = True
    await asyncio.wait_for(task, 10)


RUNNERS = {
    "raw": _run_raw,
    "starlette": _run_starlette,
    "websockets-default": _run_websockets,
    "aiohttp-sse": _run_aiohttp,
    "aiohttp-ws": _run_aiohttp,
}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m servers.baselines", description=__doc__)
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--heartbeat-s",
        type=float,
        default=None,
        help="SSE keepalive / WS ping interval (default: the framework's own)",
    )
    p.add_argument(
        "--ws-compression",
        choices=("default", "off"),
        default="default",
        help="websockets-default only: the library default (deflate) or off",
    )
    args = p.parse_args(argv)
    if not is_loopback(args.host):
        print(f"refusing to bind {args.host!r}: baselines bind loopback only", file=sys.stderr)
        return 2
    import uvloop

    uvloop.run(RUNNERS[args.kind](args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
