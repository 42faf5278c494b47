"""The run report: what `notebooks/report.ipynb` calls, section by section.

A notebook cell calls one function here; each function computes from the one
:class:`Report` object (its `summary` is analysis.summary.summarize of the run, computed
once), shows the result in the notebook (Markdown / PNG outputs, which become
``report.html``) and appends the same text — and the same PNG, saved under
``figures/`` — to the Markdown report, so both say the same numbers.
`finish` writes ``report.md`` and ``summary.json``.

    from analysis import report
    rep = report.load("results/latest")
    report.show_header(rep); report.show_status(rep); report.show_summary(rep)
    report.figure_ttft(rep); ...; report.show_claims(rep); report.finish(rep)

Outside a notebook nothing is displayed; the files are still written. The cost section
uses the run's measured usage per arm (analysis.cost.usage_from_records) to calibrate the
cost model, then scales it to a usage profile (default `DEFAULT_PROFILE`).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis import claims as C
from analysis import cost as K
from analysis import metrics as M
from analysis import plots as P
from analysis import resources as R
from analysis.cost_run import CostInputs, cost_inputs
from analysis.cost_run import scenario_rows as _scen
from analysis.load import RunData, load_run, load_runs
from analysis.summary import _RATIO_KEYS, _ROWS, _cell, _ratio_cell, summarize

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

DEFAULT_PROFILE = "support-assistant-10k"
THINK_TIMES_S = (0.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0)
MAUS = (1_000.0, 3_000.0, 10_000.0, 30_000.0, 100_000.0, 300_000.0, 1_000_000.0)
FIG_DPI = 110
_REPO_ROOT = Path(__file__).resolve().parents[1]

#: Every figure of a full report: (file stem, section). Tests and the HTML check use it.
FIGURES: tuple[str, ...] = (
    "ttft_cdf",
    "itl_cdf",
    "e2e",
    "delivery_cdf",
    "ramp",
    "server_cpu",
    "memory_per_connection",
    "bytes_per_token",
    "connection_time",
    "reconnect_outcomes",
    "cancel_outcomes",
    "cost_monthly",
    "cost_think_time",
    "cost_mau",
    "cost_ratio",
    "proxy_buffering",
    "proxy_idle",
)


# --------------------------------------------------------------------------- the object


@dataclass
class Report:
    """Everything one report is built from, plus what has been written so far."""

    data: RunData
    summary: dict[str, Any]
    out_dir: Path | None
    title: str
    profile_name: str = DEFAULT_PROFILE
    platforms: Sequence[str] | None = None
    md: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def main(self) -> str | None:
        """Scenario of the headline latency figures (claims.main_scenario)."""
        return C.main_scenario(self.summary)

    def cached(self, key: str, fn: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]


def resolve_run(run: str | Path, results: str | Path = "results") -> Path:
    """``latest`` → ``results/latest``; a path as given. FileNotFoundError when there is no
    manifest.json there."""
    p = Path(run)
    if str(run) == "latest":
        p = Path(results) / "latest"
    # Jupyter starts a kernel in the notebook's folder: relative paths also resolve
    # against the repository root, where `results/` lives.
    for cand in (p, _REPO_ROOT / p) if not p.is_absolute() else (p,):
        if (cand / "manifest.json").is_file():
            return cand.resolve()
    raise FileNotFoundError(f"no run folder at {p} (no manifest.json)")


def load(
    run: str | Path | RunData,
    out: str | Path | None = None,
    *,
    profile: str = DEFAULT_PROFILE,
    platforms: Sequence[str] | None = None,
    n_boot: int = 1000,
    title: str | None = None,
) -> Report:
    """Load a run and summarise it once. ``out`` (default: the run folder) receives
    report.md, figures/ and summary.json."""
    data = run if isinstance(run, RunData) else load_run(resolve_run(run))
    summary = summarize(data, n_boot=n_boot)
    out_dir = Path(out) if out is not None else data.path
    rid = data.run_id or "run"
    return Report(
        data=data,
        summary=summary,
        out_dir=out_dir,
        title=title or f"SSE vs WebSocket — run {rid}",
        profile_name=profile,
        platforms=list(platforms) if platforms else None,
    )


# --------------------------------------------------------------------------- output helpers


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def _show_md(text: str) -> None:
    if _in_notebook():
        from IPython.display import Markdown, display

        display(Markdown(text))


def emit(rep: Report | CompareReport, text: str) -> None:
    """Add a Markdown block to the report and show it in the notebook."""
    rep.md.append(text.rstrip() + "\n")
    _show_md(text)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIG_DPI)
    try:  # cost_plots draws with pyplot: release its global figure
        import matplotlib.pyplot as plt

        plt.close(fig)
    except Exception:  # pragma: no cover - pyplot unavailable
        pass
    return buf.getvalue()


def emit_figure(rep: Report | CompareReport, name: str, fig: Figure, caption: str = "") -> bytes:
    """Save ``figures/<name>.png``, link it from the Markdown, show it in the notebook."""
    data = _png(fig)
    if rep.out_dir is not None:
        fdir = rep.out_dir / "figures"
        fdir.mkdir(parents=True, exist_ok=True)
        (fdir / f"{name}.png").write_bytes(data)
    rep.figures.append(name)
    alt = caption or name.replace("_", " ")
    rep.md.append(f"![{alt}](figures/{name}.png)\n" + (f"\n*{caption}*\n" if caption else ""))
    if _in_notebook():
        from IPython.display import Image, Markdown, display

        display(Image(data=data, format="png", metadata={"name": name}))
        if caption:
            display(Markdown(f"*{caption}*"))
    return data


def _fmt(v: Any, fmt: str = "{:.2f}") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/m"
    try:
        return fmt.format(v)
    except (TypeError, ValueError):
        return str(v)


def _usd(v: Any) -> str:
    """``$1,234.50`` / ``−$0.36`` (sign before the currency); n/m when not a number."""
    if not isinstance(v, int | float) or not math.isfinite(v):
        return "n/m"
    return f"{'−' if v < -0.005 else ''}${abs(v):,.2f}"


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (cells are str()-ed, pipes escaped)."""

    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _titled(fig: Figure, suffix: str) -> Figure:
    """Append ``suffix`` (e.g. the scenario) to the first axes title."""
    if fig.axes and suffix:
        ax = fig.axes[0]
        t = ax.get_title()
        if fig._suptitle is not None:  # two-panel figures carry the title above
            fig.suptitle(f"{fig._suptitle.get_text()} — {suffix}")
        elif t:
            ax.set_title(f"{t} — {suffix}")
    return fig


