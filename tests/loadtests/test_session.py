"""The session script against a scripted in-memory transport: no sockets, no clocks asserted.

Every test runs twice: with a transport that returns every event for the script to record,
and with one that hands them to the script's `take` as they are read, as the real transports
do (loadtests.inbox.Inbox: only what the script must act on returned). Both must give the
same records.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from core.accounting import ABORTED, CANCELLED, DROPPED, ERROR, OK, TIMEOUT
from core.scenario import BehaviourSpec, ServerSpec, SessionSpec, StreamSpec
from core.schedule import StreamParams, done_summary, token_texts
from loadtests.inbox import Inbox, Take
from loadtests.memsink import MemorySink
from loadtests.session import SessionPlan, UserIds, UserScript
from loadtests.transport import (
    Closed,
    Done,
    Failed,
    Opened,
    Started,
    StreamEvent,
    Token,
    Transport,
    TransportError,
)


class ScriptedTransport(Transport):
    """Serves each stream from core.schedule, in batches of `batch` tokens per poll.

    drop_at: the connection "drops" once that seq is reached (the first start only).
    Resumes continue after `resume_after`, like the real servers.
    """

    protocol = "fake"
    #: record events through the script's `take` (an Inbox), as the real transports do
    recording = False

    def __init__(
        self,
        *,
        batch: int = 3,
        drop_at: int | None = None,
        fail: str | None = None,
        stall_after: int | None = None,
    ) -> None:
        self.batch = batch
        self.drop_at = drop_at
        self.fail = fail
        self.stall_after = stall_after
        self.calls: list[tuple] = []
        self.t = 0
        self._queue: list[StreamEvent] = []
        self._starts = 0
        self.connected = False

    def _now(self) -> int:
        self.t += 1_000
        return self.t

    def prepare(self) -> None:
        self.calls.append(("prepare",))
        self.connected = True

    def start(self, params: StreamParams, *, resume_after: int | None = None) -> Started:
        self.calls.append(("start", str(params.stream), params.seed, resume_after))
        self._starts += 1
        t = self._now()
        if self.fail == "connect":
            raise TransportError("connect refused")
        if self.fail == "status":
            self._queue = [Opened(t, 400), Failed(t, 400, "HTTP 400: tokens: bad")]
            return Started(t, "c", False)
        n = params.n_tokens
        texts = token_texts(params.seed, params.stream, n)
        first = 0 if resume_after is None or resume_after < 0 else resume_after + 1
        q: list[StreamEvent] = [Opened(t, 200)]
        for seq in range(first, n):
            if self.stall_after is not None and seq >= self.stall_after:
                self._queue = q
                return Started(t, "c", False)
            if self.drop_at is not None and seq == self.drop_at and self._starts == 1:
                q.append(Closed(t, "server", "dropped"))
                self._queue = q
                return Started(t, "c", False)
            q.append(Token(t, seq, t - 10, 40, texts[seq]))
        s = done_summary(texts)
        q.append(Done(t, s["count"], s["sha256"]))
        self._queue = q
        return Started(t, "c", resume_after is None)

    def _next_read(self) -> list[StreamEvent]:
        out, self._queue = self._queue[: self.batch], self._queue[self.batch :]
        t = self._now()
        return [replace(e, t_ns=t) for e in out]

    def _feed(self, t_ns: int, data: bytes, out: list[StreamEvent]) -> bool:
        out.extend(self._next_read())
        return False

    def poll(self, deadline_ns: int, take: Take | None = None) -> list[StreamEvent]:
        if not self.recording:
            return self._next_read()
        inbox = Inbox(self._feed)
        inbox.take = take
        while self._queue and not inbox.events and not inbox.acted:
            inbox.on_read(0, b"")
        return inbox.handover()

    def take_bytes(self) -> int:
        return 10

    def finish_stream(self, t_ns: int) -> None:
        self.calls.append(("finish",))

    def cancel(self, mode: str) -> None:
        self.calls.append(("cancel", mode))
        self._queue = []

    def abort(self, reason: str = "client abort") -> None:
        self.calls.append(("abort",))
        self._queue = []

    def idle(self, seconds: float) -> None:
        self.calls.append(("idle", seconds))

    def close(self) -> None:
        self.calls.append(("close",))

    @property
    def open_connections(self) -> int:
        return int(self.connected)


@pytest.fixture(autouse=True, params=[False, True], ids=["script records", "transport records"])
def _recording(request: pytest.FixtureRequest) -> Iterator[None]:
    ScriptedTransport.recording = request.param
    yield
    ScriptedTransport.recording = False


def script(
    tr: Transport,
    *,
    arm: str = "sse",
    stream: StreamSpec | None = None,
    session: SessionSpec | None = None,
    behaviour: BehaviourSpec | None = None,
) -> tuple[UserScript, MemorySink]:
    beh = behaviour or BehaviourSpec()
    plan = SessionPlan(
        stream or StreamSpec(tokens=10), session or SessionSpec(), beh, beh.silence_s(ServerSpec())
    )
    sink = MemorySink()
    ids = UserIds("ph", arm, "h-1", 0, 3, 42)
    return UserScript(plan, ids, tr, sink), sink


def test_turns_think_and_ids() -> None:
    tr = ScriptedTransport()
    us, sink = script(tr, session=SessionSpec(turns=3, think_s=2.0))
    accts = us.run_session(t_sched_ns=5)
    assert [a.outcome for a in accts] == [OK, OK, OK]
    assert [c for c in tr.calls if c[0] == "idle"] == [("idle", 2.0), ("idle", 2.0)]
    assert tr.calls[-1] == ("close",)
    starts = [c for c in tr.calls if c[0] == "start"]
    assert [s[1] for s in starts] == ["42.0.3.0.0", "42.0.3.0.1", "42.0.3.0.2"]
    assert [s[2] for s in starts] == [42, 43, 44]
    assert accts[0].t_sched_ns == 5
    row = sink.streams[0].streams_row()
    assert row["stream_uid"] == "ph/42.0.3.0.0" and row["checksum_ok"] is True
    assert row["bytes_in"] > 0 and row["n_lost"] == 0


def test_both_arms_make_identical_choices() -> None:
    """Same seed → same ids, seeds, think times and cancel decisions on either arm."""
    beh = BehaviourSpec(cancel_prob=0.5, cancel_after=2)
    sess = SessionSpec(turns=6, think_s=1.0, think_dist="exp")
    runs = []
    for arm in ("sse", "ws"):
        tr = ScriptedTransport()
        us, _ = script(tr, arm=arm, session=sess, behaviour=beh)
        accts = us.run_session() + us.run_session()
        runs.append((tr.calls, [a.outcome for a in accts]))
    assert runs[0] == runs[1]
    assert CANCELLED in runs[0][1] and OK in runs[0][1]


def test_cancel_modes() -> None:
    for mode in ("close", "cancel"):
        tr = ScriptedTransport(batch=1)
        us, _ = script(
            tr, behaviour=BehaviourSpec(cancel_prob=1.0, cancel_after=4, cancel_mode=mode)
        )
        (a,) = us.run_session()
        assert a.outcome == CANCELLED and a.n_unique == 4 and a.n_lost is None
        assert ("cancel", mode) in tr.calls


def test_server_drop_resumes_after_last_seq() -> None:
    tr = ScriptedTransport(drop_at=4)
    us, _ = script(tr, behaviour=BehaviourSpec(resume=True))
    (a,) = us.run_session()
    assert a.outcome == OK and a.reconnects == 1
    assert [c for c in tr.calls if c[0] == "start"][1][3] == 3
    row = a.streams_row()
    assert (row["n_lost"], row["n_dup"], row["checksum_ok"]) == (0, 0, True)
    assert row["tokens_expected"] == row["n_unique"] + row["n_lost"]


def test_server_drop_without_resume_counts_lost() -> None:
    tr = ScriptedTransport(drop_at=4)
    us, _ = script(tr, behaviour=BehaviourSpec(resume=False))
    (a,) = us.run_session()
    assert a.outcome == DROPPED and a.n_lost == 6 and a.reconnects == 0
    assert a.labels.tokens_expected == a.n_unique + a.n_lost


def test_client_abort_then_resume_or_not() -> None:
    tr = ScriptedTransport(batch=4)
    us, _ = script(tr, behaviour=BehaviourSpec(client_abort_after=5, resume=True))
    (a,) = us.run_session()
    assert a.outcome == OK and a.reconnects == 1 and a.n_lost == 0 and a.n_dup == 0
    assert ("abort",) in tr.calls
    # tokens of the aborted batch after the abort point are discarded, resume from seq 4
    assert [c for c in tr.calls if c[0] == "start"][1][3] == 4

    tr = ScriptedTransport(batch=4)
    us, _ = script(tr, behaviour=BehaviourSpec(client_abort_after=5, resume=False))
    (a,) = us.run_session()
    assert a.outcome == ABORTED and a.n_unique == 5 and a.n_lost == 5


def test_resume_gives_up_after_max_reconnects() -> None:
    class AlwaysFails(ScriptedTransport):
        def start(self, params, *, resume_after=None):
            if resume_after is not None:
                self.calls.append(("start", "x", 0, resume_after))
                raise TransportError("refused")
            return super().start(params, resume_after=resume_after)

    tr = AlwaysFails(drop_at=2)
    us, _ = script(tr, behaviour=BehaviourSpec(resume=True, max_reconnects=3))
    (a,) = us.run_session()
    assert a.outcome == DROPPED and a.reconnects == 3 and a.n_lost == 8


def test_errors_and_timeout() -> None:
    us, _ = script(ScriptedTransport(fail="connect"))
    (a,) = us.run_session()
    assert a.outcome == ERROR and "refused" in a.error

    us, _ = script(ScriptedTransport(fail="status"))
    (a,) = us.run_session()
    assert a.outcome == ERROR and a.status == 400 and "tokens" in a.error

    tr = ScriptedTransport(stall_after=3)
    us, _ = script(tr, behaviour=BehaviourSpec(stream_timeout_s=1.0))
    (a,) = us.run_session()
    assert a.outcome == TIMEOUT and a.n_unique == 3 and ("cancel", "close") in tr.calls


class FailsFirst(ScriptedTransport):
    """Refuses the first `failures` connection attempts."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def start(self, params, *, resume_after=None):
        if self.failures:
            self.failures -= 1
            self.calls.append(("start", "refused", 0, resume_after))
            raise TransportError("connect refused")
        return super().start(params, resume_after=resume_after)


