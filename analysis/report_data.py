"""The object a run report is built from (`Report`: the run's frames, its typed summary
and manifest, and what has been written so far), how it is loaded, and the row selections
every report section shares (a scenario group's streams, tokens…, computed once).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import metrics as M
from analysis.cost_run import DEFAULT_PROFILE as COST_DEFAULT_PROFILE
from analysis.load import RunData, group_rows, load_run
from analysis.manifest import Manifest
from analysis.results import RunSummary
from analysis.summary import summarize

__all__ = [
    "DEFAULT_PROFILE",
    "REPO_ROOT",
    "Report",
    "group_rows",
    "load",
    "resolve_run",
    "scenario_suffix",
]

#: The usage profile a report prices the run with (analysis.cost_run keeps the value).
DEFAULT_PROFILE = COST_DEFAULT_PROFILE
REPO_ROOT = Path(__file__).resolve().parents[1]


def scenario_suffix(group: str | None) -> str:
    return f"scenario {group}" if group else ""


@dataclass
class Report:
    """Everything one report is built from, plus what has been written so far."""

    data: RunData
    summary: RunSummary
    out_dir: Path | None
    title: str
    profile_name: str = DEFAULT_PROFILE
    platforms: Sequence[str] | None = None
    md: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    #: Section keys rendered so far (report.render_section appends).
    sections: list[str] = field(default_factory=list)
    #: Link to the methodology from the report's folder (None: the repository's
    #: docs/methodology.md, relative to ``out_dir``; a published folder has its own copy).
    methods_href: str | None = None
    #: What the publisher noted about the conditions (e.g. the machine's load average
    #: while the run ran), shown with the conditions in the summary.
    notes: list[str] = field(default_factory=list)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def manifest(self) -> Manifest:
        return self.data.manifest

    @property
    def main(self) -> str | None:
        """Scenario group of the headline figures (RunSummary.main_scenario)."""
        return self.summary.main_scenario

    def cached(self, key: str, fn: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def computed(self, key: str) -> Any:
        """What `cached` holds under ``key``, None when it was never computed."""
        return self._cache.get(key)

    def streams(self, group: str | None) -> pd.DataFrame:
        """Per-stream metrics (analysis.metrics.stream_metrics) of one group."""
        return self.cached(
            f"streams:{group}",
            lambda: M.stream_metrics(group_rows(self.data.streams, group), self.data.connections),
        )

    def tokens(self, group: str | None) -> pd.DataFrame:
        """Token rows of the streams of one group."""

        def f() -> pd.DataFrame:
            tk = self.data.tokens
            if group is None or tk.empty:
                return tk
            uids = group_rows(self.data.streams, group)["stream_uid"]
            return tk[tk["stream_uid"].isin(uids)]

        return self.cached(f"tokens:{group}", f)

    def rows(self, table: str, group: str | None) -> pd.DataFrame:
        """Raw rows of ``streams`` / ``connections`` / ``resources`` for one group."""
        return group_rows(getattr(self.data, table), group)


#: What `ssevsws publish` writes into a published folder (analysis.publish).
PUBLISH_MARKER = "publish.json"


def published_run(folder: Path) -> Path | None:
    """The run page folder of a published ``folder`` that holds exactly one run (it has
    the run's manifest.json and summary.json), else None."""
    try:
        info = json.loads((folder / PUBLISH_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    runs = info.get("runs") if isinstance(info, dict) else None
    if not isinstance(runs, list) or len(runs) != 1 or not isinstance(runs[0], dict):
        return None
    path = folder / "runs" / str(runs[0].get("slug"))
    return path if (path / "manifest.json").is_file() else None


def resolve_run(run: str | Path, results: str | Path = "results") -> Path:
    """``latest`` → ``results/latest``; a path as given; a published folder of one run
    (``ssevsws publish``) → that run's folder in it. FileNotFoundError when there is no
    manifest.json there."""
    p = Path(run)
    if str(run) == "latest":
        p = Path(results) / "latest"
    # Jupyter starts a kernel in the notebook's folder: relative paths also resolve
    # against the repository root, where `results/` lives.
    for cand in (p, REPO_ROOT / p) if not p.is_absolute() else (p,):
        if (cand / "manifest.json").is_file():
            return cand.resolve()
        inner = published_run(cand)
        if inner is not None:
            return inner.resolve()
    raise FileNotFoundError(f"no run folder at {p} (no manifest.json)")


def load(
    run: str | Path | RunData,
    out: str | Path | None = None,
    *,
    profile: str = DEFAULT_PROFILE,
    platforms: Sequence[str] | None = None,
    n_boot: int = 1000,
    title: str | None = None,
) -> Report:
    """Load a run and summarise it once. ``out`` (default: the run folder) receives
    report.md, figures/ and summary.json."""
    data = run if isinstance(run, RunData) else load_run(resolve_run(run))
    summary = summarize(data, n_boot=n_boot)
    out_dir = Path(out) if out is not None else data.path
    rid = data.run_id or "run"
    return Report(
        data=data,
        summary=summary,
        out_dir=out_dir,
        title=title or f"SSE vs WebSocket — run {rid}",
        profile_name=profile,
        platforms=list(platforms) if platforms else None,
    )
