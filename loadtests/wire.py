"""TCP plumbing both transports share: connect, read what is there, stamp it, count bytes.

Over TLS (an https:// / wss:// URL) the channel puts the client core's sans-I/O TLS layer
(core.client.tls) between the socket and the protocol parsers: the handshake runs in
`Channel.connect` (its end stamped on the connection record), reads are decrypted as they
return — the plaintext keeps the read's stamp — and a read that completes no TLS record is
followed by the next read, never reported as EOF. Byte counts are the ciphertext.

`Channel.recv_some` returns whatever the kernel holds (up to 64 KiB) as soon as anything
is there — it never waits for a byte count (docs/methodology.md, pitfall 1) — together
with the client's `time.monotonic_ns()` taken the moment the read returned. Every event a
protocol parser finds in that chunk carries that stamp: those bytes all became readable
together.

Sockets are the standard library's; under Locust (gevent monkey-patching) they are
gevent's cooperative sockets, so one greenlet per user blocks only itself.
"""

from __future__ import annotations

import contextlib
import ipaddress
import select
import socket
import ssl
import struct
import time

from core.accounting import ConnectionAccount, ConnectionLabels
from core.client.tls import TLSClient, TLSError
from core.client.urls import Endpoint, parse_url
from loadtests.transport import TransportContext, TransportError

try:  # gevent is there under Locust and loadtests.drive; plain sockets work without it
    from gevent import get_hub as _get_hub
    from gevent import getcurrent as _getcurrent
    from gevent.socket import socket as _GeventSocket
except ImportError:  # pragma: no cover
    _GeventSocket = None

RECV_SIZE = 65536


class _ReadWaiter:
    """Wait for a gevent socket to become readable, or for a deadline, with no per-read
    allocation: one libev io watcher per connection, one timer per deadline (a stream's
    deadline is the same for all its reads). gevent's own `recv` with a timeout builds,
    starts and closes a `gevent.Timeout` on every read that waits (~4.5 us a token).

    The timer never raises into the greenlet: it only wakes it if it is waiting here, or
    marks the deadline passed for the next wait.
    """

    __slots__ = ("_deadline", "_expired", "_hub", "_io", "_timer", "_waiting")

    def __init__(self, fd: int) -> None:
        self._hub = _get_hub()
        self._io = self._hub.loop.io(fd, 1)
        self._timer = None
        self._deadline: int | None = None
        self._expired = False
        self._waiting = None

    def wait(self, deadline_ns: int) -> bool:
        """True once readable (possibly spuriously), False once the deadline has passed."""
        while True:
            if deadline_ns != self._deadline or self._expired:
                # a new deadline, or the timer fired early (libev times from the loop's
                # cached clock): (re)arm it for what is left, if anything is
                self._stop_timer()
                remaining = deadline_ns - time.monotonic_ns()
                if remaining <= 0:
                    return False
                self._deadline = deadline_ns
                self._expired = False
                self._timer = timer = self._hub.loop.timer(remaining / 1e9, ref=False)
                timer.start(self._on_timer)
            g = _getcurrent()
            self._waiting = g
            self._io.start(g.switch, True)
            try:
                if self._hub.switch():
                    return True
            finally:
                self._io.stop()
                self._waiting = None

    def _on_timer(self) -> None:
        self._expired = True
        g = self._waiting
        if g is not None:
            g.switch(False)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer.close()
            self._timer = None
        self._deadline = None

    def close(self) -> None:
        self._stop_timer()
        self._io.stop()
        self._io.close()


