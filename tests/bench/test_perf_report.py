"""bench.perf.report: ratios recomputable from perf.json, misses with margins, compare."""

from __future__ import annotations

import json

import pytest

from bench.perf.report import (
    TARGETS,
    compare_perf,
    compute_ratios,
    ratio_table,
    render_md,
    verdict,
    write_report,
)


def _flood(server: str, n: int, per_cpu: float) -> dict:
    return {"server": server, "mode": "flood", "n": n, "tokens_per_s": per_cpu * 0.9,
            "tokens_per_server_cpu_s": per_cpu, "server_cpu_pct": 90.0,
            "server_us_per_token": 1e6 / per_cpu, "errors": []}  # fmt: skip


def _perf(sse: float = 200_000.0, run_id: str = "A") -> dict:
    return {
        "run_id": run_id,
        "throughput": [
            _flood("sse", 1000, sse),
            _flood("sse", 100, 250_000.0),
            _flood("ws", 1000, 180_000.0),
            _flood("raw", 1000, 300_000.0),
            _flood("starlette", 1000, 50_000.0),
            _flood("websockets-default", 1000, 150_000.0),
        ],
        "idle": [
            {"server": "sse", "n": 100, "opened": 100, "kib_per_conn": 15.0},
            {"server": "aiohttp-sse", "n": 100, "opened": 100, "kib_per_conn": 12.0},
        ],
        "ceiling": [
            {
                "proto": "sse",
                "processes": 1,
                "bound_ms": 5.0,
                "floor_ms": 0.5,
                "points": [],
                "ceiling_streams": 200,
                "ceiling_tokens_per_s": 10_000.0,
                "client_cpu_pct_at_ceiling": 80.0,
            }
        ],
        "e2e": [
            {
                "proto": "ws",
                "users": 200,
                "processes": 1,
                "delivery_ms_p99": 4.0,
                "delivery_ms_p50": 1.0,
                "lost": 0,
                "tokens_received": 10_000,
                "tokens_expected": 10_000,
                "client_cpu_pct": 50.0,
            }
        ],
    }


def _by_name(rows: list[dict]) -> dict[str, dict]:
    return {r["name"]: r for r in rows}


def test_throughput_ratios_are_ours_over_reference_from_the_same_json():
    perf = _perf()
    rows = [r for r in compute_ratios(perf) if r["kind"] == "throughput"]
    assert {(r["ours"], r["ref"]) for r in rows} == {
        ("sse", "raw"), ("sse", "starlette"), ("ws", "raw"), ("ws", "starlette"),
        ("ws", "websockets-default"),
    }  # fmt: skip
    flood = {(t["server"], t["n"]): t for t in perf["throughput"]}
    for r in rows:  # the largest N is used, and value == ours / ref exactly
        ours = flood[(r["ours"], 1000)]["tokens_per_server_cpu_s"]
        ref = flood[(r["ref"], 1000)]["tokens_per_server_cpu_s"]
        assert r["value"] == pytest.approx(ours / ref)
        assert r["pass"] == (r["value"] >= r["target"])


def test_a_miss_is_reported_with_its_margin():
    perf = _perf(sse=150_000.0)  # sse / raw = 0.5 < 0.6
    r = _by_name(compute_ratios(perf))["sse / raw (flood N=1000, tokens per server CPU-s)"]
    assert r["pass"] is False
    assert r["margin"] == pytest.approx(0.5 - TARGETS["raw"])
    assert r["margin_pct"] == pytest.approx(100 * (0.5 - 0.6) / 0.6)
    assert verdict(r).startswith("MISS by 0.10")
    table = ratio_table(perf)
    assert "MISS by 0.10 (-17%)" in table
    # bounds ("<=") too: idle 15 / 12 = 1.25 > 1.2, ceiling 10k < 25k
    rows = _by_name(compute_ratios(perf))
    idle = rows["idle KiB/conn sse / aiohttp-sse"]
    assert idle["value"] == pytest.approx(15 / 12) and idle["pass"] is False
    assert verdict(idle) == "MISS by 0.05 over"
    ceil = next(r for r in rows.values() if r["kind"] == "ceiling")
    assert ceil["pass"] is False and ceil["margin"] == pytest.approx(10_000 - 25_000)
    e2e = [r for r in rows.values() if r["kind"] == "e2e"]
    assert all(r["pass"] for r in e2e)


def test_missing_data_gives_no_ratio_rather_than_a_wrong_one():
    perf = _perf()
    perf["throughput"] = [t for t in perf["throughput"] if t["server"] != "raw"]
    assert not [r for r in compute_ratios(perf) if r.get("ref") == "raw"]


def test_compare_perf_shows_both_runs_side_by_side(tmp_path):
    a, b = _perf(run_id="run-a"), _perf(sse=100_000.0, run_id="run-b")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "perf.json").write_text(json.dumps(b))
    text = compare_perf(a, tmp_path / "b")  # a dict and a run folder
    assert "run-a" in text and "run-b" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("sse / raw"))
    assert "0.67" in line and "0.33" in line and "PASS / MISS" in line
    assert "project SSE (aiohttp)" in text


def test_write_report_files(tmp_path):
    perf = _perf()
    paths = write_report(tmp_path, perf)
    saved = json.loads((tmp_path / "perf.json").read_text())
    assert saved["schema"] == "perf/1" and saved["ratios"]
    assert (tmp_path / "perf.md").read_text().startswith("# Performance")
    assert {"perf_throughput", "perf_ratios"} <= set(paths)
    assert "MISS" in render_md(saved)


def test_ssevsws_compare_on_two_perf_runs_prints_the_ratios(tmp_path, capsys) -> None:
    import json

    from bench.cli import main

    for name, sse in (("A", 200_000.0), ("B", 100_000.0)):
        d = tmp_path / name
        d.mkdir()
        (d / "perf.json").write_text(json.dumps(_perf(sse=sse, run_id=name)))
        (d / "manifest.json").write_text(json.dumps({"schema_version": 1, "status": "complete"}))
    assert main(["compare", str(tmp_path / "A"), str(tmp_path / "B")]) == 0
    out = capsys.readouterr().out
    assert "perf compare" in out and "sse / raw" in out
