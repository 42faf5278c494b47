"""Item 4: "tokens wasted" means the same on every server, whoever notices the stop.

Definition (servers.engine): the tokens due by the moment a stream stopped that the
server never finished writing. Known truth here: a stream of 100,000 tokens all due at
once (gap 0) is stopped while its client does not read; by then every token is due, so
`tokens_sent + tokens_wasted == 100,000` on every server, whether the client closes the
connection (SSE: the pending write fails; WS: the read loop sees the close) or cancels
(SSE: the cancel endpoint; WS: the cancel message). Before, a WS close or any cancel
counted only what fell due after the stop (ten never-reading clients: 641,291 wasted on
SSE, 0 on WS).
"""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests

from tests.servers.conftest import ServerPool
from tests.servers.rawclients import HUGE, start_never_reading, wait_blocked, ws_frame

KINDS = ("sse", "ws", "ws-websockets")


def _secret(sock: socket.socket) -> str:
    """Read the SSE response head (and no more than its first read): the cancel secret."""
    sock.settimeout(5)
    head = sock.recv(1024).split(b"\r\n\r\n", 1)[0].decode("latin-1")
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "x-cancel-secret":
            return value.strip()
    raise AssertionError(f"no X-Cancel-Secret in {head!r}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("how", ["close", "cancel"])
def test_never_reading_client_waste_is_the_unsent_due_tokens(
    servers: ServerPool, kind: str, how: str
) -> None:
    srv = servers.get(kind)
    before = srv.wait_idle()
    stream = f"waste-{how}"
    sock = start_never_reading(srv, {**HUGE, "stream": stream})
    try:
        secret = _secret(sock) if kind == "sse" and how == "cancel" else ""
        wait_blocked(srv, before["ssevsws_tokens_sent_total"])
        if how == "close":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        elif kind == "sse":
            r = requests.post(
                f"{srv.http}/v1/streams/{stream}/cancel",
                headers={"X-Cancel-Secret": secret},
                timeout=5,
            )
            assert r.json() == {"cancelled": 1}
        else:
            sock.sendall(ws_frame(json.dumps({"type": "cancel", "stream": stream}).encode()))
        if how == "close":
            sock.close()  # with SO_LINGER 0: a reset, unread data and all
        after = srv.wait_idle(timeout=10)
    finally:
        sock.close()
    sent = after["ssevsws_tokens_sent_total"] - before["ssevsws_tokens_sent_total"]
    wasted = after["ssevsws_tokens_wasted_total"] - before["ssevsws_tokens_wasted_total"]
    assert sent + wasted == HUGE["tokens"], (kind, how, sent, wasted)
    assert wasted > 20_000  # the pile-up is counted (socket buffers held the rest)
    outcome = "disconnected" if how == "close" else "cancelled"
    key = f"ssevsws_streams_{outcome}_total"
    assert after[key] - before[key] == 1


def test_reading_client_that_cancels_wastes_at_most_one_token(servers: ServerPool) -> None:
    """The paced case on all servers: a client reading a 20 ms stream cancels after 5
    tokens; at most the token in flight is due and unsent."""
    for kind in KINDS:
        srv = servers.get(kind)
        before = srv.wait_idle()
        params = {"seed": 2, "tokens": 500, "ttft_ms": 0, "gap_ms": 20, "stream": "paced"}
        if kind == "sse":
            with requests.get(srv.http + "/v1/stream", params=params, stream=True) as resp:
                seen = 0
                for line in resp.iter_lines():
                    seen += line.startswith(b"id:")
                    if seen == 5:
                        secret = {"X-Cancel-Secret": resp.headers["X-Cancel-Secret"]}
                        requests.post(
                            srv.http + "/v1/streams/paced/cancel", headers=secret, timeout=5
                        )
                        break
        else:
            from tests.servers.clients import ws_close, ws_connect, ws_read

            ws = ws_connect(srv.ws_url)
            try:
                ws.send(json.dumps({"type": "start", **params}))
                ws_read(ws, stop_after=5)
                ws.send(json.dumps({"type": "cancel", "stream": "paced"}))
                ws_read(ws, until_type="cancelled")
            finally:
                ws_close(ws)
        after = srv.wait_idle()
        wasted = after["ssevsws_tokens_wasted_total"] - before["ssevsws_tokens_wasted_total"]
        assert 0 <= wasted <= 1, (kind, wasted)
        time.sleep(0.05)
