"""Processes for perf phases: servers and clients started by PID, pinned, stopped by PID.

bench never imports servers (docs/architecture.md): servers are `python -m servers …` or
`python -m servers.baselines …` subprocesses started with `bench.procs` (own process
group, log file, stop by PID) and pinned with `os.sched_setaffinity` on the child PID; load
clients get their affinity between fork and exec (`preexec_fn`). Affinity is read back
with `os.sched_getaffinity` to be recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import Child, Listening, start_listening

ROOT = Path(__file__).resolve().parents[2]


def cores() -> tuple[set[int], set[int]]:
    """(server cores, client cores): the first allowed CPU for the server, the rest for
    clients; on a one-CPU box both get it (recorded as shared)."""
    cpus = sorted(os.sched_getaffinity(0))
    server = {cpus[0]}
    client = set(cpus[1:]) or set(cpus)
    return server, client


def _pin(cpus: set[int]):
    def fn() -> None:
        os.sched_setaffinity(0, cpus)

    return fn


@dataclass
class Server:
    """A started server (a `bench.procs.Listening`) and the CPUs it is pinned to."""

    name: str
    ready: Listening
    cpus: list[int]

    @property
    def child(self) -> Child:
        return self.ready.child

    @property
    def pid(self) -> int:
        return self.ready.pid

    @property
    def port(self) -> int:
        return self.ready.port

    @property
    def line(self) -> str:
        return self.ready.line

    @property
    def url(self) -> str:
        return self.ready.http_url

    def stop(self, grace_s: float = 6.0) -> int | None:
        """SIGTERM its own process group, SIGKILL after `grace_s` (bench.procs.Child.stop)."""
        return self.ready.stop(grace_s=grace_s)


def start_server(
    name: str, argv: list[str], cpus: set[int], log_dir: Path, *, timeout: float = 30.0
) -> Server:
    """Start `python <argv> --port 0 --host 127.0.0.1` pinned to `cpus` and wait for its
    "listening on" line (bench.procs.start_listening)."""
    cmd = [sys.executable, *argv, "--port", "0", "--host", "127.0.0.1"]
    # a fresh log per start: the announcement is read from the log, an old line has an old port
    k = 1
    while (log_dir / f"server-{name}-{k}.log").exists():
        k += 1
    log = log_dir / f"server-{name}-{k}.log"
    ready = start_listening(
        name, cmd, log_path=log, cwd=ROOT, cpus=cpus, timeout_s=timeout, health_path=None
    )
    return Server(name, ready, sorted(os.sched_getaffinity(ready.pid)))


def run_json(
    argv: list[str],
    cpus: set[int],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run `python <argv>` pinned to `cpus`; parse the last stdout line as JSON.
    `on_start(pid)` runs once the child is started (e.g. to attach a profiler)."""
    cmd = [sys.executable, *argv]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        preexec_fn=_pin(cpus),
        env={**os.environ, **(env or {})},
    )
    pinned = sorted(os.sched_getaffinity(proc.pid)) if proc.poll() is None else sorted(cpus)
    if on_start is not None:
        on_start(proc.pid)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        raise RuntimeError(f"client timed out after {timeout:g}s: {' '.join(cmd)[:200]}") from None
    lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"client failed ({proc.returncode}): {err.decode(errors='replace')[-1500:]}"
        )
    result = json.loads(lines[-1])
    result["client_cpus"] = pinned
    return result


def tcp_summary() -> dict[str, int | None]:
    """TIME_WAIT and established counts from `ss -s`; None if ss is missing."""
    try:
        text = subprocess.run(["ss", "-s"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {"timewait": None, "estab": None}
    out: dict[str, int | None] = {"timewait": None, "estab": None}
    for line in text.splitlines():
        if line.startswith("TCP:") and "timewait" in line:
            body = line.split("(", 1)[1].rstrip(")")
            for part in body.split(","):
                key, _, val = part.strip().partition(" ")
                if key in ("timewait", "estab"):
                    with contextlib.suppress(ValueError):
                        out[key] = int(val.split("/")[0])
    return out
