"""perf phase "workers": tokens/s and client-added p99 against the number of Locust worker
processes, through the very launcher `ssevsws run --workers N` uses (bench.distributed).

Per arm: one reference server pinned to the server core; a floor point (a handful of
streams, one worker: the delivery latency the path itself costs, its median); then, for
each worker count, a Locust master and N workers running `users` closed-loop users, each
streaming 50-token answers at 50 tokens/s back to back. The master and the workers are
not pinned: they may use every core, the server's included, since the question is what
more processes buy on this machine. Figures per point, over the steady window (from
`warmup_s` after the first request to the end of the run time):

- tokens/s received (and the offered rate, users × 50);
- client-added p99 = delivery p99 (client receive − server stamp) − the floor.

A machine with C cores cannot give more than C processes a core each: on this 2-core box
4 workers share 2 cores with the server, and the figure shows the machine's ceiling, not
a property of Locust's distributed mode.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.distributed import Deployment, Placement
from bench.plan import child_env, locust_command, run_seconds
from bench.procs import Child, spawn
from core.runfolder import read_table, start_run
from core.scenario import PHASE_ENV, PhaseConfig, scenario_from_dict

TOKENS = 50
GAP_MS = 20.0
FLOOR_USERS = 5


def scenario_dict(proto: str, users: int, duration_s: float) -> dict[str, Any]:
    """Closed-loop users streaming `TOKENS` tokens every `GAP_MS` ms, answer after answer."""
    return {
        "name": "perf-workers",
        "arms": [proto],
        "seed": 7,
        "load": {
            "users": users,
            "spawn_rate": max(100.0, users * 4.0),
            "duration_s": duration_s,
            "stop_timeout_s": 3.0,
        },
        "stream": {"tokens": TOKENS, "ttft_ms": 0.0, "gap_ms": GAP_MS, "jitter": 0.0},
        "server": {"heartbeat_s": 0.0},
    }


def window_figures(
    streams: Any, tokens: Any, warmup_s: float, duration_s: float
) -> dict[str, float | int | None]:
    """tokens/s and delivery percentiles of the tokens received in the steady window."""
    if streams is None or tokens is None or len(streams) == 0 or len(tokens) == 0:
        return {"tokens_in_window": 0, "tokens_per_s": None, "delivery_ms_p50": None,
                "delivery_ms_p99": None}  # fmt: skip
    t_first = int(streams["t_send_ns"].min())
    t0 = t_first + int(warmup_s * 1e9)
    t1 = t_first + int(duration_s * 1e9)
    recv = tokens["t_recv_ns"].to_numpy(dtype=np.int64, na_value=0)
    server = tokens["t_server_ns"].to_numpy(dtype=np.int64, na_value=-1)
    inside = (recv >= t0) & (recv < t1) & (server >= 0)
    n = int(inside.sum())
    delivery = (recv[inside] - server[inside]) / 1e6
    return {
        "tokens_in_window": n,
        "window_s": (t1 - t0) / 1e9,
        "tokens_per_s": n / ((t1 - t0) / 1e9) if t1 > t0 else None,
        "delivery_ms_p50": float(np.percentile(delivery, 50)) if n else None,
        # p99 needs enough samples to mean something (368: docs' rule for p99)
        "delivery_ms_p99": float(np.percentile(delivery, 99)) if n >= 368 else None,
    }


def client_cpu_pct(resources: Any) -> float | None:
    """CPU of the load processes, as they sampled themselves (role "client", every 2 s):
    the sum over processes of each one's median (100 = one core)."""
    if resources is None or len(resources) == 0:
        return None
    own = resources[resources["role"].astype(object) == "client"]
    if len(own) == 0:
        return None
    return float(own.groupby("pid")["cpu_pct"].median().sum())


