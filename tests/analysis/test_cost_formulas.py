"""Each billing formula against a bill computed by hand from the catalogue's prices.

Prices are those in analysis/pricing/*.toml (each cites its page in [provenance]); the
arithmetic is written out next to each assertion. Worked examples from the providers' pages
are in test_cost_rules.py.
"""

from __future__ import annotations

import pytest

from analysis.cost import (
    GB,
    Usage,
    alb_lcu_hours,
    bill,
    bill_with_backend,
    charge_per_million,
    load_catalogue,
)


@pytest.fixture(scope="module")
def cat():
    return load_catalogue()


def _by_dim(lines):
    return {ln.dimension: ln.usd for ln in lines}


def test_charge_per_million_flat_and_tiered():
    assert charge_per_million(2_500_000, 0.25) == pytest.approx(0.625)
    # aws-apigw-websocket.toml: $1.00/M up to 1,000M messages, $0.80/M above.
    # 1.5B messages: 1,000 × $1.00 + 500 × $0.80 = $1,400
    tiers = [[1000.0, 1.00], [float("inf"), 0.80]]
    assert charge_per_million(1_500_000_000, tiers) == pytest.approx(1400.0)


def test_apigw_websocket_messages_plus_connection_minutes(cat):
    # aws-apigw-websocket.toml: $1.00 per million messages, $0.25 per million connection-minutes
    u = Usage(
        arm="ws",
        ws_messages_out=9_000_000,
        ws_messages_in=1_000_000,
        connection_minutes_total=5_000_000,
    )
    lines = _by_dim(bill(u, cat["aws-apigw-websocket"]))
    # 10M messages × $1.00/M = $10.00 ; 5M connection-minutes × $0.25/M = $1.25
    assert lines["messages"] == pytest.approx(10.00)
    assert lines["connection_minutes"] == pytest.approx(1.25)
    assert sum(lines.values()) == pytest.approx(11.25)


def test_apigw_websocket_32kb_units_and_heartbeats(cat):
    p = cat["aws-apigw-websocket"]
    # 9M frames out of 40 KiB each = 2 units of 32 KB each → 18M; 1M in; 0.5M heartbeats
    # (an app message: billed) → 18M + 1M + 0.5M = 19.5M × $1.00/M = $19.50
    u = Usage(
        arm="ws",
        ws_messages_out=9_000_000,
        ws_messages_in=1_000_000,
        keepalives=500_000,
        bytes_out=9_000_000 * 40_960,
        connection_minutes_total=0,
    )
    assert _by_dim(bill(u, p.with_prices(usd_per_gb_egress=0.0)))["messages"] == pytest.approx(19.5)


def test_apigw_websocket_with_lambda_backend(cat):
    # API GW lines as above + aws-lambda.toml on the streaming-only usage:
    # invocations = 1M messages in + 0.5M connections × 2 ($connect/$disconnect) = 2M → $0.40
    # GB-s = (busy 100,000 min × 60 = 6M s + 2M × 0.01 s) × 0.25 GB = 1.505M GB-s × $16.67/M
    #      = $25.08835
    u = Usage(
        arm="ws",
        ws_messages_out=9_000_000,
        ws_messages_in=1_000_000,
        connections_opened=500_000,
        connection_minutes_total=5_000_000,
        connection_minutes_idle=4_900_000,
    )
    lines = bill_with_backend(u, cat["aws-apigw-websocket"], cat)
    lam = {ln.dimension: ln.usd for ln in lines if ln.product == "aws-lambda"}
    assert lam["requests"] == pytest.approx(0.40)
    assert lam["duration"] == pytest.approx(1.505 * 16.67)
    assert sum(ln.usd for ln in lines) == pytest.approx(11.25 + 0.40 + 1.505 * 16.67)


