"""Independent test clients: `requests` + a hand-written SSE splitter, and `websocket-client`.

Deliberately not the project's decoders (core.sse, loadtests): these tests check the
servers against the wire format itself. The servers only use LF line ends.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import requests
import websocket


@dataclass
class SSEResult:
    status: int
    headers: dict[str, str]
    tokens: list[tuple[int, str]] = field(default_factory=list)
    payloads: list[dict[str, Any]] = field(default_factory=list)
    done: dict[str, Any] | None = None
    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    raw_start: bytes = b""
    #: The connection ended without a clean end of body (aborted / reset).
    broken: bool = False
    body_json: Any = None


def _parse_event(block: bytes, out: SSEResult) -> None:
    fields: dict[str, str] = {}
    for line in block.split(b"\n"):
        text = line.decode("utf-8")
        if text.startswith(":"):
            out.comments.append(text[1:].strip())
            continue
        name, _, value = text.partition(":")
        fields[name] = value[1:] if value.startswith(" ") else value
    if "retry" in fields:
        out.retry = int(fields["retry"])
    if "data" not in fields:
        return
    data = json.loads(fields["data"])
    if fields.get("event") == "done":
        out.done = data
        return
    assert int(fields["id"]) == data["i"], (fields, data)
    out.payloads.append(data)
    out.tokens.append((data["i"], data["d"]))


def sse_open(
    url: str,
    *,
    params: dict[str, Any] | None = None,
    json_body: Any = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    session: requests.Session | None = None,
    timeout: float = 20.0,
) -> requests.Response:
    """GET (or POST when json_body/data is given) `url`; the response, body not read yet."""
    http = session or requests
    method = "POST" if json_body is not None or data is not None else "GET"
    return http.request(
        method,
        url,
        params=params,
        json=json_body,
        data=data,
        headers=headers,
        stream=True,
        timeout=timeout,
    )


def sse_read(resp: requests.Response, *, stop_after: int | None = None) -> SSEResult:
    """Read an opened response's event stream (see sse_stream), then close it."""
    out = SSEResult(resp.status_code, dict(resp.headers))
    if resp.status_code != 200:
        out.body_json = resp.json()
        resp.close()
        return out
    buf = b""
    try:
        for chunk in resp.iter_content(chunk_size=None):
            if len(out.raw_start) < 64:
                out.raw_start += chunk[:64]
            buf += chunk
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                _parse_event(block, out)
                if stop_after is not None and len(out.tokens) >= stop_after:
                    resp.close()
                    return out
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError):
        out.broken = True
    finally:
        resp.close()
    return out


def sse_stream(url: str, *, stop_after: int | None = None, **kw: Any) -> SSEResult:
    """GET (or POST when json_body/data is given) `url` and read the event stream.

    stop_after: close the connection after that many tokens (a client-side abort).
    """
    return sse_read(sse_open(url, **kw), stop_after=stop_after)


@dataclass
class WSResult:
    tokens: list[tuple[int, str]] = field(default_factory=list)
    payloads: list[dict[str, Any]] = field(default_factory=list)
    control: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""
    #: The TCP connection ended without a close frame.
    broken: bool = False

    @property
    def done(self) -> dict[str, Any] | None:
        return next((m for m in self.control if m.get("type") == "done"), None)


def ws_connect(url: str, timeout: float = 10.0) -> websocket.WebSocket:
    return websocket.create_connection(url, timeout=timeout, enable_multithread=True)


def ws_close(ws: websocket.WebSocket) -> None:
    """Close handshake if still open, then always close the socket.

    (websocket-client answers a server's close frame but then considers itself
    disconnected, so `close()` alone would leave the TCP socket open.)
    """
    try:
        ws.close(timeout=2)
    finally:
        ws.shutdown()


def ws_read(
    ws: websocket.WebSocket,
    *,
    until_type: str | None = "done",
    stop_after: int | None = None,
    out: WSResult | None = None,
) -> WSResult:
    """Read frames until a control message of `until_type`, a close, or `stop_after` tokens."""
    out = out or WSResult()
    while True:
        try:
            opcode, data = ws.recv_data(control_frame=True)
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
            out.broken = True
            return out
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            if len(data) >= 2:
                out.close_code = struct.unpack("!H", data[:2])[0]
                out.close_reason = data[2:].decode("utf-8", "replace")
            elif not data:
                out.broken = out.close_code is None
            return out
        if opcode != websocket.ABNF.OPCODE_TEXT:
            continue
        msg = json.loads(data)
        if "type" in msg:
            out.control.append(msg)
            if until_type is not None and msg["type"] == until_type:
                return out
            continue
        out.payloads.append(msg)
        out.tokens.append((msg["i"], msg["d"]))
        if stop_after is not None and len(out.tokens) >= stop_after:
            return out
