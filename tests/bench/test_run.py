"""Real `ssevsws run` invocations (subprocesses): reference servers, headless Locust, run
folders. Small and short (5 users, a few seconds, 20 tokens) so the file runs in about a
minute on two noisy cores; skipped until servers/ and loadtests/ exist."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from bench.cli import main
from bench.plan import FOREIGN
from core.runfolder import read_manifest, read_table

ROOT = Path(__file__).resolve().parents[2]

TINY = """\
name = "tiny"
arms = ["sse", "ws"]
seed = 11
[load]
users = 5
spawn_rate = 50
duration_s = {duration}
stop_timeout_s = 5
[stream]
tokens = 20
ttft_ms = 50
gap_ms = 10
"""


def tiny(tmp_path: Path, duration: float = 3) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(duration=duration))
    return path


def cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench.cli", "run", *args, "--pause", "0.2"]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def ssevsws_run(*args: str, timeout_s: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd(*args), cwd=ROOT, env=env(), capture_output=True, text=True, timeout=timeout_s
    )


def run_dirs(results: Path) -> list[Path]:
    return sorted(p for p in results.iterdir() if p.is_dir() and not p.is_symlink())


def only_run(results: Path) -> Path:
    dirs = run_dirs(results)
    assert len(dirs) == 1, dirs
    return dirs[0]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def child_pids(manifest: dict[str, Any]) -> list[int]:
    pids = []
    for p in manifest.get("phases", []):
        if isinstance(p.get("server"), dict):
            pids.append(p["server"]["pid"])
        if isinstance(p.get("locust"), dict):
            pids.append(p["locust"]["pid"])
    return pids


# --------------------------------------------------------------------------- CLI errors


def test_unknown_scenario_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "no-such-scenario", "--results", str(tmp_path / "r")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown scenario 'no-such-scenario'" in err and "chat" in err
    assert not (tmp_path / "r").exists()  # nothing created


def test_bad_overrides_and_urls_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    scenario = str(tiny(tmp_path))
    for argv in (
        [scenario, "--users", "0"],
        [scenario, "--protocols", "sse,grpc"],
        [scenario, "--ws-url", "wss://example.invalid:443"],
        [scenario, "--sse-url", "http://127.0.0.1:1", "--protocols", "sse,ws"],
        [str(tmp_path / "missing.toml")],
    ):
        with pytest.raises(SystemExit) as exc:
            main(["run", *argv, "--results", str(tmp_path / "r")])
        assert exc.value.code == 2, argv
        assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_unknown_scenario_exit_code_from_the_console(tmp_path: Path) -> None:
    res = ssevsws_run("nope", "--results", str(tmp_path / "r"), timeout_s=60)
    assert res.returncode == 2
    assert "unknown scenario 'nope'" in res.stderr and "Traceback" not in res.stderr


# --------------------------------------------------------------------------- real runs


def test_run_both_arms_writes_a_complete_run_folder(tmp_path: Path) -> None:
    results = tmp_path / "results"
    res = ssevsws_run(str(tiny(tmp_path)), "--results", str(results))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    run = only_run(results)
    assert (results / "latest").resolve() == run
    m = read_manifest(run)
    assert m["status"] == "complete" and "incomplete_reason" not in m
    assert m["status_reason"] is None
    assert m["scenario"]["stream"]["tokens"] == 20 and m["scenario"]["seed"] == 11
    assert m["git"]["sha"] and m["host"]["logical_cores"] and m["packages"]["locust"]
    assert m["seeds"]["phases"] == {"tiny/sse/r1": 11, "tiny/ws/r1": 11}
    assert [a["name"] for a in m["arms"]] == ["sse", "ws"]
    assert all(a["reference_server"] for a in m["arms"])
    assert m["arms"][1]["server"]["ws_compression"] == "off"
    assert m["limits"]["nofile"]["after"]["soft"]
    phases = m["phases"]
    assert [p["name"] for p in phases] == ["tiny/sse/r1", "tiny/ws/r1"]
    for p in phases:
        assert p["status"] == "ok" and p["locust_exit_code"] == 0
        assert p["t_end_ns"] > p["t_start_ns"] and p["start_utc"] and p["end_utc"]
        assert p["stream_check"]["ok"], p["stream_check"]
        assert p["server_info"]["kind"] == p["arm"]
        assert (run / p["config"]).is_file()
    assert set(m["client"]) == {"tiny/sse/r1", "tiny/ws/r1"}  # written by the workers
    s = read_table(run, "streams")
    assert set(s.arm) == {"sse", "ws"} and (s.groupby("arm").size() > 0).all()
    assert set(s.outcome) == {"ok"} and s.checksum_ok.all()
    r = read_table(run, "resources")
    roles = r.groupby("arm").role.agg(set)
    for arm in ("sse", "ws"):
        assert {"server", "loadgen", "client"} <= roles[arm], roles
    assert (r[r.role == "server"].cpu_user_s > 0).all()
    metrics = json.loads((run / "server_metrics.json").read_text())
    tokens = s.groupby("phase").n_received.sum()
    for phase, mm in metrics.items():
        assert mm["tokens_sent"] >= tokens[phase] > 0
    assert "TTFT p50 ms" in res.stdout and str(run) in res.stdout
    assert all(gone(pid) for pid in child_pids(m))


def test_processes_2_one_run_folder_all_workers(tmp_path: Path) -> None:
    results = tmp_path / "results"
    res = ssevsws_run(
        str(tiny(tmp_path)), "--results", str(results), "--processes", "2", "--protocols", "ws"
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    run = only_run(results)
    m = read_manifest(run)
    assert m["status"] == "complete" and m["scenario"]["load"]["processes"] == 2
    (phase,) = m["phases"]
    assert "--processes" in phase["locust"]["command"]
    s = read_table(run, "streams")
    by_worker = s.groupby("worker").size()
    assert len(by_worker) == 2
    assert len(s) == by_worker.sum() == sum(phase["streams_by_worker"].values())
    assert phase["stream_check"]["ok"] and phase["stream_check"]["locust_reported"] == len(s)
    assert m["workers"]["tiny/ws/r1"] == {str(k): int(v) for k, v in by_worker.items()}
    r = read_table(run, "resources")
    assert set(r.role) >= {"server", "master", "loadgen", "client"}
    assert r[r.role == "loadgen"].pid.nunique() == 2


@pytest.mark.parametrize(
    ("sig", "code", "word"), [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")]
)
def test_ctrl_c_leaves_a_readable_incomplete_run(
    tmp_path: Path, sig: int, code: int, word: str
) -> None:
    results = tmp_path / "results"
    proc = subprocess.Popen(
        cmd(str(tiny(tmp_path, duration=30)), "--results", str(results)),
        cwd=ROOT,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:  # wait until streams are on disk mid-phase
            dirs = run_dirs(results) if results.exists() else []
            if dirs and list((dirs[0] / "streams").glob("*.parquet")):
                break
            time.sleep(0.2)
        else:
            pytest.fail("no streams flushed within 40 s")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, out[-2000:] + err[-2000:]
    run = only_run(results)
    m = read_manifest(run)
    assert m["status"] == "incomplete" and word in m["incomplete_reason"]
    assert m["phases"][0]["status"] == "interrupted"
    check = m["phases"][0]["stream_check"]
    assert check["rows"] > 0  # disk vs Locust count, recorded
    # streams users were in the middle of when stopped are on disk too (nothing lost)
    assert check["locust_reported"] in (None, check["rows"]), check
    assert len(m["phases"]) == 1  # the ws phase never started
    s = read_table(run, "streams")
    assert len(s) > 0 and set(s.phase) == {"tiny/sse/r1"}
    assert len(read_table(run, "tokens")) > 0 and len(read_table(run, "resources")) > 0
    assert "INCOMPLETE" in out
    assert all(gone(pid) for pid in child_pids(m))


def test_ramp_scenario_lets_the_shape_drive_users(tmp_path: Path) -> None:
    path = tmp_path / "ramp.toml"
    path.write_text(
        TINY.format(duration=3)
        .replace('name = "tiny"', 'name = "tinyramp"')
        .replace("users = 5", "users = 4\nramp_steps = [2, 4]\nstep_s = 1.5")
    )
    results = tmp_path / "results"
    res = ssevsws_run(str(path), "--results", str(results), "--protocols", "sse")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    run = only_run(results)
    (phase,) = read_manifest(run)["phases"]
    assert "-u" not in phase["locust"]["command"] and phase["ramp_steps"] == [2, 4]
    s = read_table(run, "streams")
    assert set(s.users_target.dropna()) == {2, 4}


def test_two_runs_in_the_same_second_get_two_folders(tmp_path: Path) -> None:
    results = tmp_path / "results"
    scenario = str(tiny(tmp_path, duration=1))
    args = ("--results", str(results), "--protocols", "sse")
    procs = [
        subprocess.Popen(
            cmd(scenario, *args), cwd=ROOT, env=env(), stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=90)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    dirs = run_dirs(results)
    assert len(dirs) == 2
    assert all(read_manifest(d)["status"] == "complete" for d in dirs)
    stamps = {re.sub(r"-\d+$", "", d.name) for d in dirs}
    if len(stamps) == 1:  # same second: the second one got a suffix, nothing overwritten
        assert sorted(d.name for d in dirs)[1].endswith("-2")
    for d in dirs:
        s = read_table(d, "streams")
        assert len(s) > 0 and s.worker.nunique() == 1


def test_own_server_url_marks_server_side_not_measured(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with open(log, "wb") as f:
        server = subprocess.Popen(
            [sys.executable, "-m", "servers", "sse", "--port", "0", "--host", "127.0.0.1"],
            cwd=ROOT,
            env=env(),
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 20
        port = None
        while port is None and time.monotonic() < deadline:
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read_text())
            port = int(found[1]) if found else None
            time.sleep(0.1)
        assert port, log.read_text()
        results = tmp_path / "results"
        res = ssevsws_run(
            str(tiny(tmp_path, duration=2)),
            "--results",
            str(results),
            "--sse-url",
            f"http://127.0.0.1:{port}",
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    run = only_run(results)
    m = read_manifest(run)
    assert m["status"] == "complete"
    (arm,) = m["arms"]
    assert arm["name"] == "sse" and arm["reference_server"] is False
    assert arm["url"] == f"http://127.0.0.1:{port}" and arm["server"] == FOREIGN
    assert m["server_side"]["server_resources"] == FOREIGN
    assert m["server_side"]["server_metrics"] == FOREIGN
    (phase,) = m["phases"]
    assert phase["server"] == FOREIGN and phase["reference_server"] is False
    assert json.loads((run / phase["config"]).read_text())["reference_server"] is False
    r = read_table(run, "resources")
    assert len(r) > 0 and "server" not in set(r.role)
    assert json.loads((run / "server_metrics.json").read_text()) == {
        "tiny/sse/r1": {"not_measured": FOREIGN}
    }
    assert len(read_table(run, "streams")) > 0


# --------------------------------------------------------------------------- failures, in process


def options(tmp_path: Path, duration: float = 3) -> Any:
    from bench.plan import ArmTarget
    from bench.run import RunOptions
    from core.scenario import load_scenario

    path = tiny(tmp_path, duration)
    lines: list[str] = []
    opts = RunOptions(
        scenario=load_scenario(path),
        scenario_path=path,
        arms=[ArmTarget.named("sse")],
        results=tmp_path / "results",
        pause_s=0.1,
        out=lines.append,
    )
    return opts, lines


def test_a_server_that_does_not_start_marks_the_run_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bench.run

    monkeypatch.setattr(
        bench.run,
        "server_command",
        lambda arm, scenario, tls=None: [
            sys.executable,
            "-c",
            "print('no port today'); raise SystemExit(3)",
        ],
    )
    opts, lines = options(tmp_path)
    assert bench.run.run(opts) == 1
    m = read_manifest(only_run(tmp_path / "results"))
    assert m["status"] == "failed" and m["status_reason"] == m["incomplete_reason"]
    assert "exited with code 3" in m["status_reason"]
    assert "no port today" in m["status_reason"]
    assert m["phases"][0]["status"] == "failed" and "exited with code 3" in m["phases"][0]["reason"]
    assert any("FAILED" in line for line in lines)


def test_a_phase_over_its_hard_timeout_is_terminated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bench.run

    monkeypatch.setattr(bench.run, "phase_timeout_s", lambda scenario: 2.0)
    opts, _ = options(tmp_path, duration=30)
    t0 = time.monotonic()
    assert bench.run.run(opts) == 1
    assert time.monotonic() - t0 < 30
    m = read_manifest(only_run(tmp_path / "results"))
    assert m["status"] == "failed" and "hard timeout" in m["status_reason"]
    (phase,) = m["phases"]
    assert phase["status"] == "timeout" and phase["locust"]["hard_timeout_s"] == 2.0
    assert "hard timeout of 2 s" in phase["reason"]
    assert all(gone(pid) for pid in child_pids(m))