# --------------------------------------------------------------------------- derived frames


def _with_scenario(df: pd.DataFrame) -> pd.DataFrame:
    if df is None or df.empty or "phase" not in df:
        return df
    ph = df["phase"].astype(object)
    return df.assign(scenario=ph.map({p: M.scenario_of(p) for p in pd.unique(ph)}).to_numpy())


def _streams(rep: Report, scenario: str | None) -> pd.DataFrame:
    return rep.cached(
        f"streams:{scenario}",
        lambda: M.stream_metrics(_scen(rep.data.streams, scenario), rep.data.connections),
    )


def _tokens(rep: Report, scenario: str | None) -> pd.DataFrame:
    def f() -> pd.DataFrame:
        tk = rep.data.tokens
        if scenario is None or tk.empty:
            return tk
        uids = _scen(rep.data.streams, scenario)["stream_uid"]
        return tk[tk["stream_uid"].isin(uids)]

    return rep.cached(f"tokens:{scenario}", f)


def _scenario_suffix(sc: str | None) -> str:
    return f"scenario {sc}" if sc else ""


def _find_scenario(rep: Report, prefixes: Sequence[str]) -> list[str]:
    return [s for s in rep.summary.get("scenarios", {}) if s.startswith(tuple(prefixes))]


# --------------------------------------------------------------------------- text sections


def show_header(rep: Report) -> None:
    """Title, what was run, on what, from which commit."""
    m = rep.data.manifest
    git = m.get("git") or {}
    host = m.get("host") or {}
    sha = git.get("sha7") or m.get("git_sha7") or "?"
    dirty = " (dirty tree)" if git.get("dirty") else ""
    lines = [f"# {rep.title}", ""]
    rows = [
        ("run", rep.data.run_id or "?"),
        ("scenario / suite", m.get("scenario_name") or "?"),
        ("created (UTC)", m.get("created_utc") or "?"),
        ("completed (UTC)", m.get("completed_utc") or "—"),
        ("git", f"{sha}{dirty}"),
        ("schema version", m.get("schema_version", "?")),
        ("arms", ", ".join(_arm_label(a) for a in m.get("arms") or []) or "?"),
    ]
    if host:
        cpu = host.get("cpu_model") or host.get("cpu") or ""
        cores = host.get("logical_cores") or host.get("cpu_count") or host.get("cores") or ""
        mem = host.get("memory_bytes") or host.get("mem_total_bytes")
        mem_txt = f", {mem / 1024**3:.1f} GiB" if isinstance(mem, int | float) else ""
        kernel = host.get("kernel") or host.get("platform") or ""
        rows.append(("host", f"{cpu} {cores} cores{mem_txt} {kernel}".strip()))
    pk = m.get("packages") or {}
    if pk:
        rows.append(("packages", ", ".join(f"{k} {v}" for k, v in sorted(pk.items()) if v)))
    lines.append(md_table(["", ""], rows))
    lines.append("")
    lines.append(
        "Every number below is computed from this run's recorded rows by `analysis` "
        "(summary.json holds them all). `n/m` = not measured in this run."
    )
    emit(rep, "\n".join(lines))


def _arm_label(arm: Any) -> str:
    """``sse`` or ``sse (foreign server at URL)`` from a manifest arm (a name or a dict)."""
    if not isinstance(arm, Mapping):
        return str(arm)
    name = str(arm.get("name", "?"))
    if arm.get("reference_server") is False:
        return f"{name} (your server at {arm.get('url')})"
    return name


