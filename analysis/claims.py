"""Verdicts on the claims C1–C10 from one run's numbers (the claims and their
rules in words: docs/methodology.md, "Claims and verdict rules").

`claims(summary, cost_ratios=..., server_metrics=..., manifest=...)` is a pure function of
the typed summary (analysis.summary.summarize → analysis.results.RunSummary), the cost
ratio rows (analysis.cost.ratio_table as records, computed with the run's measured usage),
the run's server_metrics.json and its manifest (proxy records, skipped phases). Each claim
comes back as a row of analysis.verdicts: ``{"id", "claim", "verdict", "status",
"numbers", "why", "scenario"}``. Scenarios are chosen by what their configuration
exercises (analysis.traits), never by their names.

Thresholds (explicit, so a reader can argue with them):

* C1 same experience: on the headline scenario (RunSummary.main_scenario), for TTFT and ITL
  medians, the SSE/WS ratio is "the same" when its 95 % bootstrap CI contains 1 or the point
  ratio is within ±`SAME_WITHIN` (5 %) of 1. Both same → holds; either different (CI
  excludes 1 and off by ≥ 5 %) → does not hold; with several WS arms that disagree →
  depends on the WS server. Without a CI (too few samples) the point medians decide, and
  the numbers say so. One kind of client on both sides: the Python clients' `sse` and WS
  arms, else (a browser headline scenario) the fetch-streamed SSE page (EventSource when
  fetch did not run) against the WebSocket page.
* C2 ~6× cost: per SSE/WS platform pairing, the WS/SSE monthly cost (measured usage
  scaled to the default profile) in bands (reversed, about equal, well below, close to
  6×, far above) next to the article's $680 → $4,100; the bands and the rule are in
  `analysis.cost_c2`.
* C5 reconnect/resume (scenarios with server drops or client aborts): an arm *recovers*
  when at least `RECOVERED_SHARE` (99 %) of its dropped streams finish ok with no lost
  token. Holds when SSE recovers and WS does not; when both recover it depends on the WS
  client carrying hand-written resume (this harness's does); does not hold when SSE does
  not.
* C9 flaky mobile networks (scenarios through a fault-injecting network profile, judged
  per profile on the sessions that resume; analysis.sections.network gives the rows): with
  at least `C9_MIN_HIT` (20) fault-hit answers per arm, SSE *recovers better* on a profile
  when the share of its fault-hit answers that completed is higher by ≥ `C9_BETTER_SHARE`
  (5 points), or within that and its fault → next token median is ≤ `C9_FASTER` (0.8×)
  WS's; WS better the other way round; else the same. Holds when SSE is better on every
  profile; does not hold when it is better on none; depends on the network otherwise;
  inconclusive when no profile had enough hit answers. The rows without resume are
  reported beside it (what LLM APIs do).
* C5 on the browser arms, when they had drops (`claim_c5`, rule in
  analysis.browser.c5_browser): EventSource must recover by itself (no loss, no duplicate,
  drop → next token ≈ the server's `retry:`); holds when the WebSocket page needed recovery
  code for the same, depends on the client API when a fetch page — what LLM web apps use —
  recovered only by hand or lost tokens.
* Every claim row says whose measurements it rests on (``evidence``: browser, python
  client, both).
* C6 server notices a closed client on its next write (scenarios with cancels): tokens the
  server generated for nobody per cancelled/disconnected stream ≤ `WASTE_PER_CANCEL` (2)
  → holds.
* C8 keepalive and framing bytes are small: per arm of the headline scenario, application
  bytes per token minus the bare token payload (framing, done events, heartbeats) ≤
  `SMALL_OVERHEAD` (50 %) of the payload → small. Every arm small → holds; else depends on
  payload size. Scenarios holding connections idle add the overhead per connection-hour.
* C3 nginx buffering, C4 idle cut, C7 HTTP/2 multiplexing: analysis.claims_proxy. C3: per
  SSE arm, the TTFT median of each proxy variant against ``direct`` in the same run.
  Streaming is *broken* by a variant when its TTFT p50 ≥ `BROKEN_FACTOR` (5×) the direct
  one and at least `BROKEN_MIN_MS` (50 ms) above it; a fix (server header
  `X-Accel-Buffering: no`, or `proxy_buffering off`) *restores* streaming when its TTFT
  p50 is within `FIX_WITHIN_MS` (5 ms) of direct. Holds when the buffered variant without
  the header breaks streaming and every fix restores it; does not hold when buffering does
  not break it, or a fix does not restore it; depends when some buffered variants break it
  and others (e.g. upstream HTTP/1.1) do not. Variant roles come from the proxy records
  (nginx `proxy_buffering`, the server's header).
  C4: a stream is *cut* when its outcome is dropped / error / timeout (the client alone
  cannot tell nginx from the server closing; nginx's error.log "upstream timed out" count
  is the proxy-side evidence, and analysis.attribution joins it onto the client's
  connections as closed_by "proxy"). Holds when, on every arm, streams without heartbeat
  are cut and none with the heartbeat is; does not hold when streams without heartbeat
  survive or heartbeat ones are cut too; depends when the arms disagree. Time-scaled: the
  records give the proxy_read_timeout and heartbeat interval.
  C7: a real Chromium opens N (12) EventSources at once through nginx's TLS listener, once
  with HTTP/2 disabled and once enabled (bench.browser; nginx's access log counts the TCP
  connections of each wave). HTTP/1.1 is *limited* when at most `BROWSER_H1_LIMIT`
  streams are open at once and the rest *wait* (TTFT p50 of the streams after the first
  six later by ≥ `WAIT_SHARE` × one stream's duration). HTTP/2 *multiplexes* when all N
  are open at once on one TCP connection and none waits. Holds when HTTP/1.1 is limited
  and HTTP/2 multiplexes; does not hold when HTTP/2 does not multiplex (or its streams
  wait); inconclusive when HTTP/2 multiplexes but the HTTP/1.1 wave showed no limit.
* C10 WebSocket mode makes tool chains faster (agent scenarios, session.chain):
  analysis.claims_chains — WS's chains at least `CHAIN_FASTER_SHARE` (5 %) shorter than
  SSE's on the same chains (median paired saving, CI above 0) in every configuration →
  holds; in none → does not hold; in some → depends.
* Without their scenarios in the run, C3–C7, C9 and C10 are "not measured in this run".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from analysis import cost_c2
from analysis.browser import c5_browser, is_browser_arm, recovery_rows
from analysis.claims_chains import CHAIN_FASTER_SHARE, claim_c10
from analysis.claims_proxy import (
    BROKEN_FACTOR,
    BROKEN_MIN_MS,
    BROWSER_H1_LIMIT,
    CUT_OUTCOMES,
    DIRECT,
    FIX_WITHIN_MS,
    WAIT_SHARE,
    claim_c3,
    claim_c4,
    claim_c7,
    proxy_variants,
)
from analysis.legacy import phase_identity
from analysis.manifest import Manifest, group_label
from analysis.results import ArmSummary, RatioCI, RunSummary, arms_in
from analysis.tables import as_summary
from analysis.verdicts import (
    CLAIMS,
    DEPENDS,
    DOES_NOT_HOLD,
    HOLDS,
    INCONCLUSIVE,
    NOT_MEASURED,
    NOT_MEASURED_TEXT,
    claim,
    not_measured,
    num,
    protocol,
)
from core.arms import reference_sse_arm

__all__ = [
    "BROKEN_FACTOR",
    "BROKEN_MIN_MS",
    "BROWSER_H1_LIMIT",
    "CHAIN_FASTER_SHARE",
    "CLAIMS",
    "CUT_OUTCOMES",
    "DEPENDS",
    "DIRECT",
    "DOES_NOT_HOLD",
    "FIX_WITHIN_MS",
    "HOLDS",
    "INCONCLUSIVE",
    "NOT_MEASURED",
    "NOT_MEASURED_TEXT",
    "WAIT_SHARE",
    "claim_c1",
    "claim_c2",
    "claim_c3",
    "claim_c4",
    "claim_c6",
    "claim_c7",
    "claim_c8",
    "claim_c9",
    "claim_c10",
    "claims",
    "claims_markdown",
    "proxy_variants",
]

SAME_WITHIN = 0.05
RECOVERED_SHARE = 0.99
C9_MIN_HIT = 20
C9_BETTER_SHARE = 0.05
C9_FASTER = 0.8
WASTE_PER_CANCEL = 2.0
SMALL_OVERHEAD = 0.5


def _ws_arms(arms: Mapping[str, Any]) -> list[str]:
    return [a for a in arms if protocol(a) == "ws"]


def _same(r: RatioCI | None) -> tuple[bool | None, str]:
    """(same?, text) for one median ratio."""
    if r is None:
        return None, "n/m"
    if r.ratio is None:
        return None, "n/a"
    close = abs(r.ratio - 1.0) < SAME_WITHIN
    if r.has_ci:
        return (close or r.lo <= 1.0 <= r.hi), f"{r.ratio:.3f} [{r.lo:.3f}, {r.hi:.3f}]"  # type: ignore[operator]
    return close, f"{r.ratio:.3f} (no CI)"


def _point_ratio(a: float | None, b: float | None) -> RatioCI | None:
    if a is None or b is None or b == 0:
        return None
    return RatioCI(ratio=a / b)


def _pair(a: float | None, b: float | None) -> str | None:
    return f"{a:.2f} / {b:.2f}" if a is not None and b is not None else None


def _c1_pair(arms: Mapping[str, Any]) -> tuple[str, list[str]] | None:
    """(the SSE arm, the WS arms compared with it), one kind of client on both sides: the
    Python clients' reference SSE arm (core.arms.reference_sse_arm) and WS arms, else a
    browser page's fetch-streamed SSE (what LLM web apps use; EventSource when fetch did
    not run) and `browser-ws`."""
    python = [a for a in arms if not is_browser_arm(a)]
    ref = reference_sse_arm(python)
    ws = [a for a in _ws_arms(arms) if a in python]
    if ref is not None and ws:
        return ref, ws
    for base in ("browser-fetch", "browser-eventsource"):
        if base in arms and "browser-ws" in arms:
            return base, ["browser-ws"]
    return None


def claim_c1(summary: RunSummary) -> dict[str, Any]:
    sc = summary.main_scenario
    block = summary.scenarios.get(sc) if sc else None
    pair = _c1_pair(block.arms) if block else None
    if block is None or pair is None:
        return not_measured("C1", "needs a scenario with both an SSE and a WS arm")
    base, ws = pair
    arms = block.arms
    sse = arms[base]
    numbers: dict[str, Any] = {}
    per_arm: dict[str, bool | None] = {}
    reasons: list[str] = []
    for arm in ws:
        other = arms[arm]
        verdicts = []
        for key, label in (("ttft_ms", "TTFT"), ("itl_ms", "ITL")):
            d_sse, d_ws = sse.distribution(key), other.distribution(key)
            entry = block.ratio(arm, f"{key}_p50", base)
            if entry is None or entry.ratio is None:  # too few samples for a CI: the medians
                entry = _point_ratio(d_sse.p50, d_ws.p50)
            same, text = _same(entry)
            numbers[f"{label} p50 {base} / {arm} (ms)"] = _pair(d_sse.p50, d_ws.p50) or "n/m"
            numbers[f"{label} p50 ratio {base}/{arm}"] = text
            p99 = _pair(d_sse.p99, d_ws.p99)
            if p99 is not None:
                numbers[f"{label} p99 {base} / {arm} (ms)"] = p99
            verdicts.append(same)
            if same is False and entry is not None and entry.ratio is not None:
                faster = ("SSE" if base == "sse" else base) if entry.ratio < 1 else arm
                reasons.append(
                    f"{label} median differs by {abs(entry.ratio - 1):.1%} ({faster} lower)"
                )
        per_arm[arm] = None if any(v is None for v in verdicts) else all(verdicts)
    if all(v is None for v in per_arm.values()):
        verdict = "inconclusive: no TTFT/ITL medians for both arms"
        return claim("C1", INCONCLUSIVE, verdict, "", numbers, sc)
    known = {a: v for a, v in per_arm.items() if v is not None}
    rule = f"same = CI of the median ratio contains 1 or within ±{SAME_WITHIN:.0%}"
    if len(set(known.values())) > 1:
        same_arms = [a for a, v in known.items() if v]
        return claim(
            "C1",
            DEPENDS,
            f"depends on the WS server: same as SSE for {', '.join(same_arms)} only",
            "; ".join(reasons) + f" ({rule})",
            numbers,
            sc,
        )
    if all(known.values()):
        return claim("C1", HOLDS, HOLDS, rule, numbers, sc)
    return claim("C1", DOES_NOT_HOLD, DOES_NOT_HOLD, "; ".join(reasons) + f" ({rule})", numbers, sc)


def claim_c2(cost_ratios: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    """C2, banded per pairing against the article's figures: analysis.cost_c2."""
    v = cost_c2.c2_verdict(cost_ratios)
    return claim("C2", v["status"], v["verdict"], v["why"], v["numbers"])


