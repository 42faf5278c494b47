"""`ssevsws run SCENARIO [...]`: argument parsing and validation for the phase loop.

Every mistake the user can make on the command line (unknown scenario, bad override,
unreachable URL, a certificate that does not verify, an unknown payload format, a bad
--header or an environment variable it names that is not set, an arm without a URL when
using your own servers) ends here with a one-line message and exit code 2, before any run
folder is created.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.arms import (
    PROTOCOLS,
    UnknownArm,
    arm_for,
    arm_names,
    get_arm,
    is_known,
    protocol_of,
)
from core.client.tls import TLSSettings
from core.formats import UnknownFormat, format_names, get_format
from core.scenario import ScenarioError, load_scenario, with_overrides

RUN_EPILOG = """\
SCENARIO is a name from loadtests/scenarios/ (e.g. chat, reconnect, ramp, agent) or a path
to a .toml file. Arms run one after another, repetitions interleaved (A B A B); each phase
gets a fresh reference server on a free loopback port, unless --sse-url / --ws-url point at
your own endpoints: a URL with a path is used as given, a bare scheme://host:port gets the
payload format's path (--sse-format / --ws-format, default native: /v1/stream, /v1/ws).
Against your own endpoint the server's schedule is unknown: integrity, the scheduled TTFT
and server-side figures are recorded as not measured. https / wss are verified (--ca-file
for a self-signed server, --insecure to skip). --header 'Authorization: Bearer ${KEY}'
reads ${KEY} from the environment; header values are never written to the run folder.
--workers N runs a Locust master and N worker processes;
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


def format_name(text: str) -> str:
    try:
        get_format(text)
    except UnknownFormat as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


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
    p.add_argument(
        "--sse-url", metavar="URL", help="your own SSE endpoint: http(s)://HOST:PORT or a full URL"
    )
    p.add_argument(
        "--ws-url", metavar="URL", help="your own WS endpoint: ws(s)://HOST:PORT or a full URL"
    )
    for proto in PROTOCOLS:
        p.add_argument(
            f"--{proto}-format",
            type=format_name,
            metavar="FORMAT",
            help=f"payload format of the {proto.upper()} arm ({', '.join(format_names())}; "
            "default native): picks the registered arm that carries it",
        )
    p.add_argument("--model", metavar="NAME", help="model name the payload format sends")
    p.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra request header (repeatable); ${VAR} in VALUE is read from the environment; "
        "the run folder shows it redacted",
    )
    p.add_argument(
        "--ca-file", metavar="PEM", help="verify https / wss endpoints against this certificate"
    )
    p.add_argument("--insecure", action="store_true", help="do not verify https / wss certificates")
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


#: URL schemes each protocol's endpoint may be given in (http(s) for WS is mapped to ws(s)).
_SCHEMES = {"sse": ("http", "https"), "ws": ("ws", "wss", "http", "https")}


def _check_url(parser: argparse.ArgumentParser, option: str, url: str, protocol: str) -> str:
    parts = urlsplit(url)
    schemes = _SCHEMES[protocol]
    if parts.scheme not in schemes or not parts.hostname:
        parser.error(f"{option} {url}: expected {' or '.join(s + '://HOST:PORT' for s in schemes)}")
    try:
        _ = parts.port
    except ValueError as exc:
        parser.error(f"{option} {url}: {exc}")
    url = url.rstrip("/")
    if protocol == "ws" and parts.scheme.startswith("http"):
        url = "ws" + url[len("http") :]
    return url


def _client_tls(parser: argparse.ArgumentParser, args: argparse.Namespace) -> TLSSettings:
    """--ca-file / --insecure, checked (a CA file that does not load is a usage error)."""
    if args.ca_file and args.insecure:
        parser.error("--ca-file and --insecure: give one (verify against a file, or not at all)")
    tls = TLSSettings(ca_file=args.ca_file, insecure=args.insecure)
    if args.ca_file:
        try:
            tls.context()
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            parser.error(f"--ca-file {args.ca_file}: not a readable PEM certificate ({exc})")
    return tls


