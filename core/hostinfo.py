"""Facts about the code and the machine a run was measured on (the run manifest: results/README.md).

Everything here is best effort: a missing fact is None, never an exception, so a
run can always start. Only stdlib (no psutil: core stays light); Linux sources
(/proc, sched_getaffinity, resource) are used where present.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

#: Packages whose versions change what is measured (event loops, protocol stacks, I/O).
DEFAULT_PACKAGES: tuple[str, ...] = (
    "aiohttp",
    "websockets",
    "websocket-client",
    "locust",
    "gevent",
    "h11",
    "uvloop",
    "pandas",
    "pyarrow",
    "psutil",
    "prometheus-client",
)


def _git(repo_dir: Path | str, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo_dir), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def git_info(repo_dir: Path | str) -> dict[str, Any]:
    """`{"sha", "sha7", "dirty"}` of the checkout at `repo_dir`; all None outside git.

    `dirty` counts changes to tracked files only (like `git describe --dirty`), outside
    ``results/``: untracked files (scratch notebooks) and published results (the committed
    sample a previous `make sample` step just rewrote) do not change what ran.
    """
    sha = _git(repo_dir, "rev-parse", "--verify", "HEAD")
    sha = sha.strip() if sha else None
    if not sha:
        return {"sha": None, "sha7": None, "dirty": None}
    status = _git(
        repo_dir, "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"
    )
    dirty = None if status is None else bool(status.strip())
    return {"sha": sha, "sha7": sha[:7], "dirty": dirty}


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _cpu_model() -> str | None:
    text = _read_text("/proc/cpuinfo")
    if text:
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor", "cpu model") and (
                value.strip()
            ):
                return value.strip()
    return platform.processor() or None


def _memory_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        pass
    text = _read_text("/proc/meminfo")
    if text:
        for line in text.splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return None


def _nofile_limits() -> tuple[int | None, int | None]:
    try:
        import resource
    except ImportError:  # not on POSIX
        return None, None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def norm(v: int) -> int | None:
        return None if v == resource.RLIM_INFINITY else int(v)

    return norm(soft), norm(hard)


def _affinity() -> list[int] | None:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _port_range() -> list[int] | None:
    text = _read_text("/proc/sys/net/ipv4/ip_local_port_range")
    try:
        return [int(x) for x in text.split()] if text else None
    except ValueError:
        return None


def host_facts() -> dict[str, Any]:
    """CPU, memory, OS, Python and limits that bear on the numbers (no hostname: results get
    published)."""
    soft, hard = _nofile_limits()
    return {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "kernel": platform.release() or None,
        "os": platform.system() or None,
        "platform": platform.platform(),
        "machine": platform.machine() or None,
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "nofile_soft": soft,
        "nofile_hard": hard,
        "cpu_affinity": _affinity(),
        "ephemeral_port_range": _port_range(),
    }


def package_versions(names: Iterable[str] = DEFAULT_PACKAGES) -> dict[str, str | None]:
    """Installed distribution version for each name, None when not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
