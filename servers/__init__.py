"""Twin reference servers: aiohttp SSE, aiohttp WS, `websockets` WS — one synthetic model.

Run with `python -m servers {sse,ws,ws-websockets} --port P` (what `ssevsws serve` execs).
Imports only `core`. Module map:

- `engine`: the single emission loop (schedule, stamps, heartbeats, drop, cancel, waste)
- `sse_app`, `ws_aiohttp`, `ws_websockets`: thin transport shells around it
- `ws_session`: the WS message protocol shared by both WS servers
- `streams`: live stream handles and the recent-streams memory used for resume
- `limits`: admission of a stream against the server's limits, before its plan is built
- `guard`: per-connection header / idle / slow-consumer timeouts
- `access`: Host and Origin checks, optional bearer token (sans-I/O)
- `endpoints`: the plain HTTP endpoints' answers (sans-I/O), for both HTTP stacks
- `stats`, `metrics`: hot-path counters and the lag sketch; Prometheus / JSON at scrape time
- `http_common`: the aiohttp app, its guarded protocol and middleware, shared by SSE and WS
- `config`, `run`, `__main__`: command line, start/stop, signal handling

HTTP routes (all kinds unless noted):
  GET /healthz, GET /metrics, GET /v1/stats (reads only)
  POST /v1/stats/reset, POST /v1/streams/{id}/cancel (with X-Cancel-Secret)
  GET|POST /v1/stream                                       (sse)
  GET /v1/ws (upgrade)                                      (ws, ws-websockets)
"""
