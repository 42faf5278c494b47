"""A TCP forwarder whose first connections go silent: ``python silencer.py HOST:PORT N K``.

Listens on a free loopback port and announces it ("listening on http://127.0.0.1:P").
Every connection is forwarded to HOST:PORT unchanged, except that the first K accepted
ones go *silent* once N bytes have gone down (server → client): from then on nothing is
forwarded either way and nothing is closed — what a phone in a tunnel looks like to both
ends. Bytes that still arrive are read and dropped; a silent connection's sockets are
closed only when this process exits (SIGTERM), so neither end learns anything from it.
"""

from __future__ import annotations

import asyncio
import signal
import sys


class Link:
    def __init__(self, freeze_after: int | None) -> None:
        self.freeze_after = freeze_after  # None: never silent
        self.down = 0
        self.silent = False


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: Link, down: bool
) -> None:
    try:
        while data := await reader.read(65536):
            if link.silent:
                continue
            if down and link.freeze_after is not None:
                room = link.freeze_after - link.down
                if len(data) >= room:
                    data, link.silent = data[:room], True
                link.down += len(data)
            if data:
                writer.write(data)
                await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        if not link.silent:
            writer.close()


async def main(upstream: str, freeze_after: int, freeze_conns: int) -> None:
    host, _, port = upstream.rpartition(":")
    accepted = 0

    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        link = Link(freeze_after if accepted <= freeze_conns else None)
        try:
            ur, uw = await asyncio.open_connection(host, int(port))
        except OSError:
            cw.close()
            return
        await asyncio.gather(_pipe(cr, uw, link, False), _pipe(ur, cw, link, True))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"listening on http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
