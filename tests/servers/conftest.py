"""Fixtures: the reference servers as real subprocesses on 127.0.0.1, free ports.

Each server is started with `--port 0`; the port is read from its "listening on" line and
/healthz is polled before the test gets it. Servers are cached per (kind, extra args)
for the session and stopped by PID with SIGTERM at the end (their exit code must be 0).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
_LISTEN = re.compile(r"listening on http://127\.0\.0\.1:(\d+) \(kind=")


@dataclass
class Server:
    kind: str
    args: tuple[str, ...]
    proc: subprocess.Popen[str]
    port: int
    output: list[str] = field(default_factory=list)

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
    preexec_fn: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
) -> Server:
    cmd = [sys.executable, "-m", "servers", kind, "--port", "0", "--host", "127.0.0.1", *args]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        preexec_fn=preexec_fn,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    port = None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = _LISTEN.search(line)
        if m:
            port = int(m.group(1))
            break
    if port is None:
        proc.kill()
        proc.wait(5)
        raise RuntimeError(f"server {cmd} did not start:\n{''.join(lines)}")
    server = Server(kind, args, proc, port, lines)
    # Keep draining output so a chatty server never blocks on a full pipe.
    threading.Thread(target=_drain, args=(proc, server.output), daemon=True).start()
    while time.monotonic() < deadline:
        try:
            if requests.get(server.http + "/healthz", timeout=1).status_code == 200:
                return server
        except requests.ConnectionError:
            time.sleep(0.05)
    stop_server(server)
    raise RuntimeError(f"server {cmd} never became healthy")


def _drain(proc: subprocess.Popen[str], sink: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        sink.append(line)


def stop_server(server: Server) -> int:
    """SIGTERM by PID, wait, SIGKILL if needed. Returns the exit code."""
    proc = server.proc
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return proc.returncode


class ServerPool:
    def __init__(self) -> None:
        self.servers: dict[tuple[str, tuple[str, ...]], Server] = {}

    def get(self, kind: str, *args: str) -> Server:
        key = (kind, args)
        if key not in self.servers:
            self.servers[key] = start_server(kind, *args)
        return self.servers[key]

    def close(self) -> dict[tuple[str, tuple[str, ...]], int]:
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
