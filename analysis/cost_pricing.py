"""Pricing catalogue (``analysis/pricing/*.toml``) and one formula per billing basis.

Each TOML file describes one product: ``platform``, ``billing_basis`` (which formula),
``source``, ``read_on``, ``serves`` (arms it can carry), ``[pairing]`` (which product
bills the SSE twin and which the WS twin), ``[prices]`` with units in the key names,
``[included]`` (allowances that come with the plan, always deducted) and ``[free_tier]``
(promotional / per-account allowances, deducted only when asked). A product with
``backend = "<platform>"`` also bills that product's formula on the arm's usage (as the
backend sees it, see ``backend_sees``).

Adding a platform = adding a file; a formula is needed only for a new billing basis.
Each formula returns :class:`Line` items — one per billing dimension, with the quantity
that drives it — so tables can show *why* a bill is what it is.
"""

from __future__ import annotations

import datetime as dt
import math
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from analysis.cost_usage import GB, Usage

PRICING_DIR = Path(__file__).with_name("pricing")


class PricingError(ValueError):
    """A pricing file is invalid or a catalogue is inconsistent (message says which/why)."""


@dataclass(frozen=True)
class Line:
    """One billed dimension: ``usd = billable quantity × unit price`` (tiers/allowances applied)."""

    product: str
    dimension: str
    quantity: float  # the usage figure driving the line, before allowances
    unit: str
    billable: float  # quantity after included / free-tier allowances
    unit_price_usd: float  # price per `unit` (first tier when tiered)
    usd: float
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.product}:{self.dimension}"


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
    capacity: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
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
        """Copy with some ``[prices]`` keys changed (for what-ifs and tests)."""
        return replace(self, prices={**self.prices, **changes})


# --------------------------------------------------------------------------- helpers


def charge_per_million(quantity: float, price: float | Sequence[Sequence[float]]) -> float:
    """USD for ``quantity`` units at a price per million units.

    ``price`` is a number, or tiers ``[[up_to_millions, usd_per_million], …]`` applied
    marginally (the last bound may be ``inf``).
    """
    millions = max(0.0, quantity) / 1e6
    if isinstance(price, int | float):
        return millions * float(price)
    usd, lower = 0.0, 0.0
    for upper, rate in price:
        if millions <= lower:
            break
        usd += (min(millions, float(upper)) - lower) * float(rate)
        lower = float(upper)
    if millions > lower:
        raise PricingError(f"quantity {quantity} beyond the last price tier {price}")
    return usd


def _first_rate(price: float | Sequence[Sequence[float]]) -> float:
    return float(price) if isinstance(price, int | float) else float(price[0][1])


def _per_million_line(
    p: Pricing,
    dimension: str,
    quantity: float,
    unit: str,
    price_key: str,
    allowance: float = 0.0,
    note: str = "",
) -> Line:
    price = p.price(price_key)
    billable = max(0.0, quantity - allowance)
    return Line(
        p.platform,
        dimension,
        quantity,
        unit,
        billable,
        _first_rate(price) / 1e6,
        charge_per_million(billable, price),
        note,
    )


def _egress(u: Usage, p: Pricing) -> list[Line]:
    rate = float(p.prices.get("usd_per_gb_egress", 0.0))
    if rate <= 0 or u.bytes_out <= 0:
        return []
    gb = u.bytes_out / GB
    return [Line(p.platform, "egress", gb, "GB out", gb, rate, gb * rate, "data transfer out")]


def _subscription(u: Usage, p: Pricing) -> list[Line]:
    fee = float(p.prices.get("usd_per_month_subscription", 0.0))
    if fee <= 0:
        return []
    months = u.period_hours / 730.0
    return [Line(p.platform, "subscription", months, "months", months, fee, fee * months)]


def _message_units(total_bytes: float, messages: float, unit_bytes: float) -> float:
    """Billing units per message when messages are metered in ``unit_bytes`` chunks."""
    if unit_bytes <= 0 or messages <= 0:
        return 1.0
    return max(1.0, math.ceil(total_bytes / messages / unit_bytes))


def _peak_connections(u: Usage) -> float:
    if u.peak_concurrent_connections > 0:
        return u.peak_concurrent_connections
    return u.connection_minutes_total / (u.period_hours * 60.0)


# --------------------------------------------------------------------------- formulas


