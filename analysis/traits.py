"""What a scenario group exercises, read from its recorded configuration — never from its
name. The report's sections, the claims and the capacity figures pick their scenarios by
these traits, so a scenario named ``burst`` that cancels streams gets the cancel section.

=====================  ===================================================================
``reconnects``         the server drops streams (``stream.drop_after``) or the client
                       aborts its connection (``behaviour.client_abort_after``)
``cancels``            users abandon streams (``behaviour.cancel_prob`` > 0)
``ramp``               stepped concurrency (``load.ramp_steps``)
``open_arrivals``      open-model arrivals (``load.mode = "open"``)
``held_idle``          connections held mostly idle: tokens ≥ `HELD_IDLE_GAP_MS` apart
                       and no proxy (the memory-per-connection fit uses these)
``think_time``         several turns with think time between them
``tool_chain``         sessions are agent tool chains: several turns, each continuing the
                       last after a client-side tool call (``session.chain``)
``tls``                the client reached the server over TLS (https / wss): a reference
                       server with ``server.tls``, or your own https / wss endpoint
``proxy``              the phase ran behind a proxy variant (``[proxy]`` with at least one
                       variant that puts nginx in the path; its "direct" baseline too)
``proxy_buffering``    a ``[proxy]`` scenario with a ``direct`` variant to compare against
                       and no mid-stream pause: the buffering experiment (C3)
``proxy_idle``         a ``[proxy]`` scenario that pauses mid-stream (``stream.pause_ms``):
                       the idle-timeout experiment (C4)
``network``            the phase ran on a ``[network]`` profile (the fault proxy with
                       latency, loss, faults or nothing at all — or ``loopback``, the
                       no-proxy control)
``network_faults``     that profile injects faults: loss, cuts, blackholes or handovers
                       (read from the resolved profile the phase recorded; the C9 section)
``browser``            every arm is driven by a real browser (core.arms ``is_browser``:
                       Chromium pages, loadtests/browser)
=====================  ===================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from analysis.manifest import group_label
from core.arms import get_arm, is_known

if TYPE_CHECKING:  # pragma: no cover
    from analysis.manifest import Manifest

__all__ = ["HELD_IDLE_GAP_MS", "TRAITS", "ScenarioTraits", "profile_has_faults", "traits_of"]

#: Streams whose tokens are at least this far apart keep their connection mostly idle.
HELD_IDLE_GAP_MS = 1000.0

#: The boolean traits, in documentation order.
TRAITS = (
    "reconnects",
    "cancels",
    "ramp",
    "open_arrivals",
    "held_idle",
    "think_time",
    "tool_chain",
    "tls",
    "proxy",
    "proxy_buffering",
    "proxy_idle",
    "network",
    "network_faults",
    "browser",
)


@dataclass(frozen=True)
class ScenarioTraits:
    """The traits of one scenario group (see the module docstring). ``configured`` is False
    when the manifest holds no configuration for the scenario: then every trait is False."""

    scenario: str | None = None
    variant: str | None = None
    configured: bool = False
    reconnects: bool = False
    cancels: bool = False
    ramp: bool = False
    open_arrivals: bool = False
    held_idle: bool = False
    think_time: bool = False
    tool_chain: bool = False
    tls: bool = False
    proxy: bool = False
    proxy_buffering: bool = False
    proxy_idle: bool = False
    network: bool = False
    network_faults: bool = False
    browser: bool = False
    #: The server's heartbeat interval for this group (its variant's override included).
    heartbeat_s: float | None = None

    def has(self, trait: str) -> bool:
        if trait not in TRAITS:
            raise KeyError(f"unknown trait {trait!r} (known: {', '.join(TRAITS)})")
        return bool(getattr(self, trait))

    @property
    def plain(self) -> bool:
        """Steady streaming: no drops, cancels, ramp, idle holding, proxy or faults."""
        return not any(
            self.has(t) for t in ("reconnects", "cancels", "ramp", "held_idle", "proxy", "network")
        )

    @property
    def headline_rank(self) -> int:
        """Which group the headline figures come from (lowest first): steady closed-loop
        streaming, then open arrivals, then a ramp, then anything else — within each, the
        harness's own clients before a browser's."""
        return 2 * self._rank + (1 if self.browser else 0)

    @property
    def _rank(self) -> int:
        if self.configured and self.plain:
            return 1 if self.open_arrivals else 0
        only_ramp = self.ramp and not any(
            self.has(t) for t in ("reconnects", "cancels", "held_idle", "proxy", "network")
        )
        return 2 if self.configured and only_ramp else 3

    @property
    def active(self) -> list[str]:
        return [t for t in TRAITS if self.has(t)]

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, d: Any) -> ScenarioTraits:
        d = d if isinstance(d, Mapping) else {}
        kw: dict[str, Any] = {t: bool(d.get(t)) for t in (*TRAITS, "configured")}
        hb = d.get("heartbeat_s")
        return cls(
            scenario=d.get("scenario"),
            variant=d.get("variant"),
            heartbeat_s=float(hb) if isinstance(hb, int | float) else None,
            **kw,
        )


def traits_of(manifest: Manifest, scenario: str | None, variant: str | None) -> ScenarioTraits:
    """The traits of group (``scenario``, ``variant``) from the manifest's configuration."""
    sc = manifest.scenario(scenario)
    if sc is None:
        return ScenarioTraits(scenario=scenario, variant=variant)
    spec = next((v for v in sc.proxy.variants if v.name == variant), None)
    server = sc.for_variant(spec).server if spec is not None else sc.server
    # [proxy] entries that only change the server (TLS, heartbeat) put no proxy in the path
    has_proxy = variant is not None and any(not v.direct for v in sc.proxy.variants)
    has_direct = any(v.direct for v in sc.proxy.variants)
    nets = _network_records(manifest, scenario, variant)
    return ScenarioTraits(
        scenario=scenario,
        variant=variant,
        configured=True,
        reconnects=sc.stream.drop_after > 0 or sc.behaviour.client_abort_after > 0,
        cancels=sc.behaviour.cancel_prob > 0,
        ramp=bool(sc.load.ramp_steps),
        open_arrivals=sc.load.mode == "open",
        held_idle=sc.stream.gap_ms >= HELD_IDLE_GAP_MS and not has_proxy,
        think_time=sc.session.turns > 1 and sc.session.think_s > 0,
        tool_chain=sc.session.chain and sc.session.turns > 1,
        tls=_tls(manifest, scenario, variant, server.tls),
        proxy=has_proxy,
        proxy_buffering=has_proxy and has_direct and sc.stream.pause_ms <= 0,
        proxy_idle=has_proxy and sc.stream.pause_ms > 0,
        network=bool(nets),
        network_faults=any(profile_has_faults(n.get("settings")) for n in nets),
        browser=bool(sc.arms) and all(is_known(a) and get_arm(a).is_browser for a in sc.arms),
        heartbeat_s=float(server.heartbeat_s),
    )


