"""Network profiles as data: `bench/networks/<name>.toml` → a validated `NetworkProfile`.

A profile describes what the fault proxy does to the bytes between a client and a server:

- ``[up]`` / ``[down]`` (client → server / server → client): one-way ``latency_ms``,
  ``jitter_ms`` with ``jitter_dist`` (normal | uniform | exponential), ``bandwidth_kbps``
  (0 = no cap) with ``burst_bytes``, and ``loss`` — the probability that one MSS-sized
  segment is lost (the stream then stalls for a retransmission timeout, see `schedule`);
- ``[tcp]``: ``rto_ms`` (the retransmission timeout a loss costs; Linux's floor is 200 ms),
  ``syn_rto_ms`` (the first SYN retransmission, 1 s), ``mss_bytes``, ``max_retries``,
  ``silent_window_bytes`` (what a peer can still write towards a side that went silent);
- ``[[cuts]]``: per-connection cuts — ``share`` of connections, after ``after_s`` (a number
  or a ``[lo, hi]`` range, uniform), ``after_s_mean`` (exponential) and/or ``after_bytes``
  (server → client bytes), each side ended by ``fin``, ``rst`` or ``silent``
  (``client = …``, ``server = …``, or ``how = …`` for both);
- ``[blackholes]``: the whole network goes dark now and then — ``first_at_s``,
  ``interval_s`` (between the end of one and the start of the next) and ``duration_s``
  (numbers or ranges), ``recovery`` (``rto``: bytes resume at the next retransmission
  after it ends; ``instant``);
- ``[handover]``: every open connection is cut at an instant and new ones fail for a gap:
  ``first_at_s``, ``interval_s``, ``gap_s``, ``client`` / ``server`` modes,
  ``new_connections`` (``refuse``: reset at once; ``hold``: wait, as a SYN retransmitted);
- ``[[sources]]``: where each number comes from — ``fields`` (the keys it backs, e.g.
  ``"down.latency_ms"``), ``figure`` (what the source says), and ``url`` + ``title``, or
  ``assumption`` (why the number is a choice, not a measurement). A shipped profile must
  cite every key it sets (`check_sources`).

``extends = "4g"`` starts from another profile (its sections and sources), ``proxy = false``
means no proxy at all (the ``loopback`` profile). Everything here is pure:
`parse_profile` takes the TOML table, `load_profile` reads a file or a shipped name.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = [
    "CUT_MODES",
    "JITTER_DISTS",
    "NETWORKS_DIR",
    "BlackholeSpec",
    "CutRule",
    "HandoverSpec",
    "LinkSpec",
    "NetworkProfile",
    "ProfileError",
    "Source",
    "TcpSpec",
    "available_profiles",
    "check_sources",
    "load_profile",
    "merge_overrides",
    "parse_profile",
    "profile_path",
]

NETWORKS_DIR = Path(__file__).resolve().parents[1] / "networks"
JITTER_DISTS = ("normal", "uniform", "exponential")
CUT_MODES = ("fin", "rst", "silent")
Range = tuple[float, float]


class ProfileError(ValueError):
    """A profile is invalid (message names the file, the key and why)."""


@dataclass(frozen=True)
class LinkSpec:
    """One direction of the path."""

    latency_ms: float = 0.0  # one-way, added to every byte
    jitter_ms: float = 0.0  # spread of the extra delay drawn per chunk
    jitter_dist: str = "normal"  # normal (σ = jitter_ms, clipped at 0) | uniform | exponential
    bandwidth_kbps: float = 0.0  # kbit/s (1000 bit), 0 = no cap
    burst_bytes: int = 0  # token-bucket depth; 0 = 10 ms at the rate, at least 2 MSS
    loss: float = 0.0  # per-segment loss probability

    @property
    def shaped(self) -> bool:
        """True when this direction does anything at all to the bytes."""
        return bool(self.latency_ms or self.jitter_ms or self.bandwidth_kbps or self.loss)


@dataclass(frozen=True)
class TcpSpec:
    rto_ms: float = 200.0  # Linux TCP_RTO_MIN (include/net/tcp.h: HZ/5)
    syn_rto_ms: float = 1000.0  # RFC 6298 §2.1 initial RTO (Linux TCP_TIMEOUT_INIT)
    rto_max_ms: float = 120_000.0  # Linux TCP_RTO_MAX
    mss_bytes: int = 1448  # Ethernet MTU 1500 − IP 20 − TCP 20 − timestamps 12
    max_retries: int = 6  # consecutive losses of one segment counted at most
    silent_window_bytes: int = 262_144  # socket buffers a peer can still fill


@dataclass(frozen=True)
class CutRule:
    share: float = 1.0  # probability that a connection gets this rule
    after_s: Range | None = None  # uniform in [lo, hi] (lo == hi: fixed)
    after_s_mean: float | None = None  # exponential with this mean
    after_bytes: int | None = None  # server → client bytes delivered, then cut
    client: str = "fin"
    server: str = "fin"


@dataclass(frozen=True)
class BlackholeSpec:
    first_at_s: Range = (10.0, 10.0)
    interval_s: Range = (30.0, 30.0)
    duration_s: Range = (5.0, 5.0)
    recovery: str = "rto"  # rto | instant


@dataclass(frozen=True)
class HandoverSpec:
    first_at_s: Range = (10.0, 10.0)
    interval_s: Range = (30.0, 30.0)
    gap_s: Range = (2.0, 2.0)
    client: str = "rst"
    server: str = "silent"
    new_connections: str = "refuse"  # refuse | hold


@dataclass(frozen=True)
class Source:
    fields: tuple[str, ...]
    figure: str
    url: str | None = None
    title: str | None = None
    assumption: str | None = None


@dataclass(frozen=True)
class NetworkProfile:
    name: str
    description: str = ""
    proxy: bool = True
    up: LinkSpec = field(default_factory=LinkSpec)
    down: LinkSpec = field(default_factory=LinkSpec)
    tcp: TcpSpec = field(default_factory=TcpSpec)
    cuts: tuple[CutRule, ...] = ()
    blackholes: BlackholeSpec | None = None
    handover: HandoverSpec | None = None
    sources: tuple[Source, ...] = ()

    @property
    def faults_off(self) -> bool:
        """Nothing injected: the proxy only forwards (its own overhead is what remains)."""
        return not (
            self.up.shaped or self.down.shaped or self.cuts or self.blackholes or self.handover
        )

    @property
    def rtt_ms(self) -> float:
        """The added round-trip time before jitter: up + down latency."""
        return self.up.latency_ms + self.down.latency_ms

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-able) for the manifest and the proxy's log."""

        def plain(x: Any) -> Any:
            if isinstance(x, tuple):
                return [plain(v) for v in x]
            if hasattr(x, "__dataclass_fields__"):
                return {f.name: plain(getattr(x, f.name)) for f in fields(x)}
            return x

        return plain(self)


