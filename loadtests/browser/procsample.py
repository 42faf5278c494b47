"""The browser's processes, by kind, sampled with psutil (rows of the `resources` table).

Chromium is several processes: the browser process itself, a renderer per page (site),
the network service (every socket lives there), a GPU process even headless, a zygote and
utilities. Each sample of the load generator writes one row per process with role
``browser-<kind>`` (``browser-main``, ``browser-renderer``, ``browser-network``,
``browser-gpu``, ``browser-zygote``, ``browser-utility``, ``browser-other``; a Playwright
Node.js driver, where one runs — the C7 check, the benchmarks — is ``browser-driver``, not
counted as the browser's), and ``client`` for the load generator's own Python process.
``connections`` holds the streams in flight in the whole browser at that moment, so memory
and CPU per open stream are fits over the samples (analysis.browser). Browser rows also
carry ``uss_bytes`` (unique set size, the pages only that process maps), used per process
kind: summed RSS counts the chromium binary and shared libraries once per process, summed
PSS splits them with every other chromium on the machine (other users' browsers move it).
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import psutil

from core.procrow import CpuRate, resource_row

ROLE_PREFIX = "browser-"
BROWSER_ROLES = tuple(
    f"{ROLE_PREFIX}{k}"
    for k in ("main", "renderer", "network", "gpu", "zygote", "utility", "other")
)
DRIVER_ROLE = f"{ROLE_PREFIX}driver"


def kind_of(cmdline: list[str]) -> str | None:
    """The role of a descendant process from its command line (None: not the browser's)."""
    if not cmdline:
        return None
    exe = os.path.basename(cmdline[0])
    if exe == "node" or any(a.endswith("cli.js") for a in cmdline[1:3]):
        return DRIVER_ROLE
    if "chrom" not in exe and not any("chrom" in a for a in cmdline[:1]):
        return None
    ptype = next((a.split("=", 1)[1] for a in cmdline if a.startswith("--type=")), None)
    if ptype is None:
        return f"{ROLE_PREFIX}main"
    if ptype == "utility":
        sub = next((a for a in cmdline if a.startswith("--utility-sub-type=")), "")
        return f"{ROLE_PREFIX}network" if "network" in sub.lower() else f"{ROLE_PREFIX}utility"
    kinds = {"renderer": "renderer", "gpu-process": "gpu", "zygote": "zygote"}
    return f"{ROLE_PREFIX}{kinds.get(ptype, 'other')}"


class ProcessSampler:
    """One `sample()` → rows for this process (``client``) and every browser descendant."""

    def __init__(self, phase: str, arm: str, columns: dict[str, Any] | None = None) -> None:
        self.phase = phase
        self.arm = arm
        self.columns = dict(columns or {})  # scenario, variant, rep (core.records)
        self.me = psutil.Process()
        self._cpu = CpuRate()
        self._procs: dict[int, psutil.Process] = {}

    def _row(self, proc: psutil.Process, role: str, t_ns: int, streams: int) -> dict[str, Any]:
        cpu = proc.cpu_times()
        fds = None
        with contextlib.suppress(psutil.Error, AttributeError):
            fds = proc.num_fds()
        uss = None
        if role.startswith(ROLE_PREFIX):  # smaps_rollup: ~0.2 ms a process
            with contextlib.suppress(psutil.Error, AttributeError):
                uss = proc.memory_full_info().uss
        row = resource_row(
            t_ns=t_ns,
            phase=self.phase,
            columns=self.columns,
            arm=self.arm,
            role=role,
            proc=proc,
            cpu=cpu,
            cpu_pct=self._cpu.pct(proc.pid, t_ns, float(cpu.user + cpu.system)),
            rss=proc.memory_info().rss,
            fds=fds,
            connections=streams,
        )
        return {**row, "uss_bytes": uss}

    def sample(self, streams: int) -> list[dict[str, Any]]:
        """Rows of one sample; `streams` = streams in flight in the browser now."""
        t_ns = time.monotonic_ns()
        rows = [self._row(self.me, "client", t_ns, streams)]
        with contextlib.suppress(psutil.Error):
            for child in self.me.children(recursive=True):
                proc = self._procs.setdefault(child.pid, child)  # keeps the start time
                try:
                    role = kind_of(proc.cmdline())
                    if role is not None:
                        rows.append(self._row(proc, role, t_ns, streams))
                except psutil.Error:
                    self._procs.pop(child.pid, None)
        return rows

    def browser_pids(self) -> dict[str, list[int]]:
        """role → pids of the browser's processes now (for the manifest)."""
        out: dict[str, list[int]] = {}
        with contextlib.suppress(psutil.Error):
            for child in self.me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    role = kind_of(child.cmdline())
                    if role is not None:
                        out.setdefault(role, []).append(child.pid)
        return out
