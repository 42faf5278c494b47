"""Per-stream and per-connection bookkeeping (sans-I/O): what a client saw, turned into records.

A client transport feeds a `StreamAccount` every content token it parses (with the
client's `time.monotonic_ns()` at parse time and the server's stamp from the payload)
plus the stream's life events (request sent, headers / open, done, drop, reconnect,
cancel, error). The account produces the `streams` row and the columnar `tokens`
rows of core.records; it never reads a clock itself, so a scripted clock tests it.

Definitions (docs/methodology.md, "Metrics"), all on the arrival order of content tokens:

- TTFT = first content token − first request sent; E2E = last content token − first
  request sent. A reconnect does not restart either clock: a resumed stream is one stream.
- Time to first byte / first event = the response's first body byte / first event of any
  kind (a role-only chunk, ``response.created``, ``message_start``, a ping) − first request
  sent: on a provider format they come before the first token, and differ from TTFT.
- ITL = every gap between consecutive received content tokens (duplicates included, as
  they cost the user time too), so ``e2e − ttft == sum(itl)`` holds exactly.
- Integrity: ``tokens_expected == n_unique + n_lost`` for a stream that was meant to finish;
  a duplicate is a seq seen before; out of order is a *new* seq that arrives after a higher
  one; the checksum is SHA-256 over the texts of the unique seqs in seq order, compared with
  the done event's. A cancelled stream (the user chose to stop) has no loss (None).

`ConnectionAccount` does the same for one TCP connection (SSE keep-alive or a WS
session): connect/open/close times, streams carried and busy time, from which analysis
derives connection-seconds held and their idle share.
"""

from __future__ import annotations

import hashlib
from array import array
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

#: Outcomes of a stream (the `outcome` column).
OK = "ok"  # done event received
CANCELLED = "cancelled"  # the user abandoned it (close or cancel message/endpoint)
ABORTED = "aborted"  # the client dropped the connection and did not (or could not) resume
DROPPED = "dropped"  # the server/network dropped it and it was not (or could not be) resumed
ERROR = "error"  # HTTP status / WS error message / protocol failure
TIMEOUT = "timeout"  # stream_timeout_s passed without done
STOPPED = "stopped"  # the load generator stopped the user mid-stream
OUTCOMES = (OK, CANCELLED, ABORTED, DROPPED, ERROR, TIMEOUT, STOPPED)

#: `StreamAccount.t_server_ns` of a token whose payload carried no server stamp (monotonic
#: clocks are never negative).
NO_STAMP = -1

#: Outcomes after which missing tokens are not "lost": nobody wanted them any more.
_NO_LOSS = (CANCELLED, STOPPED)


@dataclass(frozen=True, slots=True)
class StreamLabels:
    """Who and what a stream is: the identity columns of the `streams` row."""

    stream_uid: str
    phase: str
    arm: str
    worker: str
    user: int
    session: int
    turn: int
    stream_id: str
    seed: int
    tokens_expected: int | None  # None: the server's schedule is unknown (a foreign server)
    ttft_ms_sched: float | None = None
    gap_ms_sched: float | None = None
    users_target: int | None = None
    scenario: str | None = None  # the phase's scenario, variant and repetition (schema 2)
    variant: str | None = None
    rep: int | None = None


