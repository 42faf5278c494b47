"""Run one browser phase (python -m loadtests.browser) against a server, for the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from core.arms import get_arm
from core.runfolder import create_run_dir, read_manifest, read_table
from core.scenario import PHASE_ENV, PhaseConfig, scenario_from_dict

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class BrowserRun:
    code: int
    log: str
    run_dir: Path
    streams: pd.DataFrame
    tokens: pd.DataFrame
    connections: pd.DataFrame
    resources: pd.DataFrame
    record: dict[str, Any]  # manifest browser_load.<phase>


#: The browser load generator, as the runner starts it.
COMMAND = [sys.executable, "-m", "loadtests.browser"]


def phase_env(
    tmp: Path, arm: str, url: str, scenario: dict[str, Any], *, seed: int = 1
) -> tuple[Path, str, dict[str, str]]:
    """A run folder with the phase's config: (run dir, phase name, environment to run
    COMMAND with)."""
    s = scenario_from_dict({"name": "bt", "arms": [arm], **scenario})
    run = create_run_dir(tmp, "bt")
    phase = f"bt/{arm}/r1"
    cfg = PhaseConfig(
        str(run), phase, arm, get_arm(arm).protocol, url, s.to_dict(), seed=seed, rep=1
    )
    cfg.dump(run / "phase.json")
    return run, phase, {**os.environ, "PYTHONPATH": str(ROOT), PHASE_ENV: str(run / "phase.json")}


def browser_phase(
    tmp: Path, arm: str, url: str, scenario: dict[str, Any], *, seed: int = 1, timeout_s: float = 90
) -> BrowserRun:
    run, phase, env = phase_env(tmp, arm, url, scenario, seed=seed)
    res = subprocess.run(
        COMMAND, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s
    )
    return BrowserRun(
        res.returncode,
        res.stdout + res.stderr,
        run,
        read_table(run, "streams"),
        read_table(run, "tokens"),
        read_table(run, "connections"),
        read_table(run, "resources"),
        read_manifest(run).get("browser_load", {}).get(phase, {}),
    )


def medians(streams: pd.DataFrame, tokens: pd.DataFrame) -> dict[str, float]:
    """TTFT, ITL and delivery medians (ms) from a run's rows, the way memsink.summarize
    computes them from accounts (tokens rows are in arrival order per stream)."""
    ttft = (streams["t_first_ns"] - streams["t_send_ns"]) / 1e6
    itl = tokens.groupby("stream_uid", sort=False)["t_recv_ns"].diff().dropna() / 1e6
    delivery = (tokens["t_recv_ns"] - tokens["t_server_ns"]) / 1e6
    return {
        "ttft_ms_median": float(ttft.median()),
        "itl_ms_median": float(itl.median()),
        "delivery_ms_p50": float(delivery.median()),
        "delivery_ms_min": float(delivery.min()),
    }
