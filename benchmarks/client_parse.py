"""Client-core parse cost per token (not a test): recorded native streams fed to the client
core (core.client) with no sockets, so only parsing is timed.

Two read patterns: one read per token (a paced stream: each token arrives alone) and 64
tokens per read (a flood). SSE: chunked HTTP/1.1 body → SSE events → native tokens. WS:
unmasked text frames → native tokens. Prints the fastest and the median of several runs,
µs of this process's CPU time per token (CPU time, not wall time: a busy machine
slows the wall clock; the fastest run is the one least disturbed).

    python benchmarks/client_parse.py [--tokens 20000] [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from websockets.frames import Frame, Opcode  # noqa: E402 - after the path fix-up
from websockets.server import ServerProtocol  # noqa: E402

from core.client.sse import SSEClient  # noqa: E402
from core.client.ws import WSClient, ws_uri  # noqa: E402
from core.formats import get_format  # noqa: E402
from core.schedule import StreamParams, StreamPlan  # noqa: E402

NATIVE = get_format("native")
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def recorded(n: int) -> tuple[StreamParams, list[bytes], list[bytes]]:
    """(params, SSE chunks, WS frames): one element per token, as the servers send them."""
    params = StreamParams(seed=1, tokens=n, ttft_ms=0, gap_ms=0, stream=7)
    plan = StreamPlan.build(params)
    sse = NATIVE.sse_writer(plan, retry_ms=3000)
    ws = NATIVE.ws_writer(plan)
    chunks, frames = [], []
    for seq in range(n):
        event = sse.token(seq, 1_000_000_000 + seq, plan.ids[seq])
        chunks.append(b"%x\r\n%s\r\n" % (len(event), event))
        payload = ws.token(seq, 1_000_000_000 + seq, plan.ids[seq])
        frames.append(Frame(Opcode.TEXT, payload).serialize(mask=False))
    return params, chunks, frames


def _reads(pieces: list[bytes], per_read: int) -> list[bytes]:
    return [b"".join(pieces[i : i + per_read]) for i in range(0, len(pieces), per_read)]


def time_sse(params: StreamParams, reads: list[bytes], n: int) -> float:
    client = SSEClient(NATIVE, "127.0.0.1:1")
    client.request(params)
    out: list = []
    client.feed(0, HEAD, out)
    t0 = time.process_time_ns()
    for i, data in enumerate(reads):
        client.feed(i, data, out)
        out.clear()
    return (time.process_time_ns() - t0) / n / 1000


def time_ws(params: StreamParams, reads: list[bytes], n: int) -> float:
    client = WSClient(NATIVE, ws_uri("127.0.0.1", 1, "/v1/ws"))
    server = ServerProtocol()
    server.receive_data(client.handshake())
    [request] = server.events_received()
    server.send_response(server.accept(request))
    client.feed_handshake(0, b"".join(server.data_to_send()))
    client.start(params)
    out: list = []
    t0 = time.process_time_ns()
    for i, data in enumerate(reads):
        client.feed(i, data, out)
        out.clear()
    return (time.process_time_ns() - t0) / n / 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args(argv)
    params, chunks, frames = recorded(a.tokens)
    print(f"client core parse cost, µs per token (min / median of {a.runs} runs of {a.tokens:,})")
    for per_read in (1, 64):
        sse_reads, ws_reads = _reads(chunks, per_read), _reads(frames, per_read)
        sse = [time_sse(params, sse_reads, a.tokens) for _ in range(a.runs)]
        ws = [time_ws(params, ws_reads, a.tokens) for _ in range(a.runs)]
        med = statistics.median
        print(
            f"  {per_read:>3} token(s) per read:  SSE {min(sse):6.3f} / {med(sse):6.3f}"
            f"   WS {min(ws):6.3f} / {med(ws):6.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
