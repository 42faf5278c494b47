"""analysis.resources from resource samples with known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis import resources as R
from tests.analysis.analysis_synth import MS, S, Script, build, frame


def _sample(t_s: float, pid: int, user: float, sys_: float, role: str = "server", **kw):
    return {
        "t_ns": int(t_s * S),
        "phase": "chat/sse/rep1",
        "arm": "sse",
        "role": role,
        "pid": pid,
        "cpu_user_s": user,
        "cpu_sys_s": sys_,
        **kw,
    }


def test_server_cpu_per_1k_tokens_from_cumulative_samples():
    # 2 server processes; pid 1: user 10→12.5, sys 1→1.5 (3.0 s); pid 2: 0→1.0 (1.0 s)
    res = frame(
        "resources",
        [
            _sample(100, 1, 10.0, 1.0),
            _sample(105, 1, 11.0, 1.2),
            _sample(110, 1, 12.5, 1.5),
            _sample(100, 2, 0.0, 0.0),
            _sample(110, 2, 0.8, 0.2),
            _sample(100, 9, 50.0, 5.0, role="client"),
            _sample(110, 9, 90.0, 9.0, role="client"),
        ],
    )
    # one stream whose 8,000 tokens arrive every 1.25 ms from t = 100 s: the last 1 ms of
    # the sampled window [100 s, 110 s] holds none, so exactly 8,000 tokens fall inside it
    # (tokens at t ≥ 110 s + 1 ns would not count).
    n = 8000
    recv = 100 * S + np.arange(n, dtype=np.int64) * 1_250_000
    tokens = frame(
        "tokens",
        [{"stream_uid": "s", "seq": i, "t_recv_ns": int(t)} for i, t in enumerate(recv)]
        + [{"stream_uid": "s", "seq": n, "t_recv_ns": 111 * S}],  # outside the window
    )
    streams = frame(
        "streams",
        [{"stream_uid": "s", "phase": "chat/sse/rep1", "arm": "sse", "n_received": n + 1}],
    )
    cpu = R.server_cpu(res, streams, tokens).iloc[0]
    assert cpu["processes"] == 2 and cpu["samples"] == 5
    assert cpu["cpu_s"] == pytest.approx(4.0)
    assert cpu["tokens"] == n and cpu["tokens_source"] == "tokens"
    assert cpu["cpu_s_per_1k_tokens"] == pytest.approx(4.0 / n * 1000)
    # without the tokens table: Σ n_received of the phase's streams
    cpu2 = R.server_cpu(res, streams).iloc[0]
    assert cpu2["tokens"] == n + 1 and cpu2["tokens_source"] == "streams"
    assert R.server_cpu(frame("resources", [])).empty


def test_rss_slope_recovers_bytes_per_connection():
    rng = np.random.default_rng(1)
    conns = np.r_[np.arange(0, 5000, 100), np.arange(5000, 0, -250)]
    per_conn = 16 * 1024
    rows = [
        {
            "t_ns": i * S // 2,
            "phase": "idle/ws/rep1",
            "arm": "ws",
            "role": "server",
            "pid": 7,
            "rss_bytes": int(60e6 + per_conn * c + rng.normal(0, 200e3)),
            "connections": int(c),
        }
        for i, c in enumerate(conns)
    ]
    # a second, idle server process with constant connections: no slope, ignored
    rows += [
        {
            "t_ns": i * S,
            "phase": "idle/ws/rep1",
            "arm": "ws",
            "role": "server",
            "pid": 8,
            "rss_bytes": 30_000_000,
            "connections": 0,
        }
        for i in range(5)
    ]
    out = R.rss_per_connection(frame("resources", rows)).iloc[0]
    assert out["kib_per_conn"] == pytest.approx(16.0, rel=0.02)
    assert out["r2"] > 0.99 and out["processes"] == 2
    assert out["conn_min"] == 0 and out["conn_max"] == 5000
    flat = R.rss_per_connection(frame("resources", rows[-5:])).iloc[0]
    assert math.isnan(flat["rss_bytes_per_conn"])


def test_client_cpu_flag_needs_a_sustained_overload():
    def client(pcts, phase):
        return [
            {"t_ns": i * S, "phase": phase, "arm": "ws", "role": "client", "pid": 3, "cpu_pct": p}
            for i, p in enumerate(pcts)
        ]

    res = frame(
        "resources",
        client([40, 99, 45, 50, 42, 41, 40, 39, 44, 43, 40, 41], "a/ws/rep1")  # one spike
        + client([95, 97, 60, 93, 99, 70, 96, 98], "b/ws/rep1"),
    )
    cc = R.client_cpu(res).set_index("phase")
    a, b = cc.loc["a/ws/rep1"], cc.loc["b/ws/rep1"]
    assert a["cpu_pct_max"] == 99 and not a["flag"]
    assert a["share_over"] == pytest.approx(1 / 12)
    assert b["flag"] and b["cpu_pct_median"] == pytest.approx(95.5)


def test_resources_functions_accept_empty_frames():
    empty = frame("resources", [])
    assert R.server_cpu(empty).empty
    assert R.rss_per_connection(empty).empty
    assert R.client_cpu(empty).empty
    fr = build([Script()])
    assert R.server_cpu(fr["resources"], fr["streams"], fr["tokens"]).empty
    assert MS == 1_000_000