def bill_messages_connection_minutes(
    u: Usage, p: Pricing, *, free_tiers: bool = False
) -> list[Line]:
    """Messages + connection-minutes (+ channel-minutes): API Gateway WebSocket, Ably.

    Rule: messages = (data messages out × ``message_multiplier_out`` + messages in ×
    ``message_multiplier_in``), each counted in ``message_unit_bytes`` units (API Gateway:
    32 KB), priced per million (tiers allowed); connection-minutes = every minute a
    connection is open, idle or not, per million; channel-minutes (Ably) = connection
    minutes × ``channels_per_connection``, per million. WS heartbeats count as incoming
    messages when ``keepalive_billed_as_message``. Plus subscription and egress if priced.
    """
    unit_bytes = float(p.prices.get("message_unit_bytes", 0))
    out_msgs = u.messages_out
    in_msgs = u.ws_messages_in
    if u.protocol == "ws" and p.prices.get("keepalive_billed_as_message", False):
        in_msgs += u.keepalives
    units_out = _message_units(u.bytes_out, out_msgs, unit_bytes)
    units_in = _message_units(u.bytes_in, in_msgs, unit_bytes)
    billed = out_msgs * units_out * float(p.prices.get("message_multiplier_out", 1.0)) + (
        in_msgs * units_in * float(p.prices.get("message_multiplier_in", 1.0))
    )
    lines = [
        _per_million_line(
            p,
            "messages",
            billed,
            "messages",
            "usd_per_million_messages",
            p.allowance("messages", free_tiers),
            f"{out_msgs:,.0f} out + {in_msgs:,.0f} in",
        ),
        _per_million_line(
            p,
            "connection_minutes",
            u.connection_minutes_total,
            "connection-minutes",
            "usd_per_million_connection_minutes",
            p.allowance("connection_minutes", free_tiers),
            f"idle share {u.idle_share:.0%}",
        ),
    ]
    if float(p.prices.get("usd_per_million_channel_minutes", 0.0)) > 0:
        chan = u.connection_minutes_total * float(p.prices.get("channels_per_connection", 1.0))
        lines.append(
            _per_million_line(
                p,
                "channel_minutes",
                chan,
                "channel-minutes",
                "usd_per_million_channel_minutes",
                p.allowance("channel_minutes", free_tiers),
            )
        )
    return lines + _subscription(u, p) + _egress(u, p)


LCU_DIMENSIONS = ("new_connections", "active_connections", "processed_bytes", "rule_evaluations")


def alb_hourly(u: Usage, p: Pricing) -> list[dict[str, float]]:
    """A representative day of ALB load, one dict per hour, from the usage's hourly shares.

    Per hour h with share s_h of a day's usage and D = days in the period:
    new connections/s = connections × s_h ÷ D ÷ 3600; active connections = average
    concurrent = connection-minutes × s_h ÷ D ÷ 60; processed GB = (bytes in + out) × s_h
    ÷ D ÷ 2^30; rule evaluations/s = requests × s_h ÷ D ÷ 3600 × billable rules.
    """
    days = u.period_hours / 24.0
    rules = max(
        0.0,
        float(p.prices.get("rules_evaluated_per_request", 0))
        - float(p.prices.get("free_rules_per_request", 10)),
    )
    rows = []
    for s in u.shares:
        rows.append(
            {
                "new_connections_per_s": u.connections_opened * s / days / 3600.0,
                "active_connections": u.connection_minutes_total * s / days / 60.0,
                "processed_gb": (u.bytes_in + u.bytes_out) * s / days / GB,
                "rule_evaluations_per_s": u.http_requests * s / days / 3600.0 * rules,
            }
        )
    return rows


def alb_lcus(hour: Mapping[str, float], prices: Mapping[str, Any]) -> dict[str, float]:
    """LCUs of one hour per dimension.

    new conn/s ÷ 25, active connections ÷ 3,000, processed GB ÷ 1, rule evaluations/s ÷ 1,000.
    """
    return {
        "new_connections": hour["new_connections_per_s"]
        / float(prices["lcu_new_connections_per_s"]),
        "active_connections": hour["active_connections"]
        / float(prices["lcu_active_connections_per_minute"]),
        "processed_bytes": hour["processed_gb"] / float(prices["lcu_processed_gb_per_hour"]),
        "rule_evaluations": hour["rule_evaluations_per_s"]
        / float(prices["lcu_rule_evaluations_per_s"]),
    }


