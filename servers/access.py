"""Who may talk to a server: the Host and Origin checks and the optional bearer token.

Sans-I/O: `AccessPolicy.refusal(path, header)` looks at a request's path and headers and
returns what to answer instead (or None), so the aiohttp handlers (`http_common.admit`)
and the `websockets` `process_request` hook apply the very same rules, tested without
sockets.

Why: a web page open in the operator's browser can reach a loopback server. WebSockets are
not subject to CORS and simple POSTs are sent cross-site, so without these checks a page
could open streams until memory runs out, cancel streams or reset the statistics of a
running benchmark. And with DNS rebinding a hostile name can resolve to 127.0.0.1.

- Host: a loopback name (``localhost``, ``*.localhost``, 127.0.0.0/8, ``::1``), the bound
  address, or one given with ``--allow-host`` ("*" = any). A request without Host (HTTP/1.0
  tools) passes: browsers always send one.
- Origin: absent (not a browser), a loopback origin (any scheme and port, e.g. the
  browser check's ``https://127.0.0.1:PORT`` through nginx), or one given with
  ``--allow-origin`` ("*" = any). ``Origin: null`` (sandboxed frames, files) is refused.
- Token: with ``--token`` / ``$SSEVSWS_TOKEN`` set, every endpoint but ``/healthz`` needs
  ``Authorization: Bearer <token>`` (OpenAI's SDKs send their key so) or ``x-api-key:
  <token>`` (Anthropic's SDK).

Refusals: 403 JSON naming the header (Host, Origin), 401 with ``WWW-Authenticate: Bearer``
(token), before any WebSocket upgrade. Counted by reason on /metrics
(``ssevsws_requests_refused_total{reason=host|origin|token}``).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from servers.config import ServerConfig, is_loopback

#: Environment variable read when `--token` is not given.
TOKEN_ENV = "SSEVSWS_TOKEN"
#: The only endpoint answered without the token (readiness probes).
OPEN_PATHS = frozenset({"/healthz"})
_ANY = "*"


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    reason: str  # one of servers.stats.REFUSE_REASONS
    field: str  # the header at fault
    error: str

    def body(self) -> dict[str, str]:
        return {"error": self.error, "field": self.field}

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}


def host_name(value: str) -> str:
    """The name part of a Host header value, lower case: "[::1]:80" -> "::1"."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    name, sep, port = value.rpartition(":")
    if sep and port.isascii() and port.isdigit() and ":" not in name:
        value = name
    return value.rstrip(".")


def _loopback_name(name: str) -> bool:
    return name == "localhost" or name.endswith(".localhost") or is_loopback(name)


def joined(getall: Callable[[str], list[str]]) -> Callable[[str], str | None]:
    """A header reader over `getall(name) -> values`: None, the value, or all joined."""

    def header(name: str) -> str | None:
        values = getall(name)
        return ",".join(values) if values else None

    return header


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    bound_host: str
    allow_hosts: frozenset[str]
    allow_origins: frozenset[str]
    token: bytes | None

    @classmethod
    def from_config(cls, cfg: ServerConfig) -> AccessPolicy:
        return cls(
            bound_host=host_name(cfg.host),
            allow_hosts=frozenset(h if h == _ANY else host_name(h) for h in cfg.allow_hosts),
            allow_origins=frozenset(o.strip().lower().rstrip("/") for o in cfg.allow_origins),
            token=cfg.token.encode() if cfg.token else None,
        )

    def host_ok(self, value: str | None) -> bool:
        if not value:
            return True
        name = host_name(value)
        hosts = self.allow_hosts
        return _loopback_name(name) or name == self.bound_host or name in hosts or _ANY in hosts

    def origin_ok(self, value: str | None) -> bool:
        if value is None:
            return True
        origin = value.strip().lower().rstrip("/")
        if _ANY in self.allow_origins or origin in self.allow_origins:
            return True
        try:
            parts = urlsplit(origin)
            name = parts.hostname
        except ValueError:
            return False
        return parts.scheme in ("http", "https") and name is not None and _loopback_name(name)

    def token_ok(self, path: str, authorization: str | None, api_key: str | None = None) -> bool:
        """The bearer token, or the same token in ``x-api-key`` (the header Anthropic's
        SDK sends its key in)."""
        if self.token is None or path in OPEN_PATHS:
            return True
        if api_key is not None and hmac.compare_digest(api_key.strip().encode(), self.token):
            return True
        scheme, _, given = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), self.token)

    def refusal(self, path: str, header: Callable[[str], str | None]) -> Refusal | None:
        """What to answer instead of serving `path`, or None. `header(name)` reads one
        request header: None when absent, its values joined by "," when repeated (see
        `joined`), so a repeated Host or Origin never passes as the first one."""
        host = header("Host")
        if not self.host_ok(host):
            return Refusal(
                403,
                "host",
                "Host",
                f"Host {host[:100]!r} is not allowed: loopback names and the bound address "
                "only (see --allow-host)",
            )
        origin = header("Origin")
        if not self.origin_ok(origin):
            return Refusal(
                403,
                "origin",
                "Origin",
                f"Origin {origin[:100]!r} is not allowed: loopback origins only "
                "(see --allow-origin)",
            )
        if not self.token_ok(path, header("Authorization"), header("x-api-key")):
            return Refusal(
                401, "token", "Authorization", "this server needs Authorization: Bearer <token>"
            )
        return None
