"""Pure functions over perf.json: ratios and targets, the ratio table, perf.md, figures,
and `compare_perf` for `ssevsws compare` on two perf runs.

Ratios use tokens per server CPU-second ("tokens/s per core"): the server is pinned to one
core, so on a quiet box this equals tokens/s at 100 % CPU, and on a busy box (or when the
client, not the server, is the bottleneck) it still measures the server's cost per token.
Every ratio is recomputable from the same perf.json: `value == ours / ref`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.perf import workers as W
from bench.perf.why import why_section
from core import markdown
from core.arms import all_arms, get_arm

SCHEMA = "perf/1"

#: The project's own servers: every registered arm with a reference server (core.arms)
#: that speaks the native payload (the provider-format arms run on the same servers).
OURS: tuple[str, ...] = tuple(
    a.name for a in all_arms() if a.server_kind and a.format == "native" and not a.is_browser
)  # the browser arms run on these same servers
#: server name -> (label, group); groups: ours | limit | alternative | bare
SERVERS: dict[str, tuple[str, str]] = {
    **{name: (f"project {get_arm(name).label}", "ours") for name in OURS},
    "raw": ("raw asyncio TCP (limit)", "limit"),
    "starlette": ("sse-starlette on uvicorn", "alternative"),
    "websockets-default": ("websockets, defaults (deflate)", "alternative"),
    "aiohttp-sse": ("bare aiohttp SSE", "bare"),
    "aiohttp-ws": ("bare aiohttp WS", "bare"),
    "websockets-bare": ("bare websockets (compression off)", "bare"),
}

TARGETS = {
    "raw": 0.6,
    "starlette": 2.0,
    "websockets-default": 1.5,
    "idle": 1.2,
    "ceiling_tokens_per_s": 25_000.0,
    "client_added_ms_p99": 5.0,
    "e2e_delivery_ms_p99": 10.0,
    "e2e_streams": 1000,
    # harness TTFT − the server's true first send (the first token's send stamp)
    "ttft_minus_server_ms_p50": 1.0,
    "ttft_minus_server_ms_p99": 5.0,
}


# ----------------------------------------------------------------------------- lookups
def _flood(perf: Mapping[str, Any], server: str, n: int | None = None) -> dict[str, Any] | None:
    rows = [
        r
        for r in perf.get("throughput", [])
        if r.get("server") == server
        and r.get("mode") == "flood"
        and r.get("tokens_per_server_cpu_s")
    ]
    if n is not None:
        rows = [r for r in rows if r.get("n") == n]
    return max(rows, key=lambda r: r["n"]) if rows else None


def _idle(perf: Mapping[str, Any], server: str) -> dict[str, Any] | None:
    for r in perf.get("idle", []):
        if r.get("server") == server and r.get("kib_per_conn") is not None:
            return r
    return None


def _check(name: str, value: float | None, target: float, op: str, **extra: Any) -> dict[str, Any]:
    if value is None:
        return {"name": name, "value": None, "target": target, "op": op, "pass": None,
                "margin": None, "margin_pct": None, **extra}  # fmt: skip
    ok = value >= target if op == ">=" else value <= target
    return {
        "name": name,
        "value": value,
        "target": target,
        "op": op,
        "pass": ok,
        "margin": value - target,
        "margin_pct": 100.0 * (value - target) / target if target else None,
        **extra,
    }


def compute_ratios(perf: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every target of issue 7 that perf.json has the data for, with PASS/MISS and margin."""
    out: list[dict[str, Any]] = []
    n_big = max(
        (r["n"] for r in perf.get("throughput", []) if r.get("mode") == "flood"), default=None
    )
    pairs = [(ours, ref, TARGETS[ref]) for ours in OURS for ref in ("raw", "starlette")] + [
        ("ws", "websockets-default", TARGETS["websockets-default"])
    ]
    for ours, ref, target in pairs:
        a, b = _flood(perf, ours, n_big), _flood(perf, ref, n_big)
        if a is None or b is None:
            continue
        va, vb = a["tokens_per_server_cpu_s"], b["tokens_per_server_cpu_s"]
        out.append(
            _check(
                f"{ours} / {ref} (flood N={n_big}, tokens per server CPU-s)",
                va / vb, target, ">=", kind="throughput", ours=ours, ref=ref,
                ours_value=va, ref_value=vb,
            )
        )  # fmt: skip
    for ours, ref in (
        ("sse", "aiohttp-sse"),
        ("ws", "aiohttp-ws"),
        ("ws-websockets", "websockets-bare"),
    ):
        a, b = _idle(perf, ours), _idle(perf, ref)
        if a is None or b is None or not b["kib_per_conn"]:
            continue
        out.append(
            _check(
                f"idle KiB/conn {ours} / {ref}", a["kib_per_conn"] / b["kib_per_conn"],
                TARGETS["idle"], "<=", kind="idle", ours=ours, ref=ref,
                ours_value=a["kib_per_conn"], ref_value=b["kib_per_conn"],
            )
        )  # fmt: skip
    for c in perf.get("ceiling", []):
        if c.get("processes") != 1:
            continue
        out.append(
            _check(
                f"client ceiling {c['proto']} (1 process, tokens/s at client-added p99 <= "
                f"{c['bound_ms']:g} ms)", c["ceiling_tokens_per_s"],
                TARGETS["ceiling_tokens_per_s"], ">=", kind="ceiling", ours=c["proto"],
                bounded_by_points=c.get("bounded_by_points"),
            )
        )  # fmt: skip
    for e in perf.get("e2e", []):
        out.append(
            _check(
                f"e2e {e['proto']} delivery p99 ms ({e['users']} streams x 50 tok/s)",
                e.get("delivery_ms_p99"), TARGETS["e2e_delivery_ms_p99"], "<=", kind="e2e",
                ours=e["proto"], users=e["users"],
            )
        )  # fmt: skip
        out.append(
            _check(f"e2e {e['proto']} lost tokens ({e['users']} streams)", float(e.get("lost", 0)),
                   0.0, "<=", kind="e2e", ours=e["proto"], users=e["users"])
        )  # fmt: skip
        for q in ("p50", "p99"):
            key = f"ttft_minus_server_ms_{q}"
            if key in e:
                out.append(
                    _check(
                        f"e2e {e['proto']} harness TTFT − server first send {q} ms "
                        f"({e['users']} streams)", e.get(key), TARGETS[key], "<=", kind="e2e",
                        ours=e["proto"], users=e["users"],
                    )
                )  # fmt: skip
    for h in perf.get("hold", []):
        out.append(
            _check(
                f"hold {h['proto']}: streams at once in one client process (of {h['n']:,})",
                float(h.get("streams_concurrent_max") or 0), float(h["n"]), ">=",
                kind="hold", ours=h["proto"],
            )
        )  # fmt: skip
        out.append(
            _check(f"hold {h['proto']}: lost tokens", float(h.get("lost", 0)), 0.0, "<=",
                   kind="hold", ours=h["proto"])
        )  # fmt: skip
    return out


