"""Where one connection's parsed events wait for the session script, tokens counted on arrival.

A transport makes one `Inbox` per connection and sets `inbox.on_read` as the channel's sink
(loadtests.wire): under gevent it runs in the process reader's pass, in the hub. Each read
(t_ns, bytes) is parsed by the transport's `feed` (the client core), and while the session
script has given a `count` (during `Transport.poll`), the content tokens at the head of what
was parsed are counted into its stream account there and then — no greenlet switch per
token. The user's greenlet is woken only for what the script must see: any other event (the
stream opened, ended, failed, dropped; a kind the script does not know), a token after which
the script acts (`count` returns True: a cancel or an abort threshold), or connection
business the transport must do itself (`feed` returns True: a pong to send, the connection
over).

Order is kept: once an event is held for the script, later tokens are held behind it (not
counted) until the script has taken them.
"""

from __future__ import annotations

from collections.abc import Callable

from core.client.events import StreamEvent, Token

#: Parse one read into the list; True if the transport itself must look (not for events).
Feed = Callable[[int, bytes, list[StreamEvent]], bool]
#: Count one token into the script's account; True if the script must act after it.
Count = Callable[[Token], bool]


class Inbox:
    __slots__ = ("acted", "count", "events", "feed")

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.events: list[StreamEvent] = []  # held for the script, in arrival order
        self.count: Count | None = None
        self.acted = False  # `count` asked for the script since it last took the events

    def on_read(self, t_ns: int, data: bytes) -> bool:
        """The channel's sink: parse, count what can be counted, say whether to wake."""
        events = self.events
        held = len(events)
        wanted = self.feed(t_ns, data, events)
        count = self.count
        if count is not None and not held and not self.acted:
            n = len(events)
            i = 0
            while i < n:
                ev = events[i]
                if type(ev) is not Token:
                    break
                i += 1
                if count(ev):
                    self.acted = True
                    break
            if i:
                del events[:i]
        return wanted or self.acted or len(events) > held

    def take(self) -> list[StreamEvent]:
        """The held events (the script's now)."""
        events, self.events = self.events, []
        self.acted = False
        return events

    def discard(self) -> None:
        """Drop what is held (a stream abandoned: its late events mean nothing)."""
        self.events.clear()
        self.acted = False
