"""nginx in front of a phase's server, as a phase hook (scenarios with a `[proxy]` variant).

before_load starts nginx (`bench.nginx.NginxProcess`) with the server as its upstream and
hands the client nginx's address; records() writes what nginx saw: its config and logs
stay in ``nginx/<phase>/``, the per-connection closes go to ``nginx/<phase>/closes.json``
(joined onto the client's connection records by analysis.attribution), and the proxy
record (variant, ports, log counts, access-log summary without the probes' requests) goes
to the phase entry's ``proxy`` and to ``proxy.json``.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from bench.hooks import HookContext, PhaseHook, Target, register
from bench.nginx import (
    NginxError,
    NginxProcess,
    nginx_available,
    read_access_log,
    summarize_access_log,
    summarize_closes,
)
from bench.nginx_conf import ProxyVariant
from core.runfolder import write_json

if TYPE_CHECKING:
    from bench.plan import PhasePlan
    from core.scenario import Scenario


@functools.cache
def _available() -> tuple[bool, str]:
    return nginx_available()


@register
class NginxHook(PhaseHook):
    name = "nginx"
    role = "nginx"
    role_description = "nginx master and worker of a proxy phase (bench sampler)"
    order = 50
    record_key = "proxy"

    def __init__(self, variant: ProxyVariant, label: str, scenario: Scenario) -> None:
        self.variant = variant
        self.label = label
        self.scenario = scenario
        self.nginx: NginxProcess | None = None  # while it runs
        self._done: NginxProcess | None = None  # after stop: its logs and record

    @classmethod
    def for_phase(cls, plan: PhasePlan, scenario: Scenario) -> NginxHook | None:
        variant = plan.nginx
        if variant is None or plan.proxy is None or not plan.arm.reference:
            return None
        return cls(variant, plan.proxy.name, scenario)

    def unavailable(self) -> str | None:
        ok, why = _available()
        return None if ok else f"nginx not available: {why}"

    def config(self) -> dict[str, Any]:
        return {"nginx": self.variant.record()}

    def before_load(self, ctx: HookContext, target: Target) -> Target:
        sse = target.protocol == "sse"
        ng = NginxProcess(
            self.variant,
            upstream_sse=target.address if sse else None,
            upstream_ws=None if sse else target.address,
            workdir=ctx.dir("nginx"),
        )
        self.nginx = ng
        try:
            ng.start()
        except NginxError as exc:
            self.nginx = None
            raise NginxError(f"phase {ctx.phase}: {exc}") from None
        url = ng.url if sse else ng.ws_url
        ctx.out(f"  nginx {self.variant.name} ({self.variant.description or 'custom'}) at {url}")
        return target.via(
            self.name, "127.0.0.1", ng.port, https_url=ng.https_url, access_log=ng.access_log
        )

    def pids(self) -> list[int]:
        return self.nginx.pids() if self.nginx is not None else []

    def stop(self) -> None:
        ng, self.nginx = self.nginx, None
        if ng is not None:
            try:
                ng.stop()
            finally:
                self._done = ng

    def records(self, ctx: HookContext, target: Target) -> dict[str, Any]:
        ng = self._done
        if ng is None:
            return {}
        server = self.scenario.server
        rec = ng.record()
        rec["variant_label"] = self.label
        rec["config"] = ctx.rel(ng.conf_path)
        rec["logs"] = {"error": ctx.rel(ng.error_log), "access": ctx.rel(ng.access_log)}
        rec["server_accel_header"] = server.accel_header
        rec["server_heartbeat_s"] = server.heartbeat_s
        rec["log_events"] = ng.log_events()
        access = read_access_log(ng.access_log)
        load = [r for r in access if not any(m in r["target"] for m in ctx.probe_marks)]
        rec["access"] = summarize_access_log(load)
        # who closed which stream, from nginx's side: joined onto the client's connection
        # records by analysis.attribution (the client alone sees only an EOF)
        closes = ng.closes()
        write_json(ng.workdir, "closes.json", closes)
        rec["logs"]["closes"] = ctx.rel(ng.workdir / "closes.json")
        rec["closes"] = summarize_closes(closes)
        return rec

    def skipped(self, reason: str) -> dict[str, Any]:
        return {"variant": self.label, "skipped": reason}