def _arms_for_endpoints(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The arms --sse-url / --ws-url / --sse-format / --ws-format ask for ([]: none given):
    --protocols names them, else each protocol given gets the arm of its format."""
    url = {"sse": args.sse_url, "ws": args.ws_url}
    fmt = {p: getattr(args, f"{p}_format") for p in PROTOCOLS}
    for proto, name in fmt.items():
        if name and proto not in get_format(name).protocols:
            forms = ", ".join(get_format(name).protocols)
            parser.error(f"--{proto}-format {name}: it has no {proto.upper()} form ({forms} only)")
    if not any(url.values()) and not any(fmt.values()):
        return []
    if args.protocols and any(fmt.values()):
        parser.error("--sse-format / --ws-format pick the arms: give them or --protocols")
    try:
        wanted = args.protocols or [
            arm_for(p, fmt[p] or "native").name for p in PROTOCOLS if url[p] or fmt[p]
        ]
    except UnknownArm as exc:
        parser.error(str(exc))
    missing = [a for a in wanted if any(url.values()) and not url[protocol_of(a)]]
    if missing:
        need = sorted({f"--{protocol_of(a)}-url" for a in missing})
        parser.error(
            f"with your own servers every arm needs a URL: missing {', '.join(need)} "
            "(or narrow --protocols)"
        )
    return wanted


def _check_browser_arms(
    parser: argparse.ArgumentParser, args: argparse.Namespace, scenario: Any
) -> None:
    """The browser arms' pages talk the native format to the run's own plain-HTTP reference
    servers: your own endpoint, headers, a model name or TLS are a usage error there."""
    browser = [a for a in scenario.arms if get_arm(a).is_browser]
    if not browser:
        return
    given = [
        opt
        for opt, on in (
            ("--sse-url", args.sse_url),
            ("--ws-url", args.ws_url),
            ("--header", args.header),
            ("--model", args.model),
            ("--ca-file", args.ca_file),
            ("--insecure", args.insecure),
        )
        if on
    ]
    if scenario.server.tls or any(
        v.server.tls for v in map(scenario.for_variant, scenario.proxy.variants)
    ):
        given.append("server.tls")
    if given:
        parser.error(
            f"{', '.join(browser)}: the browser arms run against the reference servers over "
            f"plain HTTP only, not with {', '.join(given)}"
        )


def resolve(args: argparse.Namespace) -> Any:
    """Namespace → bench.run.RunOptions, or parser.error (exit 2) with a clear message."""
    from bench.headers import HeaderError, parse_headers, redact_argv
    from bench.hostcheck import check_reachable
    from bench.plan import ArmTarget, resolve_scenario_path
    from bench.run import RunOptions

    parser: argparse.ArgumentParser = args._parser
    check_results(parser, args.results)
    try:
        headers = parse_headers(args.header)
    except HeaderError as exc:
        parser.error(str(exc))
    tls = _client_tls(parser, args)
    if args.model is not None and not args.model.strip():
        parser.error("--model: give a model name")
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
        wanted = _arms_for_endpoints(parser, args)
        if wanted:
            overrides["arms"] = wanted
        scenario = with_overrides(scenario, **overrides)
    except ScenarioError as exc:
        parser.error(str(exc))
    except TypeError as exc:  # e.g. with_overrides given a field of the wrong kind
        parser.error(f"bad override: {exc}")
    _check_browser_arms(parser, args, scenario)
    arms = []
    for name in scenario.arms:
        proto = protocol_of(name)
        given = getattr(args, f"{proto}_url")
        url = _check_url(parser, f"--{proto}-url", given, proto) if given else None
        if url is not None:
            why = check_reachable(url, tls)
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
        argv=redact_argv(sys.argv),
        pause_s=args.pause,
        deployment=deployment,
        headers=headers,
        header_specs=args.header,
        tls=tls,
        model=args.model,
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
