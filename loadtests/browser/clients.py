"""The page clients of the browser arms, and how many lines of page code their recovery took.

Each browser arm (core.arms, ``Arm.client``) names one client here: the page script that
opens, reads and recovers its streams (``page/client_*.js``; the shared session logic
is ``page/harness.js``). The *recovery lines* are the claim C5's "hand-written" part
made countable: the lines of a client marked as existing only to recover a dropped stream —
a line ending in ``// recovery``, or every line between ``// recovery:begin`` and
``// recovery:end`` — not counting blank or comment-only lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PAGE_DIR = Path(__file__).with_name("page")
_BEGIN = re.compile(r"^\s*//\s*recovery:begin\b")
_END = re.compile(r"^\s*//\s*recovery:end\b")
_TRAILING = re.compile(r"//\s*recovery\s*$")


@dataclass(frozen=True)
class PageClient:
    name: str
    protocol: str  # "sse" | "ws"
    file: str  # under page/
    method: str  # the request that opens a stream
    resumes: bool  # does this client recover a dropped stream at all?
    api: str  # the browser API it uses
    uses: tuple[str, ...] = ()  # other page files it needs (the fetch clients' SSE parser)
    #: Does the page see the stream's framing? EventSource hands a page each event's data
    #: only (no ``id:`` / ``data:`` lines): its application bytes are not measured (None),
    #: not the data alone taken for everything.
    sees_framing: bool = True

    @property
    def path(self) -> Path:
        return PAGE_DIR / self.file


CLIENTS: dict[str, PageClient] = {
    c.name: c
    for c in (
        PageClient(
            "browser-eventsource",
            "sse",
            "client_eventsource.js",
            "GET",
            True,
            "EventSource (the browser reconnects: retry:, Last-Event-ID)",
            sees_framing=False,
        ),
        PageClient(
            "browser-fetch",
            "sse",
            "client_fetch.js",
            "POST",
            True,
            "fetch + ReadableStream + page SSE parser (resume by hand: Last-Event-ID)",
            ("sse_parser.js",),
        ),
        PageClient(
            "browser-fetch-noresume",
            "sse",
            "client_fetch.js",
            "POST",
            False,
            "fetch + ReadableStream + page SSE parser (no resume)",
            ("sse_parser.js",),
        ),
        PageClient(
            "browser-ws",
            "ws",
            "client_ws.js",
            "WebSocket",
            True,
            "WebSocket (reconnect + resume message by hand)",
        ),
    )
}


def _code(line: str) -> bool:
    s = line.strip()
    return bool(s) and not s.startswith("//")


def recovery_lines(source: str) -> int:
    """Lines of code marked as recovery (see the module docstring)."""
    n = 0
    inside = False
    for line in source.splitlines():
        if _BEGIN.match(line):
            if inside:
                raise ValueError("recovery:begin inside a recovery block")
            inside = True
        elif _END.match(line):
            if not inside:
                raise ValueError("recovery:end without recovery:begin")
            inside = False
        elif _code(line) and (inside or _TRAILING.search(line)):
            n += 1
    if inside:
        raise ValueError("recovery:begin without recovery:end")
    return n


def code_lines(source: str) -> int:
    return sum(1 for line in source.splitlines() if _code(line))


def client_code(name: str) -> dict[str, Any]:
    """What the manifest keeps of a client: its files, lines of code (with the files it
    uses, e.g. the SSE parser of the fetch clients), recovery lines (0 for a client that
    does not resume, whatever its shared file holds)."""
    c = CLIENTS[name]
    source = c.path.read_text()
    harness = (PAGE_DIR / "harness.js").read_text()
    used = {f: code_lines((PAGE_DIR / f).read_text()) for f in c.uses}
    return {
        "client": c.name,
        "api": c.api,
        "method": c.method,
        "file": f"loadtests/browser/page/{c.file}",
        "code_lines": code_lines(source) + sum(used.values()),
        "client_lines": code_lines(source),
        "uses": used,
        "recovery_lines": recovery_lines(source) if c.resumes else 0,
        "resumes": c.resumes,
        "sees_framing": c.sees_framing,
        "harness_lines": code_lines(harness),
        "count_rule": "non-blank, non-comment lines ending in `// recovery` or between "
        "`// recovery:begin` and `// recovery:end`",
    }
