"""Killing `ssevsws bench` midway: finished scenarios stay readable and reportable, and
the report says what is missing (issue 4)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.runfolder import read_manifest, read_table

SUITE = """
name = "tiny"
arms = ["sse", "ws"]
repetitions = 1
budget_s = 120
[[scenarios]]
name = "chat"
users = 4
duration_s = 3
stop_timeout_s = 2
[[scenarios]]
name = "cancel"
users = 4
duration_s = 20
stop_timeout_s = 2
"""


@pytest.mark.timeout(240)
def test_interrupted_bench_leaves_a_reportable_incomplete_run(tmp_path: Path) -> None:
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE)
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "bench.cli", "bench", "--suite", str(suite)]
    proc = subprocess.Popen(
        [*cmd, "--results", str(results), "--no-report"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 150
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            lines.append(line)
            if "cancel/sse/r1 start" in line:  # chat finished on both arms
                time.sleep(2.0)
                proc.send_signal(signal.SIGINT)
                break
            assert time.monotonic() < deadline, "".join(lines)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines.append(out)
    assert proc.returncode == 130, "".join(lines)
    (run_dir,) = [p for p in results.iterdir() if p.is_dir() and not p.is_symlink()]
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "incomplete"
    assert "interrupt" in manifest.get("incomplete_reason", "")
    streams = read_table(run_dir, "streams")
    phases = set(streams["phase"].astype(object))
    assert {"chat/sse/r1", "chat/ws/r1"} <= phases
    report = subprocess.run(
        [sys.executable, "-m", "bench.cli", "report", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert report.returncode == 3, report.stdout + report.stderr  # built; run incomplete
    assert "the run is INCOMPLETE" in report.stderr
    md = (run_dir / "report.md").read_text()
    assert "incomplete" in md.lower()
    assert "cancel/ws/r1" in md  # planned but never run: named as missing
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "incomplete"