def _recovery(arm: ArmSummary) -> tuple[int, float | None, int, float | None]:
    """(dropped streams, share recovered ok, lost tokens, reconnect gap p50 ms)."""
    rc = arm.reconnect
    dropped = rc.streams_dropped
    ok = int(rc.outcomes.get("ok", 0))
    return dropped, (ok / dropped if dropped else None), arm.lost_tokens, rc.gap_ms.p50


def _recovery_claim(summary: RunSummary, cid: str, trait: str, need: str) -> dict[str, Any]:
    """The harness's own clients (browser arms are judged by `claim_c5`'s browser rule)."""
    found = summary.groups(trait)
    numbers: dict[str, Any] = {}
    rec: dict[str, list[bool]] = {"sse": [], "ws": []}
    for sc, arm, a in arms_in(summary, found):
        dropped, share, lost, gap = _recovery(a)
        proto = protocol(arm)
        if not dropped or proto is None or is_browser_arm(arm):
            continue
        failed = {k: n for k, n in a.outcomes.items() if k in ("error", "timeout") and n}
        numbers[f"{sc}/{arm}"] = (
            f"{dropped} dropped, {share:.1%} finished ok, {lost} tokens lost, "
            f"reconnects {a.reconnect.reconnects}, "
            f"drop → next token p50 {'n/m' if gap is None else f'{gap:.1f} ms'}"
            + "".join(f"; {n} stream(s) ended in {k}" for k, n in failed.items())
        )
        rec[proto].append(share is not None and share >= RECOVERED_SHARE and lost == 0)
    if not rec["sse"] or not rec["ws"]:
        return not_measured(cid, need)
    sse_ok, ws_ok = all(rec["sse"]), all(rec["ws"])
    rule = f"recovered = ≥ {RECOVERED_SHARE:.0%} of dropped streams finish ok, 0 tokens lost"
    sc_txt = ", ".join(found)
    if sse_ok and not ws_ok:
        return claim(cid, HOLDS, HOLDS, f"SSE recovered, WS did not ({rule})", numbers, sc_txt)
    if not sse_ok:
        return claim(
            cid, DOES_NOT_HOLD, DOES_NOT_HOLD, f"SSE did not recover ({rule})", numbers, sc_txt
        )
    return claim(
        cid,
        DEPENDS,
        "depends on the WS client: both arms recovered; WS only because the client sends a "
        "hand-written resume message, SSE via Last-Event-ID",
        rule,
        numbers,
        sc_txt,
    )


