"""The README's Performance block is the committed full run's perf.json, rendered
(issue 7): regenerate it with `python -m bench.perf.readme` after committing a new run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.perf import readme as R

RUN = R.DEFAULT_RUN


def test_committed_run_is_a_full_run() -> None:
    perf = json.loads((RUN / "perf.json").read_text())
    assert perf["quick"] is False and perf["ratios"]
    assert any(r["n"] == 1000 for r in perf["throughput"])


def test_readme_block_matches_the_committed_perf_json() -> None:
    assert R.main([str(RUN), "--check"]) == 0


def test_splice_replaces_only_the_block(tmp_path: Path) -> None:
    text = f"a\n{R.BEGIN}\nold\n{R.END}\nb\n"
    assert R.splice(text, "new") == f"a\n{R.BEGIN}\nnew\n{R.END}\nb\n"
    with pytest.raises(ValueError, match="no"):
        R.splice("no markers", "x")
    readme = tmp_path / "README.md"
    readme.write_text(text)
    assert R.main([str(RUN), "--readme", str(readme), "--check"]) == 1
    assert R.main([str(RUN), "--readme", str(readme)]) == 0
    assert R.main([str(RUN), "--readme", str(readme), "--check"]) == 0
    assert "| check | value | target | verdict |" in readme.read_text()
