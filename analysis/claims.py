"""Verdicts on the article's claims (C1–C9, docs/methodology.md) from one run's numbers.

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
  scaled to the default profile) in bands (reversed, about equal, well below, close to
  6×, far above) next to the article's $680 → $4,100; the bands and the rule are in
  `analysis.cost_c2`.
* C5 reconnect/resume and C9 flaky networks: an arm *recovers* when at least
  `RECOVERED_SHARE` (99 %) of its dropped streams finish ok with no lost token. C5
  holds when SSE recovers and WS does not; when both recover it depends on the WS client
  carrying hand-written resume (this harness's does); does not hold when SSE does not.
* C6 server notices a closed client on its next write: tokens the server generated for
  nobody per cancelled/disconnected stream ≤ `WASTE_PER_CANCEL` (2) → holds.
* C8 keepalive and framing bytes are small: per arm, application bytes per token minus
  the bare token payload (framing, done events, heartbeats) ≤ `SMALL_OVERHEAD` (50 %) of
  the payload → small. Every arm small → holds; else depends on payload size.
* C3 nginx buffering (scenario ``proxy-buffering``, phases ``proxy-buffering.<variant>/…``,
  issue 6): per SSE arm, the TTFT median of each proxy variant against ``direct`` in the
  same run. Streaming is *broken* by a variant when its TTFT p50 ≥ `BROKEN_FACTOR` (5×)
  the direct one and at least `BROKEN_MIN_MS` (50 ms) above it; a fix (server header
  `X-Accel-Buffering: no`, or `proxy_buffering off`) *restores* streaming when its TTFT
  p50 is within `FIX_WITHIN_MS` (5 ms) of direct. Holds when the buffered variant without
  the header breaks streaming and every fix restores it; does not hold when buffering does
  not break it, or a fix does not restore it; depends when some buffered variants break it
  and others (e.g. upstream HTTP/1.1) do not. Variant roles come from the proxy records
  (nginx `proxy_buffering`, the server's header) and else from the labels.
* C4 idle cut (scenario ``proxy-idle``): a stream is *cut* when its outcome is dropped /
  error / timeout (the client alone cannot tell nginx from the server closing; nginx's
  error.log "upstream timed out" count is the proxy-side evidence, and
  analysis.attribution joins it onto the client's connections as closed_by "proxy").
  Holds when, on every arm, streams without heartbeat are cut and none with the heartbeat
  is; does not hold when streams without heartbeat survive or heartbeat ones are cut too;
  depends when the arms disagree. Time-scaled: the records give the proxy_read_timeout
  and heartbeat interval.
* C7 HTTP/2 multiplexing (scenario ``proxy-h2``): a real Chromium opens N (12) EventSources
  at once through nginx's TLS listener, once with HTTP/2 disabled and once enabled
  (bench.browser; nginx's access log counts the TCP connections of each wave). HTTP/1.1 is
  *limited* when at most `BROWSER_H1_LIMIT` streams are open at once and the rest *wait*
  (TTFT p50 of the streams after the first six later by ≥ `WAIT_SHARE` × one stream's
  duration). HTTP/2 *multiplexes* when all N are open at once on one TCP connection and
  none waits. Holds when HTTP/1.1 is limited and HTTP/2 multiplexes; does not hold when
  HTTP/2 does not multiplex (or its streams wait); inconclusive when HTTP/2 multiplexes
  but the HTTP/1.1 wave showed no limit.
* Without their scenarios in the run, C3/C4/C7 are "not measured in this run".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from analysis import cost_c2
from core.arms import protocol_of

SAME_WITHIN = 0.05
RECOVERED_SHARE = 0.99
WASTE_PER_CANCEL = 2.0
SMALL_OVERHEAD = 0.5
BROKEN_FACTOR = 5.0
BROKEN_MIN_MS = 50.0
FIX_WITHIN_MS = 5.0
#: Stream outcomes that count as "cut" in the idle experiment (C4).
CUT_OUTCOMES = ("dropped", "error", "timeout")
C3_SCENARIO = "proxy-buffering"
C4_SCENARIO = "proxy-idle"
C7_SCENARIO = "proxy-h2"
#: Chromium's HTTP/1.1 connections per origin (the limit C7 is about).
BROWSER_H1_LIMIT = 6
#: A stream *waits* when its TTFT p50 is later than the first six's by at least this share
#: of one stream's duration (tokens × gap): it started only when a connection came free.
WAIT_SHARE = 0.5
DIRECT = "direct"

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
    return [a for a in arms if protocol_of(a) == "ws"]


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
    """C2, banded per pairing against the article's figures: analysis.cost_c2."""
    v = cost_c2.c2_verdict(cost_ratios)
    return _claim("C2", v["status"], v["verdict"], v["why"], v["numbers"])


