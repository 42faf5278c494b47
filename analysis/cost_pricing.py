"""Pricing catalogue: the format of ``analysis/pricing/*.toml``, its validation and loading.

Each TOML file describes one product:

* ``platform`` (the name tables use), ``product``, ``billing_basis`` (which formula in
  :mod:`analysis.cost_formulas` bills it), ``source`` (main page URL), ``read_on`` (the
  date the file was last checked against its sources), ``serves`` (arms it can carry);
* ``connection_priced``: true when the product's WebSocket bill grows with the time a
  connection is open, idle or not (the platforms the article's C2 claim is about);
* ``[pairing]``: which product bills the SSE twin and which the WS twin;
* ``[prices]`` (units in the key names), ``[included]`` (allowances that come with the
  plan, always deducted), ``[free_tier]`` (promotional / per-account allowances,
  deducted only when asked) with ``free_tier_term`` saying what kind of offer it is;
* ``[provenance]``: one entry per key of ``[prices]``, ``[included]`` and ``[free_tier]``:
  ``{ verified = bool, read_on = date, source = "url", note = "...", kind = "price" |
  "setting" }``. ``verified`` is true only when the value was read on the provider's own
  page on ``read_on``; a value that could not be verified says why in ``note``; a
  ``setting`` is the model's own choice (memory of a function, one object per session)
  that no page can verify. A file with a number and no
  provenance for it is refused: every number in a bill can be traced to a page.

Every value is checked on load: prices must be finite numbers ≥ 0 (tiers as
``[[up_to_millions, usd_per_million], …]``), switches must be booleans, and anything
else ("cheap", NaN, −5, broken TOML) is refused with a :class:`PricingError` naming the
file and the key. See docs/architecture.md, "Add a price / a platform".
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

PRICING_DIR = Path(__file__).with_name("pricing")

#: Prices older than this are flagged in the CLI and the report.
STALE_AFTER_DAYS = 90

#: What kind of offer a ``[free_tier]`` is (shown next to any bill that uses it).
FREE_TIER_TERMS = ("none", "monthly", "12-month offer", "free plan", "daily")


class PricingError(ValueError):
    """A pricing file is invalid or a catalogue is inconsistent (message says which/why)."""


@dataclass(frozen=True)
class Provenance:
    """Where one number comes from and whether it was read on the provider's page."""

    verified: bool
    read_on: dt.date
    source: str
    note: str = ""
    kind: str = "price"  # "price" (a provider's number or rule) | "setting" (the model's choice)


@dataclass(frozen=True)
class Pricing:
    """One product's price list, as loaded from its TOML file."""

    platform: str
    billing_basis: str
    source: str
    read_on: dt.date
    serves: tuple[str, ...]
    prices: Mapping[str, Any]
    pairing: Mapping[str, str] = field(default_factory=dict)
    included: Mapping[str, float] = field(default_factory=dict)
    free_tier: Mapping[str, float] = field(default_factory=dict)
    free_tier_term: str = "none"
    capacity: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    limits: Mapping[str, float] = field(default_factory=dict)
    provenance: Mapping[str, Provenance] = field(default_factory=dict)
    connection_priced: bool = False
    backend: str = ""
    backend_sees: str = "streaming"  # "streaming" (behind a connection service) | "all"
    product: str = ""
    notes: str = ""
    uncertain: tuple[str, ...] = ()
    path: str = ""

    def price(self, key: str, default: Any = None) -> Any:
        if key in self.prices:
            return self.prices[key]
        if default is None:
            raise PricingError(f"{self.platform}: price {key!r} missing")
        return default

    def allowance(self, key: str, free_tiers: bool) -> float:
        """Plan-included amount (always) plus the free tier (only when ``free_tiers``)."""
        amount = float(self.included.get(key, 0.0))
        if free_tiers:
            amount += float(self.free_tier.get(key, 0.0))
        return amount

    def with_prices(self, **changes: Any) -> Pricing:
        """Copy with some ``[prices]`` keys changed (what-ifs, tests); values validated."""
        for key, value in changes.items():
            check_value(f"{self.platform} (what-if)", "prices", key, value)
        return replace(self, prices={**self.prices, **changes})

    @property
    def unverified(self) -> list[str]:
        """Prices/rules not read on the provider's page (model settings excluded)."""
        return [k for k, p in self.provenance.items() if not p.verified and p.kind == "price"]


