"""`ssevsws run` with a browser arm: the runner starts the browser load generator
(python -m loadtests.browser) instead of Locust, and records a phase as skipped, with the
reason, when no browser can run it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import psutil
import pytest

import bench.browser_hook as browser_hook
from bench.cli import main
from bench.plan import browser_command
from core.browser import chromium_available
from core.runfolder import read_manifest, read_table
from core.scenario import scenario_from_dict
from loadtests.session import SessionPlan, UserIds, draw_turn, user_rng

BROWSER_OK, BROWSER_WHY = chromium_available()

TINY = """\
name = "tiny-browser"
arms = ["browser-ws", "browser-fetch"]
seed = 5
[load]
users = 3
spawn_rate = 50
duration_s = 1
stop_timeout_s = 5
[stream]
tokens = 10
tokens_min = 4
ttft_ms = 20
gap_ms = 10
[session]
sessions_per_user = 1
"""


def _gone(pid: int, before: float) -> bool:
    """No process `pid` that existed before `before` (epoch s) is still running (a PID
    reused by a process started later is another process)."""
    try:
        p = psutil.Process(pid)
        return p.create_time() > before or p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _run(tmp_path: Path) -> tuple[int, Path]:
    scenario = tmp_path / "tiny-browser.toml"
    scenario.write_text(TINY)
    results = tmp_path / "r"
    code = main(["run", str(scenario), "--results", str(results), "--pause", "0"])
    (run,) = [p for p in results.iterdir() if p.is_dir() and not p.is_symlink()]
    return code, run


def test_the_browser_command_is_the_browser_load_generator() -> None:
    assert browser_command()[-2:] == ["-m", "loadtests.browser"]


@pytest.mark.skipif(not BROWSER_OK, reason=BROWSER_WHY)
def test_a_browser_arm_runs_in_chromium_with_the_locust_contract(tmp_path: Path) -> None:
    code, run = _run(tmp_path)
    assert code == 0
    m = read_manifest(run)
    assert m["status"] == "complete"
    phases = {p["arm"]: p for p in m["phases"]}
    assert set(phases) == {"browser-ws", "browser-fetch"}
    streams = read_table(run, "streams")
    for arm, ph in phases.items():
        assert ph["status"] == "ok" and ph["streams"] == 3
        assert ph["stream_check"]["ok"] and ph["stream_check"]["locust_reported"] == 3
        assert ph["locust"]["command"][-2:] == ["-m", "loadtests.browser"]
        rec = m["browser_load"][ph["name"]]
        assert rec["client"]["client"] == arm and rec["streams"] == {"ok": 3}
        assert m["client"][ph["name"]]["load_generator"].startswith("browser")
        mine = streams[streams["arm"] == arm]
        assert set(mine["outcome"]) == {"ok"} and mine["checksum_ok"].all()
        # each answer's drawn length, as a Locust user of the same phase seed draws it
        plan = SessionPlan.from_scenario(scenario_from_dict(m["scenario"]))
        for r in mine.itertuples():
            ids = UserIds(ph["name"], arm, "w", 0, int(r.user), int(ph["seed"]))
            assert r.tokens_expected == r.n_received == draw_turn(user_rng(ids), plan).tokens
    roles = set(read_table(run, "resources")["role"].astype(object))
    assert {"browser-main", "browser-renderer", "browser-network", "server"} <= roles
    # every process the browser load generator started is gone
    pids = [
        r.pid
        for r in read_table(run, "resources").itertuples()
        if str(r.role).startswith("browser-")
    ]
    ended = max(datetime.fromisoformat(p["end_utc"]).timestamp() for p in m["phases"])
    assert pids and all(_gone(pid, ended) for pid in set(pids))
    # the report gets its browser section from these records
    from analysis import report

    rep = report.load(run, n_boot=20)
    md = report.full_report(rep)["report.md"].read_text()
    assert "browser" in rep.sections and "## Real browsers" in md
    assert "Browser WebSocket" in md and "clock mapping bound" in md
    assert "memory and CPU per stream: n/m" in md  # fixed users: no held levels to fit
    # C1 on the browser pages (fetch vs WebSocket), marked as browser evidence
    assert "| **C1** Same user experience" in md
    c1 = next(line for line in md.splitlines() if line.startswith("| **C1**"))
    assert c1.rstrip().endswith("| browser |"), c1


def test_without_a_browser_the_phases_are_skipped_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    why = "chromium not found: install chromium as root"
    monkeypatch.setattr(browser_hook, "chromium_available", lambda: (False, why))
    code, run = _run(tmp_path)
    assert code == 0
    m = read_manifest(run)
    assert [p["status"] for p in m["phases"]] == ["skipped", "skipped"]
    assert {p["reason"] for p in m["phases"]} == {f"browser arm: {why}"}
    assert any(why in w for w in m["warnings"])
    assert read_table(run, "streams").empty
    # the report builds and says why nothing was measured
    from analysis import report

    md = report.full_report(report.load(run, n_boot=20))["report.md"].read_text()
    assert why in md and "## Real browsers" not in md
