"""Registry of `ssevsws` subcommands other than `serve` (each module adds its parser)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add every subcommand's parser to `sub`; each sets `func` via set_defaults."""
    from bench import cmd_bench, cmd_cost, cmd_publish, cmd_report, cmd_run
    from bench.perf import cmd as perf_cmd

    cmd_run.add_parser(sub)
    cmd_bench.add_parser(sub)
    cmd_report.add_parser(sub)
    cmd_cost.add_parser(sub)
    cmd_publish.add_parser(sub)
    perf_cmd.add_parser(sub)
