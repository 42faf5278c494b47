"""The one place analysis touches the disk: load a run folder's tables (core.runfolder).

Everything else in analysis is a pure function of the frames held in `RunData`. Loading
applies a proxy's close verdicts to the connection records (analysis.attribution) and the
fault proxy's cuts (analysis.fault_attribution), and adds
a ``group`` column to the streams, connections and resources frames: the analysis group
``<scenario>`` or ``<scenario>.<variant>`` of each row, from its ``scenario`` and
``variant`` columns.

Record schema versions (core.records): this code reads the current version and the ones
in `READABLE_SCHEMA_VERSIONS`; a version 1 run gets its ``scenario`` / ``variant`` /
``rep`` columns from its phase names (analysis.legacy). Once loaded, runs of readable
versions have the same columns and can be compared; any other version is refused with
`SchemaMismatch` and a one-line message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.attribution import attribute_proxy_closes, proxy_closes_of_run
from analysis.fault_attribution import attribute_fault_cuts, fault_rows_of_run
from analysis.legacy import LEGACY_SCHEMA_VERSIONS, phase_columns_from_names
from analysis.manifest import Manifest, group_label
from core.records import SCHEMA_VERSION, TABLES
from core.runfolder import Run, SchemaMismatch, read_run, to_pandas

__all__ = [
    "GROUPED_TABLES",
    "READABLE_SCHEMA_VERSIONS",
    "RunData",
    "SchemaMismatch",
    "as_run_data",
    "check_readable",
    "empty_table",
    "group_rows",
    "load_run",
    "load_runs",
    "with_groups",
]

#: Record schema versions analysis reads (older ones through analysis.legacy).
READABLE_SCHEMA_VERSIONS: tuple[int, ...] = (*LEGACY_SCHEMA_VERSIONS, SCHEMA_VERSION)
#: Tables whose rows carry a phase (and so a group).
GROUPED_TABLES = ("streams", "connections", "resources")
#: Group of rows that belong to a phase whose scenario is not recorded.
UNGROUPED = "all"


def empty_table(name: str) -> pd.DataFrame:
    """A 0-row frame with the columns and (nullable) dtypes of a core.records table."""
    return with_groups(to_pandas(TABLES[name].empty_table()))


def with_groups(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the ``group`` column: ``<scenario>[.<variant>]`` per row; rows of a
    phase without a recorded scenario are in group "all"; rows outside any phase: null."""
    if df is None or "phase" not in df or "scenario" not in df:
        return df
    sc = df["scenario"].astype(object)
    var = df["variant"].astype(object) if "variant" in df else [None] * len(df)
    in_phase = df["phase"].notna().to_numpy(dtype=bool)
    labels: dict[tuple[Any, Any, bool], str | None] = {}
    groups = []
    for s, v, p in zip(sc, var, in_phase, strict=True):
        key = (s if isinstance(s, str) and s else None, v if isinstance(v, str) and v else None, p)
        if key not in labels:
            labels[key] = group_label(key[0], key[1]) or (UNGROUPED if p else None)
        groups.append(labels[key])
    return df.assign(group=pd.Series(groups, index=df.index, dtype=object))


def group_rows(df: pd.DataFrame | None, group: str | None) -> pd.DataFrame | None:
    """Rows of scenario group ``group`` (the ``group`` column); all rows when None."""
    if df is None or df.empty or group is None or "group" not in df:
        return df
    return df[(df["group"].astype(object) == group).to_numpy(dtype=bool)]


def check_readable(runs: Iterable[Mapping[str, Any] | Run | Manifest]) -> list[int]:
    """The schema version of each run; SchemaMismatch (one line, naming the run) when
    one is not readable by this analysis. Readable versions are compatible with each other:
    they load into the same columns."""
    versions = []
    for i, r in enumerate(runs):
        if isinstance(r, Run):
            label, v = r.run_id, r.schema_version
        elif isinstance(r, Manifest):
            label, v = r.run_id or f"#{i}", r.schema_version
        else:
            label, v = str(r.get("run_id", f"#{i}")), r.get("schema_version")
        if v not in READABLE_SCHEMA_VERSIONS:
            readable = ", ".join(str(x) for x in READABLE_SCHEMA_VERSIONS)
            raise SchemaMismatch(
                f"run {label} was recorded with record schema version {v}; this analysis "
                f"reads versions {readable} (re-run it, or analyse it with a matching checkout)"
            )
        versions.append(int(v))
    return versions