def _network_records(manifest: Manifest, scenario: str | None, variant: str | None) -> list:
    """The `network` records (bench.network_hook) of the group's phases."""
    recs = [p.raw.get("network") for p in manifest.phases_of(group_label(scenario, variant) or "")]
    return [r for r in recs if isinstance(r, Mapping)]


def profile_has_faults(settings: Any) -> bool:
    """A resolved network profile (a phase's ``network.settings``) that injects faults:
    segment loss, connection cuts, blackholes or handovers."""
    if not isinstance(settings, Mapping):
        return False
    loss = any(
        isinstance(settings.get(d), Mapping) and (settings[d].get("loss") or 0) > 0
        for d in ("up", "down")
    )
    return bool(
        loss or settings.get("cuts") or settings.get("blackholes") or settings.get("handover")
    )


def _tls(manifest: Manifest, scenario: str | None, variant: str | None, server_tls: bool) -> bool:
    """TLS as the group's phases recorded it (``phases[].tls``: a reference server's
    server.tls or a foreign https / wss URL), else the scenario's server setting."""
    recorded = [p.raw.get("tls") for p in manifest.phases_of(group_label(scenario, variant) or "")]
    known = [bool(x) for x in recorded if isinstance(x, bool)]
    return any(known) if known else server_tls
