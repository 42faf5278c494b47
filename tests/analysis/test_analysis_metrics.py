"""analysis.metrics against scripted runs whose every figure is known exactly."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from analysis import metrics as M
from tests.analysis.analysis_synth import MS, S, Script, build, frame


@pytest.fixture(scope="module")
def two_arms():
    return build(
        [
            Script(arm="sse", phase="chat/sse/rep1", streams=5, tokens=50, delivery_ms=1.5),
            Script(
                arm="ws",
                phase="chat/ws/rep2",
                streams=3,
                tokens=10,
                delivery_ms=1.0,
                ttft_ms=250.0,
                gap_ms=10.0,
            ),
        ]
    )


def test_per_stream_figures_equal_the_script(two_arms):
    sm = M.stream_metrics(two_arms["streams"], two_arms["connections"])
    sse = sm[sm["arm"] == "sse"]
    ws = sm[sm["arm"] == "ws"]
    assert (sse["ttft_ms"] == 300.0).all()
    assert (sse["e2e_ms"] == 300.0 + 49 * 20.0).all()
    assert (sse["tpot_ms"] == 20.0).all()
    assert (sse["dispatch_delay_ms"] == 2.0).all()
    assert (sse["e2e_sched_ms"] == 2.0 + 300.0 + 49 * 20.0).all()
    assert (sse["open_ms"] == 5.0).all()
    assert (sse["connect_ms"] == 3.0).all()
    assert (ws["ttft_ms"] == 250.0).all()
    assert (ws["e2e_ms"] == 250.0 + 9 * 10.0).all()
    assert (ws["tpot_ms"] == 10.0).all()
    assert list(sse["rep"]) == [1] * 5 and list(ws["rep"]) == [2] * 3
    assert set(sm["scenario"]) == {"chat"}


def test_itl_is_every_gap_and_sums_to_e2e_minus_ttft(two_arms):
    gaps = M.token_gaps(two_arms["tokens"], two_arms["streams"])
    assert len(gaps) == 5 * 49 + 3 * 9  # n − 1 gaps per stream
    assert (gaps.loc[gaps["arm"] == "sse", "itl_ms"] == 20.0).all()
    assert (gaps.loc[gaps["arm"] == "ws", "itl_ms"] == 10.0).all()
    sm = M.stream_metrics(two_arms["streams"]).set_index("stream_uid")
    sums = M.stream_itl_sums(gaps)
    diff = (sm["e2e_ms"] - sm["ttft_ms"]).reindex(sums.index.astype(str))
    np.testing.assert_array_equal(diff.to_numpy(), sums.to_numpy())


def _jittered(n_streams: int, n_tokens: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    streams, tokens = [], []
    for k in range(n_streams):
        send = 5_000 * S + k * 3 * S + int(rng.integers(0, MS))
        t = send + int(rng.integers(100 * MS, 900 * MS))
        recv = [t]
        for _ in range(n_tokens - 1):
            t += int(rng.integers(0, 80 * MS))  # includes zero gaps (same-read events)
            recv.append(t)
        uid = f"p/{k}"
        tokens += [
            {"stream_uid": uid, "seq": i, "t_recv_ns": r, "t_server_ns": None, "nbytes": 50}
            for i, r in enumerate(recv)
        ]
        streams.append(
            {
                "stream_uid": uid,
                "phase": "p",
                "arm": "sse",
                "t_send_ns": send,
                "t_first_ns": recv[0],
                "t_last_ns": recv[-1],
                "n_received": n_tokens,
            }
        )
    return {"streams": frame("streams", streams), "tokens": frame("tokens", tokens)}


def test_e2e_minus_ttft_equals_sum_itl_exactly_with_jitter_and_shuffled_rows():
    fr = _jittered(20, 60, seed=7)
    shuffled = fr["tokens"].sample(frac=1.0, random_state=3).reset_index(drop=True)
    for toks in (fr["tokens"], shuffled):
        gaps = M.token_gaps(toks, fr["streams"])
        assert (gaps["itl_ms"] >= 0).all()
        sm = M.stream_metrics(fr["streams"]).set_index("stream_uid")
        # exact in integer ns: Σ gaps_ns == t_last − t_first
        sums_ns = (
            (gaps["itl_ms"] * M.NS_PER_MS).round().groupby(gaps["stream_uid"], observed=True).sum()
        )
        want = (
            (sm["t_last_ns"] - sm["t_first_ns"]).astype("int64").reindex(sums_ns.index.astype(str))
        )
        np.testing.assert_array_equal(sums_ns.astype("int64").to_numpy(), want.to_numpy())
        np.testing.assert_allclose(
            (sm["e2e_ms"] - sm["ttft_ms"]).reindex(sums_ns.index.astype(str)).to_numpy(),
            gaps.groupby("stream_uid", observed=True)["itl_ms"].sum().to_numpy(),
            rtol=0,
            atol=1e-6,
        )


def test_tpot_needs_two_tokens_and_missing_stamps_stay_missing():
    rows = [
        {
            "stream_uid": "a",
            "phase": "p",
            "arm": "sse",
            "t_send_ns": 10 * S,
            "t_first_ns": 10 * S + 300 * MS,
            "t_last_ns": 10 * S + 300 * MS,
            "n_received": 1,
        },
        {
            "stream_uid": "b",
            "phase": "p",
            "arm": "sse",
            "t_send_ns": 11 * S,
            "t_first_ns": None,
            "t_last_ns": None,
            "n_received": 0,
            "outcome": "error",
        },
    ]
    sm = M.stream_metrics(frame("streams", rows))
    assert sm.loc[0, "ttft_ms"] == 300.0 and np.isnan(sm.loc[0, "tpot_ms"])
    assert np.isnan(sm.loc[1, "ttft_ms"]) and np.isnan(sm.loc[1, "e2e_ms"])
    assert np.isnan(sm.loc[0, "dispatch_delay_ms"])  # no t_sched: not measured, not 0
    assert np.isnan(sm.loc[0, "connect_ms"])


def test_nanosecond_stamps_keep_full_precision():
    big = 2**62  # far beyond float64's exact-integer range
    rows = [
        {
            "stream_uid": "a",
            "phase": "p",
            "arm": "sse",
            "t_send_ns": big,
            "t_first_ns": big + 1,
            "t_last_ns": big + 3,
            "n_received": 3,
        }
    ]
    sm = M.stream_metrics(frame("streams", rows))
    assert sm.loc[0, "ttft_ms"] == 1e-6
    assert sm.loc[0, "tpot_ms"] == 1e-6
    toks = frame(
        "tokens",
        [
            {"stream_uid": "a", "seq": i, "t_recv_ns": big + t, "t_server_ns": big + t - 7}
            for i, t in enumerate((1, 2, 3))
        ],
    )
    assert list(M.token_gaps(toks)["itl_ms"]) == [1e-6, 1e-6]
    assert list(M.delivery_latency(toks)["delivery_ms"]) == [7e-6] * 3


def test_delivery_latency_per_arm_and_not_measured_for_foreign_server(two_arms):
    d = M.delivery_latency(two_arms["tokens"], two_arms["streams"])
    assert len(d) == 5 * 50 + 3 * 10
    assert (d.loc[d["arm"] == "sse", "delivery_ms"] == 1.5).all()
    assert (d.loc[d["arm"] == "ws", "delivery_ms"] == 1.0).all()
    foreign = build([Script(delivery_ms=None)])
    assert M.delivery_latency(foreign["tokens"], foreign["streams"]).empty


def test_connection_seconds_and_idle_share():
    conns = frame(
        "connections",
        [  # held 10 s, busy 4 s; held 5 s, busy 5 s; unclosed (excluded)
            {
                "conn_uid": "c1",
                "phase": "p",
                "arm": "ws",
                "t_connect_ns": 100 * S,
                "t_open_ns": 100 * S + 2 * MS,
                "t_close_ns": 110 * S,
                "busy_ns": 4 * S,
            },
            {
                "conn_uid": "c2",
                "phase": "p",
                "arm": "ws",
                "t_connect_ns": 200 * S,
                "t_open_ns": 200 * S + 4 * MS,
                "t_close_ns": 205 * S,
                "busy_ns": 5 * S,
            },
            {
                "conn_uid": "c3",
                "phase": "p",
                "arm": "ws",
                "t_connect_ns": 300 * S,
                "t_open_ns": 300 * S + 1 * MS,
                "t_close_ns": None,
                "busy_ns": 1 * S,
            },
            {
                "conn_uid": "c4",
                "phase": "p",
                "arm": "sse",
                "t_connect_ns": 300 * S,
                "t_open_ns": 300 * S + 1 * MS,
                "t_close_ns": 302 * S,
                "busy_ns": 2 * S,
            },
        ],
    )
    streams = frame(
        "streams",
        [
            {
                "stream_uid": f"s{i}",
                "phase": "p",
                "arm": arm,
                "worker": "w",
                "user": u,
                "session": 0,
            }
            for i, (arm, u) in enumerate([("ws", 0), ("ws", 0), ("ws", 1), ("sse", 0)])
        ],
    )
    ct = M.connection_time(conns, streams).set_index("arm")
    ws = ct.loc["ws"]
    assert ws["connections"] == 3 and ws["unclosed"] == 1
    assert ws["held_s"] == pytest.approx(15.0)
    assert ws["busy_s"] == pytest.approx(9.0)
    assert ws["idle_s"] == pytest.approx(6.0)
    assert ws["idle_share"] == pytest.approx(0.4)
    assert ws["sessions"] == 2
    assert ws["held_s_per_session"] == pytest.approx(7.5)
    assert ws["connect_ms_p50"] == pytest.approx(2.0)
    assert ct.loc["sse", "idle_share"] == 0.0


def test_integrity_sums_and_outcomes():
    base = {"phase": "p", "arm": "sse", "tokens_expected": 10}
    rows = [
        {
            **base,
            "stream_uid": "a",
            "n_received": 10,
            "n_unique": 10,
            "n_lost": 0,
            "n_dup": 0,
            "n_out_of_order": 0,
            "checksum_ok": True,
            "done": True,
            "outcome": "ok",
        },
        {
            **base,
            "stream_uid": "b",
            "n_received": 9,
            "n_unique": 8,
            "n_lost": 2,
            "n_dup": 1,
            "n_out_of_order": 1,
            "checksum_ok": False,
            "done": True,
            "outcome": "ok",
        },
        {
            **base,
            "stream_uid": "c",
            "n_received": 3,
            "n_unique": 3,
            "n_lost": None,
            "n_dup": 0,
            "n_out_of_order": 0,
            "checksum_ok": None,
            "done": False,
            "outcome": "cancelled",
        },
    ]
    s = frame("streams", rows)
    row = M.integrity(s).iloc[0]
    assert row["streams"] == 3 and row["tokens_expected"] == 30
    assert row["received"] == 22 and row["unique"] == 21
    assert row["lost"] == 2 and row["dup"] == 1 and row["out_of_order"] == 1
    assert row["checksum_fail"] == 1 and row["checksum_missing"] == 1 and row["done"] == 2
    oc = M.outcome_counts(s).iloc[0]
    assert oc["ok"] == 2 and oc["cancelled"] == 1 and oc["error"] == 0


def test_bytes_per_token(two_arms):
    bt = M.bytes_per_token(
        two_arms["streams"], two_arms["tokens"], two_arms["connections"]
    ).set_index("arm")
    # synth: nbytes 60; bytes_in = n·70 + 50 per stream; connection bytes_in = n·70 + 250
    assert bt.loc["sse", "event_bytes_per_token"] == 60.0
    assert bt.loc["sse", "app_bytes_per_token"] == pytest.approx((5 * (50 * 70 + 50)) / 250)
    assert bt.loc["ws", "conn_bytes_per_token"] == pytest.approx((3 * (10 * 70 + 250)) / 30)


def test_throughput_and_ramp_steps_with_slo():
    fr = build(
        [
            Script(
                phase="ramp/sse/rep1",
                streams=4,
                tokens=11,
                spacing_s=1.0,
                users_target=10,
                start_ns=1000 * S,
            ),
            Script(
                phase="ramp/sse/rep1",
                streams=4,
                tokens=11,
                spacing_s=1.0,
                users_target=20,
                start_ns=1004 * S,
                ttft_ms=1500.0,
            ),
        ]
    )
    # the second script reuses stream uids: make them unique
    st, tk = fr["streams"], fr["tokens"]
    st.loc[4:, "stream_uid"] = [f"b{i}" for i in range(4)]
    tk.loc[44:, "stream_uid"] = [f"b{i // 11}" for i in range(44)]
    r = M.ramp(st, tk, slo_ttft_ms=1000.0, slo_tpot_ms=50.0)
    assert list(r["users_target"]) == [10, 20]
    step0, step1 = r.iloc[0], r.iloc[1]
    # step 0 window: first send of step 0 → first send of step 1 = 4 s exactly
    assert step0["window_s"] == pytest.approx(4.0)
    assert step0["tokens_source"] == "tokens"
    # step-0 streams (sends at 0,1,2,3 s + 2 ms, tokens 300..500 ms after) all in window
    assert step0["tokens"] == 44 and step0["tokens_per_s"] == pytest.approx(11.0)
    assert step0["slo_attainment"] == 1.0
    assert step1["slo_attainment"] == 0.0  # TTFT 1.5 s > 1 s SLO
    # in flight: each stream is busy t_send → t_end (300 + 200 + 1 ms) = 0.501 s
    assert step0["mean_in_flight"] == pytest.approx(4 * 0.501 / 4.0)
    tp = M.throughput(st, tk, by="phase").iloc[0]
    assert tp["tokens"] == 88
    span = (1007 * S + 2 * MS + 1500 * MS + 200 * MS - (1000 * S + 2 * MS)) / S
    assert tp["span_s"] == pytest.approx(span)


def test_reconnect_gap_from_drop_to_next_token():
    fr = build([Script(streams=2, tokens=5)])
    st, tk = fr["streams"], fr["tokens"]
    first = st.loc[0, "t_first_ns"]
    st.loc[0, "t_drop_ns"] = first + 25 * MS  # next token at first + 40 ms
    st.loc[0, "reconnects"] = 1
    rg = M.reconnect_gaps(st, tk)
    assert len(rg) == 1 and rg.loc[0, "gap_ms"] == pytest.approx(15.0)
    assert M.reconnect_gaps(build([Script()])["streams"], tk).empty


def test_token_gaps_fast_on_millions_of_rows():
    n_streams, n_tok = 2000, 1000  # 2M token rows
    uid = np.repeat(np.array([f"w-{i}" for i in range(n_streams)], dtype=object), n_tok)
    t = (np.arange(n_tok, dtype=np.int64) * 20 * MS)[None, :] + (
        np.arange(n_streams, dtype=np.int64) * S
    )[:, None]
    toks = pd.DataFrame(
        {
            "stream_uid": pd.array(uid, dtype="str"),
            "seq": pd.array(np.tile(np.arange(n_tok), n_streams), dtype="Int64"),
            "t_recv_ns": pd.array(t.ravel(), dtype="Int64"),
            "t_server_ns": pd.array(t.ravel() - MS, dtype="Int64"),
            "nbytes": pd.array(np.full(t.size, 60), dtype="Int64"),
        }
    )
    t0 = time.perf_counter()
    gaps = M.token_gaps(toks)
    elapsed = time.perf_counter() - t0
    assert len(gaps) == n_streams * (n_tok - 1)
    assert (gaps["itl_ms"] == 20.0).all()
    assert elapsed < 5.0, elapsed
    # unsorted input takes the lexsort path and still agrees
    shuffled = toks.iloc[np.random.default_rng(0).permutation(len(toks))[:200_000]]
    g2 = M.token_gaps(shuffled)
    assert (g2["itl_ms"] > 0).all()


def test_time_to_first_byte_and_event_beside_ttft():
    """A provider format's bookkeeping arrives at once (first byte 0.4 ms, first event
    0.6 ms after the send) and the first content token 300 ms later: three figures."""
    from analysis.summary import summarize
    from analysis.tables import METRIC

    fr = build(
        [
            Script(arm="sse-openai-chat", phase="chat/sse-openai-chat/r1", streams=24,
                   first_byte_ms=0.4, first_event_ms=0.6),
            Script(arm="sse", phase="chat/sse/r1", streams=24),  # not recorded (schema 2)
        ]
    )  # fmt: skip
    sm = M.stream_metrics(fr["streams"])
    chat = sm[sm["arm"] == "sse-openai-chat"]
    assert (chat["ttfb_ms"] == 0.4).all() and (chat["first_event_ms"] == 0.6).all()
    assert (chat["ttft_ms"] == 300.0).all()
    assert sm[sm["arm"] == "sse"]["ttfb_ms"].isna().all()  # not measured, never 0
    arms = summarize(fr, n_boot=20).scenarios["chat"].arms
    assert arms["sse-openai-chat"].ttfb_ms.stat("p50") == pytest.approx(0.4)
    assert arms["sse-openai-chat"].first_event_ms.stat("p50") == pytest.approx(0.6)
    assert arms["sse"].ttfb_ms.n == 0 and METRIC["ttfb_p50_ms"].get(arms["sse"]) is None
