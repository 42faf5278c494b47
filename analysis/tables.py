"""The headline metrics as rows: one registry (`METRICS`, selected by key) read by the
summary tables, the report, `ssevsws compare` and the point ratios of the summary.

A `Metric` says where its value is in an `ArmSummary`, how to print it, and which entry of
a scenario's ``ratios`` goes with it. Rows are picked by ``key``, never by their display
``label``: renaming a label changes no table's content. Definitions of every metric are in
docs/methodology.md ("Metrics").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysis import validity as V
from analysis.results import ArmSummary, RatioCI, RunSummary

__all__ = [
    "COMPARE_KEYS",
    "METRIC",
    "METRICS",
    "Metric",
    "fmt",
    "format_summary_table",
    "md_table",
    "metric_cell",
    "ratio_cell",
    "summary_markdown",
]


@dataclass(frozen=True)
class Metric:
    """One headline row."""

    key: str  # stable id (compare, tests, code select rows by it)
    label: str  # what the tables print
    get: Callable[[ArmSummary], float | int | None]
    fmt: str
    #: The distribution (ArmSummary field) the value comes from: a missing percentile of
    #: a measured distribution prints "n/a (n=…)" (too few samples), not "n/m".
    dist: str | None = None
    #: Entry of ScenarioSummary.ratios shown beside this row (None: no ratio).
    ratio: str | None = None
    #: True: the summary computes that ratio as a point ratio of the two arms' values
    #: (per-unit figures); False: a median ratio with a bootstrap CI (distributions).
    point_ratio: bool = False
    #: True: the row is left out of a scenario's table where no arm has a value (e.g. the
    #: cancelled streams of a scenario nobody cancels in).
    optional: bool = False


def _d(key: str, stat: str) -> Callable[[ArmSummary], float | None]:
    return lambda a: a.distribution(key).stat(stat)


def _opt(block: str, name: str) -> Callable[[ArmSummary], float | int | None]:
    def get(a: ArmSummary) -> float | int | None:
        obj = getattr(a, block)
        return None if obj is None else getattr(obj, name)

    return get


METRICS: tuple[Metric, ...] = (
    Metric("streams", "streams", lambda a: a.streams, "{:.0f}"),
    Metric("ttft_p50_ms", "TTFT p50 ms", _d("ttft_ms", "p50"), "{:.1f}", "ttft_ms", "ttft_ms_p50"),
    Metric("ttft_p99_ms", "TTFT p99 ms", _d("ttft_ms", "p99"), "{:.1f}", "ttft_ms"),
    # beside TTFT: a provider format's bookkeeping (role-only chunk, response.created,
    # message_start + ping) arrives at once, so these are ~0 where TTFT is not
    Metric("ttfb_p50_ms", "time to first byte p50 ms", _d("ttfb_ms", "p50"), "{:.1f}", "ttfb_ms"),
    Metric(
        "first_event_p50_ms",
        "time to first event p50 ms",
        _d("first_event_ms", "p50"),
        "{:.1f}",
        "first_event_ms",
        optional=True,
    ),
    Metric("itl_p50_ms", "ITL p50 ms", _d("itl_ms", "p50"), "{:.2f}", "itl_ms", "itl_ms_p50"),
    Metric("itl_p99_ms", "ITL p99 ms", _d("itl_ms", "p99"), "{:.2f}", "itl_ms"),
    Metric("tpot_p50_ms", "TPOT p50 ms", _d("tpot_ms", "p50"), "{:.2f}", "tpot_ms", "tpot_ms_p50"),
    Metric("e2e_p50_ms", "E2E p50 ms", _d("e2e_ms", "p50"), "{:.0f}", "e2e_ms", "e2e_ms_p50"),
    Metric("e2e_p99_ms", "E2E p99 ms", _d("e2e_ms", "p99"), "{:.0f}", "e2e_ms"),
    Metric(
        "cancelled_streams",
        "cancelled streams",
        lambda a: a.outcome("cancelled") or None,
        "{:.0f}",
        optional=True,
    ),
    Metric(
        "stopped_streams",
        "streams stopped by the load generator",
        lambda a: a.outcome("stopped") or None,
        "{:.0f}",
        optional=True,
    ),
    Metric(
        "e2e_cancelled_p50_ms",
        "E2E p50 ms (cancelled)",
        _d("e2e_cancelled_ms", "p50"),
        "{:.0f}",
        "e2e_cancelled_ms",
        optional=True,
    ),
    Metric(
        "delivery_p50_ms",
        "delivery p50 ms",
        _d("delivery_ms", "p50"),
        "{:.2f}",
        "delivery_ms",
        "delivery_ms_p50",
    ),
    Metric("delivery_p99_ms", "delivery p99 ms", _d("delivery_ms", "p99"), "{:.2f}", "delivery_ms"),
    Metric(
        "dispatch_delay_p99_ms",
        "dispatch delay p99 ms",
        _d("dispatch_delay_ms", "p99"),
        "{:.1f}",
        "dispatch_delay_ms",
    ),
    Metric("connect_p50_ms", "connect p50 ms", _d("connect_ms", "p50"), "{:.2f}", "connect_ms"),
    Metric("slo_attainment", "SLO attainment", lambda a: a.slo_attainment, "{:.1%}"),
    Metric(
        "tokens_per_s",
        "tokens/s",
        lambda a: a.tokens_per_s,
        "{:,.0f}",
        ratio="tokens_per_s",
        point_ratio=True,
    ),
    Metric("lost_tokens", "lost tokens", _opt("integrity", "lost"), "{:.0f}"),
    Metric("dup_tokens", "dup tokens", _opt("integrity", "dup"), "{:.0f}"),
    Metric("checksum_failures", "checksum failures", _opt("integrity", "checksum_fail"), "{:.0f}"),
    Metric(
        "app_bytes_per_token",
        "app bytes/token",
        _opt("bytes", "app_bytes_per_token"),
        "{:.1f}",
        ratio="app_bytes_per_token",
        point_ratio=True,
    ),
    Metric(
        "conn_s_per_session",
        "conn-s/session",
        _opt("connections", "held_s_per_session"),
        "{:.2f}",
        ratio="held_s_per_session",
        point_ratio=True,
    ),
    Metric(
        "idle_share",
        "idle share",
        _opt("connections", "idle_share"),
        "{:.1%}",
        ratio="idle_share",
        point_ratio=True,
    ),
    Metric(
        "server_cpu_s_per_1k_tokens",
        "server CPU s/1k tok",
        lambda a: a.server_cpu_s_per_1k_tokens,
        "{:.4f}",
        ratio="server_cpu_s_per_1k_tokens",
        point_ratio=True,
    ),
    Metric(
        "rss_kib_per_conn",
        "RSS KiB/conn",
        lambda a: a.rss_kib_per_conn,
        "{:.1f}",
        ratio="rss_kib_per_conn",
        point_ratio=True,
    ),
    Metric("client_cpu_max_pct", "client CPU max %", _opt("client_cpu", "cpu_pct_max"), "{:.0f}"),
)
METRIC: dict[str, Metric] = {m.key: m for m in METRICS}

#: The rows `ssevsws compare` puts side by side.
COMPARE_KEYS: tuple[str, ...] = (
    "streams",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "ttfb_p50_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "e2e_p50_ms",
    "delivery_p50_ms",
    "slo_attainment",
    "tokens_per_s",
    "app_bytes_per_token",
    "conn_s_per_session",
    "idle_share",
    "server_cpu_s_per_1k_tokens",
    "rss_kib_per_conn",
)


# --------------------------------------------------------------------------- cells


def fmt(v: Any, spec: str = "{:.2f}") -> str:
    """A number with ``spec``; ``n/m`` (not measured) for None / NaN."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/m"
    try:
        return spec.format(v)
    except (TypeError, ValueError):
        return str(v)