def alb_lcu_hours(hours: Iterable[Mapping[str, float]], prices: Mapping[str, Any]) -> float:
    """LCU-hours of a sequence of hours: Σ over hours of max(LCU per dimension)."""
    return sum(max(alb_lcus(h, prices).values()) for h in hours)


def bill_lcu(u: Usage, p: Pricing, *, free_tiers: bool = False) -> list[Line]:
    """Load-balancer hours + LCU-hours (AWS ALB).

    Rule: $ per ALB-hour for every hour of the period, plus $ per LCU-hour where each
    hour's LCU is the max over dimensions (25 new connections/s, 3,000 active
    connections per minute, 1 GB processed per hour, 1,000 rule evaluations/s beyond the
    free rules). The month is computed from a representative day (:func:`alb_hourly`)
    × days; an LB held by idle WebSockets pays through *active connections*.
    """
    rows = alb_hourly(u, p)
    days = u.period_hours / 24.0
    lcu_h = alb_lcu_hours(rows, p.prices) * days
    # which dimension set the LCU, weighted by LCU
    weight = dict.fromkeys(LCU_DIMENSIONS, 0.0)
    for row in rows:
        lcus = alb_lcus(row, p.prices)
        top = max(lcus, key=lambda k: lcus[k])
        weight[top] += lcus[top]
    driver = max(weight, key=lambda k: weight[k])
    hour_rate = float(p.price("usd_per_hour"))
    lcu_rate = float(p.price("usd_per_lcu_hour"))
    lb_billable = max(0.0, u.period_hours - p.allowance("alb_hours", free_tiers))
    lcu_billable = max(0.0, lcu_h - p.allowance("lcu_hours", free_tiers))
    return [
        Line(
            p.platform,
            "lb_hours",
            u.period_hours,
            "ALB-hours",
            lb_billable,
            hour_rate,
            lb_billable * hour_rate,
        ),
        Line(
            p.platform,
            "lcu_hours",
            lcu_h,
            "LCU-hours",
            lcu_billable,
            lcu_rate,
            lcu_billable * lcu_rate,
            f"LCU set mostly by {driver}",
        ),
        *_egress(u, p),
    ]


def bill_requests_duration(u: Usage, p: Pricing, *, free_tiers: bool = False) -> list[Line]:
    """Requests + GB-seconds of wall clock (AWS Lambda, incl. response streaming).

    Rule: $ per million invocations + $ per GB-s where GB-s = configured memory × wall
    clock of each invocation — a held stream is billed for every second it is open, idle
    or not — + $ per GB streamed beyond the first 6 MB of each response.
    SSE arm: one invocation per HTTP request, duration = busy connection time.
    WS arm (as the integration behind API Gateway WebSocket): one invocation per incoming
    message and heartbeat, plus ``ws_invocations_per_connection`` ($connect, $disconnect)
    per connection; duration = streaming time + ``handler_s_per_ws_invocation`` each.
    """
    mem = float(p.price("memory_gb"))
    busy_s = u.connection_minutes_busy * 60.0
    if u.protocol == "sse":
        invocations = u.http_requests
        seconds = busy_s
    else:
        invocations = (
            u.ws_messages_in
            + u.keepalives
            + u.connections_opened * float(p.prices.get("ws_invocations_per_connection", 2))
        )
        seconds = busy_s + invocations * float(p.prices.get("handler_s_per_ws_invocation", 0.0))
    lines = [
        _per_million_line(
            p,
            "requests",
            invocations,
            "invocations",
            "usd_per_million_requests",
            p.allowance("requests", free_tiers),
        ),
        _per_million_line(
            p,
            "duration",
            seconds * mem,
            "GB-s",
            "usd_per_million_gb_seconds",
            p.allowance("gb_seconds", free_tiers),
            f"{seconds / 3600:,.0f} h wall clock × {mem:g} GB",
        ),
    ]
    rate = float(p.prices.get("usd_per_gb_streamed", 0.0))
    if rate > 0 and u.protocol == "sse" and u.http_requests > 0:
        free = float(p.prices.get("streamed_free_bytes_per_response", 0.0))
        per_resp = u.bytes_out / u.http_requests
        gb = max(0.0, per_resp - free) * u.http_requests / GB
        lines.append(
            Line(
                p.platform,
                "streamed",
                gb,
                "GB beyond free per response",
                gb,
                rate,
                gb * rate,
                f"{per_resp / 1024:,.0f} KiB per response",
            )
        )
    return lines + _egress(u, p)


