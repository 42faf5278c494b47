"""The phase loop behind `ssevsws run`: servers, Locust, sampler, manifest — one run folder.

For rep in 1..R, for arm in the scenario's arms (interleaved A B A B, DESIGN pitfall 10):

1. start that arm's reference server as a fresh subprocess (``python -m servers KIND
   --port 0``; bench never imports servers) and wait for its announced port and /healthz
   — or use the user's own server URL (``--sse-url`` / ``--ws-url``);
2. write the phase's `PhaseConfig` to ``phases/<phase>.json`` and run Locust headless as a
   subprocess with ``SSEVSWS_PHASE`` pointing at it; its workers write the records;
3. sample server and Locust processes (bench.sampler) while it runs; bound it by a hard
   wall-clock timeout (run time + stop timeout + margin);
4. scrape the reference server's /metrics into server_metrics.json, stop the server;
5. pause, and wait out a pile of TIME_WAIT sockets before the next phase (pitfall 14).

Every child runs in its own session and is stopped by PID / its own process group. On
Ctrl-C, SIGTERM or a crash the children are stopped (Locust first, so its workers flush),
the sampler is flushed, and the manifest says ``incomplete`` with the reason; everything
written so far stays readable. A run never reuses a folder (core.runfolder).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.browser import BROWSER_MARK, WAVE_STREAMS, browser_check, with_access
from bench.hostcheck import (
    TIME_WAIT_LIMIT,
    TIME_WAIT_MAX_WAIT_S,
    raise_nofile_limit,
    time_wait_count,
)
from bench.nginx import (
    NginxError,
    NginxProcess,
    nginx_available,
    read_access_log,
    summarize_closes,
)
from bench.nginx import summarize_access_log as _access_summary
from bench.plan import (
    FOREIGN,
    REPO,
    Arm,
    PhasePlan,
    child_env,
    locust_command,
    locustfile,
    phase_timeout_s,
    plan_phases,
    plan_suite,
    run_seconds,
    server_command,
)
from bench.procs import LOOPBACK, Child, ProcessError, http_get, spawn, wait_for_listening
from bench.procs import wait_http_ok as _wait_http_ok
from bench.report import format_summary, phase_summary
from bench.sampler import DEFAULT_INTERVAL_S, ResourceSampler
from bench.scrape import locust_stream_count, parse_metrics, server_info
from core.runfolder import (
    mark_complete,
    mark_incomplete,
    modify_manifest,
    read_table,
    start_run,
    update_manifest,
    write_json,
)
from core.scenario import PHASE_ENV, PhaseConfig, Scenario

EXIT_FAILED = 1
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


# --------------------------------------------------------------------------- the run


class Terminated(BaseException):
    """SIGTERM arrived (raised in the main thread by the signal handler)."""


@dataclass
class RunOptions:
    scenario: Scenario
    scenario_path: Path
    arms: list[Arm]
    results: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    pause_s: float = 1.0
    sample_interval_s: float = DEFAULT_INTERVAL_S
    out: Callable[[str], None] = field(default=lambda s: print(s, flush=True))
    #: A suite: several scenarios in one run folder (`scenario` is then the first one).
    suite: list[tuple[Scenario, Path]] = field(default_factory=list)
    suite_name: str | None = None
    on_phase: Callable[[str, dict[str, Any]], None] | None = None  # progress hook


def _utc_now() -> str:
    return datetime.now(UTC).isoformat()


def _arm_manifest(arm: Arm, scenario: Scenario) -> dict[str, Any]:
    if not arm.reference:
        return {
            "name": arm.name,
            "protocol": arm.protocol,
            "reference_server": False,
            "url": arm.url,
            "server": FOREIGN,
        }
    srv = scenario.server
    return {
        "name": arm.name,
        "protocol": arm.protocol,
        "reference_server": True,
        "url": None,  # a fresh loopback port every phase: see phases[].url
        "server": {
            "kind": arm.name,
            "command": server_command(arm.name, scenario),
            "host": LOOPBACK,
            "heartbeat_s": srv.heartbeat_s,
            "accel_header": srv.accel_header,
            "retry_ms": srv.retry_ms,
            "ws_compression": srv.ws_compression if arm.protocol == "ws" else None,
            "keepalive": "server default, not set by bench" if arm.protocol == "sse" else None,
            "fresh_process_per_phase": True,
        },
    }


class Runner:
    """One `ssevsws run`: owns the run folder, the children and the sampler."""

    def __init__(self, opts: RunOptions) -> None:
        self.o = opts
        self.s = opts.scenario
        if opts.suite:
            self.plans = plan_suite([sc for sc, _ in opts.suite], opts.arms)
        else:
            self.plans = plan_phases(self.s, opts.arms)
        self.run_dir: Path | None = None
        self.children: list[Child] = []
        self.sampler: ResourceSampler | None = None
        self.server_metrics: dict[str, Any] = {}
        self.current: PhasePlan | None = None
        self._locust_log: Path | None = None  # of the current phase
        self._stopping = False
        self._holding = False  # a child is being started: hold signals until it is registered
        self._held: int | None = None
        self.failed: list[str] = []
        self.nginx: NginxProcess | None = None  # the current phase's proxy, if any
        self.proxy_records: dict[str, Any] = {}  # phase → proxy record (proxy.json)
        self._nginx_ok: tuple[bool, str] | None = None

    # ------------------------------------------------------------------ signals
    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT → KeyboardInterrupt, SIGTERM → Terminated, raised in the main thread —
        but never between starting a child and registering it (it would be orphaned):
        a signal arriving then is held and raised right after."""

        def handler(signum: int, _frame: Any) -> None:
            if self._stopping:
                self.o.out("(already stopping: children are being stopped by PID)")
                return
            if self._holding:
                self._held = signum
                return
            self._raise(signum)

        old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, h in old.items():
                signal.signal(sig, h)

    def _raise(self, signum: int) -> None:
        self._stopping = True
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signum)

    # ------------------------------------------------------------------ manifest
    def _manifest(self, limits: dict[str, Any]) -> dict[str, Any]:
        s = self.s
        foreign = [a.name for a in self.o.arms if not a.reference]
        return {
            "tool": "ssevsws run",
            "command": {"argv": self.o.argv, "cwd": os.getcwd()},
            "scenario": s.to_dict(),
            "scenario_source": str(self.o.scenario_path),
            "overrides": {k: v for k, v in self.o.overrides.items() if v is not None},
            "seeds": {
                "scenario": s.seed,
                "rule": "phase seed = scenario seed + (rep - 1) * 1000, same for every arm",
                "phases": {p.name: p.seed for p in self.plans},
            },
            "arms": [_arm_manifest(a, s) for a in self.o.arms],
            "order": [p.name for p in self.plans],
            "phases": [],
            "server_side": (
                {
                    "server_resources": FOREIGN,
                    "server_metrics": FOREIGN,
                    "server_stamps": "as sent by the foreign server (t_server_ns), if any",
                    "arms": foreign,
                }
                if foreign
                else {"server_resources": "measured", "server_metrics": "measured"}
            ),
            "load_generator": {
                "tool": "locust",
                "locustfile": str(locustfile()),
                "processes": s.load.processes,
                "run_s": run_seconds(s),
                "stop_timeout_s": math.ceil(s.load.stop_timeout_s),
                "hard_timeout_s": phase_timeout_s(s),
                "shape": "ramp_steps (LoadTestShape)" if s.load.ramp_steps else "fixed users",
                "client_settings": "per phase under `client` (written by the Locust workers)",
            },
            "sampler": {
                "interval_s": self.o.sample_interval_s,
                "roles": {
                    "server": "reference server process (bench sampler)",
                    "master": "Locust master of --processes N (bench sampler)",
                    "loadgen": "Locust process running users, seen from outside (bench sampler)",
                    "client": "Locust process sampling itself (loadtests)",
                    "nginx": "nginx master and worker of a proxy phase (bench sampler)",
                },
            },
            "limits": {"nofile": limits, "time_wait_limit": TIME_WAIT_LIMIT},
            "warnings": [],
            **(
                {
                    "suite": {
                        "name": self.o.suite_name,
                        "scenarios": [sc.to_dict() for sc, _ in self.o.suite],
                        "sources": [str(src) for _, src in self.o.suite],
                        "note": "`scenario` and `load_generator` describe the first scenario; "
                        "each phase entry names its own scenario and server command",
                    }
                }
                if self.o.suite
                else {}
            ),
        }

    def _add_phase(self, entry: dict[str, Any]) -> None:
        assert self.run_dir is not None

        def apply(m: dict[str, Any]) -> None:
            m.setdefault("phases", []).append(entry)

        modify_manifest(self.run_dir, apply)

    def _update_phase(self, index: int, **changes: Any) -> None:
        assert self.run_dir is not None

        def apply(m: dict[str, Any]) -> None:
            for entry in m.setdefault("phases", []):
                if entry.get("index") == index:
                    entry.update(changes)

        modify_manifest(self.run_dir, apply)

    def _warn(self, text: str) -> None:
        assert self.run_dir is not None
        self.o.out(f"warning: {text}")

        def apply(m: dict[str, Any]) -> None:
            m.setdefault("warnings", []).append(text)

        modify_manifest(self.run_dir, apply)

    # ------------------------------------------------------------------ children
    def _spawn(self, name: str, cmd: list[str], log: Path, env: dict[str, str]) -> Child:
        self._holding = True
        try:
            child = spawn(name, cmd, log_path=log, env=env, cwd=self.run_dir)
            self.children.append(child)
        finally:
            self._holding = False
        if self._held is not None:
            held, self._held = self._held, None
            self._raise(held)
        return child

    def _stop(self, child: Child, grace_s: float) -> int | None:
        if self.sampler is not None:
            self.sampler.unwatch(child.pid)
        code = child.stop(grace_s=grace_s)
        with contextlib.suppress(ValueError):
            self.children.remove(child)
        return code

    def _start_server(self, plan: PhasePlan) -> tuple[Child, str, str]:
        assert self.run_dir is not None
        cmd = server_command(plan.arm.name, _scenario(plan, self.s))
        child = self._spawn(
            f"{plan.arm.name} server",
            cmd,
            self.run_dir / "logs" / f"{plan.stem}.server.log",
            child_env(),
        )
        host, port = wait_for_listening(child, timeout_s=30)
        base = f"http://{host}:{port}"
        _wait_http_ok(f"{base}/healthz", timeout_s=20, child=child)
        url = base if plan.arm.protocol == "sse" else f"ws://{host}:{port}"
        return child, base, url

    def _scrape(self, plan: PhasePlan, base: str) -> dict[str, Any]:
        assert self.run_dir is not None
        status, text = http_get(f"{base}/metrics", timeout_s=5)
        if status != 200:
            entry: dict[str, Any] = {"error": f"/metrics answered {status}: {text[:200]}"}
        else:
            try:
                entry = parse_metrics(text)
            except Exception as exc:  # a malformed exposition must not end the run
                entry = {"error": f"unparsable /metrics: {exc}"}
        self.server_metrics[plan.name] = entry
        write_json(self.run_dir, "server_metrics.json", self.server_metrics)
        return {"server_info": server_info(text)} if status == 200 else {}

    # ------------------------------------------------------------------ one phase
    def _wait_time_wait(self) -> int | None:
        tw = time_wait_count()
        if tw is None or tw <= TIME_WAIT_LIMIT:
            return tw
        self.o.out(f"  {tw} sockets in TIME_WAIT (> {TIME_WAIT_LIMIT}); waiting for them to clear")
        deadline = time.monotonic() + TIME_WAIT_MAX_WAIT_S
        while time.monotonic() < deadline:
            time.sleep(2)
            tw = time_wait_count()
            if tw is None or tw <= TIME_WAIT_LIMIT:
                break
        return tw

    def _phase_streams(self, phase: str) -> tuple[dict[str, int], int, int]:
        """(stream rows per worker, rows, distinct stream_uids) of `phase`, from disk."""
        assert self.run_dir is not None
        s = read_table(self.run_dir, "streams", columns=["phase", "worker", "stream_uid"])
        s = s[s["phase"].astype(object) == phase]
        counts = s["worker"].astype(object).value_counts()
        by_worker = {str(k): int(v) for k, v in counts.items()}
        return by_worker, len(s), int(s["stream_uid"].nunique())

    def _hook(self, event: str, **info: Any) -> None:
        if self.o.on_phase is not None:
            with contextlib.suppress(Exception):  # a display must never break a run
                self.o.on_phase(event, info)

    def _run_phase(self, plan: PhasePlan) -> None:
        """One phase: target up, config written, Locust run and bounded, figures closed."""
        assert self.run_dir is not None and self.sampler is not None
        if plan.nginx is not None and not self._nginx_available():
            self._skip_phase(plan, f"nginx not available: {self._nginx_why()}")
            return
        tw = self._wait_time_wait()
        self.current, self._locust_log = plan, None
        self._add_phase(self._phase_entry(plan, tw))
        self.sampler.set_phase(plan.name, plan.arm.name, _phase_columns(plan, self.s))
        server, base, url = self._start_target(plan)
        cfg_path = self._write_config(plan, url)
        s = _scenario(plan, self.s)
        users = f"ramp {list(s.load.ramp_steps)}" if s.load.ramp_steps else f"{s.load.users} users"
        procs = f", {s.load.processes} processes" if s.load.processes > 1 else ""
        self.o.out(
            f"[{plan.index}/{len(self.plans)}] {plan.name} start: {url}, {users}, "
            f"{run_seconds(s)} s{procs}"
        )
        self._hook(
            "start",
            phase=plan.name,
            index=plan.index,
            total=len(self.plans),
            arm=plan.arm.name,
            users=users,
            expected_s=run_seconds(s) + PHASE_OVERHEAD_S,
            run_dir=str(self.run_dir),
        )
        locust, code, timed_out = self._run_locust(plan, cfg_path)
        t_end_ns, end_utc = time.monotonic_ns(), _utc_now()  # the load is over
        extra: dict[str, Any] = {}
        if self.nginx is not None:
            self.sampler.sample_once()
            browser = self._browser_check(plan)  # after the load, through the same nginx
            extra["proxy"] = self._stop_nginx(plan, browser=browser)
        if server is not None and base is not None:
            self.sampler.sample_once()  # the server's state at the end of the load
            extra.update(self._scrape(plan, base))
            self._stop(server, grace_s=10)
            extra["server_exit_code"] = server.popen.returncode
        self.sampler.set_phase(None, None)
        if timed_out:
            status = "timeout"
        elif code in (0, 1):
            status = "ok"  # 1 = Locust saw failed requests (streams with errors): data is good
        else:
            status = "failed"
        check = self._check_streams(plan, locust.log_path)
        self._update_phase(
            plan.index,
            status=status,
            locust_exit_code=code,
            t_end_ns=t_end_ns,
            end_utc=end_utc,
            streams=check["rows"],
            streams_by_worker=check.pop("by_worker"),
            stream_check=check,
            **extra,
        )
        if status != "ok":
            self.failed.append(f"{plan.name}: {status} (locust exit code {code})")
            self._warn(
                f"phase {plan.name} {status}: locust exit code {code}; see {locust.log_path}"
            )
        self.current = None
        workers = f" from {check['workers']} workers" if s.load.processes > 1 else ""
        self.o.out(
            f"[{plan.index}/{len(self.plans)}] {plan.name} end: {status}, "
            f"{check['rows']} streams{workers} (locust exit {code})"
        )
        self._hook("end", phase=plan.name, index=plan.index, status=status, streams=check["rows"])

    # ------------------------------------------------------------------ nginx (issue 6)
    def _nginx_available(self) -> bool:
        if self._nginx_ok is None:
            self._nginx_ok = nginx_available()
            if not self._nginx_ok[0]:
                self._warn(f"proxy phases skipped: {self._nginx_ok[1]}")
        return self._nginx_ok[0]

    def _nginx_why(self) -> str:
        return self._nginx_ok[1] if self._nginx_ok else "?"

    def _skip_phase(self, plan: PhasePlan, reason: str) -> None:
        """Record a phase that did not run (never faked): status skipped + reason."""
        self.o.out(f"[{plan.index}/{len(self.plans)}] {plan.name} SKIPPED: {reason}")
        entry = self._phase_entry(plan, None)
        entry.update(status="skipped", reason=reason, streams=0)
        self._add_phase(entry)
        self.proxy_records[plan.name] = {"variant": _variant_label(plan), "skipped": reason}
        self._write_proxy_json()
        self._hook("end", phase=plan.name, index=plan.index, status="skipped", streams=0)

    def _start_nginx(self, plan: PhasePlan, host: str, port: int) -> str:
        """nginx in front of the phase's server; returns the URL Locust uses."""
        assert self.run_dir is not None and self.sampler is not None
        variant = plan.nginx
        assert variant is not None
        upstream = f"{host}:{port}"
        sse = plan.arm.protocol == "sse"
        ng = NginxProcess(
            variant,
            upstream_sse=upstream if sse else None,
            upstream_ws=None if sse else upstream,
            workdir=self.run_dir / "nginx" / plan.stem,
        )
        self._holding = True
        try:
            self.nginx = ng.start()
        finally:
            self._holding = False
        if self._held is not None:
            held, self._held = self._held, None
            self._raise(held)
        for pid in ng.pids():
            self.sampler.watch(pid, "nginx")
        url = ng.url if sse else ng.ws_url
        self.o.out(f"  nginx {variant.name} ({variant.description or 'custom'}) at {url}")
        return url

    def _browser_check(self, plan: PhasePlan) -> dict[str, Any] | None:
        """C7: a real Chromium opens a wave of EventSources over HTTP/1.1, then over HTTP/2,
        through this phase's nginx TLS listener (SSE phases of an `http2` variant only)."""
        ng = self.nginx
        if ng is None or not ng.variant.http2 or plan.arm.protocol != "sse" or not ng.https_url:
            return None
        sc = _scenario(plan, self.s)
        st = sc.stream
        params = {"seed": sc.seed, "tokens": st.tokens, "ttft_ms": st.ttft_ms, "gap_ms": st.gap_ms}
        self.o.out(f"  browser check (C7): {WAVE_STREAMS} EventSources over HTTP/1.1 and HTTP/2")
        check = browser_check(ng.https_url, params, ng.workdir)
        if "skipped" in check:
            self._warn(f"browser check skipped: {check['skipped']}")
        for label, w in (check.get("waves") or {}).items():
            if "error" in w:
                self._warn(f"browser check {label}: {w['error']}")
            else:
                self.o.out(
                    f"    {label}: at most {w['max_open_at_once']} of {w['streams']} open at "
                    f"once, TTFT p50 first 6 / rest {w['ttft_ms_p50_first']:.0f} / "
                    f"{w['ttft_ms_p50_rest']:.0f} ms"
                )
        return check

    def _stop_nginx(self, plan: PhasePlan, browser: dict[str, Any] | None = None) -> dict[str, Any]:
        """Stop the phase's nginx (by PID) and return its record for the manifest."""
        assert self.run_dir is not None
        ng = self.nginx
        if ng is None:
            return {}
        if self.sampler is not None:
            for pid in ng.pids():
                self.sampler.unwatch(pid)
        ng.stop()
        self.nginx = None
        rec = ng.record()
        rec["variant_label"] = _variant_label(plan)
        rec["config"] = _rel(ng.conf_path, self.run_dir)
        rec["logs"] = {
            "error": _rel(ng.error_log, self.run_dir),
            "access": _rel(ng.access_log, self.run_dir),
        }
        rec["server_accel_header"] = _scenario(plan, self.s).server.accel_header
        rec["server_heartbeat_s"] = _scenario(plan, self.s).server.heartbeat_s
        rec["log_events"] = ng.log_events()
        access = read_access_log(ng.access_log)
        rec["access"] = _access_summary([r for r in access if BROWSER_MARK not in r["target"]])
        if browser is not None:
            rec["browser"] = with_access(browser, access)
            rec["logs"]["browser"] = _rel(ng.workdir / "browser.json", self.run_dir)
        # who closed which stream, from nginx's side: joined onto the client's connection
        # records by analysis.load (the client alone sees only an EOF)
        closes = ng.closes()
        write_json(ng.workdir, "closes.json", closes)
        rec["logs"]["closes"] = _rel(ng.workdir / "closes.json", self.run_dir)
        rec["closes"] = summarize_closes(closes)
        self.proxy_records[plan.name] = rec
        self._write_proxy_json()
        return rec

    def _write_proxy_json(self) -> None:
        assert self.run_dir is not None
        write_json(self.run_dir, "proxy.json", self.proxy_records)

    def _phase_entry(self, plan: PhasePlan, time_wait: int | None) -> dict[str, Any]:
        sc = _scenario(plan, self.s)
        load = sc.load
        return {
            "index": plan.index,
            "name": plan.name,
            "arm": plan.arm.name,
            "protocol": plan.arm.protocol,
            "rep": plan.rep,
            "seed": plan.seed,
            "status": "starting",
            "users": load.users,
            "spawn_rate": load.spawn_rate,
            "ramp_steps": list(load.ramp_steps),
            "scenario": sc.name,
            "group": plan.group,  # analysis' scenario: "<scenario>.<variant>" with [proxy]
            "variant": _variant_label(plan),
            "run_s": run_seconds(sc),
            "processes": load.processes,
            "reference_server": plan.arm.reference,
            "time_wait_before": time_wait,
            "t_start_ns": time.monotonic_ns(),
            "start_utc": _utc_now(),
        }

    def _start_target(self, plan: PhasePlan) -> tuple[Child | None, str | None, str]:
        """(server child, its http base, the URL Locust uses): a fresh reference server,
        or the user's own URL — whose server-side figures are then marked not measured."""
        assert self.run_dir is not None and self.sampler is not None
        if not plan.arm.reference:
            assert plan.arm.url is not None
            self._update_phase(plan.index, url=plan.arm.url, server=FOREIGN)
            self.server_metrics[plan.name] = {"not_measured": FOREIGN}
            write_json(self.run_dir, "server_metrics.json", self.server_metrics)
            return None, None, plan.arm.url
        server, base, url = self._start_server(plan)
        self.sampler.watch(server.pid, "server")
        log = _rel(server.log_path, self.run_dir)
        info = {"pid": server.pid, "command": server.cmd, "log": log, "url": url}
        self._update_phase(plan.index, url=url, server=info)
        if plan.nginx is not None:
            host, _, port = base.removeprefix("http://").rpartition(":")
            try:
                url = self._start_nginx(plan, host, int(port))
            except NginxError as exc:
                self._stop(server, grace_s=5)
                raise NginxError(f"phase {plan.name}: {exc}") from None
            self._update_phase(plan.index, url=url)
        return server, base, url

    def _write_config(self, plan: PhasePlan, url: str) -> Path:
        assert self.run_dir is not None
        cfg = PhaseConfig(
            run_dir=str(self.run_dir),
            phase=plan.name,
            arm=plan.arm.name,
            protocol=plan.arm.protocol,
            url=url,
            scenario=_scenario(plan, self.s).to_dict(),
            seed=plan.seed,
            rep=plan.rep,
            reference_server=plan.arm.reference,
            proxy=(
                None
                if plan.proxy is None
                else {
                    "variant": plan.proxy.name,
                    "nginx": None if plan.nginx is None else plan.nginx.record(),
                }
            ),
        )
        path = self.run_dir / "phases" / f"{plan.stem}.json"
        path.parent.mkdir(exist_ok=True)
        cfg.dump(path)
        return path

    def _run_locust(self, plan: PhasePlan, cfg_path: Path) -> tuple[Child, int | None, bool]:
        """Run Locust for the phase under a hard timeout: (child, exit code, timed out)."""
        assert self.run_dir is not None and self.sampler is not None
        sc = _scenario(plan, self.s)
        run_dir, load = self.run_dir, sc.load
        csv_prefix = run_dir / "locust" / plan.stem
        cmd = locust_command(sc, csv_prefix)
        timeout = phase_timeout_s(sc)
        log = run_dir / "locust" / f"{plan.stem}.log"
        locust = self._spawn("locust", cmd, log, child_env({PHASE_ENV: str(cfg_path)}))
        self._locust_log = log
        role = "master" if load.processes > 1 else "loadgen"
        self.sampler.watch(locust.pid, role, children_role="loadgen")
        self._update_phase(
            plan.index,
            status="running",
            config=_rel(cfg_path, run_dir),
            locust={
                "pid": locust.pid,
                "command": cmd,
                "log": _rel(log, run_dir),
                "csv_prefix": _rel(csv_prefix, run_dir),
                "hard_timeout_s": timeout,
            },
        )
        code = locust.wait(timeout)
        if code is None:
            self.o.out(f"  locust still running after {timeout:g} s: terminating it (by PID)")
            return locust, self._stop(locust, grace_s=15), True
        self._stop(locust, grace_s=5)  # reaps any straggling worker
        return locust, code, False

    def _check_streams(self, plan: PhasePlan, locust_log: Path) -> dict[str, Any]:
        """Stream rows of the phase on disk, per worker, against Locust's own count."""
        by_worker, rows, unique = self._phase_streams(plan.name)
        reported = locust_stream_count(locust_log)
        expected = _scenario(plan, self.s).load.processes
        check: dict[str, Any] = {
            "rows": rows,
            "unique_stream_uids": unique,
            "sum_over_workers": sum(by_worker.values()),
            "workers": len(by_worker),
            "workers_expected": expected,
            "locust_reported": reported,
            "ok": rows == unique == sum(by_worker.values()) and reported in (None, rows),
            "by_worker": by_worker,
        }
        if rows and len(by_worker) != expected:
            self._warn(
                f"phase {plan.name}: records from {len(by_worker)} worker(s), {expected} expected"
            )
        if unique != rows:
            self._warn(f"phase {plan.name}: {rows - unique} duplicate stream_uid rows")
        if reported is not None and reported != rows:
            self._warn(f"phase {plan.name}: {rows} stream rows on disk, Locust counted {reported}")
        return check

    # ------------------------------------------------------------------ the whole run
    def _cleanup(self) -> None:
        """Stop what is still running (Locust first, so its workers flush), flush samples."""
        self._stopping = True
        for child in [c for c in self.children if c.name == "locust"]:
            self.o.out(f"stopping locust (pid {child.pid})")
            self._stop(child, grace_s=15)
        if self.nginx is not None:
            self.o.out(f"stopping nginx (pid {self.nginx.pid})")
            try:
                rec = self._stop_nginx(self.current) if self.current else {}
                if self.current is not None and rec:
                    self._update_phase(self.current.index, proxy=rec)
            except Exception:
                traceback.print_exc()
            finally:
                if self.nginx is not None:  # _stop_nginx failed before stopping it
                    self.nginx.stop()
                    self.nginx = None
        for child in list(self.children):
            if child.name.endswith("server") and self.current is not None:
                base = _server_base(child)
                if base:
                    with contextlib.suppress(Exception):
                        self._scrape(self.current, base)
            self.o.out(f"stopping {child.name} (pid {child.pid})")
            self._stop(child, grace_s=10)
        if self.sampler is not None:
            self.sampler.stop()
            if self.run_dir is not None and self.sampler.errors:
                with contextlib.suppress(Exception):
                    update_manifest(self.run_dir, sampler_errors=self.sampler.errors)

    def run(self) -> int:
        s = self.s
        limits = raise_nofile_limit()
        code = 0
        reason: str | None = None
        with self._signals():
            try:
                self.run_dir = start_run(
                    self.o.results,
                    self.o.suite_name or s.name,
                    repo_dir=REPO,
                    manifest=self._manifest(limits),
                ).resolve()
                sources = self.o.suite or [(s, self.o.scenario_path)]
                for sc, src in sources:
                    name = "scenario.toml" if not self.o.suite else f"scenarios/{sc.name}.toml"
                    with contextlib.suppress(OSError):
                        (self.run_dir / name).parent.mkdir(exist_ok=True)
                        shutil.copyfile(src, self.run_dir / name)
                self.o.out(f"run folder: {self.run_dir}")
                self.sampler = ResourceSampler(
                    self.run_dir,
                    writer_id=f"bench-{os.getpid()}",
                    interval_s=self.o.sample_interval_s,
                )
                self.sampler.start()
                for i, plan in enumerate(self.plans):
                    if i:
                        time.sleep(self.o.pause_s)
                    self._run_phase(plan)
            except KeyboardInterrupt:
                code, reason = EXIT_SIGINT, "interrupted (SIGINT / Ctrl-C)"
            except Terminated:
                code, reason = EXIT_SIGTERM, "terminated (SIGTERM)"
            except Exception as exc:
                code, reason = EXIT_FAILED, f"crashed: {type(exc).__name__}: {exc}"[:2000]
                traceback.print_exc()
            finally:
                self._stopping = True
                self._finish(reason, "failed" if code == EXIT_FAILED else "interrupted")
        if code == 0 and self.failed:
            code = EXIT_FAILED
        return code

    def _finish(self, reason: str | None, phase_status: str = "interrupted") -> None:
        try:
            self._cleanup()
        except Exception as exc:
            traceback.print_exc()
            reason = reason or f"cleanup failed: {type(exc).__name__}: {exc}"
        if self.run_dir is None:
            return
        if reason is not None and self.current is not None:
            with contextlib.suppress(Exception):
                changes: dict[str, Any] = {
                    "status": phase_status,
                    "t_end_ns": time.monotonic_ns(),
                    "end_utc": _utc_now(),
                }
                if self._locust_log is not None:  # Locust ran: compare its count with disk
                    check = self._check_streams(self.current, self._locust_log)
                    changes.update(
                        streams=check["rows"],
                        streams_by_worker=check.pop("by_worker"),
                        stream_check=check,
                    )
                self._update_phase(self.current.index, **changes)
        if reason is None and self.failed:
            reason = "phase(s) did not finish: " + "; ".join(self.failed)
        try:
            update_manifest(self.run_dir, workers=self._workers_summary())
        except Exception as exc:  # the status below matters more than this figure
            reason = reason or f"could not count streams per worker: {exc}"
        if reason is None:
            mark_complete(self.run_dir)
        else:
            mark_incomplete(self.run_dir, reason)
        phases = {p.name: p.arm.name for p in self.plans}
        with contextlib.suppress(Exception):
            self.o.out("\n" + format_summary(phase_summary(self.run_dir, phases)))
        status = "complete" if reason is None else f"INCOMPLETE: {reason}"
        self.o.out(f"\nrun folder: {self.run_dir}  ({status})")

    def _workers_summary(self) -> dict[str, dict[str, int]]:
        """Stream rows per phase per worker, from the records on disk (the source of truth)."""
        assert self.run_dir is not None
        s = read_table(self.run_dir, "streams", columns=["phase", "worker"])
        out: dict[str, dict[str, int]] = {}
        for (phase, worker), n in s.astype(object).value_counts(["phase", "worker"]).items():
            out.setdefault(str(phase), {})[str(worker)] = int(n)
        return out


#: Seconds a phase takes beyond its run time (server start, Locust start/stop, scrape).
PHASE_OVERHEAD_S = 6


def estimate_s(plans: list[PhasePlan], default: Scenario, pause_s: float = 1.0) -> float:
    """Rough wall time of a plan, for ETAs and the suite budget check."""
    return sum(run_seconds(_scenario(p, default)) + PHASE_OVERHEAD_S + pause_s for p in plans)


def _variant_label(plan: PhasePlan) -> str | None:
    return plan.proxy.name if plan.proxy is not None else None


def _phase_columns(plan: PhasePlan, default: Scenario) -> dict[str, Any]:
    """The scenario / variant / rep record columns of the phase's rows (schema 2)."""
    return {
        "scenario": _scenario(plan, default).name,
        "variant": _variant_label(plan),
        "rep": plan.rep,
    }


def _scenario(plan: PhasePlan, default: Scenario) -> Scenario:
    return plan.scenario if plan.scenario is not None else default


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _server_base(child: Child) -> str | None:
    with contextlib.suppress(ProcessError):
        host, port = wait_for_listening(child, timeout_s=0.1)
        return f"http://{host}:{port}"
    return None


def run(opts: RunOptions) -> int:
    return Runner(opts).run()
