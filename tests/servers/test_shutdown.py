"""SIGTERM with streams in flight (and a client that never answers the close): exit 0, promptly."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.servers.clients import sse_stream, ws_close, ws_connect
from tests.servers.conftest import start_server, stop_server

SLOW = {"tokens": 1000, "ttft_ms": 0, "gap_ms": 50}


@pytest.mark.parametrize("kind", ["sse", "ws", "ws-websockets"])
def test_sigterm_with_active_streams(kind: str) -> None:
    srv = start_server(kind)
    sockets = []
    try:
        if kind == "sse":
            for i in range(3):
                threading.Thread(
                    target=sse_stream,
                    args=(srv.http + "/v1/stream",),
                    kwargs={"params": {**SLOW, "stream": f"down-{i}"}},
                    daemon=True,
                ).start()
        else:
            for i in range(3):
                ws = ws_connect(srv.ws_url)
                ws.send(json.dumps({"type": "start", **SLOW, "stream": f"down-{i}"}))
                sockets.append(ws)  # never read: the close handshake is never answered
        deadline = time.monotonic() + 5
        while srv.metrics()["ssevsws_streams_active"] < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.metrics()["ssevsws_streams_active"] == 3
        t = time.monotonic()
        assert stop_server(srv) == 0
        assert time.monotonic() - t < 8
        assert "Traceback" not in "".join(srv.output)
    finally:
        stop_server(srv)
        for ws in sockets:
            ws_close(ws)