# --------------------------------------------------------------------------- checks

#: key → (lo, hi) inclusive; None = unbounded.
_LIMITS: dict[str, tuple[float | None, float | None]] = {
    "latency_ms": (0, 60_000),
    "jitter_ms": (0, 10_000),
    "bandwidth_kbps": (0, 100_000_000),
    "burst_bytes": (0, 1 << 30),
    "loss": (0, 0.5),
    "rto_ms": (1, 120_000),
    "syn_rto_ms": (1, 120_000),
    "rto_max_ms": (1, 600_000),
    "mss_bytes": (64, 65_535),
    "max_retries": (1, 15),
    "silent_window_bytes": (0, 1 << 30),
    "share": (0, 1),
    "after_s": (0.001, 86_400),
    "after_s_mean": (0.001, 86_400),
    "after_bytes": (1, 1 << 40),
    "first_at_s": (0, 86_400),
    "interval_s": (0.001, 86_400),
    "duration_s": (0.001, 3_600),
    "gap_s": (0, 3_600),
}
_CHOICES = {
    "jitter_dist": JITTER_DISTS,
    "client": CUT_MODES,
    "server": CUT_MODES,
    "recovery": ("rto", "instant"),
    "new_connections": ("refuse", "hold"),
}
_RANGES = {"after_s", "first_at_s", "interval_s", "duration_s", "gap_s"}
_INTS = {"burst_bytes", "mss_bytes", "max_retries", "silent_window_bytes", "after_bytes"}
_TOP = {"name", "description", "proxy", "up", "down", "tcp", "cuts", "blackholes", "handover"}
_SOURCE_KEYS = {"fields", "figure", "url", "title", "assumption"}


