"""`python -m servers {sse,ws,ws-websockets} --port P [...]` (what `ssevsws serve` execs)."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence

from servers.access import TOKEN_ENV
from servers.config import KINDS, ServerConfig, is_loopback

_DEFAULTS = ServerConfig(kind="sse")
#: The timeouts and limits: (group title, [(ServerConfig field = flag, type, what it does)]).
_TUNING: tuple[tuple[str, tuple[tuple[str, type[float] | type[int], str], ...]], ...] = (
    (
        "timeouts (seconds, 0 = off; closes counted on /metrics by reason)",
        (
            (
                "send_timeout_s",
                float,
                "abort a connection whose peer takes no data for this long while our writes "
                "wait (slow consumer)",
            ),
            (
                "header_timeout_s",
                float,
                "close a connection that has not sent a complete first request head (HTTP or "
                "WS upgrade) by then",
            ),
            (
                "idle_timeout_s",
                float,
                "close a connection with nothing in progress (HTTP: between requests; WS: no "
                "stream and no client message; close 1001)",
            ),
        ),
    ),
    (
        "limits (0 = none; refusals: HTTP 503/400, WS close 1013/1008, counted by limit)",
        (
            ("max_streams_per_connection", int, "streams running at once on one WS connection"),
            ("max_active_streams", int, "streams running at once in the server"),
            (
                "max_planned_tokens",
                int,
                "sum of the planned tokens of the running streams, ~50 bytes each",
            ),
        ),
    ),
)


def _non_negative(kind: type[float] | type[int]) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
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
    p.add_argument(
        "--stream-log",
        default=None,
        metavar="PATH",
        help="append one JSON line per ended stream emission: sent, wasted, how it ended "
        "(default: off)",
    )
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))

    for title, flags in _TUNING:
        group = p.add_argument_group(title)
        for name, kind, what in flags:
            default = getattr(_DEFAULTS, name)
            shown = f"{default:g}" if kind is float else str(default)
            group.add_argument(
                "--" + name.replace("_", "-"),
                type=_non_negative(kind),
                default=default,
                help=f"{what} (default {shown})",
            )
    a = p.add_argument_group("access (refusals: 403 Host/Origin, 401 token, counted by reason)")
    a.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also accept this Host name (repeatable; '*' = any); loopback names and the "
        "bound address are always accepted",
    )
    a.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="also accept this Origin, e.g. https://app.example:8443 (repeatable; '*' = any); "
        "loopback origins and requests without Origin are always accepted",
    )
    a.add_argument(
        "--token",
        default=None,
        help=f"require 'Authorization: Bearer TOKEN' on every endpoint but /healthz "
        f"(default: ${TOKEN_ENV} if set, else none; the environment keeps it out of ps)",
    )
    t = p.add_argument_group("TLS (https:// and wss://; default: plain TCP)")
    t.add_argument(
        "--tls-self-signed",
        action="store_true",
        help="serve TLS with a certificate made at start (openssl; CN=localhost, SANs "
        "localhost, 127.0.0.1, ::1 and --host): clients verify it with --ca-file CERT, the "
        "path the listening line prints",
    )
    t.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate (chain)")
    t.add_argument("--tls-key", metavar="PEM", help="… and this private key")
    return p


def _tls_files(args: argparse.Namespace) -> tuple[str, str] | str | None:
    """(cert, key) to serve TLS with, None for plain TCP, or why not (one line)."""
    if args.tls_self_signed:
        if args.tls_cert or args.tls_key:
            return "--tls-self-signed makes its own certificate: drop --tls-cert / --tls-key"
        import tempfile

        from core.tlscert import CertError, make_self_signed_cert

        try:
            cert, key = make_self_signed_cert(
                tempfile.mkdtemp(prefix="ssevsws-tls-"), names=(args.host,)
            )
        except CertError as exc:
            return str(exc)
        return str(cert), str(key)
    if bool(args.tls_cert) != bool(args.tls_key):
        return "--tls-cert and --tls-key go together"
    if args.tls_cert:
        from core.tlscert import server_context

        try:
            server_context(args.tls_cert, args.tls_key)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            return f"--tls-cert / --tls-key: {exc}"
        return args.tls_cert, args.tls_key
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.allow_remote and not is_loopback(args.host):
        print(
            f"refusing to bind {args.host!r}: not a loopback address. Pass --allow-remote to "
            f"expose the server anyway, with --token (or ${TOKEN_ENV}) and --allow-host.",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    tls = _tls_files(args)
    if isinstance(tls, str):
        print(f"python -m servers: {tls}", file=sys.stderr)
        return 2
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
        **{name: getattr(args, name) for _, flags in _TUNING for name, _, _ in flags},
        allow_hosts=tuple(args.allow_host),
        allow_origins=tuple(args.allow_origin),
        token=token,
        stream_log=args.stream_log,
        tls_cert=tls[0] if tls else None,
        tls_key=tls[1] if tls else None,
        tls_self_signed=bool(args.tls_self_signed),
    )
    from servers.run import run

    return run(cfg)


if __name__ == "__main__":
    sys.exit(main())
