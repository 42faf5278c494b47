"""loadtests.clockprobe against the reference servers: on one host the estimate must admit
one clock; in a time namespace whose CLOCK_MONOTONIC is shifted by a known amount (root,
`unshare --time`) it must find that shift and the verdict must refuse delivery latency."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from core.clocksync import MEASURED, NOT_MEASURED, delivery_verdict
from loadtests.clockprobe import clock_facts, healthz_address, probe
from tests.loadtests.conftest import ROOT, start_server, stop_server

SHIFT_S = 7


@pytest.fixture(scope="module")
def servers():
    procs = {}
    try:
        for kind in ("sse", "ws-websockets"):
            procs[kind] = start_server(["-m", "servers", kind, "--port", "{port}"])
        yield {k: f"http://127.0.0.1:{port}" for k, (_, port) in procs.items()}
    finally:
        for proc, _ in procs.values():
            stop_server(proc)


def test_healthz_address() -> None:
    assert healthz_address("ws://10.213.0.1:8082") == ("10.213.0.1", 8082)
    assert healthz_address("http://h") == ("h", 80)
    with pytest.raises(ValueError):
        healthz_address("nohost")


@pytest.mark.parametrize("kind", ["sse", "ws-websockets"])
def test_one_host_is_one_clock(servers, kind: str) -> None:
    got = probe(servers[kind], n=6)
    assert "error" not in got, got
    assert got["samples"] == 6
    assert got["low_ns"] <= 0 <= got["high_ns"]  # the server read its clock inside the trip
    assert got["uncertainty_ns"] <= got["rtt_min_ns"] / 2
    facts = clock_facts()
    assert delivery_verdict({"host": facts, "estimates": [got]}, facts)[0] == MEASURED


def test_no_server_is_an_error_not_an_exception() -> None:
    got = probe("http://127.0.0.1:9", n=2, timeout_s=0.5)  # discard port: refused
    assert "error" in got and "t_ns" in got


def _time_namespace_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root for a time namespace"
    if not shutil.which("unshare"):
        return "needs util-linux unshare"
    done = subprocess.run(
        ["unshare", "--fork", "--time", "--monotonic", "1", "true"], capture_output=True
    )
    return None if done.returncode == 0 else "this kernel has no time namespaces"


def test_a_shifted_clock_is_found_and_refused(servers) -> None:
    why = _time_namespace_reason()
    if why:
        pytest.skip(why)
    code = (
        "import json, sys; from loadtests.clockprobe import clock_facts, probe; "
        "print(json.dumps({'est': probe(sys.argv[1], n=6), 'host': clock_facts()}))"
    )
    done = subprocess.run(
        ["unshare", "--fork", "--time", "--monotonic", str(SHIFT_S),
         sys.executable, "-c", code, servers["sse"]],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    est, host = got["est"], got["host"]
    # the probe's clock runs SHIFT_S ahead, so server − client = −SHIFT_S exactly
    truth = -SHIFT_S * 10**9
    assert est["low_ns"] <= truth <= est["high_ns"], est
    assert not est["shared_clock_possible"]
    assert host["time_ns"] != clock_facts()["time_ns"]
    verdict, why = delivery_verdict({"host": host, "estimates": [est]}, clock_facts())
    assert verdict == NOT_MEASURED and "not one clock" in why
