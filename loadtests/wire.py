"""TCP plumbing both transports share: connect, read what is there, stamp it, count bytes.

Over TLS (an https:// / wss:// URL) the channel puts the client core's sans-I/O TLS layer
(core.client.tls) between the socket and the protocol parsers: the handshake runs in
`Channel.connect` (its end stamped on the connection record), reads are decrypted as they
are read — the plaintext keeps the read's stamp — and a read that completes no TLS record
goes nowhere (it is not EOF). Byte counts are the ciphertext.

Every read returns whatever the kernel holds (up to 64 KiB) as soon as anything is there —
it never waits for a byte count (docs/methodology.md, pitfall 1) — stamped with the client's
`time.monotonic_ns()` taken the moment the read returned. Every event a protocol parser
finds in those bytes carries that stamp: they all became readable together.

Under gevent (Locust, loadtests.drive) a channel's socket is read by the process's
`loadtests.reader.Reader` in gevent's hub, never by the user's greenlet. The bytes go to
the channel's *sink* when one is set (`set_sink`: the transport's parser and the session's
token counter, run in the hub; it says when the user's greenlet must be woken), else they are
queued for `recv_some`. The greenlet blocks in `wait(deadline)` (woken by the sink, or at the
deadline: one timer per deadline, not per read) or `recv_some(deadline)`. Connects and sends
are the greenlet's, on the plain non-blocking socket: it waits for writability (gevent's
`wait_write`) only when the kernel cannot take the bytes at once. No gevent socket object is
made (its two io watchers, timeouts and close bookkeeping cost per connection what a stream
of 20 tokens costs to read).

Without gevent (plain blocking sockets), `wait` reads the socket itself
through `recv_some` and runs the sink inline: the same parsing, counting and stamps.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import ipaddress
import os
import select
import socket
import ssl
import struct
import time
from collections import deque
from collections.abc import Callable

from core.accounting import ConnectionAccount, ConnectionLabels
from core.client.tls import TLSClient, TLSError
from core.client.urls import Endpoint, parse_url
from loadtests.transport import TransportContext, TransportError

try:  # gevent is there under Locust and loadtests.drive; plain sockets work without it
    from gevent import get_hub as _get_hub
    from gevent import getcurrent as _getcurrent
    from gevent.monkey import get_original, is_module_patched
    from gevent.socket import wait_write as _wait_write

    from loadtests.reader import RECV_SIZE, process_reader

    _RawSocket = get_original("socket", "socket")
except ImportError:  # pragma: no cover
    RECV_SIZE = 65536

    def is_module_patched(name: str) -> bool:
        return False


_IN_PROGRESS = (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK)

#: What a sink is: called with each read (t_ns, bytes; b"" = EOF); True = wake the owner.
Sink = Callable[[int, bytes], bool]


def endpoint(url: str) -> Endpoint:
    """Host, port, TLS and path of an http(s) / ws(s) URL (TransportError if it is none)."""
    try:
        return parse_url(url)
    except ValueError as exc:
        raise TransportError(str(exc)) from None


def _addresses(host: str, port: int) -> list[tuple[int, tuple]]:
    """(family, address) to try; an IP literal skips getaddrinfo (under gevent that is a
    thread-pool round trip per connection, paid by every user that connects)."""
    family = _ip_family(host)
    if family is None:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return [(family, addr) for family, _, _, _, addr in infos]
    return [(family, (host, port))]


@functools.lru_cache(maxsize=64)
def _ip_family(host: str) -> int | None:
    """AF_INET / AF_INET6 for an IP literal, None for a name (every user connects to the
    same few hosts)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return socket.AF_INET6 if ip.version == 6 else socket.AF_INET


def _established(sock: socket.socket) -> bool:
    """Already connected (loopback: the handshake completes inside connect(), so there is
    nothing to wait for); one syscall instead of a wait for writability."""
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


def _connect_plain(host: str, port: int, timeout_s: float) -> socket.socket:
    """A blocking TCP connect (no gevent)."""
    return socket.create_connection((host, port), timeout=timeout_s)


def _connect_cooperative(host: str, port: int, timeout_s: float) -> socket.socket:
    """A non-blocking TCP connect under gevent: this greenlet waits for writability."""
    error: OSError = OSError(f"no address for {host}")
    for family, addr in _addresses(host, port):
        sock = _RawSocket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            err = sock.connect_ex(addr)
            if err in _IN_PROGRESS:
                if _established(sock):
                    err = 0
                else:
                    _wait_write(sock.fileno(), timeout_s, TimeoutError("timed out"))
                    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if not err:
                return sock
            error = OSError(err, os.strerror(err))
        except BaseException:
            sock.close()
            raise
        sock.close()
    raise error


