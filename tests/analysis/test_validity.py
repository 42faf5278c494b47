"""Every headline figure is a number its data supports or "n/a" with the reason
(analysis.validity; docs/methodology.md, "Validity rules"): each rule on both sides of its
threshold, and what the summary and the tables make of it."""

from __future__ import annotations

import math

import pytest

from analysis import validity as V
from analysis.results import RatioCI
from analysis.summary import summarize
from analysis.tables import METRIC, format_summary_table, metric_cell, ratio_cell
from tests.analysis.analysis_synth import MS, S, Script, build, frame


def test_rss_fit_rule_on_both_sides_of_each_threshold() -> None:
    assert V.rss_fit(10.0, 0.99, 0, 300) is None
    assert V.rss_fit(10.0, 0.99, 0, V.RSS_MIN_CONNECTIONS) is None
    assert V.rss_fit(10.0, 0.99, 0, V.RSS_MIN_CONNECTIONS - 1) == "span 99 conns < 100"
    assert V.rss_fit(10.0, V.RSS_MIN_R2, 0, 300) is None
    assert V.rss_fit(10.0, 0.42, 0, 300) == "fit R² 0.42 < 0.9"
    assert V.rss_fit(-7.2, 0.95, 0, 300) == "slope -7.2 ≤ 0"
    assert V.rss_fit(math.nan, None, 0, 0) == "no fit (connections did not vary)"


def test_share_cpu_negative_and_ratio_rules() -> None:
    assert V.share(V.SLO_MIN_STREAMS) is None
    assert V.share(V.SLO_MIN_STREAMS - 1) == "n=19 < 20"
    assert V.cpu_per_token(1000) is None and V.cpu_per_token(999) == "999 tokens < 1000"
    assert V.non_negative(0.0) is None and V.non_negative(-7.2) == "negative (-7.2)"
    assert V.ratio_ci(RatioCI(1.0, 0.9, 1.1)) is None
    assert V.ratio_ci(RatioCI(1.0, 0.6, 1.2)) is None  # a factor 2 exactly
    assert V.ratio_ci(RatioCI(1.0, 0.21, 4.77)) == "95 % CI [0.21, 4.77] too wide"
    assert V.ratio_ci(RatioCI(1.0)) is None  # a point ratio has no CI to judge
    assert ratio_cell(RatioCI(1.0, 0.21, 4.77)) == "n/a (95 % CI [0.21, 4.77] too wide)"
    assert ratio_cell(RatioCI(1.0, 0.99, 1.01)) == "1.000 [0.990, 1.010]"


