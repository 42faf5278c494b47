"""`ssevsws run --workers N [--hosts H]`: Locust's distributed mode, launched and checked.

Modes of the load generator (manifest ``load_generator.mode``):

- ``local``: one Locust process (``load.processes`` = 1);
- ``processes``: Locust's own ``--processes K`` (it forks K workers and a master);
- ``master+workers``: a real ``--master`` and N ``--worker --master-host`` processes, each
  a child the runner starts through bench.procs (own process group, stopped by PID).
  The master waits for all N (``--expect-workers N``, bounded by
  ``--expect-workers-max-wait``); the users are split across workers by Locust.

With ``--hosts H`` (root) the server, the master and H load hosts each get a network
namespace and an address of their own (bench.netns); N workers are spread over the H
hosts round robin. The master/worker protocol (ZeroMQ) and the streams cross those
addresses; the server listens on its namespace address (``--allow-remote``: the servers
refuse a non-loopback bind without it), and the runner's own health checks and /metrics
scrapes run from inside the server's namespace. What crossed is recorded per phase: the
peer addresses of the server's and the master's established connections (read from their
own /proc/<pid>/net/tcp while the load runs) and the bytes through each host's veth.

Every load process writes its rows itself (part files named "<host>-<pid>") into the run
folder: on one machine the workers share it, so the records are merged as they are
written. After the phase the runner compares, per worker, the stream rows on disk with
the streams Locust counted for that worker (its own stats reports, collected by the master:
loadtests.workers) — see `worker_check`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import netns
from bench.procs import LOOPBACK, Child, free_port
from bench.procs import http_get as _http_get
from bench.procs import wait_http_ok as _wait_http_ok
from core.clocksync import delivery_verdict
from core.runfolder import read_manifest
from core.scenario import LoadSpec

#: Seconds the master waits for its workers to connect before it gives up (exit code 1).
WORKERS_WAIT_S = 60
#: Seconds a worker gets to exit by itself after the master is gone.
WORKER_EXIT_S = 15.0
#: The Locust master's port inside its own namespace (nothing else listens there).
LAB_MASTER_PORT = 5557

LOCAL, PROCESSES, MASTER_WORKERS = "local", "processes", "master+workers"


class DeploymentError(ValueError):
    """A `--workers` / `--hosts` combination that cannot run (message is one line)."""


@dataclass(frozen=True)
class Deployment:
    """How the load generator is deployed for a run (0 = not asked for)."""

    workers: int = 0
    hosts: int = 0

    @classmethod
    def from_args(cls, workers: int | None, hosts: int | None, load: LoadSpec) -> Deployment:
        """Validate the options (DeploymentError with a one-line message)."""
        hosts = hosts or 0
        workers = workers or hosts
        if hosts and workers < hosts:
            raise DeploymentError(f"--workers {workers} < --hosts {hosts}: each host runs one")
        if workers and load.processes > 1:
            raise DeploymentError("--workers and --processes both split the load: use one of them")
        if hosts:
            why = netns.unavailable()
            if why:
                raise DeploymentError(why)
        return cls(workers=workers, hosts=hosts)

    def mode(self, load: LoadSpec) -> str:
        if self.workers:
            return MASTER_WORKERS
        return PROCESSES if load.processes > 1 else LOCAL

    def expected_writers(self, load: LoadSpec) -> int:
        """Load processes that write rows."""
        return self.workers or load.processes

    def host_roles(self) -> list[str]:
        return [f"w{i + 1}" for i in range(self.hosts)]

    def worker_role(self, index: int) -> str | None:
        """The lab host of worker `index` (0-based), None on loopback."""
        return f"w{index % self.hosts + 1}" if self.hosts else None


@dataclass
class WorkerProcess:
    index: int
    child: Child
    role: str | None  # lab host, None on loopback
    address: str  # the address it reaches the master and the server from


@dataclass
class LoadProcesses:
    """The Locust processes of one phase."""

    master: Child
    workers: list[WorkerProcess] = field(default_factory=list)
    master_address: str | None = None
    peers: netns.PeerWatch | None = None
    links_before: dict[str, dict[str, int]] = field(default_factory=dict)

    def describe(self, rel: Callable[[Path], str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.master_address:
            out["master_address"] = self.master_address
        if self.workers:
            out["workers"] = [
                {
                    "index": w.index,
                    "pid": w.child.pid,
                    "host": w.role or "loopback",
                    "address": w.address,
                    "command": w.child.cmd,
                    "log": rel(w.child.log_path),
                }
                for w in self.workers
            ]
        return out


class Placement:
    """Where a run's server and Locust processes live: loopback, or the hosts of a lab."""

    def __init__(self, deployment: Deployment) -> None:
        self.d = deployment
        self.lab: netns.Lab | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.d.hosts and self.lab is None:
            self.lab = netns.Lab(["server", "master", *self.d.host_roles()])
            self.lab.create()

    def stop(self) -> list[str]:
        """Remove the lab (after every child in it was stopped); names left over (none)."""
        lab, self.lab = self.lab, None
        return lab.remove() if lab is not None else []

    def describe(self, load: LoadSpec) -> dict[str, Any]:
        """The manifest's view of the deployment."""
        out: dict[str, Any] = {"mode": self.d.mode(load), "workers": self.d.workers or None}
        if self.lab is not None:
            out["hosts"] = {
                role: {"netns": h.netns, "address": h.address, "veth": h.veth}
                for role, h in self.lab.hosts.items()
            }
            out["network"] = (
                f"network namespaces joined by veth pairs to a bridge in {self.lab.hub}; "
                f"{netns.SUBNET}.0/24 exists only inside them (no route to the machine's own "
                "namespace or beyond); made and removed by this run"
            )
        return out

    # ------------------------------------------------------------------ the server
    def server_command(self, cmd: list[str]) -> list[str]:
        """The reference server's command, listening on the server host's address."""
        if self.lab is None:
            return cmd
        cmd = list(cmd)
        cmd[cmd.index("--host") + 1] = self.lab.hosts["server"].address
        return self.lab.wrap("server", [*cmd, "--allow-remote"])

    def http_get(
        self, url: str, timeout_s: float = 5.0, *, cafile: str | None = None
    ) -> tuple[int, str]:
        if self.lab is None:
            return _http_get(url, timeout_s, cafile=cafile)
        return self.lab.call_in("server", lambda: _http_get(url, timeout_s, cafile=cafile))

    def wait_http_ok(
        self, url: str, *, timeout_s: float, child: Child | None = None, cafile: str | None = None
    ) -> None:
        def wait() -> None:
            _wait_http_ok(url, timeout_s=timeout_s, child=child, cafile=cafile)

        if self.lab is None:
            wait()
            return
        self.lab.call_in("server", wait)

    # ------------------------------------------------------------------ Locust
    def extra_timeout_s(self) -> float:
        """Time a phase may take beyond a local one: the workers connecting."""
        return float(WORKERS_WAIT_S) if self.d.workers else 0.0

    def start_load(
        self,
        cmd: list[str],
        log: Path,
        env: dict[str, str],
        spawn: Callable[[str, list[str], Path, dict[str, str]], Child],
    ) -> LoadProcesses:
        """Start Locust for a phase: `cmd` as is (local), with a master port of its own
        (--processes: its forked workers connect to it; on Locust's default port 5557 the
        workers of two runs on one machine join each other's master), or as the master with
        its N workers (logs next to `log`: ``<stem>.worker<i>.log``)."""
        if not self.d.workers:
            if "--processes" in cmd:  # Locust's default *:5557 is shared by every run here
                port = str(free_port())
                cmd = [*cmd, "--master-bind-host", LOOPBACK, "--master-bind-port", port,
                       "--master-port", port]  # fmt: skip
            return LoadProcesses(spawn("locust", cmd, log, env))
        if self.lab is not None:
            bind = self.lab.hosts["master"].address
            port = LAB_MASTER_PORT
            master_cmd = self.lab.wrap("master", master_command(cmd, bind, port, self.d.workers))
        else:
            bind, port = LOOPBACK, free_port()
            master_cmd = master_command(cmd, bind, port, self.d.workers)
        load = LoadProcesses(spawn("locust", master_cmd, log, env), master_address=bind)
        base = worker_command(cmd, bind, port)
        for i in range(self.d.workers):
            role = self.d.worker_role(i)
            wcmd = self.lab.wrap(role, base) if self.lab is not None and role else base
            address = self.lab.hosts[role].address if self.lab is not None and role else LOOPBACK
            wlog = log.with_name(f"{log.stem}.worker{i + 1}.log")
            load.workers.append(
                WorkerProcess(i, spawn(f"locust worker {i + 1}", wcmd, wlog, env), role, address)
            )
        return load

    def watch_peers(self, load: LoadProcesses, server: Child | None) -> None:
        """In a lab, start sampling whom the server and the master are connected to."""
        if self.lab is None:
            return
        pids = {"master": load.master.pid}
        if server is not None:
            pids["server"] = server.pid
        with contextlib.suppress(netns.NetnsError, ValueError):
            load.links_before = self.lab.link_counters()
        load.peers = netns.PeerWatch(pids).start()

    def finish_load(
        self, load: LoadProcesses, stop: Callable[[Child, float], int | None]
    ) -> dict[str, Any]:
        """After the master ended: let the workers exit (they follow the master's quit),
        stop the ones that do not (by PID); what crossed the network in a lab."""
        out: dict[str, Any] = {}
        codes = []
        deadline = time.monotonic() + WORKER_EXIT_S  # one allowance for all of them
        for w in load.workers:
            code = w.child.wait(max(0.0, deadline - time.monotonic()))
            stopped = code is None
            code = stop(w.child, 5.0) if stopped else stop(w.child, 1.0)
            codes.append({"index": w.index, "exit_code": code, "stopped_by_runner": stopped})
        if codes:
            out["workers_exit"] = codes
        if load.peers is not None:
            out["network"] = {
                "established_peers": load.peers.stop(),
                "note": "peer address -> most established TCP connections seen at once, from "
                "each process's own /proc/<pid>/net/tcp",
            }
        if self.lab is not None:
            with contextlib.suppress(netns.NetnsError, ValueError):
                after = self.lab.link_counters()
                out.setdefault("network", {})["veth_phase"] = {
                    role: {k: v - load.links_before.get(role, {}).get(k, 0) for k, v in c.items()}
                    for role, c in after.items()
                }
        return out


