"""`ssevsws perf` end to end on tiny sizes: every phase runs, perf.json is well formed and
its ratios are consistent with its own figures. No absolute time is asserted."""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from pathlib import Path

import pytest

from bench.perf.cmd import PerfConfig, run_perf
from bench.perf.procs import ROOT, cores, start_server
from bench.perf.report import compute_ratios
from core.schedule import StreamParams, StreamPlan

pytestmark = pytest.mark.timeout(240)


def _tiny() -> PerfConfig:
    return PerfConfig(
        quick=True,
        throughput_servers=("sse", "ws", "raw", "starlette", "websockets-default"),
        flood_ns=(4,), flood_warmup_s=0.2, flood_window_s=0.4,
        paced_ns=(4,), paced_tokens=40, paced_spread_s=0.05, paced_warmup_s=0.1,
        paced_window_s=0.2,
        idle_servers=("sse", "aiohttp-sse"), idle_n=20, idle_hold_s=0.5,
        idle_heartbeat_s=0.2, idle_batch=10,
        ceiling_protos=("sse",), ceiling_points=(3,), ceiling_processes=(1,),
        ceiling_sessions=1, workers_protos=("sse",), workers_counts=(1, 2), workers_users=4,
        workers_duration_s=2.0, workers_warmup_s=0.5,
        client_protos=("sse",), client_users=4, client_long_tokens=20,
        client_short_tokens=2, client_short_sessions=3, hold_protos=("ws",), hold_n=20,
        hold_token_every_s=0.5, hold_s=1.5, hold_heartbeat_s=0.2,
        e2e_users=3, e2e_sessions=1, e2e_ttft_ms=50.0, e2e_processes=1,
        limit_s=40.0,
    )  # fmt: skip


