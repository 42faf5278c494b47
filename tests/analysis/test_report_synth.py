"""A small recorded run folder on disk for the report / compare / cost tests.

Built with core.runfolder (RecordWriter part files + manifest), from the scripted frames
of analysis_synth: a chat scenario with two arms (SSE TTFT 300 ms, WS 310 ms), a ramp
with two load steps, a reconnect and a cancel scenario, an agent scenario over TLS (one
chain of three turns per arm), and server resource samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from core.runfolder import RecordWriter, mark_complete, update_manifest, write_json, write_manifest
from tests.analysis.analysis_synth import MS, S, Script, build, phase_columns

SSE_TTFT_MS = 300.0
WS_TTFT_MS = 310.0


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in df.astype(object).to_dict("records"):
        out.append(
            {
                k: (None if v is pd.NA or (isinstance(v, float) and v != v) else v)
                for k, v in rec.items()
            }
        )
    return out


def _resources(phase: str, arm: str, start_ns: int, n: int = 8) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        rows.append(
            {
                "t_ns": start_ns + i * S // 2,
                "phase": phase,
                **phase_columns(phase),
                "arm": arm,
                "role": "server",
                "pid": 100 if arm == "sse" else 200,
                "cpu_user_s": 0.01 * i,
                "cpu_sys_s": 0.002 * i,
                "cpu_pct": 2.4,
                "rss_bytes": 50_000_000 + i * 10 * 16_000,
                "fds": 10 + i,
                "connections": i * 10,
            }
        )
    rows.append({**rows[-1], "role": "client", "pid": 300, "cpu_pct": 20.0})
    return rows


def scripts(ws_ttft_ms: float = WS_TTFT_MS, cancel_name: str = "cancel") -> list[Script]:
    base = 10_000 * S
    return [
        Script(arm="sse", phase="chat/sse/rep1", streams=6, ttft_ms=SSE_TTFT_MS, start_ns=base),
        Script(
            arm="ws",
            phase="chat/ws/rep1",
            streams=6,
            ttft_ms=ws_ttft_ms,
            start_ns=base + 20 * S,
            delivery_ms=1.2,
        ),
        Script(
            arm="sse",
            phase="ramp/sse/rep1",
            streams=4,
            users_target=10,
            start_ns=base + 40 * S,
            spacing_s=0.5,
        ),
        Script(
            arm="ws",
            phase="ramp/ws/rep1",
            streams=4,
            users_target=10,
            start_ns=base + 50 * S,
            spacing_s=0.5,
        ),
        Script(arm="sse", phase="reconnect/sse/rep1", streams=3, start_ns=base + 60 * S),
        Script(arm="ws", phase="reconnect/ws/rep1", streams=3, start_ns=base + 70 * S),
        Script(arm="sse", phase="agent/sse/rep1", streams=3, start_ns=base + 100 * S, ttft_ms=302),
        Script(arm="ws", phase="agent/ws/rep1", streams=3, start_ns=base + 110 * S, ttft_ms=301),
        Script(arm="sse", phase=f"{cancel_name}/sse/rep1", streams=3, start_ns=base + 80 * S),
        Script(arm="ws", phase=f"{cancel_name}/ws/rep1", streams=3, start_ns=base + 90 * S),
    ]


def scenario_configs(cancel_name: str = "cancel", cancels: bool = True) -> list[dict[str, Any]]:
    """What the manifest records of the scripted scenarios (as bench writes
    Scenario.to_dict(); only the fields that differ from the defaults): analysis decides
    which sections and claims apply from these, not from the names. ``cancels=False``:
    the cancel scenario's users cancel nothing."""
    return [
        {"name": "chat", "session": {"turns": 3, "think_s": 1.0}},
        {"name": "ramp", "load": {"ramp_steps": [10, 20], "step_s": 2.0}},
        {"name": "reconnect", "stream": {"drop_after": 20}},
        {"name": cancel_name, "behaviour": {"cancel_prob": 0.5 if cancels else 0.0}},
        {
            "name": "agent",
            "session": {"turns": 3, "think_s": 0.5, "chain": True},
            "server": {"tls": True},
        },
    ]