def _number(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileError(f"{where}.{key}: expected a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ProfileError(f"{where}.{key}: expected a finite number, got {value!r}")
    lo, hi = _LIMITS[key]
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        raise ProfileError(f"{where}.{key}: {value!r} is out of range [{lo:g}, {hi:g}]")
    if key in _INTS and x != int(x):
        raise ProfileError(f"{where}.{key}: expected a whole number, got {value!r}")
    return x


def _value(where: str, key: str, value: Any) -> Any:
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            raise ProfileError(f"{where}.{key}: {value!r} is not one of {', '.join(_CHOICES[key])}")
        return value
    if key in _RANGES:
        if isinstance(value, list | tuple):
            if len(value) != 2:
                raise ProfileError(f"{where}.{key}: a range is [lo, hi], got {value!r}")
            lo, hi = (_number(where, key, v) for v in value)
            if lo > hi:
                raise ProfileError(f"{where}.{key}: range [{lo:g}, {hi:g}] has lo > hi")
            return (lo, hi)
        x = _number(where, key, value)
        return (x, x)
    x = _number(where, key, value)
    return int(x) if key in _INTS else x


def _build(cls: type, data: Any, where: str) -> Any:
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ProfileError(f"{where}: expected a table, got {data!r}")
    known = [f.name for f in fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ProfileError(f"{where}: unknown key {key!r} (known: {', '.join(known)})")
        kwargs[key] = _value(where, key, value)
    return cls(**kwargs)


def _cut_rule(data: Any, where: str) -> CutRule:
    if isinstance(data, Mapping) and "how" in data:
        data = dict(data)
        how = data.pop("how")
        for side in ("client", "server"):
            data.setdefault(side, how)
    rule = _build(CutRule, data, where)
    if rule.after_s is None and rule.after_s_mean is None and rule.after_bytes is None:
        raise ProfileError(f"{where}: a cut needs after_s, after_s_mean or after_bytes")
    if rule.after_s is not None and rule.after_s_mean is not None:
        raise ProfileError(f"{where}: give after_s or after_s_mean, not both")
    return rule


def _source(data: Any, where: str) -> Source:
    if not isinstance(data, Mapping):
        raise ProfileError(f"{where}: expected a table, got {data!r}")
    unknown = set(data) - _SOURCE_KEYS
    if unknown:
        raise ProfileError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(_SOURCE_KEYS))})"
        )
    flds = data.get("fields")
    if not isinstance(flds, list) or not flds or not all(isinstance(f, str) for f in flds):
        raise ProfileError(f"{where}.fields: a non-empty list of keys such as 'down.latency_ms'")
    if not isinstance(data.get("figure"), str) or not data["figure"].strip():
        raise ProfileError(f"{where}.figure: say what the source says (a sentence)")
    if not data.get("url") and not data.get("assumption"):
        raise ProfileError(f"{where}: needs a url (with title) or an assumption (why)")
    for key in ("url", "title", "assumption"):
        if key in data and not isinstance(data[key], str):
            raise ProfileError(f"{where}.{key}: expected text")
    return Source(
        fields=tuple(flds),
        figure=data["figure"],
        url=data.get("url"),
        title=data.get("title"),
        assumption=data.get("assumption"),
    )


def parse_profile(data: Mapping[str, Any], where: str = "profile") -> NetworkProfile:
    """A `NetworkProfile` from a TOML table (ProfileError names the first problem)."""
    data = dict(data)
    sources_raw = data.pop("sources", [])
    unknown = set(data) - _TOP
    if unknown:
        raise ProfileError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(_TOP | {'sources'}))})"
        )
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ProfileError(f"{where}: needs a name")
    proxy = data.get("proxy", True)
    if not isinstance(proxy, bool):
        raise ProfileError(f"{where}.proxy: expected true/false, got {proxy!r}")
    cuts_raw = data.get("cuts", [])
    if not isinstance(cuts_raw, list):
        raise ProfileError(f"{where}.cuts: expected a list of tables ([[cuts]])")
    if not isinstance(sources_raw, list):
        raise ProfileError(f"{where}.sources: expected a list of tables ([[sources]])")
    profile = NetworkProfile(
        name=name,
        description=str(data.get("description", "")),
        proxy=proxy,
        up=_build(LinkSpec, data.get("up", {}), f"{where}.up"),
        down=_build(LinkSpec, data.get("down", {}), f"{where}.down"),
        tcp=_build(TcpSpec, data.get("tcp", {}), f"{where}.tcp"),
        cuts=tuple(_cut_rule(c, f"{where}.cuts[{i}]") for i, c in enumerate(cuts_raw)),
        blackholes=(
            _build(BlackholeSpec, data["blackholes"], f"{where}.blackholes")
            if "blackholes" in data
            else None
        ),
        handover=(
            _build(HandoverSpec, data["handover"], f"{where}.handover")
            if "handover" in data
            else None
        ),
        sources=tuple(_source(s, f"{where}.sources[{i}]") for i, s in enumerate(sources_raw)),
    )
    if not profile.proxy and not profile.faults_off:
        raise ProfileError(f"{where}: proxy = false (no proxy) cannot inject faults")
    return profile


