"""`ssevsws perf [--quick]`: throughput, idle capacity, client ceiling, the client's cost
beside the server's, one client process holding many idle streams, worker processes, end
to end.

Writes ``results/<run>/perf.json``, ``perf.md``, ``figures/perf_*.png`` and a manifest,
then prints the ratio table with PASS/MISS against issue 7's targets.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.perf import ceiling as ceil_mod
from bench.perf import client as client_mod
from bench.perf.flood import raise_nofile
from bench.perf.procs import ROOT, Server, cores, run_json, start_server, tcp_summary
from bench.perf.profile import summarize as summarize_profile
from bench.perf.report import OURS, SERVERS, ratio_table, write_report
from bench.perf.workers import worker_scaling
from bench.procs import http_get
from core.arms import PROTOCOLS, get_arm
from core.runfolder import mark_complete, mark_incomplete, start_run, update_manifest

#: server name -> (python argv, protocol, extra client spec)
SERVER_ARGV: dict[str, tuple[list[str], str, dict[str, Any]]] = {
    **{
        name: (["-m", "servers", str(get_arm(name).server_kind)], get_arm(name).protocol, {})
        for name in OURS
    },
    "raw": (["-m", "servers.baselines", "raw"], "sse", {}),
    "starlette": (["-m", "servers.baselines", "starlette"], "sse", {}),
    # the client offers permessage-deflate as browsers do; the library accepts by default
    "websockets-default": (
        ["-m", "servers.baselines", "websockets-default"],
        "ws",
        {"offer_deflate": True},
    ),
    "aiohttp-sse": (["-m", "servers.baselines", "aiohttp-sse"], "sse", {}),
    "aiohttp-ws": (["-m", "servers.baselines", "aiohttp-ws"], "ws", {}),
    "websockets-bare": (
        ["-m", "servers.baselines", "websockets-default", "--ws-compression", "off"],
        "ws",
        {},
    ),
}


PHASES = ("throughput", "idle", "ceiling", "client", "hold", "workers", "e2e")


@dataclass
class PerfConfig:
    quick: bool = False
    phases: tuple[str, ...] = PHASES
    throughput_servers: tuple[str, ...] = (
        *OURS, "raw", "starlette", "websockets-default", "aiohttp-sse", "aiohttp-ws",
    )  # fmt: skip
    flood_ns: tuple[int, ...] = (100, 1000)
    flood_warmup_s: float = 1.0
    flood_window_s: float = 4.0
    paced_ns: tuple[int, ...] = (100, 1000)
    #: 600 tokens at 50/s = 12 s: long enough that all N streams overlap even when opening
    #: 1,000 connections takes a slow server ~10 s (the window then sees all N)
    paced_tokens: int = 600
    paced_gap_ms: float = 20.0
    paced_spread_s: float = 1.0
    paced_warmup_s: float = 0.5
    paced_window_s: float = 3.0
    idle_servers: tuple[str, ...] = (
        "sse", "aiohttp-sse", "ws", "aiohttp-ws", "ws-websockets", "websockets-bare",
        "websockets-default", "starlette",
    )  # fmt: skip
    idle_n: int = 10_000
    idle_hold_s: float = 60.0
    idle_heartbeat_s: float = 15.0
    idle_batch: int = 500
    ceiling_protos: tuple[str, ...] = PROTOCOLS
    ceiling_points: tuple[int, ...] = (100, 250, 500, 750, 1000, 1500)
    ceiling_processes: tuple[int, ...] = (1, 2)
    ceiling_sessions: int = 3
    ceiling_bound_ms: float = 5.0
    #: Locust master + N workers (bench.distributed) at each count, both arms
    workers_counts: tuple[int, ...] = (1, 2, 4)
    workers_protos: tuple[str, ...] = PROTOCOLS
    workers_users: int = 600
    workers_duration_s: float = 8.0
    workers_warmup_s: float = 1.5
    #: the client's CPU per token and per stream beside the server's (bench.perf.client.cost)
    client_protos: tuple[str, ...] = PROTOCOLS
    #: at the ceiling's target load (500 streams × 50 tokens/s = 25,000 tokens/s): the cost
    #: of a token depends on how many arrive per pass of the event loop
    client_users: int = 500
    client_long_tokens: int = 250
    client_short_tokens: int = 2
    client_short_sessions: int = 10
    #: one client process holding this many mostly idle streams (bench.perf.client.hold)
    hold_protos: tuple[str, ...] = PROTOCOLS
    hold_n: int = 10_000
    hold_token_every_s: float = 10.0
    hold_s: float = 30.0
    hold_heartbeat_s: float = 5.0
    e2e_users: int = 1000
    e2e_sessions: int = 2
    e2e_ttft_ms: float = 300.0
    #: one client process: the target is one server core and one client core
    e2e_processes: int = 1
    limit_s: float = 120.0
    #: py-spy the servers at the largest flood N and one e2e client process (the why of a
    #: missed target, from this run); the client from 1 s after it starts, for 2 s
    profile: bool = True
    e2e_profile_delay_s: float = 1.0
    e2e_profile_s: float = 2.0

    @classmethod
    def quick_config(cls) -> PerfConfig:
        # the ratios' servers only (bare aiohttp serves the idle ratios), paced at N = 100
        return cls(
            quick=True, throughput_servers=(
                *OURS, "raw", "starlette", "websockets-default",
            ), paced_ns=(100,),
            flood_warmup_s=0.5, flood_window_s=1.5, paced_tokens=150,
            paced_spread_s=0.5, paced_warmup_s=0.3, paced_window_s=1.0,
            idle_servers=("sse", "aiohttp-sse", "ws", "aiohttp-ws"), idle_n=1000,
            idle_hold_s=5.0, idle_heartbeat_s=1.0, idle_batch=250, ceiling_points=(50, 200),
            ceiling_processes=(1,), ceiling_sessions=2, client_users=200,
            client_long_tokens=60, client_short_sessions=5, hold_n=1000,
            hold_token_every_s=2.0, hold_s=6.0, hold_heartbeat_s=1.0, workers_protos=("sse",),
            workers_users=200, workers_duration_s=3.0, workers_warmup_s=1.0,
            e2e_users=200, e2e_sessions=1,
            e2e_processes=1, limit_s=60.0,
        )  # fmt: skip


def flood_tokens(n: int, seconds: float) -> int:
    """Tokens per flood stream: enough that few streams end inside the window (a stream
    that ends is replaced at once anyway), few enough that building plans stays cheap."""
    return max(500, min(20_000, int(400_000 * seconds / n)))


class Perf:
    def __init__(self, cfg: PerfConfig, run_dir: Path, log: Callable[[str], None]) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.log = log
        self.server_cpus, self.client_cpus = cores()
        self.logs = run_dir / "logs"
        self.perf: dict[str, Any] = {
            "throughput": [], "idle": [], "ceiling": [], "client": [], "hold": [], "workers": [],
            "e2e": [], "tcp": [], "notes": [],
        }  # fmt: skip

    # ------------------------------------------------------------------ helpers
    def _server(self, name: str, extra: list[str] | None = None) -> Server:
        argv, _, _ = SERVER_ARGV[name]
        srv = start_server(name, [*argv, *(extra or [])], self.server_cpus, self.logs)
        self.log(f"  started {name} pid {srv.pid} on CPU {srv.cpus}: {srv.line}")
        return srv

    def _profile_path(self, stem: str) -> Path:
        (self.run_dir / "profiles").mkdir(exist_ok=True)
        return self.run_dir / "profiles" / f"{stem}.txt"

    def _client_profiling(self, stem: str) -> ceil_mod.Profiling | None:
        """py-spy on the next client process from `e2e_profile_delay_s` after it starts
        (None when profiling is off)."""
        c = self.cfg
        if not c.profile:
            return None
        path = self._profile_path(stem)
        return ceil_mod.Profiling(path, c.e2e_profile_delay_s, c.e2e_profile_s)

    def _client(self, spec: dict[str, Any]) -> dict[str, Any]:
        return run_json(
            ["-m", "bench.perf.flood", json.dumps(spec)], self.client_cpus,
            timeout=float(spec.get("limit_s", self.cfg.limit_s)) + 30,
        )  # fmt: skip

    def _tcp(self, phase: str) -> None:
        t = tcp_summary()
        self.perf["tcp"].append({"phase": phase, **t})
        self.log(f"  ss -s after {phase}: TIME_WAIT {t['timewait']}, established {t['estab']}")
        tw = t.get("timewait") or 0
        if tw > 15_000:  # pitfall 14: let the kernel reap them before the next big phase
            self.log(f"  waiting for TIME_WAIT to drain ({tw})")
            deadline = time.monotonic() + 65
            while time.monotonic() < deadline and (tcp_summary().get("timewait") or 0) > 5_000:
                time.sleep(2)

    @staticmethod
    def _stats(srv: Server, reset: bool) -> dict[str, Any] | None:
        if reset:  # a new window, after this one's figures (a POST: GETs only read)
            status, body = http_get(f"{srv.url}/v1/stats/reset", 5.0, method="POST")
        else:
            status, body = http_get(f"{srv.url}/v1/stats", 5.0)
        if status != 200:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None

    # ------------------------------------------------------------------ phases
    def throughput(self) -> None:
        c = self.cfg
        for name in c.throughput_servers:
            _, proto, extra = SERVER_ARGV[name]
            srv = self._server(name)
            try:
                for mode, ns in (("flood", c.flood_ns), ("paced", c.paced_ns)):
                    for n in ns:
                        spec: dict[str, Any] = {
                            "mode": mode, "proto": proto, "url": srv.url, "n": n,
                            "server_pid": srv.pid, "limit_s": c.limit_s, **extra,
                        }  # fmt: skip
                        profile = None
                        if mode == "flood":
                            secs = c.flood_warmup_s + c.flood_window_s + 1
                            spec.update(
                                tokens=flood_tokens(n, secs),
                                ttft_ms=0,
                                gap_ms=0,
                                warmup_s=c.flood_warmup_s,
                                window_s=c.flood_window_s,
                            )
                            if c.profile and n == max(c.flood_ns):  # the ratio's N: why
                                profile = self._profile_path(f"{name}-flood-{n}")
                                spec["profile_path"] = str(profile)
                        else:
                            spec.update(tokens=c.paced_tokens, ttft_ms=0, gap_ms=c.paced_gap_ms,
                                        spread_s=c.paced_spread_s, warmup_s=c.paced_warmup_s,
                                        window_s=c.paced_window_s)  # fmt: skip
                        if name in OURS:
                            self._stats(srv, reset=True)
                        r = self._client(spec)
                        if profile is not None:
                            r["profile"] = _profile_record(profile, r.pop("profile_error", None))
                        if name in OURS:
                            st = self._stats(srv, reset=False)
                            r["server_lag_us"] = (st or {}).get("lag_us")
                        r.update(server=name, label=SERVERS[name][0], group=SERVERS[name][1],
                                 server_cpus=srv.cpus, server_line=srv.line,
                                 stream_tokens=spec["tokens"])  # fmt: skip
                        self.perf["throughput"].append(r)
                        self.log(
                            f"  {name:<19} {mode:<5} N={n:<5} {_n(r['tokens_per_s'])} tok/s, "
                            f"server CPU {_n(r['server_cpu_pct'])}%, "
                            f"{_n(r['server_us_per_token'], 2)} µs/token"
                            + (
                                f", active {_n(r.get('active_streams_mean'))}, window kept "
                                f"{_n(r.get('window_rate_kept'), 3)}"
                                f", rate kept p50 {_n(r.get('rate_kept'), 3)} worst-1% "
                                f"{_n(r.get('rate_kept_p01'), 3)}, end late p99 "
                                f"{_n(r.get('end_lateness_ms_p99'), 1)} ms, ready "
                                f"{r['ready_s']} s"
                                if mode == "paced"
                                else ""
                            )
                            + (f", errors {r['errors'][:2]}" if r["errors"] else "")
                        )
            finally:
                srv.stop()
        self._tcp("throughput")

    def idle(self) -> None:
        c = self.cfg
        hb = f"{c.idle_heartbeat_s:g}"
        for name in c.idle_servers:
            _, proto, extra = SERVER_ARGV[name]
            srv = self._server(name, ["--heartbeat-s", hb])
            try:
                spec = {
                    "mode": "idle", "proto": proto, "url": srv.url, "n": c.idle_n,
                    "hold_s": c.idle_hold_s, "batch": c.idle_batch, "server_pid": srv.pid,
                    "limit_s": max(c.limit_s, c.idle_hold_s + 240), **extra,
                }  # fmt: skip
                r = self._client(spec)
                r.update(server=name, label=SERVERS[name][0], heartbeat_s=c.idle_heartbeat_s,
                         server_cpus=srv.cpus)  # fmt: skip
                self.perf["idle"].append(r)
                self.log(
                    f"  idle {name:<19} {r['opened']}/{c.idle_n} conns, "
                    f"{_n(r['kib_per_conn'], 1)} KiB/conn, idle CPU {_n(r['idle_cpu_pct'], 1)}%, "
                    f"{_n(r['heartbeat_bytes_out_per_conn_hour'])} B/conn-h out, "
                    f"batch connect {r['connect_wall_s']} s"
                    + (f", errors {r['errors'][:2]}" if r["errors"] else "")
                )
            finally:
                srv.stop()
            self._tcp(f"idle {name}")

    def ceiling(self) -> None:
        c = self.cfg
        for proto in c.ceiling_protos:
            srv = self._server(proto)
            try:
                for procs in c.ceiling_processes:
                    res = ceil_mod.find_ceiling(
                        proto, srv.url, self.client_cpus, list(c.ceiling_points),
                        processes=procs, bound_ms=c.ceiling_bound_ms,
                        sessions=c.ceiling_sessions, limit_s=c.limit_s, log=self.log,
                    )  # fmt: skip
                    res["server_cpus"] = srv.cpus
                    self.perf["ceiling"].append(res)
            finally:
                srv.stop()
        self._tcp("ceiling")

    def client(self) -> None:
        c = self.cfg
        for proto in c.client_protos:
            srv = self._server(proto, ["--heartbeat-s", "0"])
            # where a token's CPU goes: the long-stream run, once flowing
            prof = self._client_profiling(f"client-{proto}-tokens")
            try:
                r = client_mod.cost(
                    proto, srv.url, srv.pid, self.client_cpus, users=c.client_users,
                    long_tokens=c.client_long_tokens, short_tokens=c.client_short_tokens,
                    short_sessions=c.client_short_sessions, limit_s=c.limit_s, profile=prof,
                )  # fmt: skip
            finally:
                srv.stop()
            if prof is not None:
                r["client_profile"] = _profile_record(prof.path, prof.error)
            self.perf["client"].append(r)
            self.log(
                f"  client {proto}: {_n(r['client_us_per_token'], 1)} µs/token, "
                f"{_n(r['client_us_per_stream'])} µs/stream (server "
                f"{_n(r['server_us_per_token'], 1)} µs/token, "
                f"{_n(r['server_us_per_stream'])} µs/stream)"
            )
        self._tcp("client")

    def hold(self) -> None:
        c = self.cfg
        for proto in c.hold_protos:
            srv = self._server(proto, ["--heartbeat-s", f"{c.hold_heartbeat_s:g}"])
            try:
                r = client_mod.hold(
                    proto, srv.url, srv.pid, self.client_cpus, n=c.hold_n,
                    token_every_s=c.hold_token_every_s, hold_s=c.hold_s,
                    limit_s=max(c.limit_s, c.hold_s + c.hold_n / 1000 + 120),
                )  # fmt: skip
            finally:
                srv.stop()
            r["heartbeat_s"] = c.hold_heartbeat_s
            self.perf["hold"].append(r)
            self.log(
                f"  hold {proto}: {r.get('streams_concurrent_max')}/{c.hold_n} streams at once "
                f"in one client process, outcomes {r['outcomes']}, lost {r['lost']}; KiB/conn "
                f"client {_n(r.get('client_kib_per_conn'), 1)}, server "
                f"{_n(r.get('server_kib_per_conn'), 1)}; CPU while held client "
                f"{_n(r.get('client_cpu_pct_held'), 1)}%, server "
                f"{_n(r.get('server_cpu_pct_held'), 1)}%"
            )
            self._tcp(f"hold {proto}")

    def workers(self) -> None:
        c = self.cfg
        for proto in c.workers_protos:
            srv = self._server(proto, ["--heartbeat-s", "0"])
            try:
                self.perf["workers"].append(
                    worker_scaling(
                        proto, srv.url, c.workers_counts, users=c.workers_users,
                        duration_s=c.workers_duration_s, warmup_s=c.workers_warmup_s,
                        results=self.run_dir / "workers", log=self.log,
                        server_stats=lambda reset, srv=srv: self._stats(srv, reset),
                    )
                )  # fmt: skip
            finally:
                srv.stop()
        self._tcp("workers")

    def e2e(self) -> None:
        c = self.cfg
        for proto in PROTOCOLS:
            srv = self._server(proto)
            # the client's why: sampled once its streams are flowing
            prof = self._client_profiling(f"client-{proto}-e2e")
            try:
                r = ceil_mod.run_drive(
                    proto, srv.url, c.e2e_users, self.client_cpus, processes=c.e2e_processes,
                    sessions=c.e2e_sessions, ttft_ms=c.e2e_ttft_ms,
                    limit_s=max(c.limit_s, 90.0), profile=prof,
                )  # fmt: skip
                if prof is not None:
                    r["client_profile"] = _profile_record(prof.path, prof.error)
                st = self._stats(srv, reset=False)
                r["server_lag_us"] = (st or {}).get("lag_us")
            finally:
                srv.stop()
            r["ttft_error_ms"] = (
                r["ttft_ms_median"] - c.e2e_ttft_ms if r["ttft_ms_median"] is not None else None
            )
            r["itl_error_ms"] = (
                r["itl_ms_median"] - ceil_mod.GAP_MS if r["itl_ms_median"] is not None else None
            )
            r["harness"] = "loadtests.drive (project transports + session script, gevent)"
            self.perf["e2e"].append(r)
            self.log(
                f"  e2e {proto} {c.e2e_users} streams: delivery p50 {_n(r['delivery_ms_p50'], 2)} "
                f"p99 {_n(r['delivery_ms_p99'], 2)} ms, lost {r['lost']}, "
                f"TTFT − server send p50 {_n(r['ttft_minus_server_ms_p50'], 2)} "
                f"p99 {_n(r['ttft_minus_server_ms_p99'], 2)} ms, "
                f"client CPU {_n(r['client_cpu_pct'])}%, waiting for a CPU "
                f"{_n(r.get('client_runqueue_wait_pct'), 1)}% of the time"
            )
        self._tcp("e2e")


def _profile_record(path: Path, error: str | None) -> dict[str, Any]:
    """perf.json's view of one py-spy profile: its file, or why there is none."""
    if error:
        return {"error": error}
    return {"file": f"profiles/{path.name}", **summarize_profile(path)}


