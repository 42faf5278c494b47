"""Two runs side by side (`ssevsws compare`, notebooks/compare.ipynb): the metrics of
analysis.tables.COMPARE_KEYS per scenario group and arm, value in A, in B, B ÷ A; each
claim's verdict in A and B and the report sections each run has data for (a change of
code or setup that changes a verdict or loses a section shows here); and the TTFT / ITL
CDFs of both headline scenarios overlaid.

Runs of any readable record-schema version can be compared (analysis.load loads them into
the same columns); an unreadable one is refused with SchemaMismatch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import metrics as M
from analysis import plots as P
from analysis.load import RunData, group_rows, load_runs
from analysis.render import emit, emit_figure, write_markdown
from analysis.report_data import Report, resolve_run
from analysis.results import ArmSummary, RunSummary
from analysis.summary import summarize
from analysis.tables import (
    COMPARE_KEYS,
    Metric,
    as_summary,
    fmt,
    md_table,
    metric_cell,
    rows_by_key,
    text_table,
)

__all__ = [
    "COMPARE_HEADER",
    "CompareReport",
    "compare_figures",
    "compare_rows",
    "finish_compare",
    "format_compare",
    "load_compare",
    "section_rows",
    "show_compare",
    "show_verdicts",
    "side_by_side",
    "verdict_rows",
]

COMPARE_HEADER = ("scenario", "arm", "metric", "A", "B", "B/A")


def compare_rows(
    a: RunSummary | Mapping[str, Any],
    b: RunSummary | Mapping[str, Any],
    keys: Sequence[str] = COMPARE_KEYS,
) -> list[dict[str, Any]]:
    """Group × arm × metric rows present in either summary: value in A, in B, B ÷ A.
    Metrics are picked by key (analysis.tables.METRIC)."""
    sa, sb = as_summary(a), as_summary(b)
    metrics = rows_by_key(keys)
    rows = []
    groups = [*sa.scenarios, *(g for g in sb.scenarios if g not in sa.scenarios)]
    for g in groups:
        arms_a = sa.scenarios[g].arms if g in sa.scenarios else {}
        arms_b = sb.scenarios[g].arms if g in sb.scenarios else {}
        for arm in [*arms_a, *(x for x in arms_b if x not in arms_a)]:
            for m in metrics:
                # a figure withheld by a validity rule has no value to compare
                va = m.get(arms_a[arm]) if _published(m, arms_a.get(arm)) else None
                vb = m.get(arms_b[arm]) if _published(m, arms_b.get(arm)) else None
                ratio = vb / va if va not in (None, 0) and vb is not None else None
                rows.append(
                    {
                        "scenario": g,
                        "arm": arm,
                        "key": m.key,
                        "metric": m.label,
                        "a": va,
                        "b": vb,
                        "b_over_a": ratio,
                        "fmt": m.fmt,
                        "a_cell": metric_cell(m, arms_a[arm]) if arm in arms_a else "n/m",
                        "b_cell": metric_cell(m, arms_b[arm]) if arm in arms_b else "n/m",
                    }
                )
    return rows


def _published(m: Metric, arm: ArmSummary | None) -> bool:
    return arm is not None and m.key not in arm.invalid


def side_by_side(
    summaries: Sequence[RunSummary | Mapping[str, Any]],
    labels: Sequence[str],
    keys: Sequence[str] = COMPARE_KEYS,
) -> list[tuple[str, str]]:
    """Any number of runs side by side: per scenario group in any of them, a Markdown
    table of the metrics (rows) × run and arm (columns), the values as the headline tables
    print them (``n/a (why)`` included), and last ÷ first run per arm where both are
    published. Returns ``[(group, table)]``."""
    runs = [as_summary(s) for s in summaries]
    metrics = rows_by_key(keys)
    groups = list(dict.fromkeys(g for s in runs for g in s.scenarios))
    out = []
    for g in groups:
        blocks = [s.scenarios.get(g) for s in runs]
        arms = list(dict.fromkeys(a for b in blocks if b for a in b.arms))
        head = ["metric", *(f"{lbl} {arm}" for lbl in labels for arm in arms)]
        if len(runs) > 1:
            head += [f"{labels[-1]} ÷ {labels[0]} {arm}" for arm in arms]
        rows = []
        for m in metrics:
            row = [m.label]
            for b in blocks:
                row += [metric_cell(m, b.arms[a]) if b and a in b.arms else "—" for a in arms]
            if len(runs) > 1:
                for a in arms:
                    first, last = (b.arms.get(a) if b else None for b in (blocks[0], blocks[-1]))
                    v0 = m.get(first) if first and _published(m, first) else None
                    v1 = m.get(last) if last and _published(m, last) else None
                    row.append(fmt(v1 / v0, "{:.3f}") if v0 and v1 is not None else "—")
            rows.append(row)
        out.append((g, md_table(head, rows)))
    return out


def _cells(r: Mapping[str, Any]) -> list[str]:
    return [
        r["scenario"],
        r["arm"],
        r["metric"],
        r["a_cell"],
        r["b_cell"],
        fmt(r["b_over_a"], "{:.3f}"),
    ]


def format_compare(a: RunSummary | Mapping[str, Any], b: RunSummary | Mapping[str, Any]) -> str:
    """Plain-text side-by-side table of two runs' summaries."""
    sa, sb = as_summary(a), as_summary(b)
    body = [_cells(r) for r in compare_rows(sa, sb)]
    lines = [
        f"A = {sa.run_id} ({sa.status}, schema v{sa.schema_version})",
        f"B = {sb.run_id} ({sb.status}, schema v{sb.schema_version})",
        "",
        *text_table(list(COMPARE_HEADER), body, left=3),
        "",
        "n/m = not measured; B/A = run B ÷ run A.",
    ]
    return "\n".join(lines)


