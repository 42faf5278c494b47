"""Twin reference servers: aiohttp SSE, aiohttp WS, `websockets` WS — one synthetic model.

Run with `python -m servers {sse,ws,ws-websockets} --port P` (what `ssevsws serve` execs).
Imports only `core` (DESIGN §2). Module map:

- `engine`: the single emission loop (schedule, stamps, heartbeats, drop, cancel, waste)
- `sse_app`, `ws_aiohttp`, `ws_websockets`: thin transport shells around it
- `ws_session`: the WS message protocol shared by both WS servers
- `streams`: live stream handles and the recent-streams memory used for resume
- `stats`, `metrics`: hot-path counters and the lag sketch; Prometheus / JSON at scrape time
- `http_common`: aiohttp routes shared by the SSE and WS apps
- `config`, `run`, `__main__`: command line, start/stop, signal handling

HTTP routes (all kinds unless noted):
  GET /healthz, GET /metrics, GET /v1/stats[?reset=1]
  POST /v1/stats/reset, POST /v1/streams/{id}/cancel        (aiohttp kinds)
  GET|POST /v1/stream                                       (sse)
  GET /v1/ws (upgrade)                                      (ws, ws-websockets)
"""
