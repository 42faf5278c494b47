"""Servers on 127.0.0.1 as subprocesses (started and stopped by PID), and helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.procs import Listening, start_listening
from core.accounting import StreamAccount
from core.arms import get_arm, is_known, protocol_of
from core.client.tls import TLSSettings
from core.scenario import BehaviourSpec, Scenario, ServerSpec, SessionSpec, StreamSpec
from loadtests.memsink import MemorySink
from loadtests.session import SessionPlan, UserIds, UserScript
from loadtests.transport import TransportContext
from loadtests.transports import make_transport

ROOT = Path(__file__).resolve().parents[2]
TINY = Path(__file__).with_name("tinyserver.py")


def start_server(args: list[str], timeout_s: float = 20.0) -> tuple[Listening, int]:
    """`python <args>` with "{port}" → 0 (bench.procs.start_listening): the server, its port."""
    cmd = [sys.executable, *[a.format(port=0) for a in args]]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ready = start_listening("server", cmd, cwd=ROOT, env=env, timeout_s=timeout_s, health_path=None)
    return ready, ready.port


def stop_server(server: Listening) -> None:
    server.stop(grace_s=5)


def _servers(specs: dict[str, tuple[list[str], str]]) -> Iterator[dict[str, str]]:
    procs = []
    urls = {}
    try:
        for name, (args, scheme) in specs.items():
            proc, port = start_server(args)
            procs.append(proc)
            urls[name] = f"{scheme}://127.0.0.1:{port}"
        yield urls
    finally:
        for p in procs:
            stop_server(p)


@pytest.fixture(scope="module")
def tiny() -> Iterator[dict[str, str]]:
    """The test's own tiny servers (tests/loadtests/tinyserver.py): {"sse": url, "ws": url}."""
    yield from _servers(
        {
            "sse": ([str(TINY), "sse", "{port}"], "http"),
            "ws": ([str(TINY), "ws", "{port}"], "ws"),
        }
    )


def reference(extra: list[str] | None = None) -> Iterator[dict[str, str]]:
    extra = extra or []
    yield from _servers(
        {
            arm: (
                ["-m", "servers", arm, "--port", "{port}", "--host", "127.0.0.1", *extra],
                "http" if arm == "sse" else "ws",
            )
            for arm in ("sse", "ws", "ws-websockets")
        }
    )


@pytest.fixture(scope="module")
def ref() -> Iterator[dict[str, str]]:
    """The reference servers: {"sse": url, "ws": url, "ws-websockets": url}."""
    yield from reference()


def run_user(
    arm: str,
    url: str,
    *,
    stream: StreamSpec,
    session: SessionSpec | None = None,
    behaviour: BehaviourSpec | None = None,
    server: ServerSpec | None = None,
    sessions: int = 1,
    seed: int = 11,
    tls: TLSSettings | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> tuple[list[StreamAccount], MemorySink]:
    """One user in this process (plain blocking sockets), the same code Locust runs.
    `server`: the server's settings as the client knows them (its heartbeat interval)."""
    scenario = Scenario(
        name="t",
        stream=stream,
        session=session or SessionSpec(),
        behaviour=behaviour or BehaviourSpec(),
        server=server or ServerSpec(),
    )
    sink = MemorySink()
    ctx = TransportContext("t", arm, "test", 0, "t/0.0", sink)
    fmt = get_arm(arm).format if is_known(arm) else "native"
    tr = make_transport(
        protocol_of(arm), ctx, url, scenario, tls=tls, headers=headers, payload_format=fmt
    )
    script = UserScript(
        SessionPlan.from_scenario(scenario), UserIds("t", arm, "test", 0, 0, seed), tr, sink
    )
    out: list[StreamAccount] = []
    for _ in range(sessions):
        out += script.run_session()
    return out, sink


def drive(protocol: str, url: str, *args: str, timeout_s: float = 120) -> dict[str, Any]:
    """Many users under gevent in a subprocess (python -m loadtests.drive); its JSON summary."""
    cmd = [
        sys.executable,
        "-m",
        "loadtests.drive",
        "--protocol",
        protocol,
        "--url",
        url,
        "--json",
        *args,
    ]
    res = subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])
