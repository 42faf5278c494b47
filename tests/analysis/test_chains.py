"""Agent chains (analysis.chains) on scripted records whose every stamp is known, the chain
figures in the summary, and claim C10's rule on hand-made summaries on both sides of its
threshold (analysis.claims_chains)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from analysis import claims as C
from analysis.chains import chain_frame, paired_chains, paired_turns, turn_frame
from analysis.claims_chains import CHAIN_FASTER_SHARE, claim_c10, is_faster
from analysis.results import ChainPair, Distribution, RunSummary

MS = 1_000_000
SCHED = [150.0, 120.0, 180.0]  # each turn's scheduled TTFT (jittered), ms
TOOL_MS = [0, 400, 300]  # the tool call before each turn


def _streams(arm: str, transport_ms: list[float], answer_ms: float = 200.0) -> pd.DataFrame:
    """One chain of 3 turns: turn k is sent at its tool result (t_sched), its first token
    arrives SCHED[k] + transport_ms[k] later, it ends `answer_ms` after that."""
    rows, t = [], 1_000 * MS
    for k in range(3):
        t += TOOL_MS[k] * MS
        first = t + int((SCHED[k] + transport_ms[k]) * MS)
        end = first + int(answer_ms * MS)
        rows.append(
            {
                "group": "agent.tls", "arm": arm, "phase": f"agent.tls/{arm}/r1", "rep": 1,
                "worker": "h-1", "user": 0, "session": 0, "turn": k,
                "stream_id": f"14.0.0.0.{k}", "outcome": "ok", "reused_conn": k > 0,
                "t_sched_ns": t, "t_send_ns": t + MS, "t_first_ns": first, "t_end_ns": end,
                "ttft_ms_sched": SCHED[k],
            }
        )  # fmt: skip
        t = end
    return pd.DataFrame(rows)


def _conns(arm: str, starts_ms: list[float], tls: bool) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "phase": f"agent.tls/{arm}/r1", "worker": "h-1", "user": 0,
                "t_connect_ns": 1_000 * MS + int(s * MS),
                "t_tls_ns": 1_000 * MS + int((s + 3) * MS) if tls else None,
            }
            for s in starts_ms
        ]
    )  # fmt: skip


def test_transport_share_chain_time_and_connections_are_exact() -> None:
    sse = _streams("sse", [6.0, 2.0, 9.0])
    ws = _streams("ws", [5.0, 1.0, 1.0])
    turns = turn_frame(pd.concat([sse, ws], ignore_index=True))
    got = turns.set_index(["arm", "turn"])["transport_ms"]
    assert got.loc["sse"].tolist() == pytest.approx([6.0, 2.0, 9.0])
    assert got.loc["ws"].tolist() == pytest.approx([5.0, 1.0, 1.0])
    assert turns["chain"].unique().tolist() == ["14.0.0.0"]
    # SSE: its keep-alive connection closed during the second tool call (a new one, with
    # its TLS handshake, for turn 2); WS: one connection; another user's connection and
    # one before the chain do not count
    conns = pd.concat(
        [
            _conns("sse", [0.5, 900.0], tls=True),
            _conns("ws", [0.5], tls=True),
            _conns("sse", [-50.0], tls=True),
            _conns("sse", [10.0], tls=True).assign(user=1),
        ],
        ignore_index=True,
    )
    chains = chain_frame(turns, conns, 3).set_index("arm")
    assert chains.loc["sse", "connections"] == 2 and chains.loc["sse", "tls_handshakes"] == 2
    assert chains.loc["ws", "connections"] == 1 and chains.loc["ws", "tls_handshakes"] == 1
    # chain time: tool calls + 3 × (scheduled TTFT + transport + answer)
    expect = (sum(TOOL_MS) + sum(SCHED) + 3 * 200.0) / 1000
    assert chains.loc["sse", "chain_s"] == pytest.approx(expect + 17.0 / 1000)
    assert chains.loc["ws", "chain_s"] == pytest.approx(expect + 7.0 / 1000)
    pc = paired_chains(chains.reset_index(), "sse", "ws")
    assert pc["saving_ms"].tolist() == pytest.approx([10.0])
    pt = paired_turns(turns, "sse", "ws")
    assert pt["saving_ms"].tolist() == pytest.approx([1.0, 8.0])  # turns 1 and 2


def test_incomplete_chains_give_no_chain_time_and_unknown_schedule_no_share() -> None:
    s = _streams("sse", [1.0, 1.0, 1.0])
    cut = s[s["turn"] < 2]  # the phase ended before turn 2
    chains = chain_frame(turn_frame(cut), None, 3)
    assert not chains["complete"].iloc[0] and pd.isna(chains["chain_s"].iloc[0])
    failed = s.assign(outcome=["ok", "error", "ok"])
    assert not chain_frame(turn_frame(failed), None, 3)["complete"].iloc[0]
    foreign = turn_frame(s.assign(ttft_ms_sched=None))
    assert foreign["transport_ms"].isna().all() and foreign["to_first_ms"].notna().all()


# --------------------------------------------------------------------------- C10


def _pair(saving_p50: float, lo: float, hi: float, sse_chain_s: float, n: int = 16) -> dict:
    return {
        "sse": "sse",
        "ws": "ws",
        "chains": n,
        "chain_saving_ms": {"n": n, "p50": saving_p50, "p50_ci": [lo, hi]},
        "turn_saving_ms": {"n": n * 19, "p50": saving_p50 / 19},
        "sse_chain_s_p50": sse_chain_s,
        "saving_share": saving_p50 / (sse_chain_s * 1000),
    }


def _arm(chain_s: float, transport: float, conns: float, tls: float) -> dict[str, Any]:
    return {
        "streams": 320,
        "chains": {
            "chains": 16,
            "chain_s": {"n": 16, "p50": chain_s},
            "transport_ms": {"n": 304, "p50": transport},
            "connections_per_chain": conns,
            "tls_handshakes_per_chain": tls,
        },
    }


def _group(name: str, pair: dict, tls: bool) -> dict[str, Any]:
    return {
        "arms": {"sse": _arm(21.0, 2.0, 1.0, float(tls)), "ws": _arm(20.9, 1.4, 1.0, float(tls))},
        "traits": {"scenario": "agent", "variant": name, "configured": True, "tool_chain": True,
                   "tls": tls},
        "chain_pairs": {"sse/ws": pair},
    }  # fmt: skip


def _summary(plain: dict, tls: dict | None = None) -> RunSummary:
    groups = {"agent.plain": _group("plain", plain, False)}
    if tls is not None:
        groups["agent.tls"] = _group("tls", tls, True)
    return RunSummary.from_json({"scenarios": groups})


def test_c10_threshold_both_sides() -> None:
    at = CHAIN_FASTER_SHARE * 21_000  # 5 % of a 21 s chain
    assert is_faster(ChainPair.from_json(_pair(at + 1, at * 0.5, at * 2, 21.0))) is True
    assert is_faster(ChainPair.from_json(_pair(at - 1, at * 0.5, at * 2, 21.0))) is False
    # large but not sure: the CI reaches 0
    assert is_faster(ChainPair.from_json(_pair(at * 2, -5.0, at * 3, 21.0))) is False
    assert is_faster(ChainPair(chain_saving_ms=Distribution())) is None


def test_c10_verdicts() -> None:
    small = _pair(12.0, 4.0, 20.0, 21.0)  # WS saves 12 ms a 21 s chain: 0.06 %
    big = _pair(8_000.0, 6_000.0, 9_000.0, 21.0)  # 38 %, OpenAI's order of magnitude
    row = claim_c10(_summary(small, small))
    assert row["status"] == C.DOES_NOT_HOLD and "no server-side cache" in row["why"]
    (numbers,) = [v for k, v in row["numbers"].items() if k.startswith("agent.plain")]
    assert "WS saves 12.0 ms" in numbers and "0.1%" in numbers and "1.00 / 1.00" in numbers
    assert claim_c10(_summary(big, big))["status"] == C.HOLDS
    mixed = claim_c10(_summary(small, big))
    assert mixed["status"] == C.DEPENDS and "agent.tls" in mixed["verdict"]
    none = RunSummary.from_json({"scenarios": {}})
    assert claim_c10(none)["status"] == C.NOT_MEASURED
    ids = [r["id"] for r in C.claims(_summary(small))]
    assert ids[-1] == "C10" and len(ids) == 10