def make_run(
    root: Path,
    name: str = "20260101T000000Z_suite_abc1234",
    *,
    ws_ttft_ms: float = WS_TTFT_MS,
    complete: bool = True,
    schema_version: int | None = None,
    cancel_name: str = "cancel",
    cancels: bool = True,
) -> Path:
    """The run folder; ``cancel_name`` names the scenario whose users cancel streams
    (``cancels=False``: a scenario of that name where nobody cancels)."""
    run = Path(root) / name
    run.mkdir(parents=True)
    plan = scripts(ws_ttft_ms, cancel_name)
    fr = build(plan)
    st = fr["streams"].copy()
    # second ramp step
    ramp = st["phase"].astype(object).str.startswith("ramp/")
    idx = st.index[ramp]
    st.loc[idx[2::4], "users_target"] = 20
    st.loc[idx[3::4], "users_target"] = 20
    # reconnect: one dropped stream per arm, recovered ok
    for arm in ("sse", "ws"):
        k = st.index[st["phase"].astype(object) == f"reconnect/{arm}/rep1"][0]
        st.loc[k, "t_drop_ns"] = int(st.loc[k, "t_first_ns"]) + 100 * MS
        st.loc[k, "reconnects"] = 1
    # agent: each arm's three streams are one user's chain of three turns
    for arm in ("sse", "ws"):
        idx = st.index[st["phase"].astype(object) == f"agent/{arm}/rep1"]
        st.loc[idx, "user"] = 0
        st.loc[idx, "turn"] = range(len(idx))
        st.loc[idx, "stream_id"] = [f"1.0.0.0.{k}" for k in range(len(idx))]
        st.loc[idx, "ttft_ms_sched"] = 300.0
    # cancel: one cancelled stream per arm
    for arm in ("sse", "ws") if cancels else ():
        k = st.index[st["phase"].astype(object) == f"{cancel_name}/{arm}/rep1"][0]
        st.loc[k, "outcome"] = "cancelled"
    res = []
    for sc in plan:
        res += _resources(sc.phase, sc.arm, sc.start_ns)
    tables = {
        "streams": _rows(st),
        "tokens": _rows(fr["tokens"]),
        "connections": _rows(fr["connections"]),
        "resources": res,
    }
    for table, rows in tables.items():
        with RecordWriter(run, table, "test-1") as w:
            w.extend(rows)
    manifest: dict[str, Any] = {
        "run_id": name,
        "scenario_name": "suite",
        "suite": {"name": "suite", "scenarios": scenario_configs(cancel_name, cancels)},
        "arms": ["sse", "ws"],
        "git": {"sha": "abc1234" * 5, "sha7": "abc1234", "dirty": False},
        "phases": [
            {"name": sc.phase, "status": "ok", **phase_columns(sc.phase), "arm": sc.arm}
            for sc in plan
        ],
        "incomplete_reason": "running",
    }
    if schema_version is not None:
        manifest["schema_version"] = schema_version
    write_manifest(run, manifest)
    write_json(
        run,
        "server_metrics.json",
        {
            f"{cancel_name}/sse/rep1": {"tokens_wasted": 1, "streams_cancelled": 1},
            f"{cancel_name}/ws/rep1": {"tokens_wasted": 1, "streams_cancelled": 1},
        },
    )
    if complete:
        mark_complete(run)
    else:
        update_manifest(run, status="incomplete", incomplete_reason="interrupted")

        def _unfinished(m: dict[str, Any]) -> None:
            m["phases"][-1]["status"] = "interrupted"
            m["order"] = [*(e["name"] for e in m["phases"]), "idle-hold/sse/rep1"]

        from core.runfolder import modify_manifest

        modify_manifest(run, _unfinished)
    return run


def test_synthetic_run_reads_back(tmp_path: Path) -> None:
    from analysis.load import load_run

    data = load_run(make_run(tmp_path))
    assert data.manifest.status == "complete"
    assert set(data.streams["arm"].astype(object)) == {"sse", "ws"}
    assert len(data.streams) == sum(s.streams for s in scripts())
    assert len(data.tokens) == len(data.streams) * 50
    assert (data.streams["t_drop_ns"].notna()).sum() == 2
