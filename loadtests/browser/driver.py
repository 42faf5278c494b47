"""One phase in Chromium pages: the browser load generator's main loop (asyncio).

1. read the phase (core.scenario.PhaseConfig from $SSEVSWS_PHASE); lay out its users
   (`layout`): pages of `browser.users_per_page` users, host names to shard over;
2. start the page server (`pageserver`) and Chromium (Debian's; `chromium`: steered at the
   browser level only, no DevTools client on the pages), one browser context per page (its
   own connection pools); the harness talks to each page over its control socket;
3. per page: measure the page clock's resolution and map it onto the harness clock
   (`core.clock_sync`, WebSocket round trips to the page server), then start its users at
   one common instant;
4. every `DRAIN_S` collect finished streams and closed connections from every page, map
   their times, and write them through the same part writer as Locust
   (`loadtests.recording.RunFolderSink`); sample the browser's processes every
   `SAMPLE_S` (`procsample`);
5. at the end of the run time stop the users (streams in flight finish), after
   `stop_timeout_s` end what is left (``stopped``); map the clocks again (drift check);
   write what the manifest keeps under ``browser_load.<phase>``; print a Locust-style
   summary (the runner checks its count against the rows on disk).

Exit codes as Locust's: 0 every stream ended ok / cancelled / stopped, 1 some failed
(error, timeout, dropped, aborted) — the data is still good —, 2 a usage or phase-config
error, 3 the browser or a page could not run (or the harness failed: the traceback is in
the log), core.scenario.EXIT_WRITER_FAILED when a record write failed (the phase stops at
once, the line the runner looks for is printed). Like a Locust worker it checks in and
out under the manifest's ``record_writers``. SIGTERM / SIGINT end the phase at once (streams in
flight are recorded as stopped) and everything received is flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.accounting import CANCELLED, OK, STOPPED
from core.arms import get_arm
from core.browser import find_chromium
from core.clock_sync import ClockMap, ClockSyncError, drift_ns, estimate, samples_from_rows
from core.runfolder import modify_manifest
from core.scenario import EXIT_WRITER_FAILED, PhaseConfig, Scenario
from loadtests.browser.chromium import Chromium, ChromiumError
from loadtests.browser.clients import CLIENTS, client_code
from loadtests.browser.layout import (
    WORKER_INDEX,
    PageUser,
    host_rules,
    layout,
    pages_of,
    users_target,
)
from loadtests.browser.pageserver import PageChannel, PageError, PageServer
from loadtests.browser.procsample import ProcessSampler
from loadtests.browser.records import (
    PhaseLabels,
    connection_account,
    page_stream_template,
    stream_account,
)
from loadtests.recording import RunFolderSink, writer_id

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_BROWSER = 0, 1, 2, 3
DRAIN_S = 0.5
SAMPLE_S = 1.0
CLOCK_SAMPLES = 40
START_MARGIN_S = 0.3  # every page gets its start call before the common t0
FLUSH_S = 2.0


class BrowserFailed(RuntimeError):
    """Chromium or a page could not do its part (message says which)."""


@dataclass
class PageState:
    index: int
    ch: PageChannel
    users: list[PageUser]
    clock: ClockMap | None = None
    clock_after: ClockMap | None = None
    resolution_ms: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    inflight: int = 0


@dataclass
class Totals:
    streams: Counter[str] = field(default_factory=Counter)
    tokens: int = 0
    connections: int = 0
    page_errors: list[str] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return sum(n for o, n in self.streams.items() if o not in (OK, CANCELLED, STOPPED))


def page_config(cfg: PhaseConfig, s: Scenario, client: str) -> dict[str, Any]:
    """What harness.js's init() takes."""
    b = s.behaviour
    return {
        "client": client,
        "phase": cfg.phase,
        "phase_seed": cfg.seed,
        "worker_index": WORKER_INDEX,
        "stream": page_stream_template(s.stream),
        "session": {"turns": s.session.turns, "sessions_per_user": s.session.sessions_per_user},
        "behaviour": {
            "cancel_after": b.cancel_after,
            "cancel_mode": b.cancel_mode,
            "client_abort_after": b.client_abort_after,
            "resume": b.resume,
            "max_reconnects": b.max_reconnects,
            "stream_timeout_s": b.stream_timeout_s,
        },
    }


