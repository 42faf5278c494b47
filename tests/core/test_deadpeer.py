"""Dead-peer detection, sans I/O: the silence rule (core.client.deadpeer) and the heartbeat
events the client core emits (an SSE comment, a WS ping) — the contract every transport
shell relies on (loadtests.session drives the watch; tests/loadtests/test_deadpeer.py
checks it end to end)."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from core.client.deadpeer import SilenceWatch, silence_s
from core.client.events import FirstByte, FirstEvent, Heartbeat, Token
from core.scenario import BehaviourSpec, ScenarioError, ServerSpec, scenario_from_dict
from core.schedule import token_payload
from tests.core.test_client_sse import NATIVE, PLAN, chunked, fresh, kinds, run
from tests.core.test_client_ws import SID, opened, text


def _stream_events(out: list) -> list:
    """Without FirstByte / FirstEvent (once per response: not what these tests are about)."""
    return [e for e in out if not isinstance(e, FirstByte | FirstEvent)]


def test_declared_dead_exactly_at_the_silence_never_before() -> None:
    w = SilenceWatch(1_000, t_start_ns=100)
    assert w.dead_by_ns == 1_100 and w.wait_until(10_000) == 1_100
    assert not w.expired(1_099)
    assert w.expired(1_100)


def test_the_wait_stays_put_while_the_peer_is_heard_then_moves_once() -> None:
    """Hearing the peer does not move the transport's deadline (no timer per token); the
    wait ends at the old instant, `expired` says no and the next wait is the new dead-by."""
    w = SilenceWatch(1_000, t_start_ns=0)
    for t in range(10, 1_000, 10):
        w.heard(t)
        assert w.wait_until(50_000) == 1_000
    assert not w.expired(1_000)
    assert w.wait_until(50_000) == 1_990 == w.dead_by_ns
    assert w.expired(1_990)


def test_stream_deadline_caps_the_wait_and_old_stamps_are_ignored() -> None:
    w = SilenceWatch(1_000, t_start_ns=500)
    assert w.wait_until(800) == 800
    w.heard(400)  # a stamp from before the request (a late read): never moves it back
    assert w.dead_by_ns == 1_500


def test_restart_counts_silence_from_the_new_connection() -> None:
    w = SilenceWatch(1_000, t_start_ns=0)
    assert w.expired(1_000)
    w.restart(5_000)
    assert w.wait_until(10**9) == 6_000 and not w.expired(5_999) and w.expired(6_000)


def test_silence_rule_from_the_scenario() -> None:
    assert silence_s(2.0, 3.0, 0.0) == 6.0
    assert silence_s(0.0, 0.0, 4.5) == 4.5
    assert silence_s(15.0, 0.0, 0.0) == 0.0
    with pytest.raises(ValueError):
        silence_s(0.0, 3.0, 0.0)
    with pytest.raises(ValueError):
        SilenceWatch(0, 0)
    b = BehaviourSpec(dead_after_heartbeats=2.5)
    assert b.silence_s(ServerSpec(heartbeat_s=2.0)) == 5.0


@pytest.mark.parametrize(
    ("behaviour", "server", "says"),
    [
        ({"dead_after_heartbeats": 3}, {"heartbeat_s": 0}, "needs heartbeats"),
        ({"dead_after_heartbeats": 3, "dead_after_s": 2}, {}, "not both"),
        ({"dead_after_s": -1}, {}, "dead_after_s"),
        ({"restart": True}, {}, "restart needs resume = false"),
    ],
)
def test_scenario_refuses_a_watch_it_cannot_run(behaviour: dict, server: dict, says: str) -> None:
    with pytest.raises(ScenarioError, match=says):
        scenario_from_dict({"name": "x", "behaviour": behaviour, "server": server})


def test_sse_comment_alone_is_a_heartbeat_a_comment_with_tokens_is_not() -> None:
    w = NATIVE.sse_writer(PLAN, retry_ms=3000)
    hb = w.heartbeat
    assert hb is not None
    events = [w.preamble(), w.token(0, 1, PLAN.ids[0]), hb, hb + w.token(1, 2, PLAN.ids[1]), hb]
    wire = chunked(events)
    # cut so that each read carries one chunk: head+preamble+token0 | hb | hb+token1 | hb
    pieces = [b"%x\r\n%s\r\n" % (len(e), e) for e in events]
    first = wire.index(pieces[0])
    marks = [first + sum(len(p) for p in pieces[:i]) for i in (2, 3, 4, 5)]
    out = _stream_events(run(fresh(), wire, marks))  # last read: the end, no done event
    assert kinds(out) == ["Opened", "Token", "Heartbeat", "Token", "Heartbeat", "Closed"]
    assert [e.t_ns for e in out if isinstance(e, Heartbeat)] == [2, 4]


def test_sse_heartbeat_counts_comments_split_across_reads() -> None:
    w = NATIVE.sse_writer(PLAN, retry_ms=3000)
    hb = w.heartbeat
    assert hb is not None
    wire = chunked([w.preamble(), hb, hb])
    cut = wire.index(b": keepalive") + 4  # the first comment is split over two reads
    second = wire.index(b": keepalive", cut) - 4  # the second one's chunk, whole
    out = _stream_events(run(fresh(), wire, [cut, second, len(wire) - 5]))
    assert out[:3] == [out[0], Heartbeat(2), Heartbeat(3)]
    assert kinds(out) == ["Opened", "Heartbeat", "Heartbeat", "Closed"]


def test_ws_ping_is_a_heartbeat_and_is_answered() -> None:
    c, server = opened()
    got: list = []
    c.feed(5, Frame(Opcode.PING, b"").serialize(mask=False), got)
    assert got == [Heartbeat(5)]
    wire = text(token_payload(SID, 0, 5, 1)) + Frame(Opcode.PING, b"x").serialize(mask=False)
    c.feed(6, wire, got)
    assert [type(e) for e in _stream_events(got)] == [Heartbeat, Token, Heartbeat]
    server.receive_data(c.data_to_send())
    assert [f.opcode for f in server.events_received()] == [Opcode.PONG, Opcode.PONG]
