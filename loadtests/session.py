"""The protocol-neutral session script: the same turns, think times, cancels, aborts and
resumes on both arms, driving a `loadtests.transport.Transport`.

Determinism: each user draws think times and cancel decisions from its own RNG seeded by
(phase seed, worker index, user index), and draws them in the same order whatever happens
on the wire, so the SSE and WS arms of one repetition send the same stream ids, seeds and
behaviour in the same order. Stream ids are ``<seed>.<worker>.<user>.<session>.<turn>``.

A resume after a drop (server drop_after, client abort, network) reconnects at once on
both arms — no EventSource `retry:` wait — so the drop→next-token gap measures the
protocol and server, not a configured delay.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.accounting import (
    ABORTED,
    CANCELLED,
    DROPPED,
    ERROR,
    OK,
    STOPPED,
    TIMEOUT,
    StreamAccount,
    StreamLabels,
)
from core.scenario import BehaviourSpec, Scenario, SessionSpec, StreamSpec
from core.schedule import StreamParams
from loadtests.transport import (
    Closed,
    Done,
    Failed,
    Opened,
    RecordSink,
    Started,
    Token,
    Transport,
    TransportError,
)


@dataclass(frozen=True)
class SessionPlan:
    """What every session of a phase does (the scenario's stream/session/behaviour)."""

    stream: StreamSpec
    session: SessionSpec
    behaviour: BehaviourSpec

    @classmethod
    def from_scenario(cls, s: Scenario) -> SessionPlan:
        return cls(s.stream, s.session, s.behaviour)


@dataclass(frozen=True)
class UserIds:
    """Where a user's records come from."""

    phase: str
    arm: str
    worker: str  # host-pid
    worker_index: int  # Locust worker index (0 without --processes)
    user: int  # user index within the worker
    seed: int  # the phase seed (same on both arms of one repetition)
    scenario: str | None = None  # the phase's scenario, variant, repetition (record columns)
    variant: str | None = None
    rep: int | None = None


def stream_params(spec: StreamSpec, seed: int, stream_id: str) -> StreamParams:
    """The request of one stream: the scenario's [stream] with its seed and id."""
    return StreamParams(
        seed=seed,
        tokens=spec.tokens,
        ttft_ms=spec.ttft_ms,
        gap_ms=spec.gap_ms,
        jitter=spec.jitter,
        stream=stream_id,
        pause_ms=spec.pause_ms,
        pause_at=spec.pause_at,
        drop_after=spec.drop_after or None,
    )


def stream_request(
    ids: UserIds, spec: StreamSpec, session: int, turn: int, k: int, users_target: int | None
) -> tuple[StreamLabels, StreamParams]:
    """The labels and request of a user's `k`-th stream (its `turn` of `session`): id
    ``<phase seed>.<worker index>.<user>.<session>.<turn>``, seed = phase seed + k. Every
    client (Locust's, a browser page's) names its streams by this one rule."""
    stream_id = f"{ids.seed}.{ids.worker_index}.{ids.user}.{session}.{turn}"
    params = stream_params(spec, ids.seed + k, stream_id)
    labels = StreamLabels(
        stream_uid=f"{ids.phase}/{stream_id}",
        phase=ids.phase,
        arm=ids.arm,
        worker=ids.worker,
        user=ids.user,
        session=session,
        turn=turn,
        stream_id=stream_id,
        seed=params.seed,
        tokens_expected=params.n_tokens,
        ttft_ms_sched=spec.ttft_ms,
        gap_ms_sched=spec.gap_ms,
        users_target=users_target,
        scenario=ids.scenario,
        variant=ids.variant,
        rep=ids.rep,
    )
    return labels, params


def user_rng(ids: UserIds) -> random.Random:
    """The RNG of one user's think times and cancel decisions."""
    return random.Random(f"{ids.seed}|{ids.worker_index}|{ids.user}")


def arrival_rng(seed: int, worker_index: int, user: int) -> random.Random:
    """The RNG of one user's session arrivals in the open model (exponential gaps)."""
    return random.Random(f"arrivals|{seed}|{worker_index}|{user}")


def draw_turn(rng: random.Random, plan: SessionPlan) -> tuple[bool, float]:
    """(cancel this turn's stream?, think seconds after it), drawn in this order for every
    turn whatever happens on the wire — so every client (Locust's or a browser page, which
    gets them pre-drawn) makes the same decisions for the same user."""
    cancel = rng.random() < plan.behaviour.cancel_prob
    spec = plan.session
    if spec.think_s <= 0:
        return cancel, 0.0
    if spec.think_dist == "exp":
        return cancel, rng.expovariate(1.0 / spec.think_s)
    return cancel, spec.think_s


class UserScript:
    """Runs one user's sessions over one transport; emits every stream to the sink."""

    def __init__(
        self,
        plan: SessionPlan,
        ids: UserIds,
        transport: Transport,
        sink: RecordSink,
        *,
        on_stream: Callable[[StreamAccount], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        users_target: Callable[[], int | None] = lambda: None,
    ) -> None:
        self.plan = plan
        self.ids = ids
        self.transport = transport
        self.sink = sink
        self.on_stream = on_stream
        self.should_stop = should_stop
        self.users_target = users_target
        self.rng = user_rng(ids)
        self.sessions = 0
        self.streams = 0

    # ------------------------------------------------------------------ sessions
    def run_session(self, t_sched_ns: int | None = None) -> list[StreamAccount]:
        """One session: `turns` streams with think time between them, then close.

        t_sched_ns: when the session should have started (open model); the first stream's
        dispatch delay is measured from it. Later turns are scheduled at the end of think time.
        """
        session = self.sessions
        self.sessions += 1
        spec = self.plan.session
        done: list[StreamAccount] = []
        try:
            for turn in range(spec.turns):
                if turn and self.should_stop():
                    break
                cancel, think = draw_turn(self.rng, self.plan)
                t_sched = (
                    t_sched_ns if turn == 0 and t_sched_ns is not None else time.monotonic_ns()
                )
                done.append(self._turn(session, turn, t_sched, cancel))
                if turn + 1 < spec.turns and think > 0:
                    # a lost connection is fine here: the next turn's prepare() reconnects
                    with contextlib.suppress(TransportError):
                        self.transport.idle(think)
        finally:
            with contextlib.suppress(TransportError):
                self.transport.close()
        return done

    def _turn(self, session: int, turn: int, t_sched: int, cancel: bool) -> StreamAccount:
        labels, params = stream_request(
            self.ids, self.plan.stream, session, turn, self.streams, self.users_target()
        )
        self.streams += 1
        acct = StreamAccount(labels, t_sched_ns=t_sched)
        try:
            self._stream(acct, params, cancel)
        except BaseException:  # GreenletExit / KeyboardInterrupt: the user was stopped
            acct.finish(time.monotonic_ns(), STOPPED, "stopped by the load generator")
            self._emit(acct)
            raise
        self._emit(acct)
        return acct

    def _emit(self, acct: StreamAccount) -> None:
        self.sink.stream(acct)
        if self.on_stream is not None:
            self.on_stream(acct)

    # ------------------------------------------------------------------ one stream
    def _stream(self, acct: StreamAccount, params: StreamParams, cancel: bool) -> None:
        b = self.plan.behaviour
        tr = self.transport
        try:
            tr.prepare()
            started = tr.start(params)
        except TransportError as exc:
            acct.finish(time.monotonic_ns(), ERROR, str(exc))
            return
        self._started(acct, started)
        deadline = started.t_send_ns + int(b.stream_timeout_s * 1e9)
        abort_at = b.client_abort_after if b.client_abort_after > 0 else None
        while True:
            try:
                events = tr.poll(deadline)
            except TransportError as exc:  # e.g. a pong could not be sent: the link is gone
                events = [Closed(time.monotonic_ns(), "error", str(exc))]
            acct.add_bytes(tr.take_bytes())
            if not events:
                t = time.monotonic_ns()
                with contextlib.suppress(TransportError):
                    tr.cancel("close")
                acct.finish(t, TIMEOUT, f"no done within {b.stream_timeout_s:g} s")
                return
            for ev in events:
                if isinstance(ev, Token):
                    acct.token(ev.seq, ev.t_ns, ev.t_server_ns, ev.nbytes, ev.text)
                    if cancel and acct.n_unique >= b.cancel_after:
                        t = time.monotonic_ns()
                        with contextlib.suppress(TransportError):
                            tr.cancel(b.cancel_mode)
                        acct.finish(t, CANCELLED)
                        return
                    if abort_at is not None and acct.n_unique >= abort_at:
                        abort_at = None  # once per stream, like one network failure
                        t = time.monotonic_ns()
                        tr.abort()
                        acct.dropped(t)
                        if not self._resume(acct, params):
                            acct.finish(t, ABORTED, "client abort")
                            return
                        break  # later events of this batch belong to the dead connection
                elif isinstance(ev, Opened):
                    acct.opened(ev.t_ns, self._conn_uid, reused=self._reused, status=ev.status)
                elif isinstance(ev, Done):
                    acct.done(ev.count, ev.sha256)
                    tr.finish_stream(ev.t_ns)
                    acct.finish(ev.t_ns, OK)
                    return
                elif isinstance(ev, Failed):
                    tr.finish_stream(ev.t_ns)
                    acct.finish(ev.t_ns, ERROR, ev.error)
                    return
                elif isinstance(ev, Closed):
                    acct.dropped(ev.t_ns)
                    if not self._resume(acct, params):
                        tr.finish_stream(ev.t_ns)
                        acct.finish(ev.t_ns, DROPPED, ev.reason)
                        return
                    break

    def _started(self, acct: StreamAccount, started: Started) -> None:
        acct.sent(started.t_send_ns)
        self._conn_uid, self._reused = started.conn_uid, started.reused
        if started.t_open_ns is not None:
            acct.opened(started.t_open_ns, started.conn_uid, reused=started.reused)

    def _resume(self, acct: StreamAccount, params: StreamParams) -> bool:
        """Reconnect and resume after the last token received; False if not allowed or failed."""
        b = self.plan.behaviour
        while b.resume and acct.reconnects < b.max_reconnects:
            acct.reconnected(time.monotonic_ns())
            after = acct.last_seq if acct.last_seq is not None else -1
            try:
                started = self.transport.start(params, resume_after=after)
            except TransportError as exc:
                acct.error = str(exc)
                continue
            self._started(acct, started)
            return True
        return False