def master_command(cmd: list[str], bind: str, port: int, workers: int) -> list[str]:
    """Locust's headless command (plan.locust_command) as the master of `workers`."""
    return [
        *cmd,
        "--master",
        "--master-bind-host",
        bind,
        "--master-bind-port",
        str(port),
        "--expect-workers",
        str(workers),
        "--expect-workers-max-wait",
        str(WORKERS_WAIT_S),
    ]


def worker_command(cmd: list[str], master: str, port: int) -> list[str]:
    """A worker of that master: the same interpreter and locustfile, no run options (the
    master sends users, spawn rate, run time and stop timeout)."""
    head = cmd[: cmd.index("-f") + 2]  # python -m locust -f <locustfile>
    return [
        *head,
        "--worker",
        "--master-host",
        master,
        "--master-port",
        str(port),
        "--loglevel",
        "WARNING",
    ]


# --------------------------------------------------------------------------- checks


def process_clock_facts(pid: int) -> dict[str, Any]:
    """Which monotonic clock a local process reads (see loadtests.clockprobe.clock_facts):
    this machine's boot and the process's time namespace."""
    facts: dict[str, Any] = {"boot_id": None, "time_ns": None}
    with contextlib.suppress(OSError):
        facts["boot_id"] = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    with contextlib.suppress(OSError):
        facts["time_ns"] = os.readlink(f"/proc/{pid}/ns/time")
    return facts


