"""A static folder of one or more runs that can be dropped on any static host
(`ssevsws publish RUN [RUN…] --out DIR`).

    DIR/
      index.html, index.md        the runs side by side: when and where, the claims'
                                  verdicts, the headline figures per scenario
      methodology.html, .md       the project's docs/methodology.md (definitions, rules)
      compare.csv                 every run × scenario × arm × metric (two runs or more)
      publish.json                what was published, and every file written
      runs/<run>/
        report.html, report.md    the run's report (analysis.sections), figures linked
        figures/*.png
        tables/*.csv              headline figures, ratios, claims, cost tables, capacity
        summary.json, manifest.json

Every link is relative and nothing is fetched from elsewhere (analysis.html). A run page
folder is itself a summary-only run folder: ``ssevsws cost DIR/runs/<run>`` prices it, and
``ssevsws cost DIR`` does too when DIR holds one run.

An output folder that exists and is not empty is refused unless ``force``; with ``force``
the files a previous publish listed in its publish.json are removed first and nothing else
is touched.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import report as RP
from analysis.compare import compare_rows, side_by_side
from analysis.html import write_page
from analysis.load import RunData, check_readable, load_run
from analysis.report_data import PUBLISH_MARKER as MARKER
from analysis.report_data import REPO_ROOT
from analysis.sections.claims import claim_rows
from analysis.sections.cost import cost_items
from analysis.tables import METRICS, md_table
from analysis.verdicts import CLAIMS
from core.runfolder import part_files, read_manifest

__all__ = ["MARKER", "PublishError", "PublishedRun", "publish"]

METHODS_MD = REPO_ROOT / "docs" / "methodology.md"


class PublishError(ValueError):
    """Publishing cannot start (one line saying why): the CLI exits 2."""


@dataclass(frozen=True)
class PublishedRun:
    """One run as published: its folder under ``runs/`` and what the index shows."""

    slug: str
    source: Path
    report: RP.Report
    claims: list[dict[str, Any]]


# --------------------------------------------------------------------------- checks


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise PublishError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise PublishError(
            f"--out {out} exists and is not empty; refusing to overwrite (use --force)"
        )


def _check_runs(runs: Sequence[str | Path]) -> list[Path]:
    if not runs:
        raise PublishError("no run to publish")
    folders = []
    for r in runs:
        try:
            folder = RP.resolve_run(r)
        except FileNotFoundError as exc:
            raise PublishError(str(exc)) from None
        try:
            manifest = read_manifest(folder)
        except (OSError, ValueError) as exc:
            raise PublishError(f"{r}: cannot read manifest.json ({exc})") from None
        try:
            check_readable([manifest])
        except ValueError as exc:  # SchemaMismatch
            raise PublishError(str(exc)) from None
        if not part_files(folder, "streams"):
            raise PublishError(
                f"{r}: no record tables (streams/) — publish rebuilds every figure from a "
                "run's records; a published or sample folder has only its summary"
            )
        folders.append(folder)
    return folders


def _clear_previous(out: Path) -> None:
    """Remove what a previous publish into ``out`` wrote (its publish.json lists it)."""
    marker = out / MARKER
    if not marker.is_file():
        return
    try:
        listed = json.loads(marker.read_text(encoding="utf-8")).get("files") or []
    except (OSError, ValueError):
        listed = []
    for rel in listed:
        path = (out / rel).resolve()
        if out.resolve() in path.parents and path.is_file():
            path.unlink()
    marker.unlink(missing_ok=True)
    for d in sorted((p for p in out.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(d.iterdir()):
            d.rmdir()


def _slugs(folders: Iterable[Path]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for f in folders:
        n = seen.get(f.name, 0)
        seen[f.name] = n + 1
        out.append(f.name if n == 0 else f"{f.name}-{n + 1}")
    return out


# --------------------------------------------------------------------------- one run


def _summary_frames(rep: RP.Report) -> dict[str, pd.DataFrame]:
    """The run's headline figures, ratios, claims and capacity as tidy tables."""
    rows, ratios = [], []
    for g, block in rep.summary.scenarios.items():
        for arm, a in block.arms.items():
            for m in METRICS:
                rows.append(
                    {
                        "scenario": g,
                        "arm": arm,
                        "metric": m.key,
                        "label": m.label,
                        "value": None if m.key in a.invalid else m.get(a),
                        "withheld_because": a.invalid.get(m.key, ""),
                    }
                )
        for pair, entries in block.ratios.items():
            for key, r in entries.items():
                ratios.append({"scenario": g, "pair": pair, "metric": key, **r.to_json()})
    claims = [
        {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in c.items()}
        for c in claim_rows(rep)
    ]
    capacity = [
        {"arm": arm, **{k: v for k, v in a.items() if k not in ("steps", "notes")}}
        for arm, a in (rep.summary.capacity.get("arms") or {}).items()
    ]
    return {
        "summary": pd.DataFrame(rows),
        "ratios": pd.DataFrame(ratios),
        "claims": pd.DataFrame(claims),
        "capacity": pd.DataFrame(capacity),
    }


def _write_tables(rep: RP.Report, folder: Path) -> list[Path]:
    tables = folder / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    frames = _summary_frames(rep)
    for item in cost_items(rep):  # the raw cost tables, full precision
        if item.kind == "table" and isinstance(item.value, pd.DataFrame):
            frames[item.name.removesuffix("_table")] = item.value
    written = []
    for name, df in frames.items():
        if df is not None and len(df.columns):
            path = tables / f"{name}.csv"
            df.to_csv(path, index=False)
            written.append(path)
    return written


