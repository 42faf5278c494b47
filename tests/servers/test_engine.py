"""In-process tests of the shared emission loop, the lag sketch and the stream registry."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time

import pytest

from core.schedule import StreamParams, StreamPlan, token_texts
from servers import streams as streams_mod
from servers.config import ServerConfig, ServerState
from servers.engine import run_stream, wasted_tokens
from servers.stats import LagSketch, bucket_bounds, bucket_index
from servers.streams import ActiveStream, Outcome, StreamRegistry


class FakeSink:
    """Records (monotonic ns, bytes) per send; can fail on the k-th send."""

    frame = None

    def __init__(self, fail_at: int | None = None, heartbeat: bytes | None = None) -> None:
        self.sent: list[tuple[int, bytes]] = []
        self.fail_at = fail_at
        self.heartbeat = heartbeat
        self.errors = (ConnectionResetError,)
        self.aborted = False

    async def send(self, data: bytes) -> None:
        if self.fail_at is not None and len(self.sent) + 1 >= self.fail_at:
            raise ConnectionResetError("peer gone")
        self.sent.append((time.monotonic_ns(), data))

    def abort(self) -> None:
        self.aborted = True

    def tokens(self) -> list[dict[str, object]]:
        return [json.loads(d) for _, d in self.sent if d.startswith(b"{")]


def _state(heartbeat_s: float = 0.0) -> ServerState:
    return ServerState(ServerConfig(kind="sse", heartbeat_s=heartbeat_s))


def _plan(**kw: object) -> StreamPlan:
    base: dict[str, object] = {"seed": 1, "tokens": 20, "ttft_ms": 2, "gap_ms": 2, "stream": "e"}
    return StreamPlan.build(StreamParams(**{**base, **kw}))  # type: ignore[arg-type]


async def _emit(
    state: ServerState, plan: StreamPlan, sink: FakeSink, start: int = 0, t0: int | None = None
) -> tuple[Outcome, ActiveStream]:
    handle = ActiveStream(plan.params.stream)
    t0 = time.monotonic_ns() if t0 is None else t0
    return await run_stream(state, handle, plan, start, t0, sink), handle


def test_sketch_bucket_roundtrip_and_precision() -> None:
    rng = random.Random(0)
    for us in [0, 1, 63, 64, 65, 127, 128, 1000, 2**20, 2**40] + [
        rng.randrange(0, 10**9) for _ in range(2000)
    ]:
        lo, hi = bucket_bounds(bucket_index(us))
        assert lo <= us < hi
        assert (hi - lo) <= max(1, lo / 32)


def test_sketch_quantiles_and_prometheus_buckets() -> None:
    sk = LagSketch()
    values = list(range(1, 10001))  # µs: 1 µs .. 10 ms, uniform
    for v in values:
        sk.record(v * 1000)  # ns
    sk.record(-5)  # early: clamped, counted
    assert sk.early == 1 and sk.n == 10001
    p50 = sk.quantile_us(0.5)
    p99 = sk.quantile_us(0.99)
    assert p50 is not None and abs(p50 - 5000) / 5000 < 0.04
    assert p99 is not None and abs(p99 - 9_900) / 9_900 < 0.04
    cum = sk.cumulative_le_us([1024, 4096, 1 << 24])
    assert cum[0] == 1 + sum(1 for v in values if v < 1024)  # exact at power-of-two edges
    assert cum[-1] == sk.n


def test_wasted_tokens_counts_due_but_unsent() -> None:
    offs = [0, 10, 20, 30, 40]
    assert wasted_tokens(offs, 100, 2, 135) == 2  # seq 2 (due 120) and 3 (due 130)
    assert wasted_tokens(offs, 100, 2, 115) == 0  # seq 2 not due yet
    assert wasted_tokens(offs, 100, 4, 139) == 0
    assert wasted_tokens(offs, 100, 0, 10**9) == 5


def test_registry_resume_t0_and_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    reg = StreamRegistry()
    plan = _plan(stream="r1")
    reg.remember(plan.params, 12345)
    assert reg.resume_t0(plan, 5, 10**12) == 12345  # known: original schedule
    other = _plan(stream="r1", seed=2)  # same id, different params: re-anchor
    now = 10**12
    t0 = reg.resume_t0(other, 5, now)
    assert t0 + other.offsets[6] == now + (other.offsets[6] - other.offsets[5])
    monkeypatch.setattr(streams_mod, "RECENT_MAX", 3)
    for i in range(10):
        reg.remember(_plan(stream=f"b{i}").params, i)
    assert reg.lookup("b9") is not None and reg.lookup("b0") is None
    monkeypatch.setattr(streams_mod, "RECENT_TTL_S", -1.0)
    assert reg.lookup("b9") is None


def test_tokens_never_early_and_complete() -> None:
    state = _state()
    plan = _plan(tokens=30, gap_ms=3)
    sink = FakeSink()
    t0 = time.monotonic_ns()
    outcome, handle = asyncio.run(_emit(state, plan, sink, t0=t0))
    assert outcome is Outcome.COMPLETED and handle.sent == 30
    toks = sink.tokens()
    assert [(t["i"], t["d"]) for t in toks] == list(enumerate(token_texts(1, "e", 30)))
    for t in toks:
        assert int(t["t"]) >= t0 + plan.offsets[int(t["i"])]  # type: ignore[call-overload]
    st = state.stats
    assert st.tokens_sent == 30 and st.lag.n == 30 and st.lag.early == 0
    assert st.streams_active == 0 and st.streams_completed == 1


def test_due_tokens_still_yield_to_the_loop() -> None:
    """Gap 0: two streams must interleave, not run one after the other (pitfall 11)."""
    state = _state()
    order: list[str] = []

    class Tagged(FakeSink):
        def __init__(self, tag: str) -> None:
            super().__init__()
            self.tag = tag

        async def send(self, data: bytes) -> None:
            order.append(self.tag)

    async def both() -> None:
        a = _plan(stream="a", tokens=50, ttft_ms=0, gap_ms=0)
        b = _plan(stream="b", tokens=50, ttft_ms=0, gap_ms=0)
        await asyncio.gather(_emit(state, a, Tagged("a")), _emit(state, b, Tagged("b")))

    asyncio.run(both())
    switches = sum(1 for x, y in itertools.pairwise(order) if x != y)
    assert len(order) == 100 and switches >= 50


def test_failed_write_is_a_disconnect_with_waste() -> None:
    state = _state()
    sink = FakeSink(fail_at=5)
    outcome, handle = asyncio.run(_emit(state, _plan(), sink))
    assert outcome is Outcome.DISCONNECTED and handle.sent == 4
    assert 1 <= state.stats.tokens_wasted <= 2
    assert state.stats.streams_disconnected == 1 and state.stats.streams_active == 0
    assert state.registry.active() == []


def test_stop_cancels_within_a_gap() -> None:
    state = _state()
    plan = _plan(tokens=1000, gap_ms=50)

    async def go() -> tuple[Outcome, ActiveStream, float]:
        handle = ActiveStream("e", secret="s3cret")
        other = ActiveStream("e")  # same id, no secret (a WS stream): never cancelled by HTTP
        task = asyncio.create_task(run_stream(state, handle, plan, 0, time.monotonic_ns(), sink))
        state.registry.add(other)
        await asyncio.sleep(0.12)
        assert state.registry.cancel("e", "guess") == 0
        t = time.monotonic()
        assert state.registry.cancel("e", "s3cret") == 1
        assert other.stop_reason is None
        state.registry.discard(other)
        outcome = await task
        return outcome, handle, time.monotonic() - t

    sink = FakeSink()
    outcome, handle, took = asyncio.run(go())
    assert outcome is Outcome.CANCELLED and took < 0.05
    assert state.stats.tokens_wasted == 0 and state.stats.streams_cancelled == 1
    assert handle.sent == len(sink.tokens()) >= 1


def test_drop_after_aborts_once() -> None:
    state = _state()
    plan = _plan(drop_after=7)
    sink = FakeSink()
    outcome, handle = asyncio.run(_emit(state, plan, sink))
    assert outcome is Outcome.DROPPED and sink.aborted and handle.sent == 7
    resumed = FakeSink()
    outcome2, h2 = asyncio.run(_emit(state, plan, resumed, start=7))
    assert outcome2 is Outcome.COMPLETED and not resumed.aborted and h2.sent == 13
    # a client that lost the cut connection's last tokens resumes before the drop point:
    # the fault is not injected again
    early = FakeSink()
    outcome3, h3 = asyncio.run(_emit(state, plan, early, start=5))
    assert outcome3 is Outcome.COMPLETED and not early.aborted and h3.sent == 15


def test_heartbeats_fill_a_pause() -> None:
    state = _state(heartbeat_s=0.05)
    plan = _plan(tokens=3, pause_ms=300, pause_at=1)
    sink = FakeSink(heartbeat=b": keepalive\n\n")
    outcome, _ = asyncio.run(_emit(state, plan, sink))
    beats = [d for _, d in sink.sent if d.startswith(b":")]
    assert outcome is Outcome.COMPLETED and 3 <= len(beats) <= 9
    assert state.stats.heartbeats_sent == len(beats)


def test_resume_catch_up_is_not_lag() -> None:
    state = _state()
    plan = _plan(tokens=40, ttft_ms=0, gap_ms=5)
    t0 = time.monotonic_ns() - 100_000_000  # tokens 0..20 already due
    sink = FakeSink()
    outcome, handle = asyncio.run(_emit(state, plan, sink, start=10, t0=t0))
    assert outcome is Outcome.COMPLETED and handle.sent == 30
    assert 10 <= state.stats.lag.n <= 20  # only tokens due after the resume are lag samples


class StuckSink(FakeSink):
    """A peer that stops reading after `k` tokens: the (k+1)-th write waits for ever, then
    fails (`fail=True`: the SSE case, the transport reports the close) or is cancelled by
    a stop from elsewhere (the WS case, the read loop saw the close)."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.stuck = asyncio.Event()
        self.release: asyncio.Future[None] | None = None

    async def send(self, data: bytes) -> None:
        if len(self.sent) >= self.k:
            self.release = asyncio.get_running_loop().create_future()
            self.stuck.set()
            await self.release  # raises what the test sets
        self.sent.append((time.monotonic_ns(), data))


