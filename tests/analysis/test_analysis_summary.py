"""analysis.summary and analysis.load: headline figures equal the scripted truth, the
JSON is strict, run folders round-trip, and other schema versions are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis import metrics as M
from analysis.load import load_run, load_runs
from analysis.results import RunSummary
from analysis.summary import format_table, summarize
from core.runfolder import RecordWriter, SchemaMismatch, create_run_dir, update_manifest
from tests.analysis.analysis_synth import S, Script, build, frame


def _run_frames():
    fr = build(
        [
            Script(arm="sse", phase="chat/sse/rep1", streams=40, tokens=20, delivery_ms=1.5),
            Script(
                arm="ws",
                phase="chat/ws/rep1",
                streams=40,
                tokens=20,
                delivery_ms=1.0,
                start_ns=20_000 * S,
                ttft_ms=200.0,
            ),
            Script(
                arm="sse",
                phase="chat/sse/rep2",
                streams=40,
                tokens=20,
                delivery_ms=1.5,
                start_ns=30_000 * S,
            ),
            Script(
                arm="ws",
                phase="chat/ws/rep2",
                streams=40,
                tokens=20,
                delivery_ms=1.0,
                start_ns=40_000 * S,
                ttft_ms=200.0,
            ),
        ]
    )
    # a server process per arm: 2.0 CPU-s over each phase
    rows = []
    for arm, t0 in (("sse", 10_000), ("ws", 20_000), ("sse", 30_000), ("ws", 40_000)):
        rep = 1 if t0 < 30_000 else 2
        for i, c in enumerate((0.0, 1.0, 2.0)):
            rows.append(
                {
                    "t_ns": (t0 + 40 * i) * S,
                    "phase": f"chat/{arm}/rep{rep}",
                    "arm": arm,
                    "role": "server",
                    "pid": t0,
                    "cpu_user_s": c,
                    "cpu_sys_s": 0.0,
                    # 10,000 B per connection over 0–200 connections: a publishable fit
                    "rss_bytes": 50_000_000 + 10_000 * 100 * i,
                    "connections": 100 * i,
                }
            )
    fr["resources"] = frame("resources", rows)
    return fr


@pytest.fixture(scope="module")
def typed():
    return summarize(_run_frames(), n_boot=200)


@pytest.fixture(scope="module")
def summary(typed):
    """summary.json as written: the typed summary's to_json()."""
    return typed.to_json()


def test_typed_summary_round_trips_through_json(typed, summary):
    assert RunSummary.from_json(json.loads(json.dumps(summary))) == typed
    sse = typed.arm("chat", "sse")
    assert sse is not None and sse.ttft_ms.p50 == 300.0 and sse.ttft_ms.p99 is None
    assert typed.scenarios["chat"].ratio("ws", "ttft_ms_p50").ratio == pytest.approx(1.5)
    assert typed.main_scenario == "chat"
    # an older summary.json (no traits, no p50_ci, no client_cpu) still reads
    old = json.loads(json.dumps(summary))
    for block in old["scenarios"].values():
        block.pop("traits")
        for arm in block["arms"].values():
            arm.pop("client_cpu")
            arm["ttft_ms"].pop("p50_ci")
    back = RunSummary.from_json(old).arm("chat", "sse")
    assert back.ttft_ms.p50 == 300.0 and back.ttft_ms.p50_ci is None
    assert back.client_cpu.cpu_pct_max is None


def test_summary_is_strict_json_with_per_arm_truth(summary):
    json.dumps(summary, allow_nan=False)  # no NaN anywhere
    chat = summary["scenarios"]["chat"]
    sse, ws = chat["arms"]["sse"], chat["arms"]["ws"]
    assert sse["streams"] == 80 and ws["streams"] == 80
    assert sse["ttft_ms"]["n"] == 80 and sse["ttft_ms"]["p50"] == 300.0
    assert sse["ttft_ms"]["p95"] == 300.0 and sse["ttft_ms"]["p99"] is None  # 80 < 368
    assert ws["ttft_ms"]["p50"] == 200.0
    assert sse["itl_ms"]["n"] == 80 * 19 and sse["itl_ms"]["p99"] == 20.0
    assert sse["tpot_ms"]["p50"] == 20.0
    assert sse["e2e_ms"]["p50"] == 300.0 + 19 * 20.0
    assert sse["delivery_ms"]["p50"] == 1.5 and ws["delivery_ms"]["p50"] == 1.0
    assert sse["dispatch_delay_ms"]["p50"] == 2.0
    assert sse["ttft_ms"]["p50_ci"] == [300.0, 300.0]
    assert sse["outcomes"]["ok"] == 80 and sse["integrity"]["lost"] == 0
    assert sse["slo_attainment"] == 1.0
    assert sse["bytes"]["event_bytes_per_token"] == 60.0
    assert sse["rss_kib_per_conn"] == pytest.approx(10_000 / 1024)
    # 2 phases × 2.0 CPU-s; tokens inside each phase's sampled window [t0, t0 + 80 s]
    assert sse["server_cpu_s_per_1k_tokens"] == pytest.approx(4.0 / 1600 * 1000)


