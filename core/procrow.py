"""One process's resource sample as a ``resources`` row (core.records), shared by the
runner's sampler (bench.sampler) and the browser load generator's own
(loadtests.browser.procsample): CPU % of one core between two samples of the same pid, and
the row's columns in one place."""

from __future__ import annotations

from typing import Any

import psutil


class CpuRate:
    """CPU % of one core per pid, from the cumulative CPU seconds of consecutive samples."""

    def __init__(self) -> None:
        self._prev: dict[int, tuple[int, float]] = {}  # pid → (t_ns, cpu seconds)

    def pct(self, pid: int, t_ns: int, cpu_s: float) -> float | None:
        """The rate since this pid's last sample (None on its first)."""
        prev = self._prev.get(pid)
        self._prev[pid] = (t_ns, cpu_s)
        if prev is None or t_ns <= prev[0]:
            return None
        return (cpu_s - prev[1]) / ((t_ns - prev[0]) / 1e9) * 100.0

    def forget(self, pid: int) -> None:
        self._prev.pop(pid, None)


def resource_row(
    *,
    t_ns: int,
    phase: str | None,
    columns: dict[str, Any],
    arm: str | None,
    role: str,
    proc: psutil.Process,
    cpu: Any,
    cpu_pct: float | None,
    rss: int,
    fds: int | None,
    connections: int | None,
) -> dict[str, Any]:
    """The ``resources`` columns of one sample (`columns`: scenario, variant, rep)."""
    return {
        "t_ns": t_ns,
        "phase": phase,
        **columns,
        "arm": arm,
        "role": role,
        "pid": proc.pid,
        "cpu_user_s": float(cpu.user),
        "cpu_sys_s": float(cpu.system),
        "cpu_pct": cpu_pct,
        "rss_bytes": int(rss),
        "fds": fds,
        "connections": connections,
    }
