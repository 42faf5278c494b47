"""Where one connection's parsed events wait for the session script, recorded on arrival.

A transport makes one `Inbox` per connection and sets `inbox.on_read` as the channel's sink
(loadtests.wire): under gevent it runs in the process reader's pass, in the hub. Each read
(t_ns, bytes) is parsed by the transport's `feed` (the client core), and while the session
script has given its `take` (during `Transport.poll`), the events at the head of what was
parsed that the script only records — content tokens above all, also the stream's open /
first-byte / first-event stamps — go into its stream account there and then: no greenlet
switch per token. The user's greenlet is woken only for what the script must act on: an
event `take` leaves (returns None: the stream ended, failed or dropped; a kind the script
does not know), a token after which it acts (`take` returns True: a cancel or an abort
threshold), or connection business the transport must do itself (`feed` returns True: a
pong to send, the connection over).

Order is kept: once an event is held for the script, later ones are held behind it (not
taken) until the script has them.
"""

from __future__ import annotations

from collections.abc import Callable

from core.client.events import StreamEvent

#: Parse one read into the list; True if the transport itself must look (not for events).
Feed = Callable[[int, bytes, list[StreamEvent]], bool]
#: The script records one event: None = not this one (hold it, wake the script), False =
#: recorded, True = recorded and the script must act now.
Take = Callable[[StreamEvent], bool | None]


class Inbox:
    __slots__ = ("acted", "events", "feed", "take")

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.events: list[StreamEvent] = []  # held for the script, in arrival order
        self.take: Take | None = None
        self.acted = False  # `take` asked for the script since it last had the events

    def on_read(self, t_ns: int, data: bytes) -> bool:
        """The channel's sink: parse, record what can be recorded, say whether to wake."""
        events = self.events
        held = len(events)
        wanted = self.feed(t_ns, data, events)
        take = self.take
        if take is not None and not held and not self.acted:
            n = len(events)
            i = 0
            while i < n:
                act = take(events[i])
                if act is None:
                    break
                i += 1
                if act:
                    self.acted = True
                    break
            if i:
                del events[:i]
        return wanted or self.acted or len(events) > held

    def poll(self, take: Take | None, step: Callable[[], bool]) -> list[StreamEvent]:
        """`Transport.poll`'s loop: with `take` recording in the reader's pass, run `step`
        (the transport's settle-and-wait: False once nothing more can come or the deadline
        passed) until events are held for the script or it must act; then hand them over."""
        self.take = take
        try:
            while not self.events and not self.acted and step():
                pass
        finally:
            self.take = None
        return self.handover()

    def handover(self) -> list[StreamEvent]:
        """The held events (the script's now)."""
        events, self.events = self.events, []
        self.acted = False
        return events

    def discard(self) -> None:
        """Drop what is held (a stream abandoned: its late events mean nothing)."""
        self.events.clear()
        self.acted = False
