"""`ssevsws cost RUN`: monthly cost per platform and arm for a usage profile, calibrated
with the run's measured usage (record tables, else summary.json), with what drives each
line, the WS/SSE ratios banded against the article's claim C2 and the usage that would
reproduce its figures.

    ssevsws cost results/sample
    ssevsws cost latest --set tokens_per_message=4 --set think_s=30
    ssevsws cost latest --set aws-lambda.memory_gb=1 --platform aws-lambda

Exit 2 with one line for: an unknown run, platform, profile or what-if key; a bad value;
a pricing file with a negative / NaN / non-number price or broken TOML; a run with no
measured usage (the line says what is missing).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")

EXIT_USAGE = 2


def _err(msg: str) -> int:
    print(f"ssevsws: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _fmt(v: Any, fmt: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/m"
    return fmt.format(v)


def _columns(head: tuple[str, ...], rows: list[tuple[str, ...]], left: int = 2) -> list[str]:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return [line(head), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def _vm_capacity_lines(ci: Any) -> list[str]:
    """Per vm_capacity platform and arm: the per-instance capacity and where it came from."""
    from analysis import cost as K

    _, cat = K.resolve_platforms(ci.platforms)
    out = []
    for r in ci.table.itertuples():
        p = cat.get(r.platform)
        if p is None or p.billing_basis != "vm_capacity" or r.arm not in ci.usages:
            continue
        cap, src = K.vm_capacity_for(ci.usages[r.arm], p)
        out.append(
            f"  {r.platform}/{r.arm}: {cap['connections_per_instance']:,.0f} connections, "
            f"{cap['tokens_per_s_per_instance']:,.0f} tokens/s per instance — {src}"
        )
    return out


def _header(ci: Any) -> list[str]:
    p = ci.profile
    lines = [
        f"profile {p.name}: {p.monthly_active_users:,.0f} MAU, {p.sessions_per_month:,.0f} "
        f"sessions/month, {p.tokens_per_message:g} token(s) per frame, think {p.think_time_s:g} "
        f"s, tab open {p.tab_open_s:g} s, SSE {p.sse_connection}; usage measured in scenario "
        f"{ci.scenario!r} ({ci.source})",
        "",
    ]
    for arm, cal in ci.calibrations.items():
        u = ci.measured[arm]
        lines.append(
            f"measured {arm}: {u.streams:,.0f} streams, {u.tokens_delivered:,.0f} tokens, "
            f"{u.messages_out:,.0f} messages out, {u.connection_minutes_total:,.2f} "
            f"connection-min ({u.idle_share:.0%} idle) → "
            f"{_fmt(cal.message_overhead_bytes, '{:.1f}')} B overhead/message, "
            f"{_fmt(cal.messages_per_token, '{:.3f}')} msg/token in the run (not applied), "
            f"{_fmt(cal.cpu_s_per_1k_tokens, '{:.4f}')} CPU-s/1k tok, "
            f"{_fmt(cal.kib_per_connection, '{:.1f}')} KiB/conn"
        )
    return lines


def cost_text(ci: Any, summary: Any = None, *, inverse: bool = True) -> str:
    """The CLI's report: table with drivers, VM capacity, C2 side by side, inverse."""
    from analysis.cost_article import c2_inverse, c2_table
    from analysis.cost_c2 import ARTICLE_RATIO, ARTICLE_SSE_USD, ARTICLE_WS_USD

    lines = [*_header(ci), ""]
    if summary is not None and summary.get("capacity"):
        from analysis.capacity import format_capacity

        lines += [format_capacity(summary["capacity"]), ""]
    head = ("platform", "arm", "$/month", "$/1M sessions", "$/conn-hour")
    rows = [
        (
            r.platform,
            r.arm,
            f"{r.monthly_usd:,.2f}",
            _fmt(r.usd_per_1m_sessions, "{:,.2f}"),
            _fmt(r.usd_per_connection_hour, "{:,.5f}"),
        )
        for r in ci.table.itertuples()
    ]
    table = _columns(head, rows)
    lines += table[:2]
    for r, text in zip(ci.table.itertuples(), table[2:], strict=True):
        lines.append(text)
        lines += [f"    {d}" for d in str(r.drivers).split("; ")]
    vm_lines = _vm_capacity_lines(ci)
    if vm_lines:
        lines += ["", "VM instance capacity used:", *vm_lines]
    if len(ci.ratios):
        lines += [
            "",
            f"C2 per pairing — ours vs the article (SSE ${ARTICLE_SSE_USD:,.0f} → WS "
            f"${ARTICLE_WS_USD:,.0f} = {ARTICLE_RATIO:.2f}×); * = connection-priced:",
        ]
        c2 = c2_table(ci.ratios)
        rows = [
            (
                ("* " if r.connection_priced else "  ") + r.pair,
                f"${r.sse_usd:,.2f}",
                f"${r.ws_usd:,.2f}",
                f"{r.ws_over_sse:.2f}×",
                r.band,
                r.driver or "—",
            )
            for r in c2.itertuples()
        ]
        lines += _columns(("pairing", "SSE", "WS", "WS/SSE", "band", "driver"), rows, left=1)
    if inverse and len(ci.ratios):
        inv = c2_inverse(ci.profile, ci.platforms, ci.calibrations)
        lines += ["", "Usage that would reproduce the article's figures on our prices:"]
        rows = [
            (
                r.pair,
                _fmt(r.mau_for_ws_4100, "{:,.0f}"),
                _fmt(r.mau_for_sse_680, "{:,.0f}"),
                _fmt(r.ratio_at_ws_4100, "{:.2f}×"),
                _fmt(r.tokens_per_frame_for_6x, "{:.1f}"),
            )
            for r in inv.itertuples()
        ]
        head = ("pairing", "MAU: WS $4,100", "MAU: SSE $680", "WS/SSE there", "tok/frame for 6×")
        lines += _columns(head, rows, left=1)
        lines.append("  (n/m: no value in the searched range gives the article's figure)")
    if ci.warnings:
        lines += ["", "Price warnings:", *(f"  {w}" for w in ci.warnings)]
    return "\n".join(lines)


