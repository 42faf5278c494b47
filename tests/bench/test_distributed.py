"""`ssevsws run --workers N` (a real Locust master and N worker processes) and `--hosts H`
(root: the server, the master and each load host in a network namespace of its own).

End to end on a tiny scenario: every worker's rows are in the one run folder, each worker's
row count equals the streams Locust counted for it (streams are still running when the
run time ends, so the master must wait for the workers' last reports), no process is left,
and with --hosts the traffic crossed the namespace addresses and the namespaces are gone.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bench import netns
from bench.cli import main
from bench.distributed import (
    Deployment,
    DeploymentError,
    Placement,
    master_command,
    worker_check,
    worker_command,
)
from core.runfolder import read_manifest, read_table
from core.scenario import LoadSpec
from tests.bench.test_run import TINY as RUN_TINY
from tests.bench.test_run import gone, only_run, ssevsws_run

# 150 tokens every 10 ms: 1.5 s answers, so streams are in flight when the 4 s run ends
SHORT = "tokens = 20\nttft_ms = 50\ngap_ms = 10\n"
assert SHORT in RUN_TINY
TINY = (
    RUN_TINY.format(duration=4)
    .replace("users = 5", "users = 6")
    .replace(SHORT, "tokens = 150\nttft_ms = 20\ngap_ms = 10\n")
)


def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def wait_until(done: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        time.sleep(0.1)
    return done()


def netns_skip_reason() -> str | None:
    return netns.unavailable()


# --------------------------------------------------------------------------- units


def test_deployment_options(monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = LoadSpec(), LoadSpec(processes=2)
    assert Deployment.from_args(None, None, one) == Deployment(0, 0)
    assert Deployment.from_args(3, None, one).mode(one) == "master+workers"
    assert Deployment().mode(two) == "processes" and Deployment().mode(one) == "local"
    assert Deployment.from_args(None, None, two).expected_writers(two) == 2
    with pytest.raises(DeploymentError, match="--processes"):
        Deployment.from_args(2, None, two)
    monkeypatch.setattr(netns, "unavailable", lambda: None)
    assert Deployment.from_args(None, 2, one) == Deployment(workers=2, hosts=2)
    d = Deployment.from_args(5, 2, one)
    assert [d.worker_role(i) for i in range(5)] == ["w1", "w2", "w1", "w2", "w1"]
    with pytest.raises(DeploymentError, match="< --hosts"):
        Deployment.from_args(1, 2, one)
    monkeypatch.setattr(netns, "unavailable", lambda: "--hosts needs root (…)")
    with pytest.raises(DeploymentError, match="needs root"):
        Deployment.from_args(None, 2, one)


def test_netns_unavailable_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "root" in (netns.unavailable() or "")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(netns, "ip_binary", lambda: None)
    assert "iproute2" in (netns.unavailable() or "")


def test_hosts_without_root_is_a_one_line_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for argv in (["--hosts", "2"], ["--workers", "2", "--processes", "2"]):
        with pytest.raises(SystemExit) as exc:
            main(["run", str(tiny(tmp_path)), *argv, "--results", str(tmp_path / "r")])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("ssevsws run: error: --"), err
    assert not (tmp_path / "r").exists()


def test_hosts_refuses_scenarios_with_loopback_proxies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(netns, "unavailable", lambda: None)
    net = tmp_path / "net.toml"
    net.write_text(TINY + '[network]\nprofile = "4g"\n')
    for scenario in ("proxy-buffering", str(net)):
        with pytest.raises(SystemExit) as exc:
            main(["run", scenario, "--hosts", "2", "--results", str(tmp_path / "r")])
        assert exc.value.code == 2
        assert "run it without --hosts" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_master_and_worker_commands() -> None:
    base = [sys.executable, "-m", "locust", "-f", "lf.py", "--headless", "-u", "6", "-t", "4s"]
    m = master_command(base, "10.213.0.2", 5557, 3)
    assert m[: len(base)] == base
    assert m[m.index("--expect-workers") + 1] == "3" and "--master" in m
    assert m[m.index("--master-bind-host") + 1] == "10.213.0.2"
    w = worker_command(base, "10.213.0.2", 5557)
    assert w[:5] == base[:5] and "--worker" in w and "-u" not in w and "--headless" not in w
    assert w[w.index("--master-host") + 1] == "10.213.0.2"


def test_worker_check_compares_each_worker() -> None:
    rec = {
        "mode": "master",
        "workers": {"h-1": {"pid": 1, "locust_streams": 4}, "h-2": {"pid": 2, "locust_streams": 5}},
    }
    ok = worker_check({"h-1": 4, "h-2": 5}, rec, expected=2)
    assert ok["ok"] and ok["problems"] == [] and ok["by_writer"]["h-2"]["match"]
    bad = worker_check({"h-1": 4, "h-2": 6, "h-3": 1}, rec, expected=3)
    assert not bad["ok"]
    assert any("h-2: 6 stream rows on disk, Locust counted 5" in p for p in bad["problems"])
    assert any("h-3 wrote 1" in p for p in bad["problems"])
    assert any("2 load process(es) reported" in p for p in bad["problems"])
    assert not worker_check({"h-1": 4}, {}, expected=1)["ok"]
    # another run's worker on the same master: no record of ours, caught
    stray = {"workers": {**rec["workers"], "unknown:c9": {"locust_streams": 0}}}
    assert not worker_check({"h-1": 4, "h-2": 5}, stray, expected=2)["ok"]


def test_processes_get_a_master_port_of_their_own() -> None:
    """Locust's --processes master binds *:5557 by default: two runs on one machine would
    share it (seen: another test's workers joined this run's master)."""
    started: list[list[str]] = []

    def spawn(name: str, cmd: list[str], log: Path, env: dict[str, str]) -> object:
        started.append(cmd)
        return object()

    base = ["python", "-m", "locust", "-f", "lf.py", "--headless"]
    Placement(Deployment()).start_load(base, Path("x.log"), {}, spawn)  # type: ignore[arg-type]
    Placement(Deployment()).start_load([*base, "--processes", "2"], Path("x.log"), {}, spawn)  # type: ignore[arg-type]
    assert started[0] == base
    cmd = started[1]
    assert cmd[cmd.index("--master-bind-host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--master-bind-port") + 1] == cmd[cmd.index("--master-port") + 1]


# --------------------------------------------------------------------------- end to end


def _check_workers_run(run: Path, phase_count: int) -> list[dict]:
    """Every phase: N workers, each worker's rows == Locust's count for it; returns the
    phase entries."""
    m = read_manifest(run)
    assert m["status"] == "complete", m.get("incomplete_reason")
    assert m["load_generator"]["mode"] == "master+workers"
    streams = read_table(run, "streams", columns=["phase", "worker", "stream_uid"])
    host = socket.gethostname()
    phases = m["phases"]
    assert len(phases) == phase_count
    for p in phases:
        assert p["status"] == "ok", p
        workers = p["locust"]["workers"]
        assert len(workers) == 2
        writers = {f"{host}-{w['pid']}" for w in workers}
        mine = streams[streams["phase"].astype(object) == p["name"]]
        on_disk = mine["worker"].astype(object).value_counts().to_dict()
        assert set(on_disk) == writers  # every worker's rows are here, nobody else's
        assert all(n > 0 for n in on_disk.values())
        check = p["stream_check"]
        assert check["ok"], check
        per = check["per_worker"]["by_writer"]
        assert set(per) == writers
        for writer, w in per.items():
            assert w["rows"] == on_disk[writer] == w["locust_streams"], (writer, w)
        assert check["locust_reported"] == len(mine) == sum(on_disk.values())
        # streams were running at the end of the run time: they are counted too
        assert len(mine) > 6 * 2
        rec = m["load_workers"][p["name"]]
        assert rec["mode"] == "master" and rec["master"]["pid"] == p["locust"]["pid"]
        for w in rec["workers"].values():
            (start, stop) = w["clock"]["estimates"]
            assert start["when"] == "start" and stop["when"] == "stop"
            assert start["low_ns"] <= 0 <= start["high_ns"]  # one machine, one clock
        assert [x["exit_code"] for x in p["locust_after"]["workers_exit"]] == [0, 0]
    pids = [p["server"]["pid"] for p in phases] + [p["locust"]["pid"] for p in phases]
    pids += [w["pid"] for p in phases for w in p["locust"]["workers"]]
    assert wait_until(lambda: all(gone(pid) for pid in pids), 5), (
        "a server, master or worker outlived the run"
    )
    return phases


def run_tiny(tmp_path: Path, *args: str) -> Path:
    """`ssevsws run` of the tiny scenario; its run folder."""
    results = tmp_path / "results"
    done = ssevsws_run(str(tiny(tmp_path)), *args, "--results", str(results), timeout_s=150)
    assert done.returncode == 0, done.stdout + done.stderr
    return only_run(results)


def test_master_and_two_workers_end_to_end(tmp_path: Path) -> None:
    (phase,) = _check_workers_run(run_tiny(tmp_path, "--protocols", "sse", "--workers", "2"), 1)
    assert {w["address"] for w in phase["locust"]["workers"]} == {"127.0.0.1"}


def test_hosts_two_namespaces_end_to_end(tmp_path: Path) -> None:
    why = netns_skip_reason()
    if why:
        pytest.skip(why)
    run = run_tiny(tmp_path, "--protocols", "ws", "--hosts", "2")
    (phase,) = _check_workers_run(run, 1)
    hosts = read_manifest(run)["load_generator"]["hosts"]
    server_ip, master_ip = hosts["server"]["address"], hosts["master"]["address"]
    worker_ips = {hosts["w1"]["address"], hosts["w2"]["address"]}
    assert len({server_ip, master_ip, *worker_ips}) == 4
    assert {w["address"] for w in phase["locust"]["workers"]} == worker_ips
    assert phase["server"]["url"].startswith(f"ws://{server_ip}:")
    net = phase["locust_after"]["network"]
    # the server's own sockets: its streams came from the two worker hosts, nothing else
    assert set(net["established_peers"]["server"]) == worker_ips
    assert set(net["established_peers"]["master"]) == worker_ips  # the ZeroMQ protocol too
    veth = net["veth_phase"]
    assert veth["server"]["from_host_bytes"] > 150 * 6 * 2 * 40  # ~60-byte tokens went out
    for role in ("w1", "w2", "master"):
        assert veth[role]["from_host_bytes"] > 0 and veth[role]["to_host_bytes"] > 0
    per = phase["stream_check"]["per_worker"]["by_writer"]
    assert {w["address"] for w in per.values()} == worker_ips
    assert all(w["delivery_latency"].startswith("measured") for w in per.values())
    # the lab is gone: no namespace of this run, and none of its veths anywhere
    tags = {hosts[r]["netns"].rsplit("-", 1)[0] for r in hosts}
    assert len(tags) == 1
    assert netns.lab_namespaces(tags.pop()) == []
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert not any(f" {hosts[r]['veth']}@" in links for r in hosts)


GUARDED = """\
import subprocess, sys, time
from bench.netns import Lab
lab = Lab(["server", "w1"])
lab.create()
child = subprocess.Popen(lab.wrap("w1", ["sleep", "60"]))
print(lab.tag, child.pid, flush=True)
time.sleep(60)
"""


def test_a_killed_runner_leaves_no_namespace(tmp_path: Path) -> None:
    """SIGKILL (no cleanup code runs): the guard removes the lab and what ran inside it."""
    why = netns_skip_reason()
    if why:
        pytest.skip(why)
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", GUARDED], stdout=subprocess.PIPE, text=True, cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)}, start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        tag, inner = proc.stdout.readline().split()
        assert len(netns.lab_namespaces(tag)) == 3  # hub, server, w1
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert wait_until(lambda: not netns.lab_namespaces(tag), 15)
        assert wait_until(lambda: gone(int(inner)), 5), "the process inside the lab outlived it"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