# --------------------------------------------------------------------------- format

#: billing_basis → [prices] keys the formula cannot do without. The formulas live in
#: analysis.cost_formulas.FORMULAS (a test checks both lists name the same bases).
REQUIRED_PRICES: dict[str, tuple[str, ...]] = {
    "messages_connection_minutes": (
        "usd_per_million_messages",
        "usd_per_million_connection_minutes",
    ),
    "lcu": (
        "usd_per_hour",
        "usd_per_lcu_hour",
        "lcu_new_connections_per_s",
        "lcu_active_connections_per_minute",
        "lcu_processed_gb_per_hour",
        "lcu_rule_evaluations_per_s",
    ),
    "requests_duration": ("usd_per_million_requests", "usd_per_million_gb_seconds", "memory_gb"),
    "requests_cpu": ("usd_per_million_requests", "usd_per_million_cpu_ms"),
    "durable_objects": (
        "usd_per_million_requests",
        "usd_per_million_gb_seconds",
        "object_memory_gb",
        "ws_messages_per_request",
        "hibernation",
    ),
    "units_messages": ("usd_per_unit_day", "connections_per_unit", "usd_per_million_messages"),
    "instance_time": (
        "usd_per_vcpu_second",
        "usd_per_gib_second",
        "usd_per_million_requests",
        "vcpus",
        "memory_gib",
        "max_concurrency",
    ),
    "vm_capacity": ("usd_per_instance_hour",),
}

#: [prices] keys that are on/off switches (booleans); every other value is a number.
FLAG_KEYS = frozenset(
    {
        "autoscale",
        "bill_in_whole_millions",
        "bills_after_client_disconnect",
        "count_upstream_messages",
        "hibernation",
        "keepalive_billed_as_message",
        "scale_units_hourly",
    }
)

#: [prices] keys that are lists of sizes (increasing numbers > 0), not price tiers.
LIST_KEYS = frozenset({"unit_sizes"})

_REQUIRED_TOP = ("platform", "billing_basis", "source", "read_on", "serves", "prices")
_KNOWN_TOP = set(_REQUIRED_TOP) | {
    "pairing",
    "included",
    "free_tier",
    "free_tier_term",
    "capacity",
    "limits",
    "provenance",
    "connection_priced",
    "backend",
    "backend_sees",
    "product",
    "notes",
    "uncertain",
    "region",
}
_PROVENANCE_KEYS = {"verified", "read_on", "source", "note", "kind"}


def parse_date(origin: str, what: str, value: Any) -> dt.date:
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError as exc:
            raise PricingError(f"{origin}: {what} {value!r} is not a date") from exc
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        raise PricingError(f"{origin}: {what} must be a date (YYYY-MM-DD)")
    return value


