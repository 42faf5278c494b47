"""What every claim verdict is made of: the statuses, the claims' wording, one row's shape.

A claim row is ``{"id", "claim", "status", "verdict", "why", "numbers", "scenario"}``:
``status`` is one of `HOLDS`, `DOES_NOT_HOLD`, `DEPENDS`, `NOT_MEASURED`, `INCONCLUSIVE`;
``verdict`` is the sentence the report prints, ``why`` the rule applied, ``numbers`` the
measured figures behind it. The rules are in analysis.claims and analysis.claims_proxy
(and, in words, docs/methodology.md, "Claims and verdict rules").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from core.arms import is_known, protocol_of

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
DEPENDS = "depends"
NOT_MEASURED = "not measured"
INCONCLUSIVE = "inconclusive"
NOT_MEASURED_TEXT = "not measured in this run"

CLAIMS: dict[str, str] = {
    "C1": "Same user experience (TTFT, ITL) over SSE and WebSocket",
    "C2": "WebSocket costs ~6× SSE on connection-priced platforms ($4,100 → $680 a month)",
    "C3": "nginx buffering breaks SSE streaming unless `X-Accel-Buffering: no`",
    "C4": "Idle proxies cut streams at 60 s; a 15 s heartbeat comment keeps them open",
    "C5": "EventSource reconnects and resumes by itself; WS needs hand-written reconnect",
    "C6": "The server learns of a closed client on its next write (and should abort upstream)",
    "C7": "HTTP/2 multiplexes SSE streams, lifting the 6-connections-per-origin limit",
    "C8": "Keepalive and framing bytes are small",
    "C9": "On flaky mobile networks SSE recovers better",
    "C10": "WebSocket mode makes multi-turn tool chains faster",
}


def num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def get(d: Any, *path: str) -> Any:
    """``d[p0][p1]…`` through mappings; None where a key is missing."""
    for p in path:
        if not isinstance(d, Mapping) or p not in d:
            return None
        d = d[p]
    return d


def protocol(arm: str) -> str | None:
    """ "sse" / "ws" of a registered arm (core.arms); None for a label the registry does not
    know (a foreign run's), which then takes part in no protocol comparison."""
    return protocol_of(arm) if is_known(arm) else None


def claim(
    cid: str,
    status: str,
    verdict: str,
    why: str = "",
    numbers: Mapping[str, Any] | None = None,
    scenario: str | None = None,
) -> dict[str, Any]:
    return {
        "id": cid,
        "claim": CLAIMS[cid],
        "status": status,
        "verdict": verdict,
        "why": why,
        "numbers": dict(numbers or {}),
        "scenario": scenario,
    }


def not_measured(cid: str, why: str) -> dict[str, Any]:
    return claim(cid, NOT_MEASURED, NOT_MEASURED_TEXT, why)
