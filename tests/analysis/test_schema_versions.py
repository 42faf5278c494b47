"""Record schema versions: a version 1 run (scenario / variant / rep only in its phase
names) reads into the same columns as a version 2 run and summarises to the same figures;
versions analysis cannot read are refused with one line; v1 and v2 runs compare."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from analysis.legacy import phase_identity
from analysis.load import READABLE_SCHEMA_VERSIONS, SchemaMismatch, load_run, load_runs
from analysis.summary import summarize
from core.records import PHASE_COLUMNS, SCHEMA_VERSION
from core.runfolder import update_manifest
from tests.analysis.test_report_synth import make_run

V1_COLUMNS = {name for name, _ in PHASE_COLUMNS}


def _as_version_1(run: Path) -> Path:
    """The run rewritten as schema 1 wrote it: no scenario / variant / rep columns, and a
    manifest without the per-phase scenario fields."""
    for table in ("streams", "connections", "resources"):
        for part in (run / table).glob("*.parquet"):
            t = pq.read_table(part)
            pq.write_table(t.drop_columns([c for c in t.column_names if c in V1_COLUMNS]), part)
    m = json.loads((run / "manifest.json").read_text())
    for ph in m["phases"]:
        for key in ("scenario", "variant", "rep"):
            ph.pop(key, None)
    m["schema_version"] = 1
    (run / "manifest.json").write_text(json.dumps(m))
    return run


def test_phase_identity_reads_every_historical_phase_name() -> None:
    assert phase_identity("chat/sse/r1") == ("chat", None, 1)
    assert phase_identity("chat/ws/rep12") == ("chat", None, 12)
    assert phase_identity("proxy-idle.idle-hb/ws/r2") == ("proxy-idle", "idle-hb", 2)
    assert phase_identity("chat/ws") == ("chat", None, None)
    assert phase_identity(None) == (None, None, None)


def test_version_1_run_reads_like_version_2(tmp_path: Path) -> None:
    assert SCHEMA_VERSION == 2 and READABLE_SCHEMA_VERSIONS == (1, 2)
    v2 = make_run(tmp_path / "a", cancel_name="burst")
    v1 = _as_version_1(make_run(tmp_path / "b", cancel_name="burst"))
    d1, d2 = load_run(v1), load_run(v2)
    cols = ["phase", "scenario", "variant", "rep", "group"]
    for table in ("streams", "connections", "resources"):
        a, b = getattr(d1, table)[cols].astype(object), getattr(d2, table)[cols].astype(object)
        assert a.fillna("-").values.tolist() == b.fillna("-").values.tolist(), table
    s1, s2 = summarize(d1, n_boot=50).to_json(), summarize(d2, n_boot=50).to_json()
    assert s1["scenarios"] == s2["scenarios"]  # traits included: "burst" cancels in both
    assert s1["schema_version"] == 1 and s2["schema_version"] == 2
    assert s1["scenarios"]["burst"]["traits"]["cancels"] is True
    from analysis import report

    rep = report.load(d1, n_boot=20)  # the report reads it too, sections by configuration
    report.full_report(rep)
    assert "cancel" in rep.sections and "reconnect" in rep.sections
    # and they compare: readable versions load into the same columns
    a, b = load_runs(v1, v2)
    assert list(a.streams.columns) == list(b.streams.columns)


def test_unreadable_version_is_refused_in_one_line(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    update_manifest(run, schema_version=3)
    with pytest.raises(SchemaMismatch) as exc:
        load_run(run)
    msg = str(exc.value)
    assert "\n" not in msg and "schema version 3" in msg and "reads versions 1, 2" in msg
    other = make_run(tmp_path / "b")
    with pytest.raises(SchemaMismatch):
        load_runs(other, run)


def test_report_and_compare_cli_on_a_version_1_run(tmp_path: Path, capsys) -> None:
    from bench.cli import main

    v1 = _as_version_1(make_run(tmp_path / "a"))
    v2 = make_run(tmp_path / "b")
    assert main(["compare", str(v1), str(v2), "--no-report", "--n-boot", "50"]) == 0
    out = capsys.readouterr().out
    assert "schema v1" in out and "schema v2" in out
    ttft = next(
        line for line in out.splitlines() if line.startswith("chat ") and "TTFT p50" in line
    )
    assert ttft.split()[-3:] == ["300.0", "300.0", "1.000"]  # same rows, same figures
    update_manifest(v2, schema_version=7)
    assert main(["compare", str(v1), str(v2), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "schema version 7" in err


def test_committed_sample_summary_reads_with_the_traits_of_its_manifest() -> None:
    """results/sample (a published folder of one run): its summary.json reads back typed;
    with the groups' traits removed, as a summary.json written before groups carried them,
    its manifest's configuration says what each scenario exercises."""
    from analysis import claims as C
    from analysis.manifest import Manifest
    from analysis.report_data import resolve_run
    from analysis.results import RunSummary

    sample = resolve_run(Path(__file__).resolve().parents[2] / "results" / "sample")
    man = Manifest.from_json(json.loads((sample / "manifest.json").read_text()))
    raw = json.loads((sample / "summary.json").read_text())
    for block in raw["scenarios"].values():
        block.pop("traits", None)
    s = RunSummary.from_json(raw, manifest=man)
    assert s.main_scenario == "chat"
    assert (s.groups("cancels"), s.groups("reconnects")) == (["cancel"], ["reconnect"])
    assert (s.groups("ramp"), s.groups("held_idle")) == (["ramp"], ["idle-hold"])
    stored = {c["id"]: c["status"] for c in raw["claims"]}
    for row in C.claims(s, manifest=man):
        if row["id"] in ("C1", "C5", "C8"):  # what summary.json alone decides
            assert row["status"] == stored[row["id"]], row


#: Stream columns added to schema 2 for the provider formats (first byte, first event, usage).
NEW_STREAM_COLUMNS = (
    "t_first_byte_ns",
    "t_first_event_ns",
    "usage_input_tokens",
    "usage_output_tokens",
)


def test_parts_written_before_the_first_byte_columns_read_them_as_not_measured(
    tmp_path: Path,
) -> None:
    run = make_run(tmp_path / "a")
    for part in (run / "streams").glob("*.parquet"):
        t = pq.read_table(part)
        assert set(NEW_STREAM_COLUMNS) <= set(t.column_names)
        pq.write_table(t.drop_columns(list(NEW_STREAM_COLUMNS)), part)
    data = load_run(run)
    assert all(data.streams[c].isna().all() for c in NEW_STREAM_COLUMNS)
    for group in summarize(data, n_boot=20).scenarios.values():
        for arm in group.arms.values():
            assert arm.ttfb_ms.n == 0 and arm.ttft_ms.n > 0  # not measured, not 0