def _n(v: Any, nd: int = 0) -> str:
    if v is None:
        return "—"
    return f"{v:,.{nd}f}"


def run_perf(
    cfg: PerfConfig,
    results_root: Path,
    *,
    log: Callable[[str], None] = print,
    note: str | None = None,
    command: str = "ssevsws perf",
) -> tuple[Path, dict[str, Any]]:
    """Run the configured phases in a new run folder; (run dir, perf dict)."""
    nofile = raise_nofile()  # inherited by every server and client we start
    load1 = os.getloadavg()[0]
    run_dir = start_run(
        results_root, "perf" + ("-quick" if cfg.quick else ""), repo_dir=ROOT,
        manifest={"kind": "perf", "perf_config": asdict(cfg)},
    )  # fmt: skip
    log(f"perf run {run_dir}")
    p = Perf(cfg, run_dir, log)
    from core.hostinfo import host_facts

    host = host_facts()
    busy = note or (
        f"measured on a busy machine (1-min load average {load1:.2f} at start with "
        f"{host.get('logical_cores')} CPUs): compare ratios within this run, not absolute figures"
        if load1 >= 0.5 else None
    )  # fmt: skip
    p.perf.update(
        run_id=run_dir.name, quick=cfg.quick, command=command, created_unix=time.time(),
        host={**host, "cpu_count": host.get("logical_cores"),
              "python": host.get("python_version")},
        loadavg_start=os.getloadavg(), busy_machine_note=busy,
        pinning={"server_cpus": sorted(p.server_cpus), "client_cpus": sorted(p.client_cpus),
                 "shared": p.server_cpus == p.client_cpus,
                 "how": "os.sched_setaffinity on each child PID"},
        nofile=list(nofile),
        nofile_note=f"soft limit raised to the hard limit: {nofile[0]} / {nofile[1]}"
        + ("" if nofile[0] >= cfg.idle_n * 1.2 + 100 else
           f" — below what {cfg.idle_n} idle connections need"),
        config=asdict(cfg),
    )  # fmt: skip
    log(f"  pinning: servers CPU {sorted(p.server_cpus)}, clients CPU {sorted(p.client_cpus)}; "
        f"open files {nofile[0]}/{nofile[1]}")  # fmt: skip
    p._tcp("start")
    ok = False
    try:
        for phase in cfg.phases:
            log(f"[{phase}]")
            t = time.monotonic()
            getattr(p, phase)()
            p.perf.setdefault("phase_seconds", {})[phase] = round(time.monotonic() - t, 1)
            # the machine may be shared: how busy it was, phase by phase (1/5/15-min)
            p.perf.setdefault("loadavg_end", {})[phase] = [round(x, 2) for x in os.getloadavg()]
        ok = True
    finally:
        if p.perf["e2e"] or p.perf["ceiling"] or p.perf["client"] or p.perf["hold"]:
            p.perf["notes"].append(
                "The ceiling, client-cost, hold and end-to-end phases run the project's "
                "transports and session script (what each Locust user runs) in "
                "loadtests.drive processes, so one process and its CPU are measured alone; "
                "the workers phase runs Locust itself."
            )
        if cfg.quick:
            p.perf["notes"].append(
                f"--quick: the ratios' servers only, paced at N = "
                f"{', '.join(map(str, cfg.paced_ns))}, "
                f"flood/paced windows {cfg.flood_window_s:g}/{cfg.paced_window_s:g} s, "
                f"{cfg.idle_n} idle connections held {cfg.idle_hold_s:g} s, "
                f"{cfg.hold_n} client-held streams (a token every {cfg.hold_token_every_s:g} s), "
                f"client cost at {cfg.client_users} streams, worker "
                f"processes {', '.join(cfg.workers_protos)} only at {cfg.workers_users} users "
                f"for {cfg.workers_duration_s:g} s, e2e "
                f"{cfg.e2e_users} streams (targets are stated for the full sizes)."
            )
        write_report(run_dir, p.perf)
        if ok:
            update_manifest(run_dir, perf={"json": "perf.json", "md": "perf.md"})
            mark_complete(run_dir)
        else:
            mark_incomplete(run_dir, "perf interrupted")
    return run_dir, p.perf


