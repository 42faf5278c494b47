"""Client accuracy at scale: how close the load-test clients measure a known schedule.

Starts the reference servers on free loopback ports (or uses --sse-url / --ws-url), then
for each arm runs N concurrent users in one gevent process (python -m loadtests.drive,
the same transports and session script Locust runs), each streaming 50 tokens with TTFT
300 ms and gap 20 ms, jitter off, several sessions back to back so N streams stay in
flight. Prints, per arm: median TTFT error, median ITL error, delivery latency (client
receive − server stamp) p50/p99, client CPU. Not a test: the figures are for the report.

    python benchmarks/client_accuracy.py                 # 1,000 streams per arm
    python benchmarks/client_accuracy.py --users 200 --users 1000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.perf.procs import run_json  # noqa: E402 - after the path fix-up
from bench.procs import Listening, start_listening  # noqa: E402
from core.arms import all_arms, get_arm  # noqa: E402

#: URL scheme of each protocol's base URL
SCHEMES = {"sse": "http", "ws": "ws"}


def _cpus(cpu: int | None) -> set[int] | None:
    """The CPU set to pin a child to (None: leave the affinity alone)."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return None
    return {cpu}


def start_server(arm: str, cpu: int | None = None) -> tuple[Listening, str]:
    """The arm's reference server on port 0 (bench.procs.start_listening), its base URL."""
    spec = get_arm(arm)
    cmd = [sys.executable, "-m", "servers", str(spec.server_kind), "--port", "0"]
    ready = start_listening(
        f"{arm}-server", [*cmd, "--host", "127.0.0.1"], cwd=ROOT, cpus=_cpus(cpu)
    )
    return ready, f"{SCHEMES[spec.protocol]}://127.0.0.1:{ready.port}"


def run_arm(arm: str, url: str, users: int, sessions: int, cpu: int | None = None) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "loadtests.drive",
        "--protocol",
        get_arm(arm).protocol,
        "--url",
        url,
        "--users",
        str(users),
        "--sessions",
        str(sessions),
        "--spawn-s",
        str(max(1.0, users / 500)),
        "--tokens",
        "50",
        "--ttft-ms",
        "300",
        "--gap-ms",
        "20",
        "--jitter",
        "0",
        "--limit-s",
        "180",
        "--json",
    ]
    cpus = _cpus(cpu) or os.sched_getaffinity(0)
    return run_json(cmd[1:], cpus, timeout=240, env={"PYTHONPATH": str(ROOT)})


def fmt(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, action="append", help="concurrent streams (repeat)")
    p.add_argument("--sessions", type=int, default=3)
    p.add_argument("--arms", default=",".join(a.name for a in all_arms() if a.server_kind))
    p.add_argument("--sse-url")
    p.add_argument("--ws-url")
    two = hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) >= 2
    p.add_argument(
        "--server-cpu", type=int, default=0 if two else None, help="pin servers (default 0)"
    )
    p.add_argument(
        "--client-cpu", type=int, default=1 if two else None, help="pin clients (default 1)"
    )
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    users_list = a.users or [1000]
    arms = a.arms.split(",")
    given = {"sse": a.sse_url, "ws": a.ws_url}  # the arm named after each protocol
    results = []
    for arm in arms:
        proc = None
        url = given.get(arm)
        if url is None:
            proc, url = start_server(arm, a.server_cpu)
        try:
            for users in users_list:
                out = run_arm(arm, url, users, a.sessions, a.client_cpu)
                out["arm"] = arm
                results.append(out)
        finally:
            if proc is not None:
                proc.stop(grace_s=10)
    if a.json:
        print(json.dumps(results, indent=2))
        return 0
    head = (
        f"{'arm':<14}{'streams':>8}{'conc':>6}{'TTFT med':>10}{'err':>7}{'ITL med':>9}"
        f"{'err':>7}{'dlv p50':>9}{'dlv p99':>9}{'ITL p99':>9}{'cpu%':>7}{'us/tok':>8}  outcomes"
    )
    print("target: TTFT 300 ms, ITL 20 ms; errors = measured - target; all times in ms")
    print(f"server pinned to CPU {a.server_cpu}, client to CPU {a.client_cpu}")
    print(head)
    for r in results:
        print(
            f"{r['arm']:<14}{r['streams']:>8}{r['users']:>6}{fmt(r['ttft_ms_median']):>10}"
            f"{fmt(r['ttft_ms_median'] - 300, '+.2f'):>7}{fmt(r['itl_ms_median']):>9}"
            f"{fmt(r['itl_ms_median'] - 20, '+.2f'):>7}{fmt(r['delivery_ms_p50']):>9}"
            f"{fmt(r['delivery_ms_p99']):>9}{fmt(r['itl_ms_p99']):>9}"
            f"{fmt(r['client_cpu_pct'], '.0f'):>7}{fmt(r['client_cpu_us_per_token'], '.1f'):>8}"
            f"  {r['outcomes']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
