"""Verdicts on the article's claims (DESIGN §9, C1–C9) from one run's numbers.

`claims(summary, cost_ratios=..., server_metrics=...)` is a pure function of the
summary dict (analysis.summary.summarize), the cost ratio rows (analysis.cost.ratio_table
as records, computed with the run's measured usage) and the run's server_metrics.json.
Each claim comes back as ``{"id", "claim", "verdict", "status", "numbers", "why",
"scenario"}`` where ``status`` is one of `HOLDS`, `DOES_NOT_HOLD`, `DEPENDS`,
`NOT_MEASURED`, `INCONCLUSIVE` and ``verdict`` is the sentence the report prints.

Thresholds (explicit, so a reader can argue with them):

* C1 same experience: for TTFT and ITL medians, the SSE/WS ratio is "the same" when its
  95 % bootstrap CI contains 1 or the point ratio is within ±`SAME_WITHIN` (5 %) of 1.
  Both same → holds; either different (CI excludes 1 and off by ≥ 5 %) → does not hold;
  with several WS arms that disagree → depends on the WS server. Without a CI (too few
  samples) the point medians decide, and the numbers say so.
* C2 ~6× cost: per SSE/WS platform pairing, the WS/SSE monthly cost (measured usage
  scaled to the default profile) against `analysis.cost.ARTICLE_RATIO`: holds when every
  pairing is ≥ 6×, does not hold when none reaches `C2_CLOSE` (4×), else depends on the
  platform (the pairings where it holds are named with the billing dimension that drives
  the gap).
* C5 reconnect/resume and C9 flaky networks: an arm *recovers* when at least
  `RECOVERED_SHARE` (99 %) of its dropped streams finish ok with no lost token. C5
  holds when SSE recovers and WS does not; when both recover it depends on the WS client
  carrying hand-written resume (this harness's does); does not hold when SSE does not.
* C6 server notices a closed client on its next write: tokens the server generated for
  nobody per cancelled/disconnected stream ≤ `WASTE_PER_CANCEL` (2) → holds.
* C8 keepalive and framing bytes are small: per arm, application bytes per token minus
  the bare token payload (framing, done events, heartbeats) ≤ `SMALL_OVERHEAD` (50 %) of
  the payload → small. Every arm small → holds; else depends on payload size.
* C3, C4, C7 need proxy / HTTP/2 scenarios; without such a scenario in the run (names
  starting with ``proxy``, ``nginx``, ``idle-proxy``, ``h2``/``http2``) they are
  "not measured in this run".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SAME_WITHIN = 0.05
C2_CLOSE = 4.0
ARTICLE_RATIO = 6.0  # same as analysis.cost.ARTICLE_RATIO (kept here: claims is stdlib only)
RECOVERED_SHARE = 0.99
WASTE_PER_CANCEL = 2.0
SMALL_OVERHEAD = 0.5

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
}

#: Scenario preferred for the latency/bytes claims (first one present wins).
MAIN_SCENARIOS = ("chat", "open", "ramp")


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, Mapping) or p not in d:
            return None
        d = d[p]
    return d


def main_scenario(summary: Mapping[str, Any]) -> str | None:
    """The scenario the headline figures come from: chat (or open, ramp) when present,
    else the scenario with the most streams."""
    scen = summary.get("scenarios") or {}
    for name in MAIN_SCENARIOS:
        if name in scen:
            return name
    if not scen:
        return None

    def streams(sc: str) -> int:
        return sum(int(a.get("streams") or 0) for a in scen[sc].get("arms", {}).values())

    return max(sorted(scen), key=streams)


def _scenarios_like(summary: Mapping[str, Any], prefixes: Sequence[str]) -> list[str]:
    return [s for s in (summary.get("scenarios") or {}) if s.startswith(tuple(prefixes))]


def _claim(
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


def _not_measured(cid: str, why: str) -> dict[str, Any]:
    return _claim(cid, NOT_MEASURED, NOT_MEASURED_TEXT, why)


def _ws_arms(arms: Mapping[str, Any]) -> list[str]:
    return [a for a in arms if a == "ws" or a.startswith("ws-")]


def _same(r: Mapping[str, Any] | None) -> tuple[bool | None, str]:
    """(same?, text) for one ratio entry of summary["ratios"]."""
    if not r:
        return None, "n/m"
    ratio, lo, hi = _num(r.get("ratio")), _num(r.get("lo")), _num(r.get("hi"))
    if ratio is None:
        return None, "n/a"
    close = abs(ratio - 1.0) < SAME_WITHIN
    if lo is not None and hi is not None:
        return (close or lo <= 1.0 <= hi), f"{ratio:.3f} [{lo:.3f}, {hi:.3f}]"
    return close, f"{ratio:.3f} (no CI)"


def _point_ratio(a: Any, b: Any) -> dict[str, Any] | None:
    a, b = _num(a), _num(b)
    if a is None or b is None or b == 0:
        return None
    return {"ratio": a / b, "lo": None, "hi": None}


def claim_c1(summary: Mapping[str, Any]) -> dict[str, Any]:
    sc = main_scenario(summary)
    block = _get(summary, "scenarios", sc) if sc else None
    arms = (block or {}).get("arms", {})
    ws = _ws_arms(arms)
    if not block or "sse" not in arms or not ws:
        return _not_measured("C1", "needs a scenario with both an SSE and a WS arm")
    numbers: dict[str, Any] = {}
    per_arm: dict[str, bool | None] = {}
    reasons: list[str] = []
    for arm in ws:
        r = _get(block, "ratios", f"sse/{arm}") or {}
        verdicts = []
        for key, label in (("ttft_ms", "TTFT"), ("itl_ms", "ITL")):
            entry = r.get(f"{key}_p50")
            if not entry or _num(entry.get("ratio")) is None:
                entry = _point_ratio(
                    _get(arms, "sse", key, "p50"), _get(arms, arm, key, "p50")
                )  # too few samples for a CI: compare the medians
            same, text = _same(entry)
            p_sse, p_ws = _get(arms, "sse", key, "p50"), _get(arms, arm, key, "p50")
            numbers[f"{label} p50 sse / {arm} (ms)"] = (
                f"{p_sse:.2f} / {p_ws:.2f}"
                if _num(p_sse) is not None and _num(p_ws) is not None
                else "n/m"
            )
            numbers[f"{label} p50 ratio sse/{arm}"] = text
            p99_sse, p99_ws = _get(arms, "sse", key, "p99"), _get(arms, arm, key, "p99")
            if _num(p99_sse) is not None and _num(p99_ws) is not None:
                numbers[f"{label} p99 sse / {arm} (ms)"] = f"{p99_sse:.2f} / {p99_ws:.2f}"
            verdicts.append(same)
            if same is False:
                ratio = _num((entry or {}).get("ratio")) or math.nan
                faster = "SSE" if ratio < 1 else arm
                reasons.append(f"{label} median differs by {abs(ratio - 1):.1%} ({faster} lower)")
        if any(v is None for v in verdicts):
            per_arm[arm] = None
        else:
            per_arm[arm] = all(verdicts)
    if all(v is None for v in per_arm.values()):
        return _claim(
            "C1", INCONCLUSIVE, "inconclusive: no TTFT/ITL medians for both arms", "", numbers, sc
        )
    known = {a: v for a, v in per_arm.items() if v is not None}
    rule = f"same = CI of the median ratio contains 1 or within ±{SAME_WITHIN:.0%}"
    if len(set(known.values())) > 1:
        same_arms = [a for a, v in known.items() if v]
        return _claim(
            "C1",
            DEPENDS,
            f"depends on the WS server: same as SSE for {', '.join(same_arms)} only",
            "; ".join(reasons) + f" ({rule})",
            numbers,
            sc,
        )
    if all(known.values()):
        return _claim("C1", HOLDS, HOLDS, rule, numbers, sc)
    return _claim(
        "C1", DOES_NOT_HOLD, DOES_NOT_HOLD, "; ".join(reasons) + f" ({rule})", numbers, sc
    )


def claim_c2(cost_ratios: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    rows = [r for r in (cost_ratios or []) if _num(r.get("ws_over_sse")) is not None]
    if not rows:
        return _not_measured("C2", "needs measured usage of both an SSE and a WS arm")
    numbers = {
        str(r["pair"]): f"WS/SSE {r['ws_over_sse']:.2f}× (driver: {r.get('driver') or 'none'})"
        for r in rows
    }
    holds = [r for r in rows if r["ws_over_sse"] >= ARTICLE_RATIO]
    close = [r for r in rows if r["ws_over_sse"] >= C2_CLOSE]
    why = (
        f"WS/SSE monthly cost from this run's measured usage on the default profile; "
        f"6× holds where the ratio ≥ {ARTICLE_RATIO:g}"
    )
    if len(holds) == len(rows):
        return _claim("C2", HOLDS, f"holds on every platform pairing ({len(rows)})", why, numbers)
    if not close:
        top = max(rows, key=lambda r: r["ws_over_sse"])
        return _claim(
            "C2",
            DOES_NOT_HOLD,
            f"does not hold: at most {top['ws_over_sse']:.1f}× ({top['pair']})",
            why,
            numbers,
        )
    names = ", ".join(f"{r['pair']} ({r.get('driver') or '?'})" for r in holds) or "none"
    return _claim(
        "C2",
        DEPENDS,
        f"depends on the platform's billing: ≥ {ARTICLE_RATIO:g}× on {names}; "
        f"not on {len(rows) - len(holds)} other pairing(s)",
        why,
        numbers,
    )


def _proxy_claim(summary: Mapping[str, Any], cid: str, prefixes: Sequence[str], need: str) -> dict:
    found = _scenarios_like(summary, prefixes)
    if not found:
        return _not_measured(cid, need)
    numbers = {}
    for sc in found:
        for arm, a in _get(summary, "scenarios", sc, "arms").items():
            ttft = _num(_get(a, "ttft_ms", "p50"))
            numbers[f"{sc}/{arm} TTFT p50 (ms)"] = f"{ttft:.1f}" if ttft is not None else "n/m"
            numbers[f"{sc}/{arm} streams ok / all"] = (
                f"{_get(a, 'outcomes', 'ok') or 0} / {a.get('streams') or 0}"
            )
    return _claim(
        cid,
        INCONCLUSIVE,
        "measured, no verdict rule yet for this experiment",
        "proxy scenarios present; read the numbers",
        numbers,
        ", ".join(found),
    )


def _recovery(arm: Mapping[str, Any]) -> tuple[int, float | None, int, float | None]:
    """(dropped streams, share recovered ok, lost tokens, reconnect gap p50 ms)."""
    rc = arm.get("reconnect") or {}
    dropped = int(rc.get("streams_dropped") or 0)
    ok = int((rc.get("outcomes") or {}).get("ok") or 0)
    lost = int(_get(arm, "integrity", "lost") or 0)
    gap = _num(_get(rc, "gap_ms", "p50"))
    return dropped, (ok / dropped if dropped else None), lost, gap


def _recovery_claim(
    summary: Mapping[str, Any], cid: str, prefixes: Sequence[str], need: str
) -> dict[str, Any]:
    found = _scenarios_like(summary, prefixes)
    numbers: dict[str, Any] = {}
    rec: dict[str, list[bool]] = {"sse": [], "ws": []}
    for sc in found:
        for arm, a in _get(summary, "scenarios", sc, "arms").items():
            dropped, share, lost, gap = _recovery(a)
            if not dropped:
                continue
            numbers[f"{sc}/{arm}"] = (
                f"{dropped} dropped, {share:.1%} finished ok, {lost} tokens lost, "
                f"reconnects {_get(a, 'reconnect', 'reconnects') or 0}, "
                f"drop → next token p50 {'n/m' if gap is None else f'{gap:.1f} ms'}"
            )
            proto = "sse" if arm == "sse" else "ws"
            rec[proto].append(share is not None and share >= RECOVERED_SHARE and lost == 0)
    if not rec["sse"] or not rec["ws"]:
        return _not_measured(cid, need)
    sse_ok, ws_ok = all(rec["sse"]), all(rec["ws"])
    rule = f"recovered = ≥ {RECOVERED_SHARE:.0%} of dropped streams finish ok, 0 tokens lost"
    sc_txt = ", ".join(found)
    if sse_ok and not ws_ok:
        return _claim(cid, HOLDS, HOLDS, f"SSE recovered, WS did not ({rule})", numbers, sc_txt)
    if not sse_ok:
        return _claim(
            cid, DOES_NOT_HOLD, DOES_NOT_HOLD, f"SSE did not recover ({rule})", numbers, sc_txt
        )
    return _claim(
        cid,
        DEPENDS,
        "depends on the WS client: both arms recovered; WS only because the client sends a "
        "hand-written resume message, SSE via Last-Event-ID",
        rule,
        numbers,
        sc_txt,
    )


def _wasted(server_metrics: Any) -> dict[str, dict[str, float]]:
    """Σ tokens_wasted / streams_cancelled / streams_disconnected per phase label, from any
    dict in server_metrics.json that carries ``tokens_wasted`` (its key path names it)."""
    out: dict[str, dict[str, float]] = {}

    def walk(obj: Any, path: tuple[str, ...]) -> None:
        if isinstance(obj, Mapping):
            if "tokens_wasted" in obj and _num(obj.get("tokens_wasted")) is not None:
                label = str(obj.get("phase") or "/".join(path) or "all")
                d = out.setdefault(label, {"wasted": 0.0, "cancelled": 0.0})
                d["wasted"] += float(obj["tokens_wasted"])
                for k in ("streams_cancelled", "streams_disconnected"):
                    d["cancelled"] += _num(obj.get(k)) or 0.0
                return
            for k, v in obj.items():
                walk(v, (*path, str(k)))
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                walk(v, (*path, str(i)))

    walk(server_metrics, ())
    return out


def claim_c6(summary: Mapping[str, Any], server_metrics: Any) -> dict[str, Any]:
    found = _scenarios_like(summary, ("cancel",))
    if not found:
        return _not_measured("C6", "needs a cancel scenario")
    waste = {  # phases of the cancel scenarios (label = phase field or the JSON key path)
        k: v
        for k, v in _wasted(server_metrics).items()
        if any(part.startswith("cancel") for part in k.split("/"))
    }
    numbers: dict[str, Any] = {}
    for sc in found:
        for arm, a in _get(summary, "scenarios", sc, "arms").items():
            numbers[f"{sc}/{arm} cancelled streams (client)"] = int(
                _get(a, "outcomes", "cancelled") or 0
            )
    per: dict[str, float] = {}
    for label, d in waste.items():
        if d["cancelled"] > 0:
            per[label] = d["wasted"] / d["cancelled"]
            numbers[f"{label}: tokens wasted per cancel"] = f"{per[label]:.2f}"
    if not per:
        return _claim(
            "C6",
            NOT_MEASURED,
            NOT_MEASURED_TEXT + " (no server-side waste counters in server_metrics.json)",
            "client-side cancels were recorded, but the server's tokens_wasted was not",
            numbers,
            ", ".join(found),
        )
    worst = max(per.values())
    rule = f"noticed on next write = ≤ {WASTE_PER_CANCEL:g} tokens generated after a cancel"
    status = HOLDS if worst <= WASTE_PER_CANCEL else DOES_NOT_HOLD
    return _claim("C6", status, status, rule, numbers, ", ".join(found))


def claim_c8(summary: Mapping[str, Any]) -> dict[str, Any]:
    sc = main_scenario(summary)
    arms = _get(summary, "scenarios", sc, "arms") if sc else None
    numbers: dict[str, Any] = {}
    small: dict[str, bool] = {}
    for arm, a in (arms or {}).items():
        app = _num(_get(a, "bytes", "app_bytes_per_token"))
        payload = _num(_get(a, "bytes", "event_bytes_per_token"))
        if app is None or payload is None or payload <= 0:
            continue
        over = max(0.0, app - payload)
        numbers[f"{arm} bytes/token (payload + overhead)"] = (
            f"{payload:.1f} + {over:.1f} ({over / payload:.0%})"
        )
        small[arm] = over / payload <= SMALL_OVERHEAD
    for hsc in _scenarios_like(summary, ("idle-hold",)):
        for arm, a in _get(summary, "scenarios", hsc, "arms").items():
            app = _num(_get(a, "bytes", "app_bytes_per_token"))
            payload = _num(_get(a, "bytes", "event_bytes_per_token"))
            tokens = _num(a.get("tokens"))
            held = _num(_get(a, "connections", "held_s"))
            if None in (app, payload, tokens, held) or not held:
                continue
            per_hour = (app - payload) * tokens / held * 3600.0  # type: ignore[operator]
            numbers[f"{hsc}/{arm} overhead bytes per connection-hour"] = f"{per_hour:,.0f}"
    if not small:
        return _not_measured("C8", "needs token payload and stream byte counts")
    rule = f"small = overhead ≤ {SMALL_OVERHEAD:.0%} of the token payload"
    if all(small.values()):
        return _claim("C8", HOLDS, HOLDS, rule, numbers, sc)
    big = ", ".join(a for a, v in small.items() if not v)
    return _claim(
        "C8",
        DEPENDS,
        f"depends on payload size: overhead above {SMALL_OVERHEAD:.0%} of the payload for {big}",
        rule,
        numbers,
        sc,
    )


def claims(
    summary: Mapping[str, Any],
    *,
    cost_ratios: Iterable[Mapping[str, Any]] | None = None,
    server_metrics: Any = None,
) -> list[dict[str, Any]]:
    """C1…C9 for one run (see the module docstring for each rule)."""
    return [
        claim_c1(summary),
        claim_c2(cost_ratios),
        _proxy_claim(
            summary, "C3", ("proxy", "nginx"), "needs the nginx proxy scenarios (buffering matrix)"
        ),
        _proxy_claim(
            summary,
            "C4",
            ("idle-proxy", "proxy-idle"),
            "needs an idle-timeout proxy in the path (idle-hold alone has none to cut streams)",
        ),
        _recovery_claim(summary, "C5", ("reconnect",), "needs a reconnect scenario with drops"),
        claim_c6(summary, server_metrics),
        _proxy_claim(summary, "C7", ("h2", "http2"), "needs HTTP/2 scenarios"),
        claim_c8(summary),
        _recovery_claim(
            summary,
            "C9",
            ("flaky", "fault"),
            "needs the fault proxy (loss, latency, blackholes) — a clean loopback drop is not a "
            "flaky network",
        ),
    ]


def claims_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The claims as a Markdown table plus one bullet list of numbers per claim."""
    out = ["| claim | verdict | scenario |", "|---|---|---|"]
    for r in rows:
        out.append(f"| **{r['id']}** {r['claim']} | {r['verdict']} | {r.get('scenario') or '—'} |")
    out.append("")
    for r in rows:
        out.append(f"**{r['id']}** — {r['verdict']}." + (f" {r['why']}." if r.get("why") else ""))
        for k, v in (r.get("numbers") or {}).items():
            out.append(f"- {k}: {v}")
        out.append("")
    return "\n".join(out)