def test_alb_lcu_hours_hand_pattern(cat):
    prices = cat["aws-alb"].prices  # 25 new conn/s, 3,000 active, 1 GB/h, 1,000 rules/s
    hours = [
        # 50/s ÷ 25 = 2 ; 3,000 ÷ 3,000 = 1 ; 0.5 GB ; → LCU 2
        {
            "new_connections_per_s": 50,
            "active_connections": 3000,
            "processed_gb": 0.5,
            "rule_evaluations_per_s": 0,
        },
        # 5/s = 0.2 ; 9,000 ÷ 3,000 = 3 ; 1 GB = 1 → LCU 3
        {
            "new_connections_per_s": 5,
            "active_connections": 9000,
            "processed_gb": 1.0,
            "rule_evaluations_per_s": 0,
        },
        # 2.5 GB → LCU 2.5
        {
            "new_connections_per_s": 0,
            "active_connections": 0,
            "processed_gb": 2.5,
            "rule_evaluations_per_s": 0,
        },
    ]
    lcu_h = alb_lcu_hours(hours, prices)
    assert lcu_h == pytest.approx(7.5)
    # bill for these 3 hours: 7.5 LCU-h × $0.008 + 3 h × $0.0225 = $0.06 + $0.0675 = $0.1275
    assert lcu_h * prices["usd_per_lcu_hour"] + 3 * prices["usd_per_hour"] == pytest.approx(0.1275)


def test_alb_month_from_usage(cat):
    # Flat month (730 h): 10 new conn/s, 6,000 concurrent connections, 0.5 GB/h processed.
    # Each hour LCU = max(10/25 = 0.4, 6,000/3,000 = 2, 0.5, 0) = 2 → 1,460 LCU-h × $0.008
    # = $11.68 ; 730 ALB-hours × $0.0225 = $16.425 ; total $28.105 (no egress: bytes_out 0)
    u = Usage(
        arm="ws",
        hours=730,
        connections_opened=10 * 3600 * 730,
        connection_minutes_total=6000 * 60 * 730,
        bytes_in=0.5 * 730 * GB,
    )
    lines = _by_dim(bill(u, cat["aws-alb"]))
    assert lines["lcu_hours"] == pytest.approx(11.68)
    assert lines["lb_hours"] == pytest.approx(16.425)
    assert sum(lines.values()) == pytest.approx(28.105)


def test_lambda_sse_requests_and_wall_clock(cat):
    # aws-lambda.toml: $0.20/M requests, $16.67 per M GB-s, 256 MB = 0.25 GB
    # 3M streams held 500,000 min = 30M s → 30M × 0.25 = 7.5M GB-s × $16.67/M = $125.025
    # requests 3M × $0.20/M = $0.60
    u = Usage(
        arm="sse", http_requests=3_000_000, connections_opened=3_000_000,
        connection_minutes_total=500_000,
    )  # fmt: skip
    lines = _by_dim(bill(u, cat["aws-lambda"]))
    assert lines["requests"] == pytest.approx(0.60)
    assert lines["duration"] == pytest.approx(7.5 * 16.67)
    assert lines["streamed"] == 0.0


def test_lambda_streaming_beyond_6mb(cat):
    # 3M responses of 7 MiB: 1 MiB each beyond the free 6 MiB → 3M MiB = 2,929.6875 GB (2^30)
    # × $0.008 = $23.4375
    u = Usage(
        arm="sse", http_requests=3_000_000, connections_opened=3_000_000,
        bytes_out=3_000_000 * 7 * 1024**2,
    )  # fmt: skip
    assert _by_dim(bill(u, cat["aws-lambda"]))["streamed"] == pytest.approx(23.4375)


def test_workers_requests_cpu_no_duration(cat):
    # cloudflare-workers.toml: $0.30/M requests beyond 10M, $0.02/M CPU-ms beyond 30M, $5/month
    # 25M requests → 15M × 0.30 = $4.50 ; 50,000 CPU-s = 50M ms → 20M × 0.02 = $0.40 ; + $5
    u = Usage(
        arm="sse", http_requests=25_000_000, server_cpu_seconds=50_000, connection_minutes_total=1e9
    )
    lines = _by_dim(bill(u, cat["cloudflare-workers"]))
    assert lines == pytest.approx({"requests": 4.50, "cpu": 0.40, "subscription": 5.0})


def test_durable_objects_without_hibernation(cat):
    # cloudflare-durable-objects.toml: $0.15/M requests (1M incl.), WS in 20:1,
    # $12.50/M GB-s (400k incl.), 128 MB = 0.128 GB
    # requests = 1M upgrades + 40M msgs / 20 = 3M → 2M × $0.15 = $0.30
    # GB-s = 10M min × 60 = 600M s × 0.128 = 76.8M → 76.4M × $12.50/M = $955.00
    u = Usage(
        arm="ws",
        http_requests=1_000_000,
        ws_messages_in=40_000_000,
        connection_minutes_total=10_000_000,
        connection_minutes_idle=9_000_000,
    )
    lines = _by_dim(bill(u, cat["cloudflare-durable-objects"]))
    assert lines["requests"] == pytest.approx(0.30)
    assert lines["duration"] == pytest.approx(955.00)


