"""Proxy sections (nginx between client and server): TTFT / E2E per buffering variant
against direct (C3) and streams cut by an idle timeout with and without heartbeat (C4), each
with the nginx settings the variants ran with (the phases' proxy records)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from analysis import plots as P
from analysis.claims_proxy import CUT_OUTCOMES, DIRECT, proxy_variants, records
from analysis.sections.base import Fig, Section, Table
from analysis.tables import fmt, md_table

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from analysis.report_data import Report

__all__ = ["PROXY_BUFFERING", "PROXY_IDLE"]


def _buffering_rows(rep: Report) -> list[dict[str, Any]]:
    _, variants = proxy_variants(rep.summary, "proxy_buffering")
    rows = []
    for v, group in variants.items():
        for arm, a in rep.summary.scenarios[group].arms.items():
            rows.append(
                {
                    "variant": v,
                    "group": group,
                    "arm": arm,
                    "ttft_p50": a.ttft_ms.p50,
                    "e2e_p50": a.e2e_ms.p50,
                    "ttft_p99": a.ttft_ms.p99,
                    "streams": a.streams,
                    "ok": a.outcome("ok"),
                }
            )
    return rows


def _buffering_figure(rep: Report) -> Figure:
    df = pd.DataFrame(_buffering_rows(rep))
    return P.plot_proxy_latency(df if len(df) else None)


def _nginx_setting(variant: str, rec: dict[str, Any]) -> str:
    if variant == DIRECT:
        return "no proxy"
    nv = rec.get("variant") or {}
    if not nv:
        return "?"
    return (
        f"buffering {'on' if nv.get('buffering') else 'off'}, "
        f"HTTP/{nv.get('upstream_http')} upstream, "
        f"buffers {nv.get('buffer_size')} + {nv.get('buffers')}, "
        f"X-Accel-Buffering: {'no' if rec.get('server_accel_header') else 'not sent'}"
    )


def _buffering_table(rep: Report) -> str | None:
    rows = _buffering_rows(rep)
    if not rows:
        return None
    table = []
    for r in rows:
        recs = records(rep.manifest, r["group"])
        table.append(
            [
                r["variant"],
                r["arm"],
                _nginx_setting(r["variant"], recs[0] if recs else {}),
                fmt(r["ttft_p50"], "{:.1f}"),
                fmt(r["ttft_p99"], "{:.1f}"),
                fmt(r["e2e_p50"], "{:.1f}"),
                f"{r['ok']} / {r['streams']}",
            ]
        )
    head = ["variant", "arm", "nginx", "TTFT p50 ms", "TTFT p99 ms", "E2E p50 ms", "ok / streams"]
    return md_table(head, table)


def _idle_rows(rep: Report) -> list[dict[str, Any]]:
    _, variants = proxy_variants(rep.summary, "proxy_idle")
    rows = []
    for v, group in variants.items():
        hb_conf = rep.summary.scenarios[group].traits.heartbeat_s
        for arm, a in rep.summary.scenarios[group].arms.items():
            mine = records(rep.manifest, group, arm)
            rec = mine[0] if mine else {}
            timed_out = sum(
                int((x.get("log_events") or {}).get("upstream_timed_out") or 0) for x in mine
            )
            hb = rec.get("server_heartbeat_s", hb_conf)
            rows.append(
                {
                    "variant": v,
                    "arm": arm,
                    "survived": a.outcome("ok"),
                    "cut": sum(a.outcome(o) for o in CUT_OUTCOMES),
                    "timeout_s": (rec.get("variant") or {}).get("read_timeout_s"),
                    "heartbeat_s": hb,
                    "timed_out": timed_out if mine else "n/m",
                }
            )
    return rows


def _idle_figure(rep: Report) -> Figure:
    rows = [{k: r[k] for k in ("variant", "arm", "survived", "cut")} for r in _idle_rows(rep)]
    return P.plot_proxy_idle(pd.DataFrame(rows) if rows else None)


def _idle_table(rep: Report) -> str | None:
    rows = _idle_rows(rep)
    if not rows:
        return None
    table = [
        [
            r["variant"],
            r["arm"],
            fmt(r["timeout_s"], "{:g} s"),
            "off" if r["heartbeat_s"] == 0 else fmt(r["heartbeat_s"], "{:g} s"),
            r["survived"],
            r["cut"],
            r["timed_out"],
        ]
        for r in rows
    ]
    head = [
        "variant",
        "arm",
        "proxy_read_timeout",
        "heartbeat",
        "survived",
        "cut (client)",
        "nginx 'upstream timed out'",
    ]
    return (
        md_table(head, table)
        + "\n\nThe client sees a cut as the connection closing without a done event; it "
        "cannot tell nginx from the server. nginx's error.log count is the proxy-side record."
    )


PROXY_BUFFERING = Section(
    "proxy_buffering",
    "Through a proxy: buffering",
    lambda rep: bool(proxy_variants(rep.summary, "proxy_buffering")[1]),
    "a [proxy] scenario with a direct variant and nginx variants (phases that ran)",
    (
        Fig(
            "proxy_buffering",
            _buffering_figure,
            caption="SSE time to first token per proxy variant next to the direct path: a "
            "variant far to the right holds the stream back (buffering); a fix is working "
            "when its TTFT sits on the direct one (claim C3).",
        ),
        Table("proxy_buffering", _buffering_table),
    ),
)

PROXY_IDLE = Section(
    "proxy_idle",
    "Through a proxy: idle timeout",
    lambda rep: bool(proxy_variants(rep.summary, "proxy_idle")[1]),
    "a [proxy] scenario whose streams pause mid-stream (stream.pause_ms) behind nginx",
    (
        Fig(
            "proxy_idle",
            _idle_figure,
            caption="Streams that pause longer than the proxy's read timeout, with and "
            "without a heartbeat: cut streams without it and none with it is claim C4 "
            "holding.",
        ),
        Table("proxy_idle", _idle_table),
    ),
)
