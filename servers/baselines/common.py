"""The emission loop the baselines share: the engine's timing rules without its bookkeeping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from core.schedule import StreamPlan, stream_id_json, token_payload

_MIN_SLEEP_S = 0.001


async def emit(
    plan: StreamPlan,
    t0: int,
    send: Callable[[bytes], Awaitable[object]],
    frame: Callable[[int, bytes], bytes] | None = None,
    *,
    heartbeat: bytes | None = None,
    heartbeat_s: float = 0.0,
) -> int:
    """Send every token of `plan` at t0 + offset (one loop pass per token); tokens sent.

    `heartbeat` (an SSE comment) is written every `heartbeat_s` while waiting for a token.
    Exceptions from `send` (client gone) propagate to the caller.
    """
    ids, offs, n = plan.ids, plan.offsets, plan.n
    sj = stream_id_json(plan.params.stream)
    mono = time.monotonic_ns
    sleep = asyncio.sleep
    hb_ns = int(heartbeat_s * 1e9) if heartbeat is not None else 0
    hb_next = max(t0, mono()) + hb_ns
    seq = 0
    slept = False
    while seq < n:
        due = t0 + offs[seq]
        now = mono()
        if hb_ns and hb_next <= due:
            if now < hb_next:
                await sleep(max((hb_next - now) / 1e9, _MIN_SLEEP_S))
                continue
            await send(heartbeat)  # type: ignore[arg-type]
            hb_next += hb_ns
            continue
        if now < due:
            await sleep(max((due - now) / 1e9, _MIN_SLEEP_S))
            slept = True
            continue
        if not slept:
            await sleep(0)  # one yield per token, as the engine does (pitfall 11)
        slept = False
        payload = token_payload(sj, seq, mono(), ids[seq])
        await send(payload if frame is None else frame(seq, payload))
        seq += 1
    return seq


async def events(plan: StreamPlan, t0: int) -> AsyncIterator[tuple[int, bytes]]:
    """The same schedule as an async generator of (seq, payload) (for sse-starlette)."""
    ids, offs, n = plan.ids, plan.offsets, plan.n
    sj = stream_id_json(plan.params.stream)
    mono = time.monotonic_ns
    sleep = asyncio.sleep
    seq = 0
    slept = False
    while seq < n:
        due = t0 + offs[seq]
        now = mono()
        if now < due:
            await sleep(max((due - now) / 1e9, _MIN_SLEEP_S))
            slept = True
            continue
        if not slept:
            await sleep(0)
        slept = False
        yield seq, token_payload(sj, seq, mono(), ids[seq])
        seq += 1


def listening_line(kind: str, host: str, port: int, **facts: object) -> str:
    extra = ", ".join(f"{k}={v}" for k, v in facts.items())
    return f"listening on http://{host}:{port} (baseline={kind}{', ' + extra if extra else ''})"
