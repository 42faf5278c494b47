"""Locust entry point for one phase: `locust -f loadtests/locustfile.py --headless ...`
with `SSEVSWS_PHASE=<phase.json>` (a core.scenario.PhaseConfig) in the environment.

One User class, `StreamUser`, runs the protocol-neutral session script over the
phase's transport (SSE or WS, from the PhaseConfig), so only one user class exists and
both arms run the same code. Think time lives inside the session, so `wait_time` is 0.

- Closed model (load.mode = "closed"): each user runs sessions back to back.
- Open model ("open"): sessions arrive as a Poisson process of rate `arrival_rate`
  across all users and processes; each user owns an equal share (rate / users) and
  schedules its next session at an absolute time. A session due while its user is
  still busy starts late — never skipped — and its `t_sched_ns` keeps the due time, so
  dispatch delay = t_send − t_sched shows the stall (docs/methodology.md, pitfall 7).
- Ramp (load.ramp_steps): `RampShape` steps the user count every step_s; each stream
  records the step's target in `users_target`.

Records: every worker process (or the single local process) writes its own part files
(writer id "<host>-<pid>") of streams/tokens/connections/resources into the run folder;
the master (of `--processes N` or `--master`) writes no rows, only `load_workers[<phase>]`
in the manifest (loadtests.workers: each load process's PID, address, clock offset and
Locust's own stream count for it). Locust request events are fired per
stream ("stream": E2E ms, "ttft": TTFT ms) so the Locust UI and CSVs are meaningful,
but the truth is in the raw rows (Locust rounds).

A record writer that fails (a full disk) stops the phase at once: Locust exits with
core.scenario.EXIT_WRITER_FAILED, which the orchestrator reports as a failed phase. Forked
workers ask for SIGTERM when their parent dies (core.parentdeath), as bench does for every
process it starts.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import signal
import sys
import time
from typing import Any

import gevent
import psutil
from locust import LoadTestShape, User, constant, events, task
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner
from locust.user.task import LOCUST_STATE_STOPPING

from core.accounting import CANCELLED, OK, STOPPED, StreamAccount
from core.client.tls import TLSSettings
from core.parentdeath import die_with_parent
from core.runfolder import modify_manifest
from core.scenario import EXIT_WRITER_FAILED, PHASE_ENV, PhaseConfig
from loadtests import gctune
from loadtests.recording import RunFolderSink, writer_id
from loadtests.session import SessionPlan, UserIds, UserScript, arrival_rng
from loadtests.transport import TransportContext
from loadtests.transports import client_settings, make_transport, request_headers
from loadtests.workers import LoadWorkers

_phase_path = os.environ.get(PHASE_ENV)
if not _phase_path:
    raise RuntimeError(
        f"{PHASE_ENV} is not set: point it at a PhaseConfig JSON (bench writes one per phase)"
    )
PHASE = PhaseConfig.load(_phase_path)
SCENARIO = PHASE.scenario_obj()
PLAN = SessionPlan.from_scenario(SCENARIO, schedule_known=PHASE.schedule_known, model=PHASE.model)
TLS = TLSSettings.from_dict(PHASE.tls)
HEADERS = request_headers(PHASE)
RESOURCE_INTERVAL_S = 2.0
#: Locust's main process (imported before --processes forks): its workers' parent.
_MAIN_PID = os.getpid()
#: A process's record writer failed: the main process (master / local) stops the phase.
WRITER_FAILED = "ssevsws_writer_failed"


class _Process:
    """State of this load-generator process (set up in `init`, after Locust forked)."""

    sink: RunFolderSink | None = None
    worker = ""
    master = False
    users = 0
    t_start = 0.0
    transports: set[Any] = set()  # noqa: RUF012 - process-wide registry, by design
    sampler: Any = None
    proc: psutil.Process | None = None  # this process, made after Locust forked
    total_users = SCENARIO.load.users  # -u when given (the orchestrator passes the scenario's)


P = _Process()
LoadWorkers(PHASE).install()  # per load process: PID, address, clock, Locust's stream count


def _users_target() -> int | None:
    steps = SCENARIO.load.ramp_steps
    if not steps:
        return P.total_users
    if not P.t_start:
        return None
    i = int((time.monotonic() - P.t_start) // SCENARIO.load.step_s)
    return steps[min(i, len(steps) - 1)]


def _sample_resources() -> None:
    """This process's own CPU (role "client"): Locust's timings drift above ~90% CPU."""
    P.proc = psutil.Process()
    P.proc.cpu_percent(None)
    while P.sink is not None and not P.sink.closed:
        gevent.sleep(RESOURCE_INTERVAL_S)
        _sample_once()


def _sample_once() -> None:
    proc = P.proc
    if P.sink is None or P.sink.closed or proc is None:
        return
    cpu = proc.cpu_times()
    try:
        fds = proc.num_fds()
    except (psutil.Error, AttributeError):
        fds = None
    P.sink.resource(
        {
            "t_ns": time.monotonic_ns(),
            "phase": PHASE.phase,
            **PHASE.phase_columns(),
            "arm": PHASE.arm,
            "role": "client",
            "pid": os.getpid(),
            "cpu_user_s": cpu.user,
            "cpu_sys_s": cpu.system,
            "cpu_pct": proc.cpu_percent(None),
            "rss_bytes": proc.memory_info().rss,
            "fds": fds,
            "connections": sum(t.open_connections for t in list(P.transports)),
        }
    )


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if not isinstance(runner, WorkerRunner):
        runner.register_message(WRITER_FAILED, _on_writer_failed)
    if isinstance(runner, MasterRunner):
        P.master = True
        return
    if isinstance(runner, WorkerRunner) and os.getpid() != _MAIN_PID:
        # forked by --processes: the fork cleared it. A worker of its own (--workers) is
        # Locust's main process: its starter (bench.procs.spawn) set it before exec.
        die_with_parent(signal.SIGTERM, parent=_MAIN_PID)
    P.worker = writer_id()
    users = getattr(environment.parsed_options, "num_users", None)
    if users:
        P.total_users = int(users)

    def failed(error: str) -> None:
        lost = P.sink.streams_lost if P.sink is not None else None
        data = {"worker": P.worker, "error": error, "streams_lost": lost}
        runner.send_message(WRITER_FAILED, data)

    P.sink = RunFolderSink(PHASE.run_dir, P.worker, on_error=failed)


def _on_writer_failed(environment: Any, msg: Any, **_: Any) -> None:
    """A record writer failed (a full disk…): records can no longer be kept, so the phase
    stops now — users without their stop timeout — and Locust exits EXIT_WRITER_FAILED."""
    data = msg.data or {}
    if environment.process_exit_code == EXIT_WRITER_FAILED:
        return  # already stopping
    sys.stderr.write(
        f"ssevsws: record writer {data.get('worker')} failed, stopping the phase: "
        f"{data.get('error')}\n"
    )
    environment.process_exit_code = EXIT_WRITER_FAILED
    environment.stop_timeout = 0
    gevent.spawn(environment.runner.quit)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    if P.master or P.sink is None:
        return
    P.t_start = time.monotonic()
    settings = client_settings(
        PHASE.protocol, SCENARIO, payload_format=PHASE.payload_format, phase=PHASE
    )

    def record(m: dict[str, Any]) -> None:
        m.setdefault("client", {})[PHASE.phase] = settings
        # check in: the orchestrator fails a phase whose writer never checks out (killed)
        writers = m.setdefault("record_writers", {}).setdefault(PHASE.phase, {})
        writers[P.worker] = {"pid": os.getpid(), "closed": False}

    try:  # same content from every worker; the manifest lock serialises them
        modify_manifest(PHASE.run_dir, record)
    except OSError as exc:
        environment.events.request.fire(
            request_type="SETUP",
            name="manifest",
            response_time=0,
            response_length=0,
            exception=exc,
            context={},
        )
    P.sink.start_background()
    gctune.tune()  # what this process keeps for the phase is set up: freeze it
    if P.sampler is None:
        P.sampler = gevent.spawn(_sample_resources)


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_: Any) -> None:
    if P.sink is not None and not P.sink.closed:
        _sample_once()  # a short phase still gets the client's view of itself
        P.sink.flush()


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    # Locust fires `quitting` BEFORE it stops the users (SIGINT/SIGTERM): the streams they
    # are in the middle of are recorded as they end, so only flush here and close on
    # `quit`, which fires after the users are gone (atexit is the last resort).
    if P.sink is not None and not P.sink.closed:
        P.sink.flush()


@events.quit.add_listener
def _on_quit(**_: Any) -> None:
    _close_sink()


def _close_sink() -> None:
    sink = P.sink
    if sink is None or sink.closed:
        return
    sink.close()
    out = {
        "closed": True,
        "streams_written": sink.streams_written,
        "streams_lost": sink.streams_lost,
        "error": sink.error,
    }

    def check_out(m: dict[str, Any]) -> None:
        m.setdefault("record_writers", {}).setdefault(PHASE.phase, {}).setdefault(
            P.worker, {}
        ).update(out)

    with contextlib.suppress(OSError):  # a full disk: the exit code already says so
        modify_manifest(PHASE.run_dir, check_out)


atexit.register(_close_sink)


def _fire(environment: Any, protocol: str, acct: StreamAccount) -> None:
    """Locust request events: one per stream (E2E) and one for its TTFT."""
    kind = protocol.upper()
    if acct.outcome in (OK, CANCELLED, STOPPED):  # user's / generator's choice, not a failure
        exc = None
    else:
        exc = RuntimeError(f"{acct.outcome}: {acct.error or ''}".rstrip(": "))
    if acct.e2e_ns is not None:
        ms = acct.e2e_ns / 1e6
    elif acct.t_send_ns is not None and acct.t_end_ns is not None:
        ms = (acct.t_end_ns - acct.t_send_ns) / 1e6
    else:
        ms = 0.0
    name = "stream" if acct.outcome == OK else f"stream ({acct.outcome})"
    fire = environment.events.request.fire
    fire(
        request_type=kind,
        name=name,
        response_time=ms,
        response_length=acct.bytes_in,
        exception=exc,
        context={"outcome": acct.outcome},
    )
    if acct.ttft_ns is not None:
        fire(
            request_type=kind,
            name="ttft",
            response_time=acct.ttft_ns / 1e6,
            response_length=0,
            exception=None,
            context={},
        )


class StreamUser(User):
    """One simulated user: runs sessions over one transport of the phase's protocol."""

    wait_time = constant(0)

    def on_start(self) -> None:
        index = P.users
        P.users += 1
        runner = self.environment.runner
        worker_index = getattr(runner, "worker_index", 0) or 0
        labels = PHASE.phase_columns()
        ids = UserIds(PHASE.phase, PHASE.arm, P.worker, worker_index, index, PHASE.seed, **labels)
        assert P.sink is not None
        ctx = TransportContext(
            PHASE.phase,
            PHASE.arm,
            P.worker,
            index,
            f"{PHASE.phase}/{worker_index}.{index}",
            P.sink,
            **labels,
        )
        self.transport = make_transport(
            PHASE.protocol,
            ctx,
            PHASE.url,
            SCENARIO,
            cancel_url=PHASE.cancel_url,
            payload_format=PHASE.payload_format,
            headers=HEADERS,
            tls=TLS,
        )
        P.transports.add(self.transport)
        self.script = UserScript(
            PLAN,
            ids,
            self.transport,
            P.sink,
            on_stream=lambda acct: _fire(self.environment, PHASE.protocol, acct),
            should_stop=self._stopping,
            users_target=_users_target,
        )
        load = SCENARIO.load
        self._arrivals: random.Random | None = None
        if load.mode == "open":
            self._rate = load.arrival_rate / P.total_users
            self._arrivals = arrival_rng(PHASE.seed, worker_index, index)
            self._next_ns = time.monotonic_ns() + self._gap_ns()

    def _gap_ns(self) -> int:
        assert self._arrivals is not None
        return int(self._arrivals.expovariate(self._rate) * 1e9)

    def _stopping(self) -> bool:
        return self._state == LOCUST_STATE_STOPPING

    @task
    def session(self) -> None:
        limit = SCENARIO.session.sessions_per_user
        if limit and self.script.sessions >= limit:
            raise StopUser()
        t_sched = None
        if self._arrivals is not None:
            # wait for the due time in short naps, so a stopping phase does not wait for it
            while (wait := (self._next_ns - time.monotonic_ns()) / 1e9) > 0:
                if self._stopping():
                    return
                gevent.sleep(min(wait, 0.25))
            t_sched = self._next_ns
            self._next_ns += self._gap_ns()
        self.script.run_session(t_sched)

    def on_stop(self) -> None:
        self.transport.close()
        P.transports.discard(self.transport)


if SCENARIO.load.ramp_steps:

    class RampShape(LoadTestShape):
        """load.ramp_steps: one user count per step of load.step_s, then stop."""

        def tick(self) -> tuple[int, float] | None:
            steps = SCENARIO.load.ramp_steps
            i = int(self.get_run_time() // SCENARIO.load.step_s)
            if i >= len(steps):
                return None
            return steps[i], SCENARIO.load.spawn_rate
