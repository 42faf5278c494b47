"""`python -m servers {sse,ws,ws-websockets} --port P [...]` (what `ssevsws serve` execs)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from servers.config import KINDS, ServerConfig, is_loopback


def _non_negative(kind: type[float] | type[int]) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m servers",
        description="Twin reference servers for SSE vs WebSocket streaming",
    )
    p.add_argument("kind", choices=KINDS, help="sse (aiohttp), ws (aiohttp), ws-websockets")
    p.add_argument("--port", type=int, default=0, help="TCP port (0 = any free port; printed)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument(
        "--allow-remote", action="store_true", help="allow binding a non-loopback --host"
    )
    p.add_argument(
        "--heartbeat-s",
        type=_non_negative(float),
        default=15.0,
        help="SSE keepalive comment / WS ping interval in seconds; 0 = off (default 15)",
    )
    p.add_argument(
        "--no-accel-header",
        dest="accel_header",
        action="store_false",
        help="do not send X-Accel-Buffering: no on SSE responses",
    )
    p.add_argument("--retry-ms", type=_non_negative(int), default=3000, help="SSE retry: field")
    p.add_argument(
        "--ws-compression",
        choices=("off", "deflate"),
        default="off",
        help="WS permessage-deflate (default off; recorded in /metrics and /v1/stats)",
    )
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.allow_remote and not is_loopback(args.host):
        print(
            f"refusing to bind {args.host!r}: not a loopback address. These benchmark servers "
            "have no authentication; pass --allow-remote to expose them anyway.",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    cfg = ServerConfig(
        kind=args.kind,
        host=args.host,
        port=args.port,
        heartbeat_s=args.heartbeat_s,
        accel_header=args.accel_header,
        retry_ms=args.retry_ms,
        compression=args.ws_compression,
        loop=args.loop,
        allow_remote=args.allow_remote,
        log_level=args.log_level,
    )
    from servers.run import run

    return run(cfg)


if __name__ == "__main__":
    sys.exit(main())
