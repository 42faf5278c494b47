"""No module outside the client core parses SSE or WS bytes.

The client core (core/client) and what it is built from (core/formats, core/sse.py,
core/chunked.py, core/wsmsg.py, core/schedule.py) are the only code that reads the wire on
the client side. Everywhere else (loadtests, bench, benchmarks, analysis, servers, the rest
of core) an AST scan refuses: an import of an HTTP / WS client parser (h11, websockets'
client protocols, aiohttp's client), of a decoder (SSEDecoder, ChunkedDecoder,
parse_token_payload, parse_server_message, ClientProtocol), a call of an aiohttp streaming
reader (ws_connect, iter_any), and SSE wire literals (``b"data:"``, ``b"id: "``, ``b"\\n\\n"`` …)
in non-test code. Servers encode; they may import the servers' side of those libraries.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("core", "servers", "loadtests", "bench", "analysis", "benchmarks")
ALLOWED = (
    "core/client/",
    "core/formats/",
    "core/sse.py",
    "core/chunked.py",
    "core/wsmsg.py",
    "core/schedule.py",
)
#: Deliberate exceptions, with why.
EXEMPT_LITERALS = {
    # the bare-asyncio limit server writes its events inline: a function call per token
    # would make the "raw limit" the perf ratios compare against slower than it is
    "servers/baselines/raw.py",
}
#: Modules that use a client library for something that is not the measured wire.
EXEMPT_CLIENTS = {
    # the DevTools connection to Chromium (JSON commands: open a context, a page, close),
    # not a stream the harness measures — the pages' own streams are read by the browser
    "loadtests/browser/chromium.py",
}
MODULES = (
    "h11",
    "websockets.client",
    "websockets.sync",
    "websockets.asyncio.client",
    "core.chunked",
)
NAMES = {
    "SSEDecoder",
    "ChunkedDecoder",
    "parse_token_payload",
    "parse_server_message",
    "ClientProtocol",
    "ClientSession",
    "ws_connect",
    "iter_any",
}
WIRE = (b"data:", b"id:", b"event:", b"retry:", b"\n\n")


def violations(source: str) -> list[str]:
    """What in `source` reads the wire (empty: nothing)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(MODULES):
                    found.append(f"{line}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if mod.startswith(MODULES):
                found.append(f"{line}: from {mod} import")
            found += [f"{line}: import {a.name}" for a in node.names if a.name in NAMES]
        elif isinstance(node, ast.Attribute) and node.attr in NAMES:
            found.append(f"{line}: .{node.attr}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, bytes)
            and any(mark in node.value for mark in WIRE)
        ):
            found.append(f"{line}: wire literal {node.value[:24]!r}")
    return found


def test_only_the_client_core_parses_the_wire() -> None:
    bad = {}
    for room in ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(ALLOWED):
                continue
            found = violations(path.read_text())
            if rel in EXEMPT_LITERALS:
                found = [f for f in found if "wire literal" not in f]
            if rel in EXEMPT_CLIENTS:
                found = [f for f in found if "wire literal" in f]
            if found:
                bad[rel] = found
    assert bad == {}, "parse the wire through core.client (bench.aclient / loadtests shells)"


def test_the_scan_catches_each_kind_of_parsing() -> None:
    assert violations("import h11") and violations("from websockets.sync.client import connect")
    assert violations("from core.sse import SSEDecoder")
    assert violations("import core.schedule as s\ns.parse_token_payload(x)")
    assert violations("async def f(s):\n    await s.ws_connect(u)")
    assert violations('n = buf.count(b"id: ")') and violations('if line == b"\\n\\n": pass')
    assert not violations('from core.client.sse import SSEClient\nx = b"\\r\\n\\r\\n"')
