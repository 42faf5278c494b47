"""A plain TCP forwarder for the phase-hook tests: ``python forwarder.py HOST:PORT``.

Listens on a free loopback port, announces it ("listening on http://127.0.0.1:P"), copies
bytes both ways to HOST:PORT unchanged, and on SIGTERM prints how many connections and
bytes it forwarded (one JSON line) before exiting.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

COUNTS = {"connections": 0, "bytes_up": 0, "bytes_down": 0}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: str) -> None:
    try:
        while data := await reader.read(65536):
            COUNTS[key] += len(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main(upstream: str) -> None:
    host, _, port = upstream.rpartition(":")

    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        COUNTS["connections"] += 1
        try:
            ur, uw = await asyncio.open_connection(host, int(port))
        except OSError:
            cw.close()
            return
        await asyncio.gather(_pipe(cr, uw, "bytes_up"), _pipe(ur, cw, "bytes_down"))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"listening on http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()
    print(json.dumps(COUNTS), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