def endpoint(url: str) -> Endpoint:
    """Host, port, TLS and path of an http(s) / ws(s) URL (TransportError if it is none)."""
    try:
        return parse_url(url)
    except ValueError as exc:
        raise TransportError(str(exc)) from None


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
        self.tls: TLSClient | None = None  # set by start_tls
        # Under gevent: read the underlying non-blocking socket and wait with _ReadWaiter.
        self._raw = None
        self._waiter: _ReadWaiter | None = None
        if _GeventSocket is not None and isinstance(sock, _GeventSocket):
            raw = getattr(sock, "_sock", None)
            if raw is not None:
                self._raw = raw
                self._waiter = _ReadWaiter(sock.fileno())

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        ctx: TransportContext,
        conn_uid: str,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> Channel:
        """TCP connect (and with `tls`, the TLS handshake); TransportError if it fails."""
        labels = ConnectionLabels(
            conn_uid, ctx.phase, ctx.arm, ctx.worker, ctx.user, ctx.scenario, ctx.variant, ctx.rep
        )
        acct = ConnectionAccount(labels, time.monotonic_ns())
        try:
            sock = _connect(host, port, ctx.connect_timeout_s)
        except OSError as exc:
            acct.close(time.monotonic_ns(), "error", None, f"connect: {exc}")
            ctx.sink.connection(acct)
            raise TransportError(f"connect {host}:{port}: {exc}") from exc
        acct.tcp_connected(time.monotonic_ns())
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        chan = cls(sock, acct, ctx)
        if tls is not None:
            chan.start_tls(tls, host, port)
        return chan

    def start_tls(self, context: ssl.SSLContext, host: str, port: int) -> None:
        """The TLS handshake on the connected socket, bounded by the connect timeout; the
        connection record gets its end stamp, version and resumption. TransportError
        (connection recorded as closed by "error") if it fails."""
        tls = TLSClient(context, host)
        deadline = time.monotonic_ns() + int(self._ctx.connect_timeout_s * 1e9)
        try:
            self._send_raw(tls.start())
            while not tls.established:
                got = self._recv_raw(deadline)
                if got is None:
                    raise TLSError("no answer to the TLS handshake in time")
                reply = tls.receive_handshake(got[1])
                if reply:
                    self._send_raw(reply)
        except (TLSError, OSError) as exc:
            self.close("error", None, f"tls: {exc}")
            raise TransportError(f"TLS with {host}:{port}: {exc}") from None
        self.acct.tls_established(got[0], tls.version, tls.resumed)
        self.tls = tls

    @property
    def closed(self) -> bool:
        return self.acct.closed

    def send(self, data: bytes) -> None:
        if self.tls is not None:
            data = self.tls.encrypt(data)
        try:
            self._send_raw(data)
        except OSError as exc:
            self.close("error", None, f"send: {exc}")
            raise TransportError(f"send: {exc}") from exc

    def _send_raw(self, data: bytes) -> None:
        self.sock.settimeout(self._ctx.connect_timeout_s)
        self.sock.sendall(data)
        self.acct.bytes_out += len(data)

    def recv_some(self, deadline_ns: int) -> tuple[int, bytes] | None:
        """(t_ns, bytes) as soon as any bytes are there; b"" at EOF; None at the deadline.
        Over TLS the bytes are plaintext, stamped with the read that completed them."""
        if self.tls is not None:
            return self._recv_tls(deadline_ns)
        return self._recv_raw(deadline_ns)

    def _recv_tls(self, deadline_ns: int) -> tuple[int, bytes] | None:
        tls = self.tls
        assert tls is not None
        if tls.eof:  # close_notify (or EOF) already read: what a closed socket gives
            return time.monotonic_ns(), b""
        while True:
            got = self._recv_raw(deadline_ns)
            if got is None:
                return None
            t, data = got
            plain = tls.decrypt(data)
            reply = tls.data_to_send()
            if reply:
                with contextlib.suppress(OSError):
                    self._send_raw(reply)
            if plain or tls.eof or not data:
                return t, plain

    def _recv_raw(self, deadline_ns: int) -> tuple[int, bytes] | None:
        """The socket's bytes as they are read (see recv_some)."""
        waiter = self._waiter
        if waiter is not None:
            if deadline_ns <= time.monotonic_ns():
                return None
            if self.acct.closed:  # what a read of a closed socket gives the parsers
                return time.monotonic_ns(), b""
            raw = self._raw
            # Wait first, then read: a streaming read has usually drained the socket, so
            # trying first would cost a failed recv (EAGAIN) per token. Readiness is
            # level-triggered: bytes already there make the wait return at once.
            while True:
                if not waiter.wait(deadline_ns):
                    return None
                try:
                    data = raw.recv(RECV_SIZE)
                    break
                except BlockingIOError:  # spurious wake-up
                    continue
                except OSError:  # reset by peer etc.: EOF to the protocol layers
                    data = b""
                    break
            t = time.monotonic_ns()
            self.acct.bytes_in += len(data)
            return t, data
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
        a stray byte, either way it is unusable (what urllib3 checks before reuse). Over
        TLS the bytes may be TLS's own (TLS 1.3 session tickets follow the handshake): they
        are read, and only plaintext, close_notify or EOF mean closed.
        """
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        if not readable or self.tls is None:
            return bool(readable)
        got = self._recv_raw(time.monotonic_ns() + 1_000_000)  # readable: returns at once
        if got is None:
            return False
        plain = self.tls.decrypt(got[1])
        return bool(plain) or self.tls.eof or not got[1]

    def close(self, by: str, code: int | None = None, reason: str | None = None) -> None:
        """Close the socket and record the connection (once)."""
        if self.acct.close(time.monotonic_ns(), by, code, reason):
            if self._waiter is not None:
                self._waiter.close()
            with contextlib.suppress(OSError):
                self.sock.close()
            self._ctx.sink.connection(self.acct)

    def abort(self, reason: str = "client abort") -> None:
        """Reset the connection (SO_LINGER 0 → RST), as a dead network path looks to a peer."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close("client", None, reason)
