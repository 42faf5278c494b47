"""`ssevsws run SCENARIO [...]`: argument parsing and validation for the phase loop.

Every mistake the user can make on the command line (unknown scenario, bad override,
unreachable or TLS URL, an arm without a URL when using your own servers) ends here with
a one-line message and exit code 2, before any run folder is created.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.arms import PROTOCOLS, arm_names, is_known
from core.scenario import ScenarioError, load_scenario, with_overrides

RUN_EPILOG = """\
SCENARIO is a name from loadtests/scenarios/ (e.g. chat, reconnect, ramp) or a path to a
.toml file. Arms run one after another, repetitions interleaved (A B A B); each phase gets a
fresh reference server on a free loopback port, unless --sse-url / --ws-url point at your own
servers (base URLs: /v1/stream and /v1/ws are appended; server-side figures are then
recorded as not measured). --workers N runs a Locust master and N worker processes;
--hosts H (root) also puts the server, the master and H load hosts in network namespaces
of their own (10.213.0.0/24, made and removed by the run). Results:
<results>/<UTC time>_<scenario>_<git7>/.
A phase fails when more than --max-error-share of its streams end in an error or a timeout
(default: the scenario's load.max_error_share, 0.01), when fewer stream records reach the
disk than Locust counted, or when a record writer fails (e.g. the disk is full).
Exit codes: 0 complete, 1 a phase failed (or the run crashed), 2 usage, 130 Ctrl-C,
143 SIGTERM.
"""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = _finite(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _share(text: str) -> float:
    value = _finite(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def results_problem(path: Path) -> str | None:
    """Why a run folder cannot be made under `path` (None: it can), without creating
    anything: `path` or its nearest existing ancestor must be a writable folder."""
    probe = path.expanduser()
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return f"{probe} is not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def check_results(parser: argparse.ArgumentParser, path: Path) -> None:
    """parser.error (exit 2) when no run folder can be made under `path`."""
    why = results_problem(path)
    if why:
        parser.error(f"--results {path}: {why}")


def arm_list(text: str) -> list[str]:
    arms = [a.strip() for a in text.split(",") if a.strip()]
    unknown = [a for a in arms if not is_known(a)]
    if not arms or unknown:
        known = ", ".join(arm_names())
        raise argparse.ArgumentTypeError(
            f"unknown arm(s) {', '.join(unknown) or '(none)'}; choose from {known}"
        )
    return list(dict.fromkeys(arms))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a scenario against both arms and write a run folder",
        description="Run a scenario: servers, headless Locust, resource sampling, manifest.",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("scenario", metavar="SCENARIO", help="scenario name or path to a .toml")
    p.add_argument("--users", type=positive_int, help="concurrent users (load.users)")
    p.add_argument("--duration", type=_positive_float, metavar="S", help="seconds per phase")
    p.add_argument(
        "--protocols",
        type=arm_list,
        metavar="ARMS",
        help=f"comma-separated arms to run ({', '.join(arm_names())}); default: the scenario's",
    )
    p.add_argument(
        "--processes", type=positive_int, metavar="N", help="Locust --processes N (workers)"
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="Locust distributed mode: a --master and N --worker processes",
    )
    p.add_argument(
        "--hosts",
        type=positive_int,
        metavar="H",
        help="root: server, master and H load hosts each in a network namespace with its own "
        "address; workers (default H) spread over them",
    )
    p.add_argument("--repetitions", type=positive_int, metavar="R", help="repetitions per arm")
    p.add_argument("--sse-url", metavar="URL", help="your own SSE server (base URL, http://)")
    p.add_argument("--ws-url", metavar="URL", help="your own WS server (base URL, ws://)")
    p.add_argument(
        "--results", type=Path, default=Path("results"), metavar="DIR", help="default ./results"
    )
    p.add_argument("--seed", type=int, help="scenario seed, 0..2**62 (phase seeds derive from it)")
    p.add_argument(
        "--pause",
        type=_non_negative_float,
        default=1.0,
        metavar="S",
        help="pause between phases (default 1)",
    )
    p.add_argument(
        "--max-error-share",
        type=_share,
        metavar="X",
        help="fail a phase when more than this share of its streams end in an error or a "
        "timeout (default: the scenario's load.max_error_share, 0.01)",
    )
    p.set_defaults(func=cmd_run, _parser=p)


def _check_url(parser: argparse.ArgumentParser, option: str, url: str, schemes: tuple) -> str:
    parts = urlsplit(url)
    if parts.scheme in ("https", "wss"):
        parser.error(f"{option} {url}: TLS is not supported by the load-test clients")
    if parts.scheme not in schemes or not parts.hostname:
        parser.error(f"{option} {url}: expected {' or '.join(s + '://HOST:PORT' for s in schemes)}")
    try:
        _ = parts.port
    except ValueError as exc:
        parser.error(f"{option} {url}: {exc}")
    return url.rstrip("/")


def resolve(args: argparse.Namespace) -> Any:
    """Namespace → bench.run.RunOptions, or parser.error (exit 2) with a clear message."""
    from bench.hostcheck import check_reachable
    from bench.plan import ArmTarget, resolve_scenario_path
    from bench.run import RunOptions

    parser: argparse.ArgumentParser = args._parser
    check_results(parser, args.results)
    try:
        path = resolve_scenario_path(args.scenario)
        scenario = load_scenario(path)
        overrides = {
            "users": args.users,
            "duration_s": args.duration,
            "processes": args.processes,
            "repetitions": args.repetitions,
            "seed": args.seed,
            "arms": args.protocols,
            "max_error_share": args.max_error_share,
        }
        if args.sse_url or args.ws_url:
            # --sse-url / --ws-url drive the arm named after their protocol
            given = {"sse": args.sse_url, "ws": args.ws_url}
            wanted = args.protocols or [a for a in PROTOCOLS if given[a]]
            missing = [a for a in wanted if not given.get(a)]
            if missing:
                parser.error(
                    f"with your own servers every arm needs a URL: missing "
                    f"{', '.join('--' + a + '-url' for a in missing)} (or narrow --protocols)"
                )
            overrides["arms"] = wanted
        scenario = with_overrides(scenario, **overrides)
    except ScenarioError as exc:
        parser.error(str(exc))
    except TypeError as exc:  # e.g. with_overrides given a field of the wrong kind
        parser.error(f"bad override: {exc}")
    arms = []
    for name in scenario.arms:
        url = None
        if name == "sse" and args.sse_url:
            url = _check_url(parser, "--sse-url", args.sse_url, ("http",))
        elif name == "ws" and args.ws_url:
            url = _check_url(parser, "--ws-url", args.ws_url, ("ws", "http"))
            url = "ws" + url[len("http") :] if url.startswith("http") else url
        if url is not None:
            why = check_reachable(url)
            if why:
                parser.error(f"{url}: {why}")
        arms.append(ArmTarget.named(name, url))
    if scenario.load.ramp_steps and (args.users or args.duration):
        print(
            f"note: {scenario.name} ramps {list(scenario.load.ramp_steps)} users, "
            f"{scenario.load.step_s:g} s a step; --users / --duration do not change the ramp",
            file=sys.stderr,
        )
    deployment = _deployment(parser, args, scenario, arms)
    return RunOptions(
        scenario=scenario,
        scenario_path=path,
        arms=arms,
        results=args.results,
        overrides=overrides,
        argv=list(sys.argv),
        pause_s=args.pause,
        deployment=deployment,
    )


def _deployment(
    parser: argparse.ArgumentParser, args: argparse.Namespace, scenario: Any, arms: list[Any]
) -> Any:
    """--workers / --hosts → bench.distributed.Deployment, or a one-line usage error."""
    from bench.distributed import Deployment, DeploymentError

    if args.hosts:
        if any(not a.reference for a in arms):
            parser.error("--hosts runs the reference servers in their own namespace: "
                         "it cannot reach --sse-url / --ws-url")  # fmt: skip
        hooked = [t for t, on in (("[proxy]", scenario.proxy.variants),
                                  ("[network]", scenario.network.profiles)) if on]  # fmt: skip
        if hooked:
            parser.error(f"--hosts: {scenario.name} has {' and '.join(hooked)} (its proxies "
                         "run on loopback); run it without --hosts")  # fmt: skip
    try:
        return Deployment.from_args(args.workers, args.hosts, scenario.load)
    except DeploymentError as exc:
        parser.error(str(exc))


def cmd_run(args: argparse.Namespace) -> int:
    from bench.run import run

    return run(resolve(args))
