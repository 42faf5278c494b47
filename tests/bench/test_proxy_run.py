"""Real `ssevsws run` of the proxy scenarios (issue 6) with a real nginx in the path.

proxy-buffering (SSE arm, 3 users, 3 s per phase): nginx config + logs in the run folder,
buffered-without-header TTFT far above direct, unbuffered and X-Accel-Buffering: no within
5 ms of direct — side by side in one run. proxy-idle (both arms): without heartbeat nginx's
proxy_read_timeout cuts every stream in the idle gap (client: dropped; nginx: "upstream
timed out"), with the 0.5 s heartbeat none is cut. proxy-h2 (SSE): the runner's browser
check (a real Chromium) through nginx's TLS listener — C7 from the run's own records.
Skipped only when nginx (or, for proxy-h2, chromium / Playwright) is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import claims as C
from analysis.load import load_run
from analysis.manifest import Manifest
from analysis.summary import summarize
from bench.browser import browser_available
from bench.nginx import nginx_available
from core.runfolder import read_manifest, read_table

ROOT = Path(__file__).resolve().parents[2]
NGINX_OK, NGINX_WHY = nginx_available()
if not NGINX_OK:
    print(f"tests/bench/test_proxy_run.py skipped: {NGINX_WHY}", file=sys.stderr)
pytestmark = pytest.mark.skipif(not NGINX_OK, reason=NGINX_WHY)


def ssevsws_run(results: Path, *args: str) -> Path:
    cmd = [sys.executable, "-m", "bench.cli", "run", *args, "--results", str(results)]
    out = subprocess.run(
        [*cmd, "--pause", "0.2"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    dirs = [p for p in results.iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_proxy_buffering_breaks_sse_and_the_header_or_off_restores_it(tmp_path: Path) -> None:
    run = ssevsws_run(
        tmp_path, "proxy-buffering", "--protocols", "sse", "--users", "3", "--duration", "3"
    )
    m = read_manifest(run)
    variants = ["direct", "buffered", "buffered-accel", "unbuffered"]
    assert [p["name"] for p in m["phases"]] == [f"proxy-buffering.{v}/sse/r1" for v in variants]
    assert all(p["status"] == "ok" for p in m["phases"])
    by_variant = {p["variant"]: p for p in m["phases"]}
    assert "proxy" not in by_variant["direct"]
    for v in variants[1:]:
        ph = by_variant[v]
        rec = ph["proxy"]
        stem = f"proxy-buffering.{v}_sse_r1"
        assert rec["config"] == f"nginx/{stem}/nginx.conf"
        for f in ("nginx.conf", "access.log", "error.log"):
            assert (run / "nginx" / stem / f).is_file()
        assert rec["variant"]["buffer_size"] and rec["variant"]["buffers"]
        assert rec["access"]["stream_requests"] == ph["streams"] > 0
        assert rec["access"]["status"] == {"200": ph["streams"]}
        # the PhaseConfig pointed Locust at nginx, not at the server
        cfg = json.loads((run / ph["config"]).read_text())
        assert cfg["url"] == f"http://127.0.0.1:{rec['listen_port']}"
        assert cfg["proxy"]["variant"] == v
    assert by_variant["buffered"]["proxy"]["server_accel_header"] is False
    assert by_variant["buffered-accel"]["proxy"]["server_accel_header"] is True
    assert by_variant["unbuffered"]["proxy"]["variant"]["buffering"] is False
    # nginx processes were sampled as their own role
    res = read_table(run, "resources", columns=["role", "phase", "scenario", "rep"])
    assert "nginx" in set(res["role"].astype(object))
    in_phase = res[res["phase"].notna()]  # the sampler labels its rows like the client
    assert set(in_phase["scenario"].astype(object)) == {"proxy-buffering"}
    assert set(in_phase["rep"].astype(object)) == {1}

    # the client wrote each row's scenario, variant and repetition (record schema 2)
    st = read_table(run, "streams", columns=["phase", "scenario", "variant", "rep"])
    ids = {tuple(r) for r in st.astype(object).itertuples(index=False)}
    assert ids == {(f"proxy-buffering.{v}/{a}/r1", "proxy-buffering", v, 1)
                   for v in variants for a in ("sse",)}  # fmt: skip
    summ = summarize(run)
    ttft = {v: summ.arm(f"proxy-buffering.{v}", "sse").ttft_ms.p50 for v in variants}
    print("TTFT p50 ms per variant:", ttft)
    assert ttft["buffered"] > 5 * ttft["direct"], ttft
    assert abs(ttft["unbuffered"] - ttft["direct"]) <= 5.0, ttft
    assert abs(ttft["buffered-accel"] - ttft["direct"]) <= 5.0, ttft
    row = C.claim_c3(summ, Manifest.from_json(m))
    assert row["status"] == C.HOLDS, row


def test_proxy_idle_cuts_without_heartbeat_and_not_with_it(tmp_path: Path) -> None:
    run = ssevsws_run(tmp_path, "proxy-idle", "--users", "2", "--duration", "3")
    m = read_manifest(run)
    names = [p["name"] for p in m["phases"]]
    assert names == [
        f"proxy-idle.{v}/{a}/r1" for v in ("idle-nohb", "idle-hb") for a in ("sse", "ws")
    ]
    s = read_table(run, "streams", columns=["phase", "outcome"])
    proxy = json.loads((run / "proxy.json").read_text())
    for ph in m["phases"]:
        outcomes = set(s[s["phase"].astype(object) == ph["name"]]["outcome"].astype(object))
        events = ph["proxy"]["log_events"]
        assert proxy[ph["name"]]["log_events"] == events
        assert ph["proxy"]["variant"]["read_timeout_s"] == 2.0
        if ph["variant"] == "idle-nohb":
            assert ph["proxy"]["server_heartbeat_s"] == 0
            assert outcomes == {"dropped"}, (ph["name"], outcomes)
            assert events["upstream_timed_out"] == ph["streams"] > 0
        else:
            assert ph["proxy"]["server_heartbeat_s"] == 0.5
            assert outcomes == {"ok"}, (ph["name"], outcomes)
            assert events["upstream_timed_out"] == 0
    # per-connection outcomes: nginx's "upstream timed out" joined onto the client's records
    conns = load_run(run).connections
    for ph in m["phases"]:
        mine = conns[conns["phase"].astype(object) == ph["name"]]
        by = mine["closed_by"].astype(object).value_counts().to_dict()
        closes = json.loads((run / ph["proxy"]["logs"]["closes"]).read_text())
        assert ph["proxy"]["closes"]["unplaced"] == 0, closes
        if ph["variant"] == "idle-nohb":
            # every stream's connection cut by nginx, found by stream id (SSE) / conn= (WS)
            assert by.get("proxy") == ph["streams"], (ph["name"], by)
            assert {c["closed_by"] for c in closes} == {"proxy"}
            cut = mine[mine["closed_by"].astype(object) == "proxy"]
            assert (
                cut["close_reason"].astype(object).str.startswith("nginx: upstream timed out").all()
            )
        else:
            assert "proxy" not in by, (ph["name"], by)
    row = C.claim_c4(summarize(run), Manifest.from_json(m))
    assert row["status"] == C.HOLDS, row
    for ph in m["phases"]:
        key = f"{ph['variant']}/{ph['arm']} streams survived / cut / all"
        n_proxy = ph["streams"] if ph["variant"] == "idle-nohb" else 0
        assert row["numbers"][key].endswith(f"closed by the proxy: {n_proxy}"), row


BROWSER_OK, BROWSER_WHY = browser_available()


@pytest.mark.skipif(not BROWSER_OK, reason=BROWSER_WHY)
def test_proxy_h2_browser_check_measures_c7(tmp_path: Path) -> None:
    run = ssevsws_run(tmp_path, "proxy-h2", "--users", "2", "--duration", "2")
    m = read_manifest(run)
    (ph,) = m["phases"]
    assert ph["name"] == "proxy-h2.h2/sse/r1" and ph["status"] == "ok"
    rec = ph["proxy"]
    assert rec["variant"]["http2"] is True
    waves = rec["browser"]["waves"]
    rows = json.loads((run / rec["logs"]["browser"]).read_text())
    assert set(rows) == set(waves) == {"http/1.1", "h2"}
    assert waves["http/1.1"]["access"]["protocols"] == ["HTTP/1.1"]
    assert waves["h2"]["access"]["protocols"] == ["HTTP/2.0"]
    assert waves["h2"]["access"]["connections"] == 1
    # the load's own figures leave the browser's requests out
    assert rec["access"]["stream_requests"] == ph["streams"]
    row = C.claim_c7(Manifest.from_json(m))
    assert row["status"] == C.HOLDS, row