def _phase_entries(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(phase name, state) from the manifest's ``phases`` (a list of names or dicts, or a
    mapping name → state/dict); state "" when not recorded."""
    ph = manifest.get("phases")
    out: list[tuple[str, str]] = []
    if isinstance(ph, Mapping):
        items: Iterable[Any] = [
            {"name": k, **v} if isinstance(v, Mapping) else {"name": k, "status": v}
            for k, v in ph.items()
        ]
    elif isinstance(ph, list):
        items = ph
    else:
        items = []
    for it in items:
        if isinstance(it, str):
            out.append((it, ""))
        elif isinstance(it, Mapping):
            name = it.get("name") or it.get("phase") or "?"
            state = it.get("status") or it.get("state") or ""
            if not state and "ended" in it:
                state = "complete" if it.get("ended") else "incomplete"
            out.append((str(name), str(state)))
    return out


_DONE_STATES = {"complete", "completed", "done", "ok", "finished"}


def run_status(rep: Report | RunData, summary: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Status, reason and what is missing: phases the manifest lists whose state is not a
    finished one (ok/complete), phases planned in ``order`` that never started, phases
    without recorded streams, planned scenarios (``scenarios``) with no data."""
    data = rep.data if isinstance(rep, Report) else rep
    summ = rep.summary if isinstance(rep, Report) else (summary or {})
    m = data.manifest
    phases = _phase_entries(m)
    recorded = set()
    if not data.streams.empty:
        recorded = {str(p) for p in pd.unique(data.streams["phase"].astype(object).dropna())}
    skipped = [n for n, s in phases if s and s.lower() == "skipped"]  # e.g. no nginx
    unfinished = [
        n for n, s in phases if s and s.lower() not in _DONE_STATES and s.lower() != "skipped"
    ]
    listed = {n for n, _ in phases}
    order = [str(n) for n in (m.get("order") or []) if isinstance(n, str)]
    not_started = [n for n in order if n not in listed]  # planned (``order``), never begun
    no_data = [
        n for n in [*(n for n, _ in phases), *not_started] if n not in recorded and n not in skipped
    ]
    planned = m.get("scenarios") or (m.get("suite") or {}).get("scenarios") or []
    planned_names = [
        (p.get("name") if isinstance(p, Mapping) else str(p)) for p in planned if p is not None
    ]
    have = set(summ.get("scenarios") or {})
    # a scenario with [proxy] variants has data under "<scenario>.<variant>"
    missing_sc = [
        s
        for s in planned_names
        if s and s not in have and not any(h.startswith(s + ".") for h in have)
    ]
    return {
        "status": m.get("status") or "unknown",
        "reason": m.get("incomplete_reason"),
        "phases_listed": len(phases),
        "phases_recorded": sorted(recorded),
        "unfinished_phases": unfinished,
        "phases_not_started": not_started,
        "phases_without_data": no_data,
        "phases_skipped": skipped,
        "scenarios_without_data": missing_sc,
    }


def show_status(rep: Report) -> dict[str, Any]:
    """The run's status; for an incomplete run, what is missing."""
    st = run_status(rep)
    lines = ["## Run status", ""]
    if st["status"] == "complete":
        lines.append(f"**complete** — {len(st['phases_recorded'])} phase(s) with recorded streams.")
    else:
        reason = f" ({st['reason']})" if st["reason"] else ""
        lines.append(
            f"**{st['status']}**{reason}: this report covers only what the run flushed before "
            "it stopped."
        )
    if st["unfinished_phases"]:
        lines.append(f"- phases that did not finish: {', '.join(st['unfinished_phases'])}")
    if st["phases_not_started"]:
        lines.append(f"- phases that never started: {', '.join(st['phases_not_started'])}")
    if st["phases_without_data"]:
        lines.append(f"- phases with no recorded streams: {', '.join(st['phases_without_data'])}")
    if st.get("phases_skipped"):
        why = sorted(
            {
                str(r.get("skipped"))
                for r in C.proxy_records_from_manifest(rep.data.manifest).values()
                if r.get("skipped")
            }
        )
        lines.append(
            f"- phases skipped (not run, not faked): {', '.join(st['phases_skipped'])}"
            + (f" — {'; '.join(why)}" if why else "")
        )
    if st["scenarios_without_data"]:
        lines.append(f"- scenarios with no data: {', '.join(st['scenarios_without_data'])}")
    if st["status"] != "complete" and not (
        st["unfinished_phases"]
        or st["phases_not_started"]
        or st["phases_without_data"]
        or st["scenarios_without_data"]
    ):
        lines.append(
            "- the manifest does not list the planned phases; recorded phases: "
            + (", ".join(st["phases_recorded"]) or "none")
        )
    flags = rep.summary.get("flags") or []
    if flags:
        lines += ["", "Flags:"] + [f"- {f}" for f in flags]
    emit(rep, "\n".join(lines))
    return st


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """Per scenario: metrics × arms with SSE/arm ratios (95 % CI), as Markdown tables.
    Same rows and formats as analysis.summary.format_table."""
    out: list[str] = []
    for sc, block in (summary.get("scenarios") or {}).items():
        arms = block.get("arms", {})
        ratio_names = list(block.get("ratios", {}))
        header = ["metric", *arms, *(f"ratio {r}" for r in ratio_names)]
        rows = []
        for label, path, fmt in _ROWS:
            row = [label] + [_cell(a, path, fmt) for a in arms.values()]
            for rn in ratio_names:
                key = _RATIO_KEYS.get(label)
                row.append(_ratio_cell(block["ratios"][rn].get(key)) if key else "")
            rows.append(row)
        out += [f"### Scenario `{sc}`", "", md_table(header, rows), ""]
    out.append(
        "n/m = not measured in this run; n/a (n=…) = too few samples for that percentile "
        "(no p95 below 72 samples, no p99 below 368); ratios = SSE ÷ arm, medians with "
        "95 % bootstrap CI."
    )
    return "\n".join(out)


def show_summary(rep: Report) -> None:
    emit(rep, "## Headline numbers\n\n" + summary_markdown(rep.summary))


# --------------------------------------------------------------------------- figures


def figure_ttft(rep: Report) -> None:
    sc = rep.main
    fig = P.plot_ttft_cdf(_streams(rep, sc))
    emit_figure(rep, "ttft_cdf", _titled(fig, _scenario_suffix(sc)))


def figure_itl(rep: Report) -> None:
    sc = rep.main
    gaps = M.token_gaps(_tokens(rep, sc), _scen(rep.data.streams, sc))
    emit_figure(rep, "itl_cdf", _titled(P.plot_itl_cdf(gaps), _scenario_suffix(sc)))