def test_perf_tiny_run_end_to_end(tmp_path):
    lines: list[str] = []
    run_dir, _perf = run_perf(_tiny(), tmp_path, log=lines.append)
    saved = json.loads((run_dir / "perf.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert (run_dir / "perf.md").is_file()
    assert (run_dir / "figures" / "perf_throughput.png").is_file()

    # pinning recorded and honoured: servers on their CPU set, clients on theirs
    srv_cpus, cli_cpus = cores()
    assert saved["pinning"]["server_cpus"] == sorted(srv_cpus)
    assert saved["pinning"]["client_cpus"] == sorted(cli_cpus)
    assert saved["nofile"][0] == saved["nofile"][1] or saved["nofile"][0] >= 1024

    thr = saved["throughput"]
    assert {(r["server"], r["mode"]) for r in thr} == {
        (s, m) for s in _tiny().throughput_servers for m in ("flood", "paced")
    }
    for r in thr:
        assert r["server_cpus"] == sorted(srv_cpus)
        assert r["client_cpus"] == sorted(cli_cpus)
        assert r["errors"] == [], r
        assert r["tokens"] > 0 and r["tokens_per_s"] > 0
        assert r["tokens_per_s"] == pytest.approx(
            r["tokens"] / r["window_s"], rel=1e-2
        )  # window_s rounded
        if r["server_cpu_s"] > 0:
            assert r["server_us_per_token"] == pytest.approx(1e6 * r["server_cpu_s"] / r["tokens"])
        if r["mode"] == "paced":
            assert r["streams_done"] == r["n"]
            assert r["nominal_tokens_per_s"] == pytest.approx(r["n"] * 50)
            # 40 tokens = 0.8 s per stream, starts within 0.05 s: all 4 overlap the window
            assert 0 < r["active_streams_mean"] <= r["n"] + 1e-6
            assert r["window_rate_kept"] == pytest.approx(
                r["tokens_per_s"] / (r["active_streams_mean"] * 50)
            )
    # every flood row at the ratio's N carries its py-spy profile (or why there is none)
    for r in thr:
        if r["mode"] == "flood":
            prof = r["profile"]
            assert prof.get("error") or (prof["samples"] > 0 and prof["buckets"]), prof
    for e in saved["e2e"]:
        assert "client_profile" in e
    ours = [r for r in thr if r["server"] in ("sse", "ws")]
    assert all(r["server_lag_us"] is not None for r in ours)

    # ratios: recomputed from the same json, each one ours / ref
    assert saved["ratios"] == json.loads(json.dumps(compute_ratios(saved)))
    flood = {r["server"]: r for r in thr if r["mode"] == "flood"}
    for r in saved["ratios"]:
        if r["kind"] == "throughput":
            want = (flood[r["ours"]]["tokens_per_server_cpu_s"]
                    / flood[r["ref"]]["tokens_per_server_cpu_s"])  # fmt: skip
            assert r["value"] == pytest.approx(want)
            assert r["margin"] == pytest.approx(r["value"] - r["target"])

    idle = {r["server"]: r for r in saved["idle"]}
    assert set(idle) == {"sse", "aiohttp-sse"}
    for r in idle.values():
        assert r["opened"] == 20 and r["held_to_end"] == 20
        assert r["kib_per_conn"] is not None
        assert r["heartbeat_bytes_out_per_conn_hour"] > 0  # comments every 0.2 s
    assert any(r["kind"] == "idle" for r in saved["ratios"])

    (c,) = saved["ceiling"]
    assert c["processes"] == 1 and len(c["points"]) == 1
    p = c["points"][0]
    assert p["client_added_ms_p99"] == pytest.approx(p["delivery_ms_p99"] - c["floor_ms"])
    # worker processes: a Locust master and N workers per point, every worker wrote rows
    (wk,) = saved["workers"]
    assert wk["proto"] == "sse" and [p["workers"] for p in wk["points"]] == [1, 2]
    for p in [wk["floor_point"], *wk["points"]]:
        assert p["locust_exit_code"] == 0
        assert len(p["rows_by_worker"]) == p["workers"] and all(p["rows_by_worker"].values())
        assert sum(p["rows_by_worker"].values()) == p["streams"]
        assert p["tokens_per_s"] == pytest.approx(p["tokens_in_window"] / p["window_s"])
    assert (run_dir / "figures" / "perf_workers.png").is_file()
    assert "## Worker processes" in (run_dir / "perf.md").read_text()
    # the client beside the server: each side's µs per token and per stream reproduce
    # that side's CPU seconds in both runs (cpu = a·tokens + b·streams)
    (cost,) = saved["client"]
    assert [r["kind"] for r in cost["runs"]] == ["long", "short"]
    for r in cost["runs"]:
        assert r["lost"] == 0 and r["outcomes"] == {"ok": r["streams"]}
        for side in ("client", "server"):
            a, b = cost[f"{side}_us_per_token"], cost[f"{side}_us_per_stream"]
            assert a * r["tokens"] + b * r["streams"] == pytest.approx(
                1e6 * r[f"{side}_cpu_s"], abs=1e-3
            )
    (hd,) = saved["hold"]
    assert hd["proto"] == "ws" and hd["streams_concurrent_max"] == 20 and hd["lost"] == 0
    assert "## The client beside the server" in (run_dir / "perf.md").read_text()
    assert [r["proto"] for r in saved["e2e"]] == ["sse", "ws"]
    for e in saved["e2e"]:
        assert e["lost"] == 0 and e["tokens_received"] == e["tokens_expected"] == 3 * 50
    assert next(t["phase"] for t in saved["tcp"]) == "start"
    assert any("pinning" in ln for ln in lines)


@pytest.mark.parametrize("kind", ["raw", "aiohttp-sse", "starlette"])
def test_sse_baselines_send_the_projects_bytes(tmp_path, kind):
    """Same framing, payload texts and done checksum as the project's SSE server."""
    srv = start_server(kind, ["-m", "servers.baselines", kind], set(os.sched_getaffinity(0)),
                       tmp_path)  # fmt: skip
    try:
        url = f"{srv.url}/v1/stream?seed=3&tokens=5&ttft_ms=0&gap_ms=1&stream=9"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = resp.read().decode()
    finally:
        srv.stop()
    events = [e for e in body.split("\n\n") if e.strip() and not e.startswith((":", "retry"))]
    tokens, done = events[:-1], events[-1]
    plan = StreamPlan.build(StreamParams(seed=3, tokens=5, ttft_ms=0, gap_ms=1, stream=9))
    texts = []
    for seq, ev in enumerate(tokens):
        idl, data = ev.split("\n")
        assert idl == f"id: {seq}"
        obj = json.loads(data.removeprefix("data: "))
        assert (obj["s"], obj["i"]) == (9, seq)
        texts.append(obj["d"])
    assert texts == plan.texts()
    assert done.startswith("event: done\ndata: ")
    assert json.loads(done.split("data: ", 1)[1]) == plan.done()


def test_baselines_bind_loopback_only():
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "servers.baselines", "raw", "--host", "0.0.0.0"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 2 and "loopback" in r.stderr
    assert socket  # imported for clarity of intent: nothing was bound


def test_package_root_is_the_repo():
    assert (Path(ROOT) / "pyproject.toml").is_file()
