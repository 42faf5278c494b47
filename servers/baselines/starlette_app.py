"""sse-starlette's EventSourceResponse on uvicorn: the popular alternative for SSE in Python.

Written the way its documentation shows (an async generator of dicts); the only deviations
are the project's: LF separators (sse-starlette defaults to CRLF, pitfall 15 — the bytes
on the wire then match the other servers'), the same payload and schedule, and pings at
the configured heartbeat (sse-starlette's own `ping=`).
"""

from __future__ import annotations

import json
import time

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.schedule import ParamError, StreamPlan, parse_params
from servers.baselines.common import events


def make_app(heartbeat_s: float) -> Starlette:
    async def stream(request: Request):
        t0 = time.monotonic_ns()
        try:
            plan = StreamPlan.build(parse_params(dict(request.query_params)))
        except ParamError as exc:
            return JSONResponse(exc.as_dict(), status_code=400)

        async def gen():
            async for seq, payload in events(plan, t0):
                yield {"id": str(seq), "data": payload.decode()}
            yield {"event": "done", "data": json.dumps(plan.done(), separators=(",", ":"))}

        return EventSourceResponse(gen(), ping=heartbeat_s or None, sep="\n")

    async def healthz(request: Request):
        return JSONResponse({"status": "ok", "kind": "starlette"})

    return Starlette(routes=[Route("/healthz", healthz), Route("/v1/stream", stream)])
