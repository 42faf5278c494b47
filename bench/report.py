"""The short per-phase table `ssevsws run` prints at the end.

`phase_summary` is deliberately the *only* place bench computes figures from the records,
and it does so straight from the parquet with pandas; analysis/metrics.py holds the real
definitions (docs/methodology.md, "Metrics") and can replace it without touching the phase
loop. Its meanings
match those: TTFT = t_first − t_send, ITL = every gap between consecutive content tokens
of a stream in arrival order, errors = streams whose outcome Locust counts as a failure
(anything but ok / cancelled / stopped).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from core.runfolder import read_table

NOT_FAILED = ("ok", "cancelled", "stopped")
COLUMNS = ["phase", "arm", "streams", "tokens", "errors", "ttft_ms_p50", "itl_ms_p50"]


def phase_summary(run_dir: Path | str, phases: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per phase: streams, tokens received, errors, median TTFT and ITL (ms).

    `phases` (phase → arm, in run order) lists phases even when they recorded nothing."""
    s = read_table(
        run_dir,
        "streams",
        columns=["stream_uid", "phase", "arm", "t_send_ns", "t_first_ns", "n_received", "outcome"],
    )
    t = read_table(run_dir, "tokens", columns=["stream_uid", "t_recv_ns"])
    if phases is None:
        phases = dict(zip(s["phase"].astype(object), s["arm"].astype(object), strict=True))
    rows = []
    gaps = pd.Series(dtype="float64")
    if not t.empty and not s.empty:
        t = t.merge(s[["stream_uid", "phase"]], on="stream_uid", how="left")
        t = t.sort_values(["stream_uid", "t_recv_ns"], kind="stable")
        recv = t["t_recv_ns"].to_numpy(dtype=np.float64, na_value=np.nan)
        same = t["stream_uid"].to_numpy(dtype=object)
        gap = np.full(len(t), np.nan)
        if len(t) > 1:
            gap[1:] = np.where(same[1:] == same[:-1], (recv[1:] - recv[:-1]) / 1e6, np.nan)
        gaps = pd.Series(gap, index=t.index).groupby(t["phase"].astype(object)).median()
    for phase, arm in phases.items():
        g = s[s["phase"].astype(object) == phase]
        ttft = (g["t_first_ns"] - g["t_send_ns"]).astype("Float64") / 1e6
        rows.append(
            {
                "phase": phase,
                "arm": arm,
                "streams": len(g),
                "tokens": int(g["n_received"].fillna(0).sum()),
                "errors": int((~g["outcome"].astype(object).isin(NOT_FAILED)).sum()),
                "ttft_ms_p50": float(ttft.median()) if ttft.notna().any() else float("nan"),
                "itl_ms_p50": float(gaps.get(phase, float("nan"))),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def format_summary(df: pd.DataFrame) -> str:
    """Plain fixed-width text (works in logs and pipes; no colour)."""
    if df.empty:
        return "(no phases recorded)"
    out = df.copy()
    for col in ("ttft_ms_p50", "itl_ms_p50"):
        out[col] = out[col].map(lambda v: "-" if pd.isna(v) else f"{v:.1f}")
    out = out.rename(
        columns={"ttft_ms_p50": "TTFT p50 ms", "itl_ms_p50": "ITL p50 ms", "arm": "arm"}
    )
    return out.to_string(index=False)
