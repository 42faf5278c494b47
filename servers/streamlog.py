"""The server's own record of every emission: one JSON line when it ends (``--stream-log``).

An *emission* is one run of the engine for one stream on one connection: a fresh stream, or
the part of it a resume asked for (``start`` > 0). Its line says how many tokens it wrote
(``sent``), how many it owed by its end and never wrote (``wasted``: servers.engine's one
definition), how it ended (``outcome``) and what told the server (``ended_by``):

- ``complete`` / ``cancel`` / ``drop_after``: the stream ran out, was cancelled, was cut on
  purpose (the ``drop_after`` parameter);
- ``write``: a write failed (the peer reset or closed the connection, or the slow-consumer
  timeout aborted it) — the server learned of a departure on its next write;
- ``ping_timeout``: a WebSocket ping went unanswered (the library closed the connection);
- ``close``: the WebSocket read loop ended (a close frame or EOF from the peer);
- ``shutdown``: the server was stopping.

With the clients' records and a fault proxy's log this is the known truth for "tokens
generated for nobody" and "how long did the server keep generating for a peer that was
gone" (analysis.deadpeer). Written once per emission, never per token: the lines are
buffered and flushed every `FLUSH_S` and at exit. Off (None) unless the flag is given.

Fields: ``kind``, ``stream`` (the id as the client sent it), ``conn`` (a WS connection's
``conn=`` query value, else null), ``start``, ``n`` (planned tokens), ``sent``, ``wasted``,
``outcome``, ``ended_by``, ``t_start_ns`` (the emission began), ``t0_ns`` (the stream's
schedule origin), ``t_end_ns`` (it stopped) — monotonic ns, the clients' clock. The
reader and the field names are core.streamlog's (analysis reads the file too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any, TextIO

from core.streamlog import ENDED_BY as ENDED_BY  # the field's values, shared with analysis

FLUSH_S = 0.5


class StreamLog:
    """Buffered JSON lines, one per ended emission."""

    __slots__ = ("_file", "_task", "path")

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO | None = self.path.open("a", encoding="utf-8", buffering=1 << 16)
        self._task: asyncio.Task[None] | None = None

    def write(self, rec: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(rec, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.flush()

    def start_flushing(self) -> None:
        """Flush every FLUSH_S from the running loop (records survive a kill)."""
        self._task = asyncio.get_running_loop().create_task(self._flush_every())

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            self.flush()

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