def claim_c5(
    summary: RunSummary, manifest: Manifest | None, browser_recovery: Any = None
) -> dict[str, Any]:
    """C5 — on the browser arms when they had drops (EventSource's own reconnect against
    fetch / WebSocket recovery by hand and fetch without it: analysis.browser.c5_browser),
    with the harness's Python clients' result beside it; else on the Python clients.
    ``browser_recovery``: analysis.browser.recovery_table of the run's records (its lost
    and duplicated tokens are the dropped streams' own); without it, the summary's."""
    need = "needs a scenario with server drops or client aborts"
    python = _recovery_claim(summary, "C5", "reconnects", need)
    rows = browser_recovery if browser_recovery is not None else recovery_rows(summary, manifest)
    browser = c5_browser(rows)
    if browser is None:
        return python
    numbers = dict(browser["numbers"])
    why = browser["why"]
    if python["status"] != NOT_MEASURED:
        numbers.update({f"Python client · {k}": v for k, v in python["numbers"].items()})
        why += f"; the harness's Python clients: {python['verdict']}"
    groups = ", ".join(dict.fromkeys(k.split("/", 1)[0] for k in browser["numbers"]))
    return claim("C5", browser["status"], browser["verdict"], why, numbers, groups)


def _evidence(row: Mapping[str, Any], summary: RunSummary) -> str | None:
    """Whose measurements a verdict rests on: "browser" (Chromium), "python client" (the
    harness's Locust clients), both, or None when nothing was measured."""
    if row["status"] == NOT_MEASURED:
        return None
    if row["id"] == "C7":
        return "browser"
    if row["id"] in ("C5", "C9"):
        browser = any(k.startswith("Python client") for k in row["numbers"])
        if any(is_browser_arm(w) for k in row["numbers"] for w in re.split(r"[ /]", k)):
            return "browser + python client" if browser else "browser"
        return "python client"
    main = summary.main_scenario
    if row["id"] in ("C1", "C8") and main and summary.scenarios[main].traits.browser:
        return "browser"
    return "python client"


