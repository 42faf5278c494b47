"""TCP plumbing both transports share: connect, read what is there, stamp it, count bytes.

`Channel.recv_some` returns whatever the kernel holds (up to 64 KiB) as soon as anything
is there — it never waits for a byte count (DESIGN pitfall 1) — together with the client's
`time.monotonic_ns()` taken the moment the read returned. Every event a protocol parser
finds in that chunk carries that stamp: those bytes all became readable together.

Sockets are the standard library's; under Locust (gevent monkey-patching) they are
gevent's cooperative sockets, so one greenlet per user blocks only itself.
"""

from __future__ import annotations

import contextlib
import ipaddress
import select
import socket
import struct
import time
from urllib.parse import urlsplit

from core.accounting import ConnectionAccount, ConnectionLabels
from loadtests.transport import TransportContext, TransportError

RECV_SIZE = 65536


def split_url(url: str, default_port: int) -> tuple[str, int, str]:
    """(host, port, base path without trailing slash) of an http(s)/ws(s) URL."""
    parts = urlsplit(url)
    if parts.scheme in ("https", "wss"):
        raise TransportError(f"{url}: TLS is not supported by the load-test clients")
    if not parts.hostname:
        raise TransportError(f"{url}: no host")
    return parts.hostname, parts.port or default_port, parts.path.rstrip("/")


def _connect(host: str, port: int, timeout_s: float) -> socket.socket:
    """TCP connect; an IP literal skips getaddrinfo (under gevent that is a thread-pool
    round trip per connection, paid by every user that connects)."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return socket.create_connection((host, port), timeout=timeout_s)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout_s)
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


class Channel:
    """One TCP connection and its `ConnectionAccount` (recorded to the sink when closed)."""

    def __init__(self, sock: socket.socket, acct: ConnectionAccount, ctx: TransportContext):
        self.sock = sock
        self.acct = acct
        self._ctx = ctx

    @classmethod
    def connect(cls, host: str, port: int, ctx: TransportContext, conn_uid: str) -> Channel:
        labels = ConnectionLabels(conn_uid, ctx.phase, ctx.arm, ctx.worker, ctx.user)
        acct = ConnectionAccount(labels, time.monotonic_ns())
        try:
            sock = _connect(host, port, ctx.connect_timeout_s)
        except OSError as exc:
            acct.close(time.monotonic_ns(), "error", None, f"connect: {exc}")
            ctx.sink.connection(acct)
            raise TransportError(f"connect {host}:{port}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock, acct, ctx)

    @property
    def closed(self) -> bool:
        return self.acct.closed

    def send(self, data: bytes) -> None:
        try:
            self.sock.settimeout(self._ctx.connect_timeout_s)
            self.sock.sendall(data)
        except OSError as exc:
            self.close("error", None, f"send: {exc}")
            raise TransportError(f"send: {exc}") from exc
        self.acct.bytes_out += len(data)

    def recv_some(self, deadline_ns: int) -> tuple[int, bytes] | None:
        """(t_ns, bytes) as soon as any bytes are there; b"" at EOF; None at the deadline."""
        remaining = (deadline_ns - time.monotonic_ns()) / 1e9
        if remaining <= 0:
            return None
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(RECV_SIZE)
        except TimeoutError:
            return None
        except OSError:  # reset by peer etc.: the same as EOF to the protocol layers
            data = b""
        t = time.monotonic_ns()
        self.acct.bytes_in += len(data)
        return t, data

    def peer_closed(self) -> bool:
        """True if an idle connection has been closed (or reset) by the peer.

        An idle keep-alive connection must have nothing to read; readable means EOF or
        a stray byte, either way it is unusable (what urllib3 checks before reuse).
        """
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self, by: str, code: int | None = None, reason: str | None = None) -> None:
        """Close the socket and record the connection (once)."""
        if self.acct.close(time.monotonic_ns(), by, code, reason):
            with contextlib.suppress(OSError):
                self.sock.close()
            self._ctx.sink.connection(self.acct)

    def abort(self, reason: str = "client abort") -> None:
        """Reset the connection (SO_LINGER 0 → RST), as a dead network path looks to a peer."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close("client", None, reason)
