"""Resource sampler: psutil on every process of the current phase, from a thread.

Every `interval_s` (default 0.5 s) each watched process — and, if asked, its descendants
(Locust's forked workers) — is read once: cumulative user/system CPU seconds, CPU % over
the last interval (100 = one core, computed from the cumulative times, so it is exact
over the interval rather than psutil's first-call 0.0), RSS, open fds and TCP
connections (LISTEN sockets excluded). Rows go through `RecordWriter` to the
``resources`` table under this process's writer id, labelled with the current phase,
arm and the role given at `watch` time.

Roles written here: ``server`` (a reference server), ``master`` (the Locust master of
``--processes N``), ``loadgen`` (a Locust process that runs users, seen from outside).
The Locust processes also sample *themselves* under role ``client`` (loadtests); the
two views are kept apart so no figure counts a process twice.

A failed write (a full disk) ends sampling: `write_error` says why (the orchestrator
fails the phase with it), the rows sampled since are counted in `rows_dropped`, and
nothing raises into the caller.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from core.procrow import CpuRate, resource_row
from core.runfolder import RecordWriter

DEFAULT_INTERVAL_S = 0.5


@dataclass
class _Watch:
    proc: psutil.Process
    role: str
    children_role: str | None  # None: do not follow descendants


class ResourceSampler:
    """Samples watched processes on a background thread; thread-safe watch/unwatch."""

    def __init__(
        self,
        run_dir: Path | str,
        *,
        writer_id: str,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        flush_seconds: float = 2.0,
    ) -> None:
        self.interval_s = interval_s
        self._clock_ns = clock_ns
        self._writer = RecordWriter(
            run_dir, "resources", writer_id, flush_rows=2000, flush_seconds=flush_seconds
        )
        self._lock = threading.Lock()
        self._watches: dict[int, _Watch] = {}
        self._known: dict[int, psutil.Process] = {}  # pid → Process (start time pinned)
        self._cpu = CpuRate()
        self.phase: str | None = None
        self.arm: str | None = None
        self.phase_columns: dict[str, Any] = {}  # scenario, variant, rep of the phase
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []
        self.write_error: str | None = None
        self.samples = 0
        self._closed = False

    # ------------------------------------------------------------------ control
    def set_phase(
        self, phase: str | None, arm: str | None, columns: Mapping[str, Any] | None = None
    ) -> None:
        """Label the next samples with this phase; ``columns``: its ``scenario``,
        ``variant``, ``rep`` (core.records.PHASE_COLUMNS)."""
        with self._lock:
            self.phase, self.arm = phase, arm
            self.phase_columns = dict(columns or {})

    def watch(self, pid: int, role: str, *, children_role: str | None = None) -> None:
        """Sample `pid` as `role`; with `children_role`, its descendants too (found anew
        every tick, so workers forked after the start are picked up)."""
        try:
            proc = psutil.Process(pid)
        except psutil.Error:
            return
        with self._lock:
            self._watches[pid] = _Watch(proc, role, children_role)

    def unwatch(self, pid: int) -> None:
        with self._lock:
            self._watches.pop(pid, None)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="resource-sampler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and flush everything sampled (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._writer.close()
            except OSError as exc:
                self._write_failed(exc)

    def _write_failed(self, exc: OSError) -> None:
        """Stop writing (called with the lock held): keep the first error, drop the rest."""
        if self.write_error is None:
            self.write_error = f"{type(exc).__name__}: {exc}"
            self.errors.append(f"write failed: {self.write_error}")
        self._writer.abandon()
        self._closed = True

    @property
    def rows_dropped(self) -> int:
        return self._writer.rows_dropped

    @property
    def rows_written(self) -> int:
        return self._writer.rows_written

    # ------------------------------------------------------------------ sampling
    def _loop(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            try:
                self.sample_once()
            except Exception as exc:  # keep sampling; a bad tick must not end the run
                if len(self.errors) < 20:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            next_t += self.interval_s
            delay = next_t - time.monotonic()
            if delay < 0:  # fell behind (loaded machine): skip, do not burst
                next_t = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def _targets(self) -> list[tuple[psutil.Process, str]]:
        out: list[tuple[psutil.Process, str]] = []
        seen: set[int] = set()
        for w in self._watches.values():
            if w.proc.pid not in seen:
                out.append((w.proc, w.role))
                seen.add(w.proc.pid)
            if w.children_role is None:
                continue
            with contextlib.suppress(psutil.Error):
                for child in w.proc.children(recursive=True):
                    if child.pid in seen:
                        continue
                    known = self._known.get(child.pid)
                    if known is None or known.create_time() != child.create_time():
                        self._known[child.pid] = known = child
                    out.append((known, w.children_role))
                    seen.add(child.pid)
        return out

    def _row(self, proc: psutil.Process, role: str, t_ns: int) -> dict[str, Any] | None:
        try:
            with proc.oneshot():
                cpu = proc.cpu_times()
                rss = proc.memory_info().rss
                try:
                    fds: int | None = proc.num_fds()
                except (psutil.AccessDenied, AttributeError):
                    fds = None
                try:
                    conns: int | None = sum(
                        1 for c in proc.net_connections(kind="tcp") if c.status != "LISTEN"
                    )
                except psutil.AccessDenied:
                    conns = None
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            self._cpu.forget(proc.pid)
            return None
        return resource_row(
            t_ns=t_ns,
            phase=self.phase,
            columns=self.phase_columns,
            arm=self.arm,
            role=role,
            proc=proc,
            cpu=cpu,
            cpu_pct=self._cpu.pct(proc.pid, t_ns, float(cpu.user + cpu.system)),
            rss=rss,
            fds=fds,
            connections=conns,
        )

    def sample_once(self) -> int:
        """Take one sample of every watched process now; returns the rows written."""
        with self._lock:
            if self._closed or self.phase is None:
                return 0
            n = 0
            try:
                for proc, role in self._targets():
                    row = self._row(proc, role, self._clock_ns())
                    if row is not None:
                        self._writer.append(row)
                        n += 1
                self._writer.poll()
            except OSError as exc:
                self._write_failed(exc)
            self.samples += n
            return n