# ----------------------------------------------------------------------------- text
def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{nd}f}"
    return str(v)


def verdict(r: Mapping[str, Any]) -> str:
    if r["pass"] is None:
        return "n/a"
    if r["pass"]:
        return "PASS"
    if r["op"] == ">=":
        return f"MISS by {_fmt(-r['margin'])} ({_fmt(r['margin_pct'], 0)}%)"
    return f"MISS by {_fmt(r['margin'])} over"


def ratio_table(perf: Mapping[str, Any]) -> str:
    """The table the command prints at the end: check, value, target, verdict."""
    rows = perf.get("ratios") or compute_ratios(perf)
    lines = [f"{'check':<72} {'value':>10} {'target':>10}  verdict"]
    for r in rows:
        lines.append(
            f"{r['name']:<72} {_fmt(r['value']):>10} {r['op']} {_fmt(r['target']):>7}  {verdict(r)}"
        )
    if perf.get("busy_machine_note"):
        lines.append(f"note: {perf['busy_machine_note']}")
    return "\n".join(lines)


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table, cells formatted as perf.md prints figures (also the README block);
    core.markdown writes it."""
    return markdown.md_table(header, rows, fmt=_fmt)


def render_md(perf: Mapping[str, Any]) -> str:
    host = perf.get("host", {})
    pin = perf.get("pinning", {})
    parts = [
        f"# Performance — {perf.get('run_id', '')}",
        "",
        f"Command: `{perf.get('command', 'ssevsws perf')}`"
        + (" (quick: scaled-down sizes)" if perf.get("quick") else ""),
        f"Machine: {host.get('cpu_model', '?')}, {host.get('cpu_count', '?')} CPUs, "
        f"kernel {host.get('kernel', '?')}, Python {host.get('python', '?')}.",
        f"Pinning: servers on CPU {pin.get('server_cpus')}, clients on CPU {pin.get('client_cpus')}"
        + (" (shared: one CPU)" if pin.get("shared") else "")
        + ".",
        f"Open files: {perf.get('nofile_note', '')}",
    ]
    if perf.get("busy_machine_note"):
        parts.append(f"**{perf['busy_machine_note']}**")
    parts += ["", "## Targets", "", md_table(
        ["check", "value", "target", "verdict"],
        [[r["name"], r["value"], f"{r['op']} {_fmt(r['target'])}", verdict(r)]
         for r in perf.get("ratios", [])],
    )]  # fmt: skip
    parts += why_section(perf, lambda name: SERVERS.get(name, (name,))[0])
    thr = perf.get("throughput", [])
    if thr:
        parts += ["", "## Server throughput", "",
                  "flood: ttft 0, gap 0 (one event-loop pass per token); paced: 50 tokens/s per "
                  "stream. tokens/s as received by the client in the window; µs/token and "
                  "tokens per CPU-s from the server's own CPU time. paced: *active* = streams "
                  "whose tokens flowed in the window (mean; fewer than N when connecting all N "
                  "took longer than the first streams lasted), *window kept* = tokens/s ÷ "
                  "(active × 50; above 1 = streams catching up after falling behind), "
                  "*rate kept* = per stream, scheduled ÷ actual first→last span; *end late* "
                  "includes waiting to be accepted.", "",
                  md_table(
                      ["server", "mode", "N", "tokens/s", "server CPU %", "µs/token",
                       "tokens/CPU-s", "active", "window kept", "rate kept p50 / worst 1%",
                       "all open s", "end late p99 ms", "lag p99 µs", "errors"],
                      [[SERVERS.get(r["server"], (r["server"],))[0], r["mode"], r["n"],
                        r.get("tokens_per_s"), r.get("server_cpu_pct"),
                        r.get("server_us_per_token"), r.get("tokens_per_server_cpu_s"),
                        r.get("active_streams_mean"),
                        _fmt(r.get("window_rate_kept"), 3) if r["mode"] == "paced" else None,
                        (f"{_fmt(r.get('rate_kept'), 3)} / {_fmt(r.get('rate_kept_p01'), 3)}"
                         if r["mode"] == "paced" else None), r.get("ready_s"),
                        r.get("end_lateness_ms_p99"),
                        (r.get("server_lag_us") or {}).get("p99"), len(r.get("errors", []))]
                       for r in thr],
                  )]  # fmt: skip
    idle = perf.get("idle", [])
    if idle:
        parts += ["", "## Idle capacity", "", md_table(
            ["server", "conns", "opened", "KiB/conn (slope)", "idle CPU %",
             "heartbeat B/conn-h out", "B/conn-h in", "connect batch s", "connect p99 ms",
             "heartbeat s"],
            [[SERVERS.get(r["server"], (r["server"],))[0], r["n"], r["opened"],
              r.get("kib_per_conn"), r.get("idle_cpu_pct"),
              r.get("heartbeat_bytes_out_per_conn_hour"), r.get("bytes_in_per_conn_hour"),
              r.get("connect_wall_s"), r.get("connect_ms_p99"), r.get("heartbeat_s")]
             for r in idle],
        )]  # fmt: skip
    ceil = perf.get("ceiling", [])
    if ceil:
        rows = []
        for c in ceil:
            for p in c["points"]:
                rows.append(
                    [
                        c["proto"],
                        c["processes"],
                        p["users"],
                        p["nominal_tokens_per_s"],
                        c["floor_ms"],
                        p["delivery_ms_p99"],
                        p["client_added_ms_p99"],
                        p["client_cpu_pct"],
                        p["client_cpu_us_per_token"],
                        p["lost"],
                        p["ok"],
                    ]
                )
        parts += ["", "## Load generator ceiling (loadtests.drive, gevent)", "",
                  "client-added = delivery p99 − floor (median delivery with 5 streams).", "",
                  md_table(["arm", "procs", "streams", "tokens/s", "floor ms",
                             "delivery p99 ms", "client-added p99 ms", "client CPU %",
                             "client µs/token", "lost", "within bound"], rows),
                  "", md_table(["arm", "procs", "ceiling streams", "ceiling tokens/s",
                                 "client CPU % there"],
                                [[c["proto"], c["processes"], c["ceiling_streams"],
                                  c["ceiling_tokens_per_s"], c["client_cpu_pct_at_ceiling"]]
                                 for c in ceil])]  # fmt: skip
    if perf.get("workers"):
        parts += ["", "## Worker processes (Locust distributed mode)", "", W.note(perf), "",
                  md_table(W.HEADER, W.rows(perf["workers"])),
                  "", "![workers](figures/perf_workers.png)"]  # fmt: skip
    parts += client_section(perf)
    e2e = perf.get("e2e", [])
    if e2e:
        parts += ["", "## End to end (project clients and servers)", "",
                  "TTFT − server send: per stream, the first token's arrival minus its "
                  "server send stamp (the harness's TTFT minus the server's true one; one "
                  "host, one monotonic clock).", "", md_table(
            ["arm", "streams", "procs", "TTFT err ms (median)", "ITL err ms (median)",
             "delivery p50 ms", "delivery p99 ms", "TTFT − server send p50 / p99 ms",
             "received", "expected", "lost", "client CPU %", "client waiting for a CPU %",
             "client µs/token"],
            [[e["proto"], e["users"], e["processes"], e.get("ttft_error_ms"),
              e.get("itl_error_ms"), e.get("delivery_ms_p50"), e.get("delivery_ms_p99"),
              f"{_fmt(e.get('ttft_minus_server_ms_p50'))} / "
              f"{_fmt(e.get('ttft_minus_server_ms_p99'))}",
              e["tokens_received"], e["tokens_expected"], e["lost"], e["client_cpu_pct"],
              e.get("client_runqueue_wait_pct"), e.get("client_cpu_us_per_token")]
             for e in e2e],
        )]  # fmt: skip
    if perf.get("tcp"):
        parts += ["", "## TIME_WAIT between phases (`ss -s`)", "", md_table(
            ["after", "timewait", "estab"],
            [[t["phase"], t["timewait"], t["estab"]] for t in perf["tcp"]])]  # fmt: skip
    if perf.get("notes"):
        parts += ["", "## Notes", ""] + [f"- {n}" for n in perf["notes"]]
    return "\n".join(parts) + "\n"


def client_section(perf: Mapping[str, Any]) -> list[str]:
    """perf.md's "The client beside the server": per arm, the load client's CPU per token
    and per stream next to the server's (same streams), its ceiling, the end-to-end
    delivery, and one client process holding many idle streams (memory per connection,
    client and server)."""
    cost = {r["proto"]: r for r in perf.get("client", [])}
    hold = {r["proto"]: r for r in perf.get("hold", [])}
    if not cost and not hold:
        return []
    ceil = {c["proto"]: c for c in perf.get("ceiling", []) if c.get("processes") == 1}
    e2e = {e["proto"]: e for e in perf.get("e2e", [])}
    rows = []
    for proto in sorted(set(cost) | set(hold)):
        c, h, k, e = (
            cost.get(proto, {}),
            hold.get(proto, {}),
            ceil.get(proto, {}),
            e2e.get(proto, {}),
        )
        rows.append([
            proto, c.get("client_us_per_token"), c.get("server_us_per_token"),
            c.get("client_us_per_stream"), c.get("server_us_per_stream"),
            k.get("ceiling_tokens_per_s"), e.get("delivery_ms_p99"),
            f"{_fmt(h.get('streams_concurrent_max'))} / {_fmt(h.get('n'))}" if h else None,
            h.get("client_kib_per_conn"), h.get("server_kib_per_conn"),
            h.get("client_cpu_pct_held"), h.get("server_cpu_pct_held"),
        ])  # fmt: skip
    first = next(iter(cost.values()), {})
    runs = first.get("runs", [])
    shape = ", ".join(
        f"{r['kind']}: {r['users']} users × {r['sessions']} × {r['tokens_per_stream']} tokens"
        for r in runs
    )
    h0 = next(iter(hold.values()), {})
    return [
        "", "## The client beside the server", "",
        "µs per token and per stream: CPU seconds of each process (the load client from its "
        "own process times, the server from psutil) over two runs of the same streams at "
        f"50 tokens/s ({shape}), solved for cpu = a·tokens + b·streams. Ceiling: one client "
        "process (below). Hold: one client process holding that many streams at once "
        f"(a token every {_fmt(h0.get('token_every_s'))} s, heartbeat every "
        f"{_fmt(h0.get('heartbeat_s'))} s); KiB per connection = slope of RSS over open "
        "descriptors as they opened; CPU while all were held.", "",
        md_table(
            ["arm", "client µs/token", "server µs/token", "client µs/stream",
             "server µs/stream", "ceiling tokens/s (1 proc)", "e2e delivery p99 ms",
             "hold streams at once", "client KiB/conn", "server KiB/conn",
             "client CPU % held", "server CPU % held"],
            rows,
        ),
    ]  # fmt: skip


# ----------------------------------------------------------------------------- figures
def write_figures(perf: Mapping[str, Any], fig_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    flood = [r for r in perf.get("throughput", []) if r.get("mode") == "flood"]
    if flood:
        servers = [s for s in SERVERS if any(r["server"] == s for r in flood)]
        ns = sorted({r["n"] for r in flood})
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        for ax, key, title in (
            (axes[0], "tokens_per_s", "tokens/s received (flood)"),
            (axes[1], "tokens_per_server_cpu_s", "tokens per server CPU-second (flood)"),
        ):
            width = 0.8 / max(1, len(ns))
            for j, n in enumerate(ns):
                vals = []
                for s in servers:
                    row = next((r for r in flood if r["server"] == s and r["n"] == n), None)
                    vals.append((row or {}).get(key) or 0)
                ax.bar([i + j * width for i in range(len(servers))], vals, width, label=f"N={n}")
            ax.set_xticks([i + width * (len(ns) - 1) / 2 for i in range(len(servers))])
            ax.set_xticklabels(
                [SERVERS[s][0] for s in servers], rotation=35, ha="right", fontsize=8
            )
            ax.set_title(title)
            ax.legend()
        fig.suptitle(
            f"Server throughput — {perf.get('run_id', '')}"
            + (" (quick, busy machine)" if perf.get("quick") else "")
        )
        fig.tight_layout()
        p = fig_dir / "perf_throughput.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    workers_png = W.figure(dict(perf), fig_dir, plt, TARGETS["client_added_ms_p99"])
    if workers_png is not None:
        paths.append(workers_png)
    ratios = perf.get("ratios", [])
    if ratios:
        fig, ax = plt.subplots(figsize=(12, 0.45 * len(ratios) + 1))
        ax.axis("off")
        cells = [
            [r["name"], _fmt(r["value"]), f"{r['op']} {_fmt(r['target'])}", verdict(r)]
            for r in ratios
        ]
        table = ax.table(
            cellText=cells,
            colLabels=["check", "value", "target", "verdict"],
            loc="center",
            cellLoc="left",
            colWidths=[0.62, 0.1, 0.1, 0.18],
        )
        table.auto_set_font_size(False)
        table.set_fontsize(8)
        for i, r in enumerate(ratios, start=1):
            color = "#d8f0d8" if r["pass"] else ("#f6d5d5" if r["pass"] is False else "#eeeeee")
            table[i, 3].set_facecolor(color)
        fig.tight_layout()
        p = fig_dir / "perf_ratios.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths


# ----------------------------------------------------------------------------- compare
def _load(obj: Mapping[str, Any] | str | Path) -> Mapping[str, Any]:
    if isinstance(obj, Mapping):
        return obj
    path = Path(obj)
    if path.is_dir():
        path = path / "perf.json"
    return json.loads(path.read_text(encoding="utf-8"))


def compare_perf(
    json_a: Mapping[str, Any] | str | Path, json_b: Mapping[str, Any] | str | Path
) -> str:
    """Two perf runs side by side (ratios, then flood throughput per server): the
    regression check of issue 7. Takes parsed perf.json dicts, perf.json paths or run dirs."""
    a, b = _load(json_a), _load(json_b)
    ra = {r["name"]: r for r in (a.get("ratios") or compute_ratios(a))}
    rb = {r["name"]: r for r in (b.get("ratios") or compute_ratios(b))}
    names = list(ra) + [n for n in rb if n not in ra]
    ida, idb = a.get("run_id", "A"), b.get("run_id", "B")
    lines = [f"perf compare: A = {ida}{' (quick)' if a.get('quick') else ''}, "
             f"B = {idb}{' (quick)' if b.get('quick') else ''}", "",
             f"{'check':<72} {'A':>10} {'B':>10} {'B/A':>7}  {'target':>9}  A / B"]  # fmt: skip
    for name in names:
        x, y = ra.get(name), rb.get(name)
        va = x["value"] if x else None
        vb = y["value"] if y else None
        rel = (vb / va) if va and vb is not None else None
        ref = x or y
        assert ref is not None
        lines.append(
            f"{name:<72} {_fmt(va):>10} {_fmt(vb):>10} {_fmt(rel):>7}  "
            f"{ref['op']} {_fmt(ref['target']):>6}  "
            f"{verdict(x) if x else '—'} / {verdict(y) if y else '—'}"
        )
    lines += ["", f"{'flood tokens per server CPU-s':<40} {'N':>6} {'A':>10} {'B':>10} {'B/A':>7}"]
    keys = sorted({(r["server"], r["n"]) for p in (a, b) for r in p.get("throughput", [])
                   if r.get("mode") == "flood"})  # fmt: skip
    for server, n in keys:
        fa, fb = _flood(a, server, n), _flood(b, server, n)
        va = fa["tokens_per_server_cpu_s"] if fa else None
        vb = fb["tokens_per_server_cpu_s"] if fb else None
        rel = (vb / va) if va and vb is not None else None
        lines.append(f"{SERVERS.get(server, (server,))[0]:<40} {n:>6} {_fmt(va):>10} "
                     f"{_fmt(vb):>10} {_fmt(rel):>7}")  # fmt: skip
    return "\n".join(lines)


def write_report(run_dir: Path, perf: dict[str, Any]) -> dict[str, Path]:
    """perf.json (with ratios filled in), perf.md and figures/ in `run_dir`."""
    from core.runfolder import write_json

    perf["schema"] = SCHEMA
    perf["ratios"] = compute_ratios(perf)
    out = {"json": write_json(run_dir, "perf.json", perf)}
    md = run_dir / "perf.md"
    md.write_text(render_md(perf), encoding="utf-8")
    out["md"] = md
    for p in write_figures(perf, run_dir / "figures"):
        out[p.stem] = p
    return out
