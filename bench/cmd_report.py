"""`ssevsws report`, `ssevsws compare`: thin shells over analysis.report.

* ``report RUN`` — execute notebooks/report.ipynb headless on RUN (a folder or
  ``latest``) → report.html, report.md, figures/, summary.json in the run folder (or --out).
  The run folder and the profile are checked first (exit 2, one line): no manifest, a
  manifest that is not JSON, an unknown record-schema version, a broken profile. A run
  that failed or is incomplete is still reported, and the exit code says so
  (`EXIT_RUN_NOT_COMPLETE`).
* ``compare RUN_A RUN_B`` — print the main metrics side by side with B/A ratios, then
  write compare.html / compare.md (RUN_B's folder or --out). A run whose record schema
  version analysis cannot read is refused (exit 2, one line); readable versions compare.
(``ssevsws cost`` lives in bench/cmd_cost.py.)
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
#: `report` built the report of a run whose manifest says failed or incomplete.
EXIT_RUN_NOT_COMPLETE = 3


def _err(msg: str) -> int:
    print(f"ssevsws: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _check_report_inputs(run: str, profile: str) -> tuple[dict[str, Any], str | None]:
    """(the run's manifest, None) — or the one-line reason the report cannot be built
    from them, found before the notebook starts."""
    import json

    from analysis.cost import load_profile
    from analysis.load import check_readable
    from analysis.report import resolve_run
    from core.runfolder import SchemaMismatch, read_manifest

    try:
        path = resolve_run(run)
        manifest = read_manifest(path)
    except FileNotFoundError as exc:
        return {}, str(exc)
    except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        what = "not valid JSON" if isinstance(exc, json.JSONDecodeError) else str(exc)
        return {}, f"{run}: cannot read manifest.json: {what}"
    if not isinstance(manifest, dict):
        return {}, f"{run}: manifest.json is not a JSON object"
    try:
        check_readable([manifest])
    except SchemaMismatch as exc:
        return manifest, str(exc)
    try:
        load_profile(profile)
    except (OSError, ValueError) as exc:  # ProfileError, TOMLDecodeError are ValueErrors
        return manifest, f"--profile {profile}: {exc}"
    return manifest, None


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import build_report
    from analysis.report_notebook import NotebookError
    from core.runfolder import STATUS_COMPLETE, SchemaMismatch

    manifest, why = _check_report_inputs(args.run, args.profile)
    if why:
        return _err(why)
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
    status = manifest.get("status")
    if status != STATUS_COMPLETE:
        reason = manifest.get("status_reason") or manifest.get("incomplete_reason") or "?"
        print(f"ssevsws: the run is {str(status).upper()}: {reason}", file=sys.stderr)
        return EXIT_RUN_NOT_COMPLETE
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


def add_parser(sub: argparse._SubParsersAction) -> None:
    from analysis.report import DEFAULT_PROFILE

    p = sub.add_parser(
        "report",
        help="build report.html / report.md for a run (headless notebook)",
        epilog="Exit codes: 0 report built (run complete), 1 the notebook failed, 2 usage "
        f"(no run, unknown schema version, broken profile), {EXIT_RUN_NOT_COMPLETE} report "
        "built but the run failed or is incomplete.",
    )
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
