"""The one nearest-rank percentile of the project's live summaries.

`nearest_rank(values, q)` is a value of the sample — the element at index
``round(q * (n - 1))`` of the sorted values, ties to the even index — the same as
``numpy.quantile(values, q, method="nearest")``. It is what the console, perf, the proxy's
access-log summary, the benchmarks and the client tests print: quick figures where an
observed value is clearer than an interpolated one.

The report is not built on it: `analysis.stats` uses linear interpolation
(``numpy.percentile``'s default) on the full sample, withholds a percentile below its
minimum sample count (p50 needs 6 samples, p99 368) and gives bootstrap CIs — see
docs/methodology.md. On large samples the two agree to within one order statistic.
"""

from __future__ import annotations

from collections.abc import Iterable


def nearest_rank(values: Iterable[float], q: float, *, presorted: bool = False) -> float | None:
    """The q-quantile (0 <= q <= 1) as one of `values` (see the module docstring); None for
    no values. `presorted`: `values` is a list already in ascending order."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q!r}")
    xs = values if presorted and isinstance(values, list) else sorted(values)
    if not xs:
        return None
    return xs[round(q * (len(xs) - 1))]