def metric_cell(m: Metric, arm: ArmSummary) -> str:
    """The value as printed: ``n/a (why)`` when a validity rule withholds it
    (analysis.validity), ``n/a (n=…)`` for a percentile of too few samples, ``n/m`` when not
    measured."""
    why = arm.invalid.get(m.key)
    if why:
        return f"n/a ({why})"
    v = m.get(arm)
    if v is None and m.dist is not None:
        n = arm.distribution(m.dist).n
        return f"n/a (n={n})" if n else "n/m"
    return fmt(v, m.fmt)


def ratio_cell(r: RatioCI | None) -> str:
    if r is None or r.ratio is None:
        return "n/a" if r is not None and r.n_a and r.n_b else "n/m"
    why = V.ratio_ci(r)
    if why:
        return f"n/a ({why})"
    txt = f"{r.ratio:.3f}"
    if r.has_ci:
        txt += f" [{r.lo:.3f}, {r.hi:.3f}]"
    return txt


def _scenario_rows(summary: RunSummary, group: str) -> tuple[list[str], list[str], list[list[str]]]:
    """(arm names, ratio names, rows) of one scenario group's table."""
    block = summary.scenarios[group]
    arms, ratio_names = list(block.arms), list(block.ratios)
    rows = []
    for m in METRICS:
        if m.optional and not any(m.get(a) is not None for a in block.arms.values()):
            continue
        row = [m.label] + [metric_cell(m, a) for a in block.arms.values()]
        for rn in ratio_names:
            pair = [block.arms.get(x) for x in rn.split("/")]
            if not m.ratio:
                row.append("")
            elif any(a is not None and m.key in a.invalid for a in pair):
                row.append("n/a")
            else:
                row.append(ratio_cell(block.ratios[rn].get(m.ratio)))
        rows.append(row)
    return arms, ratio_names, rows


