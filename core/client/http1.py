"""HTTP/1.1 for the SSE client core (sans-I/O): a request's bytes out, a response head in.

An SSE stream is one request and one long response, so per stream the client writes one
request and parses one head; everything after the head (chunked / Content-Length / until
close framing, the events) is core.client.sse's. h11 did both here before: building its
event objects, validating and running its state machine cost ~70 µs per stream, a quarter
of the client's per-stream CPU. This module does just what the client needs, strictly:

- `request_bytes`: request line, ``Host`` first, the format's headers, ``User-Agent``,
  ``Content-Length`` for a body (or a POST), ``Connection: close`` when asked. Methods and
  header names must be tokens, targets and values free of control characters (ValueError).
- `HeadReader`: bytes in until the head's blank line; then ``(status, http_version,
  headers, rest)`` with header names lower-cased, values stripped of surrounding blanks and
  ``rest`` the first body bytes (after a 101, the upgraded protocol's). Interim heads
  (1xx but 101 Switching Protocols) are skipped. A status line that is not
  ``HTTP/d.d ddd …``, a header line without a token name and ``:``, an obsolete folded line,
  or a head over `MAX_HEAD` bytes raise ValueError, which the client turns into a drop.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from core.formats import HttpRequest

#: A response head longer than this is refused (h11's default limit was 16 KiB).
MAX_HEAD = 64 * 1024

_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_STATUS = re.compile(rb"HTTP/(\d\.\d) (\d{3})(?: [^\x00-\x08\x0a-\x1f\x7f]*)?")
_BLANK = re.compile(rb"\r?\n\r?\n")
_BAD_CHAR = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_BAD_TARGET = re.compile(rb"[\x00-\x20\x7f]")

Headers = list[tuple[bytes, bytes]]


def request_bytes(
    req: HttpRequest,
    authority: str,
    *,
    user_agent: str | None = None,
    close: bool = False,
) -> bytes:
    """An HttpRequest as HTTP/1.1 bytes (see the module docstring)."""
    method = req.method.encode("ascii")
    target = req.target.encode("ascii")
    if not _TOKEN.fullmatch(method) or not target or _BAD_TARGET.search(target):
        raise ValueError(f"bad request line: {req.method} {req.target!r}")
    headers: list[tuple[str, str]] = [("Host", authority), *req.headers]
    if user_agent:
        headers.append(("User-Agent", user_agent))
    if req.body or req.method == "POST":
        headers.append(("Content-Length", str(len(req.body))))
    if close:
        headers.append(("Connection", "close"))
    lines = [b"%s %s HTTP/1.1" % (method, target)]
    for name, value in headers:
        n, v = name.encode("ascii"), value.encode("latin-1")
        if not _TOKEN.fullmatch(n) or _BAD_VALUE.search(v):
            raise ValueError(f"bad header: {name!r}: {value!r}")
        lines.append(b"%s: %s" % (n, v))
    return b"\r\n".join(lines) + b"\r\n\r\n" + req.body


class HeadReader:
    """A response head, from the bytes of as many reads as it takes (sans-I/O)."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> tuple[int, str, Headers, bytes] | None:
        """(status, http version, headers, body bytes that followed) once the final head is
        complete, else None (give it the next read). ValueError if it is not HTTP/1.x."""
        buf = self._buf + data if self._buf else data
        while True:
            m = _BLANK.search(buf)
            if m is None:
                if len(buf) > MAX_HEAD:
                    raise ValueError(f"response head over {MAX_HEAD} bytes")
                self._buf = buf
                return None
            head, buf = buf[: m.start()], buf[m.end() :]
            status, version, headers = _parse(head)
            if status == 101 or not 100 <= status < 200:
                self._buf = b""
                return status, version, headers, buf
            # an interim response (100 Continue, 103 Early Hints): the final head follows


def _parse(head: bytes) -> tuple[int, str, Headers]:
    # one scan for control characters (bar the line breaks) instead of one per value
    if _BAD_CHAR.search(head):
        raise ValueError("control character in the response head")
    lines = head.split(b"\r\n") if b"\r\n" in head else head.split(b"\n")
    m = _STATUS.fullmatch(lines[0])
    if m is None:
        raise ValueError(f"bad status line {lines[0][:100]!r}")
    headers: Headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        # the usual name (letters, digits, dashes) is checked without a regex
        if not colon or not (name.replace(b"-", b"").isalnum() or _TOKEN.fullmatch(name)):
            if line[:1] in (b" ", b"\t"):
                raise ValueError("obsolete line folding in the response head")
            raise ValueError(f"bad header line {line[:100]!r}")
        if b"\r" in value or b"\n" in value:
            raise ValueError(f"bad line break in {name.decode()!r}")
        headers.append((name.lower(), value.strip(b" \t")))
    return int(m[2]), m[1].decode(), headers
