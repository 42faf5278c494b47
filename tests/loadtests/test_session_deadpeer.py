"""The session script's dead-peer watch against a scripted transport on a scripted clock:
when a connection falls silent it is declared dead exactly `silence` after the last thing
heard, dropped (with the reason in its record) and recovered per the behaviour; heartbeats
keep a slow stream alive; and the read deadline handed to the transport does not move on
every token (a transport re-arms its timer when it changes). These are the contract a
transport rewrite must keep (with tests/loadtests/test_deadpeer.py, end to end)."""

from __future__ import annotations

import time

import pytest

from core.accounting import DROPPED, OK, TIMEOUT
from core.scenario import BehaviourSpec, SessionSpec, StreamSpec
from core.schedule import StreamParams, done_summary, token_texts
from loadtests.memsink import MemorySink
from loadtests.session import SessionPlan, UserIds, UserScript
from loadtests.transport import Done, Heartbeat, Opened, Started, StreamEvent, Token, Transport

GAP = 100_000  # ns between scripted events
SILENCE_S = 0.001  # 1 ms = 10 gaps


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000

    def __call__(self) -> int:
        return self.t


class SilentTransport(Transport):
    """Each connection serves the stream from `first` on, one event per GAP. The first
    connection goes silent after token `silent_after` (nothing more, nothing closed);
    `pause` = (seq, n_gaps, heartbeat_every): a pause before seq on the first connection,
    with heartbeats in it (a resume continues on the schedule, the pause behind it)."""

    protocol = "fake"

    def __init__(
        self,
        clock: Clock,
        *,
        silent_after: int | None = None,
        pause: tuple[int, int, int] | None = None,
    ) -> None:
        self.clock = clock
        self.silent_after = silent_after
        self.pause = pause
        self.calls: list[tuple] = []
        self.deadlines: list[int] = []
        self.conns = 0
        self.queue: list[StreamEvent] = []

    def prepare(self) -> None:
        pass

    def start(self, params: StreamParams, *, resume_after: int | None = None) -> Started:
        self.conns += 1
        self.calls.append(("start", resume_after))
        t = self.clock()
        n = params.n_tokens
        texts = token_texts(params.seed, params.stream, n)
        first = 0 if resume_after is None or resume_after < 0 else resume_after + 1
        q: list[StreamEvent] = [Opened(t + GAP, 200)]
        at = t + GAP
        for seq in range(first, n):
            if self.pause is not None and seq == self.pause[0] and self.conns == 1:
                _, gaps, every = self.pause
                for k in range(1, gaps + 1):
                    at += GAP
                    if every and k % every == 0:
                        q.append(Heartbeat(at))
            at += GAP
            q.append(Token(at, seq, at - 10, 40, texts[seq]))
            if self.conns == 1 and seq == self.silent_after:
                self.queue = q
                return Started(t, f"c{self.conns}", False)
        s = done_summary(texts)
        q.append(Done(at + GAP, s["count"], s["sha256"]))
        self.queue = q
        return Started(t, f"c{self.conns}", False)

    def poll(self, deadline_ns: int, take: object = None) -> list[StreamEvent]:
        # one event per poll, none recorded here (`take` unused): the script records them
        self.deadlines.append(deadline_ns)
        if self.queue and self.queue[0].t_ns <= deadline_ns:
            ev = self.queue.pop(0)
            self.clock.t = max(self.clock.t, ev.t_ns)
            return [ev]
        self.clock.t = max(self.clock.t, deadline_ns)  # nothing came: the wait ran out
        return []

    def take_bytes(self) -> int:
        return 0

    def finish_stream(self, t_ns: int) -> None:
        pass

    def cancel(self, mode: str) -> None:
        self.calls.append(("cancel", mode))
        self.queue = []

    def abort(self, reason: str = "client abort") -> None:
        self.calls.append(("abort", reason, self.clock()))
        self.queue = []

    def idle(self, seconds: float) -> None:
        pass

    def close(self) -> None:
        pass

    @property
    def open_connections(self) -> int:
        return 1


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(time, "monotonic_ns", c)
    return c


