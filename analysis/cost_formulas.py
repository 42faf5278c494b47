"""One billing formula per ``billing_basis`` of the pricing catalogue.

Each formula takes a :class:`~analysis.cost_usage.Usage` and a
:class:`~analysis.cost_pricing.Pricing` and returns :class:`Line` items — one per billed
dimension, with the quantity that drives it — so tables can show *why* a bill is what it
is. The rules each formula applies are in its docstring, with the provider page they
come from in the pricing file's ``[provenance]``; tests pin each rule to the page's
worked example (tests/analysis/test_cost_rules.py). Adding a platform is adding a TOML
file; a formula is needed only for a new billing basis (docs/architecture.md, "Add a
price / a platform").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from analysis.cost_pricing import Pricing, PricingError
from analysis.cost_usage import GB, Sizes, Usage


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


# --------------------------------------------------------------------------- helpers


def charge_per_million(
    quantity: float, price: float | Sequence[Sequence[float]], *, whole_millions: bool = False
) -> float:
    """USD for ``quantity`` units at a price per million units.

    ``price`` is a number, or tiers ``[[up_to_millions, usd_per_million], …]`` applied
    marginally (the last bound may be ``inf``). ``whole_millions``: usage is billed in
    increments of one million, rounded up (Ably).
    """
    millions = max(0.0, quantity) / 1e6
    if whole_millions:
        millions = math.ceil(millions - 1e-12)
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
    whole = bool(p.prices.get("bill_in_whole_millions", False))
    return Line(
        p.platform,
        dimension,
        quantity,
        unit,
        billable,
        _first_rate(price) / 1e6,
        charge_per_million(billable, price, whole_millions=whole),
        note,
    )


def _requests_line(
    p: Pricing, qty: float, free_tiers: bool, note: str = "", unit: str = "requests"
) -> Line:
    """Requests per million beyond the plan's (and, when asked, the free tier's) allowance."""
    allowance = p.allowance("requests", free_tiers)
    return _per_million_line(p, "requests", qty, unit, "usd_per_million_requests", allowance, note)


def _line(p: Pricing, dimension: str, qty: float, unit: str, rate: float, note: str = "") -> Line:
    return Line(p.platform, dimension, qty, unit, qty, rate, qty * rate, note)


def _egress(u: Usage, p: Pricing) -> list[Line]:
    rate = float(p.prices.get("usd_per_gb_egress", 0.0))
    if rate <= 0 or u.bytes_out <= 0:
        return []
    return [_line(p, "egress", u.bytes_out / GB, "GB out", rate, "data transfer out")]


def _subscription(u: Usage, p: Pricing) -> list[Line]:
    fee = float(p.prices.get("usd_per_month_subscription", 0.0))
    if fee <= 0:
        return []
    return [_line(p, "subscription", u.period_hours / 730.0, "months", fee, "plan minimum")]


def billed_units(sizes: Sizes, count: float, total_bytes: float, unit_bytes: float) -> float:
    """Billed messages when each message is metered in ``unit_bytes`` chunks.

    Per message: ``max(1, ceil(bytes / unit))``, summed over the (count, bytes) classes.
    Without classes (measured usage) the average message stands for every message — the
    only case where rounding the average is used, and the note on the line says so.
    """
    if unit_bytes <= 0:
        return count
    if sizes:
        return sum(n * max(1.0, math.ceil(b / unit_bytes - 1e-9)) for n, b in sizes)
    if count <= 0:
        return 0.0
    return count * max(1.0, math.ceil(total_bytes / count / unit_bytes - 1e-9))


def _peak_connections(u: Usage) -> float:
    if u.peak_concurrent_connections > 0:
        return u.peak_concurrent_connections
    return u.connection_minutes_total / (u.period_hours * 60.0)


def _hourly_concurrency(u: Usage, minutes: float) -> list[float]:
    """Average number open in each hour of a representative day, from ``minutes`` a period."""
    days = u.period_hours / 24.0
    return [minutes * s / days / 60.0 for s in u.shares]


def _reconnects(held: float, open_s: float, max_s: float) -> float:
    """Extra requests when a held request outlives a platform's maximum duration."""
    if held <= 0 or max_s <= 0:
        return 0.0
    return held * (math.ceil(open_s / held / max_s - 1e-9) - 1)


