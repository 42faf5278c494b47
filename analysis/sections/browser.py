"""The browser section: what a user of a real browser gets, per client API — EventSource,
fetch-streamed SSE (with and without resume) and WebSocket in Chromium pages
(loadtests/browser; the tables and rules in analysis.browser)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from analysis import browser as B
from analysis.sections.base import Fig, Section, Table, Text
from analysis.tables import fmt, md_table
from core.arms import get_arm

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from analysis.report_data import Report

__all__ = ["BROWSER", "browser_of"]


def browser_of(rep: Report) -> B.BrowserResults:
    """The run's browser tables (computed once per report)."""
    d = rep.data
    return rep.cached(
        "browser", lambda: B.browser_results(d.streams, d.tokens, d.resources, rep.manifest)
    )


def _ran(rep: Report) -> bool:
    return browser_of(rep).ran


def _label(arm: str) -> str:
    return get_arm(arm).label


def _intro(rep: Report) -> str:
    res = browser_of(rep)
    clock = res.clock
    parts = [
        "Real Chromium pages as the client (loadtests/browser): each page runs many users' "
        "sessions; every event is stamped in the page as its handler runs and mapped onto "
        "the harness's monotonic clock, so these rows are read like the Python clients'."
    ]
    if not clock.empty:
        parts.append(
            f"Page clock resolution {fmt(clock['resolution_us'].max(), '{:.0f}')} µs "
            f"(cross-origin isolated pages); clock mapping bound ±"
            f"{fmt(clock['clock_bound_us'].max(), '{:.0f}')} µs (the widest of "
            f"{len(clock)} pages), drift between the maps before and after the load at most "
            f"{fmt(clock['drift_us'].abs().max(), '{:.0f}')} µs."
        )
    return " ".join(parts)


def _latency(rep: Report) -> str | None:
    t = browser_of(rep).latency
    if t.empty:
        return None
    head = ["scenario", "arm", "streams", "TTFT p50 ms", "p95", "ITL p50 ms", "p99"]
    head += ["delivery p50 ms", "p99"]
    rows = [
        [
            r["scenario"],
            _label(r["arm"]),
            r["streams"],
            fmt(r["ttft_p50_ms"], "{:.1f}"),
            fmt(r["ttft_p95_ms"], "{:.1f}"),
            fmt(r["itl_p50_ms"], "{:.2f}"),
            fmt(r["itl_p99_ms"], "{:.1f}"),
            fmt(r["delivery_p50_ms"], "{:.2f}"),
            fmt(r["delivery_p99_ms"], "{:.1f}"),
        ]
        for r in t.to_dict("records")
        if r["ttft_n"]
    ]
    return md_table(head, rows) if rows else None


def _recovery(rep: Report) -> str | None:
    t = browser_of(rep).recovery
    if t.empty:
        return None
    head = ["scenario", "arm", "dropped", "finished ok", "lost", "lost/dropped", "dup"]
    head += ["drop→next token p50 ms", "max", "retry: ms", "recovery lines"]
    rows = [
        [
            r["scenario"],
            _label(r["arm"]),
            r["dropped"],
            f"{r['ok_share']:.0%}",
            r["lost"],
            fmt(r["lost_per_dropped"], "{:.1f}"),
            r["dup"],
            fmt(r["gap_p50_ms"], "{:.1f}"),
            fmt(r["gap_max_ms"], "{:.1f}"),
            fmt(r["retry_ms"], "{:.0f}"),
            r["recovery_lines"],
        ]
        for r in t.to_dict("records")
    ]
    c5 = browser_of(rep).c5
    verdict = f"\n\nC5 in the browser: **{c5['status']}** — {c5['verdict']}." if c5 else ""
    return md_table(head, rows) + verdict


def _code(rep: Report) -> str | None:
    t = browser_of(rep).code
    if t.empty:
        return None
    rows = [
        [_label(r["arm"]), r["api"], r["method"], r["code_lines"], r["recovery_lines"], r["file"]]
        for r in t.to_dict("records")
    ]
    note = (
        "\n\nLines of page code, counted from the page sources (blank and comment lines "
        "excluded); recovery lines are those marked as existing only to recover a dropped "
        "stream — the 'hand-written' part of claim C5."
    )
    return md_table(["arm", "API", "request", "lines", "recovery lines", "file"], rows) + note