def _finite_nonneg(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x >= 0


def _check_tiers(origin: str, where: str, key: str, value: list[Any]) -> None:
    """Tiers: [[up_to, rate], …] with increasing bounds (the last may be inf), rates ≥ 0."""
    lower = 0.0
    for tier in value:
        ok = isinstance(tier, list | tuple) and len(tier) == 2
        bound, rate = (tier[0], tier[1]) if ok else (None, None)
        bound_ok = (
            isinstance(bound, int | float)
            and not isinstance(bound, bool)
            and (bound == math.inf or _finite_nonneg(bound))
        )
        if not (ok and bound_ok and _finite_nonneg(rate)) or bound <= lower:
            raise PricingError(
                f"{origin}: [{where}] {key} = {value!r}: tiers must be "
                "[[up_to, price], …] with increasing bounds and finite prices ≥ 0"
            )
        lower = float(bound)


def check_value(origin: str, where: str, key: str, value: Any) -> None:
    """Refuse anything that is not a usable price: NaN, negative, infinite, a string…"""
    if key in FLAG_KEYS:
        if not isinstance(value, bool):
            raise PricingError(f"{origin}: [{where}] {key} = {value!r} must be true or false")
        return
    if key in LIST_KEYS:
        ok = isinstance(value, list) and value and all(_finite_nonneg(x) and x > 0 for x in value)
        if not ok or any(b <= a for a, b in itertools.pairwise(value)):
            raise PricingError(f"{origin}: [{where}] {key} = {value!r}: increasing numbers > 0")
        return
    if isinstance(value, list):
        _check_tiers(origin, where, key, value)
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PricingError(f"{origin}: [{where}] {key} = {value!r} is not a number")
    if math.isnan(value):
        raise PricingError(f"{origin}: [{where}] {key} is NaN (not a price)")
    if value < 0:
        raise PricingError(f"{origin}: [{where}] {key} = {value!r} is negative")
    if not math.isfinite(value):
        raise PricingError(f"{origin}: [{where}] {key} = {value!r} is not finite")


def _check_table(origin: str, name: str, table: Any) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise PricingError(f"{origin}: [{name}] must be a table")
    for key, value in table.items():
        check_value(origin, name, key, value)
    return dict(table)


def _provenance(
    origin: str, raw: Any, keys: list[str], default_source: str
) -> dict[str, Provenance]:
    """Validate ``[provenance]``: one entry per priced key, each with verified + read_on."""
    if not isinstance(raw, Mapping):
        raise PricingError(f"{origin}: [provenance] must be a table")
    missing = [k for k in keys if k not in raw]
    if missing:
        raise PricingError(
            f"{origin}: [provenance] has no entry for {', '.join(missing)} "
            "(say where each number comes from and whether it was verified)"
        )
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        raise PricingError(f"{origin}: [provenance] names unknown key(s) {', '.join(unknown)}")
    out: dict[str, Provenance] = {}
    for key in keys:
        entry = raw[key]
        if not isinstance(entry, Mapping) or set(entry) - _PROVENANCE_KEYS:
            raise PricingError(
                f"{origin}: [provenance] {key} must be {{verified, read_on, source, note, kind}}"
            )
        kind = entry.get("kind", "price")
        if kind not in ("price", "setting"):
            raise PricingError(f"{origin}: [provenance] {key}: kind must be 'price' or 'setting'")
        if not isinstance(entry.get("verified"), bool):
            raise PricingError(f"{origin}: [provenance] {key}: verified must be true or false")
        if "read_on" not in entry:
            raise PricingError(f"{origin}: [provenance] {key}: read_on missing")
        note = str(entry.get("note", ""))
        if not entry["verified"] and not note:
            raise PricingError(f"{origin}: [provenance] {key}: unverified values need a note")
        out[key] = Provenance(
            verified=entry["verified"],
            read_on=parse_date(origin, f"[provenance] {key}.read_on", entry["read_on"]),
            source=str(entry.get("source", default_source)),
            note=note,
            kind=kind,
        )
    return out


def pricing_from_dict(data: Mapping[str, Any], *, origin: str = "<dict>") -> Pricing:
    """Validate one price list and build a :class:`Pricing` (clear errors, naming the file)."""
    missing = [k for k in _REQUIRED_TOP if k not in data]
    if missing:
        raise PricingError(f"{origin}: missing field(s) {', '.join(missing)}")
    unknown = sorted(set(data) - _KNOWN_TOP)
    if unknown:
        raise PricingError(f"{origin}: unknown field(s) {', '.join(unknown)}")
    basis = data["billing_basis"]
    if basis not in REQUIRED_PRICES:
        known = ", ".join(sorted(REQUIRED_PRICES))
        raise PricingError(f"{origin}: unknown billing_basis {basis!r}; known: {known}")
    prices = _check_table(origin, "prices", data["prices"])
    need = [k for k in REQUIRED_PRICES[basis] if k not in prices]
    if need:
        raise PricingError(f"{origin}: billing_basis {basis!r} needs [prices] {', '.join(need)}")
    included = _check_table(origin, "included", data.get("included", {}))
    free_tier = _check_table(origin, "free_tier", data.get("free_tier", {}))
    limits = _check_table(origin, "limits", data.get("limits", {}))
    term = data.get("free_tier_term", "none" if not free_tier else "")
    if term not in FREE_TIER_TERMS:
        raise PricingError(
            f"{origin}: free_tier_term must be one of {', '.join(FREE_TIER_TERMS)} "
            f"(a [free_tier] says what kind of offer it is), got {term!r}"
        )
    serves = tuple(data["serves"])
    if not serves or set(serves) - {"sse", "ws"}:
        raise PricingError(f"{origin}: serves must list 'sse' and/or 'ws', got {serves!r}")
    read_on = parse_date(origin, "read_on", data["read_on"])
    capacity = data.get("capacity", {})
    for proto, cap in capacity.items():
        _check_table(origin, f"capacity.{proto}", cap)
    if basis == "vm_capacity":
        for proto in serves:
            cap = capacity.get(proto, {})
            lack = [
                k for k in ("connections_per_instance", "tokens_per_s_per_instance") if k not in cap
            ]
            if lack:
                raise PricingError(f"{origin}: [capacity.{proto}] needs {', '.join(lack)}")
    keys = [*prices, *(f"included.{k}" for k in included), *(f"free_tier.{k}" for k in free_tier)]
    provenance = _provenance(origin, data.get("provenance", {}), keys, data["source"])
    pairing = dict(data.get("pairing", {}))
    pairing.setdefault("sse", data["platform"] if "sse" in serves else "")
    pairing.setdefault("ws", data["platform"] if "ws" in serves else "")
    sees = data.get("backend_sees", "streaming")
    if sees not in ("streaming", "all"):
        raise PricingError(f"{origin}: backend_sees must be 'streaming' or 'all'")
    if not isinstance(data.get("connection_priced", False), bool):
        raise PricingError(f"{origin}: connection_priced must be true or false")
    return Pricing(
        platform=data["platform"],
        billing_basis=basis,
        source=data["source"],
        read_on=read_on,
        serves=serves,
        prices=prices,
        pairing=pairing,
        included=included,
        free_tier=free_tier,
        free_tier_term=term,
        capacity={k: dict(v) for k, v in capacity.items()},
        limits=limits,
        provenance=provenance,
        connection_priced=data.get("connection_priced", False),
        backend=data.get("backend", ""),
        backend_sees=sees,
        product=data.get("product", ""),
        notes=data.get("notes", ""),
        uncertain=tuple(data.get("uncertain", ())),
        path=origin,
    )


def load_pricing(path: str | Path) -> Pricing:
    """Load and validate one pricing TOML file."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise PricingError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise PricingError(f"{path}: cannot read: {exc.strerror}") from exc
    return pricing_from_dict(data, origin=str(path))


def load_catalogue(folder: str | Path = PRICING_DIR) -> dict[str, Pricing]:
    """Every ``*.toml`` in ``folder``, by platform name; checks names and references."""
    folder = Path(folder)
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise PricingError(f"no pricing files in {folder}")
    out: dict[str, Pricing] = {}
    for f in files:
        p = load_pricing(f)
        if p.platform in out:
            raise PricingError(
                f"{f}: platform {p.platform!r} also defined in {out[p.platform].path}"
            )
        out[p.platform] = p
    check_catalogue(out)
    return out


def check_catalogue(catalogue: Mapping[str, Pricing]) -> None:
    """Refuse backends / pairings that point at products missing from the catalogue."""
    for p in catalogue.values():
        refs = [("backend", p.backend)] + [(f"pairing.{k}", v) for k, v in p.pairing.items()]
        for what, name in refs:
            if what == "pairing.why" or not name:
                continue
            if name not in catalogue:
                raise PricingError(f"{p.path}: {what} = {name!r} is not in the catalogue")


def price_warnings(
    catalogue: Mapping[str, Pricing],
    today: dt.date | None = None,
    max_age_days: int = STALE_AFTER_DAYS,
) -> list[str]:
    """One line per product whose prices are older than ``max_age_days`` or unverified."""
    today = today or dt.date.today()
    out = []
    for p in catalogue.values():
        dates = [pv.read_on for pv in p.provenance.values()] or [p.read_on]
        oldest = min(dates)
        age = (today - oldest).days
        if age > max_age_days:
            out.append(
                f"{p.platform}: prices read on {oldest} ({age} days ago, more than "
                f"{max_age_days}): re-read {p.source}"
            )
        if p.unverified:
            out.append(
                f"{p.platform}: not verified on the provider's page: {', '.join(p.unverified)}"
            )
    return out
