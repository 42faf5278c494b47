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
    execute,
    inject_parameters,
    strip_outputs,
)
from analysis.sections import SECTIONS, Fig, figure_names
from analysis.sections.browser import BROWSER
from analysis.sections.network import NETWORK
from analysis.sections.proxy import PROXY_BUFFERING, PROXY_IDLE
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


def test_strip_outputs() -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="x")]
    nb.cells[0].execution_count = 3
    strip_outputs(nb)
    assert nb.cells[0].outputs == [] and nb.cells[0].execution_count is None


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stored_notebooks_have_unique_stable_cell_ids(name: str) -> None:
    """nbformat renames a repeated id at random on every read (and warns): each stored
    notebook has unique ids of its own."""
    cells = json.loads((NOTEBOOKS_DIR / name).read_text(encoding="utf-8"))["cells"]
    ids = [c.get("id") for c in cells]
    assert all(ids) and len(set(ids)) == len(ids), ids
    if name == "report.ipynb":
        assert [f"section-{s.key}" for s in SECTIONS] == [
            i for i in ids if i.startswith("section-")
        ]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One headless `ssevsws report` on the synthetic run (shared: it takes seconds)."""
    from bench.cli import main

    run = make_run(tmp_path_factory.mktemp("runs"))
    assert main(["report", str(run), "--n-boot", "200"]) == 0
    return run


#: The sections the synthetic run has data for: all but the proxy experiments.
SYNTH_SECTIONS = [s for s in SECTIONS if s not in (PROXY_BUFFERING, PROXY_IDLE, BROWSER, NETWORK)]


def test_report_files_and_every_figure(built: Path) -> None:
    html = (built / "report.html").read_text(encoding="utf-8")
    md = (built / "report.md").read_text(encoding="utf-8")
    assert (built / "summary.json").is_file()
    figures = figure_names(SYNTH_SECTIONS)
    # self-contained: every image a data URL (the summary shows five of them again), no
    # script at all, nothing fetched from elsewhere
    images = re.findall(r'<img [^>]*src="([^"]*)"', html)
    assert len(images) >= len(figures) and all(
        s.startswith("data:image/png;base64,") for s in images
    )
    assert "<script" not in html and not re.search(r'(src|href)="(https?:)?//[^"]*\.(css|js)', html)
    assert "def " not in html and "report.show(" not in html  # no code
    assert "run all cells" not in html and "notebook" not in html.lower()  # no notebook notes
    assert "{'" not in html and "{&#x27;" not in html  # no raw dicts
    for name in figures:
        assert f"](figures/{name}.png)" in md, name
        assert (built / "figures" / f"{name}.png").stat().st_size > 1000, name
    assert "proxy_buffering" not in md and "DESIGN" not in md and "DESIGN" not in html
    for cid in ("C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10"):
        assert f"**{cid}**" in md and f"<strong>{cid}</strong>" in html
    assert "not measured in this run" in md  # C3/C4/C7/C9: no proxy scenarios
    assert "## Cost" in md and "### C2: ours vs the article" in md
    assert md.index("## Summary") < md.index("## Latency") < md.index("## Methods")


def test_report_html_opens_in_chromium_images_load_nothing_overflows(built: Path) -> None:
    from tests.analysis.pagecheck import browser_available, check_pages

    ok, why = browser_available()
    if not ok:
        pytest.skip(why)
    for width in (1280, 700):
        (page,) = check_pages(built / "report.html", follow=False, width=width)
        assert page.images >= len(figure_names(SYNTH_SECTIONS)) and not page.broken_images
        assert page.overflow_px <= 0, (width, page.overflow_px)
        assert not page.external_assets


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
    assert {c["id"] for c in summ["claims"]} == {f"C{i}" for i in range(1, 11)}
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
    report.show(rep, "title")
    report.show(rep, "summary")
    report.show(rep, "status")
    st = report.run_status(rep)
    assert st.status == "incomplete"
    assert st.unfinished_phases == ["cancel/ws/rep1 (interrupted)"]
    report.finish(rep)
    md = (run / "report.md").read_text()
    lines = md.splitlines()  # the summary's first line says so
    assert lines[2] == "## Summary"
    assert lines[4] == (
        "Run **incomplete** (interrupted): 10 of 11 planned phase(s) have recorded streams — "
        "this summary covers only what was recorded."
    )
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
    assert rep.sections == ["title", "summary", "status", "run", "headline", "claims", "methods"]
    assert md.count("](figures/") == 0 and "## Cost" not in md  # nothing measured: no figures
    for cid in ("C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10"):
        assert f"| **{cid}** " in md and f"**{cid}** — not measured in this run." in md


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


def test_a_truncated_part_is_named_not_skipped_silently(tmp_path: Path) -> None:
    """Issue 11 item 5: a complete run whose only streams part is cut short must not be
    reported as "complete — 0 phases with recorded streams" while the manifest lists them."""
    from core.runfolder import part_files

    run = make_run(tmp_path)
    (part,) = part_files(run, "streams")
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2])
    rep = report.load(run, n_boot=50)
    report.show(rep, "title")
    report.show(rep, "status")
    st = report.run_status(rep)
    assert [p["part"] for p in st.unreadable_parts] == [f"streams/{part.name}"]
    report.finish(rep)
    md = (run / "report.md").read_text()
    assert "0 phase(s) with recorded streams" not in md
    assert f"only 0 of {st.phases_listed} phase(s) have readable streams" in md
    assert f"could not be read (truncated or corrupt) and were left out: streams/{part.name}" in md


# --------------------------------------------------------------------------- sections


def _sections_of(run: Path) -> tuple[list[str], str, list[dict]]:
    rep = report.load(run, n_boot=20)
    paths = report.full_report(rep)
    return rep.sections, paths["report.md"].read_text(), report.claim_rows(rep)


def test_synthetic_run_gets_every_section_its_data_supports(tmp_path: Path) -> None:
    rendered, md, _ = _sections_of(make_run(tmp_path))
    assert rendered == [s.key for s in SYNTH_SECTIONS]
    for name in figure_names(SYNTH_SECTIONS):
        assert f"](figures/{name}.png)" in md, name
    for title in ("Latency", "Capacity", "Resources", "Reconnects", "Cancels", "Cost", "Claims"):
        assert f"\n## {title}\n" in md, title
    assert (
        "\n## Agent tool chains\n" in md and "\n## Bytes per token by format and transport\n" in md
    )
    # the scripted chains: first token 2 ms (SSE) and 1 ms (WS) after the scheduled 300 ms
    assert "| agent | sse | yes | 1 (+0 cut) |" in md


def test_a_run_without_cancels_has_no_cancel_section(tmp_path: Path) -> None:
    rendered, md, claims = _sections_of(make_run(tmp_path, cancels=False))
    assert "cancel" not in rendered and "## Cancels" not in md
    assert "cancel_outcomes" not in md
    assert next(c for c in claims if c["id"] == "C6")["status"] == "not measured"


def test_sections_follow_the_configuration_not_the_name(tmp_path: Path) -> None:
    # a scenario named "burst" whose users cancel gets the cancel section and C6
    rendered, md, claims = _sections_of(make_run(tmp_path, cancel_name="burst"))
    assert "cancel" in rendered and "## Cancels" in md
    c6 = next(c for c in claims if c["id"] == "C6")
    assert c6["scenario"] == "burst" and c6["status"] == "holds"


def test_every_figure_says_what_to_read_in_it(tmp_path: Path) -> None:
    for s in SECTIONS:
        for b in s.blocks:
            if isinstance(b, Fig):
                assert len(b.caption) > 40, f"{s.key}/{b.name}: no caption"
    rep = report.load(make_run(tmp_path), n_boot=20)
    report.full_report(rep)
    md = "\n".join(rep.md)
    for name in rep.figures:  # every figure of the report, the cost items' too
        after = md[md.rindex(f"](figures/{name}.png)") :].split("\n", 3)  # not the summary
        assert after[2].startswith("*") and len(after[2]) > 40, name


def test_stored_report_notebook_is_generated_from_the_sections() -> None:
    from analysis.report_notebook import report_notebook

    stored = nbformat.read(NOTEBOOKS_DIR / "report.ipynb", as_version=4)
    fresh = report_notebook()
    assert [c.source for c in stored.cells] == [c.source for c in fresh.cells], (
        "run: python -m analysis.report_notebook --write-report-notebook"
    )
    shown = [c.source for c in stored.cells if c.source.startswith("report.show(")]
    assert shown == [f'report.show(rep, "{s.key}");' for s in SECTIONS]


def test_executive_summary_has_a_line_per_contributing_section(tmp_path: Path) -> None:
    rep = report.load(make_run(tmp_path), n_boot=20)
    lines = report.executive_summary(rep)
    assert lines[0] == "Run complete."
    assert any(
        line.startswith("TTFT p50 in scenario chat: sse 300 ms, ws 310 ms") for line in lines
    )
    assert lines[-1].startswith("C1 holds; C2 ")


def test_items_block_renders_tables_texts_and_figures(tmp_path: Path) -> None:
    """A section whose pieces are decided per run (the cost section's pairings)."""
    from dataclasses import dataclass
    from typing import Any

    from analysis import plots as P
    from analysis.sections import Items, Section, render_section

    @dataclass(frozen=True)
    class Piece:
        name: str
        title: str
        kind: str
        value: Any
        caption: str = ""

    def produce(rep: report.Report) -> list[Piece]:
        table = pd.DataFrame({"pairing": ["a", "b"], "WS/SSE": ["2.0×", "7.5×"]})
        return [
            Piece("t", "Ratios", "table", table, "read the second column"),
            Piece("p", "", "text", "Plain words."),
            Piece("fig_x", "A figure", "figure", P.not_measured("x"), "what to see"),
        ]

    rep = report.load(make_run(tmp_path), tmp_path / "out", n_boot=20)
    section = Section("x", "Pieces", lambda rep: True, "always", (Items("pieces", produce),))
    assert render_section(rep, section)
    md = "\n".join(rep.md)
    assert "### Ratios\n\n| pairing | WS/SSE |\n|---|---|\n| a | 2.0× |" in md
    assert "*read the second column*" in md and "Plain words." in md
    assert "![fig x](figures/fig_x.png)\n\n*what to see*" in md and rep.figures == ["fig_x"]
    assert (tmp_path / "out" / "figures" / "fig_x.png").is_file()


def test_banner_states_run_status_and_each_failed_or_skipped_phase(tmp_path: Path) -> None:
    """The runner's phase outcomes (status ok/failed/timeout/skipped/interrupted with a
    reason; run status + status_reason) are the report's first lines."""
    from core.runfolder import modify_manifest

    run = make_run(tmp_path)

    def outcomes(m: dict) -> None:
        m.update(status="failed", status_reason="2 phase(s) did not finish")
        m["phases"][2].update(status="timeout", reason="locust exceeded its hard timeout")
        m["phases"][3].update(status="failed", failure_reason="locust exit code 2")
        m["phases"].append(
            {"name": "proxy-idle.idle-hb/sse/r1", "status": "skipped", "reason": "no nginx"}
        )

    modify_manifest(run, outcomes)
    rep = report.load(run, n_boot=20)
    report.show(rep, "title")
    report.show(rep, "status")
    lines = "\n".join(rep.md).splitlines()
    assert lines[4] == (
        "**failed** (2 phase(s) did not finish): this report covers only what the run "
        "flushed before it stopped."
    )
    assert lines[5] == (
        "- phases that did not finish: ramp/sse/rep1 (timeout: locust exceeded its hard "
        "timeout), ramp/ws/rep1 (failed: locust exit code 2)"
    )
    assert lines[6] == (
        "- phases skipped (not run, not faked): proxy-idle.idle-hb/sse/r1 (skipped: no nginx)"
    )
    assert report.executive_summary(rep)[0] == "Run failed; 3 phase(s) failed or skipped."


def test_banner_counts_failed_streams_under_the_threshold(tmp_path: Path) -> None:
    """A phase that ends complete with failures under max_error_share still shows them in
    the report's first lines (a failed measurement is never silent)."""
    from core.runfolder import modify_manifest

    run = make_run(tmp_path)

    def outcomes(m: dict) -> None:
        m["phases"][0]["stream_check"] = {"rows": 200, "failed_streams": 1, "max_error_share": 0.01}
        m["phases"][1]["stream_check"] = {"rows": 200, "failed_streams": 0, "max_error_share": 0.01}

    modify_manifest(run, outcomes)
    rep = report.load(run, n_boot=20)
    st = report.run_status(rep)
    name = rep.manifest.phases[0].name
    assert st.phases_with_failed_streams == [
        f"{name}: 1 of 200 streams failed (0.5 %, allowed 1 %)"
    ]
    report.show(rep, "status")
    assert any("phases with failed streams" in line and name in line for line in rep.md)