NOTE = (
    "n/m = not measured in this run; n/a (…) = withheld by a validity rule, with the "
    "reason: too few samples for that percentile (no p95 below 72 samples, no p99 below "
    "368), a memory fit that does not explain its samples or spans too few connections, "
    "fewer than 20 streams for a share, a negative figure, a ratio whose CI spans more "
    "than a factor 2. E2E is over completed streams; cancelled and stopped ones are "
    "counted apart. "
    "SLO: TTFT ≤ the stream's scheduled TTFT + 700 ms and TPOT ≤ its scheduled gap + 30 ms "
    "(a stream cancelled or stopped by the client is judged on what it delivered). "
    "Ratios = SSE ÷ arm, medians with 95 % bootstrap CI. "
    'Rules: docs/methodology.md, "Validity rules".'
)


def md_table(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (cells are str()-ed, pipes escaped)."""

    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """Aligned plain-text lines: the first ``left`` columns left-aligned, the rest right."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i < left else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def summary_markdown(summary: RunSummary) -> str:
    """Per scenario group: metrics × arms with SSE/arm ratios (95 % CI), as Markdown."""
    out: list[str] = []
    for group in summary.scenarios:
        arms, ratio_names, rows = _scenario_rows(summary, group)
        header = ["metric", *arms, *(f"ratio {r}" for r in ratio_names)]
        out += [f"### Scenario `{group}`", "", md_table(header, rows), ""]
    out.append(NOTE)
    return "\n".join(out)


def format_summary_table(summary: RunSummary) -> str:
    """Plain-text tables (one per scenario group): metrics × arms, SSE/arm ratios with CIs."""
    lines = [f"run {summary.run_id or '?'}  status {summary.status or '?'}"]
    for group in summary.scenarios:
        arms, ratio_names, rows = _scenario_rows(summary, group)
        lines.append("")
        lines += text_table(["scenario " + group, *arms, *ratio_names], rows)
    lines.append("")
    lines.append("n/m = not measured in this run; n/a (…) = withheld by a validity rule")
    lines.append("(reason given; docs/methodology.md); ratios = sse ÷ arm, median ratios")
    lines.append("with 95% bootstrap CI.")
    lines += [f"! {fl}" for fl in summary.flags]
    return "\n".join(lines)


def point_ratios(ref: ArmSummary, other: ArmSummary) -> dict[str, RatioCI]:
    """The per-unit figures' ratios ref ÷ other (no CI), keyed as in ``ratios``."""
    out = {}
    for m in METRICS:
        if not (m.ratio and m.point_ratio):
            continue
        va, vb = m.get(ref), m.get(other)
        ok = va is not None and vb is not None and vb != 0
        out[m.ratio] = RatioCI(ratio=float(va) / float(vb) if ok else None)  # type: ignore[arg-type]
    return out


def rows_by_key(keys: Sequence[str]) -> list[Metric]:
    """The metrics named by ``keys`` (KeyError naming an unknown key)."""
    unknown = [k for k in keys if k not in METRIC]
    if unknown:
        raise KeyError(f"unknown metric key(s) {', '.join(unknown)} (known: {', '.join(METRIC)})")
    return [METRIC[k] for k in keys]


def as_summary(s: RunSummary | Mapping[str, Any]) -> RunSummary:
    """A RunSummary from itself or from summary.json's dict."""
    return s if isinstance(s, RunSummary) else RunSummary.from_json(s)