@pytest.mark.parametrize("how", ["write fails", "stopped elsewhere", "cancelled"])
def test_waste_is_due_but_unsent_whoever_notices(how: str) -> None:
    """Item 4: the same client behaviour (reads 5 tokens, then nothing, then leaves) gives
    the same count whether the write fails (SSE) or another task stops the stream (WS read
    loop, cancel): every token due by the stop that was not written."""
    state = _state()
    plan = _plan(tokens=400, ttft_ms=0, gap_ms=1)
    sink = StuckSink(k=5)

    async def go() -> tuple[Outcome, int, int]:
        handle = ActiveStream("e")
        t0 = time.monotonic_ns()
        task = asyncio.create_task(run_stream(state, handle, plan, 0, t0, sink))
        await sink.stuck.wait()
        await asyncio.sleep(0.15)  # ~150 more tokens fall due while the write waits
        if how == "write fails":
            assert sink.release is not None
            sink.release.set_exception(ConnectionResetError("peer gone"))
        else:
            handle.stop(Outcome.DISCONNECTED if how == "stopped elsewhere" else Outcome.CANCELLED)
        outcome = await task
        return outcome, t0, time.monotonic_ns()

    outcome, t0, after = asyncio.run(go())
    assert outcome is (Outcome.CANCELLED if how == "cancelled" else Outcome.DISCONNECTED)
    wasted = state.stats.tokens_wasted
    due_by_end = sum(1 for off in plan.offsets if t0 + off <= after)
    assert wasted >= 100, wasted  # the pile-up while the peer did not read is counted
    assert 5 + wasted <= due_by_end  # sent + wasted = due by the stop, never more


def test_stop_before_the_task_first_runs_ends_it_at_once() -> None:
    """A WS client's start and cancel (or its close) can arrive in one read: the stream is
    stopped before its task ever ran. It must end at once, not run its whole schedule."""
    state = _state()
    plan = _plan(tokens=5, ttft_ms=600_000)  # parked for 10 minutes

    async def go() -> tuple[Outcome, ActiveStream, float]:
        handle = ActiveStream("e")
        task = asyncio.create_task(run_stream(state, handle, plan, 0, time.monotonic_ns(), sink))
        handle.stop(Outcome.CANCELLED)  # task not started: nothing to cancel yet
        t = time.monotonic()
        outcome = await asyncio.wait_for(task, 2)
        return outcome, handle, time.monotonic() - t

    sink = FakeSink()
    outcome, handle, took = asyncio.run(go())
    assert outcome is Outcome.CANCELLED and handle.sent == 0 and not sink.sent
    assert took < 0.5 and state.stats.streams_cancelled == 1 and state.stats.tokens_wasted == 0
