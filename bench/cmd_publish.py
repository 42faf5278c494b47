"""`ssevsws publish RUN [RUN…] --out DIR`: a static folder of one or more runs for any
static host (analysis.publish): index.html comparing the runs, one report page per run
with its figures, the summary tables as CSV, the manifests and the methods page.

Exit codes: 0 published; 2 usage — a run that is missing, unreadable (schema version) or
has no record tables, or an --out that exists and is not empty without --force (one line
saying which).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

EXIT_USAGE = 2


def cmd_publish(args: argparse.Namespace) -> int:
    from analysis.publish import PublishError, publish

    t0 = time.monotonic()
    try:
        info = publish(
            args.runs,
            args.out,
            force=args.force,
            profile=args.profile,
            n_boot=args.n_boot,
            notes=args.note,
        )
    except PublishError as exc:
        print(f"ssevsws: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for r in info["runs"]:
        print(f"{r['run_id']:40s} → {args.out / 'runs' / r['slug'] / 'report.html'}")
    print(f"index        {args.out / 'index.html'}")
    print(f"published {len(info['files'])} files in {time.monotonic() - t0:.1f} s")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    from analysis.report import DEFAULT_PROFILE

    p = sub.add_parser(
        "publish",
        help="a static folder of runs for any static host (index, reports, CSV, methods)",
        epilog="Exit codes: 0 published, 2 usage (a run missing, unreadable or without "
        "records; --out not empty without --force).",
    )
    p.add_argument("runs", nargs="+", help="run folders (or 'latest'), in the order to compare")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty --out (removes only what a previous publish wrote there)",
    )
    p.add_argument("--profile", default=DEFAULT_PROFILE, help="usage profile for the cost part")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    p.add_argument(
        "--note",
        action="append",
        default=[],
        help="a fact about the conditions to print with them (repeatable), e.g. the "
        "machine's load average while the runs ran",
    )
    p.set_defaults(func=cmd_publish)
