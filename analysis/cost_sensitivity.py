"""How much the WS/SSE verdict moves: a sensitivity (tornado) table over the usage
assumptions, and P10/P50/P90 monthly costs from bootstrapping the run's calibration.

* :func:`tornado_table` — per pairing, the WS/SSE ratio with one knob at a low and a high
  setting and everything else at the profile (:data:`KNOBS`: tokens per frame, think time,
  tab-open time, MAU, function memory, one EventSource per tab).
* :func:`bootstrap_factors` / :func:`bootstrap_costs` — resample what the run measured
  (bytes per message over its streams, CPU per token over its phases), recompute every
  bill, report the 10th/50th/90th percentiles. The spread is the measurement's, not the
  profile's: usage assumptions move bills far more (that is what the tornado shows).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from analysis.cost import Selection, pair_costs, pair_name
from analysis.cost_usage import Calibration, Profile, usages_from_profile
from analysis.cost_whatif import WhatIfs, apply_to_catalogue


@dataclass(frozen=True)
class Knob:
    """One input of the tornado: its low and high settings for a profile."""

    name: str
    settings: Callable[[Profile], tuple[Any, Any]]
    apply: Callable[[Profile, Selection, Any], tuple[Profile, Selection]]


def _on_profile(change: Callable[[Profile, Any], Profile]) -> Callable[..., Any]:
    return lambda p, sel, v: (change(p, v), sel)


def _memory(p: Profile, sel: Selection, mb: float) -> tuple[Profile, Selection]:
    cat = apply_to_catalogue(sel.catalogue, WhatIfs(function_memory_gb=mb / 1024.0))
    names = [x.platform for x in sel.selected]
    return p, Selection.of(cat, names)


KNOBS: tuple[Knob, ...] = (
    Knob(
        "tokens per frame",
        lambda p: (1, 10),
        _on_profile(lambda p, v: replace(p, tokens_per_message=float(v))),
    ),
    Knob("think time s", lambda p: (15, 240), _on_profile(lambda p, v: p.with_think_time(v))),
    Knob(
        "tab-open time s",
        lambda p: (round(p.active_s), 3600),
        _on_profile(lambda p, v: replace(p, tab_open_s=float(v))),
    ),
    Knob(
        "monthly active users",
        lambda p: (p.monthly_active_users / 10, p.monthly_active_users * 10),
        _on_profile(lambda p, v: p.with_mau(v)),
    ),
    Knob("function memory MB", lambda p: (128, 1024), _memory),
    Knob(
        "SSE connection",
        lambda p: ("per_answer", "per_tab"),
        _on_profile(lambda p, v: replace(p, sse_connection=v)),
    ),
)

TORNADO_CAPTION = (
    "Sensitivity of the WS/SSE monthly cost ratio, per pairing: each bar moves one input "
    "from its low to its high setting (labels) with everything else at the profile; the "
    "line is the profile's ratio and the dashed line the article's 6×. Long bars are the "
    "assumptions a verdict depends on."
)


def _ratios(profile: Profile, sel: Selection, cals: Mapping[str, Calibration]) -> dict[str, float]:
    usages = usages_from_profile(profile, ("sse", "ws"), cals)
    return {
        pair_name(s_p, w_p): (w / s if s > 0 else math.inf)
        for (s_p, w_p), (s, w) in pair_costs(usages, sel).items()
    }


def tornado_table(
    profile: Profile,
    sel: Selection,
    calibrations: Mapping[str, Calibration] | None = None,
    knobs: Sequence[Knob] = KNOBS,
) -> pd.DataFrame:
    """Long table: pair, knob, low, high, ratio_low, ratio_high, ratio_base, swing
    (|log(high/low)|, for ordering the bars)."""
    cals = dict(calibrations or {})
    base = _ratios(profile, sel, cals)
    rows = []
    for knob in knobs:
        lo_v, hi_v = knob.settings(profile)
        lo = _ratios(*knob.apply(profile, sel, lo_v), cals)
        hi = _ratios(*knob.apply(profile, sel, hi_v), cals)
        for pair, r0 in base.items():
            swing = abs(math.log(hi[pair] / lo[pair])) if lo[pair] > 0 and hi[pair] > 0 else 0.0
            rows.append(
                {
                    "pair": pair,
                    "knob": knob.name,
                    "low": lo_v,
                    "high": hi_v,
                    "ratio_low": lo[pair],
                    "ratio_high": hi[pair],
                    "ratio_base": r0,
                    "swing": swing,
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- bootstrap

BOOTSTRAP_CAPTION = (
    "P10 / P50 / P90 of each monthly bill and of the WS/SSE ratio when the run's "
    "measurements are resampled (bytes per message over its streams, CPU per token over "
    "its phases): the spread that comes from measuring, with the usage profile fixed."
)


@dataclass(frozen=True)
class Factors:
    """Per arm: multiplicative factors of bytes per message and CPU per token, one per
    bootstrap replicate, and what they were resampled from."""

    bytes: Mapping[str, np.ndarray]
    cpu: Mapping[str, np.ndarray]
    what: str


def _ratio_of_sums(a: np.ndarray, b: np.ndarray, idx: np.ndarray) -> float:
    return float(a[idx].sum() / b[idx].sum()) if b[idx].sum() > 0 else math.nan


def bootstrap_factors(
    arms: Sequence[str],
    streams: pd.DataFrame | None,
    phases: Sequence[Mapping[str, Any]],
    scenario: str | None,
    n_boot: int = 200,
    seed: int = 0,
) -> Factors:
    """Resampling factors: bytes per message (Σ bytes ÷ Σ messages over resampled streams ÷
    the same over all streams) and CPU per 1k tokens (mean over resampled phases ÷ mean
    over all). An arm without records or phases gets factors of 1 (and ``what`` says so)."""
    rng = np.random.default_rng(seed)
    b_f: dict[str, np.ndarray] = {}
    c_f: dict[str, np.ndarray] = {}
    what = []
    for arm in arms:
        s = streams[streams["arm"] == arm] if streams is not None and len(streams) else None
        if s is not None and len(s) > 1 and {"bytes_in", "n_received"} <= set(s.columns):
            by = s["bytes_in"].fillna(0).to_numpy(float)
            n = s["n_received"].fillna(0).to_numpy(float)
            full = _ratio_of_sums(by, n, np.arange(len(s)))
            reps = [
                _ratio_of_sums(by, n, rng.integers(0, len(s), len(s))) / full for _ in range(n_boot)
            ]
            b_f[arm] = np.asarray(reps)
            what.append(f"{arm}: bytes over {len(s)} streams")
        else:
            b_f[arm] = np.ones(n_boot)
            what.append(f"{arm}: bytes fixed (no record tables)")
        cpu = [
            float(p["cpu_s_per_1k_tokens"])
            for p in phases
            if p.get("arm") == arm
            and p.get("scenario") == scenario
            and isinstance(p.get("cpu_s_per_1k_tokens"), int | float)
            and math.isfinite(p["cpu_s_per_1k_tokens"])
        ]
        if len(cpu) > 1:
            v = np.asarray(cpu)
            c_f[arm] = np.asarray(
                [v[rng.integers(0, len(v), len(v))].mean() / v.mean() for _ in range(n_boot)]
            )
            what.append(f"{arm}: CPU over {len(v)} phases")
        else:
            c_f[arm] = np.ones(n_boot)
            what.append(f"{arm}: CPU fixed (fewer than 2 phases)")
    return Factors(b_f, c_f, "; ".join(what))


def _scaled(cal: Calibration | None, bf: float, cf: float) -> Calibration:
    cal = cal or Calibration()
    return replace(
        cal,
        message_overhead_bytes=cal.message_overhead_bytes * bf
        if cal.message_overhead_bytes
        else None,
        cpu_s_per_1k_tokens=cal.cpu_s_per_1k_tokens * cf if cal.cpu_s_per_1k_tokens else None,
    )


def bootstrap_costs(
    profile: Profile,
    sel: Selection,
    calibrations: Mapping[str, Calibration],
    factors: Factors,
    quantiles: Sequence[float] = (0.1, 0.5, 0.9),
) -> pd.DataFrame:
    """Per pairing: P10/P50/P90 (columns ``p10``, ``p50``, ``p90``) of SSE $, WS $ and the
    ratio (``quantity``) over the replicates in ``factors``."""
    n_boot = len(next(iter(factors.bytes.values()), []))
    samples: dict[tuple[str, str], list[float]] = {}
    for i in range(n_boot):
        cals = {
            arm: _scaled(calibrations.get(arm), factors.bytes[arm][i], factors.cpu[arm][i])
            for arm in factors.bytes
        }
        usages = usages_from_profile(profile, ("sse", "ws"), cals)
        for (s_p, w_p), (s, w) in pair_costs(usages, sel).items():
            name = pair_name(s_p, w_p)
            for q, v in (("SSE $/month", s), ("WS $/month", w), ("WS/SSE", w / s if s else np.inf)):
                samples.setdefault((name, q), []).append(v)
    rows = []
    for (name, q), vals in samples.items():
        qs = np.quantile(np.asarray(vals), quantiles)
        rows.append(
            {
                "pair": name,
                "quantity": q,
                **{f"p{round(x * 100)}": v for x, v in zip(quantiles, qs, strict=True)},
            }
        )
    out = pd.DataFrame(rows)
    out.attrs["what"] = factors.what
    out.attrs["n_boot"] = n_boot
    return out