def _c9_compare(sse: Mapping[str, Any], ws: Mapping[str, Any]) -> str | None:
    """ "sse" | "ws" | "same" on one profile, or None with too few fault-hit answers."""
    if min(sse["hit"], ws["hit"]) < C9_MIN_HIT:
        return None
    a, b = sse["hit_completed_share"], ws["hit_completed_share"]
    if a - b >= C9_BETTER_SHARE:
        return "sse"
    if b - a >= C9_BETTER_SHARE:
        return "ws"
    ta, tb = sse["fault_to_token_p50_ms"], ws["fault_to_token_p50_ms"]
    if ta is None or tb is None or tb <= 0 or ta <= 0:
        return "same"
    if ta / tb <= C9_FASTER:
        return "sse"
    if tb / ta <= C9_FASTER:
        return "ws"
    return "same"


def _c9_line(r: Mapping[str, Any]) -> str:
    share = r["hit_completed_share"]
    gap = r["fault_to_token_p50_ms"]
    return (
        f"{'n/m' if share is None else f'{share:.1%}'} of {r['hit']} fault-hit answers "
        f"completed, fault → next token p50 {'n/m' if gap is None else f'{gap / 1000:.2f} s'}, "
        f"{r['nobody']} tokens for nobody"
    )


def claim_c9(recovery: Sequence[Mapping[str, Any]] | None) -> dict[str, Any]:
    """C9 per profile on the resume rows (module docstring); the others as numbers."""
    rows = list(recovery or [])
    if not rows:
        return not_measured(
            "C9",
            "needs the fault proxy with faults (tunnels, handovers, cuts, loss) — a clean "
            "loopback drop is not a flaky network",
        )
    numbers: dict[str, Any] = {}
    # the judged rows (resume, with heartbeats) first: a summary quoting the first numbers
    # quotes them; the other behaviours follow as context
    for r in sorted(rows, key=lambda r: (r["behaviour"] != "resume", not r["heartbeat_s"])):
        hb = "" if r["heartbeat_s"] else ", no heartbeats"
        numbers[f"{r['label']} {r['behaviour']}{hb} {r['arm']}"] = _c9_line(r)
    judged: dict[str, list[str]] = {}
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = [r for r in rows if r["label"] == label and r["behaviour"] == "resume"]
        mine = [r for r in mine if r["heartbeat_s"]] or mine
        sse = [r for r in mine if protocol(r["arm"]) == "sse"]
        for ws in (r for r in mine if protocol(r["arm"]) == "ws"):
            for one in sse:
                res = _c9_compare(one, ws)
                if res is not None:
                    judged.setdefault(label, []).append(res)
    rule = (
        f"per profile, resume: SSE better = ≥ {C9_BETTER_SHARE:.0%} more fault-hit answers "
        f"completed, or as many and fault → next token ≤ {C9_FASTER:g}× WS's "
        f"(≥ {C9_MIN_HIT} hit answers per arm)"
    )
    scs = ", ".join(dict.fromkeys(r["group"] for r in rows))
    if not judged:
        return claim(
            "C9", INCONCLUSIVE, f"inconclusive: fewer than {C9_MIN_HIT} fault-hit answers "
            "per arm on every profile", rule, numbers, scs,
        )  # fmt: skip
    better = [lb for lb, v in judged.items() if all(x == "sse" for x in v)]
    for lb, v in judged.items():
        numbers[f"{lb}: better with resume"] = ", ".join(v)
    if len(better) == len(judged):
        return claim("C9", HOLDS, HOLDS, rule, numbers, scs)
    if not better:
        return claim(
            "C9",
            DOES_NOT_HOLD,
            DOES_NOT_HOLD,
            f"SSE recovered no better than WS on {', '.join(judged)} ({rule})",
            numbers,
            scs,
        )
    return claim(
        "C9",
        DEPENDS,
        f"depends on the network: SSE better on {', '.join(better)} only",
        rule,
        numbers,
        scs,
    )