def test_ratios_and_repetitions(summary):
    chat = summary["scenarios"]["chat"]
    r = chat["ratios"]["sse/ws"]
    assert r["ttft_ms_p50"]["ratio"] == pytest.approx(1.5)
    assert r["delivery_ms_p50"]["ratio"] == pytest.approx(1.5)
    assert r["itl_ms_p50"]["ratio"] == pytest.approx(1.0)
    assert r["app_bytes_per_token"]["ratio"] == pytest.approx(1.0)
    reps = chat["repetitions"]
    assert reps["sse"]["n_reps"] == 2 and reps["sse"]["ttft_p50_median"] == 300.0
    phases = {(p["phase"], p["arm"]): p for p in summary["phases"]}
    assert phases[("chat/ws/rep2", "ws")]["rep"] == 2
    assert phases[("chat/ws/rep2", "ws")]["ttft_p50"] == 200.0


def test_not_measured_is_said_not_guessed():
    fr = build(
        [
            Script(delivery_ms=None, streams=10),
            Script(arm="ws", phase="chat/ws/rep1", delivery_ms=None, streams=10),
        ]
    )
    s = summarize(fr, n_boot=50).to_json()
    sse = s["scenarios"]["chat"]["arms"]["sse"]
    assert sse["delivery_ms"]["n"] == 0 and sse["delivery_ms"]["p50"] is None
    assert "chat/sse/delivery_ms" in s["not_measured"]
    assert "chat/sse/server_cpu_s_per_1k_tokens" in s["not_measured"]
    assert sse["server_cpu_s_per_1k_tokens"] is None
    table = format_table(s)
    assert "n/m" in table and "TTFT p50 ms" in table
    assert "n/a (n=10)" in table  # p99 of 10 samples is not reported


def test_summary_recomputes_from_raw_rows(summary):
    fr = _run_frames()
    sm = M.stream_metrics(fr["streams"])
    raw = sm.loc[sm["arm"] == "ws", "e2e_ms"].to_numpy()
    assert summary["scenarios"]["chat"]["arms"]["ws"]["e2e_ms"]["p50"] == float(np.median(raw))


def _write_run(root, fr, scenario="chat"):
    run = create_run_dir(root, scenario)
    for table in ("streams", "tokens", "connections", "resources"):
        with RecordWriter(run, table, "test") as w:
            df = fr[table]
            if len(df):
                w.append_columns(
                    {
                        c: df[c].astype(object).where(df[c].notna(), None).tolist()
                        for c in df.columns
                    }
                )
    return run


def test_load_run_round_trip_and_schema_refusal(tmp_path):
    fr = _run_frames()
    run = _write_run(tmp_path, fr)
    data = load_run(run)
    assert len(data.tokens) == len(fr["tokens"])
    from_disk = summarize(run, n_boot=200).to_json()
    in_memory = summarize(fr, n_boot=200).to_json()
    assert from_disk["scenarios"] == in_memory["scenarios"]
    assert from_disk["run_id"] == run.name
    assert any("incomplete" in f for f in from_disk["flags"])

    other = _write_run(tmp_path / "b", build([Script()]))
    update_manifest(other, schema_version=999)
    with pytest.raises(SchemaMismatch):
        load_run(other)
    with pytest.raises(SchemaMismatch):
        load_runs(run, other)
    with pytest.raises(SchemaMismatch):
        summarize({**fr, "manifest": {"schema_version": 999}})


def test_empty_run_summarises_to_nothing_measured():
    from analysis.load import RunData

    s = summarize(RunData()).to_json()
    json.dumps(s, allow_nan=False)
    assert s["scenarios"] == {} and any("no streams" in f for f in s["flags"])
    assert "no streams" in format_table(s)
