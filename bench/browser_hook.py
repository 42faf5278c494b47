"""The browser's phase hooks.

`BrowserLoadHook`: a phase of a browser arm (core.arms, ``Arm.is_browser``) is run by the
browser load generator (loadtests/browser) instead of Locust; without chromium its
`unavailable()` says why, so the runner records the phase as skipped with that reason —
never faked, never run by another client.

`BrowserHook`, the browser check of claim C7: after the load, a real Chromium opens a
wave of EventSources over HTTP/1.1 and one over HTTP/2 through the path's TLS listener
(SSE phases of a `[proxy]` variant with ``http2 = true``; `bench.browser`).

Its record extends the phase's ``proxy`` record: ``browser`` (per wave: the page's stamps
summarised, plus what the proxy's access log says of the wave's requests) and
``logs.browser`` (every stream's stamps, ``nginx/<phase>/browser.json``). Its requests
carry `BROWSER_MARK`, so the proxy's own figures leave them out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.browser import BROWSER_MARK, WAVE_STREAMS, browser_check, with_access
from bench.hooks import HookContext, PhaseHook, Target, register
from bench.nginx_logs import read_access_log
from core.browser import chromium_available

if TYPE_CHECKING:
    from bench.plan import PhasePlan
    from core.scenario import Scenario


@register
class BrowserHook(PhaseHook):
    name = "browser"
    role = "browser"
    order = 1000  # outermost: it only probes, after the load
    record_key = "proxy"
    probe_mark = BROWSER_MARK

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.check: dict[str, Any] | None = None
        self._workdir_kind = "nginx"  # its stamps sit beside the proxy's logs

    @classmethod
    def for_phase(cls, plan: PhasePlan, scenario: Scenario) -> BrowserHook | None:
        variant = plan.nginx
        if variant is None or not variant.http2 or plan.arm.protocol != "sse":
            return None
        if not plan.arm.reference:
            return None
        return cls(scenario)

    def after_load(self, ctx: HookContext, target: Target) -> None:
        if not target.https_url:
            return
        st = self.scenario.stream
        params = {
            "seed": self.scenario.seed,
            "tokens": st.tokens,
            "ttft_ms": st.ttft_ms,
            "gap_ms": st.gap_ms,
        }
        ctx.out(f"  browser check (C7): {WAVE_STREAMS} EventSources over HTTP/1.1 and HTTP/2")
        check = browser_check(target.https_url, params, ctx.dir(self._workdir_kind))
        if "skipped" in check:
            ctx.warn(f"browser check skipped: {check['skipped']}")
        for label, w in (check.get("waves") or {}).items():
            if "error" in w:
                ctx.warn(f"browser check {label}: {w['error']}")
            else:
                ctx.out(
                    f"    {label}: at most {w['max_open_at_once']} of {w['streams']} open at "
                    f"once, TTFT p50 first 6 / rest {w['ttft_ms_p50_first']:.0f} / "
                    f"{w['ttft_ms_p50_rest']:.0f} ms"
                )
        self.check = check

    def records(self, ctx: HookContext, target: Target) -> dict[str, Any]:
        if self.check is None:
            return {}
        access = read_access_log(target.access_log) if target.access_log else []
        rec: dict[str, Any] = {"browser": with_access(self.check, access)}
        if "skipped" not in self.check:
            browser_json = ctx.dir(self._workdir_kind) / "browser.json"
            rec["logs"] = {"browser": ctx.rel(browser_json)}
        return rec


@register
class BrowserLoadHook(PhaseHook):
    """Skips a browser arm's phase (with the reason) when no browser can run it."""

    name = "browser-load"
    role = "browser-load"
    order = 1001

    @classmethod
    def for_phase(cls, plan: PhasePlan, scenario: Scenario) -> BrowserLoadHook | None:
        return cls() if plan.arm.arm.is_browser else None

    def unavailable(self) -> str | None:
        ok, why = chromium_available()
        return None if ok else f"browser arm: {why}"