def _publish_run(
    source: Path, slug: str, out: Path, profile: str, n_boot: int, notes: Sequence[str]
) -> PublishedRun:
    folder = out / "runs" / slug
    data: RunData = load_run(source)
    rep = RP.load(data, folder, profile=profile, n_boot=n_boot)
    rep.methods_href = "../../methodology.md"
    rep.notes = list(notes)
    RP.full_report(rep)
    shutil.copyfile(source / "manifest.json", folder / "manifest.json")
    _write_tables(rep, folder)
    nav = [("All runs", "../../index.html"), ("Methods", "../../methodology.html")]
    write_page(folder / "report.html", "\n".join(rep.md), rep.title, nav=nav)
    return PublishedRun(slug, source, rep, claim_rows(rep))


# --------------------------------------------------------------------------- the index


def _label(i: int) -> str:
    return f"run {chr(ord('A') + i)}" if i < 26 else f"run {i + 1}"


def _runs_table(runs: Sequence[PublishedRun]) -> str:
    rows = []
    for i, r in enumerate(runs):
        m = r.report.manifest
        rows.append(
            [
                _label(i),
                f"[{r.report.data.run_id or r.slug}](runs/{r.slug}/report.html)",
                (m.created_utc or "?")[:16].replace("T", " "),
                m.host.describe() if m.host else "not recorded",
                m.suite_name or m.scenario_name or "?",
                m.status,
                f"{sum(sc.streams for sc in r.report.summary.scenarios.values()):,}",
                f"[CSV](runs/{r.slug}/tables/summary.csv) · "
                f"[manifest](runs/{r.slug}/manifest.json) · "
                f"[summary.json](runs/{r.slug}/summary.json)",
            ]
        )
    head = ["", "report", "started (UTC)", "machine", "suite", "status", "streams", "data"]
    return md_table(head, rows)


def _claims_table(runs: Sequence[PublishedRun]) -> str:
    rows = []
    for cid, text in CLAIMS.items():
        row = [f"**{cid}** {text}"]
        for r in runs:
            c = next((c for c in r.claims if c["id"] == cid), None)
            row.append(c["status"] if c else "—")
        rows.append(row)
    return md_table(["claim", *(_label(i) for i, r in enumerate(runs))], rows)


def _index_md(runs: Sequence[PublishedRun], notes: Sequence[str]) -> str:
    many = len(runs) > 1
    lines = [
        "# SSE vs WebSocket — published results",
        "",
        "Benchmark runs of token streaming over Server-Sent Events and WebSockets, judged "
        "against the claims of the article under test. Each report starts with its "
        "executive summary; definitions, validity rules and verdict rules are in the "
        "[methodology](methodology.md).",
        "",
        "## Runs",
        "",
        _runs_table(runs),
        *(["", *(f"- Noted when published: {n}" for n in notes)] if notes else []),
        "",
        "## Claims" + (", side by side" if many else ""),
        "",
        _claims_table(runs),
        "",
        "Verdicts per run (each report says which numbers decided them).",
    ]
    labels = [_label(i) for i, r in enumerate(runs)]
    lines += [
        "",
        "## Headline figures" + (", side by side" if many else ""),
        "",
        "Values as the reports print them (`n/a (why)`: withheld by a validity rule; `—`: "
        "not in that run)"
        + (f"; {labels[-1]} ÷ {labels[0]} per arm where both are published." if many else ".")
        + (" All of it as one file: [compare.csv](compare.csv)." if many else ""),
    ]
    for group, table in side_by_side([r.report.summary for r in runs], labels):
        lines += ["", f"### Scenario `{group}`", "", table]
    return "\n".join(lines) + "\n"


def _compare_csv(runs: Sequence[PublishedRun], path: Path) -> None:
    frames = []
    first = runs[0]
    for i, r in enumerate(runs[1:], 1):
        rows = compare_rows(first.report.summary, r.report.summary)
        df = pd.DataFrame(rows).drop(columns=["fmt"])
        frames.append(df.assign(run_a=first.slug, run_b=r.slug, label_b=_label(i)))
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)


def _methods(out: Path) -> None:
    text = METHODS_MD.read_text(encoding="utf-8")
    (out / "methodology.md").write_text(text, encoding="utf-8")
    write_page(
        out / "methodology.html", text, "sse-vs-ws — methodology", nav=[("All runs", "index.html")]
    )


def publish(
    runs: Sequence[str | Path],
    out: str | Path,
    *,
    force: bool = False,
    profile: str = RP.DEFAULT_PROFILE,
    n_boot: int = 1000,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """Publish ``runs`` into ``out`` (see the module docstring); ``notes`` (what the
    publisher knows of the conditions, e.g. the machine's load) go on every page's
    conditions. PublishError before anything is written when a run or the output folder
    cannot be used."""
    out = Path(out)
    folders = _check_runs(runs)
    _check_out(out, force)
    if force and out.is_dir():
        _clear_previous(out)
    out.mkdir(parents=True, exist_ok=True)
    before = {p for p in out.rglob("*") if p.is_file()}
    _methods(out)  # first: the run pages link to it
    published = [
        _publish_run(f, slug, out, profile, n_boot, notes)
        for f, slug in zip(folders, _slugs(folders), strict=True)
    ]
    if len(published) > 1:
        _compare_csv(published, out / "compare.csv")
    index_md = _index_md(published, notes)
    (out / "index.md").write_text(index_md, encoding="utf-8")
    write_page(out / "index.html", index_md, "SSE vs WebSocket — published results")
    written = sorted(
        p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p not in before
    )
    info = {
        "generated_by": "ssevsws publish",
        "notes": list(notes),
        "runs": [
            {"slug": r.slug, "run_id": r.report.data.run_id, "source": str(r.source)}
            for r in published
        ],
        "files": [*written, MARKER],
    }
    (out / MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info
