"""`ssevsws bench`: the default suite into one run folder, then the report (`make bench`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.cmd_run import arm_list, check_results, positive_int
from core.scenario import ScenarioError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="run a suite of scenarios (default: chat, idle-hold, reconnect, cancel, ramp) "
        "on both arms and build the report",
        description="Run a suite (bench/suites/*.toml) into one run folder, A B A B, "
        "then write report.html / report.md in it.",
    )
    p.add_argument("--suite", default=None, help="suite name or .toml path (default: default)")
    p.add_argument("--quick", action="store_true", help="the ~2-minute smoke suite")
    p.add_argument(
        "--protocols", type=arm_list, default=None, help="arms, comma-separated (default: suite's)"
    )
    p.add_argument("--repetitions", type=positive_int, default=None, help="override the suite's")
    p.add_argument("--results", type=Path, default=Path("results"), help="results folder")
    p.add_argument("--no-report", action="store_true", help="skip building the report")
    p.set_defaults(func=cmd_bench, _parser=p)


def cmd_bench(args: argparse.Namespace) -> int:
    from bench.plan import ArmTarget, estimate_s, plan_suite
    from bench.progress import Progress
    from bench.run import Runner, RunOptions
    from bench.suite import load_suite, resolve_suite_path

    parser: argparse.ArgumentParser = args._parser
    name = args.suite or ("quick" if args.quick else "default")
    check_results(parser, args.results)
    arms_arg = args.protocols
    try:
        suite = load_suite(resolve_suite_path(name), arms=arms_arg, repetitions=args.repetitions)
    except ScenarioError as exc:
        parser.error(str(exc))
    for note in suite.notes:
        print(f"note: {note}", flush=True)
    if not suite.scenarios:
        parser.error(f"suite {suite.name}: no scenario runs the arms asked for")
    first, first_src = suite.scenarios[0]
    arms = [ArmTarget.named(a) for a in suite.arms]
    estimate = estimate_s(plan_suite([s for s, _ in suite.scenarios], arms), first)
    print(
        f"suite {suite.name}: {len(suite.scenarios)} scenarios "
        f"({', '.join(s.name for s, _ in suite.scenarios)}), arms {', '.join(suite.arms)}, "
        f"about {estimate / 60:.1f} min (budget {suite.budget_s / 60:.0f} min)",
        flush=True,
    )
    if estimate > suite.budget_s:
        print(
            f"warning: the estimate exceeds the suite's budget_s={suite.budget_s:g}",
            file=sys.stderr,
        )
    t0 = time.monotonic()
    with Progress(estimate) as progress:
        opts = RunOptions(
            scenario=first,
            scenario_path=first_src,
            arms=arms,
            results=args.results,
            argv=list(sys.argv),
            out=progress.out,
            suite=suite.scenarios,
            suite_name=suite.name,
            on_phase=progress.on_phase,
        )
        runner = Runner(opts)
        code = runner.run()
    run_dir = runner.run_dir
    wall = time.monotonic() - t0
    print(f"suite wall time: {wall / 60:.1f} min", flush=True)
    if run_dir is None:
        return code or 1
    if code in (130, 143):
        print(
            f"interrupted: the finished phases are readable in {run_dir} (marked incomplete);\n"
            f"build a report of them with `ssevsws report {run_dir}`",
            flush=True,
        )
        return code
    if not args.no_report:
        from analysis.report import build_report

        try:
            outputs = build_report(run_dir)
        except Exception as exc:  # the measurements are safe on disk; say so
            print(
                f"report failed: {type(exc).__name__}: {exc}\n"
                f"the run folder is intact: retry with `ssevsws report {run_dir}`",
                file=sys.stderr,
            )
            return code or 1
        html = outputs.get("html") if isinstance(outputs, dict) else None
        print(f"report: {html or run_dir / 'report.html'}", flush=True)
    return code
