"""Claim C10, "WebSocket mode makes multi-turn tool chains faster", from the agent chains of
a run (the ``tool_chain`` trait; analysis.chains, summarised in
`ScenarioSummary.chain_pairs`). The rule in words: docs/methodology.md, "Claims and
verdict rules".

Both arms of a repetition run the same chains (same answer lengths, same tool calls: the
user's RNG is seeded alike), so each chain complete on both arms gives a paired saving:
SSE chain time − WS chain time. WS makes a configuration's chains *faster* when the median
paired saving is at least `CHAIN_FASTER_SHARE` (5 %) of the SSE arm's median chain and its
95 % bootstrap CI lies above 0. Holds when every configuration measured (plain, TLS, an
added RTT…) is faster; does not hold when none is; depends when some are. The synthetic
servers keep no state between turns (no server-side cache of the conversation, which is
where OpenAI says its WebSocket mode's gain comes from), so the figure isolates what the
transport contributes: per-turn request framing, connection reuse, TLS handshakes.
"""

from __future__ import annotations

from typing import Any

from analysis.results import ArmSummary, ChainPair, RunSummary
from analysis.verdicts import DEPENDS, DOES_NOT_HOLD, HOLDS, claim, not_measured

__all__ = ["CHAIN_FASTER_SHARE", "claim_c10", "is_faster"]

#: WS's chains are "faster" when the median paired saving is at least this share of the
#: SSE arm's median chain (OpenAI reports up to ~40 % for 20+ tool calls).
CHAIN_FASTER_SHARE = 0.05
NO_CACHE = (
    "the synthetic servers keep no state between turns (no server-side cache), so the "
    "figure isolates what the transport contributes"
)


def is_faster(pair: ChainPair) -> bool | None:
    """WS faster on this pair's chains (see the module docstring); None: not measured."""
    d = pair.chain_saving_ms
    if not pair.chains or d.p50 is None or pair.saving_share is None:
        return None
    lo = d.p50_ci[0] if d.p50_ci is not None else None
    return pair.saving_share >= CHAIN_FASTER_SHARE and lo is not None and lo > 0


def _ms(v: float | None, digits: int = 2) -> str:
    return "n/m" if v is None else f"{v:.{digits}f} ms"


def _per_chain(a: ArmSummary | None, attr: str) -> str:
    v = getattr(a.chains, attr) if a is not None and a.chains is not None else None
    return "n/m" if v is None else f"{v:.2f}"


def _numbers(group: str, pair: ChainPair, sse: ArmSummary | None, ws: ArmSummary | None) -> str:
    d = pair.chain_saving_ms
    ci = (
        f" [{d.p50_ci[0]:.1f}, {d.p50_ci[1]:.1f}]"
        if d.p50_ci is not None and None not in d.p50_ci
        else ""
    )
    share = "n/m" if pair.saving_share is None else f"{pair.saving_share:.1%}"
    cs = [x.chains.chain_s.p50 if x is not None and x.chains else None for x in (sse, ws)]
    tr = [x.chains.transport_ms.p50 if x is not None and x.chains else None for x in (sse, ws)]
    chain_txt = " / ".join("n/m" if v is None else f"{v:.2f} s" for v in cs)
    return (
        f"{pair.chains} chains on both; chain p50 {chain_txt}; WS saves "
        f"{_ms(d.p50, 1)}{ci} a chain ({share}); transport share a turn p50 "
        f"{_ms(tr[0])} / {_ms(tr[1])} (paired saving {_ms(pair.turn_saving_ms.p50)}); "
        f"connections a chain {_per_chain(sse, 'connections_per_chain')} / "
        f"{_per_chain(ws, 'connections_per_chain')}; TLS handshakes a chain "
        f"{_per_chain(sse, 'tls_handshakes_per_chain')} / "
        f"{_per_chain(ws, 'tls_handshakes_per_chain')}"
    )


def claim_c10(summary: RunSummary) -> dict[str, Any]:
    groups = summary.groups("tool_chain")
    numbers: dict[str, Any] = {}
    faster: dict[str, bool] = {}
    for g in groups:
        block = summary.scenarios[g]
        for key, pair in block.chain_pairs.items():
            verdict = is_faster(pair)
            if verdict is None:
                continue
            label = f"{g} {key} (SSE / WS)"
            numbers[label] = _numbers(g, pair, block.arms.get(pair.sse), block.arms.get(pair.ws))
            faster[label] = verdict
    if not faster:
        return not_measured(
            "C10", "needs an agent scenario (session.chain) with chains complete on both arms"
        )
    rule = (
        f"faster = WS's chains at least {CHAIN_FASTER_SHARE:.0%} shorter than SSE's on the "
        f"same chains (median paired saving, 95 % CI above 0); {NO_CACHE}"
    )
    scope = ", ".join(groups)
    if all(faster.values()):
        return claim("C10", HOLDS, HOLDS, rule, numbers, scope)
    if not any(faster.values()):
        return claim(
            "C10",
            DOES_NOT_HOLD,
            "does not hold for the transport alone: WS's chains are not "
            f"{CHAIN_FASTER_SHARE:.0%} shorter",
            rule,
            numbers,
            scope,
        )
    where = ", ".join(k for k, v in faster.items() if v)
    return claim(
        "C10", DEPENDS, f"depends on the configuration: faster in {where}", rule, numbers, scope
    )
