"""The protocol-neutral session script: the same turns, think times, cancels, aborts and
resumes on both arms, driving a `loadtests.transport.Transport`.

Determinism: each user draws think times and cancel decisions from its own RNG seeded by
(phase seed, worker index, user index), and draws them in the same order whatever happens
on the wire, so the SSE and WS arms of one repetition send the same stream ids, seeds and
behaviour in the same order. Stream ids are ``<seed>.<worker>.<user>.<session>.<turn>``.

A resume after a drop (server drop_after, client abort, network) reconnects at once on
both arms — no EventSource `retry:` wait — so the drop→next-token gap measures the
protocol and server, not a configured delay. Without resume a drop ends the stream (the
rest is lost), or with `behaviour.restart` the request is sent again from the start.

Dead peers: with `behaviour.dead_after_heartbeats` (or `dead_after_s`) a stream's
connection that stays silent that long — no token, no heartbeat, nothing — is declared
dead (core.client.deadpeer.SilenceWatch), dropped (`Transport.abort`) and recovered like
any other drop; the stream's record counts it in `dead_declared`.

Each turn after the first continues the session's last answer: formats with a response id
(`Done.response_id`) send it as ``previous_response_id``. In an agent chain
(``session.chain``) the think time is the client's tool call: a turn's ``t_sched_ns`` is
the moment the tool result is ready, so first token − t_sched − the scheduled TTFT is what
the transport added. Against a foreign server
(`SessionPlan.schedule_known` False) nothing of the synthetic schedule is recorded: no
expected length, no scheduled TTFT or gap — integrity and schedule figures are not measured.
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
from core.client.deadpeer import SilenceWatch
from core.formats.base import EXTRA_MODEL, EXTRA_PREVIOUS_RESPONSE
from core.scenario import BehaviourSpec, Scenario, SessionSpec, StreamSpec
from core.schedule import StreamParams, first_offset_ns
from loadtests.inbox import Take
from loadtests.transport import (
    Closed,
    Done,
    Failed,
    FirstByte,
    FirstEvent,
    Opened,
    RecordSink,
    Started,
    StreamEvent,
    Token,
    Transport,
    TransportError,
    Usage,
)


@dataclass(frozen=True)
class SessionPlan:
    """What every session of a phase does (the scenario's stream/session/behaviour)."""

    stream: StreamSpec
    session: SessionSpec
    behaviour: BehaviourSpec
    #: Declare a stream's connection dead after this long without a byte (0 = never):
    #: `BehaviourSpec.silence_s` of the scenario's server heartbeat.
    silence_s: float = 0.0
    #: The server follows the synthetic schedule (a reference server; see the docstring).
    schedule_known: bool = True
    #: The model name the format's request carries (None: the format's default).
    model: str | None = None

    @classmethod
    def from_scenario(
        cls, s: Scenario, *, schedule_known: bool = True, model: str | None = None
    ) -> SessionPlan:
        silence_s = s.behaviour.silence_s(s.server)
        return cls(s.stream, s.session, s.behaviour, silence_s, schedule_known, model)


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


@dataclass(frozen=True)
class TurnDraw:
    """One turn's decisions, drawn before it runs (see `draw_turn`)."""

    cancel: bool  # cancel this turn's stream after `behaviour.cancel_after` tokens
    think_s: float  # think time after it
    tokens: int  # its length (`stream.tokens`, or drawn from [tokens_min, tokens])


def stream_params(
    spec: StreamSpec,
    seed: int,
    stream_id: str,
    tokens: int | None = None,
    extra: dict[str, str] | None = None,
) -> StreamParams:
    """The request of one stream: the scenario's [stream] with its seed, id, drawn length
    (None: the scenario's) and the format's extra fields."""
    return StreamParams(
        seed=seed,
        tokens=tokens if tokens is not None else spec.tokens,
        ttft_ms=spec.ttft_ms,
        gap_ms=spec.gap_ms,
        jitter=spec.jitter,
        stream=stream_id,
        pause_ms=spec.pause_ms,
        pause_at=spec.pause_at,
        drop_after=spec.drop_after or None,
        extra=dict(extra or {}),
    )


def stream_request(
    ids: UserIds,
    spec: StreamSpec,
    session: int,
    turn: int,
    k: int,
    users_target: int | None,
    *,
    tokens: int | None = None,
    extra: dict[str, str] | None = None,
    schedule_known: bool = True,
) -> tuple[StreamLabels, StreamParams]:
    """The labels and request of a user's `k`-th stream (its `turn` of `session`): id
    ``<phase seed>.<worker index>.<user>.<session>.<turn>``, seed = phase seed + k. Every
    client (Locust's, a browser page's) names its streams by this one rule."""
    stream_id = f"{ids.seed}.{ids.worker_index}.{ids.user}.{session}.{turn}"
    params = stream_params(spec, ids.seed + k, stream_id, tokens, extra)
    known = schedule_known  # a reference server's synthetic schedule (SessionPlan)
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
        tokens_expected=params.n_tokens if known else None,
        # this stream's own first-token offset (jitter, a pause at 0 included)
        ttft_ms_sched=first_offset_ns(params) / 1e6 if known else None,
        gap_ms_sched=spec.gap_ms if known else None,
        users_target=users_target,
        scenario=ids.scenario,
        variant=ids.variant,
        rep=ids.rep,
    )
    return labels, params


