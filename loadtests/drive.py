"""Run many users' sessions concurrently under gevent in one process, without Locust.

The same transports and session script the Locust users run, for tests and
benchmarks/client_accuracy.py, which need one process, exact control over concurrency,
and the raw accounts rather than Locust stats. Run as a module it monkey-patches first:

    python -m loadtests.drive --protocol ws --url ws://127.0.0.1:8082 --users 200 \\
        --tokens 50 --ttft-ms 300 --gap-ms 20 --json

and prints one JSON summary (core figures in ms, client CPU, outcomes, integrity).
"""

if __name__ == "__main__":  # patch before anything imports socket/time users
    from gevent import monkey

    monkey.patch_all()

import argparse
import contextlib
import json
import os
import resource
import socket
import sys
import time
from typing import Any

import gevent
import psutil

from core.accounting import NO_STAMP, StreamAccount
from core.arms import PROTOCOLS
from core.client.tls import TLSSettings
from core.formats import format_names
from core.scenario import scenario_from_dict
from loadtests import gctune
from loadtests.memsink import MemorySink, summarize
from loadtests.session import SessionPlan, UserIds, UserScript
from loadtests.transport import TransportContext
from loadtests.transports import make_transport


def _raise_nofile() -> None:
    """Open-files soft limit up to the hard limit (what bench's runner does for Locust)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _first_stamp(acct: StreamAccount) -> int | None:
    """The server's stamp on the stream's first token (None: no token, or no stamp)."""
    first = next(iter(acct.t_server_ns), NO_STAMP)
    return None if first == NO_STAMP else first


def runqueue_wait_s() -> float | None:
    """Seconds this process has spent runnable but waiting for a CPU (Linux schedstat: the
    second field of /proc/self/schedstat, ns); None where there is no such file. On a shared
    machine this is the delay other tenants add to every read, whatever the client costs."""
    try:
        with open("/proc/self/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def run(
    protocol: str,
    url: str,
    users: int,
    scenario: dict[str, Any],
    *,
    seed: int = 1,
    spawn_s: float = 0.0,
    sessions: int = 1,
    limit_s: float = 120.0,
    payload_format: str = "native",
    tls: TLSSettings | None = None,
) -> tuple[MemorySink, dict[str, Any]]:
    """`users` greenlets, each running `sessions` sessions; starts spread over `spawn_s`;
    the streams in `payload_format` (a core.formats name).

    Returns the sink and client facts (CPU % of this process over the run, wall time,
    greenlets that had to be killed at `limit_s`).
    """
    s = scenario_from_dict({"name": "drive", **scenario})
    plan = SessionPlan.from_scenario(s)
    sink = MemorySink()
    worker = f"{socket.gethostname()}-{os.getpid()}"
    proc = psutil.Process()

    def user(i: int) -> None:
        if spawn_s > 0:
            gevent.sleep(spawn_s * i / users)
        ctx = TransportContext("drive", protocol, worker, i, f"drive/0.{i}", sink)
        tr = make_transport(protocol, ctx, url, s, payload_format=payload_format, tls=tls)
        script = UserScript(plan, UserIds("drive", protocol, worker, 0, i, seed), tr, sink)
        for _ in range(sessions):
            script.run_session()

    _raise_nofile()  # one descriptor per connection: 10,000 idle streams need them
    gctune.tune()
    cpu0 = proc.cpu_times()
    wait0 = runqueue_wait_s()
    t0 = time.monotonic()
    greenlets = [gevent.spawn(user, i) for i in range(users)]
    gevent.joinall(greenlets, timeout=limit_s)
    killed = sum(1 for g in greenlets if not g.dead)
    gevent.killall([g for g in greenlets if not g.dead], timeout=5)
    wall = time.monotonic() - t0
    cpu1 = proc.cpu_times()
    wait1 = runqueue_wait_s()
    failed = [repr(g.exception) for g in greenlets if g.exception is not None][:5]
    cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    facts = {
        "wall_s": wall,
        "client_cpu_s": cpu_s,
        # waiting for a CPU while runnable (share of the wall time): the scheduler's delay
        "client_runqueue_wait_pct": (
            100.0 * (wait1 - wait0) / wall
            if wait0 is not None and wait1 is not None and wall > 0
            else None
        ),
        "client_cpu_pct": 100.0 * cpu_s / wall if wall > 0 else None,
        "client_cpu_us_per_token": None,
        "killed": killed,
        "greenlet_errors": failed,
    }
    tokens = sum(a.n_received for a in sink.streams)
    if tokens:
        facts["client_cpu_us_per_token"] = 1e6 * cpu_s / tokens
    return sink, facts


def _scenario_args(a: argparse.Namespace) -> dict[str, Any]:
    return {
        "stream": {
            "tokens": a.tokens,
            "ttft_ms": a.ttft_ms,
            "gap_ms": a.gap_ms,
            "jitter": a.jitter,
            "drop_after": a.drop_after,
            "pause_ms": a.pause_ms,
            "pause_at": a.pause_at,
        },
        "session": {"turns": a.turns, "think_s": a.think_s},
        "behaviour": {
            "cancel_prob": a.cancel_prob,
            "cancel_after": a.cancel_after,
            "cancel_mode": a.cancel_mode,
            "client_abort_after": a.client_abort_after,
            "resume": a.resume,
            "restart": a.restart,
            "stream_timeout_s": a.stream_timeout_s,
            "dead_after_heartbeats": a.dead_after_heartbeats,
            "dead_after_s": a.dead_after_s,
        },
        # the server's heartbeat as the client knows it (the dead-peer watch's unit)
        "server": {"ws_compression": a.ws_compression, "heartbeat_s": a.heartbeat_s},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--protocol", choices=PROTOCOLS, required=True)
    p.add_argument("--url", required=True)
    p.add_argument(
        "--format", default="native", choices=format_names(), help="payload format (native)"
    )
    p.add_argument("--users", type=int, default=10)
    p.add_argument("--sessions", type=int, default=1)
    p.add_argument("--spawn-s", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tokens", type=int, default=50)
    p.add_argument("--ttft-ms", type=float, default=300.0)
    p.add_argument("--gap-ms", type=float, default=20.0)
    p.add_argument("--jitter", type=float, default=0.0)
    p.add_argument("--drop-after", type=int, default=0)
    p.add_argument("--pause-ms", type=float, default=0.0)
    p.add_argument("--pause-at", type=int, default=0)
    p.add_argument("--turns", type=int, default=1)
    p.add_argument("--think-s", type=float, default=0.0)
    p.add_argument("--cancel-prob", type=float, default=0.0)
    p.add_argument("--cancel-after", type=int, default=0)
    p.add_argument("--cancel-mode", choices=("close", "cancel"), default="close")
    p.add_argument("--client-abort-after", type=int, default=0)
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--restart", action="store_true", help="without resume: ask again")
    p.add_argument("--heartbeat-s", type=float, default=15.0, help="the server's, as known")
    p.add_argument("--dead-after-heartbeats", type=float, default=0.0)
    p.add_argument("--dead-after-s", type=float, default=0.0)
    p.add_argument("--stream-timeout-s", type=float, default=60.0)
    p.add_argument("--ws-compression", choices=("off", "deflate"), default="off")
    p.add_argument("--limit-s", type=float, default=120.0)
    p.add_argument("--ca-file", help="https / wss: verify the server against this PEM")
    p.add_argument("--insecure", action="store_true", help="https / wss: no verification")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--rows", action="store_true", help="include every streams row (JSON)")
    a = p.parse_args(argv)
    sink, facts = run(
        a.protocol,
        a.url,
        a.users,
        _scenario_args(a),
        seed=a.seed,
        spawn_s=a.spawn_s,
        sessions=a.sessions,
        limit_s=a.limit_s,
        payload_format=a.format,
        tls=TLSSettings(a.ca_file, a.insecure),
    )
    out = {"protocol": a.protocol, "format": a.format, "users": a.users}
    out.update(summarize(sink.streams), **facts)
    out["connections"] = len(sink.connections)
    if a.rows:
        # + the server's stamp on the first token: when the request reached the server
        # (stamp − scheduled TTFT − lag), i.e. the client's request dispatch
        out["rows"] = [
            {**acct.streams_row(), "t_server_first_ns": _first_stamp(acct)} for acct in sink.streams
        ]
        out["conn_rows"] = [c.row() for c in sink.connections]
    if a.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:>26}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
