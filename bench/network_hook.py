"""The fault proxy as a phase hook: a bad network between the client and the server (or
nginx) for the phases of a scenario's `[network]` profiles.

before_load starts ``python -m bench.faultproxy`` (its own process: its CPU is sampled
apart, role ``faultproxy``) with the phase's profile, the scenario's overrides and the
phase seed — both arms of a repetition meet the same fault schedule — and hands the client
its port. It sits outside nginx when both are in the path (the bad network is the last
mile). records() keeps the fault log in ``network/<phase>/faults.jsonl`` and puts the
profile, seed, schedule origin and event counts in the phase entry's ``network`` record
(and ``network.json``); the analysis joins the log onto the client's connection records
(analysis.fault_attribution). A no-proxy profile (``loopback``) starts nothing and records
only its name: the control phase.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bench.faultproxy.__main__ import proxy_command
from bench.faultproxy.profile import NetworkProfile
from bench.hooks import HookContext, PhaseHook, Target, register
from bench.plan import REPO, network_overrides, network_profile
from bench.procs import Child, spawn, wait_for_listening
from core.faultlog import FAULT_EVENTS, FAULT_LOG, read_fault_log

if TYPE_CHECKING:
    from bench.plan import PhasePlan
    from core.scenario import Scenario

STOP_GRACE_S = 10.0


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@register
class NetworkHook(PhaseHook):
    name = "faultproxy"
    role = "faultproxy"
    role_description = "fault proxy of a [network] phase (bench sampler)"
    order = 80  # outside nginx (50): client → fault proxy → nginx → server
    record_key = "network"

    def __init__(self, label: str, profile: NetworkProfile, overrides: dict[str, Any]) -> None:
        self.label = label
        self.profile = profile
        self.overrides = overrides
        self.child: Child | None = None
        self.command: list[str] = []
        self.log_dir: Any = None
        self.listen: str | None = None
        self.upstream: str | None = None
        self.foreign_url: str | None = None  # the arm's own server, when not a reference one

    @classmethod
    def for_phase(cls, plan: PhasePlan, scenario: Scenario) -> NetworkHook | None:
        v = plan.network
        if v is None:
            return None
        hook = cls(v.name, network_profile(v, scenario), network_overrides(v, scenario))
        hook.foreign_url = plan.arm.url
        return hook

    def unavailable(self) -> str | None:
        host = urlsplit(self.foreign_url).hostname if self.foreign_url else None
        if self.profile.proxy and host is not None and not _loopback(host):
            return f"fault proxy: {self.foreign_url} is not on loopback (it dials loopback only)"
        return None

    def config(self) -> dict[str, Any]:
        return {
            "network": {
                "label": self.label,
                "profile": self.profile.name,
                "proxy": self.profile.proxy,
                "rtt_ms": self.profile.rtt_ms,
                "overrides": self.overrides,
            }
        }

    def before_load(self, ctx: HookContext, target: Target) -> Target:
        if not self.profile.proxy:
            return target
        self.log_dir = ctx.dir("network")
        self.upstream = target.address
        self.command = proxy_command(
            target.address, self.profile.name, self.log_dir, seed=ctx.seed, overrides=self.overrides
        )
        self.child = spawn(
            "faultproxy", self.command, log_path=self.log_dir / "proxy.log", cwd=REPO
        )
        host, port = wait_for_listening(self.child, timeout_s=30)
        self.listen = f"{host}:{port}"
        ctx.out(
            f"  fault proxy {self.label} ({self.profile.name}, seed {ctx.seed}) at {host}:{port}"
        )
        return target.via(self.name, host, port)

    def pids(self) -> list[int]:
        return [self.child.pid] if self.child is not None and self.child.alive() else []

    def stop(self) -> None:
        child, self.child = self.child, None
        if child is not None:
            child.stop(grace_s=STOP_GRACE_S)

    def records(self, ctx: HookContext, target: Target) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "label": self.label,
            "profile": self.profile.name,
            "proxy": self.profile.proxy,
            "overrides": self.overrides,
            "seed": ctx.seed,
        }
        if not self.profile.proxy or self.log_dir is None:
            return rec
        settings = self.profile.to_dict()
        for key in ("name", "description", "sources"):
            settings.pop(key, None)
        rows = read_fault_log(self.log_dir / FAULT_LOG)
        start = next((r for r in rows if r["ev"] == "start"), {})
        stop = next((r for r in rows if r["ev"] == "stop"), {})
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["ev"]] = counts.get(r["ev"], 0) + 1
        rec.update(
            settings=settings,
            rtt_ms=self.profile.rtt_ms,
            command=self.command,
            listen=self.listen,
            upstream=self.upstream,
            t0_ns=start.get("t0_ns"),
            logs={
                "faults": ctx.rel(self.log_dir / FAULT_LOG),
                "proxy": ctx.rel(self.log_dir / "proxy.log"),
            },
            counts=dict(sorted(counts.items())),
            connections=counts.get("accept", 0),
            faults=sum(counts.get(ev, 0) for ev in FAULT_EVENTS),
            stopped_cleanly="stop" in counts,
            # how late the proxy wrote scheduled bytes: its own accuracy in this phase
            lateness=stop.get("lateness"),
        )
        return rec

    def skipped(self, reason: str) -> dict[str, Any]:
        return {"label": self.label, "profile": self.profile.name, "skipped": reason}