def _cmd(args: argparse.Namespace) -> int:
    cfg = PerfConfig.quick_config() if args.quick else PerfConfig()
    if args.phases:
        cfg.phases = tuple(x.strip() for x in args.phases.split(",") if x.strip())
        bad = set(cfg.phases) - set(PHASES)
        if bad:
            print(f"unknown phase(s): {sorted(bad)}", file=sys.stderr)
            return 2
    if args.servers:
        cfg.throughput_servers = tuple(s.strip() for s in args.servers.split(","))
        bad = set(cfg.throughput_servers) - set(SERVER_ARGV)
        if bad:
            print(f"unknown server(s): {sorted(bad)}", file=sys.stderr)
            return 2
    command = "ssevsws perf" + (" --quick" if args.quick else "")
    run_dir, perf = run_perf(cfg, Path(args.results), note=args.note, command=command)
    print()
    print(ratio_table(perf))
    print(f"\n{run_dir / 'perf.md'}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "perf",
        help="measure the harness itself: server throughput vs raw asyncio and alternatives, "
        "idle capacity, load generator ceiling, end to end",
    )
    p.add_argument("--quick", action="store_true", help="scaled-down version (~3 min)")
    p.add_argument("--results", default=str(ROOT / "results"), help="results root folder")
    p.add_argument("--phases", default="", help=f"comma list of {','.join(PHASES)}")
    p.add_argument("--servers", default="", help="comma list of servers for throughput: "
                   + ",".join(SERVER_ARGV))  # fmt: skip
    p.add_argument("--note", default=None, help="a note printed with the figures")
    p.set_defaults(func=_cmd)


__all__ = ["PerfConfig", "add_parser", "run_perf"]