@dataclass
class RunData:
    """The four record tables of one run plus its manifest and JSON side files. The
    streams, connections and resources frames carry the schema's current columns (a
    version 1 run's derived) and ``group``."""

    streams: pd.DataFrame = field(default_factory=lambda: empty_table("streams"))
    tokens: pd.DataFrame = field(default_factory=lambda: empty_table("tokens"))
    connections: pd.DataFrame = field(default_factory=lambda: empty_table("connections"))
    resources: pd.DataFrame = field(default_factory=lambda: empty_table("resources"))
    manifest: Manifest = field(default_factory=Manifest)
    server_metrics: Any = None
    path: Path | None = None
    #: Record part files that could not be read (truncated, corrupt): table, part, error.
    unreadable_parts: list[dict[str, str]] = field(default_factory=list)

    @property
    def run_id(self) -> str | None:
        if self.manifest.run_id:
            return self.manifest.run_id
        return self.path.name if self.path is not None else None


def _current_shape(frames: Mapping[str, pd.DataFrame], version: int) -> dict[str, pd.DataFrame]:
    """Frames of a readable version in the current shape, with ``group``."""
    out = {}
    for name, df in frames.items():
        if name in GROUPED_TABLES:
            if version in LEGACY_SCHEMA_VERSIONS:
                df = phase_columns_from_names(df)
            df = with_groups(df)
        out[name] = df
    return out


def _from_run(run: Run) -> RunData:
    (version,) = check_readable([run])
    closes = proxy_closes_of_run(run.manifest, run.path)
    connections, _ = attribute_proxy_closes(run.connections, run.streams, closes)
    faults = fault_rows_of_run(run.manifest, run.path)
    connections, _ = attribute_fault_cuts(connections, run.streams, faults)
    frames = _current_shape(
        {
            "streams": run.streams,
            "tokens": run.tokens,
            "connections": connections,
            "resources": run.resources,
        },
        version,
    )
    return RunData(
        **frames,
        manifest=Manifest.from_json(run.manifest),
        server_metrics=run.json("server_metrics.json"),
        path=run.path,
        unreadable_parts=list(run.unreadable),
    )


def load_run(run_dir: Path | str) -> RunData:
    """Read a run folder; SchemaMismatch if its schema version is not readable."""
    return _from_run(read_run(run_dir))


def load_runs(*run_dirs: Path | str) -> list[RunData]:
    """Several runs for comparison; SchemaMismatch (checked on the manifests before any
    table is read) if one of them has a version this analysis cannot read."""
    runs = [read_run(d) for d in run_dirs]
    check_readable(runs)
    return [_from_run(r) for r in runs]


def as_run_data(source: RunData | Run | Mapping[str, Any] | Path | str) -> RunData:
    """Accept a run folder path, a core.runfolder.Run, a RunData, or a mapping of frames
    (``{"streams": df, "tokens": df, ...}``, optional ``"manifest"`` dict; frames without
    a manifest version are taken to be of the current version)."""
    if isinstance(source, RunData):
        return source
    if isinstance(source, Run):
        return _from_run(source)
    if isinstance(source, str | Path):
        return load_run(source)
    if isinstance(source, Mapping):
        manifest = dict(source.get("manifest") or {})
        manifest.setdefault("schema_version", SCHEMA_VERSION)
        (version,) = check_readable([manifest])
        frames = {name: source[name] for name in TABLES if source.get(name) is not None}
        return RunData(
            **_current_shape(frames, version),
            manifest=Manifest.from_json(manifest),
            server_metrics=source.get("server_metrics"),
        )
    raise TypeError(f"cannot read a run from {type(source).__name__}")