def figure_e2e(rep: Report) -> None:
    sc = rep.main
    emit_figure(rep, "e2e", _titled(P.plot_e2e(_streams(rep, sc)), _scenario_suffix(sc)))


def figure_delivery(rep: Report) -> None:
    sc = rep.main
    d = M.delivery_latency(_tokens(rep, sc), _scen(rep.data.streams, sc))
    emit_figure(rep, "delivery_cdf", _titled(P.plot_delivery_cdf(d), _scenario_suffix(sc)))


def figure_ramp(rep: Report) -> None:
    """Throughput and SLO attainment vs concurrency from the ramp scenario."""
    found = _find_scenario(rep, ("ramp",))
    sc = found[0] if found else None
    if sc is None:
        emit_figure(
            rep,
            "ramp",
            P.not_measured(
                "Throughput and SLO attainment vs concurrency", "(no ramp scenario in this run)"
            ),
        )
        return
    slo = rep.summary.get("slo", {})
    rp = M.ramp(
        _scen(rep.data.streams, sc),
        _tokens(rep, sc),
        slo_ttft_ms=slo.get("ttft_ms", 1000.0),
        slo_tpot_ms=slo.get("tpot_ms", 50.0),
    )
    emit_figure(rep, "ramp", _titled(P.plot_ramp(rp), _scenario_suffix(sc)))


def figure_server_cpu(rep: Report) -> None:
    sc = rep.main
    cpu = R.server_cpu(_scen(rep.data.resources, sc), _scen(rep.data.streams, sc), _tokens(rep, sc))
    emit_figure(rep, "server_cpu", _titled(P.plot_server_cpu(cpu), _scenario_suffix(sc)))


def figure_memory(rep: Report) -> None:
    """RSS slope per connection; each dot is one scenario (bar = median over scenarios)."""
    res = _with_scenario(rep.data.resources)
    rss = (
        R.rss_per_connection(res, by=["scenario", "arm"]) if res is not None and len(res) else None
    )
    emit_figure(rep, "memory_per_connection", P.plot_memory_per_connection(rss))


def figure_bytes(rep: Report) -> None:
    sc = rep.main
    bt = M.bytes_per_token(
        _streams(rep, sc), _tokens(rep, sc), _scen(rep.data.connections, sc), by="arm"
    )
    emit_figure(rep, "bytes_per_token", _titled(P.plot_bytes_per_token(bt), _scenario_suffix(sc)))


def figure_connection_time(rep: Report) -> None:
    """Connection-seconds per session and idle share: the scenario with the largest idle
    share (idle-hold or chat with think time), else the main one."""
    best, best_share = rep.main, -1.0
    for sc, block in (rep.summary.get("scenarios") or {}).items():
        for a in block.get("arms", {}).values():
            share = (a.get("connections") or {}).get("idle_share")
            if (
                isinstance(share, int | float)
                and share > best_share
                and sc.startswith(("chat", "idle"))
            ):
                best, best_share = sc, float(share)
    ct = M.connection_time(
        _scen(rep.data.connections, best), _scen(rep.data.streams, best), by="arm"
    )
    emit_figure(rep, "connection_time", _titled(P.plot_connection_time(ct), _scenario_suffix(best)))


def _outcomes_figure(rep: Report, name: str, prefixes: Sequence[str], title: str) -> None:
    found = _find_scenario(rep, prefixes)
    if not found:
        emit_figure(rep, name, P.not_measured(title, f"(no {prefixes[0]} scenario in this run)"))
        return
    frames = []
    for sc in found:
        s = _scen(rep.data.streams, sc)
        if len(found) > 1:
            s = s.assign(arm=s["arm"].astype(object) + f" · {sc}")
        frames.append(s)
    emit_figure(rep, name, P.plot_outcomes(pd.concat(frames, ignore_index=True), title=title))


def figure_reconnect(rep: Report) -> None:
    _outcomes_figure(rep, "reconnect_outcomes", ("reconnect",), "Reconnect scenario: outcomes")
    rows = []
    for sc in _find_scenario(rep, ("reconnect",)):
        for arm, a in rep.summary["scenarios"][sc]["arms"].items():
            rc = a.get("reconnect") or {}
            rows.append(
                [
                    sc,
                    arm,
                    rc.get("streams_dropped", 0),
                    rc.get("reconnects", 0),
                    _fmt((rc.get("gap_ms") or {}).get("p50"), "{:.1f}"),
                    _fmt((rc.get("gap_ms") or {}).get("p99"), "{:.1f}"),
                    (a.get("integrity") or {}).get("lost", 0),
                    (a.get("integrity") or {}).get("dup", 0),
                ]
            )
    if rows:
        head = [
            "scenario",
            "arm",
            "dropped streams",
            "reconnects",
            "drop→next token p50 ms",
            "p99 ms",
            "lost",
            "dup",
        ]
        emit(rep, md_table(head, rows))


def figure_cancel(rep: Report) -> None:
    _outcomes_figure(rep, "cancel_outcomes", ("cancel",), "Cancel scenarios: outcomes")


# --------------------------------------------------------------------------- proxy (issue 6)


def _proxy_records(rep: Report) -> dict[str, dict[str, Any]]:
    return C.proxy_records_from_manifest(rep.data.manifest)


def _variant_order(variants: Iterable[str]) -> list[str]:
    vs = list(variants)
    return [v for v in vs if v == C.DIRECT] + [v for v in vs if v != C.DIRECT]


