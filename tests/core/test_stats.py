"""core.stats.nearest_rank — the live summaries' one percentile — and core.markdown."""

from __future__ import annotations

import random

import numpy as np
import pytest

from core.markdown import md_table
from core.stats import nearest_rank


def test_nearest_rank_is_numpy_nearest() -> None:
    rng = random.Random(7)
    for n in (1, 2, 3, 4, 5, 10, 99, 100, 101, 1000):
        xs = [rng.uniform(-5, 5) for _ in range(n)]
        for q in (0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0):
            want = float(np.quantile(xs, q, method="nearest"))
            assert nearest_rank(xs, q) == want, (n, q)
            assert nearest_rank(sorted(xs), q, presorted=True) == want


def test_nearest_rank_edges() -> None:
    assert nearest_rank([], 0.5) is None
    assert nearest_rank([3.0], 0.99) == 3.0
    assert nearest_rank([1, 2, 3, 4], 0.5) == 3  # index 1.5 → 2 (ties to even)
    assert nearest_rank([1, 2, 3, 4, 5, 6], 0.5) == 3  # index 2.5 → 2
    assert nearest_rank(iter([5, 1, 3]), 1.0) == 5  # any iterable, unsorted
    with pytest.raises(ValueError):
        nearest_rank([1.0], 99)  # a percent is not a quantile


def test_md_table_escapes_cells() -> None:
    out = md_table(["a", "b|c"], [[1.5, "x|y"], [None, "two\nlines"]], fmt=lambda v: f"<{v}>")
    assert out.splitlines() == [
        "| a | b\\|c |",
        "|---|---|",
        "| <1.5> | <x\\|y> |",
        "| <None> | <two lines> |",
    ]