def _num(v: Any, spec: str) -> str:
    return fmt(v, spec) if isinstance(v, int | float) and math.isfinite(v) else "n/m"


def _stepped(rep: Report, group: str) -> bool:
    """A group whose load steps (load.ramp_steps): the per-stream fits need held levels."""
    sc = rep.summary.scenarios.get(group)
    return sc is not None and sc.traits.ramp


def _resources(rep: Report) -> str | None:
    t = browser_of(rep).resources
    if not t.empty:
        keep = t["scenario"].map(lambda g: _stepped(rep, g)).astype(bool)
        t = t[keep & t["kib_per_stream"].notna()]
    if t.empty:
        return (
            "Chromium's memory and CPU per stream: n/m — they are slopes over held load "
            "levels, so they need a browser scenario that steps its load (load.ramp_steps: "
            "browser-idle, browser-stream in `make bench SUITE=browser`)."
        )
    head = ["scenario", "arm", "streams", "KiB per stream", "r²", "network service KiB"]
    head += ["renderer KiB", "CPU % per stream", "r²"]
    rows = [
        [
            r["scenario"],
            _label(r["arm"]),
            f"{r['kind']} {r['streams_min']:.0f}–{r['streams_max']:.0f}",
            _num(r["kib_per_stream"], "{:.0f}"),
            _num(r["memory_r2"], "{:.2f}"),
            _num(r["kib_per_stream_network"], "{:.0f}"),
            _num(r["kib_per_stream_renderer"], "{:.0f}"),
            _num(r["cpu_pct_per_stream"], "{:.3f}"),
            _num(r["cpu_r2"], "{:.2f}"),
        ]
        for r in t.to_dict("records")
    ]
    note = (
        "\n\nScenarios that step their load (load.ramp_steps). Slopes over the samples "
        "against the streams in flight: memory = Chromium's RSS "
        "summed over its processes (shared pages count once per process: an upper bound), "
        "time held apart; network service / renderer = those processes' private memory; "
        "CPU = % of one core summed over the browser's processes. A low r² says the "
        "stream count explained little: read the idle rows for memory."
    )
    return md_table(head, rows) + note


def _origin(rep: Report) -> str | None:
    t = browser_of(rep).origin_limit
    if t.empty:
        return None
    rows = [
        [
            _label(r["arm"]),
            r["streams"],
            r["max_open_at_once"],
            fmt(r["ttft_p50_first6_ms"], "{:.0f}"),
            fmt(r["ttft_p50_rest_ms"], "{:.0f}"),
        ]
        for r in t.to_dict("records")
    ]
    head = ["arm (one origin, HTTP/1.1)", "streams", "open at once", "TTFT p50 first 6 ms"]
    return md_table([*head, "rest ms"], rows)


def _recovery_fig(rep: Report) -> Figure | None:
    if browser_of(rep).recovery.empty:
        return None
    return B.recovery_figure(rep.data.streams, rep.data.tokens)


def _memory_fig(rep: Report) -> Figure | None:
    if browser_of(rep).resources.empty:
        return None
    return B.memory_figure(rep.data.resources)


BROWSER = Section(
    "browser",
    "Real browsers",
    _ran,
    "a browser arm in the run (core.arms: Chromium pages, loadtests/browser)",
    (
        Text(_intro),
        Table("browser_latency", _latency),
        Table("browser_recovery", _recovery),
        Fig(
            "browser_recovery",
            _recovery_fig,
            "Drop → next token per dropped stream: EventSource waits the server's retry:, "
            "fetch and WebSocket pages reconnect at once with their own code, fetch without "
            "resume never gets another token of the answer.",
        ),
        Table("browser_code", _code),
        Table("browser_resources", _resources),
        Fig(
            "browser_memory",
            _memory_fig,
            "Chromium's memory against the streams in flight, per arm and scenario.",
        ),
        Table("browser_origin_limit", _origin),
    ),
    headline=lambda rep: browser_of(rep).headline(),
)
