"""Who generated the load, as Locust itself saw it: one record per load process in the
manifest under ``load_workers[<phase>]``, written by the master (or the single local
process) when Locust quits.

Per load process (keyed by its writer id "<host>-<pid>", the ``worker`` column of its rows):
its PID, host name, the address it reaches the master from, its clock facts and offset
estimates against the server (loadtests.clockprobe, taken when the process starts, before
any load, and when the test stops, after the users), and the streams Locust counted for
it — summed by the master from that worker's own stats reports, so the run can check them
against the rows each worker wrote.

Workers send their record inside Locust's periodic stats report (``report_to_master``);
the master keeps the latest one per worker. On multi-machine runs this is how the facts of
a remote worker reach the run folder on the master's machine.

Locust's master waits only 0.5 s for the workers' last stats after it sends "quit"
(locustio/locust#1426), so a stream that ends inside the stop timeout reaches the disk
but not Locust's count. `_wait_for_workers_on_quit` makes the master's quit send "quit"
first and wait — up to the stop timeout plus a margin — until every worker has reported
and left; only then does Locust's own quit run.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from typing import Any

import gevent
from locust import events
from locust.rpc import Message
from locust.runners import STATE_MISSING, LocalRunner, MasterRunner, WorkerRunner

from core.client.tls import TLSSettings
from core.runfolder import modify_manifest
from core.scenario import PhaseConfig
from loadtests.clockprobe import clock_facts, probe
from loadtests.recording import writer_id

#: Report data key (Locust's own keys are "stats", "errors", …).
REPORT_KEY = "ssevsws_worker"
#: Locust request names counted as streams (the locustfile fires "stream" and
#: "stream (<outcome>)"; "ttft" is a second event of the same stream).
STREAM_PREFIX = "stream"
#: Seconds beyond the stop timeout the master waits for its workers' last reports.
QUIT_MARGIN_S = 10.0


def source_address(host: str, port: int) -> str | None:
    """The local address this process uses to reach (host, port) (a UDP connect sends
    nothing); None if there is no route."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((host, port))
            return str(s.getsockname()[0])
    except OSError:
        return None


def streams_in(stats_entries: list[dict[str, Any]]) -> int:
    """Streams in a serialised stats report (Locust's `serialize_stats` entries)."""
    return sum(
        int(e.get("num_requests") or 0)
        for e in stats_entries
        if str(e.get("name", "")).startswith(STREAM_PREFIX)
    )


class LoadWorkers:
    """The Locust listeners of one load process (master, worker or local)."""

    def __init__(self, phase: PhaseConfig) -> None:
        self.phase = phase
        self.writer = ""  # set at init: after Locust's --processes fork
        self.own: dict[str, Any] = {}  # this process's record (worker / local)
        self.seen: dict[str, dict[str, Any]] = {}  # master: client_id → latest record
        self.counted: dict[str, int] = {}  # master: client_id → streams in its reports
        self.runner: Any = None

    # ------------------------------------------------------------------ listeners
    def install(self) -> None:
        events.init.add_listener(self.on_init)
        events.test_start.add_listener(self.on_test_start)
        events.test_stop.add_listener(self.on_test_stop)
        events.report_to_master.add_listener(self.on_report_to_master)
        events.worker_report.add_listener(self.on_worker_report)
        events.quit.add_listener(self.on_quit)

    def on_init(self, environment: Any, **_: Any) -> None:
        self.runner = runner = environment.runner
        opts = environment.parsed_options
        if isinstance(runner, MasterRunner):
            _wait_for_workers_on_quit(runner, environment)
            return
        self.writer = writer_id()
        address = None
        if isinstance(runner, WorkerRunner) and opts is not None:
            address = source_address(opts.master_host, int(opts.master_port))
        self.own = {
            "writer": self.writer,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "address": address,
            "clock": {"host": clock_facts(), "estimates": [], "errors": []},
        }
        self._probe("start")  # before any load: the quietest round trips

    def _probe(self, when: str) -> bool:
        """Estimate the clock offset now; False if it could not be."""
        if not self.own:
            return False
        tls = TLSSettings.from_dict(self.phase.tls)
        got = probe(self.phase.server_url or self.phase.url, tls=tls)  # past any proxy
        got["when"] = when
        clock = self.own["clock"]
        clock["errors" if "error" in got else "estimates"].append(got)
        return "error" not in got

    def on_test_start(self, environment: Any, **_: Any) -> None:
        # the server may have come up after this process (by hand): try again, off the
        # event's path so the users start on time
        if self.own and not self.own["clock"]["estimates"]:
            gevent.spawn(self._probe, "test_start")

    def on_test_stop(self, environment: Any, **_: Any) -> None:
        self._probe("stop")  # the users have stopped: quiet again

    def on_report_to_master(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        if self.own:
            data[REPORT_KEY] = self.own

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        self.counted[client_id] = self.counted.get(client_id, 0) + streams_in(
            data.get("stats") or []
        )
        if isinstance(data.get(REPORT_KEY), dict):
            self.seen[client_id] = data[REPORT_KEY]

    # ------------------------------------------------------------------ the record
    def record(self) -> dict[str, Any]:
        runner = self.runner
        if isinstance(runner, MasterRunner):
            workers: dict[str, Any] = {}
            for client_id, count in sorted(self.counted.items()):
                rec = dict(self.seen.get(client_id) or {"writer": f"unknown:{client_id}"})
                rec.update(
                    client_id=client_id,
                    index=runner.worker_indexes.get(client_id),
                    locust_streams=count,
                )
                workers[str(rec["writer"])] = rec
            opts = runner.environment.parsed_options
            return {
                "mode": "master",
                "master": {
                    "pid": os.getpid(),
                    "hostname": socket.gethostname(),
                    "bind": f"{opts.master_bind_host}:{opts.master_bind_port}" if opts else None,
                    "expect_workers": getattr(opts, "expect_workers", None),
                },
                "workers": workers,
                "locust_streams": sum(self.counted.values()),
            }
        if isinstance(runner, LocalRunner):
            entries = runner.stats.entries.values()
            count = streams_in([{"name": e.name, "num_requests": e.num_requests} for e in entries])
            own = {**self.own, "locust_streams": count}
            return {"mode": "local", "workers": {self.writer: own}, "locust_streams": count}
        return {}

    def on_quit(self, **_: Any) -> None:
        rec = self.record()
        if not rec:
            return  # a worker: its record travelled with its stats
        rec["written_t_ns"] = time.monotonic_ns()

        def put(m: dict[str, Any]) -> None:
            m.setdefault("load_workers", {})[self.phase.phase] = rec

        try:
            modify_manifest(self.phase.run_dir, put)
        except OSError as exc:  # say it; the run's own check will miss the record
            print(f"ssevsws: could not write load_workers to the manifest: {exc}", file=sys.stderr)


def _wait_for_workers_on_quit(runner: MasterRunner, environment: Any) -> None:
    """Make the master's quit wait for every worker's last stats report (see module doc)."""
    original = runner.quit

    def quit() -> None:
        limit = (environment.stop_timeout or 0.0) + QUIT_MARGIN_S
        for client in list(runner.clients.all):
            with contextlib.suppress(Exception):
                runner.server.send_to_client(Message("quit", None, client.id))
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and any(
            c.state != STATE_MISSING for c in runner.clients.all
        ):
            gevent.sleep(0.1)
        original()

    runner.quit = quit