class StreamAccount:
    """Everything one client observed about one stream (across reconnects)."""

    def __init__(self, labels: StreamLabels, *, t_sched_ns: int | None = None) -> None:
        self.labels = labels
        self.t_sched_ns = t_sched_ns
        self.t_send_ns: int | None = None
        self.t_open_ns: int | None = None
        self.t_end_ns: int | None = None
        self.conn_uid: str | None = None
        self.reused_conn: bool | None = None
        self.status: int | None = None
        self.bytes_in: int | None = 0  # None: the client cannot see the framing (EventSource)
        self.reconnects = 0
        self.drops = 0
        self.t_drop_ns: list[int] = []  # every drop observed (client abort or server drop)
        self.dead_declared = 0  # drops the client declared itself: its connection fell silent
        self.t_first_byte_ns: int | None = None
        self.t_first_event_ns: int | None = None
        self.got_done = False
        self.done_count: int | None = None
        self.done_sha256: str | None = None
        self.response_id: str | None = None  # the API's id of the finished response
        self.usage_input_tokens: int | None = None
        self.usage_output_tokens: int | None = None
        self.outcome: str | None = None
        self.error: str | None = None
        # columnar token rows, in arrival order: int64 arrays (8 bytes a value, nothing for
        # the garbage collector to walk, copied as a block into the record buffers)
        self.seq = array("q")
        self.t_recv_ns = array("q")
        self.t_server_ns = array("q")  # NO_STAMP where the payload had none
        self.nbytes = array("q")
        # integrity
        self._texts: dict[int, str] = {}
        self._max_seq = -1
        self.n_dup = 0
        self.n_out_of_order = 0

    # ------------------------------------------------------------------ events
    def sent(self, t_ns: int) -> None:
        """A request / start message left. Only the first one starts the stream's clocks."""
        if self.t_send_ns is None:
            self.t_send_ns = t_ns

    def opened(self, t_ns: int, conn_uid: str, *, reused: bool, status: int | None = None) -> None:
        """Response headers parsed (SSE) or start sent on an open WS. First one counts."""
        if self.t_open_ns is None:
            self.t_open_ns = t_ns
            self.conn_uid = conn_uid
            self.reused_conn = reused
        if status is not None:
            self.status = status

    def first_byte(self, t_ns: int) -> None:
        """The response's first body byte (WS: the stream's first message). First one counts."""
        if self.t_first_byte_ns is None:
            self.t_first_byte_ns = t_ns

    def first_event(self, t_ns: int) -> None:
        """The stream's first event of any kind. First one counts."""
        if self.t_first_event_ns is None:
            self.t_first_event_ns = t_ns

    def usage(self, input_tokens: int | None, output_tokens: int | None) -> None:
        """Token counts the stream reported (the last report wins: they are cumulative)."""
        if input_tokens is not None:
            self.usage_input_tokens = input_tokens
        if output_tokens is not None:
            self.usage_output_tokens = output_tokens

    def token(
        self, seq: int, t_recv_ns: int, t_server_ns: int | None, nbytes: int, text: str
    ) -> None:
        """One content token parsed at `t_recv_ns` (client clock)."""
        self.seq.append(seq)
        self.t_recv_ns.append(t_recv_ns)
        self.t_server_ns.append(NO_STAMP if t_server_ns is None else t_server_ns)
        self.nbytes.append(nbytes)
        if seq > self._max_seq:  # the usual case: a new seq, in order (never seen: all <= max)
            self._max_seq = seq
            self._texts[seq] = text
            return
        if seq in self._texts:
            self.n_dup += 1
            return
        self._texts[seq] = text
        if seq < self._max_seq:
            self.n_out_of_order += 1
        else:
            self._max_seq = seq

    def done(self, count: int | None, sha256: str | None, response_id: str | None = None) -> None:
        """The end marker; count and checksum when the server reports them (a server that
        does not: integrity not measured, `checksum_ok` None)."""
        self.got_done = True
        self.done_count = count
        self.done_sha256 = sha256
        self.response_id = response_id

    def dropped(self, t_ns: int, *, dead: bool = False) -> None:
        """The connection carrying the stream went away before done (either side), or was
        declared dead by the client after a silence (`dead`; core.client.deadpeer)."""
        self.drops += 1
        self.t_drop_ns.append(t_ns)
        if dead:
            self.dead_declared += 1

    def reconnected(self, t_ns: int) -> None:
        """A resume request was sent after a drop (the drop→next-token gap is derived)."""
        self.reconnects += 1

    def add_bytes(self, n: int) -> None:
        self.bytes_in += n

    def finish(self, t_end_ns: int, outcome: str, error: str | None = None) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        if self.outcome is None:
            self.t_end_ns = t_end_ns
            self.outcome = outcome
            self.error = error

    # ------------------------------------------------------------------ figures
    @property
    def finished(self) -> bool:
        return self.outcome is not None

    @property
    def n_received(self) -> int:
        return len(self.seq)

    @property
    def n_unique(self) -> int:
        return len(self._texts)

    @property
    def last_seq(self) -> int | None:
        """The seq of the last token received — what Last-Event-ID / `after` resume from."""
        return self.seq[-1] if self.seq else None

    @property
    def n_lost(self) -> int | None:
        if self.outcome in _NO_LOSS or self.labels.tokens_expected is None:
            return None
        return self.labels.tokens_expected - self.n_unique

    @property
    def received_sha256(self) -> str:
        """SHA-256 of the texts received (unique seqs, in seq order), as the done event's."""
        h = hashlib.sha256()
        for seq in sorted(self._texts):
            h.update(self._texts[seq].encode("utf-8"))
        return h.hexdigest()

    @property
    def checksum_ok(self) -> bool | None:
        if self.done_sha256 is None:
            return None
        return self.received_sha256 == self.done_sha256 and self.done_count == self.n_unique

    @property
    def ttft_ns(self) -> int | None:
        if self.t_send_ns is None or not self.t_recv_ns:
            return None
        return self.t_recv_ns[0] - self.t_send_ns

    @property
    def e2e_ns(self) -> int | None:
        if self.t_send_ns is None or not self.t_recv_ns:
            return None
        return self.t_recv_ns[-1] - self.t_send_ns

    @property
    def itl_ns(self) -> list[int]:
        t = self.t_recv_ns
        return [b - a for a, b in pairwise(t)]

    @property
    def tpot_ns(self) -> float | None:
        n = len(self.t_recv_ns)
        if n < 2:
            return None
        return (self.t_recv_ns[-1] - self.t_recv_ns[0]) / (n - 1)

    @property
    def reconnect_gaps_ns(self) -> list[int | None]:
        """For each drop: time until the next content token arrived (None if none did)."""
        gaps: list[int | None] = []
        for t_drop in self.t_drop_ns:
            nxt = next((t for t in self.t_recv_ns if t > t_drop), None)
            gaps.append(None if nxt is None else nxt - t_drop)
        return gaps

    # ------------------------------------------------------------------ records
    def streams_row(self) -> dict[str, Any]:
        """The `streams` row (core.records.STREAMS column names)."""
        row = asdict(self.labels)
        row.update(
            conn_uid=self.conn_uid,
            t_sched_ns=self.t_sched_ns,
            t_send_ns=self.t_send_ns,
            t_open_ns=self.t_open_ns,
            t_first_ns=self.t_recv_ns[0] if self.t_recv_ns else None,
            t_last_ns=self.t_recv_ns[-1] if self.t_recv_ns else None,
            t_end_ns=self.t_end_ns,
            t_drop_ns=self.t_drop_ns[0] if self.t_drop_ns else None,
            t_drops_ns=list(self.t_drop_ns),
            dead_declared=self.dead_declared,
            n_received=self.n_received,
            n_unique=self.n_unique,
            n_lost=self.n_lost,
            n_dup=self.n_dup,
            n_out_of_order=self.n_out_of_order,
            checksum_ok=self.checksum_ok,
            done=self.got_done,
            outcome=self.outcome,
            error=self.error,
            reconnects=self.reconnects,
            bytes_in=self.bytes_in,
            reused_conn=self.reused_conn,
            t_first_byte_ns=self.t_first_byte_ns,
            t_first_event_ns=self.t_first_event_ns,
            usage_input_tokens=self.usage_input_tokens,
            usage_output_tokens=self.usage_output_tokens,
        )
        return row

    def tokens_columns(self) -> dict[str, list[Any]]:
        """The `tokens` rows of this stream, columnar (core.records.TOKENS column names)."""
        n = len(self.seq)
        return {
            "stream_uid": [self.labels.stream_uid] * n,
            "seq": list(self.seq),
            "t_recv_ns": list(self.t_recv_ns),
            "t_server_ns": [None if t == NO_STAMP else t for t in self.t_server_ns],
            "nbytes": list(self.nbytes),
        }


