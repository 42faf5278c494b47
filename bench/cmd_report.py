"""`ssevsws report`, `ssevsws compare`, `ssevsws cost`: thin shells over analysis.report.

* ``report RUN`` — execute notebooks/report.ipynb headless on RUN (a folder or
  ``latest``) → report.html, report.md, figures/, summary.json in the run folder (or --out).
* ``compare RUN_A RUN_B`` — print the main metrics side by side with B/A ratios, then
  write compare.html / compare.md (RUN_B's folder or --out). A run whose record schema
  version analysis cannot read is refused (exit 2, one line); readable versions compare.
* ``cost RUN`` — monthly cost per platform and arm for a usage profile, calibrated with
  the run's measured usage, with what drives each line; then the WS/SSE ratios.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")

EXIT_USAGE = 2


def _err(msg: str) -> int:
    print(f"ssevsws: {msg}", file=sys.stderr)
    return EXIT_USAGE


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import build_report
    from analysis.report_notebook import NotebookError
    from core.runfolder import SchemaMismatch

    t0 = time.monotonic()
    try:
        paths = build_report(
            args.run, args.out, profile=args.profile, n_boot=args.n_boot, timeout=args.timeout
        )
    except (FileNotFoundError, SchemaMismatch) as exc:
        return _err(str(exc))
    except NotebookError as exc:
        print(f"ssevsws: the report notebook failed:\n{exc}", file=sys.stderr)
        return 1
    for name, p in paths.items():
        print(f"{name:13s} {p}")
    print(f"report built in {time.monotonic() - t0:.1f} s")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from analysis.load import load_runs
    from analysis.report import build_compare, format_compare, resolve_run
    from analysis.report_notebook import NotebookError
    from analysis.summary import summarize
    from core.runfolder import SchemaMismatch

    try:
        a, b = resolve_run(args.run_a), resolve_run(args.run_b)
    except FileNotFoundError as exc:
        return _err(str(exc))
    if (Path(a) / "perf.json").is_file() and (Path(b) / "perf.json").is_file():
        from bench.perf.report import compare_perf

        print(compare_perf(Path(a) / "perf.json", Path(b) / "perf.json"))  # issue 7
        return 0
    try:
        ra, rb = load_runs(a, b)
    except FileNotFoundError as exc:
        return _err(str(exc))
    except SchemaMismatch as exc:
        return _err(f"cannot compare: {exc}")
    sa, sb = summarize(ra, n_boot=args.n_boot), summarize(rb, n_boot=args.n_boot)
    print(format_compare(sa, sb))
    if args.no_report:
        return 0
    try:
        paths = build_compare(a, b, args.out, n_boot=args.n_boot, timeout=args.timeout)
    except NotebookError as exc:
        print(f"ssevsws: the compare notebook failed:\n{exc}", file=sys.stderr)
        return 1
    print()
    for name, p in paths.items():
        print(f"{name:13s} {p}")
    return 0


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


def _cost_text(ci: Any, summary: Any = None) -> str:
    from analysis.tables import fmt as _fmt

    lines = [
        f"profile {ci.profile.name}: {ci.profile.monthly_active_users:,.0f} MAU, "
        f"{ci.profile.sessions_per_month:,.0f} sessions/month; usage measured in scenario "
        f"{ci.scenario!r}",
        "",
    ]
    for arm, cal in ci.calibrations.items():
        u = ci.measured[arm]
        lines.append(
            f"measured {arm}: {u.streams:,.0f} streams, {u.tokens_delivered:,.0f} tokens, "
            f"{u.messages_out:,.0f} messages out, {u.connection_minutes_total:,.2f} "
            f"connection-min ({u.idle_share:.0%} idle) → "
            f"{_fmt(cal.bytes_out_per_token, '{:.1f}')} B out/token, "
            f"{_fmt(cal.messages_per_token, '{:.3f}')} msg/token, "
            f"{_fmt(cal.cpu_s_per_1k_tokens, '{:.4f}')} CPU-s/1k tok, "
            f"{_fmt(cal.kib_per_connection, '{:.1f}')} KiB/conn"
        )
    lines.append("")
    if summary is not None and summary.capacity:
        from analysis.capacity import format_capacity

        lines += [format_capacity(summary.capacity), ""]
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
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    lines += [line(head), "  ".join("-" * w for w in widths)]
    for r, row in zip(ci.table.itertuples(), rows, strict=True):
        lines.append(line(row))
        for d in str(r.drivers).split("; "):
            lines.append(f"    {d}")
    vm_lines = _vm_capacity_lines(ci)
    if vm_lines:
        lines += ["", "VM instance capacity used:", *vm_lines]
    if len(ci.ratios):
        lines += ["", "WS / SSE per platform pairing:"]
        for r in ci.ratios.itertuples():
            lines.append(
                f"  {r.pair}: {r.ws_over_sse:.2f}×  (driver {r.driver or '—'}) — {r.verdict}"
            )
    return "\n".join(lines)


def cmd_cost(args: argparse.Namespace) -> int:
    from analysis.cost import PricingError, ProfileError
    from analysis.load import load_run
    from analysis.report import cost_inputs, resolve_run
    from analysis.summary import summarize
    from core.runfolder import SchemaMismatch

    try:
        data = load_run(resolve_run(args.run))
        summary = summarize(data, n_boot=args.n_boot)
        ci = cost_inputs(
            data,
            summary,
            profile=args.profile,
            platforms=args.platform or None,
            free_tiers=args.free_tiers,
        )
    except (FileNotFoundError, SchemaMismatch, PricingError, ProfileError) as exc:
        return _err(str(exc))
    if ci.table.empty:
        return _err("no measured usage in this run (no streams with tokens): nothing to price")
    print(_cost_text(ci, summary))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    from analysis.report import DEFAULT_PROFILE

    p = sub.add_parser("report", help="build report.html / report.md for a run (headless notebook)")
    p.add_argument("run", nargs="?", default="latest", help="run folder or 'latest'")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: the run)")
    p.add_argument("--profile", default=DEFAULT_PROFILE, help="usage profile for the cost part")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--timeout", type=int, default=600, help="per-cell timeout, seconds")
    p.set_defaults(func=cmd_report)

    c = sub.add_parser("compare", help="compare two runs side by side (and write compare.html)")
    c.add_argument("run_a", help="run folder or 'latest' (A)")
    c.add_argument("run_b", help="run folder or 'latest' (B)")
    c.add_argument("--out", type=Path, default=None, help="output folder (default: RUN_B)")
    c.add_argument("--no-report", action="store_true", help="print the table only")
    c.add_argument("--n-boot", type=int, default=1000)
    c.add_argument("--timeout", type=int, default=600)
    c.set_defaults(func=cmd_compare)

    k = sub.add_parser("cost", help="monthly cost per platform and arm from a run's usage")
    k.add_argument("run", nargs="?", default="latest", help="run folder or 'latest'")
    k.add_argument("--profile", default=DEFAULT_PROFILE, help="profile name or TOML path")
    k.add_argument("--platform", action="append", default=[], help="pricing file name (repeatable)")
    k.add_argument("--free-tiers", action="store_true", help="apply free tiers")
    k.add_argument("--n-boot", type=int, default=200)
    k.set_defaults(func=cmd_cost)
