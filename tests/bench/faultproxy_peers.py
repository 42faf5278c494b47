"""A real server and client for measuring the fault proxy on loopback.

The server reads one command line, then acts:

- ``echo``: every 16-byte frame (seq, t_client_send) is answered with 32 bytes (seq,
  t_client_send, t_server_recv, t_server_send) — one-way delays in both directions;
- ``tick PERIOD_MS COUNT SIZE``: sends COUNT frames of SIZE bytes (≥ 16: seq, t_send,
  padding) every PERIOD_MS;
- ``bulk NBYTES SEED``: sends NBYTES of seeded random bytes at once, then FIN;
- ``sink NBYTES``: reads NBYTES (hashing them), then closes.

Both ends timestamp every callback with time.monotonic_ns() (one clock for the host) and
record how the connection ended (EOF = FIN, ConnectionResetError = RST).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import struct
import time
from dataclasses import dataclass, field
from typing import Any

ECHO_REQ = struct.Struct("!QQ")
ECHO_REP = struct.Struct("!QQQQ")
TICK = struct.Struct("!QQ")


def seeded_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


@dataclass
class Ending:
    """How and when one end saw its connection end."""

    t_eof_ns: int | None = None
    t_lost_ns: int | None = None
    reset: bool = False


@dataclass
class ServerConn:
    command: str = ""
    t_made_ns: int = 0
    received: int = 0
    sha: Any = field(default_factory=hashlib.sha256)
    t_first_ns: int | None = None
    t_last_ns: int | None = None
    end: Ending = field(default_factory=Ending)
    transport: Any = None


class StampServer(asyncio.Protocol):
    conns: list[ServerConn]

    def __init__(self, conns: list[ServerConn]) -> None:
        self.conns = conns
        self.c = ServerConn(t_made_ns=time.monotonic_ns())
        self.head = b""
        self.buf = b""
        self.sink_left = 0
        self.tick_task: asyncio.Task[None] | None = None

    def connection_made(self, transport: Any) -> None:
        self.c.transport = transport
        self.conns.append(self.c)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        if not self.c.command:
            self.head += data
            line, sep, rest = self.head.partition(b"\n")
            if not sep:
                return
            self.c.command = line.decode()
            self._start(self.c.command.split())
            data = rest
            if not data:
                return
        if self.c.command == "echo":
            self.buf += data
            while len(self.buf) >= ECHO_REQ.size:
                seq, t_sent = ECHO_REQ.unpack_from(self.buf)
                self.buf = self.buf[ECHO_REQ.size :]
                self.c.transport.write(ECHO_REP.pack(seq, t_sent, now, time.monotonic_ns()))
            return
        self.c.received += len(data)
        self.c.sha.update(data)
        self.c.t_first_ns = self.c.t_first_ns or now
        self.c.t_last_ns = now
        if self.sink_left and self.c.received >= self.sink_left:
            self.c.transport.close()

    def _start(self, cmd: list[str]) -> None:
        if cmd[0] == "tick":
            period, count, size = float(cmd[1]), int(cmd[2]), int(cmd[3])
            self.tick_task = asyncio.get_running_loop().create_task(self._tick(period, count, size))
        elif cmd[0] == "bulk":
            self.c.transport.write(seeded_bytes(int(cmd[1]), int(cmd[2])))
            self.c.transport.write_eof()
        elif cmd[0] == "sink":
            self.sink_left = int(cmd[1])

    async def _tick(self, period_ms: float, count: int, size: int) -> None:
        t_next = time.monotonic_ns()
        pad = b"\0" * (size - TICK.size)
        for seq in range(count):
            if self.c.transport.is_closing():
                return
            self.c.transport.write(TICK.pack(seq, time.monotonic_ns()) + pad)
            t_next += int(period_ms * 1e6)
            await asyncio.sleep(max(0.0, (t_next - time.monotonic_ns()) / 1e9))

    def eof_received(self) -> bool:
        self.c.end.t_eof_ns = time.monotonic_ns()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.c.end.t_lost_ns = time.monotonic_ns()
        self.c.end.reset = isinstance(exc, ConnectionResetError)
        if self.tick_task is not None:
            self.tick_task.cancel()


class Client(asyncio.Protocol):
    """Records every chunk with its arrival time, and how the connection ended."""

    def __init__(self) -> None:
        self.chunks: list[tuple[int, bytes]] = []
        self.end = Ending()
        self.transport: Any = None
        self.closed = asyncio.get_event_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.chunks.append((time.monotonic_ns(), data))

    def eof_received(self) -> bool:
        self.end.t_eof_ns = time.monotonic_ns()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.end.t_lost_ns = time.monotonic_ns()
        self.end.reset = isinstance(exc, ConnectionResetError)
        if not self.closed.done():
            self.closed.set_result(None)

    @property
    def data(self) -> bytes:
        return b"".join(d for _, d in self.chunks)

    def frames(self, size: int) -> list[tuple[int, bytes]]:
        """(arrival of its last byte, frame) for each whole `size`-byte frame received."""
        (
            out,
            buf,
        ) = [], b""
        for t, d in self.chunks:
            buf += d
            while len(buf) >= size:
                out.append((t, buf[:size]))
                buf = buf[size:]
        return out


async def serve(conns: list[ServerConn]) -> tuple[asyncio.AbstractServer, int]:
    server = await asyncio.get_running_loop().create_server(
        lambda: StampServer(conns), "127.0.0.1", 0
    )
    return server, int(server.sockets[0].getsockname()[1])


async def connect(port: int, command: str) -> Client:
    _, client = await asyncio.get_running_loop().create_connection(Client, "127.0.0.1", port)
    client.transport.write(command.encode() + b"\n")
    return client
