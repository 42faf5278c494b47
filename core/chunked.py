"""Incremental HTTP/1.1 chunked transfer-coding decoder (sans-I/O, RFC 9112 §7.1).

`ChunkedDecoder.feed(data)` returns the body bytes that `data` completed — at once, never
waiting for a whole chunk: a chunk split across reads yields its bytes as they come, so a
streaming client sees every event the moment its last byte is read. Chunk extensions are
ignored, trailer fields are read and discarded. After the last chunk `done` is True and
`tail` holds any bytes that followed the message (a pipelined response; normally empty).
Malformed framing raises ValueError.

Written for the SSE load-test client, where h11's per-event state machine cost more than the
rest of the token path: the common read (one or a few whole chunks) is a handful of
`bytes.find` and slices.
"""

from __future__ import annotations

_SIZE, _DATA, _CRLF, _TRAILER, _DONE = range(5)
MAX_LINE = 4096  # longest chunk-size or trailer line accepted
_HEX = frozenset(b"0123456789abcdefABCDEF")


class ChunkedDecoder:
    __slots__ = ("_need", "_pending", "_state", "tail")

    def __init__(self) -> None:
        self._state = _SIZE
        self._need = 0  # bytes of chunk data still to come
        self._pending = b""  # an incomplete size / CRLF / trailer line
        self.tail = b""

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes) -> bytes:
        """The body bytes in `data` (possibly b""). Raises ValueError on bad framing."""
        if self._state == _DONE:
            self.tail += data
            return b""
        if self._pending:
            data = self._pending + data
            self._pending = b""
        out: list[bytes] = []
        pos, end = 0, len(data)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._need, end - pos)
                out.append(data[pos : pos + take])
                pos += take
                self._need -= take
                if not self._need:
                    self._state = _CRLF
            elif state == _CRLF:
                if end - pos < 2:
                    if data[pos] != 13:  # CR
                        raise ValueError("chunk data not followed by CRLF")
                    self._pending = data[pos:]
                    break
                if data[pos] != 13 or data[pos + 1] != 10:
                    raise ValueError("chunk data not followed by CRLF")
                pos += 2
                self._state = _SIZE
            else:  # _SIZE or _TRAILER: one CRLF-terminated line
                i = data.find(b"\r\n", pos)
                if i < 0:
                    if end - pos > MAX_LINE:
                        raise ValueError("chunk header line too long")
                    self._pending = data[pos:]
                    break
                line = data[pos:i]
                pos = i + 2
                if state == _TRAILER:
                    if not line:
                        self._state = _DONE
                        self.tail = data[pos:]
                        break
                    continue
                size = line.split(b";", 1)[0].rstrip(b" \t")
                if not size or len(size) > 16 or not _HEX.issuperset(size):
                    raise ValueError(f"bad chunk size line {line[:40]!r}")
                n = int(size, 16)
                if n:
                    self._need = n
                    self._state = _DATA
                else:
                    self._state = _TRAILER
        if not out:
            return b""
        return out[0] if len(out) == 1 else b"".join(out)
