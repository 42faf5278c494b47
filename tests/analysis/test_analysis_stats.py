"""analysis.stats: percentile gating, bootstrap intervals, ratios, repetitions."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from analysis import stats


def test_min_samples_matches_design_thresholds():
    # docs/methodology.md, "Percentiles, intervals and ratios": no p95 below 72, no p99 below 368
    assert stats.min_samples(95) == 72
    assert stats.min_samples(0.99) == 368
    assert stats.min_samples(90) == 36
    assert stats.min_samples(50) == 6


def test_describe_gates_percentiles_and_always_reports_n():
    d71 = stats.describe(np.arange(71.0))
    assert d71["n"] == 71 and not math.isnan(d71["p90"])
    assert math.isnan(d71["p95"]) and math.isnan(d71["p99"])
    d72 = stats.describe(np.arange(72.0))
    assert d72["p95"] == pytest.approx(np.percentile(np.arange(72.0), 95))
    assert math.isnan(d72["p99"])
    assert not math.isnan(stats.describe(np.arange(368.0))["p99"])
    assert math.isnan(stats.describe(np.arange(367.0))["p99"])
    empty = stats.describe([])
    assert empty["n"] == 0 and math.isnan(empty["mean"]) and math.isnan(empty["p50"])
    # NaN / NA are not samples
    s = pd.Series([1.0, None, 3.0, np.nan, 5.0, 7.0, 9.0, 11.0], dtype="Float64")
    d = stats.describe(s)
    assert d["n"] == 6 and d["p50"] == 6.0 and d["mean"] == 6.0


def test_summary_table_per_group():
    df = pd.DataFrame({"arm": ["a"] * 100 + ["b"] * 10, "x": np.r_[np.arange(100.0), np.ones(10)]})
    t = stats.summary_table(df, "x").set_index("arm")
    assert t.loc["a", "n"] == 100 and t.loc["b", "n"] == 10
    assert t.loc["a", "p50"] == pytest.approx(49.5)
    assert not math.isnan(t.loc["a", "p95"]) and math.isnan(t.loc["a", "p99"])
    assert t.loc["b", "p50"] == 1.0 and math.isnan(t.loc["b", "p90"])


def test_bootstrap_ci_contains_true_median_and_is_deterministic():
    rng = np.random.default_rng(42)
    x = rng.normal(100.0, 10.0, 2000)
    est, lo, hi = stats.bootstrap_ci(x, 0.5, seed=1)
    assert lo < 100.0 < hi
    assert lo <= est <= hi
    assert 0.3 < hi - lo < 2.5  # SE of the median ≈ 1.2533·10/√2000 = 0.28 → width ≈ 1.1
    assert stats.bootstrap_ci(x, 0.5, seed=1) == (est, lo, hi)


def test_bootstrap_coverage_is_near_nominal():
    rng = np.random.default_rng(0)
    hits = 0
    trials = 120
    for i in range(trials):
        x = rng.exponential(1.0, 300)  # true median ln 2
        _, lo, hi = stats.bootstrap_ci(x, 0.5, n_boot=400, seed=i)
        hits += lo <= math.log(2) <= hi
    assert 0.85 <= hits / trials <= 1.0


def test_m_out_of_n_bootstrap_keeps_the_right_width():
    rng = np.random.default_rng(5)
    n = 400_000
    x = rng.normal(0.0, 1.0, n)
    _, lo, hi = stats.bootstrap_ci(x, 0.5, max_n=10_000, seed=2)
    width = hi - lo
    expected = 2 * 1.96 * math.sqrt(math.pi / 2) / math.sqrt(n)  # ≈ 0.0078
    assert 0.5 * expected < width < 2.0 * expected
    assert lo < 0.0 < hi


def test_cluster_bootstrap_is_wider_for_correlated_groups():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(40), 100)
    x = rng.normal(0, 1, 40)[groups] + rng.normal(0, 0.1, groups.size)  # stream effects
    _, lo_iid, hi_iid = stats.bootstrap_ci(x, 0.5, seed=0)
    _, lo_cl, hi_cl = stats.bootstrap_ci(x, 0.5, groups=groups, seed=0)
    assert (hi_cl - lo_cl) > 3 * (hi_iid - lo_iid)


def test_bootstrap_gated_quantile_has_no_interval():
    q = stats.bootstrap_quantiles(np.arange(50.0), [0.5, 0.99], seed=0)
    assert not math.isnan(q.loc[0, "lo"])
    assert math.isnan(q.loc[1, "lo"]) and math.isnan(q.loc[1, "hi"])
    assert q.loc[1, "n"] == 50


def test_ratio_ci_recovers_known_ratio():
    rng = np.random.default_rng(9)
    b = rng.lognormal(3.0, 0.3, 3000)
    a = 2.0 * rng.lognormal(3.0, 0.3, 3000)
    r = stats.ratio_ci(a, b, 0.5, seed=4)
    assert r["lo"] < 2.0 < r["hi"]
    assert r["ratio"] == pytest.approx(np.median(a) / np.median(b))
    assert r["n_a"] == 3000 and r["n_b"] == 3000
    small = stats.ratio_ci([1.0, 2.0], [1.0, 2.0])
    assert math.isnan(small["ratio"])  # gated: fewer than 6 samples for a median


def test_repetitions_summary_median_across_reps():
    per_rep = pd.DataFrame(
        {
            "arm": ["sse", "sse", "sse", "ws", "ws"],
            "rep": [1, 2, 3, 1, 2],
            "ttft": [300.0, 310.0, 500.0, 290.0, 300.0],
        }
    )
    r = stats.repetitions_summary(per_rep, "ttft").set_index("arm")
    assert r.loc["sse", "ttft_median"] == 310.0 and r.loc["sse", "n_reps"] == 3
    assert r.loc["ws", "ttft_median"] == 295.0
    assert r.loc["sse", "ttft_min"] == 300.0 and r.loc["sse", "ttft_max"] == 500.0


def test_to_jsonable_turns_nan_into_null():
    obj = {"a": np.float64("nan"), "b": np.int64(3), "c": [np.inf, 1.5], "d": pd.NA, "e": (1,)}
    out = stats.to_jsonable(obj)
    assert json.loads(json.dumps(out, allow_nan=False)) == {
        "a": None,
        "b": 3,
        "c": [None, 1.5],
        "d": None,
        "e": [1],
    }
