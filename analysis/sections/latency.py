"""Latency, capacity and resource sections: the headline scenario's TTFT / ITL / E2E /
delivery distributions, throughput and SLO attainment along a ramp, server CPU, memory per
connection, bytes per token and connection time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from analysis import clocks as CL
from analysis import metrics as M
from analysis import plots as P
from analysis import resources as R
from analysis.capacity import capacity_markdown
from analysis.render import titled
from analysis.report_data import scenario_suffix
from analysis.results import arms_in
from analysis.sections.base import Fig, Section, Table

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
    d = M.delivery_latency(  # load processes whose clock is not the server's left out
        rep.tokens(rep.main), rep.rows("streams", rep.main), CL.delivery_exclusions(rep.manifest)
    )
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
        Fig(
            "ttft_cdf",
            _ttft,
            caption="Time to first token, one curve per arm (share of streams at or below "
            "each TTFT): curves on top of each other mean the same wait for the first "
            "token; a gap between them is what one protocol adds. The scheduled TTFT is the "
            "floor every curve starts from.",
        ),
        Fig(
            "itl_cdf",
            _itl,
            caption="Every gap between consecutive tokens (log scale): the step at the "
            "scheduled gap is the server's pacing; the tail to the right is what the "
            "transport and the machine add, token by token.",
        ),
        Fig(
            "e2e",
            _e2e,
            caption="End-to-end time of completed streams per arm (first request to last "
            "token): equal boxes mean equal answer times; cancelled streams are counted "
            "apart in the headline tables.",
        ),
        Fig(
            "delivery_cdf",
            _delivery,
            caption="Per token, client receive stamp minus the server's send stamp (one "
            "clock on one machine): the time a token spends in the transport, framing and "
            "parsing included. Sub-millisecond medians mean the protocol adds nothing a "
            "user could see.",
        ),
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


def _ramp_or_none(rep: Report) -> Figure | None:
    return _ramp(rep) if _ramp_group(rep) is not None else None


def _capacity_table(rep: Report) -> str | None:
    return capacity_markdown(rep.summary.capacity) if rep.summary.capacity else None


RAMP = Section(
    "ramp",
    "Capacity",
    lambda rep: _ramp_group(rep) is not None or bool(rep.summary.groups("held_idle")),
    "a scenario whose load steps up (load.ramp_steps) or one holding connections idle",
    (
        Fig(
            "ramp",
            _ramp_or_none,
            caption="Throughput (bars, tokens/s) and SLO attainment (lines) at each load "
            "step of the ramp: the step where attainment falls is where the machine, not "
            "the protocol, runs out; arms that break at the same step have the same "
            "capacity here.",
        ),
        Table("capacity", _capacity_table),
    ),
)


def _server_cpu(rep: Report) -> Figure:
    sc = rep.main
    cpu = R.server_cpu(rep.rows("resources", sc), rep.rows("streams", sc), rep.tokens(sc))
    return _on_main(P.plot_server_cpu(cpu), rep)


def _memory(rep: Report) -> Figure:
    """RSS slope per connection of the groups whose fit passes the validity rule; each dot
    is one scenario group (bar = median over them)."""
    rows = [
        {"group": g, "arm": arm, "kib_per_conn": a.rss_kib_per_conn}
        for g, arm, a in arms_in(rep.summary, rep.summary.groups())
        if a.rss_kib_per_conn is not None
    ]
    if not rows:
        why = sorted(
            {
                a.invalid["rss_kib_per_conn"]
                for _, _, a in arms_in(rep.summary, rep.summary.groups())
                if "rss_kib_per_conn" in a.invalid
            }
        )
        return P.not_measured(
            "Server memory per open connection",
            "no fit passed the validity rule" + (f" ({'; '.join(why[:2])})" if why else ""),
        )
    return P.plot_memory_per_connection(pd.DataFrame(rows))


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
        Fig(
            "server_cpu",
            _server_cpu,
            caption="Server CPU-seconds per 1,000 tokens delivered, per arm and phase: "
            "what one protocol's server spends to push the same tokens. Differences of a "
            "few per cent are within the spread of repetitions on a shared machine.",
        ),
        Fig(
            "memory_per_connection",
            _memory,
            caption="Server memory per open connection: the slope of RSS on open "
            "connections, one dot per scenario whose fit passed the validity rule (R² ≥ "
            "0.9 over ≥ 100 connections). Scenarios with a few dozen connections give no "
            "figure: their RSS moves more with the allocator than with the connections.",
        ),
        Fig(
            "bytes_per_token",
            _bytes,
            caption="Application bytes per token: the token event alone, everything the "
            "client parsed for the stream (framing, ids, heartbeats, done), and with the "
            "HTTP headers or WS upgrade. The gap between the first two bars is the "
            "protocol's framing overhead (claim C8).",
        ),
        Fig(
            "connection_time",
            _connection_time,
            caption="Connection-seconds per session, busy (a stream in flight) and idle: "
            "the idle part is what connection-priced platforms bill for nothing, and it "
            "drives most of the cost differences in the cost section.",
        ),
    ),
)