def test_connect_retries_before_the_first_token_whatever_resume_says(monkeypatch) -> None:
    """Connection failures before any token are retried `connect_retries` times (the LLM
    SDKs' retries), with waits doubling from reconnect_wait_s; then the stream is an error."""
    waits: list[float] = []
    monkeypatch.setattr("loadtests.session.time.sleep", waits.append)
    beh = BehaviourSpec(resume=False, connect_retries=2, reconnect_wait_s=0.5)
    us, _ = script(FailsFirst(2), behaviour=beh)
    (a,) = us.run_session()
    assert a.outcome == OK and a.reconnects == 2 and waits == [0.5, 1.0]
    waits.clear()
    us, _ = script(FailsFirst(3), behaviour=beh)
    (a,) = us.run_session()
    assert a.outcome == ERROR and "refused" in a.error and waits == [0.5, 1.0]


def test_a_failed_first_connect_is_retried_only_on_a_bad_network(monkeypatch) -> None:
    """Without connect_retries or a dead-peer watch a refused first connect (a full server,
    a rejected certificate) is an error at once, whatever resume says; with a watch it is
    recovered like a drop before the first token (resume: up to max_reconnects)."""
    monkeypatch.setattr("loadtests.session.time.sleep", lambda s: None)
    tr = FailsFirst(1)
    us, _ = script(tr, behaviour=BehaviourSpec(resume=True))
    (a,) = us.run_session()
    assert a.outcome == ERROR and a.reconnects == 0
    assert [c for c in tr.calls if c[0] == "start"] == [("start", "refused", 0, None)]
    tr = FailsFirst(1)
    us, _ = script(tr, behaviour=BehaviourSpec(resume=True, dead_after_s=1.0))
    (a,) = us.run_session()
    assert a.outcome == OK and a.reconnects == 1 and a.n_lost == 0


