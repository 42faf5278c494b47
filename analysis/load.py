"""The one place analysis touches the disk: load a run folder's tables (core.runfolder).

Everything else in analysis is a pure function of the frames held in `RunData`. Loading
applies a proxy's close verdicts to the connection records (analysis.attribution) and the
fault proxy's cuts (analysis.fault_attribution).
A run recorded with another record-schema version than this code's
(core.records.SCHEMA_VERSION) is refused with `SchemaMismatch`, as is a set of runs of
different versions: their columns may not mean the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.attribution import attribute_proxy_closes, proxy_closes_of_run
from analysis.fault_attribution import attribute_fault_cuts, fault_rows_of_run
from core.records import SCHEMA_VERSION, TABLES
from core.runfolder import Run, SchemaMismatch, check_schema, read_run, to_pandas

__all__ = ["RunData", "SchemaMismatch", "as_run_data", "empty_table", "load_run", "load_runs"]


def empty_table(name: str) -> pd.DataFrame:
    """A 0-row frame with the columns and (nullable) dtypes of a core.records table."""
    return to_pandas(TABLES[name].empty_table())


@dataclass
class RunData:
    """The four record tables of one run plus its manifest and JSON side files."""

    streams: pd.DataFrame = field(default_factory=lambda: empty_table("streams"))
    tokens: pd.DataFrame = field(default_factory=lambda: empty_table("tokens"))
    connections: pd.DataFrame = field(default_factory=lambda: empty_table("connections"))
    resources: pd.DataFrame = field(default_factory=lambda: empty_table("resources"))
    manifest: dict[str, Any] = field(default_factory=dict)
    server_metrics: Any = None
    path: Path | None = None

    @property
    def run_id(self) -> str | None:
        rid = self.manifest.get("run_id")
        if rid:
            return str(rid)
        return self.path.name if self.path is not None else None


def _from_run(run: Run) -> RunData:
    check_schema([run], expected=SCHEMA_VERSION)
    closes = proxy_closes_of_run(run.manifest, run.path)
    connections, _ = attribute_proxy_closes(run.connections, run.streams, closes)
    faults = fault_rows_of_run(run.manifest, run.path)
    connections, _ = attribute_fault_cuts(connections, run.streams, faults)
    return RunData(
        streams=run.streams,
        tokens=run.tokens,
        connections=connections,
        resources=run.resources,
        manifest=dict(run.manifest),
        server_metrics=run.json("server_metrics.json"),
        path=run.path,
    )


def load_run(run_dir: Path | str) -> RunData:
    """Read a run folder; SchemaMismatch if it was recorded with another schema version."""
    return _from_run(read_run(run_dir))


def load_runs(*run_dirs: Path | str) -> list[RunData]:
    """Several runs for comparison; SchemaMismatch if their schema versions differ (checked
    on the manifests before any table is read)."""
    runs = [read_run(d) for d in run_dirs]
    check_schema(runs, expected=SCHEMA_VERSION)
    return [_from_run(r) for r in runs]


def as_run_data(source: RunData | Run | Mapping[str, Any] | Path | str) -> RunData:
    """Accept a run folder path, a core.runfolder.Run, a RunData, or a mapping of frames
    (``{"streams": df, "tokens": df, ...}``, optional ``"manifest"``)."""
    if isinstance(source, RunData):
        return source
    if isinstance(source, Run):
        return _from_run(source)
    if isinstance(source, str | Path):
        return load_run(source)
    if isinstance(source, Mapping):
        kw: dict[str, Any] = {}
        for name in TABLES:
            df = source.get(name)
            if df is not None:
                kw[name] = df
        manifest = dict(source.get("manifest") or {})
        version = manifest.get("schema_version")
        if version is not None and version != SCHEMA_VERSION:
            raise SchemaMismatch(
                f"frames recorded with schema version {version}, analysis expects "
                f"{SCHEMA_VERSION}; analysis does not mix schema versions."
            )
        return RunData(**kw, manifest=manifest, server_metrics=source.get("server_metrics"))
    raise TypeError(f"cannot read a run from {type(source).__name__}")
