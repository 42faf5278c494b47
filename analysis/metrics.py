"""Metrics (docs/methodology.md, "Metrics") from the streams / tokens / connections tables
(core.records).

Pure functions over DataFrames. Inputs may carry pandas nullable dtypes (what
``core.runfolder.read_table`` returns: ``Int64`` stamps with ``<NA>``) or plain numpy
dtypes; stamps are subtracted as integers before any conversion to float milliseconds,
so nanosecond stamps never lose precision. A figure that was not measured (e.g. server
stamps from a foreign server) comes out NaN — never a guess.

One meaning each (names as in vLLM/GuideLLM where they agree):

=====================  ==========================================================
``ttft_ms``            t_first − t_send (first content token − first request sent)
``ttfb_ms``            t_first_byte − t_send (the response's first body byte; WS: the
                       stream's first message); NaN where not recorded (schema < 3)
``first_event_ms``     t_first_event − t_send (first SSE event / WS message of any kind:
                       a role-only chunk, ``response.created``, ``message_start``, a ping)
``e2e_ms``             t_last − t_send
``e2e_sched_ms``       t_last − t_sched (open model: includes the dispatch delay)
``tpot_ms``            (t_last − t_first) / (n_received − 1); NaN below 2 tokens
``dispatch_delay_ms``  t_send − t_sched
``open_ms``            t_open − t_send (request sent → response headers / WS start on
                       an open socket); what the stream waited before the server answered
``connect_ms``         connection's t_open − t_connect (TCP + HTTP headers / WS upgrade),
                       on the stream that opened the connection; NaN for a reused one
``itl_ms``             every gap between consecutive content tokens of a stream, in
                       arrival order (duplicates included, so e2e − ttft == Σ itl)
``delivery_ms``        per token: t_recv − t_server (one monotonic clock on one host; load
                       processes whose clock is not the server's are left out:
                       analysis.clocks)
=====================  ==========================================================

Token-level functions use numpy on factorised stream ids (no per-stream Python loop), so
millions of token rows take well under a second.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.stats import finite

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000

#: Stream columns copied onto token-level rows (ITL gaps, delivery latency).
LABELS = ("arm", "phase", "group")

#: Stream outcomes (core.accounting.OUTCOMES), in display order.
OUTCOMES = ("ok", "cancelled", "aborted", "dropped", "error", "timeout", "stopped")

# --------------------------------------------------------------------------- helpers


def group_keys(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def ns_diff_ms(later: pd.Series, earlier: pd.Series) -> np.ndarray:
    """``(later − earlier)`` in ms as float64, NaN where either stamp is missing.

    The subtraction happens on int64 (exact); only the difference is made float.
    """
    a = later.to_numpy(dtype=np.float64, na_value=np.nan)
    b = earlier.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(a) | np.isnan(b)
    ai = later.to_numpy(dtype=np.int64, na_value=0) if _is_int(later) else None
    bi = earlier.to_numpy(dtype=np.int64, na_value=0) if _is_int(earlier) else None
    d = (ai - bi).astype(np.float64) if ai is not None and bi is not None else a - b
    d = d / NS_PER_MS
    d[missing] = np.nan
    return d


def _is_int(s: pd.Series) -> bool:
    return pd.api.types.is_integer_dtype(s.dtype)


def column(df: pd.DataFrame, name: str) -> pd.Series:
    """A column, or an all-missing Int64 one when the frame lacks it."""
    if name in df:
        return df[name]
    return pd.Series(pd.array([pd.NA] * len(df), dtype="Int64"), index=df.index)


# --------------------------------------------------------------------------- per stream


def stream_metrics(streams: pd.DataFrame, connections: pd.DataFrame | None = None) -> pd.DataFrame:
    """The streams table plus derived per-stream columns (see module table)."""
    out = streams.copy()
    send = column(out, "t_send_ns")
    first = column(out, "t_first_ns")
    last = column(out, "t_last_ns")
    out["ttft_ms"] = ns_diff_ms(first, send)
    out["ttfb_ms"] = ns_diff_ms(column(out, "t_first_byte_ns"), send)
    out["first_event_ms"] = ns_diff_ms(column(out, "t_first_event_ns"), send)
    out["e2e_ms"] = ns_diff_ms(last, send)
    out["e2e_sched_ms"] = ns_diff_ms(last, column(out, "t_sched_ns"))
    out["dispatch_delay_ms"] = ns_diff_ms(send, column(out, "t_sched_ns"))
    out["open_ms"] = ns_diff_ms(column(out, "t_open_ns"), send)
    n = column(out, "n_received").to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["tpot_ms"] = np.where(n >= 2, ns_diff_ms(last, first) / (n - 1), np.nan)
    out["connect_ms"] = np.nan
    if connections is not None and not connections.empty and "conn_uid" in out:
        cm = connection_metrics(connections).drop_duplicates("conn_uid").set_index("conn_uid")
        conn = cm["connect_ms"].reindex(out["conn_uid"].astype(object)).to_numpy(np.float64)
        reused = column(out, "reused_conn")
        fresh = ~reused.astype("boolean").fillna(True).to_numpy(dtype=bool)
        out["connect_ms"] = np.where(fresh, conn, np.nan)
    return out


# --------------------------------------------------------------------------- per token


def _stream_lookup(
    uniques: pd.Index, streams: pd.DataFrame | None, column: str
) -> pd.Categorical | None:
    if streams is None or column not in streams or "stream_uid" not in streams:
        return None
    s = streams.drop_duplicates("stream_uid").set_index("stream_uid")[column]
    return s.reindex(uniques.astype(object)).astype(object).to_numpy()


def _with_labels(
    out: pd.DataFrame, codes: np.ndarray, uniques: pd.Index, streams: pd.DataFrame | None
) -> pd.DataFrame:
    for name in LABELS:
        per_stream = _stream_lookup(uniques, streams, name)
        if per_stream is None:
            continue
        cats, inv = np.unique(pd.Series(per_stream).fillna("").astype(str), return_inverse=True)
        cat_codes = inv[codes]
        cat_codes = np.where(cats[cat_codes] == "", -1, cat_codes)
        out[name] = pd.Categorical.from_codes(cat_codes, categories=pd.Index(cats))
        out[name] = out[name].cat.remove_unused_categories()
    return out


def _ordered_tokens(tokens: pd.DataFrame) -> tuple[np.ndarray, pd.Index, np.ndarray, np.ndarray]:
    """(stream codes, unique stream ids, t_recv int64, row order) with rows sorted by
    (stream, t_recv), ties kept in recorded (arrival) order. Rows without t_recv dropped."""
    t_ser = tokens["t_recv_ns"]
    codes, uniques = pd.factorize(tokens["stream_uid"], sort=False)
    valid = t_ser.notna().to_numpy() & (codes >= 0)
    t = t_ser.to_numpy(dtype=np.int64, na_value=0)
    rows = np.flatnonzero(valid)
    c, tv = codes[rows], t[rows]
    same = c[1:] == c[:-1]
    already = bool(np.all(c[1:] >= c[:-1]) and np.all(tv[1:][same] >= tv[:-1][same]))
    if not already:  # records are usually written stream by stream, in arrival order
        order = np.lexsort((tv, c))  # stable: equal stamps keep arrival order
        rows, c, tv = rows[order], c[order], tv[order]
    return c, pd.Index(uniques), tv, rows


def token_gaps(tokens: pd.DataFrame, streams: pd.DataFrame | None = None) -> pd.DataFrame:
    """ITL: every gap between consecutive content tokens of each stream.

    Returns one row per gap: ``stream_uid`` (categorical), ``arm``/``phase``/``group``
    (categorical, when `streams` carries them), ``seq`` (of the later token), ``itl_ms``.
    A stream with n tokens contributes n − 1 gaps.
    """
    cols = ["stream_uid", *LABELS, "seq", "itl_ms"]
    if tokens is None or tokens.empty:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "itl_ms" else object) for c in cols})
    c, uniques, t, rows = _ordered_tokens(tokens)
    if c.size < 2:
        return token_gaps(tokens.iloc[0:0], streams)
    same = c[1:] == c[:-1]
    gap_ms = (t[1:] - t[:-1])[same] / NS_PER_MS
    gc = c[1:][same]
    seq = tokens["seq"].to_numpy(dtype=np.int64, na_value=-1)[rows[1:][same]]
    out = pd.DataFrame(
        {
            "stream_uid": pd.Categorical.from_codes(gc, categories=uniques.astype(str)),
            "seq": seq,
            "itl_ms": gap_ms,
        }
    )
    return _with_labels(out, gc, uniques, streams)


def delivery_latency(
    tokens: pd.DataFrame,
    streams: pd.DataFrame | None = None,
    exclude: Collection[tuple[str, str]] = (),
) -> pd.DataFrame:
    """Per-token delivery latency ``t_recv − t_server`` (ms), only for tokens that carry a
    server stamp. An empty result means "not measured" (e.g. a foreign server). `exclude`:
    (phase, worker) pairs whose clock is not the server's (analysis.clocks); their streams'
    tokens are left out (needs `streams` with phase, worker and stream_uid)."""
    cols = ["stream_uid", *LABELS, "seq", "delivery_ms"]
    empty = pd.DataFrame(
        {c: pd.Series(dtype=float if c == "delivery_ms" else object) for c in cols}
    )
    if tokens is None or tokens.empty or "t_server_ns" not in tokens:
        return empty
    ts = tokens["t_server_ns"]
    keep = (ts.notna() & tokens["t_recv_ns"].notna()).to_numpy()
    if exclude and streams is not None and {"phase", "worker"} <= set(streams):
        pairs = pd.MultiIndex.from_arrays(
            [streams["phase"].astype(object), streams["worker"].astype(object)]
        )
        dropped = streams["stream_uid"][pairs.isin(list(exclude))]
        keep = keep & ~tokens["stream_uid"].isin(dropped.astype(object)).to_numpy()
    if not keep.any():
        return empty
    sub = tokens.loc[keep]
    d = (
        sub["t_recv_ns"].to_numpy(dtype=np.int64) - sub["t_server_ns"].to_numpy(dtype=np.int64)
    ) / NS_PER_MS
    codes, uniques = pd.factorize(sub["stream_uid"], sort=False)
    out = pd.DataFrame(
        {
            "stream_uid": pd.Categorical.from_codes(
                codes, categories=pd.Index(uniques).astype(str)
            ),
            "seq": sub["seq"].to_numpy(dtype=np.int64, na_value=-1),
            "delivery_ms": d,
        }
    )
    return _with_labels(out, codes, pd.Index(uniques), streams)


def stream_itl_sums(gaps: pd.DataFrame) -> pd.Series:
    """Σ itl_ms per stream (for the ``e2e − ttft == Σ itl`` check)."""
    return gaps.groupby("stream_uid", observed=True)["itl_ms"].sum()


# --------------------------------------------------------------------------- connections


def connection_metrics(connections: pd.DataFrame) -> pd.DataFrame:
    """Connections plus ``connect_ms`` (t_open − t_connect), ``held_s`` (t_close −
    t_connect: the socket exists, and bills, from connect on), ``busy_s`` (busy_ns: a
    stream in flight), ``idle_s`` = max(held − busy, 0). Unclosed connections have NaN
    held/idle (counted separately, not guessed)."""
    out = connections.copy()
    start = column(out, "t_connect_ns")
    if start.isna().all():
        start = column(out, "t_open_ns")
    else:
        start = start.astype("Int64").fillna(column(out, "t_open_ns").astype("Int64"))
    out["connect_ms"] = ns_diff_ms(column(out, "t_open_ns"), column(out, "t_connect_ns"))
    out["held_s"] = ns_diff_ms(column(out, "t_close_ns"), start) / 1000.0
    busy = column(out, "busy_ns").to_numpy(dtype=np.float64, na_value=np.nan) / NS_PER_S
    out["busy_s"] = np.minimum(busy, out["held_s"].to_numpy())  # busy may start before open
    out["idle_s"] = np.maximum(out["held_s"].to_numpy() - out["busy_s"].to_numpy(), 0.0)
    return out


def sessions(streams: pd.DataFrame, by: str | Sequence[str] = "arm") -> pd.Series:
    """Number of user sessions (distinct phase, worker, user, session) per group."""
    keys = group_keys(by)
    ident = [c for c in ("phase", "worker", "user", "session") if c in streams]
    if streams.empty:
        return pd.Series(dtype="int64")
    return streams.drop_duplicates([*dict.fromkeys([*keys, *ident])]).groupby(keys).size()


def connection_time(
    connections: pd.DataFrame,
    streams: pd.DataFrame | None = None,
    by: str | Sequence[str] = "arm",
) -> pd.DataFrame:
    """Connection-seconds held and their idle share, per group.

    Columns: connections, unclosed (no close stamp: excluded from the sums), held_s,
    busy_s, idle_s, idle_share (= idle_s / held_s), sessions, held_s_per_session,
    idle_s_per_session, connect_ms_p50.
    """
    keys = group_keys(by)
    cols = [
        *keys,
        "connections",
        "unclosed",
        "held_s",
        "busy_s",
        "idle_s",
        "idle_share",
        "sessions",
        "held_s_per_session",
        "idle_s_per_session",
        "connect_ms_p50",
    ]
    if connections is None or connections.empty:
        return pd.DataFrame(columns=cols)
    cm = connection_metrics(connections)
    cm["_closed"] = cm["held_s"].notna()
    g = cm.groupby(keys, observed=True, dropna=False)
    out = pd.DataFrame(
        {
            "connections": g.size(),
            "unclosed": g["_closed"].apply(lambda s: int((~s).sum())),
            "held_s": g["held_s"].sum(min_count=1),
            "busy_s": cm[cm["_closed"]].groupby(keys, observed=True)["busy_s"].sum(),
            "idle_s": g["idle_s"].sum(min_count=1),
            "connect_ms_p50": g["connect_ms"].median(),
        }
    )
    out["busy_s"] = out["busy_s"].fillna(0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["idle_share"] = out["idle_s"] / out["held_s"]
    if streams is not None and not streams.empty:
        out["sessions"] = sessions(streams, keys).reindex(out.index)
    else:
        out["sessions"] = np.nan
    out["held_s_per_session"] = out["held_s"] / out["sessions"]
    out["idle_s_per_session"] = out["idle_s"] / out["sessions"]
    return out.reset_index()[cols]


def closed_by_counts(connections: pd.DataFrame | None) -> dict[str, int]:
    """How many connections each side closed (``closed_by``; unclosed ones not counted)."""
    if connections is None or connections.empty or "closed_by" not in connections:
        return {}
    counts = connections["closed_by"].dropna().astype(str).value_counts()
    return {str(k): int(v) for k, v in sorted(counts.items())}


# --------------------------------------------------------------------------- integrity, outcomes


def integrity(streams: pd.DataFrame, by: str | Sequence[str] = "arm") -> pd.DataFrame:
    """Sums per group: streams, tokens_expected, received, unique, lost (only streams that
    were meant to finish), dup, out_of_order, checksum_fail (done arrived, checksum wrong),
    checksum_missing (no done event), done."""
    keys = group_keys(by)
    cols = [
        *keys,
        "streams",
        "tokens_expected",
        "received",
        "unique",
        "lost",
        "dup",
        "out_of_order",
        "checksum_fail",
        "checksum_missing",
        "done",
    ]
    if streams is None or streams.empty:
        return pd.DataFrame(columns=cols)
    s = pd.DataFrame({k: streams[k] for k in keys})
    for src, dst in (
        ("tokens_expected", "tokens_expected"),
        ("n_received", "received"),
        ("n_unique", "unique"),
        ("n_lost", "lost"),
        ("n_dup", "dup"),
        ("n_out_of_order", "out_of_order"),
    ):
        s[dst] = column(streams, src).to_numpy(dtype=np.float64, na_value=np.nan)
    ck = column(streams, "checksum_ok").astype("boolean")
    s["checksum_fail"] = (ck == False).fillna(False).astype(int)  # noqa: E712 - NA aware
    s["checksum_missing"] = ck.isna().astype(int)
    s["done"] = column(streams, "done").astype("boolean").fillna(False).astype(int)
    g = s.groupby(keys, observed=True, dropna=False)
    out = g.sum(min_count=0)
    out.insert(0, "streams", g.size())
    out = out.reset_index()[cols]
    for c in cols[len(keys) :]:
        out[c] = out[c].astype("int64")
    return out


def outcome_counts(streams: pd.DataFrame, by: str | Sequence[str] = "arm") -> pd.DataFrame:
    """Stream outcome counts per group (columns in `OUTCOMES` order, then any others)."""
    keys = group_keys(by)
    if streams is None or streams.empty:
        return pd.DataFrame(columns=[*keys, *OUTCOMES])
    s = streams.assign(outcome=streams["outcome"].astype(object).fillna("unknown"))
    tab = s.groupby([*keys, "outcome"], observed=True, dropna=False).size().unstack(fill_value=0)
    extra = sorted(c for c in tab.columns if c not in OUTCOMES)
    tab = tab.reindex(columns=[*OUTCOMES, *extra], fill_value=0)
    tab.columns.name = None
    return tab.reset_index()


def reconnect_gaps(streams: pd.DataFrame, tokens: pd.DataFrame) -> pd.DataFrame:
    """For each stream with a drop (t_drop_ns): ``gap_ms`` from the first drop to the next
    content token (NaN if none came), reconnects, outcome, lost and duplicated tokens."""
    cols = [
        "stream_uid",
        *LABELS,
        "reconnects",
        "outcome",
        "n_lost",
        "n_dup",
        "gap_ms",
    ]
    if streams is None or streams.empty or "t_drop_ns" not in streams:
        return pd.DataFrame(columns=cols)
    dropped = streams[streams["t_drop_ns"].notna()]
    if dropped.empty:
        return pd.DataFrame(columns=cols)
    out = dropped[[c for c in cols[:-1] if c in dropped]].copy().reset_index(drop=True)
    out["gap_ms"] = np.nan
    if tokens is not None and not tokens.empty:
        drops = dropped.set_index("stream_uid")["t_drop_ns"]
        tk = tokens[tokens["stream_uid"].isin(drops.index)]
        if not tk.empty:
            t_drop = drops.reindex(tk["stream_uid"].astype(object)).to_numpy(dtype=np.int64)
            t_recv = tk["t_recv_ns"].to_numpy(dtype=np.int64, na_value=-1)
            after = t_recv > t_drop
            nxt = (
                pd.Series(t_recv[after] - t_drop[after], index=tk["stream_uid"].to_numpy()[after])
                .groupby(level=0)
                .min()
            )
            out["gap_ms"] = (
                nxt.reindex(out["stream_uid"].astype(object)).to_numpy(dtype=np.float64) / NS_PER_MS
            )
    return out


# --------------------------------------------------------------------------- bytes


def bytes_per_token(
    streams: pd.DataFrame,
    tokens: pd.DataFrame | None = None,
    connections: pd.DataFrame | None = None,
    by: str | Sequence[str] = "arm",
) -> pd.DataFrame:
    """Application bytes per token, per group.

    * ``event_bytes_per_token``: mean ``tokens.nbytes`` (one token event / frame payload);
    * ``app_bytes_per_token``: Σ streams.bytes_in / Σ n_received (adds done events,
      heartbeats, SSE ``id:``/``data:`` framing — everything the client parsed);
    * ``conn_bytes_per_token``: Σ connections.bytes_in / Σ n_received (adds HTTP response
      headers / WS upgrade; still application level, not on the wire).
    """
    keys = group_keys(by)
    cols = [*keys, "tokens", "event_bytes_per_token", "app_bytes_per_token", "conn_bytes_per_token"]
    if streams is None or streams.empty:
        return pd.DataFrame(columns=cols)
    s = pd.DataFrame({k: streams[k] for k in keys})
    s["n"] = column(streams, "n_received").to_numpy(dtype=np.float64, na_value=0)
    s["b"] = column(streams, "bytes_in").to_numpy(dtype=np.float64, na_value=np.nan)
    g = s.groupby(keys, observed=True, dropna=False)
    out = pd.DataFrame({"tokens": g["n"].sum(), "app_bytes": g["b"].sum(min_count=1)})
    with np.errstate(divide="ignore", invalid="ignore"):
        out["app_bytes_per_token"] = out["app_bytes"] / out["tokens"].where(out["tokens"] > 0)
    out["event_bytes_per_token"] = np.nan
    if tokens is not None and not tokens.empty and "nbytes" in tokens:
        lab = streams.drop_duplicates("stream_uid").set_index("stream_uid")[keys]
        tk = lab.reindex(tokens["stream_uid"].astype(object)).reset_index(drop=True)
        tk["nb"] = tokens["nbytes"].to_numpy(dtype=np.float64, na_value=np.nan)
        ev = tk.groupby(keys, observed=True, dropna=False)["nb"].mean()
        out["event_bytes_per_token"] = ev.reindex(out.index)
    out["conn_bytes_per_token"] = np.nan
    has_conn = connections is not None and not connections.empty
    if has_conn and all(k in connections for k in [*keys, "bytes_in"]):
        cb = (
            connections.assign(
                _b=connections["bytes_in"].to_numpy(dtype=np.float64, na_value=np.nan)
            )
            .groupby(keys, observed=True, dropna=False)["_b"]
            .sum(min_count=1)
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            out["conn_bytes_per_token"] = cb.reindex(out.index) / out["tokens"].where(
                out["tokens"] > 0
            )
    return out.reset_index()[cols]


# --------------------------------------------------------------------------- throughput, ramp


def throughput(
    streams: pd.DataFrame, tokens: pd.DataFrame | None = None, by: str | Sequence[str] = "phase"
) -> pd.DataFrame:
    """Tokens delivered per second per group: Σ n_received over the span from the first
    request sent to the last token received in the group. Columns: tokens, span_s,
    tokens_per_s, streams, streams_per_s."""
    keys = group_keys(by)
    cols = [*keys, "streams", "tokens", "span_s", "tokens_per_s", "streams_per_s"]
    if streams is None or streams.empty:
        return pd.DataFrame(columns=cols)
    s = pd.DataFrame({k: streams[k] for k in keys})
    s["n"] = column(streams, "n_received").to_numpy(dtype=np.float64, na_value=0)
    s["t0"] = column(streams, "t_send_ns").to_numpy(dtype=np.float64, na_value=np.nan)
    s["t1"] = column(streams, "t_last_ns").to_numpy(dtype=np.float64, na_value=np.nan)
    g = s.groupby(keys, observed=True, dropna=False)
    out = pd.DataFrame({"streams": g.size(), "tokens": g["n"].sum()})
    # span in float ns is fine here: a difference of two stamps < 2**53 ns apart
    out["span_s"] = (g["t1"].max() - g["t0"].min()) / NS_PER_S
    span = out["span_s"].where(out["span_s"] > 0)
    out["tokens_per_s"] = out["tokens"] / span
    out["streams_per_s"] = out["streams"] / span
    return out.reset_index()[cols]


def ramp(
    streams: pd.DataFrame,
    tokens: pd.DataFrame | None = None,
    *,
    slo_ttft_ms: float = 1000.0,
    slo_tpot_ms: float = 50.0,
) -> pd.DataFrame:
    """Throughput and SLO attainment per load step, for throughput-vs-concurrency plots.

    Within each (arm, phase), streams sorted by send time are cut into *steps* wherever
    ``users_target`` changes (a ramp that returns to a level makes a new step). Step k's
    window runs from its first request to the next step's first request (the last step:
    to the last token of the phase). Per step:

    * ``users_target`` (NaN when not recorded), ``mean_in_flight``: measured concurrency =
      ∫ streams in flight (t_send..t_end) dt / window;
    * ``tokens_per_s``: tokens received inside the window (from `tokens`; if not given,
      Σ n_received of the step's streams / window — an approximation, flagged in
      ``tokens_source``);
    * ``slo_attainment``: share of the step's streams with outcome ok, ttft ≤ slo_ttft_ms and
      tpot ≤ slo_tpot_ms (tpot not applicable below 2 tokens); ``goodput_streams_per_s``.
    """
    cols = [
        "arm",
        "phase",
        "step",
        "users_target",
        "t_start_ns",
        "window_s",
        "streams",
        "mean_in_flight",
        "tokens",
        "tokens_per_s",
        "tokens_source",
        "slo_ok",
        "slo_attainment",
        "goodput_streams_per_s",
    ]
    if streams is None or streams.empty:
        return pd.DataFrame(columns=cols)
    sm = stream_metrics(streams)
    sm = sm[sm["t_send_ns"].notna()].copy()
    if sm.empty:
        return pd.DataFrame(columns=cols)
    sm["_t0"] = sm["t_send_ns"].to_numpy(dtype=np.int64)
    end = column(sm, "t_end_ns").astype("Int64").fillna(column(sm, "t_last_ns").astype("Int64"))
    sm["_t1"] = end.fillna(sm["t_send_ns"].astype("Int64")).to_numpy(dtype=np.int64)
    sm["_last"] = column(sm, "t_last_ns").to_numpy(dtype=np.float64, na_value=np.nan)
    ok_outcome = (sm["outcome"].astype(object) == "ok").to_numpy(dtype=bool)
    tpot_ok = (sm["tpot_ms"] <= slo_tpot_ms) | (
        column(sm, "n_received").to_numpy(dtype=np.float64, na_value=0) < 2
    )
    sm["_slo"] = ok_outcome & (sm["ttft_ms"] <= slo_ttft_ms).to_numpy() & tpot_ok.to_numpy()
    sm["_ut"] = column(sm, "users_target").to_numpy(dtype=np.float64, na_value=np.nan)

    tok_t = tok_phase_codes = None
    phase_index: dict[Any, int] = {}
    if tokens is not None and not tokens.empty:
        ph = sm.drop_duplicates("stream_uid").set_index("stream_uid")["phase"].astype(object)
        tph = ph.reindex(tokens["stream_uid"].astype(object)).to_numpy()
        phase_index = {p: i for i, p in enumerate(pd.unique(ph))}
        tok_phase_codes = np.array([phase_index.get(p, -1) for p in tph], dtype=np.int64)
        tok_t = tokens["t_recv_ns"].to_numpy(dtype=np.int64, na_value=-1)

    rows = []
    for (arm, phase), grp in sm.groupby(["arm", "phase"], observed=True, sort=True):
        grp = grp.sort_values("_t0", kind="stable")
        ut = grp["_ut"].to_numpy()
        change = np.ones(len(grp), dtype=bool)
        change[1:] = ~((ut[1:] == ut[:-1]) | (np.isnan(ut[1:]) & np.isnan(ut[:-1])))
        step_id = np.cumsum(change) - 1
        starts = grp["_t0"].to_numpy()[change]
        phase_end = int(np.nanmax(grp["_last"].to_numpy())) if grp["_last"].notna().any() else None
        ptimes = None
        if tok_t is not None:
            pc = phase_index.get(phase, -2)
            ptimes = np.sort(tok_t[tok_phase_codes == pc])
        for k in range(len(starts)):
            t_start = int(starts[k])
            t_end = int(starts[k + 1]) if k + 1 < len(starts) else phase_end
            step = grp[step_id == k]
            window_ns = (t_end - t_start) if t_end is not None else 0
            window_s = window_ns / NS_PER_S if window_ns > 0 else math.nan
            in_flight = math.nan
            n_tok = math.nan
            source = "none"
            if window_ns > 0:
                lo = np.maximum(grp["_t0"].to_numpy(), t_start)
                hi = np.minimum(grp["_t1"].to_numpy(), t_end)
                in_flight = float(np.clip(hi - lo, 0, None).sum()) / window_ns
                if ptimes is not None:
                    n_tok = float(
                        np.searchsorted(ptimes, t_end, "left")
                        - np.searchsorted(ptimes, t_start, "left")
                    )
                    source = "tokens"
                else:
                    n_tok = float(finite(step["n_received"]).sum())
                    source = "streams"
            slo_ok = int(step["_slo"].sum())
            rows.append(
                {
                    "arm": arm,
                    "phase": phase,
                    "step": k,
                    "users_target": ut[change][k],
                    "t_start_ns": t_start,
                    "window_s": window_s,
                    "streams": len(step),
                    "mean_in_flight": in_flight,
                    "tokens": n_tok,
                    "tokens_per_s": n_tok / window_s if window_s == window_s else math.nan,
                    "tokens_source": source,
                    "slo_ok": slo_ok,
                    "slo_attainment": slo_ok / len(step) if len(step) else math.nan,
                    "goodput_streams_per_s": slo_ok / window_s
                    if window_s == window_s
                    else math.nan,
                }
            )
    return pd.DataFrame(rows, columns=cols)


#: Outcomes that end a stream for reasons outside the system under test: the user abandoned
#: it (cancelled) or the load generator stopped the user at the end of a phase (stopped).
#: Such a stream is judged on what it delivered before it ended — never a miss for not
#: finishing — and not judged at all when it ended before its first token.
ENDED_BY_CLIENT = ("cancelled", "stopped")


def slo_attainment(
    stream_frame: pd.DataFrame,
    by: str | Sequence[str] = "arm",
    *,
    slo_ttft_ms: float = 1000.0,
    slo_tpot_ms: float = 50.0,
    ttft_over_schedule_ms: float | None = None,
    tpot_over_schedule_ms: float | None = None,
) -> pd.DataFrame:
    """Share of the judged streams per group that met the SLO (input: `stream_metrics`).

    A stream meets it when it finished ok — or ended by the client (`ENDED_BY_CLIENT`)
    after its first token — with TTFT ≤ ``slo_ttft_ms`` and TPOT ≤ ``slo_tpot_ms`` over the
    tokens it received. With the ``…_over_schedule`` headroom given, a stream whose own
    schedule is recorded (``ttft_ms_sched``, ``gap_ms_sched``) is held to that schedule
    plus the headroom instead, so a scenario that asks for a 2 s first token is not a miss
    by design. Columns: ``<by…>, streams`` (judged), ``slo_ok``, ``slo_attainment``.
    """
    keys = group_keys(by)
    if stream_frame is None or stream_frame.empty:
        return pd.DataFrame(columns=[*keys, "streams", "slo_ok", "slo_attainment"])
    outcome = stream_frame["outcome"].astype(object)
    by_client = outcome.isin(ENDED_BY_CLIENT).to_numpy(dtype=bool)
    started = np.isfinite(stream_frame["ttft_ms"].to_numpy(dtype=np.float64))
    judged = ~by_client | started
    ok = (outcome == "ok").to_numpy(dtype=bool) | (by_client & started)
    n = column(stream_frame, "n_received").to_numpy(dtype=np.float64, na_value=0)
    ttft_limit = np.full(len(stream_frame), slo_ttft_ms, dtype=np.float64)
    tpot_limit = np.full(len(stream_frame), slo_tpot_ms, dtype=np.float64)
    for limit, sched, over in (
        (ttft_limit, "ttft_ms_sched", ttft_over_schedule_ms),
        (tpot_limit, "gap_ms_sched", tpot_over_schedule_ms),
    ):
        if over is None:
            continue
        planned = column(stream_frame, sched).to_numpy(dtype=np.float64, na_value=np.nan)
        has = np.isfinite(planned)
        limit[has] = planned[has] + over
    good = (
        ok
        & (stream_frame["ttft_ms"].to_numpy(dtype=np.float64) <= ttft_limit)
        & ((stream_frame["tpot_ms"].to_numpy(dtype=np.float64) <= tpot_limit) | (n < 2))
    )
    s = pd.DataFrame({k: stream_frame[k] for k in keys}).assign(
        _j=judged.astype(int), _g=(good & judged).astype(int)
    )
    g = s.groupby(keys, observed=True, dropna=False)
    out = pd.DataFrame({"streams": g["_j"].sum(), "slo_ok": g["_g"].sum()})
    with np.errstate(divide="ignore", invalid="ignore"):
        out["slo_attainment"] = np.where(
            out["streams"] > 0, out["slo_ok"] / out["streams"].where(out["streams"] > 0), np.nan
        )
    return out.reset_index()