def test_durable_objects_with_hibernation(cat):
    # Same usage, hibernation: active = busy 1M min = 60M s + 40M msgs × 0.005 s = 60.2M s
    # × 0.128 = 7.7056M GB-s → 7.3056M × $12.50/M = $91.32 ; requests as before $0.30
    u = Usage(
        arm="ws",
        http_requests=1_000_000,
        ws_messages_in=40_000_000,
        keepalives=9e9,
        connection_minutes_total=10_000_000,
        connection_minutes_idle=9_000_000,
    )
    lines = _by_dim(bill(u, cat["cloudflare-durable-objects-hibernation"]))
    assert lines["requests"] == pytest.approx(0.30)  # auto-response heartbeats not billed
    assert lines["duration"] == pytest.approx(91.32)


def test_durable_objects_sse(cat):
    # SSE through an object: 3M requests → 2M × $0.15 = $0.30 ; streaming 1M min = 60M s ×
    # 0.128 = 7.68M GB-s → 7.28M × $12.50 = $91.00 ; Workers Paid plan $5
    u = Usage(arm="sse", http_requests=3_000_000, connection_minutes_total=1_000_000)
    lines = _by_dim(bill(u, cat["cloudflare-durable-objects"]))
    assert lines == pytest.approx({"requests": 0.30, "duration": 91.00, "subscription": 5.0})


def test_ably_messages_connection_and_channel_minutes(cat):
    # ably.toml: $2.50/M messages (publish + delivery = 2 each), $1.00/M connection-min,
    # $1.00/M channel-min, $29 Standard package.
    # messages = 10M out × 2 + 1M in × 2 = 22M → $55.00 ; 2M conn-min → $2.00 ;
    # 2M channel-min → $2.00 ; + $29 = $88.00
    u = Usage(
        arm="ws",
        ws_messages_out=10_000_000,
        ws_messages_in=1_000_000,
        keepalives=1e6,
        connection_minutes_total=2_000_000,
    )
    lines = _by_dim(bill(u, cat["ably"]))
    assert lines == pytest.approx(
        {"messages": 55.0, "connection_minutes": 2.0, "channel_minutes": 2.0, "subscription": 29.0}
    )


def test_azure_web_pubsub_units_and_messages(cat):
    # azure-web-pubsub.toml: $1.61 per unit-day, 1,000 connections/unit at ≤ 80 %, sizes
    # 1/2/5/…; 1M messages/unit-day included, $1.00/M beyond. Peak 2,500 → 3.125 units →
    # 5 units × 730/24 = 152.083 unit-days × $1.61 = $244.854 ; 300M messages' worth of
    # outbound bytes (600 GB of 2 KB) − 152.083M included = 147.917M × $1 = $147.917
    u = Usage(
        arm="ws",
        hours=730,
        peak_concurrent_connections=2500,
        ws_messages_out=150_000_000,
        bytes_out=300_000_000 * 2048,
        ws_messages_in=5e6,
    )
    lines = _by_dim(bill(u, cat["azure-web-pubsub"]))
    assert lines["units"] == pytest.approx(5 * 730 / 24 * 1.61)
    assert lines["messages"] == pytest.approx(300 - 5 * 730 / 24)


def test_vm_capacity(cat):
    # vm.toml: $0.0168 per instance-hour, 20,000 connections and 130,000 tokens/s per instance
    # peak 45,000 connections → 3 ; 400,000 tok/s → ceil(3.08) = 4 → 4 × 730 h × $0.0168 = $49.056
    u = Usage(arm="ws", hours=730, peak_concurrent_connections=45_000, peak_tokens_per_s=400_000)
    assert _by_dim(bill(u, cat["vm"]))["instances"] == pytest.approx(49.056)
    # measured capacity overrides the file: 5,000 connections/instance → 9 × 730 × 0.0168
    cap = {"ws": {"connections_per_instance": 5000, "tokens_per_s_per_instance": 1e6}}
    assert _by_dim(bill(u, cat["vm"], capacity=cap))["instances"] == pytest.approx(110.376)


def test_egress_line(cat):
    # vm.toml egress $0.09/GB: 100 GB (2^30) out → $9.00
    u = Usage(arm="sse", hours=730, bytes_out=100 * GB)
    assert _by_dim(bill(u, cat["vm"]))["egress"] == pytest.approx(9.0)
