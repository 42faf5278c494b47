"""Real headless Locust runs of loadtests/locustfile.py (subprocesses) against the tiny
servers: records land in the run folder, one file set per worker process, Locust stats
match the raw rows, the WS client holds up under gevent with hundreds of users."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core.runfolder import create_run_dir, read_manifest, read_table
from core.scenario import PHASE_ENV, PhaseConfig, scenario_from_dict

from .conftest import ROOT

LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"


def phase(
    tmp_path: Path, arm: str, url: str, scenario: dict[str, Any], seed: int = 7, **kw: Any
) -> Path:
    run_dir = create_run_dir(tmp_path / "results", "t")
    s = scenario_from_dict({"name": "t", **scenario})
    path = run_dir / f"phase-{arm}.json"
    PhaseConfig(str(run_dir), f"t/{arm}/r1", arm, arm, url, s.to_dict(), seed, **kw).dump(path)
    return path


def locust_cmd(phase_path: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--loglevel",
        "WARNING",
        *args,
    ]
    env = {**os.environ, PHASE_ENV: str(phase_path), "PYTHONPATH": str(ROOT)}
    return cmd, env


def run_locust(phase_path: Path, *args: str, timeout_s: float = 90) -> subprocess.CompletedProcess:
    cmd, env = locust_cmd(phase_path, *args)
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
    assert "Traceback" not in res.stderr, res.stderr[-4000:]
    return res


def summary_counts(output: str) -> dict[tuple[str, str], int]:
    """Request counts from Locust's final summary table (`--only-summary`).

    (The `--csv` stats file can miss the last seconds of a run; the summary does not.)
    """
    counts = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[0] in ("SSE", "WS") and parts[2].isdigit():
            counts.setdefault((parts[0], parts[1]), int(parts[2]))
    return counts


def tables(run_dir: Path) -> dict[str, pd.DataFrame]:
    return {t: read_table(run_dir, t) for t in ("streams", "tokens", "connections", "resources")}


def test_sse_sessions_records_and_stats(tiny: dict[str, str], tmp_path: Path) -> None:
    p = phase(
        tmp_path,
        "sse",
        tiny["sse"],
        {
            "stream": {"tokens": 20, "ttft_ms": 50, "gap_ms": 10},
            "session": {"turns": 3, "think_s": 0.3},
        },
        rep=1,
        proxy={"variant": "v1", "nginx": None},
    )
    res = run_locust(p, "-u", "10", "-r", "20", "-t", "5s", "--stop-timeout", "10")
    t = tables(p.parent)
    s = t["streams"]
    assert len(s) > 10 and set(s.outcome) == {"ok"} and s.checksum_ok.all()
    assert s.stream_uid.is_unique
    assert (s.phase == "t/sse/r1").all() and (s.users_target == 10).all()
    # keep-alive: later turns of a session reuse the connection of the first
    assert not s[s.turn == 0].reused_conn.any() and s[s.turn > 0].reused_conn.all()
    assert len(t["tokens"]) == s.n_received.sum()
    c = t["connections"]
    assert set(s.conn_uid) <= set(c.conn_uid)
    assert (c.streams >= 1).all() and (c.busy_ns > 0).all()
    r = t["resources"]
    assert len(r) >= 1 and set(r.role) == {"client"}
    # every row carries the phase's scenario, variant and repetition (record schema 2)
    for name in ("streams", "connections", "resources"):
        ids = set(t[name][["scenario", "variant", "rep"]].astype(object).itertuples(False))
        assert ids == {("t", "v1", 1)}, name
    client = read_manifest(p.parent)["client"]["t/sse/r1"]
    assert client["keepalive"] and client["library"].startswith("core.client.http1")
    assert client["payload_format"] == "native"
    n = summary_counts(res.stdout + res.stderr)
    assert n[("SSE", "stream")] == len(s) and n[("SSE", "ttft")] == len(s)


def test_ws_client_holds_300_users_under_gevent(tiny: dict[str, str], tmp_path: Path) -> None:
    """Pitfall 3: websockets.sync crashed Locust's hub; the sans-I/O client must not."""
    p = phase(
        tmp_path,
        "ws",
        tiny["ws"],
        {
            "stream": {"tokens": 40, "ttft_ms": 100, "gap_ms": 20},
            "session": {"turns": 2, "think_s": 0.5},
        },
    )
    res = run_locust(p, "-u", "300", "-r", "300", "-t", "8s", "--stop-timeout", "10")
    assert "epoll" not in res.stderr and "Assertion" not in res.stderr
    s = read_table(p.parent, "streams")
    assert len(s) >= 300 and set(s.outcome) == {"ok"} and s.checksum_ok.all()
    c = read_table(p.parent, "connections")
    # one connection per session, held through think time: 2 streams on each
    assert (c.streams == 2).sum() >= 250
    held = c.t_close_ns - c.t_open_ns
    assert (c.busy_ns[c.streams == 2] < held[c.streams == 2]).all()


