"""Usage profiles, the session model, month scaling, calibration, sweeps and ratios."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.cost import (
    HOURS_PER_MONTH,
    Profile,
    ProfileError,
    Usage,
    calibration_from_usage,
    cost_table,
    list_profiles,
    load_profile,
    mau_sweep,
    ratio_table,
    scale_to_month,
    session_usage_from_profile,
    think_time_sweep,
    usages_from_profile,
)

TOY = Profile(
    name="toy",
    monthly_active_users=1000,
    sessions_per_user_per_month=2,
    turns_per_session=3,
    tokens_per_answer=100,
    think_time_s=20,
    tab_open_s=200,
    tokens_per_s=10,
    ttft_s=0.0,
    sse_heartbeat_s=15,
    ws_heartbeat_s=50,
)


def test_profiles_load():
    assert {"support-assistant-10k", "consumer-chat-1m"} <= set(list_profiles())
    p = load_profile("support-assistant-10k")
    assert p.monthly_active_users == 10_000 and len(p.hourly_weights) == 24


def test_profile_refuses_missing_and_unknown_fields(tmp_path: Path):
    f = tmp_path / "bad.toml"
    f.write_text('name = "bad"\nmonthly_active_users = 5\n')
    with pytest.raises(ProfileError, match="missing field"):
        load_profile(f)
    good = Path(__file__).parents[2] / "analysis" / "profiles" / "support-assistant-10k.toml"
    f.write_text(good.read_text() + "\nvibes = 3\n")
    with pytest.raises(ProfileError, match=r"unknown field.*vibes"):
        load_profile(f)


def test_session_model_sse():
    u = session_usage_from_profile(TOY, "sse")
    # answer = 0 s TTFT + 100 tokens / 10 tok/s = 10 s; 3 turns → 30 s held, nothing idle
    assert u.http_requests == 3 and u.connections_opened == 3
    assert u.sse_events == 3 * (100 + 1)  # one event per token + done
    assert u.connection_minutes_total == pytest.approx(0.5)
    assert u.connection_minutes_idle == 0
    assert u.keepalives == 0  # 10 s streams, heartbeat every 15 s
    assert u.tokens_delivered == 300


def test_session_model_ws():
    u = session_usage_from_profile(TOY, "ws")
    # one connection for the tab: 200 s (active = 3 × 10 + 2 × 20 = 70 s ≤ 200)
    assert u.http_requests == 1 and u.connections_opened == 1
    assert u.ws_messages_out == 303 and u.ws_messages_in == 3
    assert u.connection_minutes_total == pytest.approx(200 / 60)
    assert u.connection_minutes_idle == pytest.approx(170 / 60)
    assert u.keepalives == 4  # floor(200 / 50)
    assert u.idle_share == pytest.approx(0.85)


def test_scale_to_month_arithmetic():
    per_session = session_usage_from_profile(TOY, "ws")
    m = scale_to_month(per_session, TOY)
    # 1,000 MAU × 2 sessions = 2,000 sessions
    assert m.sessions == 2000 and m.streams == 6000
    assert m.connection_minutes_total == pytest.approx(2000 * 200 / 60)
    assert m.tokens_delivered == 600_000
    # flat day, peak_factor 1 → peak = monthly average: 400,000 conn-s / (730 h × 3,600 s)
    assert m.peak_concurrent_connections == pytest.approx(400_000 / (730 * 3600))
    assert m.hours == HOURS_PER_MONTH
    # a measured usage of 10 sessions scales by sessions/month ÷ 10
    measured = per_session.scaled(10)
    assert scale_to_month(measured, TOY).ws_messages_out == pytest.approx(m.ws_messages_out)


def test_peak_uses_busiest_hour():
    weights = (0.0,) * 23 + (1.0,)
    p = Profile(**{**TOY.__dict__, "hourly_weights": weights, "peak_factor": 2.0})
    m = scale_to_month(session_usage_from_profile(p, "ws"), p)
    # all of a day's 400,000/30.4167 conn-s in one hour, × 2
    assert m.peak_concurrent_connections == pytest.approx(400_000 / (730 / 24) / 3600 * 2)


def test_normalisation():
    u = scale_to_month(session_usage_from_profile(TOY, "sse"), TOY)
    per = u.per_session()
    assert per.sessions == 1 and per.http_requests == pytest.approx(3)
    k = u.per_1k_tokens()
    assert k["sse_events"] == pytest.approx(303 / 300 * 1000)


def test_with_think_time_keeps_linger():
    # linger = 200 − 70 = 130 s; at think 50 s active = 30 + 100 = 130 → tab 260 s
    p = TOY.with_think_time(50)
    assert p.linger_s == pytest.approx(130) and p.tab_open_s == pytest.approx(260)


def test_calibration_from_measured_usage():
    measured = Usage(
        arm="sse",
        sessions=5,
        streams=10,
        connections_opened=10,
        tokens_delivered=2000,
        sse_events=1010,
        bytes_out=200_000,
        bytes_in=5_000,
        server_cpu_seconds=0.02,
        connection_minutes_total=2.0,
        memory_gb_seconds=120 * 10 / 1024**2,
    )
    cal = calibration_from_usage(measured)
    assert cal.messages_per_token == pytest.approx(0.5)  # (1010 − 10 done) / 2000
    # (200,000 − 10 streams × (250 headers + 110 done)) / 1,000 messages = 196.4 B, minus
    # 2 tokens × 4 chars of token text = 188.4 B of framing per message
    assert cal.message_overhead_bytes == pytest.approx(188.4)
    assert cal.cpu_s_per_1k_tokens == pytest.approx(0.01)
    assert cal.kib_per_connection == pytest.approx(10)
    u = session_usage_from_profile(TOY, "sse", cal)
    # the run's 2 tokens per event is NOT applied: the profile's 1 token per event is
    assert u.sse_events == 3 * (100 + 1)
    # 300 events × (188.4 + 4) + 3 × (250 + 110) headers and done
    assert u.bytes_out == pytest.approx(300 * 192.4 + 3 * 360)
    assert u.bytes_in == pytest.approx(3 * 500)
    assert u.server_cpu_seconds == pytest.approx(300 * 1e-5 + 3 * 5e-4)


def test_sse_per_tab_holds_one_eventsource_for_the_tab():
    p = Profile(**{**TOY.__dict__, "sse_connection": "per_tab"})
    u = session_usage_from_profile(p, "sse")
    # one EventSource for 200 s (idle 170 s) + one POST per question
    assert u.connections_opened == 1 and u.http_requests == 1 + 3
    assert u.connection_minutes_total == pytest.approx(200 / 60)
    assert u.connection_minutes_idle == pytest.approx(170 / 60)
    assert u.keepalives == 13  # floor(200 / 15)
    assert u.sse_events == 3 * (100 + 1)


def test_cancels_deliver_part_and_leave_orphan_generation():
    p = Profile(**{**TOY.__dict__, "cancel_share": 0.5, "cancel_at_fraction": 0.2})
    u = session_usage_from_profile(p, "sse")
    # 1.5 answers whole (100 tokens, 10 s) and 1.5 cut at 20 tokens (2 s); the server
    # would have generated the other 80 tokens (8 s) for 1.5 answers
    assert u.tokens_delivered == pytest.approx(1.5 * 100 + 1.5 * 20)
    assert u.sse_events == pytest.approx(1.5 * 101 + 1.5 * 20)  # no done when cancelled
    assert u.connection_minutes_total == pytest.approx((1.5 * 10 + 1.5 * 2) / 60)
    assert u.orphan_stream_minutes == pytest.approx(1.5 * 8 / 60)
    # over WS the stop is a message from the client (SSE closes its request instead)
    w = session_usage_from_profile(p, "ws")
    assert w.ws_messages_in == pytest.approx(3 + 1.5) and u.ws_messages_in == 0


TOY_SSE = """
platform = "toy-sse"
billing_basis = "requests_duration"
source = "test"
read_on = 2026-11-23
serves = ["sse"]
[pairing]
sse = "toy-sse"
ws = "toy-ws"
[prices]
usd_per_million_requests = 1.0
usd_per_million_gb_seconds = 0.0
memory_gb = 0.25
[provenance]
usd_per_million_requests = { verified = true, read_on = 2026-11-23 }
usd_per_million_gb_seconds = { verified = true, read_on = 2026-11-23 }
memory_gb = { verified = true, read_on = 2026-11-23 }
"""
TOY_WS = """
platform = "toy-ws"
billing_basis = "messages_connection_minutes"
source = "test"
read_on = 2026-11-23
serves = ["ws"]
[pairing]
sse = "toy-sse"
ws = "toy-ws"
[prices]
usd_per_million_messages = 0.0
usd_per_million_connection_minutes = 1.0
[provenance]
usd_per_million_messages = { verified = true, read_on = 2026-11-23 }
usd_per_million_connection_minutes = { verified = true, read_on = 2026-11-23 }
"""


def test_think_time_sweep_finds_known_break_even(tmp_path: Path):
    (tmp_path / "toy-sse.toml").write_text(TOY_SSE)
    (tmp_path / "toy-ws.toml").write_text(TOY_WS)
    # think 0, tab = active = 30 s → linger 0. Per session: SSE 3 requests × $1/M;
    # WS (0.5 + 2θ/60) conn-min × $1/M. Equal when 0.5 + θ/30 = 3 → θ = 75 s.
    base = Profile(**{**TOY.__dict__, "think_time_s": 0.0, "tab_open_s": 30.0})
    sweep = think_time_sweep(base, [0, 30, 60, 90, 120], str(tmp_path))
    be = sweep.break_even.set_index("ws_platform").loc["toy-ws"]
    assert be["break_even"] == pytest.approx(75.0)
    assert be["cheaper_below"] == "ws" and be["cheaper_above"] == "sse"
    c = sweep.costs.set_index(["think_time_s", "platform"])
    # 2,000 sessions × 3 = 6,000 requests → $0.006 at every think time
    assert c.loc[(120, "toy-sse"), "monthly_usd"] == pytest.approx(0.006)
    # θ = 120: 2,000 × (0.5 + 4) = 9,000 conn-min → $0.009
    assert c.loc[(120, "toy-ws"), "monthly_usd"] == pytest.approx(0.009)


def test_mau_sweep_is_linear_without_fixed_fees(tmp_path: Path):
    (tmp_path / "toy-sse.toml").write_text(TOY_SSE)
    (tmp_path / "toy-ws.toml").write_text(TOY_WS)
    s = mau_sweep(TOY, [1000, 2000], str(tmp_path)).costs
    sse = s[s["platform"] == "toy-sse"].set_index("monthly_active_users")["monthly_usd"]
    assert sse[2000] == pytest.approx(2 * sse[1000])


def test_default_profile_from_profile_alone():
    prof = load_profile("support-assistant-10k")
    usages = usages_from_profile(prof)
    table = cost_table(usages, None, prof)
    assert {"monthly_usd", "usd_per_1m_sessions", "usd_per_connection_hour", "drivers"} <= set(
        table.columns
    )
    r = ratio_table(table).set_index("ws_platform")
    # per-token WS frames are billed messages on API Gateway; SSE on Lambda pays duration
    assert r.loc["aws-apigw-websocket", "ws_over_sse"] > 6
    assert r.loc["aws-apigw-websocket", "driver"] == "aws-apigw-websocket:messages"
    # without hibernation an idle WS keeps the object billed; with it, no difference
    assert r.loc["cloudflare-durable-objects", "driver"] == "cloudflare-durable-objects:duration"
    assert r.loc["cloudflare-durable-objects-hibernation", "ws_over_sse"] == pytest.approx(
        1, rel=0.01
    )
    assert r.loc["cloudflare-workers", "ws_over_sse"] == pytest.approx(1.0)


def test_plots_return_figures():
    pytest.importorskip("matplotlib")
    from analysis import cost_plots

    prof = load_profile("support-assistant-10k")
    table = cost_table(usages_from_profile(prof), None, prof)
    figs = [
        cost_plots.plot_monthly_cost(table),
        cost_plots.plot_ratio(ratio_table(table)),
        cost_plots.plot_think_time_sweep(think_time_sweep(prof, [0, 60, 300])),
        cost_plots.plot_mau_sweep(mau_sweep(prof, [1e3, 1e5])),
    ]
    import matplotlib.pyplot as plt

    for f in figs:
        assert f.axes
        plt.close(f)


def test_usage_from_records():
    import pandas as pd

    from analysis.cost import usage_from_records

    s = 1_000_000_000  # ns
    streams = pd.DataFrame(
        {
            "arm": ["ws", "ws", "sse"],
            "worker": ["w", "w", "w"],
            "user": [0, 0, 1],
            "session": [0, 0, 0],
            "t_send_ns": [0, 20 * s, 0],
            "t_end_ns": [10 * s, 30 * s, 10 * s],
            "n_received": [100, 100, 100],
            "n_unique": [100, 100, 100],
            "done": [True, True, True],
            "reconnects": [0, 0, 0],
            "bytes_in": [6000, 6000, 8000],
        }
    )
    conns = pd.DataFrame(
        {
            "arm": ["ws"],
            "t_open_ns": [0],
            "t_close_ns": [60 * s],
            "busy_ns": [20 * s],
            "bytes_in": [12_500],
            "bytes_out": [900],
        }
    )
    res = pd.DataFrame(
        {
            "arm": ["ws", "ws"],
            "role": ["server", "server"],
            "pid": [1, 1],
            "t_ns": [0, 60 * s],
            "cpu_user_s": [1.0, 1.5],
            "cpu_sys_s": [0.0, 0.1],
            "rss_bytes": [2**30, 2**30],
        }
    )
    u = usage_from_records("ws", streams, conns, res)
    assert u.sessions == 1 and u.streams == 2 and u.tokens_delivered == 200
    assert u.ws_messages_out == 202 and u.ws_messages_in == 2 and u.http_requests == 1
    # one connection held 60 s, busy 20 s → 1 min total, 2/3 idle
    assert u.connection_minutes_total == pytest.approx(1.0)
    assert u.idle_share == pytest.approx(2 / 3)
    assert u.bytes_out == 12_500 and u.bytes_in == 900
    assert u.server_cpu_seconds == pytest.approx(0.6)
    assert u.memory_gb_seconds == pytest.approx(60.0)  # 1 GiB held 60 s
    assert u.peak_concurrent_streams == 1
    sse = usage_from_records("sse", streams)
    assert sse.http_requests == 1 and sse.sse_events == 101
    assert sse.connection_minutes_total == pytest.approx(10 / 60)


def test_break_even_none_when_equal_everywhere():
    prof = load_profile("support-assistant-10k")
    sweep = think_time_sweep(prof, [0, 60, 600], ["cloudflare-workers"])
    be = sweep.break_even.iloc[0]
    # Workers bill requests and CPU, not wall clock: think time changes nothing
    assert be["cheaper_below"] == "equal" and be["cheaper_above"] == "equal"
    assert be["break_even"] != be["break_even"]  # NaN
