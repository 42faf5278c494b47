"""`ssevsws compare` on tiny recorded runs (`ssevsws cost`: test_cmd_cost.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.cli import main
from tests.analysis.test_report_synth import make_run

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("runs")
    return make_run(root, "20260101T000000Z_a_abc1234"), make_run(
        root, "20260102T000000Z_b_abc1234", ws_ttft_ms=341.0
    )


def test_compare_prints_side_by_side_with_ratios(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = runs
    assert main(["compare", str(a), str(b), "--no-report", "--n-boot", "50"]) == 0
    out = capsys.readouterr().out
    assert f"A = {a.name}" in out and f"B = {b.name}" in out
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("chat ")]
    ttft_ws = next(r for r in rows if r[1] == "ws" and r[2:5] == ["TTFT", "p50", "ms"])
    assert ttft_ws[5:] == ["310.0", "341.0", "1.100"]
    ttft_sse = next(r for r in rows if r[1] == "sse" and r[2:5] == ["TTFT", "p50", "ms"])
    assert ttft_sse[5:] == ["300.0", "300.0", "1.000"]


def test_compare_writes_the_compare_report(runs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = runs
    out = tmp_path / "cmp"
    assert main(["compare", str(a), str(b), "--out", str(out), "--n-boot", "50"]) == 0
    html = (out / "compare.html").read_text()
    md = (out / "compare.md").read_text()
    assert "| chat | ws | TTFT p50 ms | 310.0 | 341.0 | 1.100 |" in md
    assert html.count('src="data:image/png;base64,') == 2
    assert (out / "figures" / "compare_ttft_cdf.png").is_file()


def test_compare_refuses_different_schema_versions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = make_run(tmp_path, "a")
    b = make_run(tmp_path, "b", schema_version=999)
    assert main(["compare", str(a), str(b), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "cannot compare" in err and "schema version" in err


def test_report_missing_run_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no run folder" in capsys.readouterr().err


# --------------------------------------------------------------------------- report: usage


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("schema", "record schema version 999"),
        ("not-json", "not valid JSON"),
        ("profile", "--profile"),
    ],
)
def test_report_refuses_what_it_cannot_read_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: str, words: str
) -> None:
    """Before the notebook starts (it used to dump 40 lines of a failed cell)."""
    run = make_run(
        tmp_path, "20260101T000000Z_x_abc1234", schema_version=999 if change == "schema" else None
    )
    argv = ["report", str(run)]
    if change == "not-json":
        (run / "manifest.json").write_text("{ not json")
    if change == "profile":
        broken = tmp_path / "broken.toml"
        broken.write_text("monthly_active_users = [")
        argv += ["--profile", str(broken)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert not (run / "report.md").exists()


def test_report_of_a_failed_run_is_built_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.runfolder import mark_failed

    run = make_run(tmp_path, "20260101T000000Z_f_abc1234")
    mark_failed(run, "phase(s) failed: chat/ws/rep1: error share 0.50 > max_error_share 0.01")
    assert main(["report", str(run), "--n-boot", "50"]) == 3
    err = capsys.readouterr().err
    assert "the run is FAILED: phase(s) failed" in err
    md = (run / "report.md").read_text()
    assert "**failed**" in md and "error share 0.50" in md


def test_compare_shows_each_claims_verdict_and_the_sections_of_both_runs(tmp_path: Path) -> None:
    """A change that loses a section (here: nobody cancels in B) shows as "changed"; the
    claims' verdicts of both runs are listed, the same ones unmarked."""
    from analysis.claims import CLAIMS
    from analysis.compare import load_compare, section_rows, verdict_rows

    a = make_run(tmp_path, "20260101T000000Z_a_abc1234")
    b = make_run(tmp_path, "20260102T000000Z_b_abc1234", cancels=False)
    cr = load_compare(a, b, n_boot=50)
    verdicts = verdict_rows(cr)
    assert {r[0] for r in verdicts} >= set(CLAIMS)
    assert all((r[3] == "changed") == (r[1] != r[2]) for r in verdicts)
    sections = {r[0]: r[1:] for r in section_rows(cr)}
    changed = [title for title, (ha, hb, mark) in sections.items() if mark]
    assert changed and all(sections[t][:2] == ["yes", "no"] for t in changed)
    assert any("ancel" in t for t in changed), changed
    same = load_compare(a, a, n_boot=50)
    assert not any(r[3] for r in verdict_rows(same))
    assert not any(r[3] for r in section_rows(same))