class Channel:
    """One TCP connection and its `ConnectionAccount` (recorded to the sink when closed)."""

    __slots__ = (
        "_ctx",
        "_deadline",
        "_expired",
        "_hub",
        "_queue",
        "_reader",
        "_resume_pending",
        "_sink",
        "_timer",
        "_tls_eof_routed",
        "_waiting",
        "_woken",
        "acct",
        "eof",
        "fd",
        "sock",
        "t_last_read_ns",
        "tls",
    )

    def __init__(
        self,
        sock: socket.socket,
        acct: ConnectionAccount,
        ctx: TransportContext,
        *,
        cooperative: bool = False,
    ) -> None:
        """`cooperative`: a non-blocking socket under gevent, read by the process reader."""
        self.sock = sock
        self.acct = acct
        self._ctx = ctx
        self.fd = sock.fileno()
        self.tls: TLSClient | None = None  # set by start_tls
        self._tls_eof_routed = False
        self.eof = False  # a read returned b"" (or failed): nothing more will come
        self.t_last_read_ns: int | None = None  # when the last read (with bytes) returned
        self._sink: Sink | None = None
        self._queue: deque[tuple[int, bytes]] = deque()
        self._woken = False  # the sink asked for the owner since it last waited
        self._waiting = None  # the greenlet blocked in wait(), if any
        self._resume_pending = False
        self._timer = None
        self._deadline: int | None = None
        self._expired = False
        self._reader = None
        self._hub = None
        if cooperative:
            self._hub = _get_hub()
            self._reader = process_reader()
            self._reader.add(self)

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
        cooperative = is_module_patched("socket")
        connect = _connect_cooperative if cooperative else _connect_plain
        try:
            sock = connect(host, port, ctx.connect_timeout_s)
        except OSError as exc:
            acct.close(time.monotonic_ns(), "error", None, f"connect: {exc}")
            ctx.sink.connection(acct)
            raise TransportError(f"connect {host}:{port}: {exc}") from exc
        acct.tcp_connected(time.monotonic_ns())
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        chan = cls(sock, acct, ctx, cooperative=cooperative)
        if tls is not None:
            chan.start_tls(tls, host, port)
        return chan

    def start_tls(self, context: ssl.SSLContext, host: str, port: int) -> None:
        """The TLS handshake on the connected socket (before any sink is set), bounded by
        the connect timeout; the connection record gets its end stamp, version and
        resumption. TransportError (connection recorded as closed by "error") if it fails."""
        tls = TLSClient(context, host)
        deadline = time.monotonic_ns() + int(self._ctx.connect_timeout_s * 1e9)
        try:
            self._send_raw(tls.start())
            while not tls.established:
                got = self.recv_some(deadline)
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
        if self._reader is not None:
            self._send_cooperative(data)
        else:
            self.sock.settimeout(self._ctx.connect_timeout_s)
            self.sock.sendall(data)
        self.acct.bytes_out += len(data)

    def _send_cooperative(self, data: bytes) -> None:
        """All of `data` on the non-blocking socket; wait for room only when it is full."""
        sock, timeout_s = self.sock, self._ctx.connect_timeout_s
        view = memoryview(data)
        while view:
            try:
                view = view[sock.send(view) :]
            except BlockingIOError:
                _wait_write(self.fd, timeout_s, TimeoutError("send timed out"))

    # ------------------------------------------------------------------ reads in
    def on_read(self, t_ns: int, data: bytes) -> None:
        """Every read passes here (the reader's, or `wait` / `recv_some`'s without gevent):
        count it, decrypt it over TLS, then hand it to the sink or the queue."""
        if data:
            self.acct.bytes_in += len(data)
            self.t_last_read_ns = t_ns
        elif not self.eof:
            self.eof = True
            if self._reader is not None:
                self._reader.remove(self)
        tls = self.tls
        if tls is None:
            self._route(t_ns, data)
            return
        plain = tls.decrypt(data)
        reply = tls.data_to_send()
        if reply:  # rare (TLS's own answers): best effort, never blocking the reader
            with contextlib.suppress(OSError):
                self.sock.send(reply)
                self.acct.bytes_out += len(reply)
        if plain:
            self._route(t_ns, plain)
        if (tls.eof or not data) and not self._tls_eof_routed:
            self._tls_eof_routed = True  # close_notify or the socket's EOF: EOF to parsers
            if not self.eof:  # close_notify: nothing more will come
                self.eof = True
                if self._reader is not None:
                    self._reader.remove(self)
            self._route(t_ns, b"")

    def _route(self, t_ns: int, data: bytes) -> None:
        """To the sink (waking the owner if it asks), or to the queue (waking the owner)."""
        sink = self._sink
        if sink is None:
            self._queue.append((t_ns, data))
            self._wake()
        elif sink(t_ns, data):
            self._wake()

    def set_sink(self, sink: Sink | None) -> None:
        """Reads go to `sink` from now on (None: queued for `recv_some`); reads already
        queued are handed to it first."""
        self._sink = sink
        if sink is not None:
            queue = self._queue
            while queue:
                if sink(*queue.popleft()):
                    self._woken = True

    def _wake(self) -> None:
        self._woken = True
        if self._waiting is not None and not self._resume_pending:
            # after the reader's pass: every ready socket is read (and stamped) first
            self._resume_pending = True
            self._hub.loop.run_callback(self._resume)

    def _resume(self) -> None:
        self._resume_pending = False
        g = self._waiting
        if g is not None:
            g.switch(True)

    # ------------------------------------------------------------------ waiting
    def wait(self, deadline_ns: int) -> bool:
        """Block until the sink asks for the owner (True), or the deadline passes or nothing
        more can come (EOF, closed) without it asking (False)."""
        while not self._woken:
            if self.eof or self.acct.closed:
                return False
            if self._reader is not None:
                if not self._block(deadline_ns):
                    return False
                continue
            got = self._recv_plain(deadline_ns)  # plain sockets: read here
            if got is None:
                return False
            self.on_read(*got)
        self._woken = False
        return True

    def _block(self, deadline_ns: int) -> bool:
        """Switch to the hub until woken (True) or the deadline (False). One timer per
        deadline (a stream's deadline is the same for all its waits); the timer never
        raises into the greenlet, it only wakes it if it is waiting here."""
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
            self._waiting = _getcurrent()
            try:
                woke = self._hub.switch()
            finally:
                self._waiting = None
            if woke or self._woken:
                return True

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

    def recv_some(self, deadline_ns: int) -> tuple[int, bytes] | None:
        """The next read as (t_ns, bytes) as soon as there is one; b"" at EOF; None at the
        deadline. Only without a sink (handshakes, a cancel request's answer)."""
        queue = self._queue
        while not queue:
            if self.eof or self.acct.closed:  # what a read of a closed socket gives parsers
                return time.monotonic_ns(), b""
            if self._reader is not None:
                if not self._block(deadline_ns):
                    return None
                continue
            got = self._recv_plain(deadline_ns)
            if got is None:
                return None
            self.on_read(*got)
        self._woken = False
        return queue.popleft()

    def _recv_plain(self, deadline_ns: int) -> tuple[int, bytes] | None:
        """One blocking read of a plain socket (no gevent), stamped; None at the deadline."""
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
        return time.monotonic_ns(), data

    def peer_closed(self) -> bool:
        """True if an idle connection has been closed (or reset) by the peer.

        An idle keep-alive connection must have nothing to read; readable means EOF or
        a stray byte, either way it is unusable (what urllib3 checks before reuse). Over
        TLS the bytes may be TLS's own (TLS 1.3 session tickets follow the handshake): they
        are read, and only plaintext, close_notify or EOF mean closed. Under the reader, EOF
        and close_notify are known without asking (it decrypts in its pass); stray bytes
        are the sink's to notice.
        """
        if self.eof or self._queue:
            return True
        if self._reader is not None:
            return False
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        if not readable or self.tls is None:
            return bool(readable)
        got = self._recv_plain(time.monotonic_ns() + 1_000_000)  # readable: returns at once
        if got is None:
            return False
        self.acct.bytes_in += len(got[1])
        plain = self.tls.decrypt(got[1])
        return bool(plain) or self.tls.eof or not got[1]

    # ------------------------------------------------------------------ closing
    def close(self, by: str, code: int | None = None, reason: str | None = None) -> None:
        """Close the socket and record the connection (once)."""
        if self.acct.close(time.monotonic_ns(), by, code, reason):
            self._release()
            with contextlib.suppress(OSError):
                self.sock.close()
            self._ctx.sink.connection(self.acct)

    def _release(self) -> None:
        """Out of the reader (before the fd can be reused) and no timer left."""
        if self._reader is not None:
            self._reader.remove(self)
        self._stop_timer()
        self._sink = None

    def abort(self, reason: str = "client abort") -> None:
        """Reset the connection (SO_LINGER 0 → RST), as a dead network path looks to a peer."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close("client", None, reason)