def phase_worker_check(
    run_dir: Path, phase: str, rows_by_writer: dict[str, int], expected: int
) -> dict[str, Any]:
    """`worker_check` of one phase from the manifest: what the master (or the local
    process) recorded of its load processes (``load_workers[phase]``) and the server's
    clock facts (``phases[].server.clock``)."""
    manifest: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        manifest = read_manifest(run_dir)
    recorded = dict((manifest.get("load_workers") or {}).get(phase) or {})
    server = next(
        (p.get("server") for p in manifest.get("phases") or [] if p.get("name") == phase), None
    )
    clock = server.get("clock") if isinstance(server, dict) else None
    return worker_check(rows_by_writer, recorded, expected, clock)


def worker_check(
    rows_by_writer: dict[str, int],
    recorded: dict[str, Any],
    expected: int,
    server_clock: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Per load process: rows on disk against Locust's own count for it, and whether its
    clock lets delivery latency be measured. ``ok`` is False when a worker's counts differ,
    a worker wrote rows Locust does not know of, or fewer than `expected` reported."""
    reported: dict[str, Any] = dict(recorded.get("workers") or {})
    per: dict[str, Any] = {}
    problems: list[str] = []
    for writer in sorted(set(reported) | set(rows_by_writer)):
        rec = reported.get(writer) or {}
        rows = rows_by_writer.get(writer, 0)
        counted = rec.get("locust_streams")
        verdict, why = delivery_verdict(rec.get("clock"), server_clock)
        per[writer] = {
            "pid": rec.get("pid"),
            "address": rec.get("address"),
            "rows": rows,
            "locust_streams": counted,
            "match": counted == rows,
            "clock_offsets_ms": [
                [e.get("offset_ms"), e.get("uncertainty_ms")]
                for e in (rec.get("clock") or {}).get("estimates") or []
            ],
            "delivery_latency": f"{verdict}: {why}",
        }
        if not rec:
            problems.append(f"{writer} wrote {rows} stream rows but Locust has no record of it")
        elif not rec.get("pid"):
            problems.append(f"{writer} joined the master without this phase's locustfile")
        elif counted != rows:
            problems.append(f"{writer}: {rows} stream rows on disk, Locust counted {counted}")
    if recorded and len(reported) != expected:
        problems.append(f"{len(reported)} load process(es) reported to Locust, {expected} expected")
    return {
        "mode": recorded.get("mode"),
        "by_writer": per,
        "ok": bool(recorded) and not problems,
        "problems": problems or ([] if recorded else ["no load_workers record from Locust"]),
    }
