"""Server configuration (from the command line) and the per-process state all handlers share."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import Literal

from core.arms import all_arms
from servers.stats import Stats
from servers.streams import StreamRegistry

#: A reference server kind (`python -m servers KIND`): every arm's `server_kind` in core.arms.
Kind = str
KINDS: tuple[Kind, ...] = tuple(dict.fromkeys(a.server_kind for a in all_arms() if a.server_kind))


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
    #: WS permessage-deflate: "off" (default, DESIGN pitfall 8) or "deflate".
    compression: Literal["off", "deflate"] = "off"
    loop: Literal["uvloop", "asyncio"] = "uvloop"
    allow_remote: bool = False
    log_level: str = "warning"
    #: Listen backlog: 200+ clients connecting at once must not hit SYN retries (1 s).
    backlog: int = 4096

    def describe(self) -> dict[str, object]:
        """What a run records about the server's configuration."""
        return {
            "kind": self.kind,
            "heartbeat_s": self.heartbeat_s,
            "accel_header": self.accel_header,
            "retry_ms": self.retry_ms,
            "compression": self.compression,
            "loop": self.loop,
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

    @property
    def heartbeat_ns(self) -> int:
        return int(self.config.heartbeat_s * 1e9)
