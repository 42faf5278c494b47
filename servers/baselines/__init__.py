"""Comparison servers for `ssevsws perf` (issue 7): what the project's servers are measured
against, in the same run, on the same core, with the same 60-byte token payload.

- ``raw``: a bare asyncio ``Protocol`` speaking just enough HTTP/1.1 to stream SSE-framed
  tokens (no chunked encoding, ``Connection: close``): the Python limit on this box.
- ``starlette``: sse-starlette's ``EventSourceResponse`` on uvicorn, the popular alternative.
- ``websockets-default``: the ``websockets`` library with its defaults (permessage-deflate
  offered and accepted, ping every 20 s): what a user would pick instead of aiohttp WS.
- ``aiohttp-sse`` / ``aiohttp-ws``: the bare framework, a minimal aiohttp handler with no
  stream bookkeeping; the reference for idle memory per connection.

Every kind follows the engine's timing rules (``servers.engine``): token i is due at
t0 + offsets[i]; an already-due token still goes through the event loop (``sleep(0)``,
pitfall 11), so "flood" means one yield per token everywhere. Every kind binds 127.0.0.1
unless told otherwise, answers ``GET /healthz`` and prints ``listening on ...`` when ready.

    python -m servers.baselines {raw,starlette,websockets-default,aiohttp-sse,aiohttp-ws} --port P
"""

KINDS = ("raw", "starlette", "websockets-default", "aiohttp-sse", "aiohttp-ws")
