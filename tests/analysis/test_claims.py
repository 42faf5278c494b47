"""Verdict rules of analysis.claims on hand-made summaries (typed, as summary.json reads
back), and scenarios picked by their configuration's traits — never by their names."""

from __future__ import annotations

from typing import Any

import pytest

from analysis import claims as C
from analysis.manifest import Manifest
from analysis.results import RunSummary


def _ratio(r: float | None, lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    return {"ratio": r, "lo": lo, "hi": hi, "n_a": 500, "n_b": 500}


def _arm(ttft: float, itl: float, **kw: Any) -> dict[str, Any]:
    arm = {
        "streams": 100,
        "ttft_ms": {"p50": ttft, "p99": ttft * 2, "n": 100},
        "itl_ms": {"p50": itl, "p99": itl * 3, "n": 5000},
        "integrity": {"lost": 0, "dup": 0},
        "outcomes": {"ok": 100},
        "bytes": {"app_bytes_per_token": 80.0, "event_bytes_per_token": 60.0},
        "reconnect": {"streams_dropped": 0, "reconnects": 0, "outcomes": {}, "gap_ms": {}},
    }
    arm.update(kw)
    return arm


def _traits(scenario: str, variant: str | None = None, **traits: Any) -> dict[str, Any]:
    return {"scenario": scenario, "variant": variant, "configured": True, **traits}


def _chat(ttft_r: dict, itl_r: dict) -> dict[str, Any]:
    return {
        "arms": {"sse": _arm(300, 20), "ws": _arm(310, 20)},
        "ratios": {"sse/ws": {"ttft_ms_p50": ttft_r, "itl_ms_p50": itl_r}},
        "traits": _traits("chat", think_time=True),
    }


def _summary(ttft_r: dict, itl_r: dict, **extra: Any) -> dict[str, Any]:
    return {"scenarios": {"chat": _chat(ttft_r, itl_r), **extra}}


def _s(d: dict[str, Any]) -> RunSummary:
    return RunSummary.from_json(d)


def _get(rows: list[dict[str, Any]], cid: str) -> dict[str, Any]:
    return next(r for r in rows if r["id"] == cid)


def test_c1_ci_containing_one_holds() -> None:
    s = _summary(_ratio(0.9, 0.8, 1.05), _ratio(1.0, 0.99, 1.01))
    assert C.claim_c1(_s(s))["status"] == C.HOLDS


def test_c1_within_five_percent_holds_even_if_ci_excludes_one() -> None:
    s = _summary(_ratio(0.97, 0.965, 0.975), _ratio(1.02, 1.01, 1.03))
    assert C.claim_c1(_s(s))["status"] == C.HOLDS


def test_c1_clear_difference_does_not_hold_and_names_the_faster_arm() -> None:
    s = _summary(_ratio(0.8, 0.75, 0.85), _ratio(1.0, 0.99, 1.01))
    row = C.claim_c1(_s(s))
    assert row["status"] == C.DOES_NOT_HOLD
    assert "TTFT median differs by 20.0% (SSE lower)" in row["why"]


def test_c1_falls_back_to_point_medians_without_ci() -> None:
    s = _summary(_ratio(None), _ratio(None))
    row = C.claim_c1(_s(s))  # 300 vs 310 and 20 vs 20: within 5 %
    assert row["status"] == C.HOLDS
    assert "(no CI)" in row["numbers"]["TTFT p50 ratio sse/ws"]


def test_c1_depends_on_ws_server_when_arms_disagree() -> None:
    s = _summary(_ratio(1.0, 0.9, 1.1), _ratio(1.0, 0.9, 1.1))
    blk = s["scenarios"]["chat"]
    blk["arms"]["ws-websockets"] = _arm(450, 30)
    blk["ratios"]["sse/ws-websockets"] = {
        "ttft_ms_p50": _ratio(0.67, 0.6, 0.7),
        "itl_ms_p50": _ratio(0.67, 0.6, 0.7),
    }
    row = C.claim_c1(_s(s))
    assert row["status"] == C.DEPENDS and "ws" in row["verdict"]


def test_c1_not_measured_without_both_arms() -> None:
    s = {"scenarios": {"chat": {"arms": {"sse": _arm(300, 20)}, "ratios": {}}}}
    assert C.claim_c1(_s(s))["verdict"] == C.NOT_MEASURED_TEXT
    assert C.claim_c1(_s({"scenarios": {}}))["status"] == C.NOT_MEASURED


def test_c1_on_the_responses_pair_without_native_arms() -> None:
    """A scenario that ran only the Responses pair judges C1 on it (the SSE arm of the WS
    arm's format is the reference), and a clear difference names that arm."""
    s = {
        "scenarios": {
            "chat": {
                "arms": {
                    "sse-openai-responses": _arm(300, 20),
                    "ws-openai-responses": _arm(400, 20),
                },
                "ratios": {
                    "sse-openai-responses/ws-openai-responses": {
                        "ttft_ms_p50": _ratio(0.75, 0.7, 0.8),
                        "itl_ms_p50": _ratio(1.0, 0.99, 1.01),
                    }
                },
                "traits": _traits("chat", think_time=True),
            }
        }
    }
    row = C.claim_c1(_s(s))
    assert row["status"] == C.DOES_NOT_HOLD
    assert "(sse-openai-responses lower)" in row["why"]
    assert row["numbers"]["TTFT p50 sse-openai-responses / ws-openai-responses (ms)"]


def test_c2_bands() -> None:
    # bands and their edges: tests/analysis/test_cost_c2.py
    rows = [
        {"pair": "a", "ws_over_sse": 12.0, "driver": "x:messages", "connection_priced": True},
        {"pair": "b", "ws_over_sse": 1.0, "driver": "", "connection_priced": True},
        {"pair": "c", "ws_over_sse": 5.0, "driver": "", "connection_priced": True},
    ]
    assert C.claim_c2(rows)["status"] == C.DEPENDS
    assert "far above 6× on a" in C.claim_c2(rows)["verdict"]
    assert C.claim_c2(rows[2:])["status"] == C.HOLDS
    assert C.claim_c2(rows[:1])["status"] == C.DOES_NOT_HOLD  # 12× is not "~6×"
    assert C.claim_c2(rows[1:2])["status"] == C.DOES_NOT_HOLD
    assert C.claim_c2([])["status"] == C.NOT_MEASURED


def test_claims_read_summary_json_dicts_too() -> None:
    rows = C.claims(_summary(_ratio(1.0, 0.9, 1.1), _ratio(1.0, 0.9, 1.1)))
    assert [r["id"] for r in rows] == [f"C{i}" for i in range(1, 11)]
    assert _get(rows, "C1")["status"] == C.HOLDS
    for cid in ("C3", "C4", "C5", "C6", "C7", "C9"):
        assert _get(rows, cid)["verdict"] == C.NOT_MEASURED_TEXT


def _reconnect(sse_ok: int, ws_ok: int, name: str = "reconnect", dropped: int = 10) -> dict:
    def arm(ok: int) -> dict[str, Any]:
        return _arm(
            300,
            20,
            reconnect={
                "streams_dropped": dropped,
                "reconnects": dropped,
                "outcomes": {"ok": ok, "dropped": dropped - ok},
                "gap_ms": {"p50": 3.0},
            },
        )

    return {
        "arms": {"sse": arm(sse_ok), "ws": arm(ws_ok)},
        "traits": _traits(name, reconnects=True),
    }


def test_c5_recovery_rules() -> None:
    base = _summary(_ratio(1.0), _ratio(1.0))
    for sse_ok, ws_ok, status in ((10, 10, C.DEPENDS), (10, 5, C.HOLDS), (5, 10, C.DOES_NOT_HOLD)):
        s = {"scenarios": {**base["scenarios"], "reconnect": _reconnect(sse_ok, ws_ok)}}
        assert _get(C.claims(s), "C5")["status"] == status, (sse_ok, ws_ok)
    assert _get(C.claims(base), "C5")["status"] == C.NOT_MEASURED


def test_c5_follows_the_configuration_not_the_name() -> None:
    base = _summary(_ratio(1.0), _ratio(1.0))
    named = {**base["scenarios"], "reconnect": _reconnect(10, 5)}
    named["reconnect"]["traits"] = _traits("reconnect")  # named so, but drops nothing
    assert _get(C.claims({"scenarios": named}), "C5")["status"] == C.NOT_MEASURED
    other = {**base["scenarios"], "flaky-lte": _reconnect(10, 5, name="flaky-lte")}
    row = _get(C.claims({"scenarios": other}), "C5")
    assert row["status"] == C.HOLDS and row["scenario"] == "flaky-lte"


def _cancel(name: str = "cancel") -> dict[str, Any]:
    return {
        "arms": {"sse": _arm(300, 20, outcomes={"cancelled": 5})},
        "traits": _traits(name, cancels=True),
    }


def test_c6_uses_server_waste_counters() -> None:
    s = _s(_summary(_ratio(1.0), _ratio(1.0), burst=_cancel("burst")))
    man = Manifest.from_json({"phases": [{"name": "burst/sse/r1", "scenario": "burst"}]})
    metrics = {"burst/sse/r1": {"tokens_wasted": 5, "streams_cancelled": 5}}  # by phase name
    row = C.claim_c6(s, metrics, man)
    assert row["status"] == C.HOLDS and row["scenario"] == "burst"
    metrics["burst/sse/r1"]["tokens_wasted"] = 50
    assert C.claim_c6(s, metrics, man)["status"] == C.DOES_NOT_HOLD
    assert C.claim_c6(s, None, man)["status"] == C.NOT_MEASURED
    # without the manifest entry (an older run) the phase name says which group it is
    assert C.claim_c6(s, metrics)["status"] == C.DOES_NOT_HOLD


def test_c8_overhead_share() -> None:
    s = _summary(_ratio(1.0), _ratio(1.0))
    assert C.claim_c8(_s(s))["status"] == C.HOLDS  # 20 B on 60 B = 33 %
    s["scenarios"]["chat"]["arms"]["sse"]["bytes"]["app_bytes_per_token"] = 100.0
    row = C.claim_c8(_s(s))
    assert row["status"] == C.DEPENDS and "sse" in row["verdict"]


def test_main_scenario_prefers_steady_streaming_then_most_streams() -> None:
    def block(streams: int, **traits: Any) -> dict[str, Any]:
        return {"arms": {"sse": {"streams": streams}}, "traits": _traits("x", **traits)}

    s = {"scenarios": {"ramp": block(99, ramp=True), "talk": block(5, think_time=True)}}
    assert _s(s).main_scenario == "talk"  # steady streaming wins whatever its name
    s["scenarios"]["open"] = block(50, open_arrivals=True)
    assert _s(s).main_scenario == "talk"
    del s["scenarios"]["talk"]
    assert _s(s).main_scenario == "open"
    del s["scenarios"]["open"]
    assert _s(s).main_scenario == "ramp"
    unconfigured = {"scenarios": {"x": {"arms": {"sse": {"streams": 1}}}}}
    unconfigured["scenarios"]["y"] = {"arms": {"sse": {"streams": 9}}}
    assert _s(unconfigured).main_scenario == "y"
    assert _s({}).main_scenario is None


def test_claims_markdown_lists_every_claim() -> None:
    md = C.claims_markdown(C.claims(_summary(_ratio(1.0, 0.9, 1.1), _ratio(1.0, 0.9, 1.1))))
    for i in range(1, 10):
        assert f"**C{i}**" in md


# --------------------------------------------------------------------------- C3, C4 (proxy)


def _pa(ttft: float, e2e: float = 1000.0, **outcomes: int) -> dict[str, Any]:
    oc = outcomes or {"ok": 20}
    return {
        "streams": sum(oc.values()),
        "ttft_ms": {"p50": ttft},
        "e2e_ms": {"p50": e2e},
        "outcomes": oc,
    }


C3_VARIANTS = ("direct", "buffered", "buffered-accel", "unbuffered")
#: How bench records the buffering scenario (its name could be anything).
C3_CONFIG = {"name": "buffers", "proxy": {"variants": list(C3_VARIANTS)}}


def _c3(direct: float, buffered: float, accel: float, off: float) -> RunSummary:
    sc = {
        f"buffers.{v}": {
            "arms": {"sse": _pa(t), "ws": _pa(direct)},
            "traits": _traits("buffers", v, proxy=True, proxy_buffering=True),
        }
        for v, t in zip(C3_VARIANTS, (direct, buffered, accel, off), strict=True)
    }
    return _s({"scenarios": sc})


def _manifest(records: dict[str, dict[str, Any]], *configs: dict[str, Any]) -> Manifest:
    """Phase entries (name → proxy record, or {"skipped": reason}) as bench writes them."""
    phases = []
    for name, rec in records.items():
        if "skipped" in rec:
            phases.append({"name": name, "status": "skipped", "reason": rec["skipped"]})
        else:
            phases.append({"name": name, "status": "ok", "proxy": rec})
    return Manifest.from_json({"phases": phases, "suite": {"scenarios": list(configs)}})


def _c3_records() -> Manifest:
    def rec(buffering: bool, header: bool) -> dict[str, Any]:
        v = {"buffering": buffering, "upstream_http": "1.0", "buffer_size": "4k"}
        return {"variant": v, "server_accel_header": header}

    return _manifest(
        {
            "buffers.buffered/sse/r1": rec(True, False),
            "buffers.buffered-accel/sse/r1": rec(True, True),
            "buffers.unbuffered/sse/r1": rec(False, False),
        },
        C3_CONFIG,
    )


def test_c3_holds_when_buffering_breaks_and_header_and_off_restore() -> None:
    row = C.claim_c3(_c3(20.0, 600.0, 21.0, 23.0), _c3_records())
    assert row["status"] == C.HOLDS, row
    assert row["scenario"] == "buffers"
    assert "buffered-accel" in row["verdict"] and "unbuffered" in row["verdict"]
    assert "buffered/sse TTFT p50 / E2E p50 (ms)" in row["numbers"]
    assert "proxy_buffer_size 4k" in row["numbers"]["buffered nginx"]


def test_c3_judges_no_variant_by_its_label_alone() -> None:
    # without the proxy records nothing says which variant buffers: not guessed
    assert C.claim_c3(_c3(20.0, 600.0, 21.0, 23.0))["status"] == C.INCONCLUSIVE


def test_c3_does_not_hold_when_buffering_does_not_break_streaming() -> None:
    row = C.claim_c3(_c3(20.0, 60.0, 21.0, 22.0), _c3_records())  # 3×: not broken
    assert row["status"] == C.DOES_NOT_HOLD
    assert "did not break" in row["verdict"]


def test_c3_does_not_hold_when_the_header_does_not_restore_streaming() -> None:
    row = C.claim_c3(_c3(20.0, 600.0, 40.0, 21.0), _c3_records())  # header: 20 ms off
    assert row["status"] == C.DOES_NOT_HOLD
    assert "buffered-accel did not restore" in row["verdict"]


def test_c3_needs_direct_and_a_proxy_variant_and_names_skipped_phases() -> None:
    assert C.claim_c3(_s({"scenarios": {}}))["status"] == C.NOT_MEASURED
    traits = _traits("buffers", "direct", proxy=True, proxy_buffering=True)
    only_direct = _s(
        {"scenarios": {"buffers.direct": {"arms": {"sse": _pa(20)}, "traits": traits}}}
    )
    skipped = _manifest(
        {"buffers.buffered/sse/r1": {"skipped": "nginx not available: x"}}, C3_CONFIG
    )
    row = C.claim_c3(only_direct, skipped)
    assert row["status"] == C.NOT_MEASURED and "nginx not available" in row["why"]


def _c4(nohb: dict[str, int], hb: dict[str, int]) -> RunSummary:
    def block(variant: str, heartbeat_s: float, oc: dict[str, int]) -> dict[str, Any]:
        traits = _traits("idle", variant, proxy=True, proxy_idle=True, heartbeat_s=heartbeat_s)
        return {"arms": {"sse": _pa(20, **oc), "ws": _pa(20, **oc)}, "traits": traits}

    return _s(
        {
            "scenarios": {
                "idle.idle-nohb": block("idle-nohb", 0.0, nohb),
                "idle.idle-hb": block("idle-hb", 0.5, hb),
            }
        }
    )


def _c4_records(timed_out_nohb: int, timed_out_hb: int = 0) -> Manifest:
    out = {}
    for arm in ("sse", "ws"):
        for v, hb, n in (("idle-nohb", 0.0, timed_out_nohb), ("idle-hb", 0.5, timed_out_hb)):
            out[f"idle.{v}/{arm}/r1"] = {
                "variant": {"read_timeout_s": 2.0},
                "server_heartbeat_s": hb,
                "log_events": {"upstream_timed_out": n},
            }
    return _manifest(out)


def test_c4_holds_when_no_heartbeat_is_cut_and_heartbeat_survives() -> None:
    row = C.claim_c4(_c4({"dropped": 8}, {"ok": 4}), _c4_records(8))
    assert row["status"] == C.HOLDS, row
    assert row["numbers"]["idle-nohb/sse streams survived / cut / all"].startswith("0 / 8 / 8")
    assert "upstream timed out': 8" in row["numbers"]["idle-nohb/ws streams survived / cut / all"]
    assert row["numbers"]["idle-hb setting"] == "proxy_read_timeout 2 s, heartbeat every 0.5 s"


def test_c4_does_not_hold_when_heartbeat_streams_are_cut_too() -> None:
    row = C.claim_c4(_c4({"dropped": 8}, {"ok": 2, "dropped": 2}), _c4_records(8, 2))
    assert row["status"] == C.DOES_NOT_HOLD


def test_c4_does_not_hold_when_nothing_is_cut() -> None:
    assert C.claim_c4(_c4({"ok": 8}, {"ok": 4}), _c4_records(0))["status"] == C.DOES_NOT_HOLD


def test_c4_depends_when_the_arms_disagree() -> None:
    s = _c4({"dropped": 8}, {"ok": 4}).to_json()
    s["scenarios"]["idle.idle-hb"]["arms"]["ws"] = _pa(20, dropped=4)
    row = C.claim_c4(_s(s))  # heartbeat from the configuration (no records)
    assert row["status"] == C.DEPENDS and "sse" in row["verdict"]


def test_c4_and_c7_not_measured_without_their_scenarios() -> None:
    rows = C.claims({"scenarios": {}})
    assert _get(rows, "C4")["status"] == C.NOT_MEASURED
    c7 = _get(rows, "C7")
    assert c7["status"] == C.NOT_MEASURED and "browser check" in c7["why"]


def _wave(streams: int, open_max: int, first: float, rest: float, conns: int) -> dict:
    per_conn = streams / conns
    return {
        "prefix": "browser-x-",
        "streams": streams,
        "completed": streams,
        "errors": 0,
        "tokens": streams * 20,
        "max_open_at_once": open_max,
        "ttft_ms_p50_first": first,
        "ttft_ms_p50_rest": rest,
        "e2e_ms_p50": 420.0,
        "access": {"connections": conns, "streams_per_connection_mean": per_conn},
    }


def _c7(h1: dict, h2: dict) -> Manifest:
    check = {
        "browser": "chromium test",
        "streams_per_wave": 12,
        "params": {"tokens": 20, "gap_ms": 20.0},  # one stream = 400 ms
        "waves": {"http/1.1": h1, "h2": h2},
    }
    return _manifest({"proxy-h2.h2/sse/r1": {"variant": {"http2": True}, "browser": check}})


def test_c7_holds_when_h1_waits_at_six_and_h2_multiplexes() -> None:
    row = C.claim_c7(_c7(_wave(12, 6, 70, 480, 6), _wave(12, 12, 28, 44, 1)))
    assert row["status"] == C.HOLDS, row
    assert row["scenario"] == "proxy-h2.h2"
    assert "6 TCP connection" in row["numbers"]["HTTP/1.1 (HTTP/2 disabled)"]
    assert row["numbers"]["streams per TCP connection (nginx)"] == "HTTP/1.1 2.0, HTTP/2 12.0"
    # the report carries it
    man = _c7(_wave(12, 6, 70, 480, 6), _wave(12, 12, 28, 44, 1))
    assert _get(C.claims({}, manifest=man), "C7")["status"] == C.HOLDS


def test_c7_does_not_hold_when_h2_uses_several_connections_or_streams_wait() -> None:
    h1 = _wave(12, 6, 70, 480, 6)
    assert C.claim_c7(_c7(h1, _wave(12, 12, 28, 44, 2)))["status"] == C.DOES_NOT_HOLD
    assert C.claim_c7(_c7(h1, _wave(12, 12, 28, 300, 1)))["status"] == C.DOES_NOT_HOLD
    assert C.claim_c7(_c7(h1, _wave(12, 8, 28, 44, 1)))["status"] == C.DOES_NOT_HOLD


def test_c7_inconclusive_when_h1_shows_no_limit_or_a_wave_failed() -> None:
    h2 = _wave(12, 12, 28, 44, 1)
    assert C.claim_c7(_c7(_wave(12, 12, 28, 40, 12), h2))["status"] == C.INCONCLUSIVE
    assert C.claim_c7(_c7({"error": "boom", "prefix": "p"}, h2))["status"] == C.INCONCLUSIVE


def test_c7_not_measured_when_the_browser_was_missing() -> None:
    man = _manifest({"proxy-h2.h2/sse/r1": {"browser": {"skipped": "chromium not found: x"}}})
    row = C.claim_c7(man)
    assert row["status"] == C.NOT_MEASURED and "chromium not found" in row["why"]
    row = C.claim_c7(_manifest({"proxy-h2.h2/sse/r1": {"skipped": "nginx not available: y"}}))
    assert row["status"] == C.NOT_MEASURED and "nginx not available" in row["why"]


def test_manifest_phases_tolerate_name_lists_and_mark_skips() -> None:
    m = Manifest.from_json(
        {
            "phases": [
                "chat/sse/r1",
                {"name": "p.a/sse/r1", "status": "ok", "proxy": {"variant": {"buffering": True}}},
                {"name": "p.b/sse/r1", "status": "skipped", "reason": "nginx not available: x"},
                {"name": "chat/ws/r1", "status": "ok"},
            ]
        }
    )
    assert [p.name for p in m.phases if p.proxy] == ["p.a/sse/r1"]
    skipped = [p for p in m.phases if p.skipped]
    assert [(p.name, p.reason, p.group) for p in skipped] == [
        ("p.b/sse/r1", "nginx not available: x", "p.b")
    ]
    assert m.phases[0].status == "" and m.phases[0].group == "chat"


# --------------------------------------------------------------------------- C9


def _c9_row(label: str, arm: str, share: float, gap_ms: float, *, hit: int = 40,
            behaviour: str = "resume", hb: float = 1.0) -> dict:  # fmt: skip
    return {
        "group": f"mobile.{label}",
        "label": label,
        "behaviour": behaviour,
        "heartbeat_s": hb,
        "arm": arm,
        "hit": hit,
        "hit_completed_share": share,
        "fault_to_token_p50_ms": gap_ms,
        "nobody": 10,
    }


@pytest.mark.parametrize(
    ("sse", "ws", "status"),
    [
        ((0.95, 3000), (0.89, 3000), "holds"),  # 6 points more completed
        ((0.95, 3000), (0.91, 3000), "does not hold"),  # 4 points: the same
        ((0.93, 2300), (0.95, 3000), "holds"),  # as many, outage 0.77x
        ((0.93, 2500), (0.95, 3000), "does not hold"),  # 0.83x: the same
        ((0.80, 2000), (0.90, 4000), "does not hold"),  # WS completes more
    ],
)
def test_c9_rule_on_both_sides_of_its_thresholds(sse, ws, status) -> None:
    rows = [_c9_row("tunnel", "sse", *sse), _c9_row("tunnel", "ws", *ws)]
    assert C.claim_c9(rows)["status"] == status


def test_c9_per_profile_and_only_on_resume_rows() -> None:
    rows = [
        _c9_row("tunnel", "sse", 1.0, 2000),
        _c9_row("tunnel", "ws", 0.8, 2000),
        _c9_row("handover", "sse", 0.9, 3000),
        _c9_row("handover", "ws", 0.9, 3000),
        # without resume WS would look better: not what the claim is judged on
        _c9_row("tunnel", "sse", 0.1, 2000, behaviour="lost"),
        _c9_row("tunnel", "ws", 0.5, 2000, behaviour="lost"),
    ]
    c = C.claim_c9(rows[::-1])  # the lost rows first: the numbers still lead with resume
    assert c["status"] == "depends" and "tunnel" in c["verdict"] and "handover" not in c["verdict"]
    assert all(" resume " in k for k in list(c["numbers"])[:4])
    assert "tunnel lost sse" in c["numbers"] and "tunnel: better with resume" in c["numbers"]
    few = [_c9_row("tunnel", "sse", 1.0, 10, hit=19), _c9_row("tunnel", "ws", 0.0, 10)]
    assert C.claim_c9(few)["status"] == "inconclusive"
    assert C.claim_c9([])["status"] == "not measured"
