"""A real browser as the SSE client (claim C7): Debian's chromium driven by Playwright.

The "6 connections per origin" limit is a browser's, not a protocol's: over HTTP/1.1
Chromium opens at most 6 connections to one host:port, so a 7th `EventSource` waits until
one of the first six ends; over HTTP/2 every stream shares one connection and none waits.
A Python client has no such limit, so only a browser can show it.

`eventsource_wave(origin, n, params, http2=...)` opens `n` EventSources at the same
instant from a page of `origin` (same origin: no CORS), counts each stream's tokens and
stamps open / first token / done with `performance.now()` (the page's monotonic clock,
ms) as each event is dispatched — then closes it on `done` (an EventSource would otherwise
reconnect). HTTP/1.1 is forced with Chromium's `--disable-http2`; the TLS certificate of
the loopback proxy is self-signed, so the browser context ignores HTTPS errors (and only
loopback URLs are accepted). `wave_summary` turns the stamps into the C7 figures: the
most streams open at once, and TTFT of the first six streams vs the rest.

`browser_available()` (core.browser, shared with the browser load generator) says why not
when chromium or Playwright is missing: the caller skips with that reason, never fakes a
browser.
"""

from __future__ import annotations

import ipaddress
import json
import statistics
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from core.browser import (
    BROWSER_H1_LIMIT,
    CHROMIUM_FLAGS,
    ENV_CHROMIUM,
    INSTALL_HINT,
    browser_available,
    find_chromium,
)

__all__ = [
    "BROWSER_H1_LIMIT",
    "BROWSER_MARK",
    "CHROMIUM_FLAGS",
    "ENV_CHROMIUM",
    "WAVES",
    "WAVE_STREAMS",
    "BrowserError",
    "browser_available",
    "browser_check",
    "eventsource_wave",
    "find_chromium",
    "max_concurrent",
    "wave_summary",
    "with_access",
]


class BrowserError(RuntimeError):
    """The browser could not be started or the page failed (message says which)."""


def _check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = host == "localhost"
    if not ok:
        raise ValueError(f"browser URLs must be loopback, got {url!r}")


# The page script: n EventSources opened in the same task, one record each.
_WAVE_JS = """
async ({target, prefix, n, timeoutMs}) => {
  const t0 = performance.now();
  const rows = [];
  const one = (i) => new Promise((resolve) => {
    const r = {i, open_ms: null, first_ms: null, done_ms: null, tokens: 0, error: null};
    rows.push(r);
    const es = new EventSource(target + "&stream=" + prefix + i);
    const end = (err) => { if (err) r.error = err; es.close(); resolve(); };
    const timer = setTimeout(() => end("timeout"), timeoutMs);
    es.onopen = () => { r.open_ms = performance.now() - t0; };
    es.onmessage = () => {
      if (r.first_ms === null) r.first_ms = performance.now() - t0;
      r.tokens += 1;
    };
    es.addEventListener("done", () => {
      r.done_ms = performance.now() - t0; clearTimeout(timer); end(null);
    });
    es.onerror = () => { clearTimeout(timer); end(r.done_ms === null ? "error" : null); };
  });
  await Promise.all(Array.from({length: n}, (_, i) => one(i)));
  return rows.sort((a, b) => a.i - b.i);
}
"""


def eventsource_wave(
    origin: str,
    n: int,
    params: dict[str, Any],
    *,
    http2: bool,
    stream_prefix: str = "browser-",
    timeout_s: float = 30.0,
) -> list[dict[str, Any]]:
    """Open `n` EventSources to `origin`/v1/stream at once in a real Chromium; one row per
    stream: i, open_ms, first_ms, done_ms (ms after the wave started), tokens, error.
    Stream ids are `stream_prefix` + i (so the proxy's log can tell the wave's requests)."""
    _check_loopback(origin)
    if not 1 <= n <= 200:
        raise ValueError(f"n must be 1..200, got {n}")
    chromium = find_chromium()
    if chromium is None:
        raise BrowserError(f"chromium not found: {INSTALL_HINT}")
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    flags = [*CHROMIUM_FLAGS, *(() if http2 else ("--disable-http2",))]
    target = f"{origin}/v1/stream?{urlencode(params)}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(chromium), args=flags)
            try:
                ctx = browser.new_context(ignore_https_errors=True)
                page = ctx.new_page()
                page.set_default_timeout(timeout_s * 1000)
                page.goto(f"{origin}/healthz")  # any page of the origin: same-origin streams
                args = {"target": target, "prefix": stream_prefix, "n": n}
                return page.evaluate(_WAVE_JS, {**args, "timeoutMs": timeout_s * 1000})
            finally:
                browser.close()
    except PlaywrightError as e:
        raise BrowserError(f"chromium via playwright failed: {e}") from e