def figure_proxy_buffering(rep: Report) -> None:
    """C3: TTFT and E2E medians per nginx variant vs direct (same run), plus the nginx
    settings each variant ran with (from the manifest's proxy records)."""
    variants = C.proxy_variants(rep.summary, C.C3_SCENARIO)
    rows = []
    for v in _variant_order(variants):
        for arm, a in variants[v].items():
            rows.append(
                {
                    "variant": v,
                    "arm": arm,
                    "ttft_p50": (a.get("ttft_ms") or {}).get("p50"),
                    "e2e_p50": (a.get("e2e_ms") or {}).get("p50"),
                    "ttft_p99": (a.get("ttft_ms") or {}).get("p99"),
                    "streams": a.get("streams"),
                    "ok": (a.get("outcomes") or {}).get("ok", 0),
                }
            )
    df = pd.DataFrame(rows)
    emit_figure(rep, "proxy_buffering", P.plot_proxy_latency(df if len(df) else None))
    if not rows:
        return
    recs = _proxy_records(rep)
    table = []
    for r in rows:
        rec = next(
            (x for k, x in recs.items() if k.startswith(f"{C.C3_SCENARIO}.{r['variant']}/")), {}
        )
        nv = rec.get("variant") or {}
        setting = (
            "no proxy"
            if r["variant"] == C.DIRECT
            else (
                f"buffering {'on' if nv.get('buffering') else 'off'}, "
                f"HTTP/{nv.get('upstream_http')} upstream, "
                f"buffers {nv.get('buffer_size')} + {nv.get('buffers')}, "
                f"X-Accel-Buffering: {'no' if rec.get('server_accel_header') else 'not sent'}"
                if nv
                else "?"
            )
        )
        table.append(
            [
                r["variant"],
                r["arm"],
                setting,
                _fmt(r["ttft_p50"], "{:.1f}"),
                _fmt(r["ttft_p99"], "{:.1f}"),
                _fmt(r["e2e_p50"], "{:.1f}"),
                f"{r['ok']} / {r['streams']}",
            ]
        )
    head = ["variant", "arm", "nginx", "TTFT p50 ms", "TTFT p99 ms", "E2E p50 ms", "ok / streams"]
    emit(rep, md_table(head, table))


def figure_proxy_idle(rep: Report) -> None:
    """C4: streams that survived / were cut by nginx's proxy_read_timeout, heartbeat off
    vs on, per arm; nginx's own count of "upstream timed out" next to the client's."""
    variants = C.proxy_variants(rep.summary, C.C4_SCENARIO)
    recs = _proxy_records(rep)
    rows, table = [], []
    for v in variants:
        for arm, a in variants[v].items():
            oc = a.get("outcomes") or {}
            cut = sum(int(oc.get(o) or 0) for o in C.CUT_OUTCOMES)
            mine = [x for k, x in recs.items() if k.startswith(f"{C.C4_SCENARIO}.{v}/{arm}/")]
            timed_out = sum(
                int((x.get("log_events") or {}).get("upstream_timed_out") or 0) for x in mine
            )
            rec = mine[0] if mine else {}
            hb = rec.get("server_heartbeat_s")
            to = (rec.get("variant") or {}).get("read_timeout_s")
            rows.append({"variant": v, "arm": arm, "survived": int(oc.get("ok") or 0), "cut": cut})
            table.append(
                [
                    v,
                    arm,
                    _fmt(to, "{:g} s"),
                    "off" if hb == 0 else _fmt(hb, "{:g} s"),
                    int(oc.get("ok") or 0),
                    cut,
                    timed_out if mine else "n/m",
                ]
            )
    df = pd.DataFrame(rows)
    emit_figure(rep, "proxy_idle", P.plot_proxy_idle(df if len(df) else None))
    if table:
        head = [
            "variant",
            "arm",
            "proxy_read_timeout",
            "heartbeat",
            "survived",
            "cut (client)",
            "nginx 'upstream timed out'",
        ]
        emit(
            rep,
            md_table(head, table)
            + "\n\nThe client sees a cut as the connection closing without a done event; it "
            "cannot tell nginx from the server. nginx's error.log count is the proxy-side record.",
        )


# --------------------------------------------------------------------------- cost


def _cost(rep: Report) -> CostInputs:
    return rep.cached(
        "cost",
        lambda: cost_inputs(
            rep.data, rep.summary, profile=rep.profile_name, platforms=rep.platforms
        ),
    )


_USAGE_ROWS: tuple[tuple[str, str, str], ...] = (
    ("sessions", "sessions", "{:,.0f}"),
    ("streams", "streams", "{:,.0f}"),
    ("tokens delivered", "tokens_delivered", "{:,.0f}"),
    ("HTTP requests", "http_requests", "{:,.0f}"),
    ("SSE events", "sse_events", "{:,.0f}"),
    ("WS messages out", "ws_messages_out", "{:,.0f}"),
    ("WS messages in", "ws_messages_in", "{:,.0f}"),
    ("connections opened", "connections_opened", "{:,.0f}"),
    ("connection-minutes", "connection_minutes_total", "{:,.2f}"),
    ("  of which idle", "connection_minutes_idle", "{:,.2f}"),
    ("peak concurrent connections", "peak_concurrent_connections", "{:,.0f}"),
    ("bytes out", "bytes_out", "{:,.0f}"),
    ("bytes in", "bytes_in", "{:,.0f}"),
    ("server CPU-seconds", "server_cpu_seconds", "{:,.3f}"),
)


