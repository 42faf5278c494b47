"""Dead-peer detection on the client (sans-I/O): a connection that has been silent too long
is declared dead.

A phone that drives into a tunnel, or whose address changed under a NAT, gets no FIN and
no RST: its connection just goes quiet, and a client that waits for the next token waits
until its stream timeout. Silence is the only evidence, and it is ambiguous — a model
thinking for 3 s is silent too — unless the server speaks while it has nothing to say:
heartbeats (an SSE comment, a WS ping) every H seconds. A client that knows H declares
the connection dead after k·H seconds in which nothing at all was read (k > 1 leaves room
for jitter and a late heartbeat); without heartbeats it can only wait longer than the
longest pause the model may take.

`SilenceWatch` holds that rule for one stream. The session script (loadtests.session)
tells it every time it heard from the peer — any event a read produced: a token, a
heartbeat, the response head — and asks it for the deadline of its next wait:

- `heard(t_ns)`: the peer was heard at t_ns (the read's stamp);
- `wait_until(stream_deadline_ns)`: how long the next wait may last. It stays the same
  instant until that instant has passed (a transport re-arms its read timer when the
  deadline changes, so moving it on every token would cost a timer per token); the wait
  then ends once per silence period, and `expired` is asked;
- `expired(now_ns)`: True when nothing was heard for `silence_ns` (the connection is
  dead); False otherwise — and the next `wait_until` is the new dead-by instant.

The rule is exact: a connection is declared dead at the first check at or after
``t_heard + silence_ns``, never before.
"""

from __future__ import annotations

__all__ = ["SilenceWatch", "silence_s"]


def silence_s(heartbeat_s: float, dead_after_heartbeats: float, dead_after_s: float) -> float:
    """The silence after which a client declares its connection dead (0 = never):
    `dead_after_heartbeats` heartbeat intervals, or `dead_after_s` seconds (a client
    without heartbeats). Both 0: no dead-peer watch."""
    if dead_after_heartbeats > 0:
        if heartbeat_s <= 0:
            raise ValueError("dead_after_heartbeats needs server heartbeats (heartbeat_s > 0)")
        return dead_after_heartbeats * heartbeat_s
    return max(0.0, dead_after_s)


class SilenceWatch:
    """One stream's dead-peer rule (see the module docstring)."""

    __slots__ = ("silence_ns", "t_heard_ns", "wake_ns")

    def __init__(self, silence_ns: int, t_start_ns: int) -> None:
        if silence_ns <= 0:
            raise ValueError(f"silence_ns must be > 0, got {silence_ns}")
        self.silence_ns = silence_ns
        self.t_heard_ns = t_start_ns  # the request left: the peer owes an answer from here
        self.wake_ns = t_start_ns + silence_ns

    def heard(self, t_ns: int) -> None:
        if t_ns > self.t_heard_ns:
            self.t_heard_ns = t_ns

    @property
    def dead_by_ns(self) -> int:
        """The instant the connection counts as dead if nothing more is heard."""
        return self.t_heard_ns + self.silence_ns

    def wait_until(self, stream_deadline_ns: int) -> int:
        return min(stream_deadline_ns, self.wake_ns)

    def expired(self, now_ns: int) -> bool:
        dead_by = self.t_heard_ns + self.silence_ns
        if now_ns >= dead_by:
            return True
        self.wake_ns = dead_by
        return False

    def restart(self, t_ns: int) -> None:
        """A new connection carries the stream (a resume): silence counts from `t_ns`."""
        self.t_heard_ns = t_ns
        self.wake_ns = t_ns + self.silence_ns
