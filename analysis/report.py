"""The run report: what `notebooks/report.ipynb` and `ssevsws report` call.

A report is the list `analysis.sections.SECTIONS` rendered in order for one run: each
section that has the data it needs writes its text, tables and figures — shown in the
notebook cell (which becomes ``report.html``) and appended to ``report.md`` (figures saved
under ``figures/``), so both say the same numbers. `finish` writes ``report.md`` and
``summary.json``.

    from analysis import report
    rep = report.load("results/latest")
    report.show(rep, "status"); report.show(rep, "latency"); ...   # one notebook cell each
    report.finish(rep)
    # or, without a notebook:
    report.full_report(rep)

Outside a notebook nothing is displayed; the files are still written. The cost section
uses the run's measured usage per arm (analysis.sections.cost.cost_inputs) to calibrate the
cost model, then scales it to a usage profile (default `DEFAULT_PROFILE`). Side-by-side
comparison of two runs: analysis.compare.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from analysis.compare import (
    COMPARE_HEADER,
    CompareReport,
    compare_figures,
    compare_rows,
    finish_compare,
    format_compare,
    load_compare,
    show_compare,
)
from analysis.load import load_run
from analysis.render import emit, emit_figure, show_md, write_markdown
from analysis.report_data import DEFAULT_PROFILE, Report, load, resolve_run
from analysis.sections import SECTIONS, applicable, executive_summary, render_section, section
from analysis.sections.claims import claim_rows
from analysis.sections.cost import CostInputs, cost_inputs
from analysis.sections.run import RunStatus, run_status
from analysis.tables import md_table, summary_markdown

__all__ = [
    "COMPARE_HEADER",
    "DEFAULT_PROFILE",
    "SECTIONS",
    "CompareReport",
    "CostInputs",
    "Report",
    "RunStatus",
    "applicable",
    "build_compare",
    "build_report",
    "claim_rows",
    "compare_figures",
    "compare_rows",
    "cost_inputs",
    "emit",
    "emit_figure",
    "executive_summary",
    "finish",
    "finish_compare",
    "format_compare",
    "full_report",
    "load",
    "load_compare",
    "load_run",
    "md_table",
    "resolve_run",
    "run_status",
    "show",
    "show_compare",
    "show_md",
    "summary_markdown",
]


def show(rep: Report, key: str) -> bool:
    """Render the section named ``key`` (a notebook cell does one); False when this run
    does not have the data it needs."""
    return render_section(rep, section(key))


def finish(rep: Report) -> dict[str, Path]:
    """Write report.md and summary.json (with the claims) into the output folder."""
    md = write_markdown(rep, "report.md")
    if md is None or rep.out_dir is None:
        return {}
    summ: dict[str, Any] = rep.summary.to_json()
    if rep.computed("claims") is not None:
        summ["claims"] = rep.computed("claims")
    sj = rep.out_dir / "summary.json"
    sj.write_text(json.dumps(summ, indent=2, default=str) + "\n", encoding="utf-8")
    return {"report.md": md, "summary.json": sj}


def full_report(rep: Report) -> dict[str, Path]:
    """Every section this run has the data for, in order (what report.ipynb does, for use
    without a notebook)."""
    for s in SECTIONS:
        render_section(rep, s)
    return finish(rep)


def build_report(run: str | Path, out: str | Path | None = None, **kw: Any) -> dict[str, Path]:
    """Execute report.ipynb headless → report.html, report.md, figures/, summary.json."""
    from analysis.report_notebook import build_report as _build

    return _build(run, out, **kw)


def build_compare(
    run_a: str | Path, run_b: str | Path, out: str | Path | None = None, **kw: Any
) -> dict[str, Path]:
    """Execute compare.ipynb headless → compare.html, compare.md, figures/compare_*.png."""
    from analysis.report_notebook import build_compare as _build

    return _build(run_a, run_b, out, **kw)
