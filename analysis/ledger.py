"""Where every generated token went: received, lost, or generated for nobody — from the
servers' stream logs (core.streamlog), the clients' token records and the fault proxy's log.

A server *emission* is one run of its engine for one stream: a fresh stream, or the part a
resume (or a restart) asked for. It writes ``sent`` tokens and owes ``wasted`` more
(servers.engine's one definition: due by its end, never written). Each token a client
received carries the server's send stamp, so it is attributed to the emission that wrote
it: the stream's emission that started last at or before that stamp, among those whose
first seq is at or below the token's. Then, per emission,

- ``received`` = the tokens attributed to it; they must be exactly the seqs
  ``start .. start + received − 1`` in order (the head of what it sent: a connection
  delivers in order and loses only a tail) — else ``gaps`` counts the difference;
- ``void`` = ``sent − received``: written into a connection that never delivered them (in
  flight or buffered when the path died, or written after the client had gone);
- ``nobody`` = ``void + wasted``: generated for nobody.

A void is *explained* when the client lost that connection: the stream records a drop at
or after the last token the emission delivered (or, when it delivered none, after the
previous drop — the request that started it belonged to an attempt the client gave up), or
the stream ended without its done event. Anything else is ``unexplained`` — a token that
left the server and reached neither the client nor a broken connection — and must be 0.

Per phase (`ledger`): expected = unique + lost (the client's identity) and generated =
received + nobody (the server's), each side counted on its own; the server's totals are
also checked against its /metrics counters (`metrics_check`). ``unaccounted`` sums what
breaks them — tokens the client counted that the servers' logs do not (sent ≠ received +
void), expected ≠ unique + lost, gaps and unexplained voids — and must be 0: the report's
headline quotes it.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.attribution import phase_log_rows
from core.streamlog import read_stream_log

__all__ = [
    "EMISSION_COLUMNS",
    "LEDGER_COLUMNS",
    "attribute",
    "emissions_of_run",
    "ledger",
    "metrics_check",
    "unaccounted",
]

EMISSION_COLUMNS = [
    "phase",
    "kind",
    "stream",
    "conn",
    "start",
    "n",
    "sent",
    "wasted",
    "outcome",
    "ended_by",
    "t_start_ns",
    "t0_ns",
    "t_end_ns",
]

LEDGER_COLUMNS = [
    "phase",
    "streams",
    "expected",
    "unique",
    "lost",
    "received",
    "dup",
    "emissions",
    "generated",
    "sent",
    "wasted",
    "void",
    "nobody",
    "gaps",
    "unexplained",
    "unaccounted",
    "dropped_streams",
]


def emissions_of_run(manifest: Any, run_dir: Path | None) -> pd.DataFrame:
    """Every phase's server stream log (``server.logs.streams`` in its manifest entry),
    one row per emission with its ``phase``; empty (with the columns) when there are none."""
    rows = phase_log_rows(manifest, run_dir, "server", "streams", read_stream_log)
    df = pd.DataFrame(rows, columns=EMISSION_COLUMNS)
    df["stream"] = df["stream"].astype(str)
    return df


def _stream_keys(streams: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(phase, stream id as sent) → stream_uid."""
    out: dict[tuple[str, str], str] = {}
    for phase, sid, uid in streams[["phase", "stream_id", "stream_uid"]].itertuples(index=False):
        out[(str(phase), str(sid))] = str(uid)
    return out


def attribute(streams: pd.DataFrame, tokens: pd.DataFrame, emissions: pd.DataFrame) -> pd.DataFrame:
    """`emissions` with ``stream_uid`` (the client's stream; None when no client stream
    has that id in that phase), ``received``, ``gaps``, ``void``, ``nobody``, ``t_last_rx_ns``
    (the client's receive time of its last token) and ``explained`` (module docstring)."""
    em = emissions.copy().reset_index(drop=True)
    keys = _stream_keys(streams)
    em["stream_uid"] = [
        keys.get((str(p), str(s))) for p, s in zip(em["phase"], em["stream"], strict=True)
    ]
    received = np.zeros(len(em), dtype=np.int64)
    gaps = np.zeros(len(em), dtype=np.int64)
    last_rx = np.full(len(em), -1, dtype=np.int64)
    by_uid: dict[str, list[int]] = {}
    for i, uid in enumerate(em["stream_uid"]):
        if uid is not None:
            by_uid.setdefault(uid, []).append(i)
    tk = tokens[tokens["stream_uid"].isin(by_uid)] if not tokens.empty else tokens
    for uid, rows in tk.groupby("stream_uid", sort=False):
        idx = sorted(by_uid[str(uid)], key=lambda i: int(em.at[i, "t_start_ns"]))
        starts = [int(em.at[i, "t_start_ns"]) for i in idx]
        got: dict[int, list[int]] = {i: [] for i in idx}
        seqs = rows["seq"].to_numpy()
        stamps = rows["t_server_ns"].to_numpy()
        recv = rows["t_recv_ns"].to_numpy()
        for seq, stamp, t_rx in zip(seqs, stamps, recv, strict=True):
            if pd.isna(stamp):
                continue
            k = bisect.bisect_right(starts, int(stamp)) - 1
            while k >= 0 and int(em.at[idx[k], "start"]) > int(seq):
                k -= 1  # an emission cannot have written a seq below its start
            if k < 0:
                continue
            i = idx[k]
            got[i].append(int(seq))
            last_rx[i] = max(last_rx[i], int(t_rx))
        for i, got_seqs in got.items():
            start = int(em.at[i, "start"])
            received[i] = len(got_seqs)
            head = list(range(start, start + len(got_seqs)))
            gaps[i] = sum(1 for a, b in zip(got_seqs, head, strict=True) if a != b)
    em["received"] = received
    em["gaps"] = gaps
    em["t_last_rx_ns"] = pd.array([None if x < 0 else int(x) for x in last_rx], dtype="Int64")
    em["void"] = em["sent"].astype("int64") - em["received"]
    em["nobody"] = em["void"] + em["wasted"].astype("int64")
    em["explained"] = _explained(streams, em)
    return em