def bill_requests_cpu(u: Usage, p: Pricing, *, free_tiers: bool = False) -> list[Line]:
    """Requests + CPU-milliseconds, no duration charge (Cloudflare Workers, Standard).

    Rule: $ per million requests (an SSE answer = 1 request; a WebSocket upgrade = 1
    request for the whole connection) + $ per million CPU-ms, each beyond the plan's
    included amounts, + the monthly subscription. Wall-clock time is free: idle streams
    and idle WebSockets cost nothing.
    """
    cpu_ms = u.server_cpu_seconds * 1000.0
    return [
        _per_million_line(
            p,
            "requests",
            u.http_requests,
            "requests",
            "usd_per_million_requests",
            p.allowance("requests", free_tiers),
        ),
        _per_million_line(
            p, "cpu", cpu_ms, "CPU-ms", "usd_per_million_cpu_ms", p.allowance("cpu_ms", free_tiers)
        ),
        *_subscription(u, p),
        *_egress(u, p),
    ]


def bill_durable_objects(u: Usage, p: Pricing, *, free_tiers: bool = False) -> list[Line]:
    """Requests (incoming WS messages 20:1) + GB-s of active wall clock (Durable Objects).

    Rule: requests = HTTP requests / upgrades + incoming WS messages ÷
    ``ws_messages_per_request`` (heartbeats too when ``keepalive_billed_as_message``);
    outgoing messages free. Duration = ``object_memory_gb`` (128 MB) × seconds the object
    is active ÷ ``connections_per_object``:
    SSE — while responses stream; WS without hibernation — the whole connection;
    WS with hibernation — while streaming, plus ``handler_s_per_message`` per incoming
    message and ``hibernation_grace_s`` per turn.
    """
    mem = float(p.price("object_memory_gb"))
    per_obj = float(p.prices.get("connections_per_object", 1.0))
    ratio = float(p.price("ws_messages_per_request"))
    msgs_in = u.ws_messages_in
    if u.protocol == "ws" and p.prices.get("keepalive_billed_as_message", False):
        msgs_in += u.keepalives
    requests = u.http_requests + msgs_in / ratio
    busy_s = u.connection_minutes_busy * 60.0
    if u.protocol == "sse":
        active_s, how = busy_s, "streaming only"
    elif p.prices.get("hibernation", False):
        active_s = (
            busy_s
            + msgs_in * float(p.prices.get("handler_s_per_message", 0.0))
            + u.streams * float(p.prices.get("hibernation_grace_s", 0.0))
        )
        how = "hibernating between turns"
    else:
        active_s, how = u.connection_minutes_total * 60.0, "whole connection (no hibernation)"
    gb_s = active_s * mem / per_obj
    return [
        _per_million_line(
            p,
            "requests",
            requests,
            "requests",
            "usd_per_million_requests",
            p.allowance("requests", free_tiers),
            f"{u.http_requests:,.0f} HTTP + {msgs_in:,.0f} WS msgs ÷ {ratio:g}",
        ),
        _per_million_line(
            p,
            "duration",
            gb_s,
            "GB-s",
            "usd_per_million_gb_seconds",
            p.allowance("gb_seconds", free_tiers),
            how,
        ),
        *_subscription(u, p),
        *_egress(u, p),
    ]


