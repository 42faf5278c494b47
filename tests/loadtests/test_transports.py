"""Both transports end to end (one user, plain sockets) against the tiny servers and the
reference servers: reconnect accounting, keep-alive / held connections, cancel, errors."""

from __future__ import annotations

import pytest

from core.accounting import ABORTED, CANCELLED, DROPPED, ERROR, OK
from core.scenario import BehaviourSpec, SessionSpec, StreamSpec
from loadtests.memsink import MemorySink
from loadtests.sse_transport import SSETransport
from loadtests.transport import TransportContext

from .conftest import TINY, run_user, start_server, stop_server

SOURCES = [("tiny", "sse"), ("tiny", "ws"), ("ref", "sse"), ("ref", "ws"), ("ref", "ws-websockets")]
REF = [s for s in SOURCES if s[0] == "ref"]

FAST = StreamSpec(tokens=40, ttft_ms=20, gap_ms=5)


@pytest.fixture
def url(request: pytest.FixtureRequest, source: str, arm: str) -> str:
    return request.getfixturevalue(source)[arm]


def integrity(acct) -> tuple:
    return acct.outcome, acct.n_lost, acct.n_dup, acct.checksum_ok, acct.reconnects


@pytest.mark.parametrize(("source", "arm"), SOURCES)
def test_reconnect_with_resume_is_exact(url: str, arm: str) -> None:
    """Server drop after 10 tokens, client abort at 25: both resumed, nothing lost or doubled."""
    spec = StreamSpec(tokens=40, ttft_ms=20, gap_ms=5, drop_after=10)
    (a,), _ = run_user(
        arm, url, stream=spec, behaviour=BehaviourSpec(client_abort_after=25, resume=True)
    )
    assert integrity(a) == (OK, 0, 0, True, 2)
    assert a.labels.tokens_expected == a.n_unique + a.n_lost == a.n_received
    assert len(a.t_drop_ns) == 2 and all(g is not None for g in a.reconnect_gaps_ns)
    assert a.e2e_ns - a.ttft_ns == sum(a.itl_ns)


@pytest.mark.parametrize(("source", "arm"), SOURCES)
def test_reconnect_without_resume_counts_the_loss(url: str, arm: str) -> None:
    spec = StreamSpec(tokens=40, ttft_ms=20, gap_ms=5, drop_after=10)
    (a,), _ = run_user(arm, url, stream=spec, behaviour=BehaviourSpec(resume=False))
    assert integrity(a) == (DROPPED, 30, 0, None, 0)
    (b,), _ = run_user(
        arm, url, stream=FAST, behaviour=BehaviourSpec(client_abort_after=7, resume=False)
    )
    assert integrity(b) == (ABORTED, 33, 0, None, 0)
    assert b.labels.tokens_expected == b.n_unique + b.n_lost


@pytest.mark.parametrize(("source", "arm"), SOURCES)
def test_session_connections(url: str, arm: str) -> None:
    """SSE reuses its keep-alive connection between turns; WS holds one through think time."""
    accts, sink = run_user(arm, url, stream=FAST, session=SessionSpec(turns=3, think_s=0.2))
    assert [a.outcome for a in accts] == [OK] * 3
    assert [a.reused_conn for a in accts] == [False, True, True]
    assert len({a.conn_uid for a in accts}) == 1
    (c,) = sink.connections
    assert c.streams == 3 and c.closed_by == "client"
    held = c.t_close_ns - c.t_open_ns
    assert 0 < c.busy_ns < held  # the think time is idle time on the held connection
    assert sum(a.bytes_in for a in accts) > 0 and c.bytes_in >= sum(a.bytes_in for a in accts)


@pytest.mark.parametrize(("source", "arm"), [s for s in SOURCES if s[1] == "sse"])
def test_sse_keepalive_expiry_closes_idle_connection(url: str) -> None:
    sink = MemorySink()
    tr = SSETransport(
        TransportContext("t", "sse", "test", 0, "t/0.0", sink), url, keepalive_expiry_s=0.05
    )
    from core.schedule import StreamParams

    for i in range(2):
        tr.prepare()
        tr.start(StreamParams(tokens=3, ttft_ms=0, gap_ms=1, stream=f"ka{i}"))
        while not any(type(e).__name__ == "Done" for e in tr.poll(2**62)):
            pass
        tr.finish_stream(0)
        tr.idle(0.2)
    tr.close()
    assert [c.close_reason for c in sink.connections] == ["keep-alive expiry"] * 2


@pytest.mark.parametrize(("source", "arm"), SOURCES)
def test_cancel_by_closing(url: str, arm: str) -> None:
    beh = BehaviourSpec(cancel_prob=1.0, cancel_after=5, cancel_mode="close")
    accts, sink = run_user(arm, url, stream=FAST, session=SessionSpec(turns=2), behaviour=beh)
    assert [(a.outcome, a.n_unique, a.n_lost) for a in accts] == [(CANCELLED, 5, None)] * 2
    assert [a.reused_conn for a in accts] == [False, False]  # the connection went with it
    assert len(sink.connections) == 2


@pytest.mark.parametrize(("source", "arm"), REF)
def test_cancel_politely_keeps_the_connection(url: str, arm: str) -> None:
    """SSE: POST /v1/streams/{id}/cancel; WS: cancel message. The next turn reuses the
    stream connection and is complete. The stream (2.5 s) outlasts the client's 2 s drain:
    a cancel the server refused would leave the response running and the connection lost."""
    beh = BehaviourSpec(cancel_prob=0.5, cancel_after=5, cancel_mode="cancel")
    spec = StreamSpec(tokens=500, ttft_ms=20, gap_ms=5)
    accts, sink = run_user(arm, url, stream=spec, session=SessionSpec(turns=6), behaviour=beh)
    outcomes = [a.outcome for a in accts]
    assert CANCELLED in outcomes and OK in outcomes and set(outcomes) <= {OK, CANCELLED}
    assert all(a.checksum_ok for a in accts if a.outcome == OK)
    assert len({a.conn_uid for a in accts}) == 1
    if arm == "sse":  # the cancel requests themselves went on their own connections
        assert sum(c.labels.conn_uid.endswith("x") for c in sink.connections) == outcomes.count(
            CANCELLED
        )


@pytest.mark.parametrize(("source", "arm"), REF)
def test_refused_stream_is_an_error_with_the_reason(url: str, arm: str) -> None:
    (a,), sink = run_user(arm, url, stream=StreamSpec(tokens=0, ttft_ms=20, gap_ms=5))
    assert a.outcome in (ERROR, DROPPED) and a.n_received == 0
    assert "tokens" in (a.error or "")
    if arm == "sse":
        assert a.outcome == ERROR and a.status == 400
    elif a.outcome == DROPPED:  # closed with a policy-violation frame: code and reason kept
        closes = [(c.close_code, c.close_reason or "") for c in sink.connections]
        assert any(code == 1008 and "tokens" in why for code, why in closes), closes


def test_ws_answers_pings_while_idle() -> None:
    """A server pinging every 0.2 s and closing after 0.2 s without a pong: the client
    idles 1.5 s between turns on one connection and is not closed."""
    proc, port = start_server([str(TINY), "ws", "{port}", "0.2"])
    try:
        accts, sink = run_user(
            "ws", f"ws://127.0.0.1:{port}", stream=FAST, session=SessionSpec(turns=2, think_s=1.5)
        )
    finally:
        stop_server(proc)
    assert [a.outcome for a in accts] == [OK, OK]
    assert [a.reused_conn for a in accts] == [False, True]
    (c,) = sink.connections
    assert c.closed_by == "client" and c.streams == 2
