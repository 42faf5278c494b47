"""The one emission loop every server kind uses: tokens at their scheduled times, stamped.

A transport plugs in through a `Sink` (SSE response, aiohttp WS, `websockets` WS); the
schedule, stamping, heartbeats, drop simulation, cancel/disconnect handling and counters
live here only.

Timing rules:
- token i is due at t0 + offsets[i] (absolute, pitfall 12); its "t" stamp is taken with
  `time.monotonic_ns()` right before the write, and `stamp − due` is the server lag;
- every token goes through the event loop (pitfall 11): we sleep until it is due, or, if it
  already is (gap 0, resume catch-up, overload), `await asyncio.sleep(0)` before writing;
- lag is not recorded for the catch-up tokens of a resumed stream (due before it resumed);
- a token never leaves early. uvloop timers have 1 ms resolution against a cached clock
  and fire up to ~0.7 ms early; after a wake-up before the due time we sleep again, at
  least 1 ms (a 0 s sleep would spin), so on an idle loop lag is in [0, ~1.5 ms].

Tokens wasted (``ssevsws_tokens_wasted_total``, claim C6), one definition for every
server kind and every way a stream stops early (cancel, client gone, slow consumer cut):
the tokens the model had generated for the stream by the moment its emission stopped —
their due time had passed — that the server never finished writing. Due-but-unsent
tokens pile up when the client stops reading (the writes wait on a full buffer) or when
the server learns of a departure late (SSE: on its next write); both are generation for
nobody. So `tokens_sent + tokens_wasted` is, per stopped stream, the number of tokens due
by its stop. A token whose write was still waiting on the peer counts as not written.
Not counted (the server cannot see them): tokens written into socket buffers that the
peer never read — at most a buffer's worth, which differs by arm with bytes per token.
Streams that complete, and drop_after cuts (resumed later), waste nothing.

With ``--stream-log`` every emission also leaves one line (servers.streamlog): sent,
wasted, and what told the server it ended (a failed write, a WS ping timeout, the WS read
loop, a cancel…) — the server-side half of the dead-peer figures. Written once per
emission, after the token loop: the per-token path is unchanged.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_right
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Protocol

from core.formats.base import TokenEncoder
from core.schedule import StreamPlan, token_payload
from servers.config import ServerState
from servers.streams import ActiveStream, Outcome

_MIN_SLEEP_S = 0.001


class Sink(Protocol):
    """Where a stream's bytes go. Attributes, not methods, so the hot loop binds them once."""

    #: Write one frame (a token, or a heartbeat); raises one of `errors` if the peer left.
    send: Callable[[bytes], Awaitable[object]]
    #: Heartbeat frame written every heartbeat interval (an SSE comment or the payload
    #: format's keepalive event), or None (WS pings).
    heartbeat: bytes | None
    #: Exceptions meaning "the client is gone".
    errors: tuple[type[BaseException], ...]

    def abort(self) -> None:
        """Cut the connection abruptly, no close handshake (drop_after)."""


def wasted_tokens(offsets: list[int], t0: int, seq: int, until_ns: int) -> int:
    """Tokens wasted by a stream stopped at `until_ns` with `seq` the first token whose
    write did not complete: those from `seq` on that were due by then (module docstring)."""
    return max(0, bisect_right(offsets, until_ns - t0, lo=seq) - seq)


async def _absorb_pending_cancel() -> None:
    """Swallow a cancel that `ActiveStream.stop()` sent to a task that was already leaving."""
    task = asyncio.current_task()
    if task is None or not task.cancelling():
        return
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        task.uncancel()