def usage_markdown(ci: CostInputs) -> str:
    """Measured usage per arm (the run) and the calibration it gives the cost model."""
    arms = list(ci.measured)
    rows = [
        [lbl] + [_fmt(getattr(ci.measured[a], k), f) for a in arms] for lbl, k, f in _USAGE_ROWS
    ]
    cal_rows = []
    for lbl, key, f in (
        ("bytes per message besides token text", "message_overhead_bytes", "{:.1f}"),
        ("bytes in / stream", "bytes_in_per_stream", "{:.0f}"),
        ("messages / token in the run (not applied)", "messages_per_token", "{:.3f}"),
        ("server CPU-s / 1k tokens", "cpu_s_per_1k_tokens", "{:.4f}"),
        ("KiB / connection (idle fit, else RSS slope)", "kib_per_connection", "{:.1f}"),
        ("share of a cancelled answer delivered", "cancel_at_fraction", "{:.2f}"),
    ):
        cal_rows.append([lbl] + [_fmt(getattr(ci.calibrations[a], key), f) + "" for a in arms])
    return "\n".join(
        [
            f"Measured in scenario `{ci.scenario}` of this run (per arm):",
            "",
            md_table(["usage", *arms], rows),
            "",
            "Calibration fed to the cost model (n/m → the model's default; the profile, not "
            "the run, decides tokens per frame):",
            "",
            md_table(["per unit", *arms], cal_rows),
        ]
    )


def cost_table_markdown(ci: CostInputs) -> str:
    t = ci.table
    rows = [
        [
            r.platform,
            r.arm,
            f"${r.monthly_usd:,.2f}",
            _fmt(r.usd_per_1m_sessions, "${:,.2f}"),
            _fmt(r.usd_per_connection_hour, "${:,.5f}"),
            r.dominant,
            r.drivers,
        ]
        for r in t.itertuples()
    ]
    head = [
        "platform",
        "arm",
        "$/month",
        "$ per 1M sessions",
        "$ per connection-hour",
        "largest line",
        "what drives each line",
    ]
    return md_table(head, rows)


def ratio_markdown(ci: CostInputs) -> str:
    rows = [
        [
            r.pair,
            f"${r.sse_usd:,.2f}",
            f"${r.ws_usd:,.2f}",
            _fmt(r.ws_over_sse, "{:.2f}×"),
            r.driver or "—",
            _usd(r.driver_gap_usd),
            r.verdict,
        ]
        for r in ci.ratios.itertuples()
    ]
    head = [
        "platform (pairing)",
        "SSE $/month",
        "WS $/month",
        "WS/SSE",
        "driving dimension",
        "WS − SSE on it",
        "C2 band vs the article's 6×",
    ]
    return md_table(head, rows)


def show_cost(rep: Report) -> CostInputs | None:
    """Cost section text: profile, measured usage and calibration, cost table, ratios."""
    ci = _cost(rep)
    p = ci.profile
    lines = [
        "## Cost",
        "",
        f"Profile `{p.name}`: {p.monthly_active_users:,.0f} monthly active users × "
        f"{p.sessions_per_user_per_month:g} sessions × {p.turns_per_session:g} turns, "
        f"{p.tokens_per_answer:,.0f} tokens per answer, think time {p.think_time_s:g} s, "
        f"tab open {p.tab_open_s:g} s. Prices: `analysis/pricing/*.toml` (each file names "
        "its source and the date it was read). Usage per token and per stream is measured in "
        "this run; the profile scales it to a month.",
        "",
    ]
    if not ci.measured or ci.table.empty:
        lines.append(
            "Not measured in this run: the cost model needs measured usage of an SSE "
            "and/or a WS arm (streams with tokens)."
        )
        emit(rep, "\n".join(lines))
        return None
    from analysis.capacity import capacity_markdown

    lines += [
        usage_markdown(ci),
        "",
        capacity_markdown(rep.summary.get("capacity")),
        "",
        "### Monthly cost per platform and arm",
        "",
        cost_table_markdown(ci),
    ]
    if ci.warnings:  # prices older than 90 days or not verified on the provider's page
        lines += ["", "Price warnings:", "", *(f"- {w}" for w in ci.warnings)]
    emit(rep, "\n".join(lines))
    return ci


def show_cost_ratios(rep: Report) -> None:
    ci = _cost(rep)
    if ci.ratios.empty:
        emit(rep, "### SSE vs WS cost per platform\n\nNot measured in this run (needs both arms).")
        return
    emit(
        rep,
        "### SSE vs WS cost per platform\n\n"
        + ratio_markdown(ci)
        + "\n\nThe driving dimension is the billed line with the largest WS − SSE gap.",
    )


def _cost_not_measured(rep: Report, name: str, title: str) -> None:
    emit_figure(rep, name, P.not_measured(title, "(no measured usage for the cost model)"))


def figure_cost_monthly(rep: Report) -> None:
    from analysis import cost_plots

    ci = _cost(rep)
    if ci.table.empty:
        return _cost_not_measured(rep, "cost_monthly", "Monthly cost per platform and arm")
    emit_figure(rep, "cost_monthly", cost_plots.plot_monthly_cost(ci.table))


def figure_cost_ratio(rep: Report) -> None:
    from analysis import cost_plots

    ci = _cost(rep)
    if ci.ratios.empty:
        return _cost_not_measured(rep, "cost_ratio", "WS / SSE monthly cost")
    emit_figure(rep, "cost_ratio", cost_plots.plot_ratio(ci.ratios))


