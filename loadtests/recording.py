"""RecordSink that writes a Locust worker's rows to the run folder, off the event loop.

Every millisecond the sink holds the event loop, every user's token reads wait — and are
stamped late. So: token columns accumulate in `array('q')` buffers (extending from a
list is a C loop) and become arrow arrays at flush without a per-value Python step
(a list-of-ints flush of 25k token rows took ~40 ms here; the array path ~1 ms);
stream/connection/resource rows are turned into columns on the loop (a few hundred per
flush), and the parquet encode + write — which releases the GIL — runs on one *native*
thread (gevent's threadpool). Python-heavy work is kept off that thread on purpose: a
thread holding the GIL makes the loop wait up to the switch interval after every
socket call (the convoy effect). Only that thread touches the `RecordWriter`s and the
flusher greenlet waits for each flush, so there is no concurrent use. Without gevent
(plain tests) flushes run inline.

A failed write (a full disk, a read-only folder) stops recording at once: nothing is
retried or half-written, what was flushed before stays on disk, `error` says why,
`streams_lost` counts the streams recorded since the last good flush and after it, and
`on_error` is called once — the locustfile stops the phase with it.
"""

from __future__ import annotations

import os
import socket
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from core.accounting import NO_STAMP, ConnectionAccount, StreamAccount
from core.records import TABLES
from core.runfolder import RecordWriter

_INT_TOKEN_COLUMNS = ("seq", "t_recv_ns", "t_server_ns", "nbytes")
_NULL = NO_STAMP  # t_server_ns of a foreign server's token without a stamp

_BIG = 10**12  # never auto-flush: this sink decides when


def writer_id() -> str:
    """One file set per process: "<host>-<pid>" (call after Locust forked its workers)."""
    return f"{socket.gethostname()}-{os.getpid()}"


class RunFolderSink:
    """Buffers rows of the four tables and flushes them in the background."""

    def __init__(
        self,
        run_dir: Path | str,
        wid: str,
        *,
        flush_s: float = 2.0,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.flush_s = flush_s
        self.on_error = on_error
        self.error: str | None = None  # the first write error; recording stopped then
        self.streams_lost = 0  # stream rows that did not reach the disk
        self.streams_written = 0  # stream rows on disk
        self._pending_streams = 0  # stream rows buffered since the last good flush
        self._writers = {
            t: RecordWriter(run_dir, t, wid, flush_rows=_BIG, flush_seconds=_BIG)
            for t in ("streams", "tokens", "connections", "resources")
        }
        self._rows: dict[str, list[dict[str, Any]]] = {
            "streams": [],
            "connections": [],
            "resources": [],
        }
        self._uids: list[str] = []
        self._tokens = self._empty_tokens()
        self._greenlet: Any = None
        self._pool: Any = None
        self.closed = False
        self.streams_recorded = 0

    # ------------------------------------------------------------------ RecordSink
    def stream(self, acct: StreamAccount) -> None:
        if self.error is not None:
            self.streams_lost += 1
            return
        if self.closed:
            return
        self._pending_streams += 1
        self._rows["streams"].append(acct.streams_row())
        n = acct.n_received
        if n:
            self._uids.extend([acct.labels.stream_uid] * n)
            tok = self._tokens
            tok["seq"].extend(acct.seq)
            tok["t_recv_ns"].extend(acct.t_recv_ns)
            tok["nbytes"].extend(acct.nbytes)
            tok["t_server_ns"].extend(acct.t_server_ns)  # NO_STAMP (-1) becomes null
        self.streams_recorded += 1

    def connection(self, acct: ConnectionAccount) -> None:
        if not self.closed:
            self._rows["connections"].append(acct.row())

    def resource(self, row: dict[str, Any]) -> None:
        if not self.closed:
            self._rows["resources"].append(row)

    # ------------------------------------------------------------------ flushing
    @staticmethod
    def _empty_tokens() -> dict[str, array]:
        return {name: array("q") for name in _INT_TOKEN_COLUMNS}

    def _token_columns(self) -> dict[str, Any] | None:
        if not self._uids:
            return None
        cols: dict[str, Any] = {"stream_uid": pa.array(self._uids, pa.string())}
        for name, buf in self._tokens.items():
            values = np.frombuffer(buf, dtype=np.int64)
            mask = values == _NULL if name == "t_server_ns" else None
            cols[name] = pa.array(values, pa.int64(), mask=mask)
        self._uids = []
        self._tokens = self._empty_tokens()
        return cols

    def _take(self) -> Callable[[], BaseException | None]:
        """Swap the buffers out as columns; return the job that writes them (pool thread).
        Tokens go first: a stream row on disk means its token rows are on disk too."""
        columns: dict[str, dict[str, Any]] = {}
        tokens = self._token_columns()
        if tokens is not None:
            columns["tokens"] = tokens
        for table, rows in self._rows.items():
            if rows:
                names = TABLES[table].names
                columns[table] = {n: [r.get(n) for r in rows] for n in names}
        self._rows = {t: [] for t in self._rows}
        writers = self._writers

        def job() -> BaseException | None:
            try:
                for table, cols in columns.items():
                    writers[table].append_columns(cols)
                    writers[table].flush()
            except Exception as exc:  # returned, not raised: the pool would print it
                return exc
            return None

        return job

    def flush(self) -> None:
        if self.error is not None:
            return
        pending, self._pending_streams = self._pending_streams, 0
        job = self._take()
        # on the pool, the greenlet waits and the hub keeps running
        exc = self._pool.spawn(job).get() if self._pool is not None else job()
        if exc is not None:  # OSError (a full disk), or rows pyarrow refused
            self._failed(exc, pending)
        else:
            self.streams_written += pending

    def _failed(self, exc: BaseException, pending: int) -> None:
        self.streams_lost += pending
        self.error = f"{type(exc).__name__}: {exc}"
        self._uids, self._tokens = [], self._empty_tokens()
        self._rows = {t: [] for t in self._rows}
        if self.on_error is not None:
            self.on_error(self.error)

    def start_background(self) -> None:
        """Flush every flush_s from a greenlet, writing on gevent's native thread pool."""
        import gevent
        from gevent.threadpool import ThreadPool

        if self._greenlet is not None:
            return
        self._pool = ThreadPool(1)

        def loop() -> None:
            while not self.closed and self.error is None:
                gevent.sleep(self.flush_s)
                if not self.closed:
                    self.flush()

        self._greenlet = gevent.spawn(loop)

    def close(self) -> None:
        """Final flush and close (idempotent)."""
        if self.closed:
            return
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
        try:
            self.flush()
        finally:
            self.closed = True
            for w in self._writers.values():
                w.abandon()  # flushed above (or failed): nothing buffered is written now
            if self._pool is not None:
                self._pool.kill()