def _wasted(server_metrics: Any) -> dict[str, dict[str, float]]:
    """Σ tokens_wasted / streams_cancelled / streams_disconnected per phase label, from any
    dict in server_metrics.json that carries ``tokens_wasted`` (its key path names it)."""
    out: dict[str, dict[str, float]] = {}

    def walk(obj: Any, path: tuple[str, ...]) -> None:
        if isinstance(obj, Mapping):
            if "tokens_wasted" in obj and num(obj.get("tokens_wasted")) is not None:
                label = str(obj.get("phase") or "/".join(path) or "all")
                d = out.setdefault(label, {"wasted": 0.0, "cancelled": 0.0})
                d["wasted"] += float(obj["tokens_wasted"])
                for k in ("streams_cancelled", "streams_disconnected"):
                    d["cancelled"] += num(obj.get(k)) or 0.0
                return
            for k, v in obj.items():
                walk(v, (*path, str(k)))
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                walk(v, (*path, str(i)))

    walk(server_metrics, ())
    return out


def _group_of(label: str, manifest: Manifest | None) -> str | None:
    """The group of a server_metrics.json entry (keyed by phase name): the manifest's phase
    entry says; an older manifest without it, the phase name (analysis.legacy)."""
    entry = manifest.phase(label) if manifest is not None else None
    if entry is not None:
        return entry.group
    scenario, variant, _ = phase_identity(label)
    return group_label(scenario, variant)