async def run_stream(
    state: ServerState,
    handle: ActiveStream,
    plan: StreamPlan,
    start: int,
    t0: int,
    sink: Sink,
    encode: TokenEncoder | None = None,
) -> Outcome:
    """Emit tokens `start..n-1` of `plan` on `sink`; return how the stream ended.

    `encode(seq, stamp_ns, vocab_id)` gives a token's bytes: the payload format writer's
    encoder (core.formats); None: the native payload as is (a WS frame).

    The caller writes what comes after (the done event) for COMPLETED. Counters, the live
    registry (for cancel) and the recent-streams memory (for resume) are kept here.
    `handle.stop()` from any other task stops the emission at once (CANCELLED, or
    DISCONNECTED when a WS read loop saw the client leave); a failed write means the
    client left (DISCONNECTED). Wasted tokens: see the module docstring.
    """
    stats = state.stats
    registry = state.registry
    handle.task = asyncio.current_task()
    registry.add(handle)
    registry.remember(plan.params, t0)
    stats.streams_started += 1
    if start > 0:
        stats.streams_resumed += 1
    stats.streams_active += 1

    ids = plan.ids
    offs = plan.offsets
    n = plan.n
    if encode is None:
        encode = partial(token_payload, handle.stream_json)
    send = sink.send
    record_lag = stats.lag.record
    mono = time.monotonic_ns
    sleep = asyncio.sleep
    drop_after = plan.params.drop_after
    # A fault injected once: only a stream's first request is cut. A resume is not cut again,
    # even one that starts before the drop point (a client that lost the tail of the cut
    # connection, as a browser's fetch reader can) — a real fault would not recur there.
    drop_at = drop_after if drop_after is not None and drop_after > start and start == 0 else -1
    hb = sink.heartbeat
    hb_ns = state.heartbeat_ns
    if hb_ns <= 0:
        hb = None
    entered = mono()
    hb_next = max(t0, entered) + hb_ns
    # A resumed stream's tokens that fell due while the client was away go out at once;
    # their delay is the outage, not server lag, so lag is only recorded from here on.
    lag_from = t0 if start == 0 else entered

    seq = start
    slept = False
    outcome = Outcome.COMPLETED
    wasted = 0
    ended_by = "complete"
    try:
        try:
            if handle.stop_reason is not None:
                raise asyncio.CancelledError  # stopped before this task first ran
            while seq < n:
                due = t0 + offs[seq]
                now = mono()
                if hb is not None and hb_next <= due:
                    if now < hb_next:
                        await sleep(max((hb_next - now) / 1e9, _MIN_SLEEP_S))
                        slept = True
                        continue
                    await send(hb)
                    stats.heartbeats_sent += 1
                    stats.bytes_heartbeat += len(hb)
                    hb_next += hb_ns
                    continue
                if now < due:
                    await sleep(max((due - now) / 1e9, _MIN_SLEEP_S))
                    slept = True
                    continue
                if not slept:
                    await sleep(0)  # already due: still let the loop run (pitfall 11)
                slept = False
                t = mono()
                data = encode(seq, t, ids[seq])
                await send(data)
                seq += 1
                stats.tokens_sent += 1
                stats.bytes_token += len(data)
                if due >= lag_from:
                    record_lag(t - due)
                if seq == drop_at:
                    outcome = Outcome.DROPPED
                    ended_by = "drop_after"
                    handle.stop(outcome, ended_by)
                    sink.abort()
                    break
        except asyncio.CancelledError:
            reason = handle.stop_reason
            if reason is None:
                raise  # not ours (server shutdown): propagate, counted in `finally`
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            outcome = reason
            ended_by = handle.cause or ("cancel" if reason is Outcome.CANCELLED else "close")
            wasted = wasted_tokens(offs, t0, seq, mono())
        except sink.errors:
            # Detected on this write: the client left at some point after the previous one.
            if not handle.stop(Outcome.DISCONNECTED, "write"):
                await _absorb_pending_cancel()  # someone stopped us in the same instant
            outcome = handle.stop_reason or Outcome.DISCONNECTED
            ended_by = handle.cause or "write"
            wasted = wasted_tokens(offs, t0, seq, mono())
    except BaseException:
        outcome = Outcome.DISCONNECTED
        ended_by = "shutdown"
        raise
    finally:
        handle.sent = seq - start
        stats.tokens_wasted += wasted
        stats.streams_active -= 1
        if outcome is Outcome.COMPLETED:
            stats.streams_completed += 1
        elif outcome is Outcome.CANCELLED:
            stats.streams_cancelled += 1
        elif outcome is Outcome.DROPPED:
            stats.streams_dropped += 1
        else:
            stats.streams_disconnected += 1
            stats.disconnects[ended_by] = stats.disconnects.get(ended_by, 0) + 1
        registry.discard(handle)
        registry.touch(plan.params.stream)
        log = state.stream_log
        if log is not None:
            log.write(
                {
                    "kind": state.config.kind,
                    "stream": plan.params.stream,
                    "conn": handle.conn,
                    "start": start,
                    "n": n,
                    "sent": seq - start,
                    "wasted": wasted,
                    "outcome": outcome.value,
                    "ended_by": ended_by,
                    "t_start_ns": entered,
                    "t0_ns": t0,
                    "t_end_ns": mono(),
                }
            )
    return outcome
