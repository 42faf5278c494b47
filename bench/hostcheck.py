"""Host limits that bend the numbers (docs/methodology.md, pitfall 14) and reachability of a
user's server."""

from __future__ import annotations

import contextlib
import resource
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: Above this many TIME_WAIT sockets, wait (up to TIME_WAIT_MAX_WAIT_S) before a phase.
TIME_WAIT_LIMIT = 8000
TIME_WAIT_MAX_WAIT_S = 65.0


def raise_nofile_limit() -> dict[str, Any]:
    """Soft open-files limit → hard limit (pitfall 14); children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    error = None
    if soft != target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            error = str(exc)
    new_soft, new_hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def norm(v: int) -> int | None:
        return None if v == resource.RLIM_INFINITY else int(v)

    return {
        "before": {"soft": norm(soft), "hard": norm(hard)},
        "after": {"soft": norm(new_soft), "hard": norm(new_hard)},
        "error": error,
    }


def time_wait_count() -> int | None:
    """TCP sockets in TIME_WAIT in this network namespace (/proc/net/sockstat), or None."""
    try:
        text = Path("/proc/net/sockstat").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("TCP:"):
            parts = line.split()
            with contextlib.suppress(ValueError, IndexError):
                return int(parts[parts.index("tw") + 1])
    return None


def check_reachable(url: str, timeout_s: float = 3.0) -> str | None:
    """None if a TCP connection to the URL's host:port opens, else why not."""
    parts = urlsplit(url)
    default = 443 if parts.scheme in ("https", "wss") else 80
    try:
        port = parts.port or default
    except ValueError as exc:
        return str(exc)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout_s):
            return None
    except OSError as exc:
        return f"cannot connect to {parts.hostname}:{port}: {exc}"