def bill_units_messages(u: Usage, p: Pricing, *, free_tiers: bool = False) -> list[Line]:
    """Units of concurrent connections per day + messages over the included (Azure Web PubSub).

    Rule: units = max(``min_units``, ceil(peak concurrent connections ÷ 1,000)),
    provisioned for the whole period, $ per unit per day; messages sent out by the service,
    counted in 2 KB units (inbound free unless ``count_inbound_messages``; pings never),
    beyond ``included_messages_per_unit_day`` × units × days, $ per million.
    """
    peak = _peak_connections(u)
    units = max(
        float(p.prices.get("min_units", 1)),
        math.ceil(peak / float(p.price("connections_per_unit"))),
    )
    days = u.period_hours / 24.0
    unit_days = units * days
    unit_bytes = float(p.prices.get("message_unit_bytes", 0))
    msgs = u.messages_out * _message_units(u.bytes_out, u.messages_out, unit_bytes)
    if p.prices.get("count_inbound_messages", False):
        msgs += u.ws_messages_in * _message_units(u.bytes_in, u.ws_messages_in, unit_bytes)
    included = unit_days * float(p.prices.get("included_messages_per_unit_day", 0))
    rate = float(p.price("usd_per_unit_day"))
    return [
        Line(
            p.platform,
            "units",
            unit_days,
            "unit-days",
            unit_days,
            rate,
            unit_days * rate,
            f"{units:g} unit(s) for peak {peak:,.0f} connections",
        ),
        _per_million_line(
            p,
            "messages",
            msgs,
            "messages",
            "usd_per_million_messages",
            included,
            f"{included:,.0f} included",
        ),
        *_egress(u, p),
    ]


def vm_instances_needed(
    connections: float, tokens_per_s: float, capacity: Mapping[str, float], min_instances: float
) -> int:
    """Instances: max(min, ceil(conns ÷ conns/instance), ceil(tok/s ÷ tok/s/instance))."""
    return int(
        max(
            min_instances,
            math.ceil(connections / float(capacity["connections_per_instance"]) - 1e-9),
            math.ceil(tokens_per_s / float(capacity["tokens_per_s_per_instance"]) - 1e-9),
        )
    )


#: Instance size when a vm_capacity file does not state it (``[prices] instance_vcpus``,
#: ``instance_memory_gib``): AWS t4g.small, the product vm.toml names (2 vCPU / 2 GiB).
VM_INSTANCE_DEFAULT = {"instance_vcpus": 2.0, "instance_memory_gib": 2.0}
_PER_INSTANCE = ("connections_per_instance", "tokens_per_s_per_instance")


def vm_capacity_for(
    u: Usage, p: Pricing, capacity: Mapping[str, Mapping[str, Any]] | None = None
) -> tuple[dict[str, float], str]:
    """Per-instance capacity for ``u``'s protocol and a note saying where it comes from.

    Precedence per figure: ``capacity[protocol]`` given by the caller (per instance, or
    per resource: ``tokens_per_s_per_core``, ``connections_per_gib``,
    ``baseline_rss_bytes``) > the capacity measured within the SLO that ``u`` carries
    (analysis.capacity via Calibration) > the file's ``[capacity.<protocol>]`` placeholder.
    Per resource → per instance: tokens/s = tokens/s per core × instance vCPUs (assumes
    throughput scales with cores); connections = connections per GiB × (instance GiB −
    the server's baseline RSS).
    """
    given = dict((capacity or {}).get(u.protocol, {}))
    file_cap = dict(p.capacity.get(u.protocol, {}))
    if not given and not file_cap and not u.measured_tokens_per_s_per_core:
        raise PricingError(f"{p.platform}: no capacity for protocol {u.protocol!r}")
    vcpus = float(p.prices.get("instance_vcpus", VM_INSTANCE_DEFAULT["instance_vcpus"]))
    mem_gib = float(p.prices.get("instance_memory_gib", VM_INSTANCE_DEFAULT["instance_memory_gib"]))
    per_core = given.get("tokens_per_s_per_core") or u.measured_tokens_per_s_per_core
    per_gib = given.get("connections_per_gib") or u.measured_connections_per_gib
    base = given.get("baseline_rss_bytes") or u.measured_baseline_rss_bytes
    cap: dict[str, float] = {}
    src: dict[str, str] = {}
    if "tokens_per_s_per_instance" in given:
        cap["tokens_per_s_per_instance"], src["tok/s"] = given["tokens_per_s_per_instance"], "given"
    elif per_core and per_core > 0:
        cap["tokens_per_s_per_instance"] = float(per_core) * vcpus
        src["tok/s"] = f"measured {float(per_core):,.0f}/core × {vcpus:g} vCPU"
    if "connections_per_instance" in given:
        cap["connections_per_instance"], src["conns"] = given["connections_per_instance"], "given"
    elif per_gib and per_gib > 0:
        usable = mem_gib - float(base or 0.0) / 2**30
        if usable > 0:
            cap["connections_per_instance"] = float(per_gib) * usable
            src["conns"] = f"measured {float(per_gib):,.0f}/GiB × {usable:.2f} GiB"
    for k, what in zip(_PER_INSTANCE, ("conns", "tok/s"), strict=True):
        if k not in cap:
            if k not in file_cap:
                raise PricingError(f"{p.platform}: no {k} for protocol {u.protocol!r}")
            cap[k], src[what] = float(file_cap[k]), "placeholder (pricing file)"
    return cap, "capacity: " + ", ".join(f"{k} {v}" for k, v in src.items())


