"""Where a client connects: (host, port, base path) of a server URL."""

from __future__ import annotations

from urllib.parse import urlsplit


def split_url(url: str, default_port: int = 80) -> tuple[str, int, str]:
    """(host, port, base path without trailing slash) of an http/ws URL; ValueError for
    https/wss (the clients speak plain TCP) or a URL without a host."""
    parts = urlsplit(url)
    if parts.scheme in ("https", "wss"):
        raise ValueError(f"{url}: TLS is not supported by the load-test clients")
    if not parts.hostname:
        raise ValueError(f"{url}: no host")
    return parts.hostname, parts.port or default_port, parts.path.rstrip("/")