def test_a_drop_before_any_token_is_retried_a_drop_after_is_not(monkeypatch) -> None:
    monkeypatch.setattr("loadtests.session.time.sleep", lambda s: None)
    beh = BehaviourSpec(resume=False, connect_retries=1)
    tr = ScriptedTransport(drop_at=0)  # the first connection drops before token 0
    us, _ = script(tr, behaviour=beh)
    (a,) = us.run_session()
    assert a.outcome == OK and a.reconnects == 1 and a.n_lost == 0
    assert [c[3] for c in tr.calls if c[0] == "start"] == [None, None]
    tr = ScriptedTransport(drop_at=4)
    us, _ = script(tr, behaviour=beh)
    (a,) = us.run_session()
    assert a.outcome == DROPPED and a.reconnects == 0 and a.n_lost == 6


def test_reconnects_that_bring_nothing_back_off(monkeypatch) -> None:
    """First attempt after a drop at once; then each attempt that brought no token waits
    twice as long (capped at 8x)."""
    waits: list[float] = []
    monkeypatch.setattr("loadtests.session.time.sleep", waits.append)

    class EmptyResumes(ScriptedTransport):
        def start(self, params, *, resume_after=None):
            if resume_after is not None and len(self.calls) < 12:
                self.calls.append(("start", "x", 0, resume_after))
                raise TransportError("refused")
            return super().start(params, resume_after=resume_after)

    tr = EmptyResumes(drop_at=4)
    us, _ = script(tr, behaviour=BehaviourSpec(resume=True, max_reconnects=8, reconnect_wait_s=1))
    (a,) = us.run_session()
    assert waits == [1, 2, 4, 8, 8, 8, 8]
    assert a.reconnects == 8 and a.outcome == DROPPED