def _resources(span: int, bytes_per_conn: float, noise: float = 0.0) -> list[dict]:
    """Server samples of one phase per arm: connections rise 0 → span then fall; RSS grows
    by ``bytes_per_conn`` per connection (± ``noise`` bytes alternating)."""
    rows = []
    counts = [*range(0, span + 1, max(span // 10, 1)), span, span // 2, 0]
    for arm, t0, pid in (("sse", 10_000, 1), ("ws", 20_000, 2)):
        for i, c in enumerate(counts):
            rows.append(
                {
                    "t_ns": (t0 + i) * S,
                    "phase": f"chat/{arm}/rep1",
                    "arm": arm,
                    "role": "server",
                    "pid": pid,
                    "cpu_user_s": 0.1 * i,
                    "cpu_sys_s": 0.0,
                    "rss_bytes": int(50_000_000 + bytes_per_conn * c + noise * (-1) ** i),
                    "connections": c,
                }
            )
    return rows


def _frames(resources: list[dict], streams: int = 40, tokens: int = 50) -> dict:
    fr = build(
        [
            Script(streams=streams, tokens=tokens, start_ns=10_000 * S, spacing_s=0.2),
            Script(
                arm="ws",
                phase="chat/ws/rep1",
                streams=streams,
                tokens=tokens,
                start_ns=20_000 * S,
                spacing_s=0.2,
            ),
        ]
    )
    fr["resources"] = frame("resources", resources)
    return fr


def test_memory_per_connection_is_published_only_from_a_fit_that_holds() -> None:
    good = summarize(_frames(_resources(200, 10_240)), n_boot=20)
    sse = good.arm("chat", "sse")
    assert sse.rss_kib_per_conn == pytest.approx(10.0)
    assert "rss_kib_per_conn" not in sse.invalid

    # a few dozen connections: the slope may even come out negative; never published
    few = summarize(_frames(_resources(38, -7.2 * 1024, noise=30_000)), n_boot=20)
    arm = few.arm("chat", "sse")
    assert arm.rss_kib_per_conn is None
    assert arm.invalid["rss_kib_per_conn"] == "span 38 conns < 100"
    assert metric_cell(METRIC["rss_kib_per_conn"], arm) == "n/a (span 38 conns < 100)"
    table = format_summary_table(few)
    assert "-7.2" not in table and "n/a (span 38 conns < 100)" in table

    # enough connections but RSS that does not follow them
    noisy = summarize(_frames(_resources(200, 200, noise=400_000)), n_boot=20)
    why = noisy.arm("chat", "ws").invalid["rss_kib_per_conn"]
    assert why.startswith("fit R² ") and why.endswith(" < 0.9")
    assert noisy.to_json()["scenarios"]["chat"]["arms"]["ws"]["rss_kib_per_conn"] is None


def test_cpu_per_token_needs_enough_tokens() -> None:
    res = _resources(200, 10_240)
    assert (
        "server_cpu_s_per_1k_tokens"
        not in summarize(_frames(res), n_boot=20).arm("chat", "sse").invalid
    )  # 40 streams × 50 tokens = 2,000
    small = summarize(_frames(res, streams=4, tokens=20), n_boot=20).arm("chat", "sse")
    assert small.server_cpu_s_per_1k_tokens is None
    assert small.invalid["server_cpu_s_per_1k_tokens"] == "80 tokens < 1000"


def _schedule_run(ttft_sched: float, gap_sched: float, ttft: float, gap: float, n: int) -> dict:
    fr = build(
        [
            Script(streams=n, tokens=8, ttft_ms=ttft, gap_ms=gap, spacing_s=1.0),
            Script(arm="ws", phase="chat/ws/rep1", streams=n, tokens=8, ttft_ms=ttft, gap_ms=gap),
        ]
    )
    fr["streams"]["ttft_ms_sched"] = ttft_sched
    fr["streams"]["gap_ms_sched"] = gap_sched
    return fr


def test_slo_attainment_follows_each_scenarios_own_schedule() -> None:
    # idle-hold by design: first token after 2 s, a token every 3 s → all within the SLO
    idle = summarize(_schedule_run(2000, 3000, 2002, 3000.5, 30), n_boot=20)
    assert idle.arm("chat", "sse").slo_attainment == 1.0
    # 701 ms over the schedule is a miss, 699 ms is not
    late = summarize(_schedule_run(2000, 3000, 2701, 3000, 30), n_boot=20)
    assert late.arm("chat", "sse").slo_attainment == 0.0
    ok = summarize(_schedule_run(2000, 3000, 2699, 3029, 30), n_boot=20)
    assert ok.arm("chat", "sse").slo_attainment == 1.0
    # the chat schedule: the headroom is the classic TTFT ≤ 1 s, TPOT ≤ 50 ms
    chat = summarize(_schedule_run(300, 20, 1001, 20, 30), n_boot=20)
    assert chat.arm("chat", "sse").slo_attainment == 0.0
    assert chat.slo["ttft_over_schedule_ms"] + 300 == 1000
    assert chat.slo["tpot_over_schedule_ms"] + 20 == 50
    # too few streams to publish a share
    few = summarize(_schedule_run(300, 20, 300, 20, 10), n_boot=20).arm("chat", "sse")
    assert few.slo_attainment is None and few.invalid["slo_attainment"] == "n=10 < 20"


def test_streams_the_client_ended_are_judged_on_what_they_delivered() -> None:
    """idle-hold's answers outlast its phase: the load generator stops every stream after a
    few tokens. On schedule so far → within the SLO; stopped before the first token → not
    judged; a late first token is still a miss."""
    fr = _schedule_run(2000, 3000, 2002, 3000, 30)
    st = fr["streams"]
    st["outcome"] = "stopped"
    s = summarize(fr, n_boot=20)
    assert s.arm("chat", "sse").slo_attainment == 1.0
    assert s.arm("chat", "sse").e2e_ms.n == 0  # no completed stream: no E2E to publish
    table = format_summary_table(s)
    assert "streams stopped by the load generator" in table
    late = _schedule_run(2000, 3000, 2800, 3000, 30)
    late["streams"]["outcome"] = "stopped"
    assert summarize(late, n_boot=20).arm("chat", "sse").slo_attainment == 0.0
    before_first = _schedule_run(2000, 3000, 2002, 3000, 30)
    st = before_first["streams"]
    st.loc[st.index[:10], ["outcome", "t_first_ns", "t_last_ns"]] = ["stopped", None, None]
    st.loc[st.index[:10], "n_received"] = 0
    st.loc[st.index[10:15], "outcome"] = "error"  # the system's failures stay misses
    arm = summarize(before_first, n_boot=20).arm("chat", "sse")
    assert arm.slo_attainment == pytest.approx(15 / 20)  # 10 not judged, 5 errors of 20


def test_cancelled_streams_are_not_slo_misses_and_have_their_own_e2e() -> None:
    fr = _schedule_run(300, 20, 300, 20, 40)
    st = fr["streams"]
    cancelled = st.index[::2]  # half the streams cancelled after their 3rd token
    st.loc[cancelled, "outcome"] = "cancelled"
    st.loc[cancelled, "t_last_ns"] = st.loc[cancelled, "t_first_ns"] + 2 * 20 * MS
    st.loc[cancelled, "n_received"] = 3
    s = summarize(fr, n_boot=200)
    arm = s.arm("chat", "sse")
    assert arm.slo_attainment == 1.0  # the 20 completed streams all met it
    assert arm.e2e_ms.n == 20 and arm.e2e_ms.p50 == pytest.approx(300 + 7 * 20)
    assert arm.e2e_cancelled_ms.n == 20 and arm.e2e_cancelled_ms.p50 == pytest.approx(340)
    lo, hi = arm.e2e_ms.p50_ci  # completed streams alone: no mixture, a tight CI
    assert hi / lo < 1.01
    table = format_summary_table(s)
    assert "cancelled streams" in table and "E2E p50 ms (cancelled)" in table
    # a scenario nobody cancels in has no such rows
    assert "cancelled" not in format_summary_table(summarize(_schedule_run(300, 20, 300, 20, 30)))


def test_a_negative_headline_figure_is_withheld() -> None:
    fr = _schedule_run(300, 20, 300, 20, 30)
    fr["tokens"]["t_server_ns"] = fr["tokens"]["t_recv_ns"] + 5 * MS  # clocks disagree
    arm = summarize(fr, n_boot=20).arm("chat", "sse")
    assert arm.invalid["delivery_p50_ms"] == "negative (-5)"
    assert metric_cell(METRIC["delivery_p50_ms"], arm) == "n/a (negative (-5))"
