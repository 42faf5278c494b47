"""`ssevsws cost`: tables, C2 side by side, what-ifs, and exit 2 with one line on bad input."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from analysis.cost import PRICING_DIR
from bench.cli import main
from tests.analysis.test_report_synth import make_run

os.environ.setdefault("MPLBACKEND", "Agg")
SAMPLE = Path(__file__).parents[2] / "results" / "sample"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs"), "20260101T000000Z_a_abc1234")


def test_cost_prints_platform_arm_table_with_drivers(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["cost", str(run), "--platform", "aws-apigw-websocket", "--platform", "aws-lambda"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "profile support-assistant-10k" in out and "(records)" in out
    assert "$/1M sessions" in out and "$/conn-hour" in out
    assert "aws-apigw-websocket:messages:" in out  # the usage driving the line
    assert "measured ws:" in out and "B overhead/message" in out
    # C2 next to the article, banded, and the usage that would reproduce its figures
    assert "ours vs the article (SSE $680 → WS $4,100 = 6.03×)" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("* aws-lambda (SSE) vs"))
    assert "far above 6×" in line or "close to 6×" in line
    assert "MAU: WS $4,100" in out


def test_cost_on_the_committed_sample_uses_its_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """results/sample is a published folder of one run without record tables:
    `ssevsws cost` finds the run in it and calibrates from its summary.json."""
    assert (SAMPLE / "publish.json").is_file() and not list(SAMPLE.rglob("*.parquet"))
    assert (
        main(["cost", str(SAMPLE), "--platform", "aws-apigw-websocket", "--platform", "aws-lambda"])
        == 0
    )
    out = capsys.readouterr().out
    assert "(summary)" in out and "C2 per pairing" in out


def test_what_ifs_change_the_bill(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["cost", str(run), "--platform", "aws-apigw-websocket", "--platform", "aws-lambda"]
    assert main(base) == 0
    one = capsys.readouterr().out
    assert main([*base, "--set", "tokens_per_message=4", "--set", "think_s=30"]) == 0
    four = capsys.readouterr().out
    assert "4 token(s) per frame, think 30 s" in four

    def ws_usd(out: str) -> float:
        row = next(ln for ln in out.splitlines() if ln.startswith("aws-apigw-websocket "))
        return float(row.split()[2].replace(",", ""))

    assert ws_usd(four) < ws_usd(one) / 2  # a quarter of the frames


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "vibes=3"], "unknown what-if 'vibes'; known: mau,"),
        (["--set", "think_s=soon"], "not a number"),
        (["--set", "aws-lambda.memory_gb=-1"], "memory_gb = -1.0 is negative"),
        (["--platform", "nope"], "unknown platform 'nope'"),
        (["--profile", "nope"], "profile file not found"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    run: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["cost", str(run), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("usd_per_million_requests = 0.20", "usd_per_million_requests = -5", "is negative"),
        ("usd_per_million_requests = 0.20", "usd_per_million_requests = nan", "is NaN"),
        ("usd_per_million_requests = 0.20", 'usd_per_million_requests = "cheap"', "not a number"),
        ("[prices]", "[prices", "not valid TOML"),
    ],
)
def test_bad_price_files_are_refused(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, message: str
) -> None:
    # issue 11 item 11: a price of −5 printed "$-3,636.20/month" with exit 0
    folder = tmp_path / "pricing"
    shutil.copytree(PRICING_DIR, folder)
    f = folder / "aws-lambda.toml"
    f.write_text(f.read_text().replace(old, new, 1))
    assert main(["cost", str(run), "--pricing-dir", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "aws-lambda.toml" in err and message in err
    assert "$-" not in capsys.readouterr().out


def test_run_without_usage_says_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.runfolder import write_manifest

    empty = tmp_path / "empty"
    empty.mkdir()
    write_manifest(empty, {"run_id": "empty", "status": "incomplete", "phases": []})
    assert main(["cost", str(empty)]) == 2
    assert "no measured usage in this run: no scenario with streams" in capsys.readouterr().err