def figure_cost_think_time(rep: Report) -> None:
    from analysis import cost_plots

    ci = _cost(rep)
    if len(ci.calibrations) < 2:
        return _cost_not_measured(rep, "cost_think_time", "Cost vs think time")
    sw = K.think_time_sweep(ci.profile, THINK_TIMES_S, ci.platforms, calibrations=ci.calibrations)
    emit_figure(rep, "cost_think_time", cost_plots.plot_think_time_sweep(sw))
    rows = [
        [
            r.pair,
            _fmt(r.break_even, "{:,.0f} s") if np.isfinite(r.break_even) else "none in range",
            r.cheaper_below,
            r.cheaper_above,
        ]
        for r in sw.break_even.itertuples()
    ]
    emit(
        rep,
        f"Break-even think time (swept {THINK_TIMES_S[0]:g}–{THINK_TIMES_S[-1]:g} s):\n\n"
        + md_table(["pairing", "break-even", "cheaper below", "cheaper above"], rows),
    )


def figure_cost_mau(rep: Report) -> None:
    from analysis import cost_plots

    ci = _cost(rep)
    if len(ci.calibrations) < 2:
        return _cost_not_measured(rep, "cost_mau", "Cost vs monthly active users")
    sw = K.mau_sweep(ci.profile, MAUS, ci.platforms, calibrations=ci.calibrations)
    emit_figure(rep, "cost_mau", cost_plots.plot_mau_sweep(sw))


# --------------------------------------------------------------------------- claims, files


def claim_rows(rep: Report) -> list[dict[str, Any]]:
    ci = _cost(rep)
    ratios = ci.ratios.to_dict("records") if len(ci.ratios) else []
    return rep.cached(
        "claims",
        lambda: C.claims(
            rep.summary,
            cost_ratios=ratios,
            server_metrics=rep.data.server_metrics,
            proxy=_proxy_records(rep),
        ),
    )


def show_claims(rep: Report) -> list[dict[str, Any]]:
    rows = claim_rows(rep)
    emit(
        rep,
        "## Claims\n\nEach claim of the article with this run's numbers and a "
        "verdict; the rules and thresholds are in `analysis/claims.py`.\n\n"
        + C.claims_markdown(rows),
    )
    return rows


def finish(rep: Report) -> dict[str, Path]:
    """Write report.md and summary.json (with the claims) into the output folder."""
    if rep.out_dir is None:
        return {}
    rep.out_dir.mkdir(parents=True, exist_ok=True)
    md = rep.out_dir / "report.md"
    md.write_text("\n".join(rep.md), encoding="utf-8")
    summ = dict(rep.summary)
    if "claims" in rep._cache:
        summ["claims"] = rep._cache["claims"]
    sj = rep.out_dir / "summary.json"
    sj.write_text(json.dumps(summ, indent=2, default=str) + "\n", encoding="utf-8")
    return {"report.md": md, "summary.json": sj}


def full_report(rep: Report) -> dict[str, Path]:
    """Every section in order (what report.ipynb does, for use without a notebook)."""
    show_header(rep)
    show_status(rep)
    show_summary(rep)
    emit(rep, "## Latency")
    figure_ttft(rep)
    figure_itl(rep)
    figure_e2e(rep)
    figure_delivery(rep)
    emit(rep, "## Capacity and resources")
    figure_ramp(rep)
    figure_server_cpu(rep)
    figure_memory(rep)
    figure_bytes(rep)
    figure_connection_time(rep)
    emit(rep, "## Reconnect and cancel")
    figure_reconnect(rep)
    figure_cancel(rep)
    emit(rep, "## Through a proxy (nginx)")
    figure_proxy_buffering(rep)
    figure_proxy_idle(rep)
    show_cost(rep)
    figure_cost_monthly(rep)
    show_cost_ratios(rep)
    figure_cost_ratio(rep)
    figure_cost_think_time(rep)
    figure_cost_mau(rep)
    show_claims(rep)
    return finish(rep)


# --------------------------------------------------------------------------- compare


#: Metrics compared between two runs: label → (path in an arm's summary, format).
COMPARE_ROWS: tuple[tuple[str, tuple[str, ...], str], ...] = tuple(
    (lbl, path, fmt)
    for lbl, path, fmt in _ROWS
    if lbl
    in {
        "streams",
        "TTFT p50 ms",
        "TTFT p99 ms",
        "ITL p50 ms",
        "ITL p99 ms",
        "E2E p50 ms",
        "delivery p50 ms",
        "SLO attainment",
        "tokens/s",
        "app bytes/token",
        "conn-s/session",
        "idle share",
        "server CPU s/1k tok",
        "RSS KiB/conn",
    }
)


def _value(arm: Mapping[str, Any], path: tuple[str, ...]) -> float | None:
    cur: Any = arm
    for p in path:
        if not isinstance(cur, Mapping) or p not in cur:
            return None
        cur = cur[p]
    return float(cur) if isinstance(cur, int | float) and not isinstance(cur, bool) else None


