"""The plain HTTP endpoints' answers, sans-I/O, shared by the aiohttp and `websockets` servers.

  GET  /healthz                   200 {"status":"ok","kind":...,"pid":...}
  GET  /v1/stats                  lag percentiles (µs) and counts for the current window
  POST /v1/stats/reset            the same body, then a new window starts
  POST /v1/streams/{id}/cancel    with header X-Cancel-Secret: the secret the SSE stream's
                                  response carried; 200 {"cancelled":k}, 404 if no such
                                  stream (or another secret), 400 without the header

Resetting is a POST: a GET can be sent cross-site by any page (an image, a link) without
an Origin header, so a state change must not be one. A GET /v1/stats asking for a reset is
refused (400) rather than quietly read. Cancelling needs the stream's secret: stream ids
are chosen by clients and shared, so an id alone stopped unrelated clients' streams. A
WebSocket stream has no secret: it is cancelled on its own connection (the cancel message).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.schedule import ParamError, coerce_stream_id
from servers.access import Refusal
from servers.config import ServerState
from servers.limits import LimitExceeded
from servers.metrics import healthz_body, stats_body

JSON = "application/json"
#: Response header of an SSE stream, and request header of its cancel: the stream's secret.
CANCEL_SECRET_HEADER = "X-Cancel-Secret"
STATS_RESET_PATH = "/v1/stats/reset"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()


def json_answer(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    body = json.dumps(obj, separators=(",", ":")).encode()
    return Answer(status, body, JSON, tuple((headers or {}).items()))


def param_error(exc: ParamError) -> Answer:
    return json_answer(exc.as_dict(), 400)


def refused(refusal: Refusal) -> Answer:
    return json_answer(refusal.body(), refusal.status, refusal.headers())


def limit_refused(exc: LimitExceeded) -> Answer:
    """400 when the request can never be served as it is, else 503 "try again"."""
    if exc.permanent:
        return json_answer(exc.as_dict(), 400)
    return json_answer(exc.as_dict(), 503, {"Retry-After": "1"})


def healthz(state: ServerState) -> Answer:
    return Answer(200, healthz_body(state))


def stats(state: ServerState, connections: int, *, reset_asked: bool) -> Answer:
    """GET /v1/stats (reads only)."""
    if reset_asked:
        error = f"GET /v1/stats only reads: reset with POST {STATS_RESET_PATH}"
        return json_answer({"error": error, "field": "reset"}, 400)
    return Answer(200, stats_body(state, connections))


def stats_reset(state: ServerState, connections: int) -> Answer:
    """POST /v1/stats/reset: this window's figures, then a new window."""
    return Answer(200, stats_body(state, connections, reset=True))


def cancel(state: ServerState, raw_id: str, secret: str | None) -> Answer:
    try:
        stream = coerce_stream_id(raw_id)
    except ParamError as exc:
        return param_error(exc)
    if not secret:
        return json_answer(
            {
                "error": f"{CANCEL_SECRET_HEADER} header required: the value of the stream "
                "response's header of that name",
                "field": CANCEL_SECRET_HEADER,
            },
            400,
        )
    k = state.registry.cancel(stream, secret)
    if not k:
        error = "no active stream with this id and secret"
        return json_answer({"error": error, "field": "stream"}, 404)
    return json_answer({"cancelled": k})