# --------------------------------------------------------------------------- proxy (C3, C4)


def proxy_variants(summary: Mapping[str, Any], base: str) -> dict[str, Mapping[str, Any]]:
    """variant label → that variant's arms block, from scenarios named ``<base>.<variant>``."""
    out: dict[str, Mapping[str, Any]] = {}
    for sc, block in (summary.get("scenarios") or {}).items():
        if sc.startswith(base + "."):
            out[sc[len(base) + 1 :]] = block.get("arms") or {}
    return out


def proxy_records_from_manifest(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """phase name → its proxy record (bench.run: manifest phases[].proxy), skipped phases
    as ``{"skipped": reason}``."""
    out: dict[str, dict[str, Any]] = {}
    for ph in manifest.get("phases") or []:
        if not isinstance(ph, Mapping):
            continue
        name = ph.get("name")
        if not name:
            continue
        if ph.get("status") == "skipped":
            out[str(name)] = {
                "skipped": ph.get("reason") or "skipped",
                "variant": ph.get("variant"),
            }
        elif isinstance(ph.get("proxy"), Mapping):
            out[str(name)] = dict(ph["proxy"])
    return out


def _records(proxy: Mapping[str, Any] | None, group: str, arm: str | None = None) -> list:
    pre = f"{group}/" + (f"{arm}/" if arm else "")
    return [r for k, r in (proxy or {}).items() if k.startswith(pre) and isinstance(r, Mapping)]


def _skipped(proxy: Mapping[str, Any] | None, base: str) -> list[str]:
    return sorted(
        {
            str(r.get("skipped"))
            for k, r in (proxy or {}).items()
            if k.startswith(base + ".") and isinstance(r, Mapping) and r.get("skipped")
        }
    )


def _c3_role(label: str, recs: list) -> str:
    """direct | buffered (buffering on, no header) | header | off."""
    if label == DIRECT:
        return DIRECT
    rec = next((r for r in recs if isinstance(r.get("variant"), Mapping)), None)
    if rec is not None:
        if not rec["variant"].get("buffering", True):
            return "off"
        return "header" if rec.get("server_accel_header") else "buffered"
    if "unbuffered" in label or label.endswith("-off"):
        return "off"
    if "accel" in label or "header" in label:
        return "header"
    return "buffered"


def _ms(v: Any) -> str:
    v = _num(v)
    return "n/m" if v is None else f"{v:.1f}"


def claim_c3(summary: Mapping[str, Any], proxy: Mapping[str, Any] | None = None) -> dict:
    variants = proxy_variants(summary, C3_SCENARIO)
    skipped = _skipped(proxy, C3_SCENARIO)
    if not variants or DIRECT not in variants or len(variants) < 2:
        why = "needs the proxy-buffering scenario (direct + nginx variants) in the run"
        if skipped:
            why = f"proxy phases skipped: {'; '.join(skipped)}"
        return _not_measured("C3", why)
    numbers: dict[str, Any] = {}
    group = lambda v: f"{C3_SCENARIO}.{v}"  # noqa: E731
    for v, arms in variants.items():
        for arm, a in arms.items():
            numbers[f"{v}/{arm} TTFT p50 / E2E p50 (ms)"] = (
                f"{_ms(_get(a, 'ttft_ms', 'p50'))} / {_ms(_get(a, 'e2e_ms', 'p50'))}"
            )
        recs = _records(proxy, group(v))
        rec = next((r for r in recs if isinstance(r.get("variant"), Mapping)), None)
        if rec is not None:
            nv = rec["variant"]
            numbers[f"{v} nginx"] = (
                f"proxy_buffering {'on' if nv.get('buffering') else 'off'}, "
                f"proxy_http_version {nv.get('upstream_http')}, proxy_buffer_size "
                f"{nv.get('buffer_size')}, proxy_buffers {nv.get('buffers')}, server "
                f"X-Accel-Buffering: {'no' if rec.get('server_accel_header') else 'not sent'}"
            )
    direct = _num(_get(variants[DIRECT], "sse", "ttft_ms", "p50"))
    if direct is None:
        return _claim(
            "C3", INCONCLUSIVE, "inconclusive: no direct SSE TTFT", "", numbers, C3_SCENARIO
        )
    rule = (
        f"broken = TTFT p50 ≥ {BROKEN_FACTOR:g}× direct and ≥ {BROKEN_MIN_MS:g} ms above it; "
        f"restored = within {FIX_WITHIN_MS:g} ms of direct ({direct:.1f} ms), same run, SSE arm"
    )
    broken: dict[str, bool] = {}
    fixed: dict[str, bool] = {}
    for v, arms in variants.items():
        t = _num(_get(arms, "sse", "ttft_ms", "p50"))
        role = _c3_role(v, _records(proxy, group(v)))
        if t is None or role == DIRECT:
            continue
        if role == "buffered":
            broken[v] = t >= BROKEN_FACTOR * direct and t - direct >= BROKEN_MIN_MS
        else:
            fixed[v] = abs(t - direct) <= FIX_WITHIN_MS
    if not broken:
        return _claim(
            "C3",
            INCONCLUSIVE,
            "inconclusive: no buffered variant without the header was measured",
            rule,
            numbers,
            C3_SCENARIO,
        )
    names = lambda d, want: ", ".join(k for k, x in d.items() if x == want)  # noqa: E731
    if not any(broken.values()):
        return _claim(
            "C3",
            DOES_NOT_HOLD,
            f"does not hold: buffering did not break streaming ({', '.join(broken)})",
            rule,
            numbers,
            C3_SCENARIO,
        )
    if fixed and not all(fixed.values()):
        return _claim(
            "C3",
            DOES_NOT_HOLD,
            f"does not hold: buffering breaks streaming, but {names(fixed, False)} "
            "did not restore it",
            rule,
            numbers,
            C3_SCENARIO,
        )
    if not all(broken.values()):
        return _claim(
            "C3",
            DEPENDS,
            f"depends on the nginx config: streaming broken with {names(broken, True)}, "
            f"not with {names(broken, False)}",
            rule,
            numbers,
            C3_SCENARIO,
        )
    fixes = f"; restored by {names(fixed, True)}" if fixed else " (no fix variant measured)"
    return _claim(
        "C3",
        HOLDS if fixed else DEPENDS,
        (HOLDS if fixed else "partly measured")
        + f": streaming broken with {names(broken, True)}{fixes}",
        rule,
        numbers,
        C3_SCENARIO,
    )


def _heartbeat(label: str, recs: list) -> float | None:
    for r in recs:
        hb = _num(r.get("server_heartbeat_s"))
        if hb is not None:
            return hb
    if "nohb" in label or "no-heartbeat" in label:
        return 0.0
    if "hb" in label or "heartbeat" in label:
        return math.nan  # on, interval unknown
    return None


def claim_c4(summary: Mapping[str, Any], proxy: Mapping[str, Any] | None = None) -> dict:
    variants = proxy_variants(summary, C4_SCENARIO)
    skipped = _skipped(proxy, C4_SCENARIO)
    if not variants:
        why = "needs the proxy-idle scenario (short proxy_read_timeout, idle gap, heartbeat)"
        if skipped:
            why = f"proxy phases skipped: {'; '.join(skipped)}"
        return _not_measured("C4", why)
    numbers: dict[str, Any] = {}
    cut: dict[tuple[str, bool], list[bool]] = {}  # (arm, heartbeat on) → per variant: any cut
    for v, arms in variants.items():
        group = f"{C4_SCENARIO}.{v}"
        recs = _records(proxy, group)
        hb = _heartbeat(v, recs)
        timeout = next(
            (
                _num(_get(r, "variant", "read_timeout_s"))
                for r in recs
                if _num(_get(r, "variant", "read_timeout_s")) is not None
            ),
            None,
        )
        if hb is not None and timeout is not None and not math.isnan(hb):
            numbers[f"{v} setting"] = f"proxy_read_timeout {timeout:g} s, heartbeat " + (
                "off" if hb == 0 else f"every {hb:g} s"
            )
        for arm, a in arms.items():
            n = int(a.get("streams") or 0)
            oc = a.get("outcomes") or {}
            n_cut = sum(int(oc.get(o) or 0) for o in CUT_OUTCOMES)
            n_ok = int(oc.get("ok") or 0)
            timed_out = sum(
                int(_get(r, "log_events", "upstream_timed_out") or 0)
                for r in _records(proxy, group, arm)
            )
            have_log = bool(_records(proxy, group, arm))
            by_proxy = _get(a, "connections", "closed_by", "proxy")
            numbers[f"{v}/{arm} streams survived / cut / all"] = (
                f"{n_ok} / {n_cut} / {n}"
                + (f"; nginx 'upstream timed out': {timed_out}" if have_log else "")
                + (f"; connections closed by the proxy: {int(by_proxy or 0)}" if have_log else "")
            )
            if hb is None or n == 0:
                continue
            cut.setdefault((arm, hb != 0), []).append(n_cut > 0 or timed_out > 0)
    arms = sorted({arm for arm, _ in cut})
    per_arm: dict[str, bool | None] = {}
    for arm in arms:
        off, on = cut.get((arm, False)), cut.get((arm, True))
        if off is None or on is None:
            per_arm[arm] = None
        else:
            per_arm[arm] = all(off) and not any(on)
    rule = (
        "cut = outcome dropped/error/timeout or nginx 'upstream timed out'; holds = without "
        "heartbeat streams are cut and with it none is, on every arm (time-scaled: 60 s / 15 s "
        "→ the timeout and interval above)"
    )
    known = {a: v for a, v in per_arm.items() if v is not None}
    if not known:
        return _claim(
            "C4",
            INCONCLUSIVE,
            "inconclusive: needs both a heartbeat-off and a heartbeat-on variant",
            rule,
            numbers,
            C4_SCENARIO,
        )
    if all(known.values()):
        return _claim(
            "C4",
            HOLDS,
            f"holds on {', '.join(known)}: cut without heartbeat, none cut with it",
            rule,
            numbers,
            C4_SCENARIO,
        )
    if not any(known.values()):
        return _claim("C4", DOES_NOT_HOLD, DOES_NOT_HOLD, rule, numbers, C4_SCENARIO)
    good = ", ".join(a for a, v in known.items() if v)
    return _claim(
        "C4", DEPENDS, f"depends on the arm: holds for {good} only", rule, numbers, C4_SCENARIO
    )


def _wave_text(w: Mapping[str, Any]) -> str:
    conns = _get(w, "access", "connections")
    return (
        f"{w.get('completed')} of {w.get('streams')} streams done"
        + (f" over {conns} TCP connection(s) (nginx)" if conns is not None else "")
        + f", at most {w.get('max_open_at_once')} open at once; TTFT p50 first six / the rest "
        + f"{_fmt_ms(w.get('ttft_ms_p50_first'))} / {_fmt_ms(w.get('ttft_ms_p50_rest'))} ms, "
        + f"E2E p50 {_fmt_ms(w.get('e2e_ms_p50'))} ms"
    )


def _fmt_ms(v: Any) -> str:
    x = _num(v)
    return "n/m" if x is None else f"{x:.0f}"


def _waits(w: Mapping[str, Any], stream_ms: float) -> bool | None:
    first, rest = _num(w.get("ttft_ms_p50_first")), _num(w.get("ttft_ms_p50_rest"))
    if first is None or rest is None or stream_ms <= 0:
        return None
    return rest - first >= WAIT_SHARE * stream_ms


def claim_c7(proxy: Mapping[str, Any] | None = None) -> dict:
    """C7 from the browser check of the proxy-h2 phases (see the module docstring)."""
    checks = [
        r["browser"]
        for k, r in (proxy or {}).items()
        if k.startswith(C7_SCENARIO + ".") and isinstance(r, Mapping) and r.get("browser")
    ]
    skipped = _skipped(proxy, C7_SCENARIO) + sorted(
        {str(c["skipped"]) for c in checks if c.get("skipped")}
    )
    measured = [c for c in checks if not c.get("skipped")]
    if not measured:
        why = "needs the proxy-h2 scenario (nginx HTTP/2 + TLS, a real Chromium)"
        if skipped:
            why = f"skipped: {'; '.join(skipped)}"
        return _not_measured("C7", why)
    check = measured[-1]  # the last repetition's check; each is complete on its own
    waves = check.get("waves") or {}
    h1, h2 = waves.get("http/1.1") or {}, waves.get("h2") or {}
    params = check.get("params") or {}
    stream_ms = (_num(params.get("tokens")) or 0.0) * (_num(params.get("gap_ms")) or 0.0)
    numbers: dict[str, Any] = {
        "browser": check.get("browser"),
        "wave": f"{check.get('streams_per_wave')} EventSources opened at once, "
        f"{params.get('tokens')} tokens {params.get('gap_ms')} ms apart "
        f"(one stream ≈ {stream_ms:.0f} ms)",
    }
    for label, w in (("HTTP/1.1 (HTTP/2 disabled)", h1), ("HTTP/2", h2)):
        numbers[label] = w.get("error") or _wave_text(w)
    per_conn = {
        label: _num(_get(w, "access", "streams_per_connection_mean"))
        for label, w in (("HTTP/1.1", h1), ("HTTP/2", h2))
    }
    numbers["streams per TCP connection (nginx)"] = ", ".join(
        f"{k} {v:.1f}" if v is not None else f"{k} n/m" for k, v in per_conn.items()
    )
    rule = (
        f"HTTP/1.1 limited = at most {BROWSER_H1_LIMIT} open at once and the rest wait (TTFT "
        f"p50 later by ≥ {WAIT_SHARE:g} × one stream); HTTP/2 multiplexes = all open at once "
        "on one TCP connection and none waits; holds = both"
    )
    if h1.get("error") or h2.get("error") or not h1 or not h2:
        return _claim(
            "C7", INCONCLUSIVE, "inconclusive: a browser wave failed", rule, numbers, C7_SCENARIO
        )
    n = int(_num(h2.get("streams")) or 0)
    h2_conns = _num(_get(h2, "access", "connections"))
    h2_mux = (
        _num(h2.get("max_open_at_once")) == n
        and h2_conns == 1
        and _waits(h2, stream_ms) is False
        and _num(h2.get("completed")) == n
    )
    h1_waits = _waits(h1, stream_ms)
    h1_limited = (_num(h1.get("max_open_at_once")) or 0) <= BROWSER_H1_LIMIT < int(
        _num(h1.get("streams")) or 0
    ) and h1_waits is True
    if not h2_mux:
        return _claim("C7", DOES_NOT_HOLD, DOES_NOT_HOLD, rule, numbers, C7_SCENARIO)
    if not h1_limited:
        verdict = "inconclusive: HTTP/2 multiplexed, but the HTTP/1.1 wave showed no limit"
        return _claim("C7", INCONCLUSIVE, verdict, rule, numbers, C7_SCENARIO)
    verdict = (
        f"holds: over HTTP/1.1 the browser kept {_num(h1.get('max_open_at_once')):.0f} streams "
        f"open and the rest waited; over HTTP/2 all {n} shared one connection"
    )
    return _claim("C7", HOLDS, verdict, rule, numbers, C7_SCENARIO)


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
            proto = protocol_of(arm)
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
    proxy: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """C1…C9 for one run (see the module docstring for each rule). ``proxy``: phase name →
    proxy record (`proxy_records_from_manifest`, or the run's proxy.json)."""
    return [
        claim_c1(summary),
        claim_c2(cost_ratios),
        claim_c3(summary, proxy),
        claim_c4(summary, proxy),
        _recovery_claim(summary, "C5", ("reconnect",), "needs a reconnect scenario with drops"),
        claim_c6(summary, server_metrics),
        claim_c7(proxy),
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
