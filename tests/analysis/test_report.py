"""The run report: stored notebooks are clean, `ssevsws report` executes report.ipynb
headless on a small recorded run, and the numbers in report.md are the ones recomputed
from the raw parquet rows."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from analysis import report
from analysis.report_notebook import (
    NOTEBOOKS_DIR,
    drop_external_scripts,
    execute,
    inject_parameters,
    strip_outputs,
)
from tests.analysis.test_report_synth import make_run

os.environ.setdefault("MPLBACKEND", "Agg")

NOTEBOOKS = ("report.ipynb", "compare.ipynb", "cost.ipynb")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stored_notebooks_have_no_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    nbformat.validate(nb)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: stored with outputs"
            assert cell.execution_count is None, f"{name}: stored with execution counts"
            # thin: code cells only call into analysis
            for line in cell.source.splitlines():
                assert not line.startswith(("import pandas", "import matplotlib", "def ")), line


def test_inject_parameters_replaces_the_tagged_cell() -> None:
    nb = nbformat.read(NOTEBOOKS_DIR / "report.ipynb", as_version=4)
    inject_parameters(nb, {"RUN": "/x/y", "N_BOOT": 5})
    src = next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert src == "RUN = '/x/y'\nN_BOOT = 5"
    with pytest.raises(KeyError):
        inject_parameters(nbformat.v4.new_notebook(), {"RUN": 1})


def test_strip_outputs_and_external_scripts() -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="x")]
    nb.cells[0].execution_count = 3
    strip_outputs(nb)
    assert nb.cells[0].outputs == [] and nb.cells[0].execution_count is None
    html = '<head><script src="https://cdn.x/mathjax.js"> </script><script>var a=1;</script>'
    assert drop_external_scripts(html) == "<head><script>var a=1;</script>"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One headless `ssevsws report` on the synthetic run (shared: it takes seconds)."""
    from bench.cli import main

    run = make_run(tmp_path_factory.mktemp("runs"))
    assert main(["report", str(run), "--n-boot", "200"]) == 0
    return run


def test_report_files_and_every_figure(built: Path) -> None:
    html = (built / "report.html").read_text(encoding="utf-8")
    md = (built / "report.md").read_text(encoding="utf-8")
    assert (built / "summary.json").is_file()
    # self-contained: every figure embedded as base64, no external script
    assert html.count('src="data:image/png;base64,') == len(report.FIGURES)
    assert not re.search(r'<script[^>]+src="https?://', html)
    assert "def " not in html and "report.figure_ttft" not in html  # inputs hidden
    for name in report.FIGURES:
        assert f"](figures/{name}.png)" in md, name
        assert (built / "figures" / f"{name}.png").stat().st_size > 1000, name
    for cid in ("C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9"):
        assert f"**{cid}**" in md and f"<strong>{cid}</strong>" in html
    assert "not measured in this run" in md  # C3/C4/C7/C9: no proxy scenarios
    assert "## Cost" in md and "article's 6×" in md


def test_report_numbers_equal_the_raw_rows(built: Path) -> None:
    """TTFT and E2E medians recomputed from the parquet part files appear in report.md,
    and summary.json holds the same values."""
    streams = pd.read_parquet(built / "streams")
    chat = streams[streams["phase"].str.startswith("chat/")]
    ttft = {
        arm: float(((g["t_first_ns"] - g["t_send_ns"]) / 1e6).median())
        for arm, g in chat.groupby("arm")
    }
    e2e = {
        arm: float(((g["t_last_ns"] - g["t_send_ns"]) / 1e6).median())
        for arm, g in chat.groupby("arm")
    }
    md = (built / "report.md").read_text(encoding="utf-8")
    chat_md = md[md.index("### Scenario `chat`") :]
    assert f"| TTFT p50 ms | {ttft['sse']:.1f} | {ttft['ws']:.1f} |" in chat_md
    assert f"| E2E p50 ms | {e2e['sse']:.0f} | {e2e['ws']:.0f} |" in chat_md
    summ = json.loads((built / "summary.json").read_text())
    arms = summ["scenarios"]["chat"]["arms"]
    assert arms["sse"]["ttft_ms"]["p50"] == pytest.approx(ttft["sse"])
    assert arms["ws"]["ttft_ms"]["p50"] == pytest.approx(ttft["ws"])
    assert {c["id"] for c in summ["claims"]} == {f"C{i}" for i in range(1, 10)}
    c1 = next(c for c in summ["claims"] if c["id"] == "C1")
    assert c1["status"] == "holds"  # 300 vs 310 ms: within 5 %
    # the cost table in the report is the one analysis.cost computes for this run
    data = report.load_run(built)
    ci = report.cost_inputs(data, summ)
    row = ci.ratios[ci.ratios["ws_platform"] == "aws-apigw-websocket"].iloc[0]
    assert f"{row.ws_over_sse:.2f}×" in md


def test_incomplete_run_says_what_is_missing(tmp_path: Path) -> None:
    run = make_run(tmp_path, complete=False)
    rep = report.load(run, n_boot=50)
    report.show_header(rep)
    st = report.show_status(rep)
    assert st["status"] == "incomplete"
    assert st["unfinished_phases"] == ["cancel/ws/rep1"]
    report.finish(rep)
    md = (run / "report.md").read_text()
    assert "**incomplete** (interrupted)" in md
    assert "phases that did not finish: cancel/ws/rep1" in md
    assert "phases that never started: idle-hold/sse/rep1" in md
    assert "phases with no recorded streams: idle-hold/sse/rep1" in md


def test_empty_run_reports_not_measured(tmp_path: Path) -> None:
    from core.runfolder import write_manifest

    run = tmp_path / "empty"
    run.mkdir()
    write_manifest(
        run,
        {
            "run_id": "empty",
            "status": "incomplete",
            "incomplete_reason": "killed",
            "phases": ["chat/sse/rep1", "chat/ws/rep1"],
        },
    )
    rep = report.load(run, n_boot=20)
    paths = report.full_report(rep)
    md = paths["report.md"].read_text()
    assert "phases with no recorded streams: chat/sse/rep1, chat/ws/rep1" in md
    assert md.count("](figures/") == len(report.FIGURES)  # placeholder figures, no crash
    assert "Not measured in this run: the cost model needs" in md


def test_cost_notebook_runs_headless() -> None:
    nb = nbformat.read(NOTEBOOKS_DIR / "cost.ipynb", as_version=4)
    inject_parameters(
        nb,
        {
            "RUN": None,
            "PROFILE": "support-assistant-10k",
            "PLATFORMS": ["aws-apigw-websocket", "aws-lambda"],
            "THINK_TIMES_S": [0, 60, 600],
            "MAUS": [1000, 100000],
            "FREE_TIERS": False,
            "WHAT_IFS": ["tokens_per_message=2"],
        },
    )
    execute(nb, timeout=120)
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 6  # monthly, C2 vs article, ratio, tornado, think time, MAU