@dataclass
class CompareReport:
    """Two runs (readable schema versions) summarised for a side-by-side report."""

    a: RunData
    b: RunData
    summary_a: RunSummary
    summary_b: RunSummary
    out_dir: Path | None
    md: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)


def load_compare(
    run_a: str | Path, run_b: str | Path, out: str | Path | None = None, *, n_boot: int = 1000
) -> CompareReport:
    """Both runs (SchemaMismatch if one's schema version is not readable); ``out`` defaults
    to B's folder."""
    a, b = load_runs(resolve_run(run_a), resolve_run(run_b))
    return CompareReport(
        a=a,
        b=b,
        summary_a=summarize(a, n_boot=n_boot),
        summary_b=summarize(b, n_boot=n_boot),
        out_dir=Path(out) if out is not None else b.path,
    )


def show_compare(cr: CompareReport) -> None:
    sa, sb = cr.summary_a, cr.summary_b
    lines = [
        f"# Compare: A = {sa.run_id} vs B = {sb.run_id}",
        "",
        md_table(
            ["", "A", "B"],
            [
                ("run", sa.run_id, sb.run_id),
                ("status", sa.status, sb.status),
                ("scenario / suite", sa.scenario_name, sb.scenario_name),
                ("git", cr.a.manifest.git.sha7 or "?", cr.b.manifest.git.sha7 or "?"),
                ("record schema version", sa.schema_version, sb.schema_version),
            ],
        ),
        "",
        "## Main metrics side by side",
        "",
        md_table(COMPARE_HEADER, [_cells(r) for r in compare_rows(sa, sb)]),
        "",
        "B/A = run B ÷ run A; n/m = not measured in that run.",
    ]
    emit(cr, "\n".join(lines))
    show_verdicts(cr)


def _as_report(data: RunData, summary: RunSummary) -> Report:
    return Report(data=data, summary=summary, out_dir=None, title=data.run_id or "run")


def verdict_rows(cr: CompareReport) -> list[list[str]]:
    """Claim id, verdict in A, in B, and "changed" where they differ."""
    from analysis.sections.claims import claim_rows

    va, vb = (
        {str(c["id"]): str(c["status"]) for c in claim_rows(_as_report(d, s))}
        for d, s in ((cr.a, cr.summary_a), (cr.b, cr.summary_b))
    )
    ids = list(dict.fromkeys([*va, *vb]))
    return [
        [i, va.get(i, "—"), vb.get(i, "—"), "changed" if va.get(i) != vb.get(i) else ""]
        for i in ids
    ]


def section_rows(cr: CompareReport) -> list[list[str]]:
    """Every report section, and whether each run has the data it needs."""
    from analysis.sections import SECTIONS

    ra, rb = _as_report(cr.a, cr.summary_a), _as_report(cr.b, cr.summary_b)
    rows = []
    for s in SECTIONS:
        if not s.title:
            continue
        has_a, has_b = s.needs(ra), s.needs(rb)
        yes_no = ["yes" if has else "no" for has in (has_a, has_b)]
        rows.append([s.title, *yes_no, "changed" if has_a != has_b else ""])
    return rows


def show_verdicts(cr: CompareReport) -> None:
    """Claims' verdicts and the report's sections in both runs."""
    emit(
        cr,
        "\n".join(
            [
                "## Claims: verdict in each run",
                "",
                md_table(["claim", "A", "B", ""], verdict_rows(cr)),
                "",
                "## Report sections each run has data for",
                "",
                md_table(["section", "A", "B", ""], section_rows(cr)),
            ]
        ),
    )


def _labelled(df: pd.DataFrame, label: str) -> pd.DataFrame:
    if df is None or df.empty or "arm" not in df:
        return df
    return df.assign(arm=df["arm"].astype(object).astype(str) + f" ({label})")


def compare_figures(cr: CompareReport) -> None:
    """TTFT and ITL CDFs of both runs overlaid (headline scenario of each)."""
    sca, scb = cr.summary_a.main_scenario, cr.summary_b.main_scenario
    st_a, st_b = group_rows(cr.a.streams, sca), group_rows(cr.b.streams, scb)
    sa = _labelled(M.stream_metrics(st_a, cr.a.connections), "A")
    sb = _labelled(M.stream_metrics(st_b, cr.b.connections), "B")
    emit_figure(cr, "compare_ttft_cdf", P.plot_ttft_cdf(pd.concat([sa, sb], ignore_index=True)))
    gaps = []
    for data, streams, label in ((cr.a, st_a, "A"), (cr.b, st_b, "B")):
        g = _labelled(M.token_gaps(data.tokens, streams).dropna(subset=["arm"]), label)
        gaps.append(g.assign(arm=g["arm"].astype(object)) if g is not None and len(g) else g)
    emit_figure(cr, "compare_itl_cdf", P.plot_itl_cdf(pd.concat(gaps, ignore_index=True)))


def finish_compare(cr: CompareReport) -> dict[str, Path]:
    md = write_markdown(cr, "compare.md")
    return {"compare.md": md} if md is not None else {}
