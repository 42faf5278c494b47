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
