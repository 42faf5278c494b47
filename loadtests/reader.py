"""One reader per load-generator process: every ready socket drained in one pass of gevent's hub.

Under gevent each user is a greenlet. Waking a user's greenlet for every token — a libev io
watcher per socket, a switch into the greenlet, a read, a switch back — was a third of the
client's CPU. Here a single io watcher on a private `epoll` object (unpatched: gevent hides
`select.epoll`) sits in the hub. When any registered socket is readable, one callback reads
every ready socket once (`recv` of up to 64 KiB on the non-blocking socket), stamps each read
with `time.monotonic_ns()` the moment its `recv` returned, and hands `(t_ns, bytes)` to the
socket's `wire.Channel`. The channel's sink (the transport's parser and the session's token
counter) runs right there, in the hub, without a switch; the user's greenlet is woken only
when its session script has something to do (a stream's end, a threshold, a drop, a pong to
send), and only after the whole pass, so no read waits for a user's Python.

Level-triggered: a socket with more than one read's worth is read again on the next pass.
A read of ``b""`` (EOF) or an error unregisters the socket at once (a closed socket stays
readable forever). A socket is unregistered before it is closed, so a reused fd number
never reaches the old channel.

One reader per process and hub: `process_reader()` makes it lazily and again after a fork
(Locust's ``--processes`` forks its workers; an inherited epoll object is the parent's).
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING

from gevent import get_hub
from gevent.monkey import get_original

if TYPE_CHECKING:  # pragma: no cover
    from loadtests.wire import Channel

_epoll = get_original("select", "epoll")
_EPOLLIN = get_original("select", "EPOLLIN")

#: Bytes asked for per read: whatever the kernel holds, up to this (never waits for a count).
RECV_SIZE = 65536


class Reader:
    """The process's socket reader in gevent's hub (see the module docstring)."""

    __slots__ = ("_chans", "_epoll", "_loop", "_watcher", "passes", "reads")

    def __init__(self) -> None:
        self._epoll = _epoll()
        self._loop = get_hub().loop
        self._chans: dict[int, Channel] = {}
        self._watcher = self._loop.io(self._epoll.fileno(), 1)
        self.passes = 0  # hub passes that read at least one socket
        self.reads = 0  # socket reads (a read of several tokens counts once)

    def __len__(self) -> int:
        return len(self._chans)

    def add(self, chan: Channel) -> None:
        fd = chan.fd
        self._epoll.register(fd, _EPOLLIN)
        self._chans[fd] = chan
        if not self._watcher.active:
            self._watcher.start(self._on_ready)

    def remove(self, chan: Channel) -> None:
        fd = chan.fd
        if self._chans.get(fd) is chan:
            del self._chans[fd]
            with contextlib.suppress(OSError, ValueError):  # already closed
                self._epoll.unregister(fd)
            if not self._chans:
                self._watcher.stop()

    def _on_ready(self) -> None:
        """One pass: read every ready socket once, stamp, hand to its channel."""
        chans = self._chans
        now = time.monotonic_ns
        n = 0
        for fd, _ in self._epoll.poll(0):
            chan = chans.get(fd)
            if chan is None:
                continue
            try:
                data = chan.sock.recv(RECV_SIZE)
            except BlockingIOError:  # spurious readiness
                continue
            except OSError:  # reset by peer etc.: EOF to the protocol layers
                data = b""
            chan.on_read(now(), data)
            n += 1
        if n:
            self.passes += 1
            self.reads += n


_READER: tuple[int, Reader] | None = None


def process_reader() -> Reader:
    """This process's reader (made on first use, and anew in a forked child)."""
    global _READER
    pid = os.getpid()
    if _READER is None or _READER[0] != pid:
        _READER = (pid, Reader())
    return _READER[1]