def run_point(
    proto: str,
    url: str,
    *,
    users: int,
    workers: int,
    duration_s: float,
    warmup_s: float,
    results: Path,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """One Locust master + `workers` workers against `url` in a run folder of its own
    under `results`; the window figures, per-worker rows and the folder."""
    sc = scenario_from_dict(scenario_dict(proto, users, duration_s))
    run_dir = start_run(results, f"{proto}-w{workers}-u{users}", manifest={"kind": "perf-workers"})
    phase = f"perf-workers/{proto}/w{workers}"
    url = url.replace("http://", "ws://", 1) if proto == "ws" else url
    cfg = run_dir / "phase.json"
    PhaseConfig(str(run_dir), phase, proto, proto, url, sc.to_dict(), seed=sc.seed, rep=1).dump(cfg)
    place = Placement(Deployment(workers=workers))
    children: list[Child] = []

    def start(name: str, cmd: list[str], path: Path, env: dict[str, str]) -> Child:
        child = spawn(name, cmd, log_path=path, env=env, cwd=run_dir)
        children.append(child)
        return child

    cmd = locust_command(sc, run_dir / "locust" / "phase")
    timeout = run_seconds(sc) + sc.load.stop_timeout_s + 30 + place.extra_timeout_s()
    try:
        procs = place.start_load(
            cmd, run_dir / "locust" / "phase.log", child_env({PHASE_ENV: str(cfg)}), start
        )
        code = procs.master.wait(timeout)
        place.finish_load(procs, lambda c, g: c.stop(grace_s=g))
    finally:
        for child in children:
            child.stop(grace_s=3.0)
    streams = read_table(run_dir, "streams")
    tokens = read_table(run_dir, "tokens")
    fig = window_figures(streams, tokens, warmup_s, duration_s)
    fig["client_cpu_pct"] = client_cpu_pct(read_table(run_dir, "resources"))
    rows = streams["worker"].astype(object).value_counts() if len(streams) else {}
    point = {
        "proto": proto,
        "workers": workers,
        "users": users,
        "offered_tokens_per_s": users * 1000.0 / GAP_MS,
        **fig,
        "streams": len(streams),
        "rows_by_worker": {str(k): int(v) for k, v in dict(rows).items()},
        "locust_exit_code": code,
        "run_dir": str(run_dir.relative_to(results.parent)),
        "cpus": sorted(os.sched_getaffinity(0)),
    }
    log(
        f"  workers {proto} x{workers} {users} users: {_num(point['tokens_per_s'])} tok/s "
        f"(nominal {_num(point['offered_tokens_per_s'])}), delivery p99 "
        f"{_num(point['delivery_ms_p99'], 2)} ms, client CPU {_num(point['client_cpu_pct'])}%, "
        "rows by worker "
        f"{sorted(point['rows_by_worker'].values())}"
    )
    return point


def worker_scaling(
    proto: str,
    url: str,
    counts: tuple[int, ...],
    *,
    users: int,
    duration_s: float,
    warmup_s: float,
    results: Path,
    log: Callable[[str], None] = print,
    server_stats: Callable[[bool], dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """The floor, then one point per worker count; client-added p99 = p99 − floor.
    `server_stats(reset)`: the server's /v1/stats (its lag: late sends are the server's,
    not the client's), reset before each point."""
    common = {"duration_s": duration_s, "warmup_s": warmup_s, "results": results, "log": log}
    floor = run_point(proto, url, users=FLOOR_USERS, workers=1, **common)
    floor_ms = floor["delivery_ms_p50"] or 0.0
    points = []
    for n in counts:
        if server_stats is not None:
            server_stats(True)
        pt = run_point(proto, url, users=users, workers=n, **common)
        if server_stats is not None:
            pt["server_lag_us_p99"] = ((server_stats(False) or {}).get("lag_us") or {}).get("p99")
        p99 = pt["delivery_ms_p99"]
        pt["client_added_ms_p99"] = None if p99 is None else p99 - floor_ms
        points.append(pt)
    return {
        "proto": proto,
        "floor_ms": floor_ms,
        "floor_point": floor,
        "points": points,
        "cores": os.cpu_count(),
    }


def _num(v: float | None, nd: int = 0) -> str:
    return "—" if v is None else f"{v:,.{nd}f}"


# --------------------------------------------------------------------------- report

HEADER = ["arm", "workers", "users", "nominal tokens/s", "tokens/s", "floor ms",
          "delivery p99 ms", "client-added p99 ms", "client CPU %", "server lag p99 µs",
          "stream rows per worker"]  # fmt: skip


def note(perf: dict[str, Any]) -> str:
    cores = perf.get("host", {}).get("cpu_count") or os.cpu_count()
    return (
        f"A Locust master and N worker processes (the launcher of `ssevsws run --workers N`), "
        f"closed-loop users streaming {TOKENS} tokens at {1000 / GAP_MS:g} tokens/s answer "
        "after answer; nominal = users × 50 (the closed loop's gaps between answers keep the "
        "received rate a little below it). The server is pinned to one core, the Locust "
        "processes are not (client CPU % is theirs, summed; server lag p99 shows when they "
        f"took the server's core). This machine has {cores} cores: more workers than cores cannot "
        "add CPU, so past that count the figure shows this machine's ceiling, not Locust's."
    )


def rows(scaling: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [s["proto"], p["workers"], p["users"], p["offered_tokens_per_s"], p["tokens_per_s"],
         s["floor_ms"], p["delivery_ms_p99"], p.get("client_added_ms_p99"),
         p.get("client_cpu_pct"), p.get("server_lag_us_p99"),
         " / ".join(str(v) for v in sorted(p["rows_by_worker"].values()))]
        for s in scaling
        for p in s["points"]
    ]  # fmt: skip


def figure(perf: dict[str, Any], fig_dir: Path, plt: Any, bound_ms: float) -> Path | None:
    """perf_workers.png: tokens/s and client-added p99 against worker processes, per arm."""
    scaling = perf.get("workers") or []
    if not scaling:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for s in scaling:
        xs = [p["workers"] for p in s["points"]]
        left.plot(xs, [p["tokens_per_s"] or 0 for p in s["points"]], "o-", label=s["proto"])
        right.plot(
            xs,
            [p.get("client_added_ms_p99") or float("nan") for p in s["points"]],
            "o-",
            label=s["proto"],
        )
    nominal = max((p["offered_tokens_per_s"] for s in scaling for p in s["points"]), default=0)
    left.axhline(nominal, color="grey", ls=":", label="nominal")
    right.axhline(bound_ms, color="grey", ls=":", label=f"{bound_ms:g} ms bound")
    cores = perf.get("host", {}).get("cpu_count") or os.cpu_count() or 0
    for ax in (left, right):
        ax.axvline(cores, color="#bb5555", ls="--", lw=0.8, label=f"{cores} cores")
        ax.set_xlabel("Locust worker processes")
        ax.set_xticks(sorted({p["workers"] for s in scaling for p in s["points"]}))
        ax.legend(fontsize=8)
    left.set_title("tokens/s received")
    right.set_title("client-added delay p99 (ms)")
    fig.suptitle(
        f"Load generator: worker processes on a {cores}-core machine — more workers than "
        "cores cannot add CPU (the machine's ceiling)",
        fontsize=10,
    )
    fig.tight_layout()
    path = fig_dir / "perf_workers.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