def _zeroed(lines: list[Line], note: str) -> list[Line]:
    return [replace(ln, billable=0.0, usd=0.0, note=note) for ln in lines]


# --------------------------------------------------------------------------- formulas


def bill_messages_connection_minutes(
    u: Usage, p: Pricing, *, free_tiers: bool = False
) -> list[Line]:
    """Messages + connection-minutes (+ channel-minutes): API Gateway WebSocket, Ably.

    Rule: messages = data messages out × ``message_multiplier_out`` + messages in ×
    ``message_multiplier_in``, each message metered in ``message_unit_bytes`` chunks (API
    Gateway: 32 KB, "a 33 KB message is metered as two messages"; Ably: 5 KiB), rounded
    per message; WS heartbeats count as incoming messages when
    ``keepalive_billed_as_message``. Connection-minutes = every minute a connection is
    open, idle or not; channel-minutes (Ably) = connection-minutes ×
    ``channels_per_connection``. Per million, tiers allowed; with ``bill_in_whole_millions``
    each dimension is billed in whole millions rounded up (Ably). Plus the plan fee and
    egress. A ``free_tier_term = "free plan"`` (Ably Free) is a plan instead of the paid
    one: with free tiers on and the usage within its ``plan_max_*`` limits, the bill is 0.
    """
    unit_bytes = float(p.prices.get("message_unit_bytes", 0))
    in_msgs = u.ws_messages_in
    in_sizes = u.in_message_sizes
    if u.protocol == "ws" and p.prices.get("keepalive_billed_as_message", False):
        in_msgs += u.keepalives
        if in_sizes:
            in_sizes = (*in_sizes, (u.keepalives, u.keepalive_bytes_each))
    out_units = billed_units(u.out_message_sizes, u.messages_out, u.bytes_out, unit_bytes)
    in_units = billed_units(in_sizes, in_msgs, u.bytes_in, unit_bytes)
    billed = out_units * float(p.prices.get("message_multiplier_out", 1.0)) + in_units * float(
        p.prices.get("message_multiplier_in", 1.0)
    )
    how = "per message" if u.out_message_sizes else "average message (no size classes)"
    paid_plan = p.free_tier_term != "free plan"
    lines = [
        _per_million_line(
            p,
            "messages",
            billed,
            "messages",
            "usd_per_million_messages",
            p.allowance("messages", free_tiers and paid_plan),
            f"{u.messages_out:,.0f} out + {in_msgs:,.0f} in, {unit_bytes:g}-byte units {how}",
        ),
        _per_million_line(
            p,
            "connection_minutes",
            u.connection_minutes_total,
            "connection-minutes",
            "usd_per_million_connection_minutes",
            p.allowance("connection_minutes", free_tiers and paid_plan),
            f"idle share {u.idle_share:.0%}",
        ),
    ]
    if _first_rate(p.prices.get("usd_per_million_channel_minutes", 0.0)) > 0:
        chan = u.connection_minutes_total * float(p.prices.get("channels_per_connection", 1.0))
        lines.append(
            _per_million_line(
                p,
                "channel_minutes",
                chan,
                "channel-minutes",
                "usd_per_million_channel_minutes",
                p.allowance("channel_minutes", free_tiers and paid_plan),
            )
        )
    lines += _subscription(u, p) + _egress(u, p)
    if free_tiers and not paid_plan:
        fits = billed <= p.free_tier.get("plan_max_messages", math.inf) and _peak_connections(
            u
        ) <= p.free_tier.get("plan_max_concurrent_connections", math.inf)
        if fits:
            return _zeroed(lines, "within the free plan's limits")
    return lines


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
    active = _hourly_concurrency(u, u.connection_minutes_total)
    return [
        {
            "new_connections_per_s": u.connections_opened * s / days / 3600.0,
            "active_connections": a,
            "processed_gb": (u.bytes_in + u.bytes_out) * s / days / GB,
            "rule_evaluations_per_s": u.http_requests * s / days / 3600.0 * rules,
        }
        for s, a in zip(u.shares, active, strict=True)
    ]


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
    SSE arm: one invocation per request; held requests (streams, a tab's EventSource)
    are billed for the time they are open and re-invoked when they outlive
    ``[limits] max_duration_s``; short requests (per-tab POSTs) for
    ``handler_s_per_ws_invocation``. With ``bills_after_client_disconnect`` the function
    keeps running (and billing) after a client cancels: the orphaned generation time is
    added. WS arm (the integration behind API Gateway WebSocket): one invocation per
    incoming message and heartbeat, plus ``ws_invocations_per_connection`` ($connect,
    $disconnect) per connection; duration = streaming time + the handler time of each.
    """
    mem = float(p.price("memory_gb"))
    handler_s = float(p.prices.get("handler_s_per_ws_invocation", 0.0))
    open_s = u.connection_minutes_total * 60.0
    if u.protocol == "sse":
        held = u.connections_opened
        short = max(0.0, u.http_requests - held)
        invocations = u.http_requests + _reconnects(
            held, open_s, float(p.limits.get("max_duration_s", 0))
        )
        seconds = open_s + short * handler_s
        how = f"{open_s / 3600:,.0f} h requests open"
        if p.prices.get("bills_after_client_disconnect", False) and u.orphan_stream_minutes:
            seconds += u.orphan_stream_minutes * 60.0
            how += f" + {u.orphan_stream_minutes / 60:,.0f} h generating after clients left"
    else:
        invocations = (
            u.ws_messages_in
            + u.keepalives
            + u.connections_opened * float(p.prices.get("ws_invocations_per_connection", 2))
        )
        seconds = u.connection_minutes_busy * 60.0 + invocations * handler_s
        how = f"{u.connection_minutes_busy / 60:,.0f} h streaming"
    lines = [
        _requests_line(p, invocations, free_tiers, unit="invocations"),
        _per_million_line(
            p,
            "duration",
            seconds * mem,
            "GB-s",
            "usd_per_million_gb_seconds",
            p.allowance("gb_seconds", free_tiers),
            f"{how} × {mem:g} GB",
        ),
    ]
    rate = float(p.prices.get("usd_per_gb_streamed", 0.0))
    if rate > 0 and u.protocol == "sse" and u.connections_opened > 0:
        free = float(p.prices.get("streamed_free_bytes_per_response", 0.0))
        per_resp = u.bytes_out / u.connections_opened
        gb = max(0.0, per_resp - free) * u.connections_opened / GB
        lines.append(
            _line(
                p,
                "streamed",
                gb,
                "GB beyond free per response",
                rate,
                f"{per_resp / 1024:,.0f} KiB per response",
            )
        )
    return lines + _egress(u, p)


def bill_requests_cpu(u: Usage, p: Pricing, *, free_tiers: bool = False) -> list[Line]:
    """Requests + CPU-milliseconds, no duration charge (Cloudflare Workers, Standard).

    Rule: $ per million requests (an SSE answer, an EventSource, a POST = 1 request each;
    a WebSocket upgrade = 1 request for the whole connection, "WebSocket messages routed
    through a Worker do not count as requests") + $ per million CPU-ms, each beyond the
    plan's included amounts, + the $5 monthly subscription. Wall-clock time is free: idle
    streams and idle WebSockets cost nothing.
    """
    cpu_ms = u.server_cpu_seconds * 1000.0
    return [
        _requests_line(p, u.http_requests, free_tiers),
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
    is active, its wall clock shared by ``connections_per_object`` connections and the
    handler time of each message added: SSE — for as long as the response is open
    (a request still being processed keeps an object from hibernating: hibernation exists
    only for WebSockets); WS without hibernation — the whole connection; WS with
    hibernation — while streaming, plus ``handler_s_per_message`` per incoming message and
    ``hibernation_grace_s`` per turn. Plus the Workers Paid plan ($5/month minimum).
    """
    mem = float(p.price("object_memory_gb"))
    per_obj = float(p.prices.get("connections_per_object", 1.0))
    ratio = float(p.price("ws_messages_per_request"))
    msgs_in = u.ws_messages_in
    if u.protocol == "ws" and p.prices.get("keepalive_billed_as_message", False):
        msgs_in += u.keepalives
    requests = u.http_requests + msgs_in / ratio
    # Wall clock an object is active is shared by its connections (÷ per_obj); handler
    # time is not: each incoming message runs the handler once.
    if u.protocol == "sse":
        shared_s, handler_s = u.connection_minutes_total * 60.0, 0.0
        how = "responses open (SSE cannot hibernate)"
    elif p.prices.get("hibernation", False):
        shared_s = u.connection_minutes_busy * 60.0 + u.streams * float(
            p.prices.get("hibernation_grace_s", 0.0)
        )
        handler_s = msgs_in * float(p.prices.get("handler_s_per_message", 0.0))
        how = "hibernating between turns"
    else:
        shared_s, handler_s = u.connection_minutes_total * 60.0, 0.0
        how = "whole connection (no hibernation)"
    active_s = shared_s / per_obj + handler_s
    return [
        _requests_line(
            p,
            requests,
            free_tiers,
            f"{u.http_requests:,.0f} HTTP + {msgs_in:,.0f} WS msgs ÷ {ratio:g}",
        ),
        _per_million_line(
            p,
            "duration",
            active_s * mem,
            "GB-s",
            "usd_per_million_gb_seconds",
            p.allowance("gb_seconds", free_tiers),
            how,
        ),
        *_subscription(u, p),
        *_egress(u, p),
    ]


def unit_count(needed: float, sizes: Sequence[float]) -> float:
    """Units provisioned for ``needed`` units when only ``sizes`` exist (1, 2, 5, … 100).

    Beyond the largest size, more instances of the largest size plus one that fits the rest.
    """
    if needed <= 0:
        return float(sizes[0])
    top = float(sizes[-1])
    full, rest = divmod(needed, top)
    extra = next((float(s) for s in sizes if s >= rest - 1e-9), top) if rest > 1e-9 else 0.0
    return full * top + extra


def bill_units_messages(u: Usage, p: Pricing, *, free_tiers: bool = False) -> list[Line]:
    """Units of concurrent connections + outbound traffic in 2-KB messages (Azure Web PubSub).

    Rule (Microsoft's "Billing model for Azure Web PubSub service"): a unit holds 1,000
    concurrent connections and an instance has 1, 2, 5, 10, 20, 50 or 100 units
    (``unit_sizes``), sized here for peak ÷ (1,000 × ``max_unit_utilization``); units are
    billed per second, daily: held all period, or per hour of the daily pattern with
    ``scale_units_hourly``. Billed messages = outbound traffic *bytes* ÷ 2 KB ("100 KB of
    traffic is counted as 50 messages"): everything the service sends to clients, plus
    what it forwards to upstream event handlers with ``count_upstream_messages`` (a
    client's prompt); inbound traffic is free. Each unit-day includes
    ``included_messages_per_unit_day``; more is billed per million. The Free tier
    (``[free_tier]``: ``max_connections``, ``messages_per_day``) replaces Standard when
    free tiers are on and the usage fits it: the bill is then 0.
    """
    peak = _peak_connections(u)
    per_unit = float(p.price("connections_per_unit")) * float(
        p.prices.get("max_unit_utilization", 1.0)
    )
    sizes = p.prices.get("unit_sizes") or [1.0]
    days = u.period_hours / 24.0
    if p.prices.get("scale_units_hourly", False):
        top = max(u.shares)
        unit_days = days * sum(unit_count(peak * s / top / per_unit, sizes) for s in u.shares) / 24
        how = "scaled per hour of the day"
    else:
        units = unit_count(peak / per_unit, sizes)
        unit_days, how = units * days, f"{units:g} unit(s) for peak {peak:,.0f} connections"
    unit_bytes = float(p.prices.get("message_unit_bytes", 2048))
    upstream = sum(n * b for n, b in u.in_message_sizes) if u.in_message_sizes else u.bytes_in
    outbound = u.bytes_out + (upstream if p.prices.get("count_upstream_messages") else 0.0)
    msgs = math.ceil(outbound / unit_bytes - 1e-9) if outbound > 0 else 0.0
    included = unit_days * float(p.prices.get("included_messages_per_unit_day", 0))
    rate = float(p.price("usd_per_unit_day"))
    lines = [
        _line(p, "units", unit_days, "unit-days", rate, how),
        _per_million_line(
            p,
            "messages",
            msgs,
            "messages (2 KB of outbound traffic)",
            "usd_per_million_messages",
            included,
            f"{outbound / 1e9:,.2f} GB outbound; {included:,.0f} included",
        ),
        *_egress(u, p),
    ]
    if free_tiers and p.free_tier:
        fits = peak <= p.free_tier.get("max_connections", 0) and msgs / days <= p.free_tier.get(
            "messages_per_day", 0
        )
        if fits:
            return _zeroed(lines, "within the Free tier")
    return lines


def bill_instance_time(u: Usage, p: Pricing, *, free_tiers: bool = False) -> list[Line]:
    """vCPU-seconds + GiB-seconds of instance time + requests (GCP Cloud Run, request-based).

    Rule: an instance is billed while it has at least one request open — a WebSocket is
    one long request, so an idle WebSocket keeps its instance billed; requests share an
    instance up to ``max_concurrency`` and the autoscaler keeps instances at
    ``target_concurrency_utilization`` (60 %) of it. Per hour of the daily pattern with λ
    requests open on average, billed instances = max(1 − e^−λ, λ ÷ (max_concurrency ×
    utilization)) (the first term: the chance at least one request is open on a quiet
    service). × ``vcpus`` and ``memory_gib``, beyond the free tier. Requests: every HTTP
    request and WebSocket upgrade (messages over a WebSocket are not requests), plus a
    reconnect each time a held request outlives ``[limits] max_request_s`` (60 minutes).
    """
    days = u.period_hours / 24.0
    cap = float(p.price("max_concurrency")) * float(
        p.prices.get("target_concurrency_utilization", 1.0)
    )
    open_min = u.connection_minutes_total
    hourly = _hourly_concurrency(u, open_min)
    instance_s = days * 3600.0 * sum(max(1.0 - math.exp(-lam), lam / cap) for lam in hourly)
    vcpus, gib = float(p.price("vcpus")), float(p.price("memory_gib"))
    requests = u.http_requests + _reconnects(
        u.connections_opened, open_min * 60.0, float(p.limits.get("max_request_s", 0))
    )
    note = f"{instance_s / 3600:,.0f} instance-hours for {open_min / 60:,.0f} h of open requests"
    return [
        _per_rate_line(
            p,
            "cpu",
            instance_s * vcpus,
            "vCPU-s",
            "usd_per_vcpu_second",
            p.allowance("vcpu_seconds", free_tiers),
            note,
        ),
        _per_rate_line(
            p,
            "memory",
            instance_s * gib,
            "GiB-s",
            "usd_per_gib_second",
            p.allowance("gib_seconds", free_tiers),
        ),
        _requests_line(p, requests, free_tiers),
        *_egress(u, p),
    ]


def _per_rate_line(
    p: Pricing, dimension: str, qty: float, unit: str, key: str, allowance: float, note: str = ""
) -> Line:
    rate = float(p.price(key))
    billable = max(0.0, qty - allowance)
    return Line(p.platform, dimension, qty, unit, billable, rate, billable * rate, note)


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
    return [_line(p, "instances", inst_h, "instance-hours", rate, note), *_egress(u, p)]


Formula = Callable[..., list[Line]]

#: billing_basis → formula (the keys each needs: analysis.cost_pricing.REQUIRED_PRICES).
FORMULAS: dict[str, Formula] = {
    "messages_connection_minutes": bill_messages_connection_minutes,
    "lcu": bill_lcu,
    "requests_duration": bill_requests_duration,
    "requests_cpu": bill_requests_cpu,
    "durable_objects": bill_durable_objects,
    "units_messages": bill_units_messages,
    "instance_time": bill_instance_time,
    "vm_capacity": bill_vm_capacity,
}


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
    formula = FORMULAS[p.billing_basis]
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


def monthly_usd(
    u: Usage,
    p: Pricing,
    catalogue: Mapping[str, Pricing],
    *,
    free_tiers: bool = False,
    capacity: Mapping[str, Mapping[str, float]] | None = None,
) -> float:
    """Total of :func:`bill_with_backend` (the fast path sweeps and solvers use)."""
    lines = bill_with_backend(u, p, catalogue, free_tiers=free_tiers, capacity=capacity)
    return sum(ln.usd for ln in lines)
