"""Who closed a connection, when a proxy stood between client and server.

Through nginx the client sees the same EOF whether nginx cut the stream (its
proxy_read_timeout) or the server hung up. nginx's error log says which
(`bench.nginx_logs.proxy_closes`, written per proxy phase as `nginx/<phase>/closes.json`
and listed in the phase's manifest entry under ``proxy.logs.closes``). This module joins
those rows onto the client's connection records:

- SSE: nginx's line carries the request target, whose ``stream=`` is the stream id; the
  streams table gives the connection that carried it;
- WS: the client's upgrade URL carries ``conn=<conn_uid>``.

A matched connection that the client recorded as closed by the server / an error gets
nginx's verdict (``closed_by`` proxy / server / client) and a reason naming nginx's event;
connections the client closed itself are left as they are. The raw parquet records are
never rewritten: this is a view the analysis builds when it loads a run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "CLIENT_SIDE_UNSURE",
    "attribute_proxy_closes",
    "phase_log_rows",
    "proxy_closes_of_run",
]

#: What the client records when the other side ended the connection: the cases a proxy's
#: log can refine.
CLIENT_SIDE_UNSURE = ("server", "error", "unknown")


def phase_log_rows(
    manifest: Mapping[str, Any],
    run_dir: Path | None,
    record: str,
    log: str,
    read: Callable[[Path], list[Any]],
) -> list[dict]:
    """The rows of every phase's ``<record>.logs.<log>`` file (a run-relative path in the
    manifest's phase entry), read with `read` and tagged with the ``phase``. A phase
    without that file, or an unreadable one, adds nothing. `manifest` is the JSON document
    or a typed Manifest (its ``raw``)."""
    rows: list[dict] = []
    if run_dir is None:
        return rows
    doc = getattr(manifest, "raw", manifest)  # a typed analysis.manifest.Manifest, or the JSON
    for ph in doc.get("phases") or []:
        if not isinstance(ph, Mapping):
            continue
        rel = ((ph.get(record) or {}).get("logs") or {}).get(log)
        if not rel:
            continue
        try:
            data = read(Path(run_dir) / rel)
        except (OSError, ValueError):
            continue
        rows.extend({**r, "phase": ph.get("name")} for r in data if isinstance(r, dict))
    return rows


def proxy_closes_of_run(manifest: Mapping[str, Any], run_dir: Path | None) -> list[dict]:
    """Every proxy phase's close rows, each tagged with its ``phase``."""
    return phase_log_rows(manifest, run_dir, "proxy", "closes", lambda p: json.loads(p.read_text()))


def _conn_uids(close: Mapping[str, Any], by_stream: Mapping[tuple, list[str]]) -> list[str]:
    if close.get("conn_uid"):
        return [str(close["conn_uid"])]
    if close.get("stream_id"):
        return by_stream.get((close.get("phase"), str(close["stream_id"])), [])
    return []


def attribute_proxy_closes(
    connections: pd.DataFrame, streams: pd.DataFrame, closes: list[dict]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """`connections` with nginx's close verdicts applied, and counts (matched, changed,
    unplaced = close rows naming no known stream / connection)."""
    stats = {"closes": len(closes), "matched": 0, "changed": 0, "unplaced": 0}
    if not closes or connections.empty:
        stats["unplaced"] = len(closes)
        return connections, stats
    by_stream: dict[tuple, list[str]] = {}
    if not streams.empty and {"phase", "stream_id", "conn_uid"} <= set(streams.columns):
        for phase, sid, uid in streams[["phase", "stream_id", "conn_uid"]].itertuples(index=False):
            by_stream.setdefault((phase, str(sid)), []).append(str(uid))
    out = connections.copy()
    index = {str(uid): i for i, uid in zip(out.index, out["conn_uid"], strict=True)}
    closed_by = [None if pd.isna(x) else str(x) for x in out["closed_by"]]
    reason = [None if pd.isna(x) else str(x) for x in out["close_reason"]]
    pos = {i: n for n, i in enumerate(out.index)}
    for close in closes:
        rows = [index[u] for u in _conn_uids(close, by_stream) if u in index]
        if not rows:
            stats["unplaced"] += 1
            continue
        stats["matched"] += 1
        for i in rows:
            n = pos[i]
            if closed_by[n] is not None and closed_by[n] not in CLIENT_SIDE_UNSURE:
                continue  # the client closed it itself: nginx only saw that
            seen = f" (client saw: {reason[n]})" if reason[n] else ""
            if closed_by[n] != close["closed_by"]:
                stats["changed"] += 1
            closed_by[n] = close["closed_by"]
            reason[n] = f"nginx: {close.get('message') or close['event']}{seen}"
    out["closed_by"] = pd.array(closed_by, dtype=connections["closed_by"].dtype)
    out["close_reason"] = pd.array(reason, dtype=connections["close_reason"].dtype)
    return out, stats