def user_rng(ids: UserIds) -> random.Random:
    """The RNG of one user's think times, cancel decisions and drawn lengths."""
    return random.Random(f"{ids.seed}|{ids.worker_index}|{ids.user}")


def arrival_rng(seed: int, worker_index: int, user: int) -> random.Random:
    """The RNG of one user's session arrivals in the open model (exponential gaps)."""
    return random.Random(f"arrivals|{seed}|{worker_index}|{user}")


def draw_turn(rng: random.Random, plan: SessionPlan) -> TurnDraw:
    """A turn's cancel decision, think time and length, drawn in this order for every turn
    whatever happens on the wire — so every client (Locust's or a browser page, which gets
    them pre-drawn) makes the same decisions for the same user."""
    cancel = rng.random() < plan.behaviour.cancel_prob
    spec, s = plan.session, plan.stream
    if spec.think_s <= 0:
        think = 0.0
    elif spec.think_dist == "exp":
        think = rng.expovariate(1.0 / spec.think_s)
    elif spec.think_dist == "uniform":
        think = rng.uniform(spec.think_min_s, spec.think_s)
    else:
        think = spec.think_s
    tokens = rng.randint(s.tokens_min, s.tokens) if s.tokens_min > 0 else s.tokens
    return TurnDraw(cancel, think, tokens)


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
        previous: str | None = None  # the API's id of the last answer: the next continues it
        try:
            for turn in range(spec.turns):
                if turn and self.should_stop():
                    break
                draw = draw_turn(self.rng, self.plan)
                t_sched = (
                    t_sched_ns if turn == 0 and t_sched_ns is not None else time.monotonic_ns()
                )
                acct = self._turn(session, turn, t_sched, draw.cancel, previous, draw.tokens)
                previous = acct.response_id
                done.append(acct)
                if turn + 1 < spec.turns and draw.think_s > 0:
                    # a lost connection is fine here: the next turn's prepare() reconnects
                    with contextlib.suppress(TransportError):
                        self.transport.idle(draw.think_s)
        finally:
            with contextlib.suppress(TransportError):
                self.transport.close()
        return done

    def _extra(self, previous: str | None) -> dict[str, str]:
        """What the format's request carries besides the synthetic model's fields."""
        extra = {}
        if self.plan.model is not None:
            extra[EXTRA_MODEL] = self.plan.model
        if previous:
            extra[EXTRA_PREVIOUS_RESPONSE] = previous
        return extra

    def _turn(
        self,
        session: int,
        turn: int,
        t_sched: int,
        cancel: bool,
        previous: str | None = None,
        tokens: int | None = None,
    ) -> StreamAccount:
        """One stream; `previous` is the API's id of the session's last answer (a provider
        format continues the conversation from it: ``previous_response_id``); `tokens` its
        drawn length (None: the scenario's)."""
        labels, params = stream_request(
            self.ids,
            self.plan.stream,
            session,
            turn,
            self.streams,
            self.users_target(),
            tokens=tokens,
            extra=self._extra(previous),
            schedule_known=self.plan.schedule_known,
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
        self._retries_left = b.connect_retries
        self._unproductive = 0  # reconnect attempts in a row that brought no token
        self._rx_at_reconnect = 0
        try:
            tr.prepare()
            started = tr.start(params)
        except TransportError as exc:
            # on a bad network (a dead-peer watch or connect_retries) the same as a drop
            # before the first token: retried per the behaviour; elsewhere (a refusal, a
            # certificate the client rejects) an error at once. The stream's clocks start
            # at this first attempt (the user is waiting already)
            acct.sent(time.monotonic_ns())
            self._unproductive = 1
            bad_network = b.connect_retries > 0 or self.plan.silence_s > 0
            retried = self._resume(acct, params) if bad_network else None
            if retried is None:
                acct.finish(time.monotonic_ns(), ERROR, acct.error or str(exc))
                return
            started = retried
        else:
            self._started(acct, started)
        deadline = started.t_send_ns + int(b.stream_timeout_s * 1e9)
        acts = _Thresholds(
            b.cancel_after if cancel else None,
            b.client_abort_after if b.client_abort_after > 0 else None,
        )
        silence_ns = int(self.plan.silence_s * 1e9)
        watch = SilenceWatch(silence_ns, started.t_send_ns) if silence_ns > 0 else None
        while True:
            wait = deadline if watch is None else watch.wait_until(deadline)
            take = _taker(acct, acts.next(), self._conn_uid, self._reused)
            try:
                events = tr.poll(wait, take)
            except TransportError as exc:  # e.g. a pong could not be sent: the link is gone
                events = [Closed(time.monotonic_ns(), "error", str(exc))]
            acct.add_bytes(tr.take_bytes())
            if watch is not None:  # tokens recorded in the reader's pass are heard too
                if acct.t_recv_ns:
                    watch.heard(acct.t_recv_ns[-1])
                if events:
                    watch.heard(events[-1].t_ns)
            step = self._act(acct, params, acts, watch)  # after what the transport recorded
            if step is _ENDED:
                return
            if step is _RESUMED:
                continue  # the events held behind that token belong to the old connection
            if not events:
                t = time.monotonic_ns()
                if watch is not None and wait < deadline and t >= wait:
                    if not watch.expired(t):
                        continue  # heard from the peer since: wait on
                    why = f"dead peer: nothing read for {self.plan.silence_s:g} s"
                    tr.abort(why)
                    acct.dropped(t, dead=True)
                    restarted = self._resume(acct, params)
                    if restarted is None:
                        acct.finish(t, DROPPED, why)
                        return
                    watch.restart(restarted.t_send_ns)
                    continue
                with contextlib.suppress(TransportError):
                    tr.cancel("close")
                acct.finish(t, TIMEOUT, f"no done within {b.stream_timeout_s:g} s")
                return
            for ev in events:
                recorded = take(ev)  # what the transport did not record, recorded here
                if recorded is not None:
                    if recorded:
                        step = self._act(acct, params, acts, watch)
                        if step is _ENDED:
                            return
                        if step is _RESUMED:
                            break  # later events of this batch belong to the dead connection
                elif isinstance(ev, Done):
                    acct.done(ev.count, ev.sha256, ev.response_id)
                    tr.finish_stream(ev.t_ns)
                    acct.finish(ev.t_ns, OK)
                    return
                elif isinstance(ev, Failed):
                    tr.finish_stream(ev.t_ns)
                    acct.finish(ev.t_ns, ERROR, ev.error)
                    return
                elif isinstance(ev, Closed):
                    acct.dropped(ev.t_ns)
                    restarted = self._resume(acct, params)
                    if restarted is None:
                        tr.finish_stream(ev.t_ns)
                        acct.finish(ev.t_ns, DROPPED, ev.reason)
                        return
                    if watch is not None:
                        watch.restart(restarted.t_send_ns)
                    break

    def _act(
        self,
        acct: StreamAccount,
        params: StreamParams,
        acts: _Thresholds,
        watch: SilenceWatch | None,
    ) -> object:
        """Cancel or abort once the stream has enough tokens: _ENDED (the stream is over),
        _RESUMED (aborted, and resumed on a new connection; the dead-peer watch restarted)
        or None (nothing to do)."""
        b = self.plan.behaviour
        tr = self.transport
        if acts.cancel_after is not None and acct.n_unique >= acts.cancel_after:
            t = time.monotonic_ns()
            with contextlib.suppress(TransportError):
                tr.cancel(b.cancel_mode)
            acct.finish(t, CANCELLED)
            return _ENDED
        if acts.abort_after is not None and acct.n_unique >= acts.abort_after:
            acts.abort_after = None  # once per stream, like one network failure
            t = time.monotonic_ns()
            tr.abort()
            acct.dropped(t)
            restarted = self._resume(acct, params)
            if restarted is None:
                acct.finish(t, ABORTED, "client abort")
                return _ENDED
            if watch is not None:
                watch.restart(restarted.t_send_ns)
            return _RESUMED
        return None

    def _started(self, acct: StreamAccount, started: Started) -> None:
        acct.sent(started.t_send_ns)
        self._conn_uid, self._reused = started.conn_uid, started.reused
        if started.t_open_ns is not None:
            acct.opened(started.t_open_ns, started.conn_uid, reused=started.reused)

    def _backoff(self) -> None:
        """Wait before an attempt that follows attempts which brought nothing."""
        wait = self.plan.behaviour.reconnect_wait_s
        if self._unproductive and wait > 0:
            time.sleep(wait * min(8, 2 ** (self._unproductive - 1)))

    def _resume(self, acct: StreamAccount, params: StreamParams) -> Started | None:
        """Reconnect and resume after the last token received (or, with `restart`, ask
        again from the start; before any token, retry the connection `connect_retries`
        times whatever the behaviour); None if not allowed or every attempt failed.

        The first attempt after a drop goes at once; attempts after one that brought no
        token wait `reconnect_wait_s`, doubling (at most 8x)."""
        b = self.plan.behaviour
        resume = b.resume and self.transport.resumable  # a provider format cannot resume
        if acct.n_received != self._rx_at_reconnect:
            self._unproductive = 0
        while acct.reconnects < b.max_reconnects:
            retry = not (resume or b.restart)
            if retry and (acct.n_received > 0 or self._retries_left <= 0):
                break
            self._backoff()
            if retry:
                self._retries_left -= 1
            self._rx_at_reconnect = acct.n_received
            self._unproductive += 1
            acct.reconnected(time.monotonic_ns())
            after = None
            if resume:
                after = acct.last_seq if acct.last_seq is not None else -1
            try:
                started = self.transport.start(params, resume_after=after)
            except TransportError as exc:
                acct.error = str(exc)
                continue
            self._started(acct, started)
            return started
        return None


_ENDED = object()  # UserScript._act: the stream is over
_RESUMED = object()  # UserScript._act: aborted and resumed on a new connection


class _Thresholds:
    """The token counts at which the script acts on a stream (None: never)."""

    __slots__ = ("abort_after", "cancel_after")

    def __init__(self, cancel_after: int | None, abort_after: int | None) -> None:
        self.cancel_after = cancel_after
        self.abort_after = abort_after

    def next(self) -> int | None:
        """The smallest count still to act at."""
        if self.cancel_after is None:
            return self.abort_after
        if self.abort_after is None:
            return self.cancel_after
        return min(self.cancel_after, self.abort_after)


def _taker(acct: StreamAccount, act_at: int | None, conn_uid: str, reused: bool) -> Take:
    """What `Transport.poll` hands the events the script only records to (loadtests.inbox):
    content tokens (True once `acct` holds `act_at` unique ones: the script acts then), the
    stream's open (with the connection it came on), its first-byte / first-event stamps and
    the provider's usage counts.
    None for anything else: the script must see it."""
    token = acct.token
    opened = acct.opened

    def take(ev: StreamEvent) -> bool | None:
        kind = type(ev)
        if kind is Token:  # once per token: the hot path
            token(ev.seq, ev.t_ns, ev.t_server_ns, ev.nbytes, ev.text)
            return act_at is not None and acct.n_unique >= act_at
        if kind is Opened:
            opened(ev.t_ns, conn_uid, reused=reused, status=ev.status)
            return False
        if kind is FirstByte:
            acct.first_byte(ev.t_ns)
            return False
        if kind is FirstEvent:
            acct.first_event(ev.t_ns)
            return False
        if kind is Usage:
            acct.usage(ev.input_tokens, ev.output_tokens)
            return False
        return None

    return take
