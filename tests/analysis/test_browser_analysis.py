"""analysis.browser on synthetic records with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import browser as B

MS = 1_000_000


def _stream(uid: str, arm: str, scenario: str, **kw: object) -> dict:
    row = {
        "stream_uid": uid,
        "phase": f"{scenario}/{arm}/r1",
        "arm": arm,
        "t_send_ns": 0,
        "t_open_ns": 1 * MS,
        "t_first_ns": 300 * MS,
        "t_end_ns": 1000 * MS,
        "t_drop_ns": None,
        "outcome": "ok",
        "n_lost": 0,
        "n_dup": 0,
        "n_received": 3,
        "tokens_expected": 3,
        "reconnects": 0,
    }
    row.update(kw)
    return row


def _frames(
    rows: list[dict], tokens: list[tuple[str, int, int, int]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    st = pd.DataFrame(rows)
    for c in ("t_drop_ns", "n_lost"):
        st[c] = st[c].astype("Int64")
    tk = pd.DataFrame(tokens, columns=["stream_uid", "seq", "t_recv_ns", "t_server_ns"])
    return st, tk


def test_only_browser_arms_and_their_latency() -> None:
    rows = [_stream(f"b{i}", "browser-ws", "bc", t_first_ns=(300 + i) * MS) for i in range(8)]
    rows.append(_stream("s0", "sse", "chat"))
    tokens = [
        (f"b{i}", k, (300 + i + 20 * k) * MS, (299 + i + 20 * k) * MS)
        for i in range(8)
        for k in range(3)
    ]
    st, tk = _frames(rows, tokens)
    assert B.browser_arms(st) == ["browser-ws"]
    lat = B.latency_table(st, tk)
    (r,) = lat.to_dict("records")
    assert (r["arm"], r["streams"], r["ttft_n"]) == ("browser-ws", 8, 8)
    assert r["ttft_p50_ms"] == pytest.approx(303.5)
    assert r["itl_p50_ms"] == pytest.approx(20.0) and r["itl_n"] == 16
    assert r["delivery_p50_ms"] == pytest.approx(1.0)
    assert np.isnan(r["ttft_p95_ms"])  # 8 samples: no p95 (gated)


def _reconnect_case() -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    rows, tokens = [], []
    for i in range(4):  # EventSource: 503 ms after the drop, nothing lost
        rows.append(_stream(f"e{i}", "browser-eventsource", "br", t_drop_ns=100 * MS, reconnects=1))
        tokens += [(f"e{i}", 0, 90 * MS, 89 * MS), (f"e{i}", 1, 603 * MS, 602 * MS)]
    for i in range(4):  # WS by hand: 20 ms
        rows.append(_stream(f"w{i}", "browser-ws", "br", t_drop_ns=100 * MS, reconnects=1))
        tokens += [(f"w{i}", 0, 90 * MS, 89 * MS), (f"w{i}", 1, 120 * MS, 119 * MS)]
    for i in range(4):  # fetch without resume: 8 lost each, never a token after the drop
        rows.append(
            _stream(
                f"f{i}",
                "browser-fetch-noresume",
                "br",
                t_drop_ns=100 * MS,
                outcome="dropped",
                n_lost=8,
            )
        )
        tokens += [(f"f{i}", 0, 90 * MS, 89 * MS)]
    st, tk = _frames(rows, tokens)
    client = {
        "browser-eventsource": {"recovery_lines": 4, "code_lines": 60},
        "browser-ws": {"recovery_lines": 10, "code_lines": 100},
        "browser-fetch-noresume": {"recovery_lines": 0, "code_lines": 140},
    }
    manifest = {
        "browser_load": {f"br/{a}/r1": {"client": c} for a, c in client.items()},
        "scenario": {"name": "br", "server": {"retry_ms": 500}},
    }
    return st, tk, manifest


def test_recovery_per_arm_and_the_c5_verdict() -> None:
    st, tk, manifest = _reconnect_case()
    rec = B.recovery_table(st, tk, manifest).set_index("arm")
    es, ws, nr = (
        rec.loc[a] for a in ("browser-eventsource", "browser-ws", "browser-fetch-noresume")
    )
    assert es["gap_p50_ms"] == pytest.approx(503) and es["retry_ms"] == 500
    assert es["ok_share"] == 1 and es["lost"] == 0 and es["recovery_lines"] == 4
    assert ws["gap_p50_ms"] == pytest.approx(20)
    assert (
        nr["lost"] == 32
        and nr["lost_per_dropped"] == 8
        and nr["gap_n"] == 0
        and nr["ok_share"] == 0
    )
    v = B.c5_browser(B.recovery_table(st, tk, manifest))
    assert v is not None and v["status"] == "depends"
    assert (
        "browser-fetch-noresume lost 32 tokens" in v["verdict"]
        and "browser-ws 10 lines" in v["verdict"]
    )
    # EventSource that waited 3 s for a 500 ms retry: it did not honour retry:
    slow = tk.copy()
    slow.loc[slow["stream_uid"].str.startswith("e") & (slow["seq"] == 1), "t_recv_ns"] = 3100 * MS
    assert B.c5_browser(B.recovery_table(st, slow, manifest))["status"] == "does not hold"
    # without a fetch arm and with WS needing code: holds
    only = st[~st["arm"].str.startswith("browser-fetch")]
    assert B.c5_browser(B.recovery_table(only, tk, manifest))["status"] == "holds"
    assert B.code_table(manifest)["arm"].tolist() == [
        "browser-eventsource",
        "browser-fetch-noresume",
        "browser-ws",
    ]


def test_memory_and_cpu_per_stream_from_the_samples() -> None:
    rows = []
    t = 0
    for streams in (0, 30, 30, 120, 120, 60, 60, 120, 120, 30, 30):
        t += 1_000_000_000
        secs = t / 1e9
        for role, share in (
            ("browser-renderer", 0.5),
            ("browser-network", 0.3),
            ("browser-main", 0.2),
        ):
            rows.append(
                {
                    "phase": "bs/browser-ws/r1",
                    "arm": "browser-ws",
                    "role": role,
                    "t_ns": t,
                    "pid": hash(role) % 1000,
                    "connections": streams,
                    # 100 KiB per stream + 1 MiB/s of heap growth, split over the processes
                    "rss_bytes": int(share * (400 * 2**20 + streams * 100 * 1024 + secs * 2**20)),
                    "uss_bytes": int(share * (streams * 10 * 1024))
                    if role == "browser-network"
                    else 5,
                    "cpu_pct": share * 0.25 * streams,
                }
            )
        rows.append(
            {
                "phase": "bs/browser-ws/r1",
                "arm": "browser-ws",
                "role": "browser-driver",
                "t_ns": t,
                "pid": 1,
                "connections": streams,
                "uss_bytes": 10**9,
                "rss_bytes": 1,
                "cpu_pct": 50.0,
            }
        )
    res = pd.DataFrame(rows)
    st = pd.DataFrame([{"phase": "bs/browser-ws/r1", "n_received": 10}])
    (r,) = B.resource_table(res, st).to_dict("records")
    assert r["kind"] == "streaming"
    assert r["kib_per_stream"] == pytest.approx(100, rel=1e-3)
    assert r["drift_kib_per_s"] == pytest.approx(1024, rel=1e-3)
    assert r["cpu_pct_per_stream"] == pytest.approx(0.25)
    assert r["cpu_pct_per_stream_main"] == pytest.approx(0.05)
    assert r["kib_per_stream_network"] == pytest.approx(3, rel=1e-2)  # 0.3 × 10 KiB, private
    assert r["kib_per_stream_renderer"] == pytest.approx(0, abs=1e-6)
    assert r["idle_mib"] == pytest.approx(401, rel=1e-3)  # the driver is not the browser


def test_the_per_origin_limit_in_load() -> None:
    rows = []
    for i in range(12):  # SSE: 6 at once, the rest after the first six end
        late = i >= 6
        rows.append(
            _stream(
                f"s{i}",
                "browser-fetch",
                "browser-origin-limit",
                t_open_ns=(1200 if late else 1) * MS,
                t_first_ns=(1220 if late else 20) * MS,
                t_end_ns=(2400 if late else 1200) * MS,
            )
        )
        rows.append(
            _stream(
                f"w{i}",
                "browser-ws",
                "browser-origin-limit",
                t_open_ns=1 * MS,
                t_first_ns=21 * MS,
                t_end_ns=1200 * MS,
            )
        )
    st, _ = _frames(rows, [])
    t = B.origin_limit_table(st).set_index("arm")
    assert t.loc["browser-fetch", "max_open_at_once"] == 6
    assert t.loc["browser-fetch", "ttft_p50_rest_ms"] == pytest.approx(1220)
    assert t.loc["browser-ws", "max_open_at_once"] == 12


def test_clock_table_from_the_manifest() -> None:
    m = {
        "browser_load": {
            "x/browser-ws/r1": {
                "pages": [
                    {
                        "page": 0,
                        "users": 50,
                        "resolution_ms": 0.005,
                        "cross_origin_isolated": True,
                        "clock": {"half_width_ns": 120_000, "rtt_min_ns": 300_000, "samples": 40},
                        "clock_drift_ns": -12_000,
                    }
                ]
            }
        }
    }
    (r,) = B.clock_table(m).to_dict("records")
    assert (r["resolution_us"], r["clock_bound_us"], r["rtt_min_us"], r["drift_us"]) == (
        5.0,
        120.0,
        300.0,
        -12.0,
    )
    assert B.clock_table({}).empty


def test_claim_c5_uses_the_browser_arms_and_says_so() -> None:
    from analysis import claims as C
    from analysis.summary import summarize

    st, tk, manifest = _reconnect_case()
    for k, v in {"scenario": "br", "variant": None, "rep": 1, "session": 0, "turn": 0}.items():
        st[k] = v
    st["n_unique"] = st["n_received"]
    manifest = {
        **manifest,
        "scenario": {
            "name": "br",
            "arms": ["browser-eventsource", "browser-ws", "browser-fetch-noresume"],
            "stream": {"tokens": 3, "drop_after": 1},
            "server": {"retry_ms": 500},
        },
    }
    summary = summarize({"streams": st, "tokens": tk, "manifest": manifest}, n_boot=10)
    rows = {r["id"]: r for r in C.claims(summary, manifest=manifest)}
    c5 = rows["C5"]
    assert c5["status"] == "depends" and c5["evidence"] == "browser"
    assert "browser-fetch-noresume lost 32 tokens" in c5["verdict"]
    assert c5["scenario"] == "br"
    assert rows["C7"]["evidence"] is None  # not measured: no evidence named
    assert "| evidence |" in C.claims_markdown(list(rows.values()))
    # C1 on a browser headline: EventSource (fetch did not run) against the WebSocket page
    c1 = rows["C1"]
    assert c1["status"] != "not measured" and c1["evidence"] == "browser"
    assert "TTFT p50 browser-eventsource / browser-ws (ms)" in c1["numbers"]
    assert C._c1_pair({"sse": 0, "browser-ws": 0}) is None  # never a Python vs a page
    assert C._c1_pair({"sse": 0, "ws": 0, "browser-ws": 0}) == ("sse", ["ws"])
    assert C._c1_pair({"browser-eventsource": 0, "browser-fetch": 0, "browser-ws": 0}) == (
        "browser-fetch",
        ["browser-ws"],
    )
