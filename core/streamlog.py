"""The servers' stream log (``--stream-log``; servers.streamlog writes it): one JSON line per
emission — a stream, or the part of it a resume asked for — when it ends. The analysis
reads it next to the clients' records (analysis.deadpeer); this module is where both meet.

Fields: ``kind``, ``stream``, ``conn`` (WS ``conn=``, else null), ``start``, ``n``, ``sent``,
``wasted``, ``outcome`` (completed | cancelled | disconnected | dropped), ``ended_by`` (one
of `ENDED_BY`), ``t_start_ns``, ``t0_ns``, ``t_end_ns``.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

__all__ = ["ENDED_BY", "STREAM_LOG_DIR", "read_stream_log"]

#: What told the server that an emission ended (servers.streamlog's docstring says each).
ENDED_BY = ("complete", "cancel", "drop_after", "write", "ping_timeout", "close", "shutdown")
#: Where a run folder keeps them: ``server/<phase stem>.streams.jsonl``.
STREAM_LOG_DIR = "server"


def read_stream_log(path: str | Path) -> list[dict[str, Any]]:
    """Every line of a stream log (a torn last line, from a kill mid-write, is skipped)."""
    out: list[dict[str, Any]] = []
    with contextlib.suppress(FileNotFoundError), Path(path).open(encoding="utf-8") as f:
        for line in f:
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out