def _set_keys(data: Mapping[str, Any]) -> list[str]:
    """The dotted keys a profile table sets explicitly (cuts by index: 'cuts.after_s')."""
    keys: list[str] = []
    for section in ("up", "down", "tcp", "blackholes", "handover"):
        keys += [f"{section}.{k}" for k in data.get(section) or {}]
    for cut in data.get("cuts") or []:
        keys += [f"cuts.{k}" for k in cut]
    return keys


def check_sources(data: Mapping[str, Any], where: str = "profile") -> None:
    """Every key the profile sets is backed by a `[[sources]]` entry naming it (or its
    section, e.g. "handover"). ProfileError lists the uncited keys."""
    profile = parse_profile(data, where)
    cited = {f for s in profile.sources for f in s.fields}
    missing = [k for k in _set_keys(data) if k not in cited and k.split(".")[0] not in cited]
    if missing:
        raise ProfileError(f"{where}: no [[sources]] entry cites {', '.join(missing)}")


def merge_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with `overrides` laid over it: tables merge key by key, anything else
    replaces. Dotted keys ("down.latency_ms") are tables spelled flat."""
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items()}
    for key, value in overrides.items():
        head, _, rest = str(key).partition(".")
        if rest:
            value = {rest: value}
        if isinstance(value, Mapping) and isinstance(out.get(head), Mapping):
            out[head] = merge_overrides(out[head], value)
        else:
            out[head] = value
    return out


def profile_path(name_or_path: str | Path) -> Path:
    """A shipped profile's file (`bench/networks/<name>.toml`) or the given path."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.parent != Path("."):
        return p
    return NETWORKS_DIR / f"{name_or_path}.toml"


def available_profiles() -> list[str]:
    return sorted(p.stem for p in NETWORKS_DIR.glob("*.toml"))


def _read_table(name_or_path: str | Path, chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """A profile file's table, with ``extends = "<profile>"`` resolved: the base's sections
    lie under this file's (key by key), the base's sources come first."""
    path = profile_path(name_or_path)
    try:
        text = path.read_text()
    except OSError:
        known = ", ".join(available_profiles())
        raise ProfileError(
            f"no network profile {name_or_path!r} ({path}); known: {known}"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from None
    data.setdefault("name", path.stem)
    base = data.pop("extends", None)
    if base is None:
        return data
    here = str(path.resolve())
    if not isinstance(base, str) or str(profile_path(base).resolve()) in (*chain, here):
        raise ProfileError(f"{path.name}: extends {base!r} is not a profile name or is circular")
    base_data = _read_table(base, (*chain, here))
    for key in ("name", "description", "proxy"):
        base_data.pop(key, None)
    sources = [*base_data.pop("sources", []), *data.pop("sources", [])]
    merged = merge_overrides(base_data, {k: v for k, v in data.items() if k != "cuts"})
    if "cuts" in data:
        merged["cuts"] = data["cuts"]
    merged["sources"] = sources
    return merged


def load_profile(
    name_or_path: str | Path, overrides: Mapping[str, Any] | None = None
) -> NetworkProfile:
    """Read, cite-check and validate a profile, then apply `overrides` (validated too).

    Overrides are not cited (they are the experimenter's, recorded with the run)."""
    data = _read_table(name_or_path)
    where = profile_path(name_or_path).name
    check_sources(data, where)
    if not overrides:
        return parse_profile(data, where)
    return parse_profile(merge_overrides(data, overrides), f"{where} + overrides")