def bill_vm_capacity(
    u: Usage,
    p: Pricing,
    *,
    free_tiers: bool = False,
    capacity: Mapping[str, Mapping[str, float]] | None = None,
) -> list[Line]:
    """Instance-hours for the capacity the load needs (VMs: EC2, Fly, Render, …).

    Rule: instances = :func:`vm_instances_needed` of the peak concurrent connections and
    peak tokens/s against the per-instance capacity (:func:`vm_capacity_for`: given,
    else measured within the SLO, else the file's ``[capacity.<protocol>]``); × hours × $
    per instance-hour. With ``autoscale`` the count is taken per hour of the daily pattern
    instead of at peak.
    """
    cap, source = vm_capacity_for(u, p, capacity)
    min_n = float(p.prices.get("min_instances", 1))
    peak_c, peak_t = _peak_connections(u), u.peak_tokens_per_s
    if p.prices.get("autoscale", False):
        shares = u.shares
        top = max(shares)
        days = u.period_hours / 24.0
        inst_h = days * sum(
            vm_instances_needed(peak_c * s / top, peak_t * s / top, cap, min_n) for s in shares
        )
        note = f"autoscaled per hour; {source}"
    else:
        n = vm_instances_needed(peak_c, peak_t, cap, min_n)
        inst_h = n * u.period_hours
        note = (
            f"{n} instance(s): peak {peak_c:,.0f} conns / {cap['connections_per_instance']:,.0f}, "
            f"{peak_t:,.0f} tok/s / {cap['tokens_per_s_per_instance']:,.0f}; {source}"
        )
    rate = float(p.price("usd_per_instance_hour"))
    return [
        Line(p.platform, "instances", inst_h, "instance-hours", inst_h, rate, inst_h * rate, note),
        *_egress(u, p),
    ]


Formula = Callable[..., list[Line]]

#: billing_basis → (formula, required [prices] keys)
BASES: dict[str, tuple[Formula, tuple[str, ...]]] = {
    "messages_connection_minutes": (
        bill_messages_connection_minutes,
        ("usd_per_million_messages", "usd_per_million_connection_minutes"),
    ),
    "lcu": (
        bill_lcu,
        (
            "usd_per_hour",
            "usd_per_lcu_hour",
            "lcu_new_connections_per_s",
            "lcu_active_connections_per_minute",
            "lcu_processed_gb_per_hour",
            "lcu_rule_evaluations_per_s",
        ),
    ),
    "requests_duration": (
        bill_requests_duration,
        ("usd_per_million_requests", "usd_per_million_gb_seconds", "memory_gb"),
    ),
    "requests_cpu": (bill_requests_cpu, ("usd_per_million_requests", "usd_per_million_cpu_ms")),
    "durable_objects": (
        bill_durable_objects,
        (
            "usd_per_million_requests",
            "usd_per_million_gb_seconds",
            "object_memory_gb",
            "ws_messages_per_request",
            "hibernation",
        ),
    ),
    "units_messages": (
        bill_units_messages,
        ("usd_per_unit_day", "connections_per_unit", "usd_per_million_messages"),
    ),
    "vm_capacity": (bill_vm_capacity, ("usd_per_instance_hour",)),
}

_REQUIRED_TOP = ("platform", "billing_basis", "source", "read_on", "serves", "prices")
_KNOWN_TOP = set(_REQUIRED_TOP) | {
    "pairing",
    "included",
    "free_tier",
    "capacity",
    "backend",
    "backend_sees",
    "product",
    "notes",
    "uncertain",
    "region",
    "limits",
}