class BrowserPhase:
    """Runs one phase; `run()` returns the exit code."""

    def __init__(self, cfg: PhaseConfig, out: Callable[[str], None] = print) -> None:
        self.cfg = cfg
        self.s = cfg.scenario_obj()
        self.arm = get_arm(cfg.arm)
        if not self.arm.is_browser or self.arm.client not in CLIENTS:
            raise ValueError(f"arm {cfg.arm!r} is not a browser arm")
        self.client = CLIENTS[self.arm.client]
        self.out = out
        self.worker = writer_id()
        columns = cfg.phase_columns()
        self.labels = PhaseLabels(
            cfg.phase, cfg.arm, self.worker, cfg.seed, WORKER_INDEX, **columns
        )
        self.users = layout(
            self.s, phase=cfg.phase, arm=cfg.arm, worker=self.worker, seed=cfg.seed, url=cfg.url
        )
        self.sink = RunFolderSink(cfg.run_dir, self.worker, on_error=self._writer_failed)
        self.sampler = ProcessSampler(cfg.phase, cfg.arm, columns)
        self.pages: list[PageState] = []
        self.totals = Totals()
        self.t0_ns = 0
        self.stop_now = asyncio.Event()
        self.writer_error: str | None = None
        self.flags: list[str] = []
        self.versions: dict[str, str] = {}

    # ------------------------------------------------------------------ records
    def _target(self, t_send_ns: int | None) -> int | None:
        if t_send_ns is None or not self.t0_ns:
            return None
        return users_target(self.s.load, (t_send_ns - self.t0_ns) / 1e6)

    def _take(self, st: PageState, got: dict[str, Any]) -> None:
        assert st.clock is not None
        for rec in got["streams"]:
            acct = stream_account(
                rec,
                self.labels,
                self.s.stream,
                st.clock,
                self._target,
                sees_framing=self.client.sees_framing,
            )
            self.sink.stream(acct)
            self.totals.streams[acct.outcome or "?"] += 1
            self.totals.tokens += acct.n_received
        for rec in got["conns"]:
            self.sink.connection(
                connection_account(
                    rec, self.labels, st.clock, sees_framing=self.client.sees_framing
                )
            )
            self.totals.connections += 1
        for err in got["errors"]:
            self._page_error(st, err)
        st.inflight = int(got["inflight"])

    def _page_error(self, st: PageState, err: str) -> None:
        text = f"page {st.index}: {err}"
        self.totals.page_errors.append(text)
        if len(self.totals.page_errors) <= 20:
            self.out(f"  {text}")

    async def _drain(self) -> int:
        for st in self.pages:
            self._take(st, await st.ch.call("drain"))
            while st.ch.errors:
                self._page_error(st, st.ch.errors.pop(0))
        return sum(st.inflight for st in self.pages)

    # ------------------------------------------------------------------ browser
    async def _open_page(
        self, browser: Chromium, server: PageServer, i: int, users: list[PageUser]
    ) -> PageState:
        await browser.open_page(server.page_url(i))
        st = PageState(i, await server.channel(i), users)
        st.info = await st.ch.call("init", page_config(self.cfg, self.s, self.client.name))
        st.resolution_ms = float(await st.ch.call("resolution"))
        st.clock = await self._sync(st, server)
        return st

    async def _sync(self, st: PageState, server: PageServer) -> ClockMap:
        rows = await st.ch.call("clockSync", server.clock_url, CLOCK_SAMPLES)
        res_ns = round((st.resolution_ms or 0.0) * 1e6)
        return estimate(samples_from_rows(rows), resolution_ns=res_ns)

    async def _start(self) -> None:
        self.t0_ns = time.monotonic_ns() + int(START_MARGIN_S * 1e9)
        for st in self.pages:
            assert st.clock is not None
            users = [u.to_page() for u in st.users]
            await st.ch.call("start", st.clock.to_page_ms(self.t0_ns), users)

    def _sample(self, inflight: int) -> None:
        for row in self.sampler.sample(inflight):
            self.sink.resource(row)

    async def _pump(self, until_ns: int, *, stop_when_idle: bool = False) -> int:
        """Drain and sample until `until_ns` (or a signal; or no stream in flight)."""
        inflight = sum(st.inflight for st in self.pages)
        next_sample = next_flush = time.monotonic_ns()
        while time.monotonic_ns() < until_ns and not self.stop_now.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_now.wait(), DRAIN_S)
            inflight = await self._drain()
            now = time.monotonic_ns()
            if now >= next_sample:
                self._sample(inflight)
                next_sample = now + int(SAMPLE_S * 1e9)
            if now >= next_flush:
                self.sink.flush()
                next_flush = now + int(FLUSH_S * 1e9)
            if stop_when_idle and inflight == 0:
                break
        return inflight

    async def _phase(self, browser: Chromium, server: PageServer) -> None:
        for i, users in sorted(pages_of(self.users).items()):
            self.pages.append(await self._open_page(browser, server, i, users))
        self._sample(0)  # idle: pages open, no stream yet
        await self._start()
        load = self.s.load
        self.out(
            f"browser phase {self.cfg.phase}: {len(self.users)} users in {len(self.pages)} "
            f"page(s), {load.run_s} s, client {self.client.name}"
        )
        await self._pump(self.t0_ns + int(load.run_s * 1e9))
        for st in self.pages:
            await st.ch.call("stop")
        deadline = time.monotonic_ns() + int(load.stop_timeout_s * 1e9)
        left = await self._pump(deadline, stop_when_idle=True)
        if left:
            self.out(f"  {left} stream(s) still in flight after the stop timeout: stopped")
        await self._finish_pages()
        for st in self.pages:  # the clocks again: did they keep in step?
            with contextlib.suppress(ClockSyncError):
                st.clock_after = await self._sync(st, server)

    async def _finish_pages(self) -> None:
        for st in self.pages:
            await st.ch.call("hardStop")
        await asyncio.sleep(0.05)  # let the aborted streams' handlers run
        for st in self.pages:
            await st.ch.call("closeOpenConns")
        await self._drain()
        self._sample(0)

    async def _run_browser(self) -> None:
        chromium = find_chromium()
        if chromium is None:
            raise BrowserFailed("chromium not found")
        server = await PageServer.start()
        try:
            try:
                browser = await Chromium.launch(
                    chromium, host_rules(self.cfg.url, self.s.browser.users_per_host)
                )
            except ChromiumError as exc:
                raise BrowserFailed(str(exc)) from exc
            self.flags = browser.flags
            self.versions = {"chromium": browser.version, "executable": str(chromium)}
            try:
                await self._phase(browser, server)
            except (ChromiumError, PageError) as exc:
                raise BrowserFailed(f"page failed: {exc}") from exc
            finally:
                if self.stop_now.is_set() and self.pages:
                    with contextlib.suppress(Exception):
                        await self._finish_pages()
                await browser.close()
        finally:
            await server.stop()

    # ------------------------------------------------------------------ manifest
    def record(self) -> dict[str, Any]:
        """What the manifest keeps of this phase (``browser_load.<phase>``)."""
        pages = []
        for st in self.pages:
            entry: dict[str, Any] = {
                "page": st.index,
                "users": len(st.users),
                "hosts": sorted({u.host for u in st.users}),
                "resolution_ms": st.resolution_ms,
                "cross_origin_isolated": st.info.get("cross_origin_isolated"),
                "time_origin_ms": st.info.get("time_origin"),
                "clock": st.clock.to_dict() if st.clock else None,
                "clock_after": st.clock_after.to_dict() if st.clock_after else None,
            }
            if st.clock and st.clock_after:
                entry["clock_drift_ns"] = drift_ns(st.clock, st.clock_after)
            pages.append(entry)
        half = [p["clock"]["half_width_ns"] for p in pages if p["clock"]]
        drifts = [abs(p["clock_drift_ns"]) for p in pages if "clock_drift_ns" in p]
        return {
            "client": client_code(self.client.name),
            "browser": {**self.versions, "flags": self.flags},
            "user_agent": self.pages[0].info.get("user_agent") if self.pages else None,
            "users": len(self.users),
            "users_per_page": self.s.browser.users_per_page,
            "users_per_host": self.s.browser.users_per_host,
            "pages": pages,
            "clock": {
                "page_clock": "performance.timeOrigin + performance.now() (ms), read in each "
                "event handler",
                "method": f"{CLOCK_SAMPLES} WebSocket round trips page -> harness per page, "
                "before and after the load; offset = middle of the intersection of the "
                "round trips' bounds (core.clock_sync), mapped with the 'before' estimate",
                "half_width_ns_max": max(half) if half else None,
                "drift_ns_max": max(drifts) if drifts else None,
            },
            "streams": dict(self.totals.streams),
            "tokens": self.totals.tokens,
            "connections": self.totals.connections,
            "connections_note": (
                "one row per WebSocket"
                if self.client.protocol == "ws"
                else "one row per HTTP request: the TCP connection under a request is not "
                "visible to a page; bytes_in are the response body bytes (fetch) or the "
                "event data (EventSource)"
            ),
            "page_errors": self.totals.page_errors[:50],
            "page_errors_total": len(self.totals.page_errors),
            "stopped_by_signal": self.stop_now.is_set(),
        }

    def _client_settings(self) -> dict[str, Any]:
        c = self.client
        return {
            "protocol": c.protocol,
            "library": f"Chromium {self.versions.get('chromium', '?')}: {c.api}",
            "load_generator": "browser (loadtests/browser)",
            "method": c.method,
            "timestamps": "page clock in each event handler, mapped onto time.monotonic_ns() "
            "(manifest browser_load.<phase>.clock)",
            "resume": self.s.behaviour.resume and c.resumes,
            "resume_wait_ms": self.s.server.retry_ms if c.name == "browser-eventsource" else 0,
        }

    def _writers(self, m: dict[str, Any]) -> dict[str, Any]:
        """This phase's record writers in the manifest (the runner fails a phase whose
        writer checked in and never out: its process died with records unflushed)."""
        writers = m.setdefault("record_writers", {}).setdefault(self.cfg.phase, {})
        return writers.setdefault(self.worker, {})

    def _check_in(self) -> None:
        def apply(m: dict[str, Any]) -> None:
            self._writers(m).update(pid=os.getpid(), closed=False)

        modify_manifest(self.cfg.run_dir, apply)

    def _writer_failed(self, error: str) -> None:
        """A record write failed (a full disk…): records can no longer be kept, so the
        phase stops now, and the exit code says why (as Locust's does)."""
        self.writer_error = error
        self.out(f"ssevsws: record writer {self.worker} failed, stopping the phase: {error}")
        self.stop_now.set()

    def _write_manifest(self) -> None:
        record, settings = self.record(), self._client_settings()
        sink = self.sink
        out = {
            "closed": True,
            "streams_written": sink.streams_written,
            "streams_lost": sink.streams_lost,
            "error": sink.error,
        }

        def apply(m: dict[str, Any]) -> None:
            m.setdefault("client", {})[self.cfg.phase] = settings
            m.setdefault("browser_load", {})[self.cfg.phase] = record
            self._writers(m).update(out)

        modify_manifest(self.cfg.run_dir, apply)

    def summary_lines(self) -> list[str]:
        """A Locust-like request table: the runner counts the `stream` rows."""
        kind = self.client.protocol.upper()
        lines = ["Type     Name                # reqs      # fails |"]
        for outcome, n in sorted(self.totals.streams.items()):
            name = "stream" if outcome == OK else f"stream ({outcome})"
            fails = 0 if outcome in (OK, CANCELLED, STOPPED) else n
            lines.append(f"{kind:<8} {name:<20} {n:>7} {fails:>7}(0.00%) |")
        lines.append(f"tokens {self.totals.tokens}, connections {self.totals.connections}")
        return lines

    # ------------------------------------------------------------------ run
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_now.set)
        code = EXIT_OK
        try:
            self._check_in()
            await self._run_browser()
        except BrowserFailed as exc:
            self.out(f"browser load generator: {exc}")
            code = EXIT_BROWSER
        except Exception:  # a bug: say so loudly, keep what was recorded, fail the phase
            self.out(traceback.format_exc())
            code = EXIT_BROWSER
        finally:
            self.sink.close()
            with contextlib.suppress(OSError):
                self._write_manifest()
        for line in self.summary_lines():
            self.out(line)
        if self.writer_error is not None or self.sink.error is not None:
            return EXIT_WRITER_FAILED
        if code == EXIT_OK and (self.totals.failures or self.totals.page_errors):
            code = EXIT_FAILURES
        return code