def test_processes_2_one_file_set_per_worker(tiny: dict[str, str], tmp_path: Path) -> None:
    p = phase(tmp_path, "ws", tiny["ws"], {"stream": {"tokens": 20, "ttft_ms": 50, "gap_ms": 10}})
    prefix = tmp_path / "locust"
    run_locust(
        p,
        "-u",
        "20",
        "-r",
        "40",
        "-t",
        "5s",
        "--stop-timeout",
        "10",
        "--processes",
        "2",
        "--csv",
        str(prefix),
    )
    s = read_table(p.parent, "streams")
    assert s.worker.nunique() == 2 and s.stream_uid.is_unique
    assert sorted(s.stream_id.str.split(".").str[1].unique()) == ["0", "1"]
    files = {f.name.rsplit("-", 1)[0] for f in (p.parent / "streams").glob("*.parquet")}
    assert files == set(s.worker)
    assert len(s) == sum(len(g) for _, g in s.groupby("worker"))
    assert set(read_table(p.parent, "resources").pid) == {int(w.rsplit("-", 1)[1]) for w in files}


def test_ramp_shape_records_users_target(tiny: dict[str, str], tmp_path: Path) -> None:
    p = phase(
        tmp_path,
        "sse",
        tiny["sse"],
        {
            "load": {"users": 12, "ramp_steps": [4, 12], "step_s": 3.0, "spawn_rate": 50},
            "stream": {"tokens": 10, "ttft_ms": 20, "gap_ms": 20},
        },
    )
    run_locust(p, "--stop-timeout", "5")
    s = read_table(p.parent, "streams")
    assert set(s.users_target.dropna()) == {4, 12}
    by = s.groupby("users_target").user.nunique()
    assert by[4] <= 4 < by[12] <= 12


def test_open_model_records_dispatch_delay(tiny: dict[str, str], tmp_path: Path) -> None:
    p = phase(
        tmp_path,
        "ws",
        tiny["ws"],
        {
            "load": {"mode": "open", "arrival_rate": 20.0, "users": 20},
            "stream": {"tokens": 10, "ttft_ms": 20, "gap_ms": 20},
        },
    )
    run_locust(p, "-u", "20", "-r", "100", "-t", "5s", "--stop-timeout", "5")
    s = read_table(p.parent, "streams")
    delay = s.t_send_ns - s.t_sched_ns
    assert s.t_sched_ns.notna().all() and (delay >= 0).all()
    # Poisson at 20/s for ~5 s: about 100 sessions (very loose bounds, noisy machine)
    assert 40 <= len(s) <= 200


def test_sigint_leaves_readable_records(tiny: dict[str, str], tmp_path: Path) -> None:
    p = phase(tmp_path, "sse", tiny["sse"], {"stream": {"tokens": 20, "ttft_ms": 20, "gap_ms": 20}})
    cmd, env = locust_cmd(p, "-u", "10", "-r", "50", "-t", "60s")
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Locust may deliver the KeyboardInterrupt inside a user greenlet (gevent prints it);
    # the stream it interrupted is recorded as "stopped". Anything else is a bug.
    assert not re.search(r"^\w+(Error|Exception):", err, re.MULTILINE), err[-3000:]
    s = read_table(p.parent, "streams")
    assert len(s) > 0 and len(read_table(p.parent, "tokens")) >= s.n_received.sum() * 0.5


@pytest.mark.parametrize("missing", [True])
def test_locustfile_needs_a_phase(missing: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != PHASE_ENV}
    res = subprocess.run(
        [sys.executable, "-c", "import loadtests.locustfile"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode != 0 and PHASE_ENV in res.stderr
