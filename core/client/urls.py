"""Where a client connects: host, port, TLS and request path of a server URL.

The path rule (``ssevsws run --sse-url / --ws-url``): a URL with a path is used as given
(``https://api.example/v1/responses``); a bare ``scheme://host:port`` gets the payload
format's default path (``/v1/stream``, ``/v1/chat/completions``…). Other endpoints of a
format (native's cancel) live under the *base*: the given path minus the format's default
path when it ends with it, else the root.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

TLS_SCHEMES = ("https", "wss")
SCHEMES = ("http", "ws", *TLS_SCHEMES)


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    tls: bool
    path: str  # the URL's path without a trailing slash; "" for a bare scheme://host:port

    @property
    def authority(self) -> str:
        """The Host header: ``host[:port]`` (the scheme's default port left out, an IPv6
        literal in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.tls else 80
        return host if self.port == default else f"{host}:{self.port}"

    def stream_path(self, default: str) -> str:
        """The path a stream's request goes to: the URL's own, else the format's `default`."""
        return self.path or default

    def base(self, default: str) -> str:
        """The prefix other endpoints of the format go under (see the module docstring)."""
        if self.path.endswith(default) and default:
            return self.path[: -len(default)]
        return ""


def parse_url(url: str) -> Endpoint:
    """The Endpoint of an http(s) / ws(s) URL; ValueError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"{url}: expected an http://, https://, ws:// or wss:// URL")
    if not parts.hostname:
        raise ValueError(f"{url}: no host")
    tls = parts.scheme in TLS_SCHEMES
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError as exc:
        raise ValueError(f"{url}: {exc}") from None
    return Endpoint(parts.hostname, port, tls, parts.path.rstrip("/"))


def split_url(url: str) -> tuple[str, int, str]:
    """(host, port, path without trailing slash) of a URL (the scheme's port, 80 or 443,
    when it has none); ValueError for a URL without a host or of another scheme."""
    ep = parse_url(url)
    return ep.host, ep.port, ep.path