def cmd_cost(args: argparse.Namespace) -> int:
    from analysis.cost_run import cost_inputs, missing_for_cost, run_summary
    from analysis.load import load_run
    from analysis.report import resolve_run
    from core.runfolder import SchemaMismatch

    try:
        run = resolve_run(args.run)
        data = load_run(run)
        summary = run_summary(run, data, args.n_boot)
        ci = cost_inputs(
            data,
            summary,
            profile=args.profile,
            platforms=args.platform or None,
            free_tiers=args.free_tiers,
            what_ifs=args.set,
            pricing_dir=args.pricing_dir,
        )
    except (FileNotFoundError, SchemaMismatch, ValueError) as exc:
        # PricingError, ProfileError and WhatIfError are ValueErrors with one-line messages
        return _err(str(exc))
    if ci.table.empty:
        return _err(f"no measured usage in this run: {missing_for_cost(summary, data)}")
    print(cost_text(ci, summary))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    from analysis.cost_run import DEFAULT_PROFILE
    from analysis.cost_whatif import known_keys

    k = sub.add_parser(
        "cost",
        help="monthly cost per platform and arm from a run's usage (with what-ifs)",
        description=__doc__.split("\n\n")[0],
    )
    k.add_argument("run", nargs="?", default="latest", help="run folder or 'latest'")
    k.add_argument("--profile", default=DEFAULT_PROFILE, help="profile name or TOML path")
    k.add_argument("--platform", action="append", default=[], help="pricing file name (repeatable)")
    k.add_argument("--free-tiers", action="store_true", help="apply free tiers")
    k.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="what-if, repeatable; keys: " + ", ".join(known_keys()),
    )
    k.add_argument("--pricing-dir", type=Path, default=None, help="folder of pricing TOML files")
    k.add_argument("--n-boot", type=int, default=200)
    k.set_defaults(func=cmd_cost)
