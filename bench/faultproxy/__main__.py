"""``python -m bench.faultproxy``: run the fault proxy as its own process.

    python -m bench.faultproxy --listen 127.0.0.1:0 --upstream 127.0.0.1:8081 \\
        --profile 4g --seed 7 --log results/run/network/chat.4g/sse/r1 [--set down.loss=0.02]

Prints ``listening on http://HOST:PORT (faultproxy … t0_ns=N …)`` once it accepts (the
orchestrator reads the port from it, as from the servers; N is the schedule's origin: when it
started listening, unless ``--t0-ns`` set it), writes ``faults.jsonl`` into ``--log``, and
stops on SIGTERM / SIGINT (closing every connection, flushing the log). Listens and dials on
loopback only. Exit 2 with one line for a bad argument or profile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import signal
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.faultproxy.profile import ProfileError, available_profiles, load_profile
from bench.faultproxy.proxy import FaultProxy
from bench.hostcheck import raise_nofile_limit
from core.faultlog import FAULT_LOG, FaultLogWriter


def _loopback_addr(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{what}: expected HOST:PORT, got {text!r}")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"{what}: {host!r} is not a loopback address (loopback only)")
    return host, int(port)


def toml_value(value: Any) -> str:
    """`value` in TOML syntax, for ``--set KEY=VALUE`` (scalars, lists, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise ValueError(f"cannot write {value!r} as a TOML value")


def set_args(overrides: Mapping[str, Any]) -> list[str]:
    """``--set`` arguments for a mapping of profile overrides."""
    out: list[str] = []
    for key, value in overrides.items():
        out += ["--set", f"{key}={toml_value(value)}"]
    return out


def proxy_command(
    upstream: str,
    profile: str,
    log_dir: Path,
    *,
    seed: int = 1,
    overrides: Mapping[str, Any] | None = None,
    sets: list[str] | None = None,
    t0_ns: int | None = None,
) -> list[str]:
    """The command line that runs the proxy in front of `upstream` ("host:port"): profile,
    seed, log folder, overrides (a mapping, or ready ``KEY=VALUE`` strings), schedule origin."""
    cmd = [sys.executable, "-m", "bench.faultproxy", "--listen", "127.0.0.1:0"]
    cmd += ["--upstream", upstream, "--profile", profile, "--seed", str(seed)]
    cmd += ["--log", str(log_dir)]
    cmd += set_args(overrides or {})
    for text in sets or []:
        cmd += ["--set", text]
    if t0_ns is not None:
        cmd += ["--t0-ns", str(t0_ns)]
    return cmd


def _override(text: str) -> tuple[str, Any]:
    """KEY=VALUE with VALUE in TOML syntax (a bare word is taken as a string)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set: expected KEY=VALUE, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.faultproxy", description="TCP fault proxy (loopback only)"
    )
    p.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0 = any, printed)")
    p.add_argument("--upstream", required=True, help="HOST:PORT of the server")
    p.add_argument(
        "--profile",
        required=True,
        help=f"a bench/networks name ({', '.join(available_profiles())}) or a .toml path",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a profile key, e.g. down.latency_ms=80 (repeatable)",
    )
    p.add_argument("--seed", type=int, default=1, help="fault schedule seed")
    p.add_argument("--log", required=True, type=Path, help=f"folder for {FAULT_LOG}")
    p.add_argument(
        "--t0-ns",
        type=int,
        default=None,
        help="schedule origin (time.monotonic_ns); default: when it starts",
    )
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> int:
    listen = _loopback_addr(args.listen, "--listen")
    upstream = _loopback_addr(args.upstream, "--upstream")
    profile = load_profile(args.profile, dict(_override(s) for s in args.set))
    if not profile.proxy:
        raise ProfileError(f"profile {profile.name!r} means no proxy (proxy = false)")
    log = FaultLogWriter(args.log / FAULT_LOG)
    proxy = FaultProxy(profile, seed=args.seed, upstream=upstream, log=log, t0_ns=args.t0_ns)
    host, port = await proxy.start(*listen)
    print(
        f"listening on http://{host}:{port} (faultproxy profile={profile.name} "
        f"seed={args.seed} t0_ns={proxy.t0_ns} upstream={upstream[0]}:{upstream[1]} "
        f"log={args.log / FAULT_LOG})",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await proxy.stop()
    log.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_nofile_limit()  # two sockets per proxied connection
    try:
        if args.loop == "uvloop":
            import uvloop

            return uvloop.run(serve(args))
        return asyncio.run(serve(args))
    except (ValueError, ProfileError) as exc:
        print(f"faultproxy: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"faultproxy: cannot listen: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
