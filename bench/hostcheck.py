"""Host limits that bend the numbers (docs/methodology.md, pitfall 14) and reachability of a
user's server."""

from __future__ import annotations

import contextlib
import resource
import socket
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.client.tls import TLSSettings

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


def check_reachable(url: str, tls: TLSSettings | None = None, timeout_s: float = 3.0) -> str | None:
    """None if a TCP connection to the URL's host:port opens — and for https / wss, a TLS
    handshake verified as `tls` says succeeds — else why not (one line)."""
    parts = urlsplit(url)
    secure = parts.scheme in ("https", "wss")
    try:
        port = parts.port or (443 if secure else 80)
    except ValueError as exc:
        return str(exc)
    host = parts.hostname or ""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            if secure:
                context = (tls or TLSSettings()).context()
                with context.wrap_socket(sock, server_hostname=host):
                    pass
            return None
    except ssl.SSLCertVerificationError as exc:
        return (
            f"TLS: certificate verify failed: {exc.verify_message} (trust the server's "
            "certificate with --ca-file PEM, or skip the check with --insecure)"
        )
    except ssl.SSLError as exc:
        return f"TLS handshake with {host}:{port} failed: {exc.reason or exc}"
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc}"
