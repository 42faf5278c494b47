"""`ssevsws publish`: a static folder of runs that works from any static host — opened in
the project's Chromium (every link leads somewhere, every image loads, no page wider than
the window, nothing fetched from elsewhere) — and that never overwrites silently."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from bench.cli import main
from tests.analysis.pagecheck import browser_available, check_pages
from tests.analysis.test_report_synth import make_run

os.environ.setdefault("MPLBACKEND", "Agg")

BROWSER_OK, BROWSER_WHY = browser_available()
if not BROWSER_OK:
    print(
        f"tests/analysis/test_publish.py: Chromium checks skipped: {BROWSER_WHY}", file=sys.stderr
    )
needs_browser = pytest.mark.skipif(not BROWSER_OK, reason=BROWSER_WHY)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs — another machine, another day — published together."""
    root = tmp_path_factory.mktemp("runs")
    a = make_run(root, "20260101T000000Z_suite_abc1234")
    b = make_run(root, "20260202T000000Z_suite_def5678", ws_ttft_ms=330.0)

    def other_machine(m: dict) -> None:
        m["host"] = {"cpu_model": "Other CPU", "logical_cores": 8, "memory_bytes": 2**34}

    from core.runfolder import modify_manifest

    modify_manifest(b, other_machine)
    out = tmp_path_factory.mktemp("pub") / "site"
    note = "machine load average 1.5 before, 2.5 after"
    assert (
        main(["publish", str(a), str(b), "--out", str(out), "--n-boot", "50", "--note", note]) == 0
    )
    return out


def test_the_folder_has_every_part(site: Path) -> None:
    for rel in ("index.html", "index.md", "methodology.html", "methodology.md", "compare.csv"):
        assert (site / rel).is_file(), rel
    info = json.loads((site / "publish.json").read_text())
    slugs = [r["slug"] for r in info["runs"]]
    assert slugs == ["20260101T000000Z_suite_abc1234", "20260202T000000Z_suite_def5678"]
    for slug in slugs:
        run = site / "runs" / slug
        for rel in ("report.html", "report.md", "summary.json", "manifest.json"):
            assert (run / rel).is_file(), rel
        for table in ("summary", "ratios", "claims", "cost_c2", "cost_monthly"):
            assert (run / "tables" / f"{table}.csv").stat().st_size > 50, table
        assert len(list((run / "figures").glob("*.png"))) >= 10
    listed = set(info["files"])
    on_disk = {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}
    assert listed == on_disk  # publish.json names every file it wrote, nothing else


def test_the_index_compares_the_runs_side_by_side(site: Path) -> None:
    md = (site / "index.md").read_text()
    a = "20260101T000000Z_suite_abc1234"
    assert f"| run A | [{a}](runs/{a}/report.html)" in md
    assert "Other CPU 8 cores" in md  # the second machine
    note = "Noted when published: machine load average 1.5 before, 2.5 after"
    assert note in md
    for run in (site / "runs").iterdir():  # and with every run's conditions
        assert f"**{note.replace(':', '**:', 1)}" in (run / "report.md").read_text()
    assert "| claim | run A | run B |" in md
    # the WS arm's TTFT p50, 310 ms in A and 330 ms in B: B ÷ A = 1.065
    chat = md[md.index("### Scenario `chat`") :]
    ttft = next(line for line in chat.splitlines() if line.startswith("| TTFT p50 ms |"))
    assert ttft == "| TTFT p50 ms | 300.0 | 310.0 | 300.0 | 330.0 | 1.000 | 1.065 |"
    html = (site / "index.html").read_text()
    assert "<script" not in html and 'href="methodology.html"' in html


@needs_browser
def test_published_folder_opens_in_chromium_with_working_links_and_images(site: Path) -> None:
    pages = check_pages(site / "index.html")
    names = {p.path.relative_to(site).as_posix() for p in pages}
    assert names == {
        "index.html",
        "methodology.html",
        "runs/20260101T000000Z_suite_abc1234/report.html",
        "runs/20260202T000000Z_suite_def5678/report.html",
    }
    for p in pages:
        where = p.path.relative_to(site)
        assert not p.broken_images, (where, p.broken_images)
        assert not p.broken_links, (where, p.broken_links)
        assert not p.external_assets and not p.absolute_links, where
        assert p.overflow_px <= 0, (where, p.overflow_px)
        if p.path.name == "report.html":
            assert p.images >= 15, where  # every figure of the run, loaded from figures/
    # a narrow window: tables scroll in their box, the page does not
    narrow = check_pages(site / "runs/20260101T000000Z_suite_abc1234/report.html", width=700)
    assert narrow[0].overflow_px <= 0


def test_a_non_empty_out_is_refused_unless_forced(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_run(tmp_path / "runs")
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert main(["publish", str(run), "--out", str(out), "--n-boot", "20"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"ssevsws: --out {out} exists and is not empty; refusing to overwrite (use --force)"
    )
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]  # nothing written
    assert main(["publish", str(run), "--out", str(out), "--force", "--n-boot", "20"]) == 0
    first = json.loads((out / "publish.json").read_text())["files"]
    # publishing another run over it removes what the first publish wrote, nothing else
    other = make_run(tmp_path / "more", "20270101T000000Z_suite_fff0000")
    assert main(["publish", str(other), "--out", str(out), "--force", "--n-boot", "20"]) == 0
    assert (out / "mine.txt").read_text() == "keep me"
    assert not (out / "runs" / run.name).exists()
    assert any(f.startswith(f"runs/{run.name}/") for f in first)
    assert (out / "runs" / other.name / "report.html").is_file()


def test_clear_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["publish", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "no run folder at" in capsys.readouterr().err
    summary_only = make_run(tmp_path / "runs")
    for table in ("streams", "tokens", "connections", "resources"):
        for part in (summary_only / table).glob("*"):
            part.unlink()
    assert main(["publish", str(summary_only), "--out", str(out)]) == 2
    assert "no record tables (streams/)" in capsys.readouterr().err
    assert not out.exists()  # refused before anything was written
    with pytest.raises(SystemExit) as exc:  # no run at all: argparse's usage error
        main(["publish", "--out", str(out)])
    assert exc.value.code == 2


def test_a_published_run_is_a_run_folder_for_cost(tmp_path: Path, capsys) -> None:
    """`ssevsws cost DIR` prices the one run of a published folder from its summary."""
    run = make_run(tmp_path / "runs")
    out = tmp_path / "pub"
    assert main(["publish", str(run), "--out", str(out), "--n-boot", "20"]) == 0
    capsys.readouterr()
    assert (
        main(["cost", str(out), "--platform", "aws-apigw-websocket", "--platform", "aws-lambda"])
        == 0
    )
    text = capsys.readouterr().out
    assert "usage measured in scenario 'chat' (summary)" in text


@needs_browser
def test_the_committed_sample_opens_in_chromium() -> None:
    """results/sample as committed (`make sample` regenerates it) is a published folder
    whose pages, links and images all work from the disk."""
    sample = Path(__file__).resolve().parents[2] / "results" / "sample"
    pages = check_pages(sample / "index.html")
    assert {p.path.name for p in pages} == {"index.html", "methodology.html", "report.html"}
    for p in pages:
        assert not (p.broken_images or p.broken_links or p.external_assets), p
        assert p.overflow_px <= 0, p