def _explained(streams: pd.DataFrame, em: pd.DataFrame) -> list[bool]:
    """Per emission: no void, or the client lost the connection it came on (module doc)."""
    info: dict[str, tuple[list[int], bool, int]] = {}
    cols = ["stream_uid", "t_drops_ns", "done", "t_send_ns"]
    for uid, drops, done, t_send in streams[cols].itertuples(index=False):
        d = sorted(int(x) for x in drops) if isinstance(drops, list | np.ndarray) else []
        info[str(uid)] = (d, _true(done), 0 if pd.isna(t_send) else int(t_send))
    out: list[bool] = []
    for uid, void, t_start, last in em[
        ["stream_uid", "void", "t_start_ns", "t_last_rx_ns"]
    ].itertuples(index=False):
        if void <= 0:
            out.append(True)
            continue
        if uid is None:  # no client stream with this id: nobody asked in this phase
            out.append(False)
            continue
        drops, done, t_send = info[str(uid)]
        if pd.isna(last):  # delivered nothing: its request's attempt was given up
            before = [d for d in drops if d <= int(t_start)]
            since = before[-1] if before else t_send
        else:
            since = int(last)
        out.append(any(d >= since for d in drops) or not done)
    return out


def _true(v: Any) -> bool:
    return False if v is None or pd.isna(v) else bool(v)


def ledger(streams: pd.DataFrame, tokens: pd.DataFrame, emissions: pd.DataFrame) -> pd.DataFrame:
    """One row per phase (`LEDGER_COLUMNS`): the client's and the server's sides of every
    token. ``unexplained`` = void tokens of unexplained emissions (must be 0)."""
    em = attribute(streams, tokens, emissions)
    rows = []
    for phase, s in streams.groupby("phase", sort=True):
        e = em[em["phase"] == phase]
        finishing = s[s["n_lost"].notna()]
        rows.append(
            {
                "phase": str(phase),
                "streams": len(s),
                "expected": int(finishing["tokens_expected"].sum()),
                "unique": int(finishing["n_unique"].sum()),
                "lost": int(finishing["n_lost"].sum()),
                "received": int(s["n_received"].sum()),
                "dup": int(s["n_dup"].sum()),
                "emissions": len(e),
                "generated": int((e["sent"] + e["wasted"]).sum()),
                "sent": int(e["sent"].sum()),
                "wasted": int(e["wasted"].sum()),
                "void": int(e["void"].sum()),
                "nobody": int(e["nobody"].sum()),
                "gaps": int(e["gaps"].sum()),
                "unexplained": int(e.loc[~e["explained"], "void"].sum()),
                "unaccounted": 0,  # below, from the row's own counts
                "dropped_streams": int(
                    (s["reconnects"].fillna(0) > 0).sum() + (s["outcome"] == "dropped").sum()
                ),
            }
        )
    for r in rows:
        r["unaccounted"] = unaccounted(r)
    return pd.DataFrame(rows, columns=LEDGER_COLUMNS)


def unaccounted(row: Mapping[str, Any]) -> int:
    """Tokens of one ledger row that no identity explains: the client's received tokens
    against what the server logged as sent (received + void), expected against unique +
    lost, tokens missing mid-connection (gaps) and void tokens on a connection the client
    never lost (unexplained). 0 when every token is received, lost or for nobody."""
    return (
        abs(int(row["sent"]) - int(row["received"]) - int(row["void"]))
        + abs(int(row["expected"]) - int(row["unique"]) - int(row["lost"]))
        + int(row["gaps"])
        + int(row["unexplained"])
    )


def metrics_check(
    emissions: pd.DataFrame, server_metrics: Mapping[str, Any] | None
) -> dict[str, dict]:
    """Per phase: the stream log's totals next to the server's /metrics counters (scraped at
    the phase's end, one fresh server per phase) — {phase: {"sent": (log, metrics), …}}."""
    out: dict[str, dict] = {}
    for phase, e in emissions.groupby("phase"):
        m = (server_metrics or {}).get(str(phase)) or {}
        out[str(phase)] = {
            "sent": (int(e["sent"].sum()), _metric(m, "ssevsws_tokens_sent_total")),
            "wasted": (int(e["wasted"].sum()), _metric(m, "ssevsws_tokens_wasted_total")),
        }
    return out


def _metric(m: Mapping[str, Any], name: str) -> int | None:
    v = m.get(name)  # server_metrics.json: flat {sample name: value} (bench.scrape)
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