@dataclass(frozen=True, slots=True)
class ConnectionLabels:
    conn_uid: str
    phase: str
    arm: str
    worker: str
    user: int
    scenario: str | None = None  # the phase's scenario, variant and repetition (schema 2)
    variant: str | None = None
    rep: int | None = None


class ConnectionAccount:
    """One TCP connection: when it was asked for, connected, TLS-established, opened,
    closed; busy time; bytes.

    busy = time with a stream in flight on it (between `stream_started` and `stream_ended`),
    so held − busy is the idle time a connection-priced platform still bills. Over TLS the
    bytes are the ciphertext on the wire (records, handshake and all); `t_tls_ns` None
    means the connection had no TLS.
    """

    def __init__(self, labels: ConnectionLabels, t_connect_ns: int) -> None:
        self.labels = labels
        self.t_connect_ns = t_connect_ns
        self.t_tcp_ns: int | None = None  # TCP connected
        self.t_tls_ns: int | None = None  # TLS handshake done (None: no TLS)
        self.tls_version: str | None = None
        self.tls_resumed: bool | None = None
        self.t_open_ns: int | None = None
        self.t_close_ns: int | None = None
        self.closed_by: str | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.streams = 0
        self.busy_ns = 0
        self.bytes_in: int | None = 0  # None: not measured (a browser's EventSource)
        self.bytes_out = 0
        self._busy_since: int | None = None

    @property
    def closed(self) -> bool:
        return self.t_close_ns is not None

    def tcp_connected(self, t_ns: int) -> None:
        self.t_tcp_ns = t_ns

    def tls_established(self, t_ns: int, version: str | None, resumed: bool) -> None:
        """The TLS handshake finished (the read that completed it returned at `t_ns`)."""
        self.t_tls_ns = t_ns
        self.tls_version = version
        self.tls_resumed = resumed

    def opened(self, t_ns: int) -> None:
        if self.t_open_ns is None:
            self.t_open_ns = t_ns

    def stream_started(self, t_ns: int) -> None:
        self.streams += 1
        if self._busy_since is None:
            self._busy_since = t_ns

    def stream_ended(self, t_ns: int) -> None:
        if self._busy_since is not None:
            self.busy_ns += max(0, t_ns - self._busy_since)
            self._busy_since = None

    def close(
        self, t_ns: int, closed_by: str, code: int | None = None, reason: str | None = None
    ) -> bool:
        """Mark closed (first call wins); returns False if it already was."""
        if self.t_close_ns is not None:
            return False
        self.stream_ended(t_ns)
        self.t_close_ns = t_ns
        self.closed_by = closed_by
        self.close_code = code
        self.close_reason = reason
        return True

    def row(self) -> dict[str, Any]:
        """The `connections` row (core.records.CONNECTIONS column names)."""
        row = asdict(self.labels)
        row.update(
            t_connect_ns=self.t_connect_ns,
            t_tcp_ns=self.t_tcp_ns,
            t_tls_ns=self.t_tls_ns,
            tls_version=self.tls_version,
            tls_resumed=self.tls_resumed,
            t_open_ns=self.t_open_ns,
            t_close_ns=self.t_close_ns,
            closed_by=self.closed_by,
            close_code=self.close_code,
            close_reason=self.close_reason,
            streams=self.streams,
            busy_ns=self.busy_ns,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
        )
        return row
