"""The client core (sans-I/O): bytes in, neutral stream events out, for SSE and for WS.

- core.client.events: `Opened`, `Token`, `Done`, `Failed`, `Closed` (every event stamped
  with the time the read carrying it returned, passed in by the shell).
- core.client.sse: `SSEClient`, one HTTP/1.1 connection carrying SSE responses.
- core.client.ws: `WSClient`, one WebSocket connection carrying streams one after another.

The payload inside is a `core.formats` format's business. The shells that own sockets and
clocks are thin: loadtests.wire / sse_transport / ws_transport (gevent, under Locust) and
bench.aclient (asyncio: perf, the proxy probes, benchmarks). No other module parses the wire
(tests/core/test_wire_boundary.py checks it).

This package's __init__ imports nothing heavy: core.formats imports its events.
"""
