"""Measured usage of a run and the :class:`Calibration` it gives the cost model.

Two sources, most detailed first:

* the record tables (streams, connections, resources): :func:`usage_from_records` then
  :func:`calibration_from_usage`;
* the run's summary alone (summary.json — what a committed sample carries):
  :func:`usage_from_summary` and :func:`calibration_from_summary`. Everything the cost
  model needs per token is in it except the bytes a client sends per stream, which then
  stays at the model default (the calibration says so in ``source``).

What a run calibrates — and what it never overrides — is described in
:mod:`analysis.cost_usage` (precedence: what-if > profile > measured > default).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from analysis.cost_usage import DEFAULTS, GB, Calibration, Usage, WireDefaults, protocol_of


def _pos(v: Any) -> float | None:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0
    return float(v) if ok else None


def message_overhead(
    protocol: str,
    bytes_out: float,
    data_msgs: float,
    tokens: float,
    streams: float,
    connections: float,
    defaults: WireDefaults = DEFAULTS,
) -> float | None:
    """Measured bytes a data message costs besides its token text.

    (bytes out − the model's fixed bytes per stream/connection) ÷ data messages −
    ``chars_per_token`` × tokens per message. None when there is nothing to measure.
    """
    if data_msgs <= 0 or tokens <= 0 or bytes_out <= 0:
        return None
    fixed = defaults.fixed_out_bytes(protocol, streams, connections)
    per_msg = (bytes_out - fixed) / data_msgs
    return _pos(per_msg - defaults.chars_per_token * tokens / data_msgs)


def calibration_from_usage(measured: Usage) -> Calibration:
    """Per-message / per-stream figures of a measured usage, to feed the profile model.

    Message overhead from bytes out (see :func:`message_overhead`), bytes in per stream,
    the run's messages per token (excluding one ``done`` per stream; reported only), CPU
    per 1k tokens, KiB per connection = memory GiB·s ÷ connection-seconds.
    """
    if measured.tokens_delivered <= 0 or measured.streams <= 0:
        raise ValueError("calibration needs tokens_delivered > 0 and streams > 0")
    conn_s = measured.connection_minutes_total * 60.0
    data_msgs = max(0.0, measured.messages_out - measured.streams)
    return Calibration(
        message_overhead_bytes=message_overhead(
            measured.protocol,
            measured.bytes_out,
            data_msgs,
            measured.tokens_delivered,
            measured.streams,
            measured.connections_opened,
        ),
        bytes_in_per_stream=_pos(measured.bytes_in / measured.streams),
        messages_per_token=(data_msgs / measured.tokens_delivered) if data_msgs > 0 else None,
        cpu_s_per_1k_tokens=_pos(measured.server_cpu_seconds / measured.tokens_delivered * 1e3),
        kib_per_connection=(
            _pos(measured.memory_gb_seconds * 1024**2 / conn_s) if conn_s > 0 else None
        ),
        source="records",
    )


def with_measured_capacity(cal: Calibration, arm_capacity: Mapping[str, Any] | None) -> Calibration:
    """``cal`` plus the capacity of one arm from :func:`analysis.capacity.capacity`
    (``summary["capacity"]["arms"][arm]``); figures not measured stay None.

    The idle-hold fit's bytes per connection (RSS against open connections while they
    rise) replaces ``cal.kib_per_connection`` when measured: a whole-phase RSS slope of a
    chat phase mixes in allocator growth and connections closing, and read ~0.7 KiB per
    connection where the idle fit read ~17 (results/sample).
    """
    if not arm_capacity:
        return cal
    per_conn = _pos(arm_capacity.get("bytes_per_connection"))
    return replace(
        cal,
        tokens_per_s_per_core=_pos(arm_capacity.get("tokens_per_s_per_core")),
        connections_per_gib=_pos(arm_capacity.get("connections_per_gib")),
        baseline_rss_bytes=_pos(arm_capacity.get("baseline_rss_bytes")),
        kib_per_connection=per_conn / 1024 if per_conn else cal.kib_per_connection,
    )


# --------------------------------------------------------------------------- from a summary


def _sub(block: Mapping[str, Any] | None, key: str) -> Mapping[str, Any]:
    """``block[key]`` when it is a mapping, else an empty one (absent / null sections)."""
    value = (block or {}).get(key)
    return value if isinstance(value, Mapping) else {}


def usage_from_summary(arm: str, block: Mapping[str, Any]) -> Usage | None:
    """Measured :class:`Usage` of one arm from its summary block (scenario → arms → arm).

    tokens = integrity.unique; data messages = integrity.received (+ one done per
    finished stream); bytes out = connection bytes per token × tokens; connection time,
    idle time and connections from ``connections``. None when the block has no tokens.
    """
    tokens = _pos(_sub(block, "integrity").get("unique")) or _pos(block.get("tokens"))
    streams = _pos(block.get("streams"))
    if not tokens or not streams:
        return None
    proto = protocol_of(arm)
    received = float(_sub(block, "integrity").get("received") or tokens)
    done = float(_sub(block, "integrity").get("done") or 0.0)
    conns = block.get("connections") or {}
    held = float(conns.get("held_s") or 0.0)
    idle = min(held, float(conns.get("idle_s") or 0.0))
    n_conn = float(conns.get("connections") or 0.0)
    msgs = (
        {"sse_events": received + done} if proto == "sse" else {"ws_messages_out": received + done}
    )
    return Usage(
        arm=arm,
        protocol=proto,
        sessions=float(block.get("sessions") or conns.get("sessions") or 0.0),
        streams=streams,
        tokens_delivered=tokens,
        connections_opened=n_conn,
        http_requests=streams if proto == "sse" else n_conn,
        ws_messages_in=streams if proto == "ws" else 0.0,
        connection_minutes_total=held / 60.0,
        connection_minutes_idle=idle / 60.0,
        bytes_out=float(_sub(block, "bytes").get("conn_bytes_per_token") or 0.0) * tokens,
        **msgs,
    )


def cancel_fraction(block: Mapping[str, Any] | None) -> float | None:
    """Share of a cancelled answer the client got before it cancelled, from a cancel
    scenario's arm block: (tokens − complete streams × tokens per stream) ÷ (cancelled
    streams × tokens per stream). None without cancelled streams."""
    if not block:
        return None
    cancelled = float(_sub(block, "outcomes").get("cancelled") or 0.0)
    ok = float(_sub(block, "outcomes").get("ok") or 0.0)
    streams = float(block.get("streams") or 0.0)
    expected = float(_sub(block, "integrity").get("tokens_expected") or 0.0)
    tokens = float(_sub(block, "integrity").get("unique") or 0.0)
    if cancelled <= 0 or streams <= 0 or expected <= 0:
        return None
    per_stream = expected / streams
    f = (tokens - ok * per_stream) / (cancelled * per_stream)
    return min(1.0, f) if f > 0 else None


def calibration_from_summary(
    arm: str,
    block: Mapping[str, Any],
    capacity: Mapping[str, Any] | None = None,
    cancel_block: Mapping[str, Any] | None = None,
) -> Calibration | None:
    """Calibration of one arm from its summary block (no record tables needed).

    Message overhead from connection bytes per token; CPU per 1k tokens and KiB per
    connection as the summary reports them (the idle-hold fit replaces the latter via
    :func:`with_measured_capacity`); the cancel figure from the cancel scenario; bytes in
    per stream are not in a summary and stay at the model default.
    """
    u = usage_from_summary(arm, block)
    if u is None:
        return None
    data_msgs = max(0.0, u.messages_out - float(_sub(block, "integrity").get("done") or 0.0))
    cal = Calibration(
        message_overhead_bytes=message_overhead(
            u.protocol, u.bytes_out, data_msgs, u.tokens_delivered, u.streams, u.connections_opened
        ),
        messages_per_token=(data_msgs / u.tokens_delivered) if data_msgs else None,
        cpu_s_per_1k_tokens=_pos(block.get("server_cpu_s_per_1k_tokens")),
        kib_per_connection=_pos(block.get("rss_kib_per_conn")),
        cancel_at_fraction=cancel_fraction(cancel_block),
        source="summary (bytes in per stream: model default)",
    )
    return with_measured_capacity(cal, capacity)


# --------------------------------------------------------------------------- from records


def _peak_overlap(starts: np.ndarray, ends: np.ndarray) -> float:
    """Most intervals open at once (an end at t closes before a start at t)."""
    if len(starts) == 0:
        return 0.0
    times = np.concatenate([starts, ends])
    steps = np.concatenate([np.ones(len(starts)), -np.ones(len(ends))])
    order = np.lexsort((steps, times))
    return float(np.cumsum(steps[order]).max())


def usage_from_records(
    arm: str,
    streams: pd.DataFrame,
    connections: pd.DataFrame | None = None,
    resources: pd.DataFrame | None = None,
) -> Usage:
    """Measured :class:`Usage` of one arm from a run's record tables.

    Pure function of the frames (rows of other arms are ignored):
    sessions = distinct (worker, user, session); streams = stream rows; tokens = Σ n_unique;
    data messages out = Σ n_received + one done per stream that finished; WS messages in =
    one start per stream + one resume per reconnect; SSE requests = streams + reconnects.
    From ``connections``: connections opened, connection-minutes (open → close), idle =
    total − busy, peak concurrent, bytes (client received = server out). Without it, bytes
    out = Σ streams.bytes_in and connection time = request sent → end per stream.
    From ``resources`` (role ``server``): CPU-seconds = Σ per pid of the cumulative CPU
    growth; memory GiB·s = Σ per pid of RSS integrated over time. Keepalives are not
    recorded (0).
    """
    s = streams[streams["arm"] == arm]
    proto = protocol_of(arm)
    n = float(len(s))
    reconnects = float(s["reconnects"].fillna(0).sum()) if "reconnects" in s else 0.0
    done = float(s["done"].fillna(False).astype(bool).sum()) if "done" in s else 0.0
    received = float(s["n_received"].fillna(0).sum())
    kw: dict[str, Any] = {
        "sessions": float(len(s[["worker", "user", "session"]].drop_duplicates())),
        "streams": n,
        "tokens_delivered": float(s["n_unique"].fillna(0).sum()),
    }
    if proto == "sse":
        kw.update(http_requests=n + reconnects, sse_events=received + done)
    else:
        kw.update(ws_messages_out=received + done, ws_messages_in=n + reconnects)
    t0 = float(s["t_send_ns"].min()) if n else 0.0
    t1 = float(s["t_end_ns"].max()) if n else 0.0
    c = connections[connections["arm"] == arm] if connections is not None else None
    if c is not None and len(c):
        c = c.dropna(subset=["t_open_ns"])
        close = c["t_close_ns"].fillna(t1).to_numpy(float)
        opened = c["t_open_ns"].to_numpy(float)
        total_min = float((close - opened).sum()) / 60e9
        busy_min = float(c["busy_ns"].fillna(0).sum()) / 60e9
        kw.update(
            connections_opened=float(len(c)),
            connection_minutes_total=total_min,
            connection_minutes_idle=max(0.0, total_min - busy_min),
            peak_concurrent_connections=_peak_overlap(opened, close),
            bytes_out=float(c["bytes_in"].fillna(0).sum()),
            bytes_in=float(c["bytes_out"].fillna(0).sum()),
        )
        if proto == "ws":
            kw["http_requests"] = float(len(c))  # one upgrade per connection
    else:
        span = (s["t_end_ns"] - s["t_send_ns"]).fillna(0).to_numpy(float)
        kw.update(
            connections_opened=n if proto == "sse" else 0.0,
            connection_minutes_total=float(span.sum()) / 60e9,
            bytes_out=float(s["bytes_in"].fillna(0).sum()),
        )
    if n:
        starts = s["t_send_ns"].to_numpy(float)
        ends = s["t_end_ns"].fillna(t1).to_numpy(float)
        kw["peak_concurrent_streams"] = _peak_overlap(starts, ends)
    if resources is not None and len(resources):
        r = resources[(resources["arm"] == arm) & (resources["role"] == "server")]
        cpu = mem = 0.0
        for _, g in r.sort_values("t_ns").groupby("pid"):
            tot = (g["cpu_user_s"] + g["cpu_sys_s"]).to_numpy(float)
            cpu += float(tot[-1] - tot[0]) if len(tot) > 1 else 0.0
            t = g["t_ns"].to_numpy(float) / 1e9
            rss = g["rss_bytes"].to_numpy(float) / GB
            if len(t) > 1:
                mem += float(np.sum((rss[1:] + rss[:-1]) / 2 * np.diff(t)))
        kw.update(server_cpu_seconds=cpu, memory_gb_seconds=mem)
    if n and t1 > t0:
        kw["hours"] = (t1 - t0) / 3.6e12
    return Usage(arm=arm, protocol=proto, **kw)
