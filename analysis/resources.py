"""Resource figures (docs/methodology.md, "Resources") from the sampled `resources` table.

* Server CPU-seconds per 1k tokens: per (phase, arm), for every sampled server process
  the increase of its cumulative ``cpu_user_s + cpu_sys_s`` from its first to its last
  sample in the phase, summed over processes, ÷ tokens delivered in the same time window
  × 1000. Tokens are counted by ``t_recv_ns`` inside ``[first sample, last sample]`` when
  the tokens table is given (same window as the CPU delta); otherwise Σ n_received of the
  phase's streams (flagged ``tokens_source="streams"``: CPU spent before the first or after
  the last sample is then missing while its tokens are counted, so the figure is low by up
  to one sampling interval per phase).
* RSS per open connection: least-squares slope of ``rss_bytes`` against ``connections``
  over the samples of each server process (so processes and restarts do not mix), combined
  over processes weighted by samples. Needs the connection count to vary (a ramp or an
  idle-hold phase); otherwise NaN.
* Client CPU (pitfall 6): per phase, max and median ``cpu_pct`` over every client sample
  (100 = one core; a Locust worker is one core), the share of samples above the threshold,
  and ``flag`` when that share is at least `min_share` — so one start-up spike does not
  flag a phase, a sustained overload does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.metrics import column, group_keys
from analysis.stats import finite

CLIENT_CPU_THRESHOLD = 90.0
CLIENT_CPU_MIN_SHARE = 0.10


def role_rows(resources: pd.DataFrame, role: str) -> pd.DataFrame:
    """The samples of one process role (server, client, nginx…)."""
    if resources is None or resources.empty or "role" not in resources:
        return pd.DataFrame(columns=list(resources.columns) if resources is not None else [])
    return resources[resources["role"].astype(object) == role]


def server_cpu(
    resources: pd.DataFrame,
    streams: pd.DataFrame | None = None,
    tokens: pd.DataFrame | None = None,
    *,
    by: str | Sequence[str] = ("phase", "arm"),
    role: str = "server",
) -> pd.DataFrame:
    """Server CPU-seconds and CPU-seconds per 1k tokens per group (see module docstring).

    Columns: ``<by…>, processes, samples, t_start_ns, t_end_ns, cpu_s, tokens,
    tokens_source, cpu_s_per_1k_tokens``.
    """
    keys = group_keys(by)
    cols = [
        *keys,
        "processes",
        "samples",
        "t_start_ns",
        "t_end_ns",
        "cpu_s",
        "tokens",
        "tokens_source",
        "cpu_s_per_1k_tokens",
    ]
    srv = role_rows(resources, role)
    if srv.empty:
        return pd.DataFrame(columns=cols)
    srv = srv.assign(
        _cpu=column(srv, "cpu_user_s").to_numpy(dtype=np.float64, na_value=np.nan)
        + column(srv, "cpu_sys_s").to_numpy(dtype=np.float64, na_value=np.nan),
        _t=srv["t_ns"].to_numpy(dtype=np.int64),
    ).sort_values("_t", kind="stable")
    tok_t = tok_code = None
    group_code: dict[tuple, int] = {}
    if tokens is not None and streams is not None and not tokens.empty and not streams.empty:
        lab = streams.drop_duplicates("stream_uid")
        codes = lab.groupby(keys, observed=True, sort=False, dropna=False).ngroup().to_numpy()
        for code, key in zip(codes, lab[keys].astype(object).itertuples(index=False), strict=True):
            group_code.setdefault(tuple(key), int(code))
        pos = pd.Index(lab["stream_uid"].astype(object)).get_indexer(
            tokens["stream_uid"].astype(object)
        )
        tok_code = np.where(pos >= 0, codes[np.maximum(pos, 0)], -1)
        tok_t = tokens["t_recv_ns"].to_numpy(dtype=np.int64, na_value=-1)
    rows = []
    for key, grp in srv.groupby(keys, observed=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        per_pid = grp.groupby("pid", observed=True)["_cpu"].agg(["first", "last", "size"])
        cpu = float((per_pid["last"] - per_pid["first"]).sum())
        t0, t1 = int(grp["_t"].min()), int(grp["_t"].max())
        n_tok, source = math.nan, "none"
        if tok_t is not None and tok_code is not None:
            in_group = tok_code == group_code.get(tuple(key), -2)
            n_tok = float(((tok_t >= t0) & (tok_t <= t1) & in_group).sum())
            source = "tokens"
        elif streams is not None and not streams.empty and all(k in streams for k in keys):
            mask = np.ones(len(streams), dtype=bool)
            for k, v in zip(keys, key, strict=True):
                mask &= (streams[k].astype(object) == v).to_numpy(dtype=bool)
            n_tok = float(finite(streams.loc[mask, "n_received"]).sum())
            source = "streams"
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "processes": len(per_pid),
                "samples": len(grp),
                "t_start_ns": t0,
                "t_end_ns": t1,
                "cpu_s": cpu,
                "tokens": n_tok,
                "tokens_source": source,
                "cpu_s_per_1k_tokens": cpu / n_tok * 1000.0 if n_tok and n_tok > 0 else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=cols)


def linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares ``y = slope·x + intercept``; returns (slope, intercept, r²), NaN when x
    has no spread or fewer than 3 points."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.ptp(x) == 0:
        return math.nan, math.nan, math.nan
    xm, ym = x.mean(), y.mean()
    sxx = float(((x - xm) ** 2).sum())
    sxy = float(((x - xm) * (y - ym)).sum())
    slope = sxy / sxx
    intercept = float(ym - slope * xm)
    ss_res = float(((y - (slope * x + intercept)) ** 2).sum())
    ss_tot = float(((y - ym) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan
    return slope, intercept, r2


def rss_per_connection(
    resources: pd.DataFrame, *, by: str | Sequence[str] = "arm", role: str = "server"
) -> pd.DataFrame:
    """RSS bytes per open connection (slope) per group; see module docstring.

    Columns: ``<by…>, processes, samples, conn_min, conn_max, rss_bytes_per_conn,
    kib_per_conn, baseline_rss_bytes (intercept, summed over processes), r2 (sample-weighted
    mean)``.
    """
    keys = group_keys(by)
    cols = [
        *keys,
        "processes",
        "samples",
        "conn_min",
        "conn_max",
        "rss_bytes_per_conn",
        "kib_per_conn",
        "baseline_rss_bytes",
        "r2",
    ]
    srv = role_rows(resources, role)
    if srv.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for key, grp in srv.groupby(keys, observed=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        slopes, weights, icpts, r2s = [], [], [], []
        for _, p in grp.groupby("pid", observed=True):
            x = column(p, "connections").to_numpy(dtype=np.float64, na_value=np.nan)
            y = column(p, "rss_bytes").to_numpy(dtype=np.float64, na_value=np.nan)
            s, i, r2 = linear_fit(x, y)
            if math.isfinite(s):
                slopes.append(s)
                weights.append(int(np.isfinite(x).sum()))
                icpts.append(i)
                r2s.append(r2)
        conn = finite(column(grp, "connections"))
        w = np.asarray(weights, dtype=np.float64)
        slope = float(np.average(slopes, weights=w)) if slopes else math.nan
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "processes": int(grp["pid"].nunique()),
                "samples": len(grp),
                "conn_min": float(conn.min()) if conn.size else math.nan,
                "conn_max": float(conn.max()) if conn.size else math.nan,
                "rss_bytes_per_conn": slope,
                "kib_per_conn": slope / 1024.0,
                "baseline_rss_bytes": float(np.sum(icpts)) if icpts else math.nan,
                "r2": float(np.nanmean(r2s)) if r2s and np.isfinite(r2s).any() else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=cols)


def client_cpu(
    resources: pd.DataFrame,
    *,
    by: str | Sequence[str] = ("phase", "arm"),
    role: str = "client",
    threshold: float = CLIENT_CPU_THRESHOLD,
    min_share: float = CLIENT_CPU_MIN_SHARE,
) -> pd.DataFrame:
    """Client (load generator) CPU per group: processes, samples, cpu_pct_max,
    cpu_pct_median, share_over (samples above `threshold`), flag (share ≥ `min_share`)."""
    keys = group_keys(by)
    cols = [
        *keys,
        "processes",
        "samples",
        "cpu_pct_max",
        "cpu_pct_median",
        "share_over",
        "flag",
    ]
    cli = role_rows(resources, role)
    if cli.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for key, grp in cli.groupby(keys, observed=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        pct = finite(column(grp, "cpu_pct"))
        share = float((pct > threshold).mean()) if pct.size else math.nan
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "processes": int(grp["pid"].nunique()),
                "samples": int(pct.size),
                "cpu_pct_max": float(pct.max()) if pct.size else math.nan,
                "cpu_pct_median": float(np.median(pct)) if pct.size else math.nan,
                "share_over": share,
                "flag": bool(pct.size and share >= min_share),
            }
        )
    return pd.DataFrame(rows, columns=cols)
