"""Percentiles with sample-count gating, bootstrap confidence intervals, ratios, repetitions.

Gating (docs/methodology.md, "Percentiles, intervals and ratios": below 72 samples no p95,
below 368 no p99). Those two numbers are
the smallest n for which the sample maximum is a 97.5 % upper confidence bound of the
quantile, i.e. ``1 - q**n >= 0.975``: only then does a distribution-free 95 % interval
for the q-quantile exist at all. `min_samples` applies the same rule to every quantile
(p50 needs 6 samples, p90 36, p95 72, p99 368), so a percentile is reported only when the
data can support it; otherwise it is NaN (rendered "n/a") and the sample count is always
given beside it.

Bootstrap: percentile bootstrap, seeded, vectorised. Large samples (millions of ITL gaps)
are handled as an *m-out-of-n* bootstrap: an m-sized subsample is resampled and the
deviations from its estimate are scaled by ``sqrt(m / n)`` before being added to the
full-sample estimate (valid for quantiles; with m = n it is the plain percentile
bootstrap). Token-level samples are correlated within a stream; pass ``groups`` (e.g. the
stream of each gap) to resample whole streams instead of single values (cluster
bootstrap), which gives honest, wider intervals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

#: Percentiles reported in every summary table.
PERCENTILES: tuple[int, ...] = (50, 90, 95, 99)
#: One-sided error of the order-statistic bound behind `min_samples` (two-sided 95 %).
_GATE_ALPHA = 0.025
#: Resamples done at once (bounds memory: chunk × m indices).
_CHUNK_ELEMENTS = 4_000_000


def min_samples(q: float) -> int:
    """Fewest samples for which the q-quantile (0 < q < 1, or 1..99 as percent) is reported.

    ``ceil(ln 0.025 / ln q)``: 6 for p50, 36 for p90, 72 for p95, 368 for p99.
    """
    q = _as_fraction(q)
    if q <= 0.5:
        q = 1.0 - q if q > 0 else 0.5  # symmetric: the lower tail needs as many
    return math.ceil(math.log(_GATE_ALPHA) / math.log(q) - 1e-9)


def _as_fraction(q: float) -> float:
    q = float(q)
    if q > 1.0:
        q /= 100.0
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile must be in (0, 1) or (0, 100) as percent, not {q!r}")
    return q


def finite(values: Any) -> np.ndarray:
    """Values as a float64 array without NaN/None/inf (pandas NA included)."""
    if isinstance(values, pd.Series | pd.Index):
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        arr = np.asarray(values, dtype=np.float64)
    arr = arr.ravel()
    return arr[np.isfinite(arr)]


def gated_percentile(values: Any, q: float) -> float:
    """The q-th percentile (linear interpolation) or NaN if there are too few samples."""
    x = finite(values)
    if x.size < min_samples(q):
        return math.nan
    return float(np.percentile(x, _as_fraction(q) * 100.0))


def describe(values: Any, percentiles: Sequence[int] = PERCENTILES) -> dict[str, float | int]:
    """``{"n", "mean", "p50", "p90", "p95", "p99"}`` with gated percentiles (NaN if not allowed).

    n counts finite values only; mean is NaN for an empty sample.
    """
    x = finite(values)
    out: dict[str, float | int] = {
        "n": int(x.size),
        "mean": float(x.mean()) if x.size else math.nan,
    }
    if x.size:
        allowed = [p for p in percentiles if x.size >= min_samples(p)]
        vals = np.percentile(x, allowed) if allowed else []
        got = dict(zip(allowed, vals, strict=True))
    else:
        got = {}
    for p in percentiles:
        out[f"p{p}"] = float(got[p]) if p in got else math.nan
    return out


def summary_table(
    df: pd.DataFrame,
    column: str,
    by: str | Sequence[str] = "arm",
    percentiles: Sequence[int] = PERCENTILES,
) -> pd.DataFrame:
    """`describe` of ``df[column]`` per group: columns n, mean, p50, p90, p95, p99."""
    keys = [by] if isinstance(by, str) else list(by)
    cols = ["n", "mean", *(f"p{p}" for p in percentiles)]
    if df.empty or column not in df:
        return pd.DataFrame(columns=[*keys, *cols])
    rows = []
    for key, grp in df.groupby(keys, sort=True, observed=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(keys, key, strict=True)), **describe(grp[column], percentiles)})
    out = pd.DataFrame(rows, columns=[*keys, *cols])
    out["n"] = out["n"].astype("int64")
    return out


# --------------------------------------------------------------------------- bootstrap


def _resample_quantiles(x: np.ndarray, qs: np.ndarray, n_boot: int, rng: np.random.Generator):
    """(len(qs), n_boot) quantiles of plain resamples of x."""
    m = x.size
    chunk = max(1, _CHUNK_ELEMENTS // max(m, 1))
    out = np.empty((qs.size, n_boot))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx = rng.integers(0, m, size=(b, m))
        out[:, start : start + b] = np.quantile(x[idx], qs, axis=1)
    return out


def _cluster_quantiles(
    x: np.ndarray, groups: np.ndarray, qs: np.ndarray, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """(len(qs), n_boot) quantiles when whole groups are resampled with replacement.

    A cluster resample gives every value of group g the weight c_g ~ Multinomial(G, 1/G);
    the weighted quantile (inverted-CDF) of the sorted values is read off cumulative
    weights, so no resample is materialised.
    """
    _, inv = np.unique(groups, return_inverse=True)
    g = int(inv.max()) + 1
    order = np.argsort(x, kind="stable")
    xs, gs = x[order], inv[order]
    chunk = max(1, _CHUNK_ELEMENTS // max(xs.size, 1))
    out = np.empty((qs.size, n_boot))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        counts = rng.multinomial(g, np.full(g, 1.0 / g), size=b).astype(np.int32)  # (b, g)
        cw = np.cumsum(counts[:, gs], axis=1, dtype=np.int32)  # (b, m) cumulative weights
        total = cw[:, -1].astype(np.float64)
        for j, q in enumerate(qs):
            # first sorted position whose cumulative weight reaches q·total (inverted CDF)
            targets = q * total
            pos = np.fromiter(
                (np.searchsorted(cw[i], targets[i], "left") for i in range(b)),
                dtype=np.int64,
                count=b,
            )
            out[j, start : start + b] = xs[np.minimum(pos, xs.size - 1)]
    return out


def bootstrap_quantiles(
    values: Any,
    qs: Sequence[float] | float = 0.5,
    *,
    groups: Any = None,
    n_boot: int = 1000,
    conf: float = 0.95,
    seed: int = 0,
    max_n: int = 10_000,
) -> pd.DataFrame:
    """Quantile estimates with bootstrap confidence intervals.

    Returns one row per quantile: ``q, estimate, lo, hi, n`` (n = finite samples). The
    estimate is always on the full sample; CIs are NaN where the quantile is gated
    (`min_samples`) or there are fewer than 2 samples / groups. `groups` (same length as
    `values`) switches to a cluster bootstrap over groups.
    """
    qs_arr = np.atleast_1d(np.asarray(qs, dtype=np.float64))
    qs_arr = np.array([_as_fraction(q) for q in qs_arr])
    raw = (
        values.to_numpy(dtype=np.float64, na_value=np.nan)
        if isinstance(values, pd.Series)
        else np.asarray(values, dtype=np.float64).ravel()
    )
    keep = np.isfinite(raw)
    x = raw[keep]
    grp = None if groups is None else np.asarray(groups).ravel()[keep]
    n = x.size
    est = np.quantile(x, qs_arr) if n else np.full(qs_arr.size, np.nan)
    lo = np.full(qs_arr.size, np.nan)
    hi = np.full(qs_arr.size, np.nan)
    ok = np.array([n >= min_samples(q) for q in qs_arr]) if n else np.zeros(qs_arr.size, bool)
    enough = n >= 2 and (grp is None or np.unique(grp).size >= 2)
    if enough and ok.any():
        rng = np.random.default_rng(seed)
        scale = 1.0
        xs, gs = x, grp
        if n > max_n:
            sub = rng.choice(n, size=max_n, replace=False)
            xs = x[sub]
            gs = None if grp is None else grp[sub]
            if grp is None:
                scale = math.sqrt(max_n / n)
        if gs is None:
            boot = _resample_quantiles(xs, qs_arr, n_boot, rng)
        else:
            boot = _cluster_quantiles(xs, gs, qs_arr, n_boot, rng)
        centre = np.quantile(xs, qs_arr) if gs is None else _weighted_q(xs, qs_arr)
        alpha = (1.0 - conf) / 2.0
        dev = boot - centre[:, None]
        lo_d = np.quantile(dev, alpha, axis=1)
        hi_d = np.quantile(dev, 1.0 - alpha, axis=1)
        lo = np.where(ok, est + scale * lo_d, np.nan)
        hi = np.where(ok, est + scale * hi_d, np.nan)
    return pd.DataFrame({"q": qs_arr, "estimate": est, "lo": lo, "hi": hi, "n": n})


def _weighted_q(xs: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """Inverted-CDF quantiles of equally weighted values (the cluster bootstrap's centre)."""
    s = np.sort(xs)
    pos = np.ceil(qs * s.size).astype(int) - 1
    return s[np.clip(pos, 0, s.size - 1)]


def bootstrap_ci(
    values: Any,
    q: float = 0.5,
    *,
    groups: Any = None,
    n_boot: int = 1000,
    conf: float = 0.95,
    seed: int = 0,
    max_n: int = 10_000,
) -> tuple[float, float, float]:
    """``(estimate, lo, hi)`` of one quantile; see `bootstrap_quantiles`."""
    row = bootstrap_quantiles(
        values, [q], groups=groups, n_boot=n_boot, conf=conf, seed=seed, max_n=max_n
    ).iloc[0]
    return float(row["estimate"]), float(row["lo"]), float(row["hi"])


def ratio_ci(
    a: Any,
    b: Any,
    q: float = 0.5,
    *,
    groups_a: Any = None,
    groups_b: Any = None,
    n_boot: int = 1000,
    conf: float = 0.95,
    seed: int = 0,
    max_n: int = 10_000,
) -> dict[str, float | int]:
    """Ratio of the q-quantiles of two independent samples, ``quantile(a) / quantile(b)``,
    with a percentile-bootstrap CI (each sample resampled on its own).

    Returns ``{"ratio", "lo", "hi", "n_a", "n_b"}``; NaN where a side is gated/empty or the
    denominator is not positive. Samples larger than `max_n` are subsampled (m-out-of-n,
    deviations of the log-ratio scaled by ``sqrt(m/n)`` per side). `groups_a` / `groups_b`
    resample whole groups (e.g. streams) on that side, as in `bootstrap_quantiles`.
    """
    xa, ga = _finite_with_groups(a, groups_a)
    xb, gb = _finite_with_groups(b, groups_b)
    qf = _as_fraction(q)
    out: dict[str, float | int] = {
        "ratio": math.nan,
        "lo": math.nan,
        "hi": math.nan,
        "n_a": int(xa.size),
        "n_b": int(xb.size),
    }
    need = min_samples(qf)
    if xa.size < need or xb.size < need:
        return out
    qa, qb = float(np.quantile(xa, qf)), float(np.quantile(xb, qf))
    if qb <= 0 or qa <= 0:
        if qb > 0:
            out["ratio"] = qa / qb
        return out
    out["ratio"] = qa / qb
    rng = np.random.default_rng(seed)
    qs = np.array([qf])
    log_dev = np.zeros(n_boot)
    for sign, x, g in ((1.0, xa, ga), (-1.0, xb, gb)):
        scale = 1.0
        xs, gs = x, g
        if x.size > max_n:
            sub = rng.choice(x.size, size=max_n, replace=False)
            xs = x[sub]
            gs = None if g is None else g[sub]
            scale = 1.0 if g is not None else math.sqrt(max_n / x.size)
        if gs is not None and np.unique(gs).size >= 2:
            boot = _cluster_quantiles(xs, gs, qs, n_boot, rng)[0]
            centre = float(_weighted_q(xs, qs)[0])
        else:
            boot = _resample_quantiles(xs, qs, n_boot, rng)[0]
            centre = float(np.quantile(xs, qf))
        with np.errstate(divide="ignore", invalid="ignore"):
            d = scale * (np.log(boot) - math.log(centre))
        log_dev = log_dev + sign * d
    log_dev = log_dev[np.isfinite(log_dev)]
    if log_dev.size:
        alpha = (1.0 - conf) / 2.0
        base = math.log(out["ratio"])
        out["lo"] = math.exp(base + float(np.quantile(log_dev, alpha)))
        out["hi"] = math.exp(base + float(np.quantile(log_dev, 1.0 - alpha)))
    return out


def _finite_with_groups(values: Any, groups: Any) -> tuple[np.ndarray, np.ndarray | None]:
    raw = (
        values.to_numpy(dtype=np.float64, na_value=np.nan)
        if isinstance(values, pd.Series)
        else np.asarray(values, dtype=np.float64).ravel()
    )
    keep = np.isfinite(raw)
    g = None if groups is None else np.asarray(groups).ravel()[keep]
    return raw[keep], g


# --------------------------------------------------------------------------- repetitions


def repetitions_summary(
    per_rep: pd.DataFrame,
    value_columns: str | Iterable[str],
    by: str | Sequence[str] = "arm",
    rep_column: str = "rep",
) -> pd.DataFrame:
    """Across interleaved repetitions (A B A B): per group, the median, min and max over
    repetitions of each value column, and how many repetitions had a value.

    `per_rep` has one row per (group, repetition), e.g. each phase's TTFT p50. Output
    columns: ``<by…>, n_reps, <col>_median, <col>_min, <col>_max`` for each value column.
    """
    keys = [by] if isinstance(by, str) else list(by)
    cols = [value_columns] if isinstance(value_columns, str) else list(value_columns)
    out_cols = [*keys, "n_reps"] + [f"{c}_{s}" for c in cols for s in ("median", "min", "max")]
    if per_rep.empty:
        return pd.DataFrame(columns=out_cols)
    rows = []
    for key, grp in per_rep.groupby(keys, sort=True, observed=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(keys, key, strict=True))
        row["n_reps"] = int(grp[rep_column].nunique()) if rep_column in grp else len(grp)
        for c in cols:
            v = finite(grp[c])
            row[f"{c}_median"] = float(np.median(v)) if v.size else math.nan
            row[f"{c}_min"] = float(v.min()) if v.size else math.nan
            row[f"{c}_max"] = float(v.max()) if v.size else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=out_cols)


def to_jsonable(obj: Any) -> Any:
    """NaN/inf → None, numpy/pandas scalars → Python, tuples → lists, recursively."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if obj is None or obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, str):
        return obj
    try:
        if pd.isna(obj):
            return None
    except (TypeError, ValueError):
        pass
    return obj
