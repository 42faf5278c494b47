"""Start one server kind, announce it, wait for SIGINT/SIGTERM, stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from aiohttp import web

from servers.config import ServerConfig, ServerState
from servers.http_common import CONNECTIONS_KEY, guard_server
from servers.streamlog import StreamLog
from servers.streams import Outcome

log = logging.getLogger("servers")


def listening_line(cfg: ServerConfig, port: int) -> str:
    hb = f"{cfg.heartbeat_s:g}s" if cfg.heartbeat_s > 0 else "off"
    tls = f", tls={cfg.tls_cert}" if cfg.tls else ""
    return (
        f"listening on {cfg.scheme}://{cfg.host}:{port} "
        f"(kind={cfg.kind}, heartbeat={hb}, compression={cfg.compression}{tls})"
    )


def _announce(cfg: ServerConfig, port: int) -> None:
    print(listening_line(cfg, port), flush=True)


def _stop_streams(state: ServerState) -> None:
    for handle in state.registry.active():
        handle.stop(Outcome.DISCONNECTED, "shutdown")


async def _serve_aiohttp(state: ServerState, stop: asyncio.Event) -> None:
    cfg = state.config
    if cfg.kind == "sse":
        from servers.sse_app import make_sse_app as make
    else:
        from servers.ws_aiohttp import make_ws_app as make
    app = make(state)
    access_log = logging.getLogger("aiohttp.access") if log.isEnabledFor(logging.INFO) else None
    runner = web.AppRunner(app, access_log=access_log, handle_signals=False)
    await runner.setup()
    assert runner.server is not None
    guard_server(runner.server, state)
    app[CONNECTIONS_KEY].server = runner.server
    site = web.TCPSite(
        runner,
        cfg.host,
        cfg.port,
        backlog=cfg.backlog,
        shutdown_timeout=2.0,
        ssl_context=cfg.ssl_context(),
    )
    await site.start()
    port = runner.addresses[0][1]
    _announce(cfg, port)
    try:
        await stop.wait()
    finally:
        _stop_streams(state)
        await runner.cleanup()


async def _serve_websockets(state: ServerState, stop: asyncio.Event) -> None:
    from servers.ws_websockets import WebsocketsServer

    wss = WebsocketsServer(state)
    server = await wss.serve()
    wss.server = server
    port = next(iter(server.sockets)).getsockname()[1]
    _announce(state.config, port)
    try:
        await stop.wait()
    finally:
        _stop_streams(state)
        # Close handshakes get a moment; peers that never finish theirs are cut off.
        server.close(close_connections=True)
        try:
            async with asyncio.timeout(2):
                await server.wait_closed()
        except TimeoutError:
            # `connections` lists OPEN ones only; closing ones are the stuck ones here.
            for conn in list(server.all_connections):
                conn.transport.abort()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1):
                    await server.wait_closed()


async def serve(cfg: ServerConfig) -> None:
    """Run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    state = ServerState(cfg)
    if cfg.stream_log:
        state.stream_log = StreamLog(cfg.stream_log)
        state.stream_log.start_flushing()
    try:
        if cfg.kind == "ws-websockets":
            await _serve_websockets(state, stop)
        else:
            await _serve_aiohttp(state, stop)
    finally:
        if state.stream_log is not None:  # after the streams stopped at shutdown wrote theirs
            state.stream_log.close()


def run(cfg: ServerConfig) -> int:
    if cfg.loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            print("uvloop is not installed; use --loop asyncio", file=sys.stderr)
            return 2
        factory = uvloop.new_event_loop
    else:
        factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(cfg))
    return 0