class ChainTransport(ScriptedTransport):
    """Answers every stream with a response id and records each request's extra fields."""

    def __init__(self) -> None:
        super().__init__(batch=100)
        self.extras: list[dict] = []
        self.lengths: list[int] = []

    def start(self, params: StreamParams, *, resume_after: int | None = None) -> Started:
        self.extras.append(dict(params.extra))
        self.lengths.append(params.n_tokens)
        started = super().start(params, resume_after=resume_after)
        done = self._queue[-1]
        assert isinstance(done, Done)
        self._queue[-1] = replace(done, response_id=f"resp_{len(self.extras)}")
        return started


def test_chain_continues_the_previous_response_with_drawn_lengths_and_tool_calls() -> None:
    spec = SessionSpec(turns=4, think_s=0.8, think_min_s=0.1, think_dist="uniform", chain=True)
    stream = StreamSpec(tokens=80, tokens_min=20)
    tr = ChainTransport()
    us, _ = script(tr, stream=stream, session=spec)
    us.plan = replace(us.plan, model="m-x")
    accts = us.run_session()
    assert [a.outcome for a in accts] == [OK] * 4
    assert tr.extras == [
        {"model": "m-x"},
        {"model": "m-x", "previous_response_id": "resp_1"},
        {"model": "m-x", "previous_response_id": "resp_2"},
        {"model": "m-x", "previous_response_id": "resp_3"},
    ]
    assert all(20 <= n <= 80 for n in tr.lengths) and len(set(tr.lengths)) > 1
    assert [a.labels.tokens_expected for a in accts] == tr.lengths
    thinks = [c[1] for c in tr.calls if c[0] == "idle"]
    assert len(thinks) == 3 and all(0.1 <= t <= 0.8 for t in thinks)
    # the same draws on another arm (same seed, worker, user): the same chain
    tr2 = ChainTransport()
    us2, _ = script(tr2, arm="ws", stream=stream, session=spec)
    us2.run_session()
    assert tr2.lengths == tr.lengths and [c for c in tr2.calls if c[0] == "idle"] == [
        c for c in tr.calls if c[0] == "idle"
    ]
    # a new session starts a new chain: no previous response
    us.run_session()
    assert tr.extras[4] == {"model": "m-x"}


def test_unknown_schedule_records_no_expectations() -> None:
    """Your own endpoint: no expected length (integrity not measured), no scheduled TTFT
    or gap — never the configured values passed off as the server's."""
    tr = ScriptedTransport()
    us, _ = script(tr)
    us.plan = replace(us.plan, schedule_known=False)
    (a,) = us.run_session()
    assert a.outcome == OK and a.n_lost is None
    row = a.streams_row()
    assert row["tokens_expected"] is None and row["ttft_ms_sched"] is None
    assert row["gap_ms_sched"] is None
