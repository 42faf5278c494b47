"""Unit tests of bench's process helpers, sampler, plan, scraping and summary — no Locust."""

from __future__ import annotations

import signal
import socket
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.hostcheck import raise_nofile_limit, time_wait_count
from bench.plan import (
    ArmTarget,
    locust_command,
    plan_phases,
    resolve_scenario_path,
    run_seconds,
    server_command,
)
from bench.procs import (
    ProcessError,
    free_port,
    free_ports,
    spawn,
    wait_for_listening,
    wait_http_ok,
)
from bench.report import phase_summary
from bench.sampler import ResourceSampler
from bench.scrape import locust_stream_count, parse_metrics
from core.runfolder import RecordWriter, read_table
from core.scenario import ScenarioError, scenario_from_dict

PY = sys.executable


# --------------------------------------------------------------------------- ports


def test_free_port_is_bindable_on_loopback() -> None:
    port = free_port()
    assert 1024 < port < 65536
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_free_ports_are_distinct() -> None:
    ports = free_ports(8)
    assert len(set(ports)) == 8


# --------------------------------------------------------------------------- processes


def test_stop_kills_the_whole_group_it_started(tmp_path: Path) -> None:
    child = spawn("sh", ["sh", "-c", "sleep 60 & exec sleep 61"], log_path=tmp_path / "sh.log")
    deadline = time.monotonic() + 5
    while not child.descendants() and time.monotonic() < deadline:
        time.sleep(0.05)
    kids = child.descendants()
    assert kids, "the background sleep should be a descendant"
    assert psutil.Process(child.pid).pid == child.pid
    assert child.alive()
    code = child.stop(grace_s=5)
    assert code == -signal.SIGTERM
    for k in kids:
        assert not k.is_running() or k.status() == psutil.STATUS_ZOMBIE


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    child = spawn("stubborn", [PY, "-c", script], log_path=tmp_path / "s.log")
    deadline = time.monotonic() + 10
    while "ready" not in (tmp_path / "s.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    t0 = time.monotonic()
    assert child.stop(grace_s=0.5) == -signal.SIGKILL
    assert time.monotonic() - t0 < 5
    assert child.stop() == -signal.SIGKILL  # idempotent, signals nothing once reaped


def test_wait_for_listening_reads_the_announced_port(tmp_path: Path) -> None:
    script = (
        "import time; print('listening on http://127.0.0.1:4321 (kind=x)', flush=True); "
        "time.sleep(30)"
    )
    child = spawn("fake", [PY, "-c", script], log_path=tmp_path / "f.log")
    try:
        assert wait_for_listening(child, timeout_s=10) == ("127.0.0.1", 4321)
    finally:
        child.stop(grace_s=2)


def test_wait_for_listening_reports_an_early_exit(tmp_path: Path) -> None:
    child = spawn(
        "dies", [PY, "-c", "print('boom'); raise SystemExit(3)"], log_path=tmp_path / "d.log"
    )
    with pytest.raises(ProcessError, match="exited with code 3") as exc:
        wait_for_listening(child, timeout_s=10)
    assert "boom" in str(exc.value)


def test_wait_http_ok_times_out_on_a_closed_port() -> None:
    with pytest.raises(ProcessError, match="did not answer 200"):
        wait_http_ok(f"http://127.0.0.1:{free_port()}/healthz", timeout_s=0.5)


# --------------------------------------------------------------------------- sampler


def test_sampler_follows_children_and_labels_rows(tmp_path: Path) -> None:
    child = spawn("sh", ["sh", "-c", "sleep 30 & exec sleep 31"], log_path=tmp_path / "sh.log")
    sampler = ResourceSampler(tmp_path, writer_id="bench-test", interval_s=10)
    try:
        deadline = time.monotonic() + 5
        while not child.descendants() and time.monotonic() < deadline:
            time.sleep(0.05)
        sampler.set_phase("p/sse/r1", "sse")
        sampler.watch(child.pid, "master", children_role="loadgen")
        assert sampler.sample_once() == 2
        time.sleep(0.05)
        assert sampler.sample_once() == 2
        sampler.set_phase(None, None)
        assert sampler.sample_once() == 0  # between phases nothing is labelled, nothing written
    finally:
        sampler.stop()
        child.stop(grace_s=2)
    r = read_table(tmp_path, "resources")
    assert len(r) == 4 and set(r.phase) == {"p/sse/r1"} and set(r.arm) == {"sse"}
    assert set(r.role) == {"master", "loadgen"}
    assert r.groupby("pid").cpu_pct.apply(lambda s: s.isna().sum()).tolist() == [1, 1]
    assert (r.rss_bytes > 0).all() and (r.fds >= 0).all()


# --------------------------------------------------------------------------- plan


def _scenario(**load: object) -> object:
    return scenario_from_dict({"name": "t", "repetitions": 2, "load": load})


def test_phases_interleave_arms_and_share_seeds_per_repetition() -> None:
    plans = plan_phases(_scenario(), [ArmTarget.named("sse"), ArmTarget.named("ws")])
    assert [p.name for p in plans] == ["t/sse/r1", "t/ws/r1", "t/sse/r2", "t/ws/r2"]
    assert plans[0].seed == plans[1].seed != plans[2].seed == plans[3].seed
    assert [p.stem for p in plans][:1] == ["t_sse_r1"]


def test_locust_command_fixed_users_and_processes(tmp_path: Path) -> None:
    cmd = locust_command(_scenario(users=7, duration_s=2.5, processes=2), tmp_path / "x")
    joined = " ".join(cmd)
    assert "--headless" in cmd and "-u 7" in joined and "-t 3s" in joined
    assert "--processes 2" in joined and "--stop-timeout" in cmd
    single = locust_command(_scenario(processes=1), tmp_path / "x")
    assert "--processes" not in single


def test_locust_command_ramp_lets_the_shape_drive(tmp_path: Path) -> None:
    s = _scenario(users=12, ramp_steps=[4, 12], step_s=2.5)
    cmd = locust_command(s, tmp_path / "x")
    assert "-u" not in cmd and "-t" not in cmd and "-r" not in cmd
    assert run_seconds(s) == 5


def test_server_command_is_loopback_port_0_with_settings() -> None:
    s = scenario_from_dict(
        {
            "name": "t",
            "server": {"heartbeat_s": 0, "accel_header": False, "ws_compression": "deflate"},
        }
    )
    cmd = server_command("ws-websockets", s)
    joined = " ".join(cmd)
    assert cmd[1:4] == ["-m", "servers", "ws-websockets"]
    assert "--host 127.0.0.1" in joined and "--port 0" in joined
    assert "--heartbeat-s 0" in joined and "--no-accel-header" in cmd
    assert "--ws-compression deflate" in joined


def test_scenario_names_and_paths(tmp_path: Path) -> None:
    assert resolve_scenario_path("chat").name == "chat.toml"
    with pytest.raises(ScenarioError, match=r"unknown scenario 'nope'.*chat"):
        resolve_scenario_path("nope")
    with pytest.raises(ScenarioError, match="not found"):
        resolve_scenario_path(str(tmp_path / "missing.toml"))


# --------------------------------------------------------------------------- scraping


METRICS = """\
# HELP ssevsws_tokens_sent_total Token frames written
# TYPE ssevsws_tokens_sent_total counter
ssevsws_tokens_sent_total 120.0
# HELP ssevsws_tokens_wasted_total Wasted
# TYPE ssevsws_tokens_wasted_total counter
ssevsws_tokens_wasted_total 3.0
# HELP ssevsws_bytes_sent_total Bytes
# TYPE ssevsws_bytes_sent_total counter
ssevsws_bytes_sent_total{part="token"} 900.0
ssevsws_bytes_sent_total{part="heartbeat"} 12.0
# HELP ssevsws_lag_seconds Lag
# TYPE ssevsws_lag_seconds histogram
ssevsws_lag_seconds_bucket{le="0.001"} 5.0
ssevsws_lag_seconds_bucket{le="+Inf"} 6.0
ssevsws_lag_seconds_count 6.0
ssevsws_lag_seconds_sum 0.01
"""


def test_parse_metrics_keys_samples_with_labels_and_aliases() -> None:
    m = parse_metrics(METRICS)
    assert m["ssevsws_tokens_sent_total"] == 120.0
    assert m["tokens_sent"] == 120.0 and m["tokens_wasted"] == 3.0
    assert m['ssevsws_bytes_sent_total{part="token"}'] == 900.0
    assert m['ssevsws_lag_seconds_bucket{le="+Inf"}'] == 6.0
    assert m["ssevsws_lag_seconds_count"] == 6.0


def test_locust_stream_count_reads_the_final_summary(tmp_path: Path) -> None:
    log = tmp_path / "l.log"
    log.write_text(
        "Type     Name                  # reqs      # fails |    Avg\n"
        "--------|---------------------|-------|-------------|-------\n"
        "SSE      stream                  80     0(0.00%) |    245\n"
        "SSE      stream (cancelled)      7     0(0.00%) |    245\n"
        "SSE      ttft                    80     0(0.00%) |     53\n"
        "         Aggregated             167     0(0.00%) |    149\n\n"
        "Response time percentiles (approximated)\n"
        "SSE      stream                 240    240  80\n"
    )
    assert locust_stream_count(log) == 87
    assert locust_stream_count(tmp_path / "missing.log") is None


# --------------------------------------------------------------------------- summary & host


def test_phase_summary_medians_from_records(tmp_path: Path) -> None:
    with RecordWriter(tmp_path, "streams", "w") as w:
        for i, (send, first) in enumerate([(0, 50_000_000), (0, 70_000_000)]):
            w.append(
                {
                    "stream_uid": f"s{i}",
                    "phase": "t/sse/r1",
                    "arm": "sse",
                    "t_send_ns": send,
                    "t_first_ns": first,
                    "n_received": 3,
                    "outcome": "ok" if i == 0 else "error",
                }
            )
    with RecordWriter(tmp_path, "tokens", "w") as w:
        for i, first in enumerate([50_000_000, 70_000_000]):
            for seq, gap in enumerate([0, 10_000_000, 30_000_000]):
                w.append({"stream_uid": f"s{i}", "seq": seq, "t_recv_ns": first + gap})
    df = phase_summary(tmp_path, {"t/sse/r1": "sse", "t/ws/r1": "ws"})
    row = df.set_index("phase").loc["t/sse/r1"]
    assert row.streams == 2 and row.tokens == 6 and row.errors == 1
    assert row.ttft_ms_p50 == pytest.approx(60.0)
    assert row.itl_ms_p50 == pytest.approx(15.0)  # gaps 10, 20, 10, 20
    assert df.set_index("phase").loc["t/ws/r1"].streams == 0


def test_host_checks() -> None:
    limits = raise_nofile_limit()
    if limits["after"]["hard"] is not None and limits["error"] is None:
        assert limits["after"]["soft"] == limits["after"]["hard"]
    tw = time_wait_count()
    assert tw is None or tw >= 0
