"""The phase loop behind `ssevsws run`: servers, hooks, Locust, sampler, manifest — one run folder.

For rep in 1..R, for arm in the scenario's arms (interleaved A B A B, so drift in the
machine hits both arms alike; docs/methodology.md):

1. start that arm's reference server as a fresh subprocess (``python -m servers KIND
   --port 0``; bench never imports servers) and wait for its announced port and /healthz
   — or use the user's own server URL (``--sse-url`` / ``--ws-url``);
2. start the phase's hooks (bench.hooks: nginx in front of the server, later a fault
   proxy); the client gets the outermost one's address;
3. write the phase's `PhaseConfig` to ``phases/<phase>.json`` and run Locust headless as a
   subprocess with ``SSEVSWS_PHASE`` pointing at it; its workers write the records;
4. sample server, hook and Locust processes (bench.sampler) while it runs; bound it by a
   hard wall-clock timeout (run time + stop timeout + margin);
5. the hooks' after-load probes (the browser check), then stop the hooks and keep their
   records; scrape the reference server's /metrics into server_metrics.json, stop it;
6. pause, and wait out a pile of TIME_WAIT sockets before the next phase.

Every child runs in its own session and is stopped by PID / its own process group. On
Ctrl-C, SIGTERM or a crash the children are stopped (Locust first, so its workers flush),
the sampler is flushed, and the manifest says ``incomplete`` with the reason; everything
written so far stays readable. A run never reuses a folder (core.runfolder).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.distributed import Deployment, LoadProcesses, Placement, phase_worker_check
from bench.distributed import process_clock_facts as _clock_facts
from bench.hooks import HookContext, PhaseHook, PhaseHooks, Target, phase_hooks
from bench.hostcheck import (
    TIME_WAIT_LIMIT,
    TIME_WAIT_MAX_WAIT_S,
    raise_nofile_limit,
    time_wait_count,
)
from bench.phase_check import PhaseVerdict, stream_check, verdict
from bench.plan import (
    FOREIGN,
    PHASE_OVERHEAD_S,
    REPO,
    ArmTarget,
    PhasePlan,
    browser_command,
    child_env,
    locust_command,
    phase_columns,
    phase_timeout_s,
    plan_phases,
    plan_suite,
    run_seconds,
    scenario_of,
    server_command,
)
from bench.procs import (
    Child,
    ProcessError,
    spawn,
    tail,
    wait_for_listening,
    wait_ready,
)
from bench.report import format_summary, phase_summary
from bench.run_errors import (
    EXIT_FAILED,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    WRITER_FAILED_LINE,
    Terminated,
    WriteFailed,
    is_write_error,
)
from bench.run_manifest import phase_entry, run_manifest, utc_now, variant_label
from bench.run_tls import RunCertificate
from bench.sampler import DEFAULT_INTERVAL_S, ResourceSampler
from bench.scrape import locust_stream_count, parse_metrics, server_info
from core.client.tls import TLSSettings
from core.runfolder import (
    mark_complete,
    mark_failed,
    mark_incomplete,
    modify_manifest,
    read_manifest,
    read_table,
    release_reserve,
    reserve_space,
    start_run,
    update_manifest,
    write_json,
)
from core.scenario import EXIT_WRITER_FAILED, HEADERS_ENV, PHASE_ENV, PhaseConfig, Scenario
from core.streamlog import STREAM_LOG_DIR

# --------------------------------------------------------------------------- the run


@dataclass
class RunOptions:
    scenario: Scenario
    scenario_path: Path
    arms: list[ArmTarget]
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
    #: --workers / --hosts: Locust master + worker processes, optionally on their own
    #: network hosts (bench.distributed)
    deployment: Deployment = field(default_factory=Deployment)
    #: --header: (name, value) pairs with their values resolved. Held in memory and handed
    #: to the load processes in $SSEVSWS_HEADERS only: no file of the run folder has them.
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: The --header arguments as given (``${VAR}`` unexpanded): the manifest's redacted view.
    header_specs: list[str] = field(default_factory=list)
    #: --ca-file / --insecure: how the clients verify https / wss servers of your own.
    tls: TLSSettings = field(default_factory=TLSSettings)
    #: --model: the model name a format's request carries.
    model: str | None = None


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
        self.failed: list[str] = []  # "<phase>: <reason>" of every phase that was not ok
        self.write_error: str | None = None  # the run folder could not be written
        self.hooks: PhaseHooks | None = None  # the current phase's hooks (bench.hooks)
        self.hook_files: dict[str, dict[str, Any]] = {}  # "<key>.json" → phase → record
        self._unavailable: set[str] = set()  # reasons already warned about
        self.place = Placement(opts.deployment)  # loopback, or the hosts of a netns lab
        #: The certificate of reference servers with server.tls (made on first use).
        self.certificate = RunCertificate()

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
    @contextlib.contextmanager
    def _starting(self) -> Iterator[None]:
        """Hold SIGINT / SIGTERM while a child is started and registered; raise it after."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self._held is not None:
            held, self._held = self._held, None
            self._raise(held)

    def _spawn(self, name: str, cmd: list[str], log: Path, env: dict[str, str]) -> Child:
        with self._starting():
            child = spawn(name, cmd, log_path=log, env=env, cwd=self.run_dir)
            self.children.append(child)
        return child

    def _stop(self, child: Child, grace_s: float) -> int | None:
        if self.sampler is not None:
            self.sampler.unwatch(child.pid)
        code = child.stop(grace_s=grace_s)
        with contextlib.suppress(ValueError):
            self.children.remove(child)
        return code

    def _stream_log(self, plan: PhasePlan) -> Path:
        """Where the phase's reference server writes its stream log (core.streamlog)."""
        assert self.run_dir is not None
        return self.run_dir / STREAM_LOG_DIR / f"{plan.stem}.streams.jsonl"

    def _server_tls(self, plan: PhasePlan) -> tuple[str, str] | None:
        """The run's certificate for the phase's reference server (None: plain TCP)."""
        assert self.run_dir is not None
        lab = self.place.lab
        names = (lab.hosts["server"].address,) if lab is not None else ()
        return self.certificate.for_server(scenario_of(plan, self.s), self.run_dir, names)

    def _server_ca(self, plan: PhasePlan) -> str | None:
        files = self._server_tls(plan)
        return files[0] if files else None

    def _start_server(self, plan: PhasePlan) -> tuple[Child, str, Target]:
        assert self.run_dir is not None
        sc = scenario_of(plan, self.s)
        tls = self._server_tls(plan)
        cmd = server_command(plan.arm.name, sc, tls)
        cmd = self.place.server_command([*cmd, "--stream-log", str(self._stream_log(plan))])
        child = self._spawn(
            f"{plan.arm.name} server",
            cmd,
            self.run_dir / "logs" / f"{plan.stem}.server.log",
            child_env(),
        )
        ready = wait_ready(child, timeout_s=30, health_path=None)
        target = Target(plan.arm.protocol, ready.host, ready.port, tls=tls is not None)
        ca = self._server_ca(plan)
        self.place.wait_http_ok(f"{target.http_base}/healthz", timeout_s=30, child=child, cafile=ca)
        return child, target.http_base, target

    def _scrape(self, plan: PhasePlan, base: str) -> dict[str, Any]:
        assert self.run_dir is not None
        status, text = self.place.http_get(
            f"{base}/metrics", timeout_s=5, cafile=self._server_ca(plan)
        )
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

    def _phase_streams(self, phase: str) -> pd.DataFrame:
        """The phase's stream rows on disk (worker, stream_uid, outcome)."""
        assert self.run_dir is not None
        cols = ["phase", "worker", "stream_uid", "outcome"]
        s = read_table(self.run_dir, "streams", columns=cols)
        return s[s["phase"].astype(object) == phase]

    def _hook(self, event: str, **info: Any) -> None:
        if self.o.on_phase is not None:
            with contextlib.suppress(Exception):  # a display must never break a run
                self.o.on_phase(event, info)

    def _run_phase(self, plan: PhasePlan) -> None:
        """One phase: target up, hooks in the path, config written, Locust run and bounded,
        hooks' probes, everything stopped, figures closed."""
        assert self.run_dir is not None and self.sampler is not None
        s = scenario_of(plan, self.s)
        hooks = PhaseHooks(phase_hooks(plan, s))
        why = hooks.unavailable()
        if why:
            self._skip_phase(plan, hooks, why)
            return
        tw = self._wait_time_wait()
        self.current, self._locust_log, self.hooks = plan, None, hooks
        self._add_phase(phase_entry(plan, scenario_of(plan, self.s), tw))
        self.sampler.set_phase(plan.name, plan.arm.name, phase_columns(plan, self.s))
        server, base, url = self._start_target(plan, hooks)
        cfg_path = self._write_config(plan, url, hooks, base)
        users = f"ramp {list(s.load.ramp_steps)}" if s.load.ramp_steps else f"{s.load.users} users"
        procs = f", {s.load.processes} processes" if s.load.processes > 1 else ""
        if self.place.d.workers:
            procs = f", master + {self.place.d.workers} workers"
            procs += f" on {self.place.d.hosts} hosts" if self.place.d.hosts else ""
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
        locust, code, timed_out = self._run_locust(plan, cfg_path, server)
        t_end_ns, end_utc = time.monotonic_ns(), utc_now()  # the load is over
        extra: dict[str, Any] = {}
        if hooks.started:
            self.sampler.sample_once()
            hooks.after_load(self._hook_context(plan))  # probes through the same path
            extra.update(self._stop_hooks(plan))
        if server is not None and base is not None:
            self.sampler.sample_once()  # the server's state at the end of the load
            extra.update(self._scrape(plan, base))
            self._stop(server, grace_s=10)
            extra["server_exit_code"] = server.popen.returncode
        self.sampler.set_phase(None, None)
        v = self._verdict(plan, locust, code, timed_out)
        self._update_phase(
            plan.index,
            status=v.status,
            reason=v.reason,
            locust_exit_code=code,
            t_end_ns=t_end_ns,
            end_utc=end_utc,
            streams=v.check["rows"],
            streams_by_worker=v.check.pop("by_worker"),
            stream_check=v.check,
            **extra,
        )
        self.current = None
        workers = f" from {v.check['workers']} workers" if v.check["workers_expected"] > 1 else ""
        status = v.status if v.status == "ok" else f"{v.status.upper()} ({v.reason})"
        self.o.out(
            f"[{plan.index}/{len(self.plans)}] {plan.name} end: {status}, "
            f"{v.check['rows']} streams{workers} (locust exit {code})"
        )
        self._hook(
            "end", phase=plan.name, index=plan.index, status=v.status, streams=v.check["rows"]
        )
        if self.write_error is not None:  # nothing more can be recorded: stop the run
            raise WriteFailed(self.write_error)

    def _verdict(
        self, plan: PhasePlan, locust: Child, code: int | None, timed_out: bool
    ) -> PhaseVerdict:
        """The phase's status from its records (bench.phase_check); warnings and failures
        go to the manifest."""
        check = self._check_streams(plan, locust.log_path)
        sc = scenario_of(plan, self.s)
        writer = self._writer_error(code)
        assert self.run_dir is not None
        writers = (read_manifest(self.run_dir).get("record_writers") or {}).get(plan.name)
        v = verdict(
            check,
            locust_exit=code,
            timed_out=timed_out,
            hard_timeout_s=phase_timeout_s(sc),
            writer_error=writer,
            writers=writers,
        )
        for text in v.warnings:
            self._warn(f"phase {plan.name}: {text}")
        if v.status != "ok":
            self.failed.append(f"{plan.name}: {v.reason}")
            self._warn(f"phase {plan.name} {v.status}: {v.reason}; see {locust.log_path}")
        return v

    def _writer_error(self, code: int | None) -> str | None:
        """Why records could not be written during the phase (None: they could): the
        sampler's own failed write, or Locust's exit code for a failed record writer."""
        why = self.sampler.write_error if self.sampler is not None else None
        if why is None and code == EXIT_WRITER_FAILED:
            said = (
                WRITER_FAILED_LINE.findall(tail(self._locust_log, 8000)) if self._locust_log else []
            )
            why = said[-1].strip() if said else "a Locust record writer failed (see its log)"
        if why is not None and self.write_error is None:
            self.write_error = why
        return why

    # ------------------------------------------------------------------ phase hooks
    def _hook_context(self, plan: PhasePlan) -> HookContext:
        assert self.run_dir is not None
        return HookContext(
            run_dir=self.run_dir,
            phase=plan.name,
            stem=plan.stem,
            arm=plan.arm.name,
            protocol=plan.arm.protocol,
            scenario=scenario_of(plan, self.s),
            seed=plan.seed,
            out=self.o.out,
            warn=self._warn,
            probe_marks=self.hooks.probe_marks() if self.hooks else (),
        )

    def _skip_phase(self, plan: PhasePlan, hooks: PhaseHooks, reason: str) -> None:
        """Record a phase that did not run (never faked): status skipped + reason."""
        if reason not in self._unavailable:
            self._unavailable.add(reason)
            self._warn(f"phases skipped: {reason}")
        self.o.out(f"[{plan.index}/{len(self.plans)}] {plan.name} SKIPPED: {reason}")
        entry = phase_entry(plan, scenario_of(plan, self.s), None)
        entry.update(status="skipped", reason=reason, streams=0)
        self._add_phase(entry)
        self._write_hook_files(plan, hooks.skipped(reason))
        self._hook("end", phase=plan.name, index=plan.index, status="skipped", streams=0)

    def _watch_hook(self, hook: PhaseHook, pids: list[int]) -> None:
        if self.sampler is not None:
            for pid in pids:
                self.sampler.watch(pid, hook.role)

    def _stop_hooks(self, plan: PhasePlan) -> dict[str, Any]:
        """Stop the phase's hooks (by PID), collect their records into the run-level files;
        returns the phase entry's share of them (record_key → record)."""
        hooks = self.hooks
        if hooks is None:
            return {}
        if self.sampler is not None:
            for pid in list(hooks.pids()):
                self.sampler.unwatch(pid)

        def failed(hook: PhaseHook, exc: BaseException) -> None:
            text = f"phase {plan.name}: hook {hook.name}: {type(exc).__name__}: {exc}"
            try:
                self._warn(text)
            except OSError:  # the run folder is not writable any more: say it at least
                self.o.out(f"warning: {text}")

        records = hooks.stop(self._hook_context(plan), failed)
        self.hooks = None
        self._write_hook_files(plan, records)
        return records

    def _write_hook_files(self, plan: PhasePlan, records: dict[str, dict[str, Any]]) -> None:
        """``<record_key>.json`` in the run folder: phase name → that hook record."""
        assert self.run_dir is not None
        for key, rec in records.items():
            by_phase = self.hook_files.setdefault(key, {})
            by_phase[plan.name] = rec
            write_json(self.run_dir, f"{key}.json", by_phase)

    def _start_target(
        self, plan: PhasePlan, hooks: PhaseHooks
    ) -> tuple[Child | None, str | None, str]:
        """(server child, its http base, the URL Locust uses): a fresh reference server with
        the phase's hooks in front of it, or the user's own URL — whose server-side figures
        are then marked not measured."""
        assert self.run_dir is not None and self.sampler is not None
        if not plan.arm.reference:
            assert plan.arm.url is not None
            self._update_phase(plan.index, url=plan.arm.url, server=FOREIGN)
            self.server_metrics[plan.name] = {"not_measured": FOREIGN}
            write_json(self.run_dir, "server_metrics.json", self.server_metrics)
            return None, None, plan.arm.url
        server, base, target = self._start_server(plan)
        self.sampler.watch(server.pid, "server")
        log = _rel(server.log_path, self.run_dir)
        info = {"pid": server.pid, "command": server.cmd, "log": log, "url": target.url,
                "clock": _clock_facts(server.pid),
                "logs": {"streams": _rel(self._stream_log(plan), self.run_dir)}}  # fmt: skip
        self._update_phase(plan.index, url=target.url, server=info)
        if hooks.hooks:
            target = hooks.before_load(
                self._hook_context(plan), target, guard=self._starting, on_pids=self._watch_hook
            )
            self._update_phase(plan.index, url=target.url)
        return server, base, target.url

    def _write_config(
        self, plan: PhasePlan, url: str, hooks: PhaseHooks, server_url: str | None = None
    ) -> Path:
        assert self.run_dir is not None
        ca = self._server_ca(plan) if plan.arm.reference else None
        tls = TLSSettings(ca_file=ca) if ca else self.o.tls
        cfg = PhaseConfig(
            run_dir=str(self.run_dir),
            phase=plan.name,
            arm=plan.arm.name,
            protocol=plan.arm.protocol,
            payload_format=plan.arm.arm.format,
            url=url,
            scenario=scenario_of(plan, self.s).to_dict(),
            seed=plan.seed,
            rep=plan.rep,
            reference_server=plan.arm.reference,
            proxy=self._proxy_config(plan, hooks),
            server_url=server_url,
            tls=tls.to_dict(),
            headers=[name for name, _ in self.o.headers],
            model=self.o.model,
        )
        path = self.run_dir / "phases" / f"{plan.stem}.json"
        path.parent.mkdir(exist_ok=True)
        cfg.dump(path)
        return path

    @staticmethod
    def _proxy_config(plan: PhasePlan, hooks: PhaseHooks) -> dict[str, Any] | None:
        """PhaseConfig.proxy: the [proxy] variant label and what the hooks say of the path."""
        extra = hooks.config()
        if plan.proxy is None and not extra:
            return None
        return {"variant": variant_label(plan), **extra}

    def _run_locust(
        self, plan: PhasePlan, cfg_path: Path, server: Child | None = None
    ) -> tuple[Child, int | None, bool]:
        """Run Locust for the phase under a hard timeout: (child, exit code, timed out).
        The child is the only Locust process, or the master of --processes / --workers."""
        assert self.run_dir is not None and self.sampler is not None
        sc = scenario_of(plan, self.s)
        run_dir, load = self.run_dir, sc.load
        csv_prefix = run_dir / "locust" / plan.stem
        timeout = phase_timeout_s(sc) + self.place.extra_timeout_s()
        log = run_dir / "locust" / f"{plan.stem}.log"
        env = child_env({PHASE_ENV: str(cfg_path), HEADERS_ENV: json.dumps(self.o.headers)})
        browser = plan.arm.arm.is_browser
        if browser:  # Chromium pages (loadtests/browser): one process, never distributed
            procs = LoadProcesses(self._spawn("locust", browser_command(), log, env))
        else:
            procs = self.place.start_load(locust_command(sc, csv_prefix), log, env, self._spawn)
        locust = procs.master
        self._locust_log = log
        role = "master" if load.processes > 1 or procs.workers else "loadgen"
        # a browser load generator samples its own browser processes by kind
        self.sampler.watch(locust.pid, role, children_role=None if browser else "loadgen")
        for w in procs.workers:
            self.sampler.watch(w.child.pid, "loadgen")
        self.place.watch_peers(procs, server)
        self._update_phase(
            plan.index,
            status="running",
            config=_rel(cfg_path, run_dir),
            locust={
                "mode": self.place.d.mode(load),
                "pid": locust.pid,
                "command": locust.cmd,
                "log": _rel(log, run_dir),
                "csv_prefix": _rel(csv_prefix, run_dir),
                "hard_timeout_s": timeout,
                **procs.describe(lambda p: _rel(p, run_dir)),
            },
        )
        try:
            return self._wait_locust(locust, timeout)
        finally:
            self._finish_load(plan, procs)

    def _wait_locust(self, locust: Child, timeout: float) -> tuple[Child, int | None, bool]:
        assert self.sampler is not None
        deadline = time.monotonic() + timeout
        code = None
        while code is None and time.monotonic() < deadline:
            code = locust.wait(min(0.5, max(0.0, deadline - time.monotonic())))
            if code is None and self.sampler.write_error is not None:
                self.o.out(f"  cannot write the run folder ({self.sampler.write_error}): stopping")
                return locust, self._stop(locust, grace_s=15), False
        if code is None:
            self.o.out(f"  locust still running after {timeout:g} s: terminating it (by PID)")
            return locust, self._stop(locust, grace_s=15), True
        self._stop(locust, grace_s=5)  # reaps any straggling worker
        return locust, code, False

    def _finish_load(self, plan: PhasePlan, procs: LoadProcesses) -> None:
        """The workers of --workers after their master: exit codes, the network they used."""
        after = self.place.finish_load(procs, lambda c, g: self._stop(c, grace_s=g))
        if after:
            self._update_phase(plan.index, locust_after=after)

    def _check_streams(self, plan: PhasePlan, locust_log: Path) -> dict[str, Any]:
        """Stream rows of the phase on disk, per worker, against Locust's own count."""
        load = scenario_of(plan, self.s).load
        check = stream_check(
            self._phase_streams(plan.name),
            locust_reported=locust_stream_count(locust_log),
            workers_expected=self.place.d.expected_writers(load),
            max_error_share=load.max_error_share,
        )
        assert self.run_dir is not None  # per load process (bench.distributed), enforced
        per = phase_worker_check(  # by the verdict unless Locust ran as one process
            self.run_dir, plan.name, check["by_worker"], check["workers_expected"]
        )
        check["per_worker"] = {**per, "enforced": self.place.d.mode(load) != "local"}
        return check

    # ------------------------------------------------------------------ the whole run
    def _cleanup(self) -> None:
        """Stop what is still running (Locust first, so its workers flush), flush samples."""
        self._stopping = True
        for child in [c for c in self.children if c.name.startswith("locust")]:  # + workers
            self.o.out(f"stopping locust (pid {child.pid})")
            self._stop(child, grace_s=15)
        if self.hooks is not None and self.hooks.started:
            names = ", ".join(h.name for h in self.hooks.started)
            self.o.out(f"stopping {names} (by PID)")
            try:
                if self.current is not None:
                    recs = self._stop_hooks(self.current)
                    if recs:
                        self._update_phase(self.current.index, **recs)
            except Exception:
                traceback.print_exc()
            finally:
                if self.hooks is not None:  # recording failed before every hook stopped
                    for h in self.hooks.started:
                        with contextlib.suppress(Exception):
                            h.stop()
                    self.hooks = None
        for child in list(self.children):
            if child.name.endswith("server") and self.current is not None:
                base = _server_base(child)
                if base:
                    with contextlib.suppress(Exception):
                        self._scrape(self.current, base)
            self.o.out(f"stopping {child.name} (pid {child.pid})")
            self._stop(child, grace_s=10)
        self._remove_lab()
        if self.sampler is not None:
            self.sampler.stop()
            if self.run_dir is not None and self.sampler.errors:
                with contextlib.suppress(Exception):
                    update_manifest(self.run_dir, sampler_errors=self.sampler.errors)

    def _remove_lab(self) -> None:
        """--hosts: delete the namespaces (and with them the veths) once no child is left."""
        left = self.place.stop()
        if left and self.run_dir is not None:
            self._warn(f"network namespaces left behind: {', '.join(left)}")

    def run(self) -> int:
        s = self.s
        limits = raise_nofile_limit()
        code = 0
        reason: str | None = None
        with self._signals():
            try:
                self.place.start()  # --hosts: the lab's namespaces, before anything runs
                manifest = run_manifest(self.o, self.plans, limits)
                manifest["load_generator"].update(self.place.describe(s.load))
                self.run_dir = start_run(
                    self.o.results,
                    self.o.suite_name or s.name,
                    repo_dir=REPO,
                    manifest=manifest,
                ).resolve()
                sources = self.o.suite or [(s, self.o.scenario_path)]
                for sc, src in sources:
                    name = "scenario.toml" if not self.o.suite else f"scenarios/{sc.name}.toml"
                    with contextlib.suppress(OSError):
                        (self.run_dir / name).parent.mkdir(exist_ok=True)
                        shutil.copyfile(src, self.run_dir / name)
                self.o.out(f"run folder: {self.run_dir}")
                if not reserve_space(self.run_dir):
                    self._warn(
                        "no room for the run folder's reserve: a full disk may leave "
                        "the manifest saying 'running'"
                    )
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
            except WriteFailed as exc:
                code, reason = EXIT_FAILED, f"cannot write the run folder: {exc}"
            except Exception as exc:
                code = EXIT_FAILED
                if is_write_error(exc):  # the runner's own write (manifest, side file)
                    self.write_error = self.write_error or f"{type(exc).__name__}: {exc}"
                    reason = f"cannot write the run folder: {self.write_error}"
                else:
                    reason = f"crashed: {type(exc).__name__}: {exc}"[:2000]
                    traceback.print_exc()
            finally:
                self._stopping = True
                self._finish(reason, interrupted=code in (EXIT_SIGINT, EXIT_SIGTERM))
        if code == 0 and self.failed:
            code = EXIT_FAILED
        return code

    def _finish(self, reason: str | None, *, interrupted: bool = False) -> None:
        """Stop everything, then say in the manifest how the run ended: complete (every
        phase ok or skipped), failed (a phase failed, a crash, a write error) or
        incomplete (interrupted), with status_reason — and print it."""
        try:
            self._cleanup()
        except Exception as exc:
            traceback.print_exc()
            reason = reason or f"cleanup failed: {type(exc).__name__}: {exc}"
        if self.sampler is not None and self.sampler.write_error and not self.write_error:
            self.write_error = self.sampler.write_error
            reason = reason or f"cannot write the run folder: {self.write_error}"
        if self.run_dir is None:
            if reason is not None:
                self.o.out(f"\nssevsws run: no run folder was made: {reason}")
            return
        if self.write_error is not None:
            release_reserve(self.run_dir)  # room for the last manifest writes
        if reason is not None and self.current is not None:
            self._close_current("interrupted" if interrupted else "failed", reason)
        if reason is None and self.failed:
            reason = "phase(s) failed: " + "; ".join(self.failed)
        with contextlib.suppress(Exception):  # the status below matters more than this
            update_manifest(self.run_dir, workers=self._workers_summary())
        status = "complete" if reason is None else "incomplete" if interrupted else "failed"
        try:
            if status == "complete":
                mark_complete(self.run_dir)
            elif status == "incomplete":
                mark_incomplete(self.run_dir, str(reason))
            else:
                mark_failed(self.run_dir, str(reason))
            release_reserve(self.run_dir)
        except OSError as exc:
            self.o.out(f"ssevsws run: could not write the final status to the manifest: {exc}")
        phases = {p.name: p.arm.name for p in self.plans}
        with contextlib.suppress(Exception):
            self.o.out("\n" + format_summary(phase_summary(self.run_dir, phases)))
        said = "complete" if reason is None else f"{status.upper()}: {reason}"
        self.o.out(f"\nrun folder: {self.run_dir}  ({said})")
        if self.write_error is not None:
            print(
                f"ssevsws run: cannot write the run folder: {self.write_error}; "
                f"the run stopped, what was flushed is in {self.run_dir}",
                file=sys.stderr,
                flush=True,
            )

    def _close_current(self, phase_status: str, reason: str) -> None:
        """The phase that was running when the run stopped: its status and records."""
        assert self.run_dir is not None and self.current is not None
        changes: dict[str, Any] = {
            "status": phase_status,
            "reason": reason,
            "t_end_ns": time.monotonic_ns(),
            "end_utc": utc_now(),
        }
        with contextlib.suppress(Exception):
            if self._locust_log is not None:  # Locust ran: compare its count with disk
                check = self._check_streams(self.current, self._locust_log)
                changes.update(
                    streams=check["rows"],
                    streams_by_worker=check.pop("by_worker"),
                    stream_check=check,
                )
        with contextlib.suppress(Exception):
            self._update_phase(self.current.index, **changes)

    def _workers_summary(self) -> dict[str, dict[str, int]]:
        """Stream rows per phase per worker, from the records on disk (the source of truth)."""
        assert self.run_dir is not None
        s = read_table(self.run_dir, "streams", columns=["phase", "worker"])
        out: dict[str, dict[str, int]] = {}
        for (phase, worker), n in s.astype(object).value_counts(["phase", "worker"]).items():
            out.setdefault(str(phase), {})[str(worker)] = int(n)
        return out


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
