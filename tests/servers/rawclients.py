"""Raw-socket clients for misbehaving peers: never reading, never finishing a request head,
hand-made WebSocket frames; and waits on a server's /metrics."""

from __future__ import annotations

import json
import socket
import struct
import time

from tests.servers.conftest import Server

#: A stream far bigger than any socket buffer, all due at once: the server blocks on it.
HUGE = {"seed": 1, "tokens": 100_000, "ttft_ms": 0, "gap_ms": 0}


def raw_connect(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:  # small window: the server's writes block sooner
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", port))
    return sock


def closed_by_server(sock: socket.socket, within_s: float) -> float:
    """Seconds until the server closed `sock` (EOF or reset), reading and discarding."""
    t0 = time.monotonic()
    sock.settimeout(0.05)
    while time.monotonic() - t0 < within_s:
        try:
            if not sock.recv(1 << 16):
                return time.monotonic() - t0
        except TimeoutError:
            continue
        except ConnectionError:
            return time.monotonic() - t0
    raise AssertionError(f"still open after {within_s} s")


def ws_handshake(path: str = "/v1/ws", extra: str = "") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


def ws_frame(payload: bytes, opcode: int = 0x1, fin: bool = True) -> bytes:
    """A masked client frame (RFC 6455 §5.2) with a zero mask: the payload as given."""
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        head = bytes([first, 0x80 | n])
    elif n < 1 << 16:
        head = bytes([first, 0x80 | 126]) + struct.pack("!H", n)
    else:
        head = bytes([first, 0x80 | 127]) + struct.pack("!Q", n)
    return head + b"\0\0\0\0" + payload


def start_never_reading(srv: Server, params: dict[str, object]) -> socket.socket:
    """Open a stream of `params` whose client never reads a byte of the answer."""
    sock = raw_connect(srv.port, rcvbuf=4096)
    if srv.kind == "sse":
        query = "&".join(f"{k}={v}" for k, v in params.items())
        sock.sendall(f"GET /v1/stream?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    else:
        start = json.dumps({"type": "start", **params}).encode()
        sock.sendall(ws_handshake() + ws_frame(start))
    return sock


def wait_blocked(srv: Server, since: float, timeout: float = 10.0) -> float:
    """Wait until the server's tokens_sent has moved past `since` and stopped moving (its
    writes wait on the peer); returns it."""
    deadline = time.monotonic() + timeout
    last = -1.0
    while time.monotonic() < deadline:
        now = srv.metrics()["ssevsws_tokens_sent_total"]
        if now == last and now > since:
            return now
        last = now
        time.sleep(0.15)
    raise AssertionError("the server never blocked")


def wait_counter(srv: Server, key: str, above: float, within_s: float) -> float:
    """Seconds until the /metrics sample `key` exceeds `above` (AssertionError if never)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < within_s:
        if srv.metrics().get(key, 0.0) > above:
            return time.monotonic() - t0
        time.sleep(0.1)
    raise AssertionError(f"{key} still {above} after {within_s} s")
