"""Scenarios (TOML) and the phase config handed from the orchestrator to Locust.

A scenario file in loadtests/scenarios/ describes load, stream schedule, session
behaviour and server settings, and optionally proxy variants (`[proxy]`, ProxySpec) and
network profiles for the fault proxy (`[network]`, NetworkSpec).
The orchestrator (bench) resolves it with CLI overrides, then runs one *phase* per
(arm, repetition) — per (variant, arm, repetition) with `[proxy]`; each phase gets a
PhaseConfig written as JSON into the run folder, and Locust processes find it via
the environment variable SSEVSWS_PHASE. This module is the only place both sides
meet, so both read the same field names.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from core.arms import UnknownArm, get_arm
from core.client.deadpeer import silence_s
from core.schedule import ParamError, parse_params

PHASE_ENV = "SSEVSWS_PHASE"
#: The extra request headers of a phase, as JSON [[name, value], ...]: set by bench for the
#: load processes only, so header values (API keys) never reach a file.
HEADERS_ENV = "SSEVSWS_HEADERS"
#: Largest scenario seed: phase seeds (+1000 per repetition) and stream seeds (+1 per
#: stream) are derived by adding to it and must stay within the servers' seed limit.
SEED_MAX = 2**62
#: Locust's exit code when a record writer failed (loadtests/locustfile.py → bench.run).
#: 74 is sysexits' EX_IOERR; Locust itself uses 0, 1 (failed requests) and 2.
EXIT_WRITER_FAILED = 74
#: Default `load.max_error_share`: a phase with more failed streams than this is failed.
MAX_ERROR_SHARE = 0.01


class ScenarioError(ValueError):
    """A scenario file or override is invalid (message says which field and why)."""


@dataclass(frozen=True)
class LoadSpec:
    users: int = 20  # closed model: concurrent users; open model: cap on concurrent sessions
    spawn_rate: float = 100.0  # users started per second
    duration_s: float = 30.0  # per phase
    processes: int = 1  # locust --processes (1 = single process, no master/worker)
    mode: str = "closed"  # closed | open
    arrival_rate: float = 0.0  # open model: sessions per second (Poisson)
    ramp_steps: tuple[int, ...] = ()  # ramp shape: user counts, one step each step_s
    step_s: float = 10.0
    stop_timeout_s: float = 30.0  # let streams finish on stop (docs/methodology.md)
    #: A phase whose share of failed streams (outcome error or timeout) is above this is
    #: marked failed, and so is the run (bench.run).
    max_error_share: float = MAX_ERROR_SHARE

    @property
    def run_s(self) -> int:
        """The load's run time in whole seconds (Locust's -t takes integers; rounded up):
        ramp steps × step_s, else duration_s."""
        if self.ramp_steps:
            return max(1, math.ceil(len(self.ramp_steps) * self.step_s))
        return max(1, math.ceil(self.duration_s))


@dataclass(frozen=True)
class StreamSpec:
    """Defaults for core.schedule.StreamParams sent with every stream."""

    tokens: int = 200
    #: > 0: each stream's length is drawn uniformly from [tokens_min, tokens] by the user's
    #: RNG (the same lengths on every arm); 0: every stream has `tokens`.
    tokens_min: int = 0
    ttft_ms: float = 300.0
    gap_ms: float = 20.0
    jitter: float = 0.0
    pause_ms: float = 0.0
    pause_at: int = 0
    drop_after: int = 0  # server-side drop after N tokens (0 = never)


@dataclass(frozen=True)
class SessionSpec:
    turns: int = 1  # streams per session
    think_s: float = 0.0  # idle time between turns (uniform: the upper bound)
    think_dist: str = "fixed"  # fixed | exp | uniform (from think_min_s to think_s)
    think_min_s: float = 0.0  # uniform think time: the lower bound
    sessions_per_user: int = 0  # 0 = keep starting sessions until the phase ends
    #: The session is an agent's tool chain: the think time between turns is the client's
    #: tool call, and each turn continues the last (as every session's turns do: formats
    #: with a response id send ``previous_response_id``). Analysis gives such sessions the
    #: per-turn and per-chain figures (the tool_chain trait).
    chain: bool = False


@dataclass(frozen=True)
class BehaviourSpec:
    cancel_prob: float = 0.0  # share of streams the user abandons
    cancel_after: int = 0  # tokens received before abandoning
    cancel_mode: str = "close"  # close (drop the connection) | cancel (endpoint / WS message)
    client_abort_after: int = 0  # client drops its connection after N tokens (0 = never)
    resume: bool = True  # after a drop: resume (Last-Event-ID / resume msg) or give up
    #: With resume = false: after a drop, ask again from the start (an app retrying an API
    #: that cannot resume: the answer is read again from its first token); false: the rest
    #: of the answer is lost.
    restart: bool = False
    max_reconnects: int = 5
    #: After a reconnect attempt that failed (refused, unreachable), wait this long before
    #: the next, doubling each time (at most 8x): a client that retries in a tight loop
    #: burns its attempts in a network gap. 0 = retry at once. The first attempt after a
    #: drop is always immediate (the drop -> next-token gap measures the protocol).
    reconnect_wait_s: float = 0.0
    #: Connection failures before the first token (connect refused or reset, no response
    #: head) are retried this many times, whatever `resume` says — what the LLM SDKs do
    #: (openai-python retries connection errors twice with backoff,
    #: https://github.com/openai/openai-python "Retries"); a stream cut after its first
    #: token is not (the SDK's iterator raises). Waits: `reconnect_wait_s`, doubling.
    connect_retries: int = 0
    stream_timeout_s: float = 120.0
    #: Dead-peer watch (core.client.deadpeer): declare a connection dead after this many
    #: heartbeat intervals (server.heartbeat_s) in which nothing was read, drop it and
    #: recover as after any drop. 0 = never.
    dead_after_heartbeats: float = 0.0
    #: The same after a fixed silence in seconds: a client without heartbeats must wait
    #: longer than the longest pause of the model. 0 = never. Not with the one above.
    dead_after_s: float = 0.0

    def silence_s(self, server: ServerSpec) -> float:
        """The silence after which the client declares its connection dead (0 = never)."""
        return silence_s(server.heartbeat_s, self.dead_after_heartbeats, self.dead_after_s)


@dataclass(frozen=True)
class ServerSpec:
    """The reference server's settings (its command-line flags; the server's defaults)."""

    heartbeat_s: float = 15.0  # SSE comment / WS ping interval, 0 = off
    accel_header: bool = True  # send X-Accel-Buffering: no
    ws_compression: str = "off"  # off | deflate
    retry_ms: int = 3000
    # timeouts in seconds, 0 = off: slow consumer, unfinished request head, idle connection
    send_timeout_s: float = 30.0
    header_timeout_s: float = 20.0
    idle_timeout_s: float = 300.0
    # limits, 0 = none: streams on one WS connection, in the server, their planned tokens
    max_streams_per_connection: int = 32
    max_active_streams: int = 20_000
    max_planned_tokens: int = 5_000_000
    #: Serve https / wss with a certificate made for the run (the client verifies it).
    tls: bool = False


#: The ServerSpec fields that are the servers' timeouts and limits (`--field-name VALUE`
#: flags; bench passes them all and records them in the run manifest).
SERVER_TUNING = (
    "send_timeout_s",
    "header_timeout_s",
    "idle_timeout_s",
    "max_streams_per_connection",
    "max_active_streams",
    "max_planned_tokens",
)


@dataclass(frozen=True)
class BrowserSpec:
    """How the browser load generator (loadtests/browser) lays users out; Locust ignores it.

    Each page (its own browser context, so its own connection pools) runs up to
    `users_per_page` users, each with at most one stream at a time. Over HTTP/1.1 Chromium
    opens at most 6 connections per host, so users are spread over host names
    ``u<k>.localhost`` (all resolved to the server's loopback address) `users_per_host` at a
    time — a spare connection per name is left for cancel requests. 0 = every user on the
    server's own address, where the 7th concurrent SSE stream waits for a free connection.
    """

    users_per_page: int = 50
    users_per_host: int = 4


#: A proxy variant label that means "no proxy": the client talks to the server directly.
DIRECT = "direct"
_LABEL_RE = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class ProxyVariantSpec:
    """One entry of `[proxy] variants`: a label, an nginx preset + field overrides, and
    server overrides (ServerSpec fields such as accel_header, heartbeat_s) for the phases
    behind this variant. `preset is None and not nginx` with label "direct" = no proxy.

    nginx fields are kept as (key, value) pairs and validated by bench (bench.nginx_conf
    .variant_from_dict) — core does not know nginx.
    """

    name: str
    preset: str | None = None
    nginx: tuple[tuple[str, Any], ...] = ()
    server: tuple[tuple[str, Any], ...] = ()

    @property
    def direct(self) -> bool:
        return self.preset is None and not self.nginx

    def nginx_dict(self) -> dict[str, Any]:
        """The table for bench.nginx_conf.variant_from_dict (name it after the label)."""
        d: dict[str, Any] = dict(self.nginx)
        if self.preset is not None:
            d["preset"] = self.preset
        return d

    def server_dict(self) -> dict[str, Any]:
        return dict(self.server)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name}
        if self.preset is not None:
            d["preset"] = self.preset
        return {**d, **dict(self.nginx), **dict(self.server)}


@dataclass(frozen=True)
class ProxySpec:
    """`[proxy]`: run the scenario once per proxy variant (issue 6; docs/methodology.md,
    "Proxies").

    ``variants`` is a list; each item is either a string — ``"direct"`` (no proxy) or an
    nginx preset name of bench.nginx_conf.VARIANTS (``"buffered"``, ``"unbuffered"``,
    ``"idle-short"``, …) — or a table::

        { name = "buffered-accel", preset = "buffered", accel_header = true }
        { name = "idle-hb", preset = "idle-short", read_timeout_s = 2.0, heartbeat_s = 0.5 }

    ``name`` labels the variant (default: the preset; letters, digits, - and _),
    ``preset`` picks the nginx preset (absent: nginx defaults; absent with name "direct"
    and no nginx fields: no proxy), keys that are ServerSpec fields (``accel_header``,
    ``heartbeat_s``, ``retry_ms``, ``ws_compression``) change the reference server for
    this variant only, and every other key is a ProxyVariant field (``read_timeout_s``,
    ``buffering``, ``upstream_http``, ``buffer_size``, …). Phases are named
    ``<scenario>.<variant>/<arm>/r<rep>``, so analysis groups by scenario + variant.
    """

    variants: tuple[ProxyVariantSpec, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"variants": [v.to_dict() for v in self.variants]}


def _proxy_variant(item: Any, where: str) -> ProxyVariantSpec:
    if isinstance(item, ProxyVariantSpec):
        return item
    if isinstance(item, str):
        item = {"name": item} if item == DIRECT else {"name": item, "preset": item}
    if not isinstance(item, dict):
        raise ScenarioError(f"{where}: expected a string or a table, got {item!r}")
    item = dict(item)
    preset = item.pop("preset", None)
    name = item.pop("name", preset)
    if not isinstance(name, str) or not _LABEL_RE.match(name):
        raise ScenarioError(f"{where}.name: a word of letters, digits, - or _, got {name!r}")
    if preset is not None and not isinstance(preset, str):
        raise ScenarioError(f"{where}.preset: expected a preset name, got {preset!r}")
    server_keys = {f.name for f in fields(ServerSpec)}
    server = {k: v for k, v in item.items() if k in server_keys}
    nginx = {k: v for k, v in item.items() if k not in server_keys}
    if name == DIRECT and (preset is not None or nginx):
        raise ScenarioError(f"{where}: 'direct' means no proxy; it takes no nginx settings")
    _build(ServerSpec, server, f"{where}")  # type check the server overrides
    return ProxyVariantSpec(
        name=name,
        preset=preset,
        nginx=tuple(sorted(nginx.items())),
        server=tuple(sorted(server.items())),
    )


def _proxy_spec(data: Any) -> ProxySpec:
    if isinstance(data, ProxySpec):
        return data
    if not isinstance(data, dict):
        raise ScenarioError("[proxy] must be a table")
    unknown = set(data) - {"variants"}
    if unknown:
        raise ScenarioError(
            f"proxy: unknown field(s) {', '.join(sorted(unknown))} (known: variants)"
        )
    items = data.get("variants", [])
    if not isinstance(items, list | tuple):
        raise ScenarioError("proxy.variants must be a list")
    variants = tuple(_proxy_variant(x, f"proxy.variants[{i}]") for i, x in enumerate(items))
    names = [v.name for v in variants]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ScenarioError(f"proxy.variants: duplicate name(s) {', '.join(dup)}")
    return ProxySpec(variants)


def _flatten(table: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """{"down": {"latency_ms": 80}} → [("down.latency_ms", 80)] (lists and values kept)."""
    out: list[tuple[str, Any]] = []
    for key, value in table.items():
        if isinstance(value, dict) and value:
            out += _flatten(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


@dataclass(frozen=True)
class NetworkVariantSpec:
    """One entry of `[network] profiles`: a label (the phase group), the profile it runs
    and its own overrides (laid over the section's ``set``)."""

    name: str
    profile: str
    overrides: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any] | str:
        if self.name == self.profile and not self.overrides:
            return self.name
        return {"name": self.name, "profile": self.profile, "set": dict(self.overrides)}


@dataclass(frozen=True)
class NetworkSpec:
    """`[network]`: run the scenario through the fault proxy (bench.faultproxy), once per
    network profile (bench/networks/<name>.toml)::

        [network]
        profiles = ["loopback", "4g", "tunnel"]   # or: profile = "4g"
        set = { "down.jitter_ms" = 10 }           # overrides for every proxied profile

    An entry can be a table — a label, the profile, its own overrides — e.g. an RTT sweep::

        profiles = ["loopback",
                    { name = "rtt50", profile = "passthrough",
                      set = { "up.latency_ms" = 25, "down.latency_ms" = 25 } }]

    Phases are named ``<scenario>[.<variant>].<label>/<arm>/r<rep>``; a no-proxy profile
    (``loopback``) is the control and takes no overrides. The proxy's fault schedule is
    seeded with the phase seed, so both arms of a repetition meet the same faults. Profile
    names and override keys are validated by bench (bench.faultproxy.profile) — core does
    not know the profiles.
    """

    profiles: tuple[NetworkVariantSpec, ...] = ()
    overrides: tuple[tuple[str, Any], ...] = ()

    def overrides_for(self, v: NetworkVariantSpec) -> dict[str, Any]:
        """The section's overrides with the entry's own laid over them."""
        return {**dict(self.overrides), **dict(v.overrides)}

    def to_dict(self) -> dict[str, Any]:
        return {"profiles": [v.to_dict() for v in self.profiles], "set": dict(self.overrides)}


def _overrides(table: Any, where: str) -> tuple[tuple[str, Any], ...]:
    if not isinstance(table, dict):
        raise ScenarioError(f"{where} must be a table of profile keys")
    return tuple(sorted(_flatten(table)))


def _network_variant(item: Any, where: str) -> NetworkVariantSpec:
    if isinstance(item, NetworkVariantSpec):
        return item
    if isinstance(item, str):
        item = {"profile": item}
    if not isinstance(item, dict) or not isinstance(item.get("profile"), str):
        raise ScenarioError(f"{where}: a profile name or a table with profile = NAME")
    unknown = set(item) - {"name", "profile", "set"}
    if unknown:
        raise ScenarioError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    name = item.get("name", item["profile"])
    for label in (name, item["profile"]):
        if not isinstance(label, str) or not _LABEL_RE.match(label):
            raise ScenarioError(f"{where}: a word of letters, digits, - or _, got {label!r}")
    return NetworkVariantSpec(
        name, item["profile"], _overrides(item.get("set", {}), f"{where}.set")
    )


def _network_spec(data: Any) -> NetworkSpec:
    if isinstance(data, NetworkSpec):
        return data
    if not isinstance(data, dict):
        raise ScenarioError("[network] must be a table")
    unknown = set(data) - {"profile", "profiles", "set"}
    if unknown:
        raise ScenarioError(
            f"network: unknown field(s) {', '.join(sorted(unknown))} "
            "(known: profile, profiles, set)"
        )
    if "profile" in data and "profiles" in data:
        raise ScenarioError("network: give profile or profiles, not both")
    items = [data["profile"]] if "profile" in data else data.get("profiles", [])
    if not isinstance(items, list | tuple):
        raise ScenarioError(f"network.profiles: a list of profile names, got {items!r}")
    variants = tuple(_network_variant(x, f"network.profiles[{i}]") for i, x in enumerate(items))
    names = [v.name for v in variants]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ScenarioError(f"network.profiles: duplicate name(s) {', '.join(dup)}")
    overrides = _overrides(data.get("set", {}), "network.set")
    if overrides and not variants:
        raise ScenarioError("network.set needs profile(s)")
    return NetworkSpec(variants, overrides)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    arms: tuple[str, ...] = ("sse", "ws")
    repetitions: int = 1  # phases run A B A B … (interleaved)
    seed: int = 1
    load: LoadSpec = field(default_factory=LoadSpec)
    stream: StreamSpec = field(default_factory=StreamSpec)
    session: SessionSpec = field(default_factory=SessionSpec)
    behaviour: BehaviourSpec = field(default_factory=BehaviourSpec)
    server: ServerSpec = field(default_factory=ServerSpec)
    proxy: ProxySpec = field(default_factory=ProxySpec)  # no variants: no proxy, as before
    network: NetworkSpec = field(default_factory=NetworkSpec)  # no profiles: no fault proxy
    browser: BrowserSpec = field(default_factory=BrowserSpec)  # browser arms only

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["proxy"] = self.proxy.to_dict()
        d["network"] = self.network.to_dict()
        return d

    def for_variant(self, v: ProxyVariantSpec) -> Scenario:
        """This scenario with the variant's server overrides applied."""
        if not v.server:
            return self
        return replace(self, server=replace(self.server, **v.server_dict()))


_SECTIONS = {
    "load": LoadSpec,
    "stream": StreamSpec,
    "session": SessionSpec,
    "behaviour": BehaviourSpec,
    "server": ServerSpec,
    "browser": BrowserSpec,
}


def _coerce(where: str, default: Any, value: Any) -> Any:
    """`value` checked against the kind of the field's `default` (bool, whole number,
    finite number, text, list); a ScenarioError naming `where` otherwise."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ScenarioError(f"{where}: expected true/false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(f"{where}: expected a whole number, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ScenarioError(f"{where}: must be a finite number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ScenarioError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple):
            raise ScenarioError(f"{where}: expected a list, got {value!r}")
        return tuple(value)
    return value


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    defaults = cls()
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ScenarioError(f"{where}: unknown field {key!r} (known: {', '.join(known)})")
        kwargs[key] = _coerce(f"{where}.{key}", getattr(defaults, key), value)
    return cls(**kwargs)


def scenario_from_dict(data: dict[str, Any]) -> Scenario:
    data = dict(data)
    if "name" not in data:
        raise ScenarioError("scenario needs a name")
    kwargs: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        sec = data.pop(section, {})
        if isinstance(sec, cls):
            kwargs[section] = sec
            continue
        if not isinstance(sec, dict):
            raise ScenarioError(f"[{section}] must be a table")
        kwargs[section] = _build(cls, sec, section)
    kwargs["proxy"] = _proxy_spec(data.pop("proxy", {}))
    kwargs["network"] = _network_spec(data.pop("network", {}))
    top = {f.name for f in fields(Scenario)}
    unknown = set(data) - top
    if unknown:
        raise ScenarioError(f"unknown top-level field(s): {', '.join(sorted(unknown))}")
    for key, value in data.items():
        data[key] = _coerce(key, _TOP_DEFAULTS.get(key), value)
    scenario = Scenario(**data, **kwargs)
    validate(scenario)
    return scenario


#: Kinds of the top-level fields (Scenario has no default name).
_TOP_DEFAULTS: dict[str, Any] = {
    "name": "",
    "description": "",
    "arms": (),
    "repetitions": 1,
    "seed": 1,
}


def _check_kinds(obj: Any, where: str) -> None:
    """Every field of a section has its default's kind (also after `with_overrides`)."""
    defaults = type(obj)()
    for f in fields(obj):
        _coerce(f"{where}.{f.name}", getattr(defaults, f.name), getattr(obj, f.name))


def _need(ok: bool, text: str) -> None:
    if not ok:
        raise ScenarioError(text)


def _check_stream(st: StreamSpec) -> None:
    """[stream] against the limits the servers enforce (core.schedule.LIMITS): a scenario
    cannot ask for a stream every server would refuse with 400 / close 1008."""
    raw = {f.name: getattr(st, f.name) for f in fields(st) if f.name != "tokens_min"}
    raw["drop_after"] = st.drop_after or None  # 0 = never, in a scenario
    try:
        parse_params(raw)
    except ParamError as exc:
        raise ScenarioError(f"stream.{exc.field}: {exc.message}") from None


def _check_server(srv: ServerSpec, where: str) -> None:
    _check_kinds(srv, where)
    _need(srv.heartbeat_s >= 0, f"{where}.heartbeat_s must be >= 0 (0 = off)")
    _need(srv.retry_ms >= 0, f"{where}.retry_ms must be >= 0")
    _need(srv.ws_compression in ("off", "deflate"), f"{where}.ws_compression must be off/deflate")
    for name in SERVER_TUNING:
        _need(getattr(srv, name) >= 0, f"{where}.{name} must be >= 0 (0 = off)")


def validate(s: Scenario) -> None:
    """Everything a scenario (file or overrides) can set, before any process starts."""
    for key, default in _TOP_DEFAULTS.items():
        _coerce(key, default, getattr(s, key))
    for arm in s.arms:
        try:
            get_arm(arm)
        except UnknownArm as exc:
            raise ScenarioError(f"arms: {exc}") from None
    _need(bool(s.arms), "arms: at least one arm")
    _need(s.repetitions >= 1, "repetitions must be >= 1")
    _need(
        0 <= s.seed <= SEED_MAX,
        f"seed must be between 0 and 2**62 (phase and stream seeds are derived by adding "
        f"to it), got {s.seed}",
    )
    for name, section in (("load", s.load), ("session", s.session), ("behaviour", s.behaviour)):
        _check_kinds(section, name)
    load = s.load
    _need(load.mode in ("closed", "open"), "load.mode must be 'closed' or 'open'")
    _need(load.users >= 1, f"load.users must be >= 1, got {load.users}")
    _need(load.processes >= 1, f"load.processes must be >= 1, got {load.processes}")
    _need(load.duration_s > 0, f"load.duration_s must be > 0, got {load.duration_s:g}")
    _need(load.spawn_rate > 0, f"load.spawn_rate must be > 0, got {load.spawn_rate:g}")
    _need(load.arrival_rate >= 0, "load.arrival_rate must be >= 0")
    _need(
        load.mode != "open" or load.arrival_rate > 0, "load.arrival_rate must be > 0 in open mode"
    )
    _need(load.step_s > 0, f"load.step_s must be > 0, got {load.step_s:g}")
    _need(load.stop_timeout_s >= 0, "load.stop_timeout_s must be >= 0")
    _need(
        0 <= load.max_error_share <= 1,
        f"load.max_error_share must be in [0, 1], got {load.max_error_share:g}",
    )
    for step in load.ramp_steps:
        _need(
            isinstance(step, int) and not isinstance(step, bool) and step >= 0,
            f"load.ramp_steps: user counts are whole numbers >= 0, got {step!r}",
        )
    sess = s.session
    _need(sess.turns >= 1, "session.turns must be >= 1")
    _need(sess.think_s >= 0, "session.think_s must be >= 0")
    _need(sess.sessions_per_user >= 0, "session.sessions_per_user must be >= 0 (0 = no limit)")
    _need(
        sess.think_dist in ("fixed", "exp", "uniform"),
        "session.think_dist must be 'fixed', 'exp' or 'uniform'",
    )
    _need(
        0 <= sess.think_min_s <= sess.think_s or sess.think_dist != "uniform",
        "session.think_min_s must be between 0 and think_s (uniform think time)",
    )
    beh = s.behaviour
    _need(beh.cancel_mode in ("close", "cancel"), "behaviour.cancel_mode must be close/cancel")
    _need(0.0 <= beh.cancel_prob <= 1.0, "behaviour.cancel_prob must be in [0, 1]")
    _need(beh.cancel_after >= 0, "behaviour.cancel_after must be >= 0")
    _need(beh.client_abort_after >= 0, "behaviour.client_abort_after must be >= 0 (0 = never)")
    _need(beh.max_reconnects >= 0, "behaviour.max_reconnects must be >= 0")
    _need(beh.reconnect_wait_s >= 0, "behaviour.reconnect_wait_s must be >= 0")
    _need(beh.connect_retries >= 0, "behaviour.connect_retries must be >= 0")
    _need(beh.stream_timeout_s > 0, "behaviour.stream_timeout_s must be > 0")
    _need(not (beh.restart and beh.resume), "behaviour.restart needs resume = false")
    _need(beh.dead_after_heartbeats >= 0, "behaviour.dead_after_heartbeats must be >= 0")
    _need(beh.dead_after_s >= 0, "behaviour.dead_after_s must be >= 0 (0 = never)")
    _need(
        not (beh.dead_after_heartbeats > 0 and beh.dead_after_s > 0),
        "behaviour: give dead_after_heartbeats or dead_after_s, not both",
    )
    _check_kinds(s.stream, "stream")
    _check_stream(s.stream)
    _need(
        s.stream.tokens_min == 0 or 1 <= s.stream.tokens_min <= s.stream.tokens,
        "stream.tokens_min must be between 1 and stream.tokens (0 = every stream has tokens)",
    )
    _check_server(s.server, "server")
    _need(
        s.browser.users_per_page >= 1 and 0 <= s.browser.users_per_host <= 6,
        "browser.users_per_page must be >= 1, users_per_host 0..6",
    )
    for v in s.proxy.variants:
        _check_server(s.for_variant(v).server, f"proxy variant {v.name}: server")
        _need(
            v.direct or not s.for_variant(v).server.tls,
            f"proxy variant {v.name}: server.tls behind nginx is not supported (nginx talks "
            "plain HTTP to its upstream); TLS runs without a proxy or through [network]",
        )
    for where, srv in [("server", s.server)] + [
        (f"proxy variant {v.name}: server", s.for_variant(v).server) for v in s.proxy.variants
    ]:
        _need(
            beh.dead_after_heartbeats <= 0 or srv.heartbeat_s > 0,
            f"behaviour.dead_after_heartbeats needs heartbeats: {where}.heartbeat_s is 0 "
            "(use dead_after_s for a client without them)",
        )


def with_network_profiles(s: Scenario, profiles: list[Any]) -> Scenario:
    """The scenario run on other `[network]` profiles (its ``set`` kept): a suite's choice."""
    spec = _network_spec({"profiles": list(profiles), "set": dict(s.network.overrides)})
    return replace(s, network=spec)


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` laid on `base`: tables merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _read_scenario_table(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A scenario file's table with ``extends = "<scenario>"`` resolved: the named file (in
    the same folder) underneath, this file's tables merged over it key by key."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read it: {exc}") from None
    data.setdefault("name", Path(path).stem)
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str) or not _LABEL_RE.match(base):
        raise ScenarioError(f"{path}: extends: a scenario name, got {base!r}")
    base_path = Path(path).with_name(f"{base}.toml")
    if base_path in (Path(path), *chain):
        raise ScenarioError(f"{path}: extends {base!r} in a loop")
    return _merged(_read_scenario_table(base_path, (*chain, Path(path))), data)


def load_scenario(path: Path) -> Scenario:
    return scenario_from_dict(_read_scenario_table(Path(path)))


def with_overrides(s: Scenario, **overrides: Any) -> Scenario:
    """Apply CLI overrides such as users=, duration_s=, arms=, processes= (None = keep)."""
    load_changes = {
        k: v
        for k, v in overrides.items()
        if v is not None and k in {f.name for f in fields(LoadSpec)}
    }
    top_changes = {
        k: v for k, v in overrides.items() if v is not None and k in ("arms", "repetitions", "seed")
    }
    if "arms" in top_changes:
        top_changes["arms"] = tuple(top_changes["arms"])
    out = replace(s, load=replace(s.load, **load_changes), **top_changes)
    validate(out)
    return out


@dataclass(frozen=True)
class PhaseConfig:
    """What one Locust phase needs; written as JSON, path passed in $SSEVSWS_PHASE."""

    run_dir: str
    phase: str  # e.g. "chat/sse/r1"
    arm: str  # sse | ws | ws-websockets | custom label
    protocol: str  # sse | ws
    url: str  # base URL, e.g. http://127.0.0.1:8081 (ws arm: ws://127.0.0.1:8082)
    scenario: dict[str, Any]  # Scenario.to_dict()
    seed: int  # per-phase seed base (same across arms of one repetition)
    reference_server: bool = True  # False: foreign server; server-side figures are missing
    cancel_url: str | None = None  # SSE cancel endpoint base when it differs from url
    #: The proxy variant of this phase: {"variant": label, "nginx": record or None (direct)}.
    proxy: dict[str, Any] | None = None
    rep: int | None = None  # repetition (1-based); recorded with every row (schema 2)
    #: The reference server itself when proxies stand in front of it (`url` is then the
    #: outermost proxy): clock-offset probes go there, past the proxies. None: `url`.
    server_url: str | None = None
    #: The arm's payload format (a core.formats name).
    payload_format: str = "native"
    #: How the client verifies an https / wss server (core.client.tls.TLSSettings.to_dict).
    tls: dict[str, Any] | None = None
    #: Names of the extra request headers; their values travel in $SSEVSWS_HEADERS (never
    #: in a file of the run folder).
    headers: list[str] = field(default_factory=list)
    #: The model name a format puts in its request body (None: the format's default).
    model: str | None = None

    @property
    def schedule_known(self) -> bool:
        """The server's token schedule is the synthetic model's (a reference server): the
        expected length, scheduled TTFT and gap, integrity. A foreign server's is not."""
        return self.reference_server

    def phase_columns(self) -> dict[str, Any]:
        """The ``scenario``, ``variant``, ``rep`` columns of every row this phase writes
        (core.records.PHASE_COLUMNS)."""
        variant = (self.proxy or {}).get("variant")
        return {"scenario": self.scenario.get("name"), "variant": variant, "rep": self.rep}

    def scenario_obj(self) -> Scenario:
        return scenario_from_dict(self.scenario)

    def dump(self, path: Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> PhaseConfig:
        return cls(**json.loads(Path(path).read_text()))
