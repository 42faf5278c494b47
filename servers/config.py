"""Server configuration (from the command line) and the per-process state all handlers share."""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass, field
from typing import Literal

from core.arms import all_arms
from core.scenario import ServerSpec
from core.tlscert import server_context
from servers.limits import Admission
from servers.stats import Stats
from servers.streamlog import StreamLog
from servers.streams import StreamRegistry

#: A reference server kind (`python -m servers KIND`): every arm's `server_kind` in core.arms.
Kind = str
KINDS: tuple[Kind, ...] = tuple(dict.fromkeys(a.server_kind for a in all_arms() if a.server_kind))
_SPEC = ServerSpec()


@dataclass(frozen=True, slots=True)
class ServerConfig:
    kind: Kind
    host: str = "127.0.0.1"
    port: int = 0
    #: SSE comment / WS ping interval in seconds; 0 = off.
    heartbeat_s: float = 15.0
    #: Send `X-Accel-Buffering: no` on SSE responses (switch off to test proxies).
    accel_header: bool = True
    #: SSE `retry:` value sent first on every stream.
    retry_ms: int = 3000
    #: WS permessage-deflate: "off" (default: it costs CPU per frame, so opt-in) or "deflate".
    compression: Literal["off", "deflate"] = "off"
    loop: Literal["uvloop", "asyncio"] = "uvloop"
    allow_remote: bool = False
    log_level: str = "warning"
    #: Listen backlog: 200+ clients connecting at once must not hit SYN retries (1 s).
    backlog: int = 4096
    # Timeouts and limits: defaults are core.scenario.ServerSpec's (what a scenario may set).
    # -- timeouts (seconds, 0 = off); see servers.guard -----------------------------------
    #: A peer that takes no data for this long while our writes wait on it: "slow consumer".
    send_timeout_s: float = _SPEC.send_timeout_s
    #: A connection must finish its first request head (HTTP or WS upgrade) this soon.
    header_timeout_s: float = _SPEC.header_timeout_s
    #: A connection with no request in progress (HTTP) or no stream running and no client
    #: message (WS) is closed after this long. Longer than any think time of a scenario.
    idle_timeout_s: float = _SPEC.idle_timeout_s
    # -- limits (0 = none); see servers.limits --------------------------------------------
    #: Streams running at once on one WebSocket connection.
    max_streams_per_connection: int = _SPEC.max_streams_per_connection
    #: Streams running at once in this server (the perf idle phase holds 10,000).
    max_active_streams: int = _SPEC.max_active_streams
    #: Sum of the planned tokens of the running streams (~50 bytes each while planned).
    max_planned_tokens: int = _SPEC.max_planned_tokens
    # -- who may talk to the server; see servers.access ------------------------------------
    #: Extra Host names accepted besides loopback names and the bound address ("*" = any).
    allow_hosts: tuple[str, ...] = ()
    #: Extra Origins accepted besides loopback ones ("*" = any).
    allow_origins: tuple[str, ...] = ()
    #: Bearer token every endpoint but /healthz requires; None = no token.
    token: str | None = field(default=None, repr=False)
    #: Where to append one JSON line per ended emission (servers.streamlog); None = off.
    stream_log: str | None = None
    # -- TLS (servers.run); None: plain TCP ------------------------------------------------
    #: PEM certificate and key the server serves TLS with (made at start by
    #: ``--tls-self-signed``, then `tls_self_signed` is True).
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_self_signed: bool = False

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server's TLS context (None: plain TCP)."""
        if self.tls_cert is None or self.tls_key is None:
            return None
        return server_context(self.tls_cert, self.tls_key)

    def describe(self) -> dict[str, object]:
        """What a run records about the server's configuration (never the token itself)."""
        return {
            "kind": self.kind,
            "heartbeat_s": self.heartbeat_s,
            "accel_header": self.accel_header,
            "retry_ms": self.retry_ms,
            "compression": self.compression,
            "loop": self.loop,
            "send_timeout_s": self.send_timeout_s,
            "header_timeout_s": self.header_timeout_s,
            "idle_timeout_s": self.idle_timeout_s,
            "max_streams_per_connection": self.max_streams_per_connection,
            "max_active_streams": self.max_active_streams,
            "max_planned_tokens": self.max_planned_tokens,
            "allow_hosts": ",".join(self.allow_hosts),
            "allow_origins": ",".join(self.allow_origins),
            "token": self.token is not None,
            "stream_log": self.stream_log is not None,
            "tls": ("self-signed" if self.tls_self_signed else "cert") if self.tls else "off",
            "tls_cert": self.tls_cert or "",
        }


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(slots=True)
class ServerState:
    """One per server process: configuration, counters, live and recent streams."""

    config: ServerConfig
    stats: Stats = field(default_factory=Stats)
    registry: StreamRegistry = field(default_factory=StreamRegistry)
    pid: int = field(default_factory=os.getpid)
    admission: Admission = field(init=False)
    #: The open stream log when `config.stream_log` is set (servers.run opens it).
    stream_log: StreamLog | None = None

    def __post_init__(self) -> None:
        cfg = self.config
        self.admission = Admission(
            cfg.max_streams_per_connection, cfg.max_active_streams, cfg.max_planned_tokens
        )

    @property
    def heartbeat_ns(self) -> int:
        return int(self.config.heartbeat_s * 1e9)
