"""analysis.clocks: delivery latency is left out, with the reason, exactly for the load
processes whose clock the run says is not the server's — and kept for the others."""

from __future__ import annotations

from analysis import clocks as CL
from analysis import metrics as M
from analysis.summary import summarize
from core.clocksync import RoundTrip, estimate
from tests.analysis.analysis_synth import S, Script, build

HOST = {"boot_id": "boot-a", "time_ns": "time:[1]"}
OTHER = {"boot_id": "boot-b", "time_ns": "time:[1]"}  # another machine


def _estimate(theta_ns: int) -> dict:
    return estimate([RoundTrip(0, 100_000 + theta_ns, 200_000)]).to_dict()


def _frames() -> dict:
    fr = build(
        [
            Script(arm=arm, phase=phase, streams=40, tokens=20, delivery_ms=d, start_ns=t * S)
            for arm, phase, d, t in (
                ("sse", "chat/sse/r1", 1.5, 10_000),
                ("sse", "chat/sse/r2", 1.5, 30_000),
                ("ws", "chat/ws/r1", 1.0, 20_000),
            )
        ]
    )
    s = fr["streams"]
    # two load processes per SSE phase: even users on h-1, odd ones on h-2
    s["worker"] = ["h-2" if u % 2 else "h-1" for u in s["user"]]
    fr["manifest"] = {
        "phases": [
            {"name": p, "server": {"clock": HOST}}
            for p in ("chat/sse/r1", "chat/sse/r2", "chat/ws/r1")
        ],
        "load_workers": {
            "chat/sse/r1": {
                "workers": {
                    "h-1": {"clock": {"host": HOST, "estimates": [_estimate(0)]}},
                    # on another machine 5 s apart: its latencies are not latencies
                    "h-2": {"clock": {"host": OTHER, "estimates": [_estimate(5 * S)]}},
                }
            },
            "chat/sse/r2": {
                "workers": {
                    "h-1": {"clock": {"host": HOST, "estimates": [_estimate(0)]}},
                    "h-2": {"clock": {"host": HOST, "estimates": [_estimate(0)]}},
                }
            },
            "chat/ws/r1": {  # the only WS worker: on another machine
                "workers": {
                    "h-1": {"clock": {"host": OTHER, "estimates": [_estimate(5 * S)]}},
                    "h-2": {"clock": {"host": OTHER, "estimates": []}},
                }
            },
        },
    }
    return fr


def test_exclusions_follow_the_clock_verdicts() -> None:
    ex = CL.delivery_exclusions(_frames()["manifest"])
    assert set(ex) == {("chat/sse/r1", "h-2"), ("chat/ws/r1", "h-1"), ("chat/ws/r1", "h-2")}
    assert "not one clock" in ex[("chat/sse/r1", "h-2")]
    assert "another host" in ex[("chat/ws/r1", "h-2")]
    assert CL.delivery_exclusions({}) == {}


def test_delivery_latency_leaves_out_exactly_those_streams() -> None:
    fr = _frames()
    ex = CL.delivery_exclusions(fr["manifest"])
    every = M.delivery_latency(fr["tokens"], fr["streams"])
    kept = M.delivery_latency(fr["tokens"], fr["streams"], ex)
    s = fr["streams"]
    dropped = s[[(p, w) in ex for p, w in zip(s["phase"], s["worker"], strict=True)]]
    assert len(every) - len(kept) == int(dropped["n_received"].sum())
    assert not kept["stream_uid"].astype(object).isin(set(dropped["stream_uid"])).any()
    assert set(kept["arm"].astype(object)) == {"sse"}
    assert (kept["delivery_ms"] == 1.5).all()  # the truth of the streams that remain


def test_summary_says_not_measured_and_why() -> None:
    out = summarize(_frames(), n_boot=50).to_json()
    arms = out["scenarios"]["chat"]["arms"]
    assert arms["sse"]["delivery_ms"]["n"] == (20 + 40) * 20  # r1 even users + all of r2
    assert arms["ws"]["delivery_ms"]["n"] == 0
    assert "chat/ws/delivery_ms" in out["not_measured"]
    flags = [f for f in out["flags"] if "delivery latency" in f]
    assert len(flags) == 3 and any("chat/sse/r1" in f and "h-2" in f for f in flags)
    # the other figures of those streams are untouched
    assert arms["ws"]["ttft_ms"]["n"] == 40
