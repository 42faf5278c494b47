"""Each billing rule pinned to the worked example on the provider's own page.

The page and the sentence are cited next to each test; the pricing files cite the same
pages in their [provenance]. Where a page's example rounds its billable quantities to the
next million ("(rounded) 12,000,000 requests x $0.15"), the test reproduces the page's
figures with ``bill_in_whole_millions`` and checks the unrounded quantities too.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from analysis.cost import GB, Usage, bill, charge_per_million, load_catalogue
from analysis.cost_formulas import billed_units, unit_count


@pytest.fixture(scope="module")
def cat():
    return load_catalogue()


def _by_dim(lines):
    return {ln.dimension: ln for ln in lines}


# --------------------------------------------------------------------------- Azure Web PubSub
# https://learn.microsoft.com/azure/azure-web-pubsub/concept-billing-model


def test_azure_100_kb_of_traffic_is_50_messages(cat):
    # "100 KB of traffic is counted as 50 messages": outbound bytes in 2-KB increments,
    # however many WebSocket messages carried them (here 1,000 frames of 100 B)
    p = cat["azure-web-pubsub"].with_prices(usd_per_gb_egress=0.0)
    u = Usage(arm="ws", hours=24, ws_messages_out=1000, bytes_out=100 * 1024)
    assert _by_dim(bill(u, p))["messages"].quantity == 50


def test_azure_upstream_plus_broadcast_is_22_messages(cat):
    # "One user broadcast 4 KB data to 10 connections … 4 KB (upstream traffic) + 4 KB * 10
    # (service broadcasting to clients traffic) = 44 KB … 44 KB / 2 KB = 22"
    p = cat["azure-web-pubsub"]
    u = Usage(
        arm="ws",
        hours=24,
        ws_messages_in=1,
        ws_messages_out=10,
        bytes_out=40 * 1024,
        in_message_sizes=((1, 4 * 1024),),
    )
    assert _by_dim(bill(u, p))["messages"].quantity == 22


def test_azure_units_per_second_625_unit_days(cat):
    # "5 units for 18 hours and 10 units for 6 hours … (5 units * 18 hours + 10 units * 6
    # hours) / 24 hours = 6.25 Unit/Day"; units scaled per hour of the day, no headroom
    p = cat["azure-web-pubsub"].with_prices(scale_units_hourly=True, max_unit_utilization=1.0)
    weights = (1.0,) * 18 + (2.0,) * 6
    u = Usage(arm="ws", hours=24, peak_concurrent_connections=10_000, hourly_share=weights)
    units = _by_dim(bill(u, p))["units"]
    assert units.quantity == pytest.approx(6.25)
    assert units.usd == pytest.approx(6.25 * p.prices["usd_per_unit_day"])


def test_azure_free_quota_and_additional_messages(cat):
    # "the application use 6.25 units per day that ensures the daily free quota as
    # 12,500,000-KB outbound traffic (6.25 million messages). Imaging the daily outbound
    # traffic is 30,000,000 KB (15 million messages), the additional messages will be …
    # 8.75 million messages."
    p = cat["azure-web-pubsub"].with_prices(scale_units_hourly=True, max_unit_utilization=1.0)
    weights = (1.0,) * 18 + (2.0,) * 6
    u = Usage(
        arm="ws",
        hours=24,
        peak_concurrent_connections=10_000,
        hourly_share=weights,
        bytes_out=30_000_000 * 1024,
    )
    msgs = _by_dim(bill(u, p.with_prices(usd_per_gb_egress=0.0)))["messages"]
    assert msgs.quantity == pytest.approx(15_000_000)
    assert msgs.billable == pytest.approx(8_750_000)


def test_azure_units_come_in_1_2_5_10_20_50_100(cat):
    # "Each Web PubSub service instance can have 1, 2, 5, 10, 20, 50 or 100 units"
    sizes = cat["azure-web-pubsub"].prices["unit_sizes"]
    assert [unit_count(n, sizes) for n in (0.5, 1, 2.1, 3, 6, 11, 99, 101)] == [
        1,
        1,
        5,
        5,
        10,
        20,
        100,
        101,
    ]
    # a peak of 2,500 connections at 80 % utilisation needs 3.125 units → 5 units
    p = cat["azure-web-pubsub"]
    u = Usage(arm="ws", hours=730, peak_concurrent_connections=2500)
    assert _by_dim(bill(u, p))["units"].quantity == pytest.approx(5 * 730 / 24)


def test_azure_free_tier_replaces_standard_when_it_fits(cat):
    p = cat["azure-web-pubsub"]
    small = Usage(arm="ws", hours=730, peak_concurrent_connections=15, bytes_out=1e6)
    assert sum(ln.usd for ln in bill(small, p, free_tiers=True)) == 0
    assert sum(ln.usd for ln in bill(small, p)) > 0  # free tiers off: Standard
    big = Usage(arm="ws", hours=730, peak_concurrent_connections=25, bytes_out=1e6)
    assert sum(ln.usd for ln in bill(big, p, free_tiers=True)) > 0  # 25 > 20 connections


# --------------------------------------------------------------------------- Durable Objects
# https://developers.cloudflare.com/durable-objects/platform/pricing/ (Compute billing examples)


def test_durable_objects_example_3_with_the_5_dollar_plan(cat):
    # 100 objects, one WebSocket each, one message per second all month, no hibernation:
    # requests = 100 + 259.2M / 20 = 12,960,100 − 1M included = 11,960,100;
    # duration = 259,200,000 s × 128 MB = 33,177,600 GB-s − 400,000 = 32,777,600;
    # "(rounded) 12,000,000 requests x $0.15 / 1,000,000 = $1.80", "(rounded) 33,000,000
    # GB-s x $12.50 / 1,000,000 = $412.50", "+ minimum $5/mo usage = $419.30 per month"
    p = cat["cloudflare-durable-objects"].with_prices(keepalive_billed_as_message=False)
    seconds = 100 * 60 * 60 * 24 * 30
    u = Usage(
        arm="ws",
        hours=720,
        http_requests=100,
        ws_messages_in=seconds,
        connection_minutes_total=seconds / 60,
    )
    lines = _by_dim(bill(u, p))
    assert lines["requests"].quantity == pytest.approx(12_960_100)
    assert lines["requests"].billable == pytest.approx(11_960_100)
    assert lines["duration"].quantity == pytest.approx(33_177_600)
    assert lines["duration"].billable == pytest.approx(32_777_600)
    assert lines["subscription"].usd == pytest.approx(5 * 720 / 730)  # $5 a 730-h month
    rounded = _by_dim(bill(replace(u, hours=730), p.with_prices(bill_in_whole_millions=True)))
    assert rounded["requests"].usd == pytest.approx(1.80)
    assert rounded["duration"].usd == pytest.approx(412.50)
    assert sum(ln.usd for ln in rounded.values()) == pytest.approx(419.30)


def test_durable_objects_example_2_connections_share_an_object(cat):
    # 100 objects × 50 WebSockets, one message a minute for 8 h a day: 150,000 connection
    # requests + 72,000,000 / 20 = 3.75M → "(rounded) 3,000,000 requests … $0.45";
    # 100 objects × 8 h × 30 days = 86,400,000 s → 11,059,200 GB-s → "(rounded) 11,000,000
    # GB-s … $137.50"; total "$142.95 per month"
    p = cat["cloudflare-durable-objects"].with_prices(
        connections_per_object=50, keepalive_billed_as_message=False, bill_in_whole_millions=True
    )
    u = Usage(
        arm="ws",
        hours=730,
        http_requests=150_000,
        ws_messages_in=72_000_000,
        connection_minutes_total=5000 * 8 * 60 * 30,
    )
    lines = _by_dim(bill(u, p))
    assert lines["requests"].quantity == pytest.approx(3_750_000)
    assert lines["duration"].quantity == pytest.approx(11_059_200)
    assert sum(ln.usd for ln in lines.values()) == pytest.approx(142.95)


def test_durable_objects_example_4_hibernation_bills_handler_time(cat):
    # 100 objects × 100 hibernatable WebSockets, one message per minute each, 10 ms per
    # message: 432M messages → 10,000 + 21.6M requests → "(rounded) 21,000,000 … $3.15";
    # 4,320,000 s × 128 MB = 552,960 GB-s → "(rounded) 1,000,000 GB-s … $12.50"; "$20.65"
    p = cat["cloudflare-durable-objects-hibernation"].with_prices(
        connections_per_object=100, handler_s_per_message=0.01, bill_in_whole_millions=True
    )
    u = Usage(
        arm="ws",
        hours=730,
        http_requests=10_000,
        ws_messages_in=432_000_000,
        connection_minutes_total=10_000 * 60 * 24 * 30,
        connection_minutes_idle=10_000 * 60 * 24 * 30,  # idle except the handlers
    )
    lines = _by_dim(bill(u, p))
    assert lines["requests"].quantity == pytest.approx(21_610_000)
    assert lines["duration"].quantity == pytest.approx(552_960)
    assert sum(ln.usd for ln in lines.values()) == pytest.approx(20.65)


def test_durable_objects_example_1_and_sse_cannot_hibernate(cat):
    # "A single Durable Object was called by a Worker 1.5 million times … active for
    # 1,000,000 seconds": $0.15 + $0.00 + minimum $5 = "$5.15 per month"
    p = cat["cloudflare-durable-objects-hibernation"].with_prices(bill_in_whole_millions=True)
    u = Usage(arm="sse", hours=730, http_requests=1_500_000, connection_minutes_total=1e6 / 60)
    assert sum(ln.usd for ln in bill(u, p)) == pytest.approx(5.15)
    # an SSE response keeps the object active while open, hibernation file or not: a
    # tab's idle EventSource is billed like a non-hibernating WebSocket
    idle = Usage(arm="sse", hours=730, connection_minutes_total=1e6, connection_minutes_idle=9e5)
    hib = _by_dim(bill(idle, p))["duration"].quantity
    std = _by_dim(bill(idle, cat["cloudflare-durable-objects"]))["duration"].quantity
    assert hib == std == pytest.approx(1e6 * 60 * 0.128)


# --------------------------------------------------------------------------- Workers
# https://developers.cloudflare.com/workers/platform/pricing/ (Example pricing)


@pytest.mark.parametrize(("requests", "total"), [(15_000_000, 8.00), (100_000_000, 45.40)])
def test_workers_examples_1_and_4(cat, requests, total):
    # 7 ms of CPU per request: "$5.00 + $1.50 + $1.50 = $8.00"; "$5 + $27 + $13.40 = $45.40"
    u = Usage(arm="sse", hours=730, http_requests=requests, server_cpu_seconds=requests * 0.007)
    assert sum(ln.usd for ln in bill(u, cat["cloudflare-workers"])) == pytest.approx(total)


# --------------------------------------------------------------------------- API Gateway
# https://aws.amazon.com/api-gateway/pricing/ (WebSocket APIs)


def test_apigw_32_kb_metering_per_message(cat):
    # "Messages are metered in 32 KB increments. So, a 33 KB message is metered as two
    # messages." — each message rounded on its own, never the average
    unit = cat["aws-apigw-websocket"].prices["message_unit_bytes"]
    assert billed_units(((1, 33 * 1024),), 1, 0, unit) == 2
    assert billed_units(((1, 32 * 1024),), 1, 0, unit) == 1
    # one 40 KB and one 1 KB message: 2 + 1 = 3 (their 20.5 KB average would say 2)
    assert billed_units(((1, 40 * 1024), (1, 1024)), 2, 41 * 1024, unit) == 3
    u = Usage(
        arm="ws",
        hours=730,
        ws_messages_out=2,
        bytes_out=41 * 1024,
        out_message_sizes=((1, 40 * 1024), (1, 1024)),
    )
    assert _by_dim(bill(u, cat["aws-apigw-websocket"]))["messages"].quantity == 3


def test_apigw_free_tier_is_a_12_month_offer(cat):
    # "one million messages (sent or received) and 750,000 connection minutes for up to
    # 12 months" — applied only when asked, and marked as a 12-month offer
    p = cat["aws-apigw-websocket"]
    assert p.free_tier_term == "12-month offer"
    u = Usage(arm="ws", hours=730, ws_messages_out=3e6, connection_minutes_total=1e6)
    free = _by_dim(bill(u, p.with_prices(usd_per_gb_egress=0.0), free_tiers=True))
    assert free["messages"].billable == 2e6 and free["connection_minutes"].billable == 250_000


# --------------------------------------------------------------------------- Lambda
# https://aws.amazon.com/lambda/pricing/ (Example 1)


def test_lambda_pricing_page_example_1(cat):
    # "512MB … executed it 3 million times in one month, and it ran for 1 second each
    # time": 1,500,000 GB-s − 400,000 free = 1,100,000 × $0.00001667 = $18.34; 2M billable
    # requests × $0.2/M = $0.40; "Total charges = … $18.74 per month"
    p = cat["aws-lambda"].with_prices(memory_gb=0.5, usd_per_gb_egress=0.0)
    u = Usage(
        arm="sse",
        hours=730,
        http_requests=3e6,
        connections_opened=3e6,
        connection_minutes_total=3e6 / 60,
    )
    lines = _by_dim(bill(u, p, free_tiers=True))
    assert lines["duration"].usd == pytest.approx(18.34, abs=0.005)
    assert lines["requests"].usd == pytest.approx(0.40)
    assert sum(ln.usd for ln in lines.values()) == pytest.approx(18.74, abs=0.005)


def test_lambda_bills_generation_after_the_client_left(cat):
    # a cancelled stream: the client is gone after 10 s, the function runs 30 s more
    p = cat["aws-lambda"].with_prices(usd_per_gb_egress=0.0)
    u = Usage(
        arm="sse",
        hours=730,
        http_requests=1e6,
        connections_opened=1e6,
        connection_minutes_total=1e6 * 10 / 60,
        orphan_stream_minutes=1e6 * 30 / 60,
    )
    assert _by_dim(bill(u, p))["duration"].quantity == pytest.approx(1e6 * 40 * 0.25)
    stops = p.with_prices(bills_after_client_disconnect=False)
    assert _by_dim(bill(u, stops))["duration"].quantity == pytest.approx(1e6 * 10 * 0.25)


def test_lambda_eventsource_per_tab_is_reinvoked_every_15_minutes(cat):
    # one EventSource held 40 minutes per tab: 900 s maximum → 3 invocations per tab
    p = cat["aws-lambda"]
    u = Usage(
        arm="sse",
        hours=730,
        http_requests=1000,
        connections_opened=1000,
        connection_minutes_total=1000 * 40,
    )
    assert _by_dim(bill(u, p))["requests"].quantity == 3000


# --------------------------------------------------------------------------- Ably
# https://ably.com/docs/platform/pricing (and …/message-counting, …/examples/ai-chatbot)


def test_ably_tiers_from_the_pricing_page(cat):
    p = cat["ably"]
    # "if you use 120 million messages in a month, this would cost $282.50"
    assert charge_per_million(120e6, p.prices["usd_per_million_messages"]) == pytest.approx(282.5)
    # "140 million minutes of channel time … $129.50"
    assert charge_per_million(140e6, p.prices["usd_per_million_channel_minutes"]) == pytest.approx(
        129.5
    )


def test_ably_ai_chatbot_example_and_the_29_dollar_base(cat):
    # 42,420,000 messages → "43,000,000 × $2.50/M = $107.50"; 210,000 connection minutes
    # and 105,000 channel minutes each "1,000,000 mins × $1.00/M"; "Total cost $109.50";
    # the Standard package's $29 base comes on top and no free messages are deducted
    p = cat["ably"].with_prices(
        message_multiplier_out=1.0, message_multiplier_in=1.0, channels_per_connection=0.5
    )
    u = Usage(arm="ws", hours=730, ws_messages_out=42_420_000, connection_minutes_total=210_000)
    lines = _by_dim(bill(u, p, free_tiers=True))
    assert lines["messages"].usd == pytest.approx(107.50)
    assert lines["connection_minutes"].usd == pytest.approx(1.00)
    assert lines["channel_minutes"].usd == pytest.approx(1.00)
    assert lines["subscription"].usd == pytest.approx(29.0)
    assert lines["messages"].billable == 42_420_000  # Standard has no free messages


def test_ably_5_kib_chunks_and_the_free_package(cat):
    # "Ably bills messages in 5KiB chunks … A 50KiB message counts as 10 messages, and a
    # 16KiB message counts as 4 messages"
    unit = cat["ably"].prices["message_unit_bytes"]
    assert billed_units(((1, 50 * 1024),), 1, 0, unit) == 10
    assert billed_units(((1, 16 * 1024),), 1, 0, unit) == 4
    # the Free package (6M messages, 200 concurrent connections) is a plan, not a discount
    small = Usage(
        arm="ws",
        hours=730,
        ws_messages_out=1e6,
        connection_minutes_total=1000,
        peak_concurrent_connections=50,
    )
    assert sum(ln.usd for ln in bill(small, cat["ably"], free_tiers=True)) == 0
    big = Usage(arm="ws", hours=730, ws_messages_out=1e6, peak_concurrent_connections=500)
    assert sum(ln.usd for ln in bill(big, cat["ably"], free_tiers=True)) > 29


# --------------------------------------------------------------------------- Cloud Run
# https://cloud.google.com/run/pricing ; …/docs/triggering/websockets ; …/about-instance-autoscaling


def test_cloud_run_instance_billed_while_any_request_is_open(cat):
    # 1 vCPU, 0.5 GiB, concurrency 80 at the autoscaler's 60 % target = 48 requests per
    # instance. 48 WebSockets open all month (idle or not) keep one instance billed every
    # second: 2,628,000 s × $0.000024 = $63.072 CPU + 0.5 × 2,628,000 × $0.0000025 memory
    p = cat["gcp-cloud-run"].with_prices(usd_per_gb_egress=0.0)
    month_s = 730 * 3600
    ws = Usage(
        arm="ws",
        hours=730,
        http_requests=48,
        connections_opened=48,
        connection_minutes_total=48 * month_s / 60,
        connection_minutes_idle=48 * month_s / 60 * 0.99,
    )
    lines = _by_dim(bill(ws, p))
    assert lines["cpu"].quantity == pytest.approx(month_s, rel=1e-9)
    assert lines["cpu"].usd == pytest.approx(63.072)
    assert lines["memory"].usd == pytest.approx(0.5 * month_s * 0.0000025)
    # twice the open requests need two instances
    twice = Usage(arm="ws", hours=730, connection_minutes_total=96 * month_s / 60)
    assert _by_dim(bill(twice, p))["cpu"].quantity == pytest.approx(2 * month_s)


def test_cloud_run_60_minute_request_limit_and_free_tier(cat):
    p = cat["gcp-cloud-run"]
    # a WebSocket held 2.5 h is cut at 60 minutes twice: 3 requests
    u = Usage(
        arm="ws",
        hours=730,
        http_requests=10,
        connections_opened=10,
        connection_minutes_total=10 * 150,
    )
    assert _by_dim(bill(u, p))["requests"].quantity == 30
    # free tier: 180,000 vCPU-s, 360,000 GiB-s, 2M requests a month
    free = _by_dim(bill(u, p, free_tiers=True))
    assert free["requests"].billable == 0 and free["cpu"].billable == 0
    assert p.free_tier_term == "monthly"


def test_cloud_run_quiet_service_bills_the_chance_a_request_is_open(cat):
    # λ = 0.1 requests open on average: billed 1 − e^−0.1 of the time
    p = cat["gcp-cloud-run"]
    u = Usage(arm="sse", hours=730, connection_minutes_total=0.1 * 730 * 60)
    cpu = _by_dim(bill(u, p))["cpu"].quantity
    assert cpu == pytest.approx(730 * 3600 * (1 - math.exp(-0.1)))


def test_egress_line_uses_2_to_the_30(cat):
    u = Usage(arm="sse", hours=730, bytes_out=100 * GB)
    assert _by_dim(bill(u, cat["vm"]))["egress"].usd == pytest.approx(9.0)
