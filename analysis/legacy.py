"""Reading runs recorded with record schema version 1 (core.records' version history).

Version 1 rows carried their scenario, proxy variant and repetition only inside the phase
name ``<scenario>[.<variant>]/<arm>/r<rep>`` (``rep<N>`` in early runs). Version 2 records
them as columns. This module is the one place analysis still reads a phase name: it turns
a version 1 table into the version 2 shape (`phase_columns_from_names`), fills in a
manifest phase entry of an older run that lacks those fields (`phase_identity`), and names
the scenario of a group in a summary.json written before groups carried their traits
(`group_identity`).
"""

from __future__ import annotations

import re

import pandas as pd

__all__ = ["LEGACY_SCHEMA_VERSIONS", "group_identity", "phase_columns_from_names", "phase_identity"]

#: Versions read through this module (the current one needs nothing).
LEGACY_SCHEMA_VERSIONS = (1,)

_REP = re.compile(r"^(?:rep|r)(\d+)$")


def phase_identity(phase: object) -> tuple[str | None, str | None, int | None]:
    """(scenario, variant, rep) of a version 1 phase name; Nones where it says nothing.

    >>> phase_identity("proxy-buffering.direct/sse/r2")
    ('proxy-buffering', 'direct', 2)
    >>> phase_identity("chat/ws/rep1")
    ('chat', None, 1)
    """
    if not isinstance(phase, str) or "/" not in phase:
        return None, None, None
    parts = phase.split("/")
    scenario, _, variant = parts[0].partition(".")
    m = _REP.match(parts[-1]) if len(parts) >= 3 else None
    return scenario or None, variant or None, int(m.group(1)) if m else None


def group_identity(group: str) -> tuple[str, str | None]:
    """(scenario, variant) of an analysis group label ``<scenario>[.<variant>]`` — for a
    summary.json written before groups carried their traits."""
    scenario, _, variant = group.partition(".")
    return scenario, variant or None


def phase_columns_from_names(df: pd.DataFrame) -> pd.DataFrame:
    """A version 1 streams / connections / resources frame with the version 2 columns
    ``scenario``, ``variant``, ``rep`` derived from its ``phase`` column (rows whose phase
    says nothing keep nulls)."""
    if df is None or "phase" not in df:
        return df
    phases = df["phase"].astype(object)
    ids = {p: phase_identity(p) for p in pd.unique(phases) if isinstance(p, str)}
    rows = [
        ids.get(p, (None, None, None)) if isinstance(p, str) else (None, None, None) for p in phases
    ]
    text = df["phase"].dtype  # the frame's own string dtype (what a version 2 table has)
    out = df.copy()
    for i, name in enumerate(("scenario", "variant")):
        out[name] = pd.Series([r[i] for r in rows], index=df.index, dtype=object).astype(text)
    out["rep"] = pd.array([r[2] for r in rows], dtype="Int64")
    return out