def max_concurrent(rows: list[dict[str, Any]]) -> int:
    """The most streams open at the same time ([open_ms, done_ms] intervals; a stream that
    never opened does not count, one that never finished stays open)."""
    edges: list[tuple[float, int]] = []
    for r in rows:
        if r.get("open_ms") is None:
            continue
        edges.append((float(r["open_ms"]), 1))
        end = r.get("done_ms")
        edges.append((float(end) if end is not None else float("inf"), -1))
    best = cur = 0
    for _, d in sorted(edges, key=lambda e: (e[0], e[1])):  # closes before opens at a tie
        cur += d
        best = max(best, cur)
    return best


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def wave_summary(rows: list[dict[str, Any]], *, limit: int = BROWSER_H1_LIMIT) -> dict[str, Any]:
    """C7's browser figures: streams, completed, errors, max open at once, TTFT p50 of the
    first `limit` streams to get a token vs the rest (the rest wait for a free connection
    over HTTP/1.1), and E2E p50."""
    done = [r for r in rows if r.get("done_ms") is not None and not r.get("error")]
    firsts = sorted(float(r["first_ms"]) for r in rows if r.get("first_ms") is not None)
    return {
        "streams": len(rows),
        "completed": len(done),
        "errors": sum(1 for r in rows if r.get("error")),
        "tokens": sum(int(r.get("tokens") or 0) for r in rows),
        "max_open_at_once": max_concurrent(rows),
        "ttft_ms_p50_first": _median(firsts[:limit]),
        "ttft_ms_p50_rest": _median(firsts[limit:]),
        "e2e_ms_p50": _median([float(r["done_ms"]) for r in done]),
    }


#: EventSources per wave in a run's browser check: twice the HTTP/1.1 limit, so half wait.
WAVE_STREAMS = 2 * BROWSER_H1_LIMIT
#: wave label → (forced HTTP/2?, stream-id prefix the proxy's access log shows)
WAVES = {"http/1.1": (False, "browser-h1-"), "h2": (True, "browser-h2-")}
#: In a request target: a browser-check stream (kept out of the load phase's figures).
BROWSER_MARK = "stream=browser-"


def browser_check(
    https_origin: str,
    params: dict[str, Any],
    workdir: Path,
    *,
    n: int = WAVE_STREAMS,
) -> dict[str, Any]:
    """C7 in a run: one wave over HTTP/1.1 and one over HTTP/2 through the same TLS origin.

    Writes every stream's stamps to `<workdir>/browser.json` and returns, per wave, its
    `wave_summary` and the stream-id prefix (`with_access` later adds what the proxy's
    access log says of those requests). Never raises for a missing browser or a failed
    page: the record says ``skipped`` / ``error`` with the reason instead.
    """
    ok, why = browser_available()
    if not ok:
        return {"skipped": why}
    waves: dict[str, Any] = {}
    rows_all: dict[str, Any] = {}
    for label, (http2, prefix) in WAVES.items():
        try:
            rows = eventsource_wave(https_origin, n, params, http2=http2, stream_prefix=prefix)
        except (BrowserError, ValueError) as e:
            waves[label] = {"error": str(e), "prefix": prefix}
            continue
        rows_all[label] = rows
        waves[label] = {"prefix": prefix, **wave_summary(rows)}
    (workdir / "browser.json").write_text(json.dumps(rows_all, indent=1))
    return {"browser": why, "streams_per_wave": n, "params": dict(params), "waves": waves}


def with_access(check: dict[str, Any], access_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """`check` with each wave's access-log summary (its requests by stream-id prefix):
    TCP connections used, streams per connection, protocol — nginx's side of C7."""
    from bench.nginx_logs import summarize_access_log

    out = {**check, "waves": {k: dict(v) for k, v in (check.get("waves") or {}).items()}}
    for wave in out["waves"].values():
        mine = [r for r in access_rows if f"stream={wave['prefix']}" in str(r["target"])]
        wave["access"] = summarize_access_log(mine)
    return out
