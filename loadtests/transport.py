"""The seam between the protocol-neutral session script and a wire protocol.

A `Transport` carries one user's streams, one at a time: `start` sends a request (or a
resume), `poll` returns the stream events parsed from whatever bytes arrived, each
stamped with the client's monotonic clock as it was read. The session script decides
what to do with them (count, cancel, abort, resume); the transport only moves bytes and
keeps connection records. `loadtests.sse_transport` and `loadtests.ws_transport`
implement it over the client core (core.client); tests can implement it in a few lines.

Tokens are the bulk of it, so `poll` takes the script's `take` (loadtests.inbox.Take): a
transport may hand each event the script only records (a content token, the open and
first-byte stamps) to it as it is read — under gevent in the process reader's pass, without
waking the user — and return only what the script must act on; one that ignores `take`
returns every event and the script records them itself. Both give the same records.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from core.accounting import ConnectionAccount, StreamAccount
from core.client.events import Closed as Closed  # the stream events are the client core's;
from core.client.events import Done as Done  # re-exported: the session script and the tests
from core.client.events import Failed as Failed  # speak of them as the transport's
from core.client.events import FirstByte as FirstByte
from core.client.events import FirstEvent as FirstEvent
from core.client.events import Heartbeat as Heartbeat
from core.client.events import Opened as Opened
from core.client.events import StreamEvent as StreamEvent
from core.client.events import Token as Token
from core.client.events import Usage as Usage
from core.schedule import StreamParams

if TYPE_CHECKING:  # pragma: no cover
    from loadtests.inbox import Take


@dataclass(frozen=True, slots=True)
class Started:
    """What `Transport.start` reports: when the request left and on which connection."""

    t_send_ns: int
    conn_uid: str
    reused: bool
    #: WS: the stream is open as soon as the start message is sent on an open connection.
    t_open_ns: int | None = None


class TransportError(Exception):
    """Connecting or sending failed; the message says which step."""


# --------------------------------------------------------------------------- records
class RecordSink(Protocol):
    """Where finished streams and closed connections go (run folder, memory, …)."""

    def stream(self, acct: StreamAccount) -> None: ...

    def connection(self, acct: ConnectionAccount) -> None: ...


@dataclass(frozen=True)
class TransportContext:
    """Labels every record of one user carries, and where records go."""

    phase: str
    arm: str
    worker: str  # host-pid of the load generator process
    user: int  # user index in that process
    conn_prefix: str  # unique in the run, e.g. "<phase>/<worker_index>.<user>"
    sink: RecordSink
    connect_timeout_s: float = 10.0
    scenario: str | None = None  # the phase's scenario, variant, repetition (record columns)
    variant: str | None = None
    rep: int | None = None


# --------------------------------------------------------------------------- interface
class Transport(ABC):
    """One user's connection(s) to one server, speaking one protocol."""

    #: "sse" | "ws" — also the Locust request_type (upper-cased).
    protocol: str
    #: Whether a dropped stream can be resumed (its payload format's `resumable`); the
    #: session script only tries when it can.
    resumable: bool = True

    @abstractmethod
    def prepare(self) -> None:
        """Have a connection ready before the stream's clock starts (pitfall 16).

        WS: TCP + upgrade if not connected. SSE: TCP if no reusable keep-alive connection.
        Raises TransportError.
        """

    @abstractmethod
    def start(self, params: StreamParams, *, resume_after: int | None = None) -> Started:
        """Send the stream request, or a resume after `resume_after` (the last seq received;
        -1 or None with a resume means "from the start"). Connects first if needed."""

    @abstractmethod
    def poll(self, deadline_ns: int, take: Take | None = None) -> list[StreamEvent]:
        """Block until an event of the current stream that `take` leaves (returns None for),
        or `take` returned True (the script acts after that event), or the deadline ([] and
        nothing taken). Events `take` recorded are not returned."""

    @abstractmethod
    def take_bytes(self) -> int:
        """Application bytes received for the current stream since the last call."""

    @abstractmethod
    def finish_stream(self, t_ns: int) -> None:
        """The stream ended (done / error): leave the connection ready for the next one."""

    @abstractmethod
    def cancel(self, mode: str) -> None:
        """Abandon the current stream: "close" the connection, or "cancel" it politely
        (SSE cancel endpoint / WS cancel message) and keep the connection."""

    @abstractmethod
    def abort(self, reason: str = "client abort") -> None:
        """Drop the connection abruptly, as a network failure would (no close handshake);
        `reason` goes into its connection record (e.g. the dead-peer watch's verdict)."""

    @abstractmethod
    def idle(self, seconds: float) -> None:
        """Think time between turns; a WS keeps reading (pings, late frames) meanwhile."""

    @abstractmethod
    def close(self) -> None:
        """End of session: close every connection and record it."""

    @property
    @abstractmethod
    def open_connections(self) -> int:
        """Connections this transport holds right now (for resource samples)."""