def pricing_from_dict(data: Mapping[str, Any], *, origin: str = "<dict>") -> Pricing:
    """Validate one price list and build a :class:`Pricing` (clear errors, naming the file)."""
    missing = [k for k in _REQUIRED_TOP if k not in data]
    if missing:
        raise PricingError(f"{origin}: missing field(s) {', '.join(missing)}")
    unknown = sorted(set(data) - _KNOWN_TOP)
    if unknown:
        raise PricingError(f"{origin}: unknown field(s) {', '.join(unknown)}")
    basis = data["billing_basis"]
    if basis not in BASES:
        raise PricingError(
            f"{origin}: unknown billing_basis {basis!r}; known: {', '.join(sorted(BASES))}"
        )
    prices = data["prices"]
    need = [k for k in BASES[basis][1] if k not in prices]
    if need:
        raise PricingError(f"{origin}: billing_basis {basis!r} needs [prices] {', '.join(need)}")
    serves = tuple(data["serves"])
    if not serves or set(serves) - {"sse", "ws"}:
        raise PricingError(f"{origin}: serves must list 'sse' and/or 'ws', got {serves!r}")
    read_on = data["read_on"]
    if isinstance(read_on, str):
        try:
            read_on = dt.date.fromisoformat(read_on)
        except ValueError as exc:
            raise PricingError(f"{origin}: read_on {read_on!r} is not a date") from exc
    if not isinstance(read_on, dt.date):
        raise PricingError(f"{origin}: read_on must be a date (YYYY-MM-DD)")
    capacity = data.get("capacity", {})
    if basis == "vm_capacity":
        for proto in serves:
            cap = capacity.get(proto, {})
            lack = [
                k for k in ("connections_per_instance", "tokens_per_s_per_instance") if k not in cap
            ]
            if lack:
                raise PricingError(f"{origin}: [capacity.{proto}] needs {', '.join(lack)}")
    pairing = dict(data.get("pairing", {}))
    pairing.setdefault("sse", data["platform"] if "sse" in serves else "")
    pairing.setdefault("ws", data["platform"] if "ws" in serves else "")
    sees = data.get("backend_sees", "streaming")
    if sees not in ("streaming", "all"):
        raise PricingError(f"{origin}: backend_sees must be 'streaming' or 'all'")
    return Pricing(
        platform=data["platform"],
        billing_basis=basis,
        source=data["source"],
        read_on=read_on,
        serves=serves,
        prices=dict(prices),
        pairing=pairing,
        included=dict(data.get("included", {})),
        free_tier=dict(data.get("free_tier", {})),
        capacity={k: dict(v) for k, v in capacity.items()},
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


def bill(
    u: Usage,
    p: Pricing,
    *,
    free_tiers: bool = False,
    capacity: Mapping[str, Mapping[str, float]] | None = None,
    as_backend: bool = False,
) -> list[Line]:
    """The lines of ``p``'s own formula for usage ``u`` (dispatch on ``billing_basis``).

    A product billed as another product's backend may see an arm it does not carry to
    clients (Lambda behind API Gateway WebSocket), so ``as_backend`` skips that check.
    """
    if not as_backend and u.protocol not in p.serves:
        raise PricingError(f"{p.platform} does not carry the {u.protocol!r} protocol")
    formula = BASES[p.billing_basis][0]
    if p.billing_basis == "vm_capacity":
        return formula(u, p, free_tiers=free_tiers, capacity=capacity)
    return formula(u, p, free_tiers=free_tiers)


def bill_with_backend(
    u: Usage,
    p: Pricing,
    catalogue: Mapping[str, Pricing],
    *,
    free_tiers: bool = False,
    capacity: Mapping[str, Mapping[str, float]] | None = None,
    include_backend: bool = True,
) -> list[Line]:
    """``p``'s lines plus its backend's lines (backend billed on the usage it sees).

    The backend never bills client egress (the front product does); behind a connection
    service (``backend_sees = "streaming"``) it sees only streaming time.
    """
    lines = bill(u, p, free_tiers=free_tiers, capacity=capacity)
    if include_backend and p.backend:
        if p.backend not in catalogue:
            raise PricingError(f"{p.platform}: backend {p.backend!r} not in the catalogue")
        back = catalogue[p.backend]
        seen = u.streaming_only() if p.backend_sees == "streaming" else u
        seen = replace(seen, bytes_out=0.0)
        lines += bill(seen, back, free_tiers=free_tiers, capacity=capacity, as_backend=True)
    return lines
