"""Stream bookkeeping shared by every server kind: live handles and recently seen streams.

- `ActiveStream`: one running emission, so it can be stopped from elsewhere (the cancel
  endpoint, a WS cancel message, the WS read loop noticing the client left).
- `StreamRegistry`: the live handles by stream id (for `POST /v1/streams/{id}/cancel`,
  which must bring the stream's secret: ids are the clients' choice and collide) and
  a bounded, time-limited memory of recent streams' parameters and t0, so a resumed
  stream keeps its original schedule (tokens already due go out at once) and a WS resume
  may omit the parameters.
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import time
from collections import OrderedDict
from dataclasses import dataclass

from core.schedule import StreamId, StreamParams, StreamPlan, stream_id_json

#: How long a finished or dropped stream can still be resumed by id alone.
RECENT_TTL_S = 300.0
#: Upper bound on remembered streams (oldest forgotten first).
RECENT_MAX = 20_000


class Outcome(enum.Enum):
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    DISCONNECTED = "disconnected"
    DROPPED = "dropped"


class ActiveStream:
    """A running stream. `stop()` records why, and wakes the emitting task."""

    __slots__ = (
        "cause",
        "conn",
        "next_seq",
        "secret",
        "sent",
        "stop_reason",
        "stream",
        "stream_json",
        "task",
    )

    def __init__(self, stream: StreamId, secret: str | None = None) -> None:
        self.stream = stream
        #: What `POST /v1/streams/{id}/cancel` must bring (SSE: sent in a response header);
        #: None: not cancellable over HTTP (a WS stream is cancelled on its connection).
        self.secret = secret
        self.stream_json = stream_id_json(stream)  # precomputed once (token_payload's "s")
        self.task: asyncio.Task[object] | None = None
        self.stop_reason: Outcome | None = None
        self.sent = 0  # token frames written by this run
        self.next_seq = 0
        #: What told the server (core.streamlog.ENDED_BY) when another task stopped it.
        self.cause: str | None = None
        #: The connection's name in the client's records (a WS upgrade's ``conn=``), if any.
        self.conn: str | None = None

    def stop(self, reason: Outcome, cause: str | None = None) -> bool:
        """Ask the emission to stop (first reason wins; `cause`: what told the server, for
        the stream log). Returns False if already stopping."""
        if self.stop_reason is not None:
            return False
        self.stop_reason = reason
        self.cause = cause
        task = self.task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
        return True


@dataclass(slots=True)
class _Recent:
    params: StreamParams
    t0_ns: int
    seen: float


class StreamRegistry:
    """Live streams by id plus a bounded memory of recent ones (see module docstring)."""

    __slots__ = ("_active", "_recent")

    def __init__(self) -> None:
        self._active: dict[StreamId, list[ActiveStream]] = {}
        self._recent: OrderedDict[StreamId, _Recent] = OrderedDict()

    # -- live -----------------------------------------------------------------------
    def add(self, handle: ActiveStream) -> None:
        self._active.setdefault(handle.stream, []).append(handle)

    def discard(self, handle: ActiveStream) -> None:
        lst = self._active.get(handle.stream)
        if lst is None:
            return
        try:
            lst.remove(handle)
        except ValueError:
            return
        if not lst:
            del self._active[handle.stream]

    def active(self) -> list[ActiveStream]:
        return [h for lst in self._active.values() for h in lst]

    def cancel(self, stream: StreamId, secret: str) -> int:
        """Stop the live streams with this id and secret; the number stopped."""
        given = secret.encode()
        return sum(
            h.stop(Outcome.CANCELLED)
            for h in list(self._active.get(stream, ()))
            if h.secret is not None and hmac.compare_digest(h.secret.encode(), given)
        )

    # -- recent ---------------------------------------------------------------------
    def remember(self, params: StreamParams, t0_ns: int) -> None:
        now = time.monotonic()
        recent = self._recent
        recent[params.stream] = _Recent(params, t0_ns, now)
        recent.move_to_end(params.stream)
        while recent:
            oldest = next(iter(recent.values()))
            if len(recent) <= RECENT_MAX and now - oldest.seen <= RECENT_TTL_S:
                break
            recent.popitem(last=False)

    def touch(self, stream: StreamId) -> None:
        """Restart the TTL of a stream that just ended (finished, dropped, cancelled)."""
        entry = self._recent.get(stream)
        if entry is not None:
            entry.seen = time.monotonic()
            self._recent.move_to_end(stream)

    def lookup(self, stream: StreamId) -> _Recent | None:
        entry = self._recent.get(stream)
        if entry is None or time.monotonic() - entry.seen > RECENT_TTL_S:
            return None
        return entry

    def resume_t0(self, plan: StreamPlan, after: int, now_ns: int) -> int:
        """t0 for a stream resumed after seq `after`.

        Known stream with the same parameters: its original t0, so the schedule continues
        as if nothing happened (tokens already due are sent at once). Unknown (e.g. a fresh
        server): place t0 so that token after+1 is due one scheduled gap from now.
        """
        entry = self.lookup(plan.params.stream)
        if entry is not None and entry.params == plan.params:
            return entry.t0_ns
        nxt = after + 1
        if after < 0 or nxt >= plan.n:
            return now_ns
        # t0 = now - offsets[after+1] + gap(after -> after+1): token `after` counts as due
        # now, so token after+1 follows one scheduled gap later (a pause stays a pause).
        return now_ns - plan.offsets[after]
