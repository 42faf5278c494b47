"""Latency, capacity and resource sections: the headline scenario's TTFT / ITL / E2E /
delivery distributions, throughput and SLO attainment along a ramp, server CPU, memory per
connection, bytes per token and connection time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from analysis import metrics as M
from analysis import plots as P
from analysis import resources as R
from analysis.render import titled
from analysis.report_data import scenario_suffix
from analysis.sections.base import Fig, Section

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from analysis.report_data import Report

__all__ = ["LATENCY", "RAMP", "RESOURCES", "connection_time_group"]


def _has_main(rep: Report) -> bool:
    return rep.main is not None


def _on_main(fig: Figure, rep: Report) -> Figure:
    return titled(fig, scenario_suffix(rep.main))


def _ttft(rep: Report) -> Figure:
    return _on_main(P.plot_ttft_cdf(rep.streams(rep.main)), rep)


def _itl(rep: Report) -> Figure:
    gaps = M.token_gaps(rep.tokens(rep.main), rep.rows("streams", rep.main))
    return _on_main(P.plot_itl_cdf(gaps), rep)


def _e2e(rep: Report) -> Figure:
    return _on_main(P.plot_e2e(rep.streams(rep.main)), rep)


def _delivery(rep: Report) -> Figure:
    d = M.delivery_latency(rep.tokens(rep.main), rep.rows("streams", rep.main))
    return _on_main(P.plot_delivery_cdf(d), rep)


def _latency_headline(rep: Report) -> str | None:
    main = rep.summary.scenarios.get(rep.main or "")
    if main is None or not main.arms:
        return None
    parts = [
        f"{arm} {a.ttft_ms.p50:.0f} ms" for arm, a in main.arms.items() if a.ttft_ms.p50 is not None
    ]
    return f"TTFT p50 in scenario {rep.main}: {', '.join(parts)}." if parts else None


LATENCY = Section(
    "latency",
    "Latency",
    _has_main,
    "a scenario with streams (the headline one: steady streaming, else open arrivals, else a "
    "ramp, else the one with the most streams)",
    (
        Fig("ttft_cdf", _ttft),
        Fig("itl_cdf", _itl),
        Fig("e2e", _e2e),
        Fig("delivery_cdf", _delivery),
    ),
    headline=_latency_headline,
)


def _ramp_group(rep: Report) -> str | None:
    groups = rep.summary.groups("ramp")
    return groups[0] if groups else None


def _ramp(rep: Report) -> Figure:
    """Throughput and SLO attainment vs concurrency from the first ramp scenario."""
    sc = _ramp_group(rep)
    slo = rep.summary.slo
    rp = M.ramp(
        rep.rows("streams", sc),
        rep.tokens(sc),
        slo_ttft_ms=slo.get("ttft_ms", 1000.0),
        slo_tpot_ms=slo.get("tpot_ms", 50.0),
    )
    return titled(P.plot_ramp(rp), scenario_suffix(sc))


RAMP = Section(
    "ramp",
    "Capacity",
    lambda rep: _ramp_group(rep) is not None,
    "a scenario whose load steps up (load.ramp_steps)",
    (Fig("ramp", _ramp),),
)


def _server_cpu(rep: Report) -> Figure:
    sc = rep.main
    cpu = R.server_cpu(rep.rows("resources", sc), rep.rows("streams", sc), rep.tokens(sc))
    return _on_main(P.plot_server_cpu(cpu), rep)


def _memory(rep: Report) -> Figure:
    """RSS slope per connection; each dot is one scenario group (bar = median over them)."""
    res = rep.data.resources
    rss = R.rss_per_connection(res, by=["group", "arm"]) if res is not None and len(res) else None
    return P.plot_memory_per_connection(rss)


def _bytes(rep: Report) -> Figure:
    sc = rep.main
    bt = M.bytes_per_token(rep.streams(sc), rep.tokens(sc), rep.rows("connections", sc), by="arm")
    return _on_main(P.plot_bytes_per_token(bt), rep)


def connection_time_group(rep: Report) -> str | None:
    """The group whose connections sit idle the most (think time or idle holding), else
    the headline one."""
    best, best_share = rep.main, -1.0
    for g, block in rep.summary.scenarios.items():
        if not (block.traits.think_time or block.traits.held_idle):
            continue
        for a in block.arms.values():
            share = a.connections.idle_share if a.connections else None
            if share is not None and share > best_share:
                best, best_share = g, share
    return best


def _connection_time(rep: Report) -> Figure:
    sc = connection_time_group(rep)
    ct = M.connection_time(rep.rows("connections", sc), rep.rows("streams", sc), by="arm")
    return titled(P.plot_connection_time(ct), scenario_suffix(sc))


RESOURCES = Section(
    "resources",
    "Resources",
    _has_main,
    "a scenario with streams; server figures need the reference server (a foreign server's "
    "are not measured)",
    (
        Fig("server_cpu", _server_cpu),
        Fig("memory_per_connection", _memory),
        Fig("bytes_per_token", _bytes),
        Fig("connection_time", _connection_time),
    ),
)
