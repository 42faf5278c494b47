"""The README's Performance block, generated from a committed perf.json (issue 7: the
README's table must match a committed full run).

`python -m bench.perf.readme [RUN_DIR] [--check]` rewrites the lines between
``<!-- perf:begin -->`` and ``<!-- perf:end -->`` in README.md from `RUN_DIR/perf.json`
(default: results/sample/perf); `--check` only says whether they match (exit 1 if not).
tests/bench/test_readme_perf.py runs the check, so a table edited by hand, or a new run
committed without regenerating the block, fails the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.perf.report import SERVERS, client_section, md_table, verdict
from bench.perf.why import why_section

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- perf:begin -->", "<!-- perf:end -->"
DEFAULT_RUN = ROOT / "results" / "sample" / "perf"


def render_block(perf: Mapping[str, Any], source: str) -> str:
    """The Markdown between the markers: the run, command, machine, targets, why."""
    host, pin = perf.get("host", {}), perf.get("pinning", {})
    lines = [
        f"Latest full run `{perf.get('run_id', '?')}` — committed as `{source}/perf.json` "
        "(with `perf.md`, `profiles/` and figures):",
        "",
        f"Command: `{perf.get('command', 'ssevsws perf')}`  ",
        f"Machine: {host.get('cpu_model', '?')}, {host.get('cpu_count', '?')} CPUs, kernel "
        f"{host.get('kernel', '?')}, Python {host.get('python', '?')}.  ",
        f"Pinning: servers on CPU {pin.get('server_cpus')}, clients on CPU "
        f"{pin.get('client_cpus')}.  ",
        *_load_lines(perf),
        "",
        md_table(
            ["check", "value", "target", "verdict"],
            [
                [r["name"], r["value"], f"{r['op']} {r['target']:,.2f}", verdict(r)]
                for r in perf.get("ratios", [])
            ],
        ),
    ]
    lines += [x.replace("## ", "### ", 1) if x.startswith("## ") else x
              for x in client_section(perf)]  # fmt: skip
    lines += why_section(perf, lambda name: SERVERS.get(name, (name,))[0])
    return "\n".join(lines)


def _load_lines(perf: Mapping[str, Any]) -> list[str]:
    """How busy the (possibly shared) machine was: 1-min load average at the start and at
    the end of each phase."""
    start, by_phase = perf.get("loadavg_start"), perf.get("loadavg_end") or {}
    if not start and not by_phase:
        return []
    ends = ", ".join(f"{k} {v[0]:.2f}" for k, v in by_phase.items())
    text = f"Load average (1 min): {start[0]:.2f} at the start" if start else "Load average"
    return [text + (f"; at the end of {ends}" if ends else "") + ".  "]


def splice(readme: str, block: str) -> str:
    """`readme` with the text between the markers replaced by `block`."""
    try:
        head, rest = readme.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
    except ValueError:
        raise ValueError(f"README has no {BEGIN} … {END} block") from None
    return f"{head}{BEGIN}\n{block}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.perf.readme", description=__doc__)
    ap.add_argument("run_dir", nargs="?", default=str(DEFAULT_RUN))
    ap.add_argument("--readme", default=str(ROOT / "README.md"))
    ap.add_argument("--check", action="store_true", help="exit 1 if the README differs")
    args = ap.parse_args(argv)
    run = Path(args.run_dir).resolve()
    perf = json.loads((run / "perf.json").read_text())
    try:
        source = str(run.relative_to(ROOT))
    except ValueError:
        source = str(run)
    readme_path = Path(args.readme)
    old = readme_path.read_text()
    new = splice(old, render_block(perf, source))
    if args.check:
        if new != old:
            print(f"{readme_path}: the Performance block does not match {run}/perf.json")
            return 1
        print("README Performance block matches perf.json")
        return 0
    readme_path.write_text(new)
    print(f"{readme_path}: Performance block written from {run}/perf.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
