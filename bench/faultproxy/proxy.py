"""The fault proxy's I/O: asyncio Protocols (uvloop in production) around the pure
schedule in `bench.faultproxy.schedule`.

One `Conn` per accepted client: two `Side`s (the client's socket and the proxy's socket
to the server) and two `Direction`s (up: client → server, down: server → client). With
all faults off a chunk goes straight from `data_received` to the other transport's
`write` — no per-byte work, no copy. With a shaped direction the chunk goes through the
direction's `DelayLine`, is queued with its release time, and one timer for the whole
proxy (`ReleaseWheel`) writes what is due — under load many releases share a wake-up.

Back-pressure: a side stops being read while the queue towards the other side holds more
than its high-water mark (`high_water`: at least 256 KiB, and room for twice the bytes in
flight on the delayed path) or while the other transport's write buffer is full; that is
how a slow link slows the sender, as TCP's window would.

Timers (`bench.faultproxy.timing`): every due time is an absolute `time.monotonic_ns()`
value, never the loop's millisecond clock; pieces due within `SLACK_NS` are written at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench.faultproxy.profile import NetworkProfile
from bench.faultproxy.schedule import (
    ConnCuts,
    Cut,
    DelayLine,
    Piece,
    Timeline,
    Window,
    admit,
    plan_cuts,
)
from bench.faultproxy.timing import SLACK_NS, Lateness, ReleaseWheel, Timer
from core.faultlog import FaultLogWriter

__all__ = ["FaultProxy"]

HIGH_WATER = 256 * 1024  # queued bytes in one direction before its source is paused, at least
HIGH_WATER_MAX = 8 << 20
UNCAPPED_BPS = 125e6  # an uncapped direction's rate when sizing its queue (1 Gbit/s)
SNIFF_LIMIT = 8192  # bytes of the first request searched for its request line
DRAIN_NS = 10_000_000_000  # a FIN-cut peer that keeps its half open is closed on after 10 s
SILENT_POLL_S = 0.25  # how often a silent side is checked for its peer's close
FLUSH_S = 0.5
_LINGER0 = struct.pack("ii", 1, 0)
_TCP_CLOSE_STATES = {7, 8, 9}  # TCP_CLOSE, TCP_CLOSE_WAIT, TCP_LAST_ACK: the peer closed


def _request_ids(head: bytes) -> dict[str, Any] | None:
    """method, path, stream_id, conn_uid from the first request line (None: not yet seen)."""
    end = head.find(b"\r\n")
    if end < 0:
        return None
    parts = head[:end].decode("latin-1").split(" ")
    if len(parts) < 3:
        return {"method": None, "path": None, "stream_id": None, "conn_uid": None}
    url = urlsplit(parts[1])
    q = parse_qs(url.query)
    return {
        "method": parts[0],
        "path": url.path,
        "stream_id": (q.get("stream") or [None])[-1],
        "conn_uid": (q.get("conn") or [None])[-1],
    }


class Side(asyncio.Protocol):
    """One socket of a connection: the client's (accepted) or the server's (dialled)."""

    def __init__(self, proxy: FaultProxy, role: str, conn: Conn | None = None) -> None:
        self.proxy, self.role, self.conn = proxy, role, conn
        self.transport: asyncio.Transport | None = None
        self.out: Direction | None = None  # the direction this side feeds
        self.into: Direction | None = None  # the direction that writes to this side
        self._paused: set[str] = set()
        self.open = False
        self.eof = False
        self.silent = False
        self.silent_since_ns = 0
        self.draining = False  # FIN sent after a cut: read and drop until the peer closes
        self.discarded = 0

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport, self.open = transport, True  # type: ignore[assignment]
        if self.role == "client":
            self.proxy.accepted(self)

    def data_received(self, data: bytes) -> None:
        if self.draining:
            self.discarded += len(data)
        elif self.silent:
            self._discard(len(data))
        elif self.out is not None:
            self.out.feed(data)

    def eof_received(self) -> bool:
        self.eof = True
        if self.draining:
            return False  # both halves closed: the orderly end of a FIN cut
        if self.conn is not None:
            self.conn.side_eof(self)
        return True  # keep our half open: the other direction may still be flowing

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self.conn is not None:
            self.conn.side_lost(self, exc)

    def pause_writing(self) -> None:
        if self.into is not None and self.into.src is not None:
            self.into.src.pause("write")

    def resume_writing(self) -> None:
        if self.into is not None and self.into.src is not None:
            self.into.src.resume("write")

    # control
    def pause(self, why: str) -> None:
        if not self._paused and self.transport is not None and self.open:
            self.transport.pause_reading()
        self._paused.add(why)

    def resume(self, why: str) -> None:
        if why not in self._paused:
            return
        self._paused.discard(why)
        if not self._paused and self.transport is not None and self.open:
            self.transport.resume_reading()

    def _discard(self, n: int) -> None:
        self.discarded += n
        if self.discarded >= self.proxy.profile.tcp.silent_window_bytes:
            self.pause("silent")

    def end(self, mode: str) -> None:
        """Close this socket: fin (orderly: our FIN, then read and drop until the peer
        closes too, so data it was still sending does not draw a reset), rst (SO_LINGER 0),
        silent (keep it open, stop writing to it, read and drop up to the silent window,
        then stop reading)."""
        if not self.open or self.transport is None:
            return
        if mode == "silent":
            self.silent, self.silent_since_ns = True, time.monotonic_ns()
            self.proxy.watch_silent(self)
            return
        if mode == "rst":
            sock = self.transport.get_extra_info("socket")
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER0)
            self.transport.abort()
            return
        if self.eof or not self.transport.can_write_eof():
            self.transport.close()
            return
        self.draining = True
        self._paused.clear()
        with contextlib.suppress(OSError, RuntimeError):
            self.transport.write_eof()
            self.transport.resume_reading()
        Timer(self.proxy.loop, time.monotonic_ns() + DRAIN_NS, self._drained)

    def _drained(self) -> None:
        """A peer that never closes after our FIN is closed on after DRAIN_NS."""
        if self.open and self.transport is not None:
            self.transport.close()

    def peer_gone(self) -> bool:
        """True when the peer has closed its end (TCP_INFO state), even while paused."""
        if self.transport is None or not self.open:
            return True
        sock = self.transport.get_extra_info("socket")
        try:
            return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] in _TCP_CLOSE_STATES
        except (OSError, AttributeError):
            return False


def high_water(line: DelayLine | None) -> int:
    """Queue limit of a direction: a delay line holds the bytes in flight (rate × delay, a
    bandwidth-delay product), so its queue must hold them or it caps the throughput itself."""
    if line is None:
        return HIGH_WATER
    rate = line.bucket.bytes_per_s if line.bucket is not None else UNCAPPED_BPS
    in_flight = rate * (line.latency_ns + 2 * line.jitter_ns) / 1e9
    return int(max(HIGH_WATER, min(HIGH_WATER_MAX, 2 * in_flight)))


class Direction:
    """Bytes from `src` to `dst`, through a delay line (or straight when unshaped)."""

    def __init__(self, conn: Conn, name: str, line: DelayLine | None) -> None:
        self.conn, self.name, self.line = conn, name, line
        self.src: Side | None = None
        self.dst: Side | None = None
        self.queue: deque[Piece] = deque()
        self.queued = 0
        self.wake_ns: int | None = None  # when the release wheel will pump this direction
        self.high_water = high_water(line)
        self.ready_ns = 0  # when `dst` became writable (a held connection's bytes wait for it)
        self.bytes_in = 0
        self.bytes_out = 0
        self.cut_at: Cut | None = None  # down: cut once this many bytes are delivered
        self.eof_pending = False
        self.eof_sent = False
        self.eof_release_ns = 0  # when the source's FIN reaches `dst` (bench.faultproxy.schedule)
        self.dead = False
        self.sniff: Callable[[bytes], None] | None = None  # up: reads the request line

    def feed(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if self.sniff is not None:
            self.sniff(data)
        if self.dead:
            return
        if self.line is None and not self.queue and self._ready():
            self._write(data)
            return
        if self.line is None:
            self.queue.append(Piece(0, data))
        else:
            now = time.monotonic_ns()
            pieces, events = self.line.push(data, now)
            self.queue.extend(pieces)
            for ev in events:
                self.conn.log(ev.pop("ev"), now, **ev)
        self.queued += len(data)
        if self.queued > self.high_water and self.src is not None:
            self.src.pause("queue")
        self.pump()

    def _ready(self) -> bool:
        return self.dst is not None and self.dst.open and not self.dst.silent

    def pump(self) -> None:
        if self.dead or not self._ready():
            return
        now = time.monotonic_ns()
        lateness, since = self.conn.proxy.lateness, self.ready_ns
        while self.queue and self.queue[0].release_ns <= now + SLACK_NS:
            piece = self.queue.popleft()
            self.queued -= len(piece.data)
            if piece.release_ns:
                lateness.add(now - max(piece.release_ns, since))
            self._write(piece.data)
            if self.dead:
                return
        if self.queue:
            self.conn.proxy.wheel.wake(self, self.queue[0].release_ns)
        elif self.eof_pending and not self.eof_sent:
            if self.eof_release_ns > now + SLACK_NS:
                self.conn.proxy.wheel.wake(self, self.eof_release_ns)
            else:
                self.send_eof()
        if self.queued < self.high_water // 4 and self.src is not None:
            self.src.resume("queue")

    def _write(self, data: bytes) -> None:
        assert self.dst is not None and self.dst.transport is not None
        cut = self.cut_at
        if cut is not None and cut.after_bytes is not None:
            room = cut.after_bytes - self.bytes_out
            if len(data) >= room:
                if room > 0:
                    self.dst.transport.write(data[:room])
                    self.bytes_out += room
                self.conn.cut("after_bytes", cut)
                return
        self.dst.transport.write(data)
        self.bytes_out += len(data)

    def send_eof(self) -> None:
        self.eof_sent = True
        if self.dst is not None and self.dst.open and self.dst.transport is not None:
            with contextlib.suppress(OSError, RuntimeError):
                if self.dst.transport.can_write_eof():
                    self.dst.transport.write_eof()
        self.conn.maybe_done()

    def kill(self) -> None:
        """Drop what is queued and stop forwarding (a cut)."""
        self.dead = True
        self.queue.clear()
        self.queued = 0

    def close_crosses_at(self, now: int) -> int | None:
        """When a close from `src` sent now reaches `dst` through the delay line; None when
        it crosses at once (no shaping, nothing in flight, no blackhole)."""
        if self.line is None:
            return None
        release, events = self.line.close_release(now)
        for ev in events:
            self.conn.log(ev.pop("ev"), now, **ev)
        return release if release > now + SLACK_NS else None


class Conn:
    """One proxied connection: its sides, directions, planned cuts and log identity."""

    def __init__(self, proxy: FaultProxy, serial: int, client: Side, t_ns: int) -> None:
        self.proxy, self.serial, self.t_accept_ns = proxy, serial, t_ns
        peer = client.transport.get_extra_info("peername") if client.transport else None
        self.client_addr = f"{peer[0]}:{peer[1]}" if peer else None
        self.ids: dict[str, Any] = {"client_addr": self.client_addr}
        self.head = b""
        self.client: Side = client
        self.server: Side | None = None
        client.conn = self
        self.up = Direction(self, "up", proxy.delay_line("up", serial))
        self.down = Direction(self, "down", proxy.delay_line("down", serial))
        self.up.src, client.out = client, self.up
        self.down.dst, client.into = client, self.down
        self.cuts: ConnCuts = plan_cuts(proxy.profile, proxy.seed, serial)
        self.down.cut_at = self.cuts.by_bytes
        self.cut_timer: Timer | None = None
        self.state = "open"  # open | cut | done
        self.closed_by: str | None = None
        self.how: str | None = None
        self.connect_task: asyncio.Task[Any] | None = None
        if proxy.sniff_ids:
            self.up.sniff = self._sniff

    def _sniff(self, data: bytes) -> None:
        """Collect the first bytes the client sends until the request line is complete, then
        name the connection by its stream= / conn= (as a proxy's access log would)."""
        self.head += data[: SNIFF_LIMIT - len(self.head)]
        ids = _request_ids(self.head)
        if ids is None and len(self.head) < SNIFF_LIMIT:
            return
        self.up.sniff, self.head = None, b""
        if ids is not None:
            self.ids.update(stream_id=ids["stream_id"], conn_uid=ids["conn_uid"])
            self.log("request", time.monotonic_ns(), method=ids["method"], path=ids["path"])

    def log(self, ev: str, t_ns: int, **fields: Any) -> None:
        self.proxy.log.write(ev, t_ns, conn=self.serial, **self.ids, **fields)

    # ------------------------------------------------------------------ lifecycle
    def start(self, delay_until_ns: int | None = None) -> None:
        """Dial the server now, or at `delay_until_ns` (a held connection)."""
        if self.cuts.timed is not None and self.cuts.timed.after_ns is not None:
            t_cut = self.t_accept_ns + self.cuts.timed.after_ns
            cut = self.cuts.timed
            self.cut_timer = Timer(
                self.proxy.loop, t_cut, lambda: self.cut("after_s", cut, t_sched_ns=t_cut)
            )
        if delay_until_ns is None:
            self._dial()
        else:
            Timer(self.proxy.loop, delay_until_ns, self._dial)

    def _dial(self) -> None:
        if self.state != "open":
            return
        self.connect_task = self.proxy.loop.create_task(self._connect())

    async def _connect(self) -> None:
        host, port = self.proxy.upstream
        try:
            _, side = await self.proxy.loop.create_connection(
                lambda: Side(self.proxy, "server", self), host, port
            )
        except OSError as exc:
            self.log("upstream_failed", time.monotonic_ns(), error=str(exc))
            self.state = "done"
            self.client.end("fin")
            return
        if self.state != "open":  # cut while dialling
            side.end("fin")
            return
        self.server = side
        self.up.dst, side.into = side, self.up
        self.up.ready_ns = time.monotonic_ns()
        self.down.src, side.out = side, self.down
        self.log("upstream", time.monotonic_ns())
        self.up.pump()

    def cut(self, cause: str, cut: Cut, t_sched_ns: int | None = None) -> None:
        """Cut the connection now (a rule's time or byte count, or a handover)."""
        if self.state != "open":
            return
        self.state = "cut"
        now = time.monotonic_ns()
        self.log(
            "cut",
            now,
            cause=cause,
            rule=cut.rule,
            client=cut.client,
            server=cut.server,
            t_sched_ns=t_sched_ns,
            bytes_up=self.up.bytes_out,
            bytes_down=self.down.bytes_out,
        )
        self.closed_by, self.how = "proxy", f"{cut.client}/{cut.server}"
        if self.cut_timer is not None:
            self.cut_timer.cancel()
        self.up.kill()
        self.down.kill()
        if self.connect_task is not None and self.server is None:
            self.connect_task.cancel()
        self.client.end(cut.client)
        if self.server is not None:
            self.server.end(cut.server)
        self.maybe_done()

    def side_eof(self, side: Side) -> None:
        """The peer sent FIN: forward it once what is queued towards the other side is out."""
        if side.silent:
            self._silent_closed(side)
            return
        if self.closed_by is None:
            self.closed_by, self.how = side.role, "fin"
        d = side.out
        assert d is not None
        d.eof_pending = True
        d.eof_release_ns = d.close_crosses_at(time.monotonic_ns()) or 0
        if d.dst is not None:
            d.pump()
        else:
            self.maybe_done()  # the client left before the server was reached

    def side_lost(self, side: Side, exc: Exception | None) -> None:
        """A socket is gone. While the connection is open that is the peer resetting it (or
        a socket error): pass it on as a reset — once it has crossed the path (after the
        latency and any blackhole; until then the other side's bytes are dropped). After a
        cut or a clean end: bookkeeping."""
        if side.silent:
            self._silent_closed(side)
            return
        if self.state == "open":
            if self.closed_by is None or exc is not None:
                self.closed_by = side.role
                self.how = "rst" if isinstance(exc, ConnectionResetError) else "error"
            now = time.monotonic_ns()
            towards = side.out
            at = None
            if towards is not None and not self.proxy.stopping:
                at = towards.close_crosses_at(now)
            if at is not None and towards is not None and towards.dst is not None:
                self.state = "closing"  # the reset is in flight
                assert side.into is not None
                side.into.kill()  # nothing reaches the side that is gone
                self.log("close_in_flight", now, side=side.role, release_ns=at)
                Timer(self.proxy.loop, at, lambda: self._pass_on_loss(side, exc))
                return
            self._pass_on_loss(side, exc)
        self.maybe_done()

    def _pass_on_loss(self, side: Side, exc: Exception | None) -> None:
        """The other side learns that `side` is gone: reset (or FIN after a clean error)."""
        if self.state not in ("open", "closing"):
            return
        if side.out is not None and not side.out.dead:
            side.out.pump()  # what it sent before the reset is due by now: deliver it first
        self.state = "done"
        self.up.kill()
        self.down.kill()
        other = self.server if side is self.client else self.client
        if other is not None:
            other.end("rst" if exc is not None else "fin")
        elif self.connect_task is not None:
            self.connect_task.cancel()
        self.maybe_done()

    def _silent_closed(self, side: Side) -> None:
        if not side.silent:
            return
        side.silent = False  # log once
        now = time.monotonic_ns()
        self.log(
            "silent_closed",
            now,
            side=side.role,
            discarded=side.discarded,
            silent_s=(now - side.silent_since_ns) / 1e9,
        )
        if side.open and side.transport is not None:
            side.transport.close()
        side.open = False
        self.maybe_done()

    def maybe_done(self) -> None:
        """Close sockets whose work is over and write the `close` line once."""
        if self.state == "open":
            both_eof = self.up.eof_sent and self.down.eof_sent
            if both_eof or (self.server is None and self.client.eof and self.connect_task is None):
                self.state = "done"
        if self.state == "open":
            return
        sides = [s for s in (self.client, self.server) if s is not None]
        if self.state == "done":
            for s in sides:
                if s.open and not s.silent and s.transport is not None:
                    s.transport.close()
        if any(s.open for s in sides):
            return
        if self.serial in self.proxy.conns:
            del self.proxy.conns[self.serial]
            self.log(
                "close",
                time.monotonic_ns(),
                closed_by=self.closed_by,
                how=self.how,
                bytes_up=self.up.bytes_out,
                bytes_down=self.down.bytes_out,
            )


class FaultProxy:
    """Listens on loopback, forwards every connection to `upstream` through the profile."""

    def __init__(
        self,
        profile: NetworkProfile,
        *,
        seed: int,
        upstream: tuple[str, int],
        log: FaultLogWriter,
        t0_ns: int | None = None,
        sniff_ids: bool = True,
    ) -> None:
        self.profile, self.seed, self.upstream, self.log = profile, seed, upstream, log
        self.t0_ns = t0_ns if t0_ns is not None else time.monotonic_ns()  # re-set in start()
        self._t0_given = t0_ns is not None
        self.sniff_ids = sniff_ids
        self.timeline = (
            Timeline(profile, seed, self.t0_ns)
            if (profile.blackholes or profile.handover)
            else None
        )
        self.conns: dict[int, Conn] = {}
        self.serial = 0
        self.lateness = Lateness()
        self.loop: asyncio.AbstractEventLoop = asyncio.get_event_loop()
        self.wheel = ReleaseWheel(self.loop)
        self.server: asyncio.AbstractServer | None = None
        self._silent: set[Side] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._timers: list[Timer] = []
        self.listen: tuple[str, int] | None = None
        self.stopping = False

    def delay_line(self, direction: str, serial: int) -> DelayLine | None:
        link = getattr(self.profile, direction)
        if not link.shaped and not self.profile.blackholes:
            return None
        return DelayLine(self.profile, direction, self.seed, serial, self.timeline)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self.loop = asyncio.get_running_loop()
        self.wheel = ReleaseWheel(self.loop)
        self.server = await self.loop.create_server(
            lambda: Side(self, "client"), host, port, backlog=4096, reuse_address=True
        )
        sock = self.server.sockets[0].getsockname()
        self.listen = (sock[0], int(sock[1]))
        if not self._t0_given:  # the schedule starts when connections can arrive
            self.t0_ns = time.monotonic_ns()
            if self.timeline is not None:
                self.timeline = Timeline(self.profile, self.seed, self.t0_ns)
        self.log.write(
            "start",
            time.monotonic_ns(),
            t0_ns=self.t0_ns,
            seed=self.seed,
            profile=self.profile.to_dict(),
            listen=f"{self.listen[0]}:{self.listen[1]}",
            upstream=f"{self.upstream[0]}:{self.upstream[1]}",
        )
        self._tasks.append(self.loop.create_task(self._flush_every()))
        if self.timeline is not None:
            for kind in self.timeline.kinds:
                self._next_window(kind, self.t0_ns - 1)
        return self.listen

    # ------------------------------------------------------------------ connections
    def accepted(self, side: Side) -> None:
        now = time.monotonic_ns()
        self.serial += 1
        conn = Conn(self, self.serial, side, now)
        self.conns[conn.serial] = conn
        conn.log("accept", now)
        adm = admit(self.timeline, self.profile, now)
        if adm.action == "refuse":
            conn.log("refused", now, cause=adm.cause)
            conn.state, conn.closed_by, conn.how = "cut", "proxy", "rst"
            conn.up.kill()
            conn.down.kill()
            side.end("rst")
            return
        if adm.action == "hold":
            conn.log("held", now, cause=adm.cause, release_ns=adm.release_ns)
        conn.start(adm.release_ns)

    def watch_silent(self, side: Side) -> None:
        self._silent.add(side)
        if len(self._silent) == 1:
            self._tasks.append(self.loop.create_task(self._poll_silent()))

    async def _poll_silent(self) -> None:
        while self._silent:
            await asyncio.sleep(SILENT_POLL_S)
            for side in list(self._silent):
                if not side.silent:
                    self._silent.discard(side)
                elif side.peer_gone() and side.conn is not None:
                    side.conn._silent_closed(side)
                    self._silent.discard(side)

    # ------------------------------------------------------------------ timeline
    def _next_window(self, kind: str, after_ns: int) -> None:
        assert self.timeline is not None
        w = self.timeline.next_window(kind, after_ns)
        self._timers.append(Timer(self.loop, w.start_ns, lambda: self._window_start(w)))

    def _window_start(self, w: Window) -> None:
        now = time.monotonic_ns()
        ev = "blackhole_start" if w.kind == "blackhole" else "handover"
        self.log.write(
            ev, now, t_sched_ns=w.start_ns, until_ns=w.end_ns, window=w.index, open=len(self.conns)
        )
        if w.kind == "handover":
            h = self.profile.handover
            assert h is not None
            cut = Cut(-1, h.client, h.server)
            for conn in list(self.conns.values()):
                if conn.t_accept_ns < w.start_ns:
                    conn.cut("handover", cut, t_sched_ns=w.start_ns)
        self._timers.append(Timer(self.loop, w.end_ns, lambda: self._window_end(w)))
        self._next_window(w.kind, w.start_ns)

    def _window_end(self, w: Window) -> None:
        ev = "blackhole_end" if w.kind == "blackhole" else "handover_end"
        self.log.write(ev, time.monotonic_ns(), t_sched_ns=w.end_ns, window=w.index)

    # ------------------------------------------------------------------ running
    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            self.log.flush()

    async def stop(self) -> None:
        """Stop accepting, close every connection (FIN), log the counts, flush."""
        self.stopping = True
        if self.server is not None:
            self.server.close()
        for t in self._timers:
            t.cancel()
        self.wheel.cancel()
        for task in self._tasks:
            task.cancel()
        for conn in list(self.conns.values()):
            for side in (conn.client, conn.server):
                if side is not None and side.open and side.transport is not None:
                    side.transport.close()
        await asyncio.sleep(0)
        counts = dict(self.log.counts)
        self.log.write(
            "stop",
            time.monotonic_ns(),
            counts=counts,
            open=len(self.conns),
            lateness=self.lateness.summary(),
        )
        self.log.flush()
