"""What one `ssevsws run` will do, computed before anything starts: where the scenarios
and the locustfile are, the arms, the phase order and seeds, and the exact server and
Locust command lines (pure functions, unit-tested without processes)."""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.faultproxy.profile import NetworkProfile, ProfileError, load_profile
from bench.nginx_conf import ProxyVariant, variant_from_dict
from bench.procs import LOOPBACK
from core.arms import Arm, Protocol, get_arm
from core.runfolder import sanitize_name
from core.scenario import (
    SERVER_TUNING,
    NetworkVariantSpec,
    ProxyVariantSpec,
    Scenario,
    ScenarioError,
)

REPO = Path(__file__).resolve().parents[1]
#: What the manifest says of server-side figures when the user brought their own server.
FOREIGN = "not measured: foreign server"
#: Locust gets this long beyond run time + stop timeout before it is terminated.
PHASE_MARGIN_S = 30.0


# --------------------------------------------------------------------------- locating files


def loadtests_dir() -> Path:
    """The loadtests package folder, found without importing it (bench never imports
    loadtests: docs/architecture.md, the arrows)."""
    with contextlib.suppress(ImportError, ValueError):
        spec = importlib.util.find_spec("loadtests")
        if spec is not None and spec.submodule_search_locations:
            return Path(next(iter(spec.submodule_search_locations)))
    return REPO / "loadtests"


def scenarios_dir() -> Path:
    return loadtests_dir() / "scenarios"


def locustfile() -> Path:
    return loadtests_dir() / "locustfile.py"


def available_scenarios() -> list[str]:
    d = scenarios_dir()
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def resolve_scenario_path(arg: str) -> Path:
    """A scenario name in loadtests/scenarios/ or a path to a .toml file."""
    path = Path(arg).expanduser()
    if path.suffix == ".toml" or os.sep in arg:
        if path.is_file():
            return path.resolve()
        raise ScenarioError(f"scenario file not found: {arg}")
    named = scenarios_dir() / f"{arg}.toml"
    if named.is_file():
        return named
    known = ", ".join(available_scenarios()) or f"none found in {scenarios_dir()}"
    raise ScenarioError(f"unknown scenario {arg!r} (known: {known}; or give a path to a .toml)")


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class ArmTarget:
    """A registered arm (core.arms) and where this run reaches it: a reference server
    started for every phase, or the user's own URL."""

    arm: Arm
    url: str | None = None  # None: a reference server is started for every phase

    @classmethod
    def named(cls, name: str, url: str | None = None) -> ArmTarget:
        """The registry's arm of that name (UnknownArm if there is none)."""
        return cls(get_arm(name), url)

    @property
    def name(self) -> str:
        return self.arm.name

    @property
    def protocol(self) -> Protocol:
        return self.arm.protocol

    @property
    def reference(self) -> bool:
        return self.url is None


@dataclass(frozen=True)
class PhasePlan:
    index: int  # 1-based position in the run
    name: str  # "<scenario>/<arm>/r<rep>"
    arm: ArmTarget
    rep: int
    seed: int
    #: The scenario this phase runs (a suite mixes several in one run folder); with a
    #: proxy variant, already carrying the variant's server overrides.
    scenario: Scenario | None = None
    #: The scenario's `[proxy]` variant of this phase (None: the scenario has no [proxy]).
    proxy: ProxyVariantSpec | None = None
    #: The `[network]` entry of this phase (None: the scenario has no [network]).
    network: NetworkVariantSpec | None = None

    @property
    def nginx(self) -> ProxyVariant | None:
        """The nginx configuration in front of the server (None: direct, no proxy)."""
        if self.proxy is None or self.proxy.direct:
            return None
        return nginx_variant(self.proxy)

    @property
    def group(self) -> str:
        """The analysis group: "<scenario>" or "<scenario>.<variant>" (built, never parsed
        back from the name: records carry scenario / variant as columns)."""
        assert self.scenario is not None, "plan_phases sets every phase's scenario"
        name = self.scenario.name
        return name if self.variant is None else f"{name}.{self.variant}"

    @property
    def variant(self) -> str | None:
        """The phase's configuration label: its `[proxy]` variant, its `[network]` entry,
        or both joined by "." (None: neither)."""
        labels = [x.name for x in (self.proxy, self.network) if x is not None]
        return ".".join(labels) or None

    @property
    def stem(self) -> str:
        """File-name form of the phase name (locust/<stem>*.csv, phases/<stem>.json)."""
        return sanitize_name(self.name.replace("/", "_"))