def compare_rows(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Scenario × arm × metric rows present in either summary: value in A, in B, B ÷ A."""
    rows = []
    sa, sb = a.get("scenarios") or {}, b.get("scenarios") or {}
    for sc in [*sa, *(s for s in sb if s not in sa)]:
        arms_a = (sa.get(sc) or {}).get("arms", {})
        arms_b = (sb.get(sc) or {}).get("arms", {})
        for arm in [*arms_a, *(x for x in arms_b if x not in arms_a)]:
            for lbl, path, fmt in COMPARE_ROWS:
                va = _value(arms_a.get(arm, {}), path)
                vb = _value(arms_b.get(arm, {}), path)
                ratio = vb / va if va not in (None, 0) and vb is not None else None
                rows.append(
                    {
                        "scenario": sc,
                        "arm": arm,
                        "metric": lbl,
                        "a": va,
                        "b": vb,
                        "b_over_a": ratio,
                        "fmt": fmt,
                    }
                )
    return rows


def _compare_cells(r: Mapping[str, Any]) -> list[str]:
    f = r["fmt"]
    return [
        r["scenario"],
        r["arm"],
        r["metric"],
        _fmt(r["a"], f),
        _fmt(r["b"], f),
        _fmt(r["b_over_a"], "{:.3f}"),
    ]


COMPARE_HEADER = ("scenario", "arm", "metric", "A", "B", "B/A")


def format_compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    """Plain-text side-by-side table of two runs' summaries."""
    body = [_compare_cells(r) for r in compare_rows(a, b)]
    header = list(COMPARE_HEADER)
    widths = [max(len(str(x[i])) for x in [header, *body]) for i in range(len(header))]
    lines = [
        f"A = {a.get('run_id')} ({a.get('status')})",
        f"B = {b.get('run_id')} ({b.get('status')})",
        "",
        "  ".join(
            h.ljust(w) if i < 3 else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        ),
        "  ".join("-" * w for w in widths),
    ]
    for row in body:
        lines.append(
            "  ".join(
                c.ljust(w) if i < 3 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    lines.append("")
    lines.append("n/m = not measured; B/A = run B ÷ run A.")
    return "\n".join(lines)


@dataclass
class CompareReport:
    """Two runs (same schema version) summarised for a side-by-side report."""

    a: RunData
    b: RunData
    summary_a: dict[str, Any]
    summary_b: dict[str, Any]
    out_dir: Path | None
    md: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)


def load_compare(
    run_a: str | Path, run_b: str | Path, out: str | Path | None = None, *, n_boot: int = 1000
) -> CompareReport:
    """Both runs (SchemaMismatch if their schema versions differ); ``out`` defaults to B's
    folder."""
    a, b = load_runs(resolve_run(run_a), resolve_run(run_b))
    return CompareReport(
        a=a,
        b=b,
        summary_a=summarize(a, n_boot=n_boot),
        summary_b=summarize(b, n_boot=n_boot),
        out_dir=Path(out) if out is not None else b.path,
    )


def show_compare(cr: CompareReport) -> None:
    sa, sb = cr.summary_a, cr.summary_b
    lines = [
        f"# Compare: A = {sa.get('run_id')} vs B = {sb.get('run_id')}",
        "",
        md_table(
            ["", "A", "B"],
            [
                ("run", sa.get("run_id"), sb.get("run_id")),
                ("status", sa.get("status"), sb.get("status")),
                ("scenario / suite", sa.get("scenario_name"), sb.get("scenario_name")),
                (
                    "git",
                    (cr.a.manifest.get("git") or {}).get("sha7") or "?",
                    (cr.b.manifest.get("git") or {}).get("sha7") or "?",
                ),
            ],
        ),
        "",
        "## Main metrics side by side",
        "",
        md_table(COMPARE_HEADER, [_compare_cells(r) for r in compare_rows(sa, sb)]),
        "",
        "B/A = run B ÷ run A; n/m = not measured in that run.",
    ]
    emit(cr, "\n".join(lines))


def _labelled(df: pd.DataFrame, label: str) -> pd.DataFrame:
    if df is None or df.empty or "arm" not in df:
        return df
    return df.assign(arm=df["arm"].astype(object).astype(str) + f" ({label})")


def compare_figures(cr: CompareReport) -> None:
    """TTFT and ITL CDFs of both runs overlaid (main scenario of each)."""
    sca, scb = C.main_scenario(cr.summary_a), C.main_scenario(cr.summary_b)
    sa = _labelled(M.stream_metrics(_scen(cr.a.streams, sca), cr.a.connections), "A")
    sb = _labelled(M.stream_metrics(_scen(cr.b.streams, scb), cr.b.connections), "B")
    emit_figure(cr, "compare_ttft_cdf", P.plot_ttft_cdf(pd.concat([sa, sb], ignore_index=True)))
    ga = _labelled(M.token_gaps(cr.a.tokens, _scen(cr.a.streams, sca)).dropna(subset=["arm"]), "A")
    gb = _labelled(M.token_gaps(cr.b.tokens, _scen(cr.b.streams, scb)).dropna(subset=["arm"]), "B")
    ga = ga.assign(arm=ga["arm"].astype(object)) if ga is not None and len(ga) else ga
    gb = gb.assign(arm=gb["arm"].astype(object)) if gb is not None and len(gb) else gb
    emit_figure(cr, "compare_itl_cdf", P.plot_itl_cdf(pd.concat([ga, gb], ignore_index=True)))


def finish_compare(cr: CompareReport) -> dict[str, Path]:
    if cr.out_dir is None:
        return {}
    cr.out_dir.mkdir(parents=True, exist_ok=True)
    md = cr.out_dir / "compare.md"
    md.write_text("\n".join(cr.md), encoding="utf-8")
    return {"compare.md": md}


def build_report(run: str | Path, out: str | Path | None = None, **kw: Any) -> dict[str, Path]:
    """Execute report.ipynb headless → report.html, report.md, figures/, summary.json."""
    from analysis.report_notebook import build_report as _build

    return _build(run, out, **kw)


def build_compare(
    run_a: str | Path, run_b: str | Path, out: str | Path | None = None, **kw: Any
) -> dict[str, Path]:
    """Execute compare.ipynb headless → compare.html, compare.md, figures/compare_*.png."""
    from analysis.report_notebook import build_compare as _build

    return _build(run_a, run_b, out, **kw)