def one_stream(tr: Transport, behaviour: BehaviourSpec, silence_s: float = SILENCE_S):
    plan = SessionPlan(StreamSpec(tokens=10), SessionSpec(), behaviour, silence_s)
    sink = MemorySink()
    (acct,) = UserScript(plan, UserIds("ph", "sse", "h-1", 0, 0, 7), tr, sink).run_session()
    return acct


def test_silent_connection_declared_dead_exactly_then_resumed(clock: Clock) -> None:
    tr = SilentTransport(clock, silent_after=4)
    a = one_stream(tr, BehaviourSpec(resume=True, stream_timeout_s=10))
    assert a.outcome == OK and a.checksum_ok
    assert (a.n_lost, a.n_dup, a.dead_declared, a.reconnects) == (0, 0, 1, 1)
    aborts = [c for c in tr.calls if c[0] == "abort"]
    assert len(aborts) == 1 and aborts[0][1] == "dead peer: nothing read for 0.001 s"
    last_heard = a.t_recv_ns[4]  # token 4, the last thing the dead connection carried
    assert a.t_drop_ns == [last_heard + int(SILENCE_S * 1e9)] == [aborts[0][2]]
    assert ("start", 4) in tr.calls  # resumed after the last token received
    row = a.streams_row()
    assert row["dead_declared"] == 1 and row["t_drops_ns"] == a.t_drop_ns


def test_silent_connection_without_resume_loses_the_rest(clock: Clock) -> None:
    a = one_stream(SilentTransport(clock, silent_after=4), BehaviourSpec(resume=False))
    assert a.outcome == DROPPED and a.error.startswith("dead peer")
    assert (a.n_unique, a.n_lost, a.dead_declared, a.reconnects) == (5, 5, 1, 0)


def test_silent_connection_restarted_reads_the_answer_again(clock: Clock) -> None:
    tr = SilentTransport(clock, silent_after=4)
    a = one_stream(tr, BehaviourSpec(resume=False, restart=True))
    assert [c for c in tr.calls if c[0] == "start"] == [("start", None), ("start", None)]
    assert a.outcome == OK and a.checksum_ok
    assert (a.n_unique, a.n_lost, a.n_dup, a.n_received) == (10, 0, 5, 15)


def test_heartbeats_keep_a_paused_stream_alive(clock: Clock) -> None:
    """A pause of 5 silences with a heartbeat every 4 gaps (under the 10-gap silence)."""
    tr = SilentTransport(clock, pause=(5, 50, 4))
    a = one_stream(tr, BehaviourSpec(resume=True))
    assert a.outcome == OK and a.dead_declared == 0 and a.reconnects == 0
    assert not [c for c in tr.calls if c[0] == "abort"]


def test_the_same_pause_without_heartbeats_is_declared_dead(clock: Clock) -> None:
    tr = SilentTransport(clock, pause=(5, 50, 0))
    a = one_stream(tr, BehaviourSpec(resume=True))
    assert a.dead_declared == 1 and a.reconnects == 1 and a.outcome == OK


def test_read_deadline_moves_once_per_silence_not_per_token(clock: Clock) -> None:
    tr = SilentTransport(clock)
    plan_tokens = 200  # 200 gaps = 20 silences
    plan = SessionPlan(StreamSpec(tokens=plan_tokens), SessionSpec(), BehaviourSpec(), SILENCE_S)
    (a,) = UserScript(plan, UserIds("ph", "sse", "h", 0, 0, 7), tr, MemorySink()).run_session()
    assert a.outcome == OK and a.dead_declared == 0
    changes = sum(1 for x, y in zip(tr.deadlines, tr.deadlines[1:], strict=False) if x != y)
    assert len(tr.deadlines) > plan_tokens and changes <= 25


def test_without_a_watch_a_silent_stream_waits_for_its_timeout(clock: Clock) -> None:
    a = one_stream(
        SilentTransport(clock, silent_after=4), BehaviourSpec(stream_timeout_s=0.05), 0.0
    )
    assert a.outcome == TIMEOUT and a.dead_declared == 0