def phase_seed(scenario_seed: int, rep: int) -> int:
    """Repetition 1 uses the scenario's seed itself; later ones a distinct seed. Both arms
    of one repetition share it, so they stream the same tokens on the same schedule."""
    return scenario_seed + (rep - 1) * 1000


def nginx_variant(v: ProxyVariantSpec) -> ProxyVariant:
    """The nginx ProxyVariant of a `[proxy]` entry, named after its label."""
    return variant_from_dict(v.nginx_dict()).with_(name=v.name)


def check_proxy(scenario: Scenario) -> None:
    """Every nginx variant of the scenario must render (unknown preset / field: named)."""
    for v in scenario.proxy.variants:
        if not v.direct:
            try:
                nginx_variant(v)
            except (ValueError, TypeError) as exc:
                raise ScenarioError(f"{scenario.name}: proxy variant {v.name!r}: {exc}") from None


def check_network(scenario: Scenario) -> None:
    """Every `[network]` profile must load with its overrides (named errors)."""
    for v in scenario.network.profiles:
        try:
            network_profile(v, scenario)
        except ProfileError as exc:
            raise ScenarioError(f"{scenario.name}: network {v.name}: {exc}") from None


def network_overrides(v: NetworkVariantSpec, scenario: Scenario) -> dict[str, Any]:
    """The overrides a `[network]` entry runs with: none for a no-proxy profile (loopback
    stays the untouched control), else the section's with the entry's own over them."""
    if not load_profile(v.profile).proxy:
        return {}
    return scenario.network.overrides_for(v)


def network_profile(v: NetworkVariantSpec, scenario: Scenario) -> NetworkProfile:
    """A `[network]` entry's profile with its overrides applied."""
    return load_profile(v.profile, network_overrides(v, scenario))


def plan_phases(
    scenario: Scenario, arms: list[ArmTarget], *, first_index: int = 1
) -> list[PhasePlan]:
    """Repetitions outermost, arms interleaved inside: A B A B (docs/methodology.md). With
    `[proxy]` variants: per repetition, each variant's arms in turn (V1-A V1-B V2-A V2-B …),
    phases named ``<scenario>.<variant>/<arm>/r<rep>``. With `[network]` entries, likewise
    within each variant: ``<scenario>[.<variant>].<network label>/<arm>/r<rep>``."""
    check_proxy(scenario)
    check_network(scenario)
    variants: list[ProxyVariantSpec | None] = list(scenario.proxy.variants) or [None]
    networks: list[NetworkVariantSpec | None] = list(scenario.network.profiles) or [None]
    plans: list[PhasePlan] = []
    for rep in range(1, scenario.repetitions + 1):
        for v in variants:
            sc = scenario if v is None else scenario.for_variant(v)
            for net in networks:
                labels = (scenario.name, v.name if v else None, net.name if net else None)
                group = ".".join(x for x in labels if x)
                for arm in arms:
                    plans.append(
                        PhasePlan(
                            index=first_index + len(plans),
                            name=f"{group}/{arm.name}/r{rep}",
                            arm=arm,
                            rep=rep,
                            seed=phase_seed(scenario.seed, rep),
                            scenario=sc,
                            proxy=v,
                            network=net,
                        )
                    )
    return plans


def plan_suite(scenarios: list[Scenario], arms: list[ArmTarget]) -> list[PhasePlan]:
    """Several scenarios in one run folder: each one's phases A B A B, one after another.
    A scenario whose own arms leave some of `arms` out (proxy-h2: SSE only; a suite entry
    with arms of its own) runs only its own, in its own order."""
    plans: list[PhasePlan] = []
    by_name = {a.name: a for a in arms}
    for scenario in scenarios:
        mine = [by_name[n] for n in scenario.arms if n in by_name] or arms
        plans += plan_phases(scenario, mine, first_index=len(plans) + 1)
    return plans


