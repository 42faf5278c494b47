"""The proxy claims C3 (nginx buffering), C4 (idle cut) and C7 (HTTP/2 multiplexing), from
one run's summary and manifest. Rules: analysis.claims' docstring and docs/methodology.md.

The experiments are found by what their scenarios' configuration does (analysis.traits):
C3 on the ``[proxy]`` scenario with a ``direct`` variant (``proxy_buffering``), C4 on the
one pausing mid-stream behind a proxy (``proxy_idle``), C7 wherever bench recorded a
browser check. The nginx settings of each variant are the phase's proxy record in the
manifest (phases[].proxy); a phase that could not run (no nginx) is ``skipped`` there,
with its reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from analysis.manifest import Manifest, PhaseEntry
from analysis.results import ArmSummary, RunSummary
from analysis.traits import traits_of
from analysis.verdicts import (
    DEPENDS,
    DOES_NOT_HOLD,
    HOLDS,
    INCONCLUSIVE,
    claim,
    get,
    not_measured,
    num,
)

BROKEN_FACTOR = 5.0
BROKEN_MIN_MS = 50.0
FIX_WITHIN_MS = 5.0
#: Stream outcomes that count as "cut" in the idle experiment (C4).
CUT_OUTCOMES = ("dropped", "error", "timeout")
#: Chromium's HTTP/1.1 connections per origin (the limit C7 is about).
BROWSER_H1_LIMIT = 6
#: A stream *waits* when its TTFT p50 is later than the first six's by at least this share
#: of one stream's duration (tokens × gap): it started only when a connection came free.
WAIT_SHARE = 0.5
DIRECT = "direct"


def proxy_variants(summary: RunSummary, trait: str) -> tuple[str | None, dict[str, str]]:
    """(scenario, {variant label: group}) of the first scenario whose groups have ``trait``
    (``proxy_buffering`` / ``proxy_idle``), direct first."""
    groups = [g for g in summary.groups(trait) if summary.scenarios[g].traits.variant]
    if not groups:
        return None, {}
    scenario = summary.scenarios[groups[0]].traits.scenario
    mine = {
        str(summary.scenarios[g].traits.variant): g
        for g in groups
        if summary.scenarios[g].traits.scenario == scenario
    }
    order = sorted(mine, key=lambda v: (v != DIRECT, list(mine).index(v)))
    return scenario, {v: mine[v] for v in order}


def records(manifest: Manifest | None, group: str, arm: str | None = None) -> list[dict]:
    """The proxy records bench kept for the phases of ``group`` (and ``arm``)."""
    if manifest is None:
        return []
    return [dict(p.proxy) for p in manifest.phases_of(group, arm) if p.proxy]


def skipped_reasons(manifest: Manifest | None, trait: str | None) -> list[str]:
    """Why proxy phases of the experiment did not run (``trait`` None: any proxy phase)."""
    if manifest is None:
        return []
    out = set()
    for p in manifest.phases:
        if not (p.skipped and p.variant):
            continue
        if trait is None or traits_of(manifest, p.scenario, p.variant).has(trait):
            out.add(p.reason or "skipped")
    return sorted(out)


def _nginx_text(rec: Mapping[str, Any]) -> str:
    nv = rec["variant"]
    return (
        f"proxy_buffering {'on' if nv.get('buffering') else 'off'}, "
        f"proxy_http_version {nv.get('upstream_http')}, proxy_buffer_size "
        f"{nv.get('buffer_size')}, proxy_buffers {nv.get('buffers')}, server "
        f"X-Accel-Buffering: {'no' if rec.get('server_accel_header') else 'not sent'}"
    )


def _c3_role(label: str, recs: list[dict]) -> str | None:
    """direct | buffered (buffering on, no header) | header | off; None when the phase's
    nginx settings were not recorded (then the variant is not judged)."""
    if label == DIRECT:
        return DIRECT
    rec = next((r for r in recs if isinstance(r.get("variant"), Mapping)), None)
    if rec is None:
        return None
    if not rec["variant"].get("buffering", True):
        return "off"
    return "header" if rec.get("server_accel_header") else "buffered"


def _ms(v: Any) -> str:
    v = num(v)
    return "n/m" if v is None else f"{v:.1f}"


def _sse_ttft(arms: Mapping[str, ArmSummary]) -> float | None:
    a = arms.get("sse")
    return a.ttft_ms.p50 if a is not None else None


def claim_c3(summary: RunSummary, manifest: Manifest | None = None) -> dict:
    scenario, variants = proxy_variants(summary, "proxy_buffering")
    skipped = skipped_reasons(manifest, "proxy_buffering")
    if DIRECT not in variants or len(variants) < 2:
        why = "needs a [proxy] scenario with a direct variant and nginx variants in the run"
        if skipped:
            why = f"proxy phases skipped: {'; '.join(skipped)}"
        return not_measured("C3", why)
    numbers: dict[str, Any] = {}
    arms_of = {v: summary.scenarios[g].arms for v, g in variants.items()}
    for v, group in variants.items():
        for arm, a in arms_of[v].items():
            numbers[f"{v}/{arm} TTFT p50 / E2E p50 (ms)"] = (
                f"{_ms(a.ttft_ms.p50)} / {_ms(a.e2e_ms.p50)}"
            )
        rec = next(
            (r for r in records(manifest, group) if isinstance(r.get("variant"), Mapping)), None
        )
        if rec is not None:
            numbers[f"{v} nginx"] = _nginx_text(rec)
    direct = _sse_ttft(arms_of[DIRECT])
    if direct is None:
        return claim("C3", INCONCLUSIVE, "inconclusive: no direct SSE TTFT", "", numbers, scenario)
    rule = (
        f"broken = TTFT p50 ≥ {BROKEN_FACTOR:g}× direct and ≥ {BROKEN_MIN_MS:g} ms above it; "
        f"restored = within {FIX_WITHIN_MS:g} ms of direct ({direct:.1f} ms), same run, SSE arm"
    )
    broken: dict[str, bool] = {}
    fixed: dict[str, bool] = {}
    for v, group in variants.items():
        t = _sse_ttft(arms_of[v])
        role = _c3_role(v, records(manifest, group))
        if t is None or role in (DIRECT, None):
            continue
        if role == "buffered":
            broken[v] = t >= BROKEN_FACTOR * direct and t - direct >= BROKEN_MIN_MS
        else:
            fixed[v] = abs(t - direct) <= FIX_WITHIN_MS
    if not broken:
        verdict = "inconclusive: no buffered variant without the header was measured"
        return claim("C3", INCONCLUSIVE, verdict, rule, numbers, scenario)
    names = lambda d, want: ", ".join(k for k, x in d.items() if x == want)  # noqa: E731
    if not any(broken.values()):
        verdict = f"does not hold: buffering did not break streaming ({', '.join(broken)})"
        return claim("C3", DOES_NOT_HOLD, verdict, rule, numbers, scenario)
    if fixed and not all(fixed.values()):
        verdict = (
            f"does not hold: buffering breaks streaming, but {names(fixed, False)} "
            "did not restore it"
        )
        return claim("C3", DOES_NOT_HOLD, verdict, rule, numbers, scenario)
    if not all(broken.values()):
        verdict = (
            f"depends on the nginx config: streaming broken with {names(broken, True)}, "
            f"not with {names(broken, False)}"
        )
        return claim("C3", DEPENDS, verdict, rule, numbers, scenario)
    fixes = f"; restored by {names(fixed, True)}" if fixed else " (no fix variant measured)"
    verdict = (HOLDS if fixed else "partly measured") + (
        f": streaming broken with {names(broken, True)}{fixes}"
    )
    return claim("C3", HOLDS if fixed else DEPENDS, verdict, rule, numbers, scenario)


def _heartbeat(summary: RunSummary, group: str, recs: list[dict]) -> float | None:
    """The group's heartbeat interval (0 = off): the server's record, else its config."""
    for r in recs:
        hb = num(r.get("server_heartbeat_s"))
        if hb is not None:
            return hb
    return summary.scenarios[group].traits.heartbeat_s


def claim_c4(summary: RunSummary, manifest: Manifest | None = None) -> dict:
    scenario, variants = proxy_variants(summary, "proxy_idle")
    skipped = skipped_reasons(manifest, "proxy_idle")
    if not variants:
        why = "needs a [proxy] scenario that pauses mid-stream (short proxy_read_timeout)"
        if skipped:
            why = f"proxy phases skipped: {'; '.join(skipped)}"
        return not_measured("C4", why)
    numbers: dict[str, Any] = {}
    cut: dict[tuple[str, bool], list[bool]] = {}  # (arm, heartbeat on) → per variant: any cut
    for v, group in variants.items():
        recs = records(manifest, group)
        hb = _heartbeat(summary, group, recs)
        timeout = next(
            (
                num(get(r, "variant", "read_timeout_s"))
                for r in recs
                if num(get(r, "variant", "read_timeout_s")) is not None
            ),
            None,
        )
        if hb is not None and timeout is not None and not math.isnan(hb):
            numbers[f"{v} setting"] = f"proxy_read_timeout {timeout:g} s, heartbeat " + (
                "off" if hb == 0 else f"every {hb:g} s"
            )
        for arm, a in summary.scenarios[group].arms.items():
            n_cut = sum(a.outcome(o) for o in CUT_OUTCOMES)
            mine = records(manifest, group, arm)
            timed_out = sum(int(get(r, "log_events", "upstream_timed_out") or 0) for r in mine)
            by_proxy = (a.connections.closed_by.get("proxy") if a.connections else None) or 0
            numbers[f"{v}/{arm} streams survived / cut / all"] = (
                f"{a.outcome('ok')} / {n_cut} / {a.streams}"
                + (f"; nginx 'upstream timed out': {timed_out}" if mine else "")
                + (f"; connections closed by the proxy: {int(by_proxy)}" if mine else "")
            )
            if hb is None or a.streams == 0:
                continue
            cut.setdefault((arm, hb != 0), []).append(n_cut > 0 or timed_out > 0)
    per_arm: dict[str, bool | None] = {}
    for arm in sorted({arm for arm, _ in cut}):
        off, on = cut.get((arm, False)), cut.get((arm, True))
        per_arm[arm] = None if off is None or on is None else all(off) and not any(on)
    rule = (
        "cut = outcome dropped/error/timeout or nginx 'upstream timed out'; holds = without "
        "heartbeat streams are cut and with it none is, on every arm (time-scaled: 60 s / 15 s "
        "→ the timeout and interval above)"
    )
    known = {a: v for a, v in per_arm.items() if v is not None}
    if not known:
        verdict = "inconclusive: needs both a heartbeat-off and a heartbeat-on variant"
        return claim("C4", INCONCLUSIVE, verdict, rule, numbers, scenario)
    if all(known.values()):
        verdict = f"holds on {', '.join(known)}: cut without heartbeat, none cut with it"
        return claim("C4", HOLDS, verdict, rule, numbers, scenario)
    if not any(known.values()):
        return claim("C4", DOES_NOT_HOLD, DOES_NOT_HOLD, rule, numbers, scenario)
    good = ", ".join(a for a, v in known.items() if v)
    return claim(
        "C4", DEPENDS, f"depends on the arm: holds for {good} only", rule, numbers, scenario
    )


def _wave_text(w: Mapping[str, Any]) -> str:
    conns = get(w, "access", "connections")
    return (
        f"{w.get('completed')} of {w.get('streams')} streams done"
        + (f" over {conns} TCP connection(s) (nginx)" if conns is not None else "")
        + f", at most {w.get('max_open_at_once')} open at once; TTFT p50 first six / the rest "
        + f"{_fmt_ms(w.get('ttft_ms_p50_first'))} / {_fmt_ms(w.get('ttft_ms_p50_rest'))} ms, "
        + f"E2E p50 {_fmt_ms(w.get('e2e_ms_p50'))} ms"
    )


def _fmt_ms(v: Any) -> str:
    x = num(v)
    return "n/m" if x is None else f"{x:.0f}"


def _waits(w: Mapping[str, Any], stream_ms: float) -> bool | None:
    first, rest = num(w.get("ttft_ms_p50_first")), num(w.get("ttft_ms_p50_rest"))
    if first is None or rest is None or stream_ms <= 0:
        return None
    return rest - first >= WAIT_SHARE * stream_ms


def browser_checks(manifest: Manifest | None) -> list[tuple[PhaseEntry, dict]]:
    """(phase, its browser check) wherever bench ran one (the proxy record's ``browser``)."""
    if manifest is None:
        return []
    return [
        (p, dict(p.proxy["browser"])) for p in manifest.phases if p.proxy and p.proxy.get("browser")
    ]


def claim_c7(manifest: Manifest | None = None) -> dict:
    """C7 from the browser checks bench ran through nginx (see analysis.claims)."""
    checks = browser_checks(manifest)
    skipped = skipped_reasons(manifest, None) + sorted(
        {str(c["skipped"]) for _, c in checks if c.get("skipped")}
    )
    measured = [(p, c) for p, c in checks if not c.get("skipped")]
    if not measured:
        why = "needs a browser check through nginx's HTTP/2 + TLS listener (a real Chromium)"
        if skipped:
            why = f"skipped: {'; '.join(sorted(set(skipped)))}"
        return not_measured("C7", why)
    phase, check = measured[-1]  # the last repetition's check; each is complete on its own
    scenario = phase.group
    waves = check.get("waves") or {}
    h1, h2 = waves.get("http/1.1") or {}, waves.get("h2") or {}
    params = check.get("params") or {}
    stream_ms = (num(params.get("tokens")) or 0.0) * (num(params.get("gap_ms")) or 0.0)
    numbers: dict[str, Any] = {
        "browser": check.get("browser"),
        "wave": f"{check.get('streams_per_wave')} EventSources opened at once, "
        f"{params.get('tokens')} tokens {params.get('gap_ms')} ms apart "
        f"(one stream ≈ {stream_ms:.0f} ms)",
    }
    for label, w in (("HTTP/1.1 (HTTP/2 disabled)", h1), ("HTTP/2", h2)):
        numbers[label] = w.get("error") or _wave_text(w)
    per_conn = {
        label: num(get(w, "access", "streams_per_connection_mean"))
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
        verdict = "inconclusive: a browser wave failed"
        return claim("C7", INCONCLUSIVE, verdict, rule, numbers, scenario)
    n = int(num(h2.get("streams")) or 0)
    h2_mux = (
        num(h2.get("max_open_at_once")) == n
        and num(get(h2, "access", "connections")) == 1
        and _waits(h2, stream_ms) is False
        and num(h2.get("completed")) == n
    )
    h1_limited = (num(h1.get("max_open_at_once")) or 0) <= BROWSER_H1_LIMIT < int(
        num(h1.get("streams")) or 0
    ) and _waits(h1, stream_ms) is True
    if not h2_mux:
        return claim("C7", DOES_NOT_HOLD, DOES_NOT_HOLD, rule, numbers, scenario)
    if not h1_limited:
        verdict = "inconclusive: HTTP/2 multiplexed, but the HTTP/1.1 wave showed no limit"
        return claim("C7", INCONCLUSIVE, verdict, rule, numbers, scenario)
    verdict = (
        f"holds: over HTTP/1.1 the browser kept {num(h1.get('max_open_at_once')):.0f} streams "
        f"open and the rest waited; over HTTP/2 all {n} shared one connection"
    )
    return claim("C7", HOLDS, verdict, rule, numbers, scenario)