def claim_c6(
    summary: RunSummary, server_metrics: Any, manifest: Manifest | None = None
) -> dict[str, Any]:
    found = summary.groups("cancels")
    if not found:
        return not_measured("C6", "needs a scenario whose users cancel streams")
    waste = {k: v for k, v in _wasted(server_metrics).items() if _group_of(k, manifest) in found}
    numbers: dict[str, Any] = {}
    for sc, arm, a in arms_in(summary, found):
        numbers[f"{sc}/{arm} cancelled streams (client)"] = a.outcome("cancelled")
    per: dict[str, float] = {}
    for label, d in waste.items():
        if d["cancelled"] > 0:
            per[label] = d["wasted"] / d["cancelled"]
            numbers[f"{label}: tokens wasted per cancel"] = f"{per[label]:.2f}"
    if not per:
        return claim(
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
    return claim("C6", status, status, rule, numbers, ", ".join(found))


def claim_c8(summary: RunSummary) -> dict[str, Any]:
    sc = summary.main_scenario
    numbers: dict[str, Any] = {}
    small: dict[str, bool] = {}
    for _, arm, a in arms_in(summary, [sc] if sc else []):
        app = a.bytes.app_bytes_per_token if a.bytes else None
        payload = a.bytes.event_bytes_per_token if a.bytes else None
        if app is None or payload is None or payload <= 0:
            continue
        over = max(0.0, app - payload)
        numbers[f"{arm} bytes/token (payload + overhead)"] = (
            f"{payload:.1f} + {over:.1f} ({over / payload:.0%})"
        )
        small[arm] = over / payload <= SMALL_OVERHEAD
    for hsc, arm, a in arms_in(summary, summary.groups("held_idle")):
        app = a.bytes.app_bytes_per_token if a.bytes else None
        payload = a.bytes.event_bytes_per_token if a.bytes else None
        held = a.connections.held_s if a.connections else None
        if app is None or payload is None or not held:
            continue
        per_hour = (app - payload) * a.tokens / held * 3600.0
        numbers[f"{hsc}/{arm} overhead bytes per connection-hour"] = f"{per_hour:,.0f}"
    if not small:
        return not_measured("C8", "needs token payload and stream byte counts")
    rule = f"small = overhead ≤ {SMALL_OVERHEAD:.0%} of the token payload"
    if all(small.values()):
        return claim("C8", HOLDS, HOLDS, rule, numbers, sc)
    big = ", ".join(a for a, v in small.items() if not v)
    return claim(
        "C8",
        DEPENDS,
        f"depends on payload size: overhead above {SMALL_OVERHEAD:.0%} of the payload for {big}",
        rule,
        numbers,
        sc,
    )


def claims(
    summary: RunSummary | Mapping[str, Any],
    *,
    cost_ratios: Iterable[Mapping[str, Any]] | None = None,
    server_metrics: Any = None,
    manifest: Manifest | Mapping[str, Any] | None = None,
    browser_recovery: Any = None,
    recovery: Sequence[Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """C1…C10 for one run (see the module docstring for each rule). ``manifest``: the run's
    (typed or as read), for the proxy records and the phases that were skipped;
    ``recovery``: the bad-network rows (analysis.sections.network.recovery_rows) for C9."""
    s = as_summary(summary)
    man = manifest if isinstance(manifest, Manifest | None) else Manifest.from_json(manifest)
    rows = [
        claim_c1(s),
        claim_c2(cost_ratios),
        claim_c3(s, man),
        claim_c4(s, man),
        claim_c5(s, man, browser_recovery),
        claim_c6(s, server_metrics, man),
        claim_c7(man),
        claim_c8(s),
        # the network section's fault-hit counts are the Python clients' (a page's fetch
        # streams read 0 hits there): C9 is judged on those only; browser cuts are in C5
        claim_c9([r for r in recovery or [] if not is_browser_arm(str(r.get("arm")))]),
        claim_c10(s),
    ]
    for row in rows:
        row["evidence"] = _evidence(row, s)
    return rows


def claims_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The claims as a Markdown table plus one bullet list of numbers per claim."""
    out = ["| claim | verdict | scenario | evidence |", "|---|---|---|---|"]
    for r in rows:
        out.append(
            f"| **{r['id']}** {r['claim']} | {r['verdict']} | {r.get('scenario') or '—'} "
            f"| {r.get('evidence') or '—'} |"
        )
    out.append("")
    for r in rows:
        out.append(f"**{r['id']}** — {r['verdict']}." + (f" {r['why']}." if r.get("why") else ""))
        for k, v in (r.get("numbers") or {}).items():
            out.append(f"- {k}: {v}")
        out.append("")
    return "\n".join(out)