def server_command(arm: str, scenario: Scenario, tls: tuple[str, str] | None = None) -> list[str]:
    """`python -m servers KIND` (the arm's reference server) on loopback, port 0
    (announced), the scenario's settings; with `tls` (cert, key: the run's certificate,
    for a scenario with ``server.tls``) it serves https / wss."""
    kind = get_arm(arm).server_kind
    if kind is None:
        raise ScenarioError(f"arm {arm!r} has no reference server: give its URL")
    srv = scenario.server
    cmd = [
        sys.executable,
        "-m",
        "servers",
        kind,
        "--host",
        LOOPBACK,
        "--port",
        "0",
        "--heartbeat-s",
        f"{srv.heartbeat_s:g}",
        "--retry-ms",
        str(srv.retry_ms),
        "--ws-compression",
        srv.ws_compression,
    ]
    for name in SERVER_TUNING:  # timeouts and limits, always explicit (the manifest)
        value = getattr(srv, name)
        text = f"{value:g}" if isinstance(value, float) else str(value)
        cmd += ["--" + name.replace("_", "-"), text]
    if not srv.accel_header:
        cmd.append("--no-accel-header")
    if srv.tls:
        if tls is None:
            raise ScenarioError(f"{scenario.name}: server.tls needs the run's certificate")
        cmd += ["--tls-cert", tls[0], "--tls-key", tls[1]]
    return cmd


def run_seconds(scenario: Scenario) -> int:
    """Locust's run time in whole seconds (its -t takes integers; rounded up)."""
    return scenario.load.run_s


def locust_command(scenario: Scenario, csv_prefix: Path) -> list[str]:
    """Headless Locust for one phase. With ramp steps the locustfile's LoadTestShape
    drives users and run time, so -u/-r/-t are left out."""
    load = scenario.load
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile()),
        "--headless",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--stop-timeout",
        str(max(0, math.ceil(load.stop_timeout_s))),
        "--csv",
        str(csv_prefix),
    ]
    if not load.ramp_steps:
        cmd += [
            "-u",
            str(load.users),
            "-r",
            f"{load.spawn_rate:g}",
            "-t",
            f"{run_seconds(scenario)}s",
        ]
    if load.processes > 1:
        cmd += ["--processes", str(load.processes)]
    return cmd


def browser_command() -> list[str]:
    """The browser arms' load generator (loadtests/browser), which the runner starts
    instead of Locust for a browser arm: same contract as Locust — the phase config from
    $SSEVSWS_PHASE, records into the run folder, Locust-like exit codes; run time and users
    come from the scenario in the phase config. One process, never distributed."""
    return [sys.executable, "-m", "loadtests.browser"]


def phase_timeout_s(scenario: Scenario) -> float:
    return run_seconds(scenario) + math.ceil(scenario.load.stop_timeout_s) + PHASE_MARGIN_S


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for servers and Locust: this one minus LOCUST_* settings (which
    would silently change a phase), plus the repo on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


#: Seconds a phase takes beyond its run time (server start, Locust start/stop, scrape).
PHASE_OVERHEAD_S = 6


def estimate_s(plans: list[PhasePlan], default: Scenario, pause_s: float = 1.0) -> float:
    """Rough wall time of a plan, for ETAs and the suite budget check."""
    return sum(run_seconds(scenario_of(p, default)) + PHASE_OVERHEAD_S + pause_s for p in plans)


def phase_columns(plan: PhasePlan, default: Scenario) -> dict[str, Any]:
    """The scenario / variant / rep record columns of the phase's rows (schema 2)."""
    return {
        "scenario": scenario_of(plan, default).name,
        "variant": plan.variant,
        "rep": plan.rep,
    }


def scenario_of(plan: PhasePlan, default: Scenario) -> Scenario:
    return plan.scenario if plan.scenario is not None else default
