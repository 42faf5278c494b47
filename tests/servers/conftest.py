"""Fixtures: the reference servers as real subprocesses on 127.0.0.1, free ports.

Each server is started with `--port 0`; the port is read from its "listening on" line and
/healthz is polled before the test gets it. Servers are cached per (kind, extra args)
for the session and stopped by PID with SIGTERM at the end (their exit code must be 0).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bench.procs import Listening, start_listening

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    kind: str
    args: tuple[str, ...]
    ready: Listening  # bench.procs: started, announced, healthy; stopped by PID

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        return self.ready.child.popen

    @property
    def port(self) -> int:
        return self.ready.port

    @property
    def output(self) -> list[str]:
        """Everything the server printed so far, line by line."""
        return self.ready.output().splitlines(keepends=True)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/ws"

    def metrics(self) -> dict[str, float]:
        """Flat {sample name (+labels): value} from /metrics, parsed by prometheus_client."""
        text = requests.get(self.http + "/metrics", timeout=5).text
        out: dict[str, float] = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                key = s.name + (
                    "{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}"
                    if s.labels
                    else ""
                )
                out[key] = s.value
        return out

    def wait_idle(self, timeout: float = 5.0) -> dict[str, float]:
        """Wait until no stream is active; return the metrics then."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.metrics()
            if m["ssevsws_streams_active"] == 0 or time.monotonic() > deadline:
                return m
            time.sleep(0.05)


def start_server(
    kind: str,
    *args: str,
    timeout: float = 15.0,
    env: dict[str, str] | None = None,
    max_open_files: int | None = None,
) -> Server:
    """`env`: extra environment variables; `max_open_files`: the server's RLIMIT_NOFILE."""
    cmd = [sys.executable, "-m", "servers", kind, "--port", "0", "--host", "127.0.0.1", *args]
    if max_open_files is not None:  # prlimit execs the server: same PID
        cmd = ["prlimit", f"--nofile={max_open_files}:{max_open_files}", "--", *cmd]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    ready = start_listening(kind, cmd, cwd=ROOT, env=env, timeout_s=timeout)
    return Server(kind, args, ready)


def stop_server(server: Server) -> int | None:
    """SIGTERM by PID, wait, SIGKILL if needed. Returns the exit code."""
    return server.ready.stop(grace_s=10)


class ServerPool:
    def __init__(self) -> None:
        self.servers: dict[tuple[str, tuple[str, ...]], Server] = {}

    def get(self, kind: str, *args: str) -> Server:
        key = (kind, args)
        if key not in self.servers:
            self.servers[key] = start_server(kind, *args)
        return self.servers[key]

    def close(self) -> dict[tuple[str, tuple[str, ...]], int | None]:
        return {key: stop_server(s) for key, s in self.servers.items()}


@pytest.fixture(scope="session")
def servers() -> Iterator[ServerPool]:
    pool = ServerPool()
    yield pool
    codes = pool.close()
    bad = {k: c for k, c in codes.items() if c != 0}
    assert not bad, f"servers did not exit 0 on SIGTERM: {bad}"
    noisy = {
        k: "".join(s.output) for k, s in pool.servers.items() if "Traceback" in "".join(s.output)
    }
    assert not noisy, f"server logged tracebacks: {noisy}"


@pytest.fixture(params=["ws", "ws-websockets"])
def ws_server(request: pytest.FixtureRequest, servers: ServerPool) -> Server:
    return servers.get(request.param)
