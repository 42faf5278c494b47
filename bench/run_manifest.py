"""What `ssevsws run` writes into the manifest about the run and each phase (pure
functions of the plan; the fields are described in results/README.md)."""

from __future__ import annotations

import math
import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bench.headers import describe as describe_headers
from bench.hooks import sampler_roles
from bench.hostcheck import TIME_WAIT_LIMIT
from bench.plan import (
    FOREIGN,
    ArmTarget,
    PhasePlan,
    locustfile,
    phase_timeout_s,
    run_seconds,
    server_command,
)
from bench.procs import LOOPBACK
from core.client.tls import is_tls_url
from core.scenario import SERVER_TUNING, Scenario

if TYPE_CHECKING:
    from bench.run import RunOptions


#: Where the run's certificate goes in the server command the manifest shows up front (the
#: phases record the real command).
_TLS_PLACEHOLDER = ("<run>/tls/cert.pem", "<run>/tls/key.pem")


def utc_now() -> str:
    return datetime.now(UTC).isoformat()


def arm_manifest(arm: ArmTarget, scenario: Scenario) -> dict[str, Any]:
    if not arm.reference:
        return {
            "name": arm.name,
            "protocol": arm.protocol,
            "payload_format": arm.arm.format,
            "reference_server": False,
            "url": arm.url,
            "tls": is_tls_url(arm.url or ""),
            "server": FOREIGN,
        }
    srv = scenario.server
    return {
        "name": arm.name,
        "protocol": arm.protocol,
        "payload_format": arm.arm.format,
        "reference_server": True,
        "url": None,  # a fresh loopback port every phase: see phases[].url
        "server": {
            "kind": arm.arm.server_kind,
            "command": server_command(arm.name, scenario, _TLS_PLACEHOLDER if srv.tls else None),
            "host": LOOPBACK,
            "heartbeat_s": srv.heartbeat_s,
            "accel_header": srv.accel_header,
            "retry_ms": srv.retry_ms,
            "ws_compression": srv.ws_compression if arm.protocol == "ws" else None,
            "keepalive": "idle connections closed after idle_timeout_s (server flag)"
            if arm.protocol == "sse"
            else None,
            **{name: getattr(srv, name) for name in SERVER_TUNING},
            "tls": "self-signed certificate made for the run (server_tls), verified by the clients"
            if srv.tls
            else "off",
            "fresh_process_per_phase": True,
        },
    }


def run_manifest(
    opts: RunOptions, plans: list[PhasePlan], limits: dict[str, Any]
) -> dict[str, Any]:
    """What the manifest says of the run before its first phase (results/README.md)."""
    s = opts.scenario
    foreign = [a.name for a in opts.arms if not a.reference]
    return {
        "tool": "ssevsws run",
        "command": {"argv": opts.argv, "cwd": os.getcwd()},
        "endpoints": {
            "client_tls": opts.tls.describe(),
            "headers": describe_headers(opts.header_specs),
            "model": opts.model,
            "rule": "a URL with a path is used as given; a bare scheme://host:port gets the "
            "payload format's path",
        },
        "scenario": s.to_dict(),
        "scenario_source": str(opts.scenario_path),
        "overrides": {k: v for k, v in opts.overrides.items() if v is not None},
        "seeds": {
            "scenario": s.seed,
            "rule": "phase seed = scenario seed + (rep - 1) * 1000, same for every arm",
            "phases": {p.name: p.seed for p in plans},
        },
        "arms": [arm_manifest(a, s) for a in opts.arms],
        "order": [p.name for p in plans],
        "phases": [],
        "server_side": (
            {
                "server_resources": FOREIGN,
                "server_metrics": FOREIGN,
                "server_stamps": "as sent by the foreign server (t_server_ns), if any",
                "arms": foreign,
            }
            if foreign
            else {"server_resources": "measured", "server_metrics": "measured"}
        ),
        "load_generator": {
            "tool": "locust",
            "locustfile": str(locustfile()),
            "processes": s.load.processes,
            "run_s": run_seconds(s),
            "stop_timeout_s": math.ceil(s.load.stop_timeout_s),
            "hard_timeout_s": phase_timeout_s(s),
            "max_error_share": s.load.max_error_share,
            "phase_check": "a phase fails when Locust does not end on its own, when fewer "
            "stream records reach the disk than Locust counted, when a record writer "
            "fails, or when more than max_error_share of its streams end in error or "
            "timeout (bench/phase_check.py)",
            "shape": "ramp_steps (LoadTestShape)" if s.load.ramp_steps else "fixed users",
            "client_settings": "per phase under `client` (written by the Locust workers)",
        },
        "sampler": {
            "interval_s": opts.sample_interval_s,
            "roles": {
                "server": "reference server process (bench sampler)",
                "master": "Locust master of --processes N / --workers N (bench sampler)",
                "loadgen": "Locust process running users, seen from outside (bench sampler)",
                "client": "Locust process sampling itself (loadtests)",
                **sampler_roles(),
            },
        },
        "limits": {"nofile": limits, "time_wait_limit": TIME_WAIT_LIMIT},
        "warnings": [],
        **(
            {
                "suite": {
                    "name": opts.suite_name,
                    "scenarios": [sc.to_dict() for sc, _ in opts.suite],
                    "sources": [str(src) for _, src in opts.suite],
                    "note": "`scenario` and `load_generator` describe the first scenario; "
                    "each phase entry names its own scenario and server command",
                }
            }
            if opts.suite
            else {}
        ),
    }


def phase_entry(plan: PhasePlan, sc: Scenario, time_wait: int | None) -> dict[str, Any]:
    """A phase's manifest entry as it starts (its scenario `sc`: the plan's or the run's)."""
    load = sc.load
    return {
        "index": plan.index,
        "name": plan.name,
        "arm": plan.arm.name,
        "protocol": plan.arm.protocol,
        "rep": plan.rep,
        "seed": plan.seed,
        "status": "starting",
        "users": load.users,
        "spawn_rate": load.spawn_rate,
        "ramp_steps": list(load.ramp_steps),
        "scenario": sc.name,
        "group": plan.group,  # analysis' scenario: "<scenario>.<variant>" with [proxy]
        "variant": variant_label(plan),
        "run_s": run_seconds(sc),
        "processes": load.processes,
        "reference_server": plan.arm.reference,
        "tls": sc.server.tls if plan.arm.reference else is_tls_url(plan.arm.url or ""),
        "time_wait_before": time_wait,
        "t_start_ns": time.monotonic_ns(),
        "start_utc": utc_now(),
    }


def variant_label(plan: PhasePlan) -> str | None:
    """The phase's `[proxy]` variant and / or `[network]` entry (PhasePlan.variant)."""
    return plan.variant
