"""Dead-peer detection end to end: the reference servers (heartbeats every 0.2 s), the real
transports, and a forwarder whose first connections go silent (tests/loadtests/silencer.py:
nothing forwarded, nothing closed — a phone in a tunnel). The client must declare the
silent connection dead no sooner than its silence (3 heartbeats = 0.6 s) after the last
thing it read, drop it with the verdict in the connection record, and resume exactly; a
paused stream with heartbeats must live; the same pause without heartbeats, watched by a
fixed silence, is (wrongly, and that is the point) declared dead. Plain sockets in this
process and the gevent path (python -m loadtests.drive). This is the contract the read
path must keep, whatever its implementation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.accounting import OK
from core.arms import protocol_of
from core.scenario import BehaviourSpec, ServerSpec, StreamSpec

from .conftest import drive, reference, run_user, start_server, stop_server

SILENCER = __file__.replace("test_deadpeer.py", "silencer.py")
HB_S = 0.2
K = 3.0
SILENCE_NS = int(HB_S * K * 1e9)
STREAM = StreamSpec(tokens=40, ttft_ms=20, gap_ms=10)
ARMS = ["sse", "ws", "ws-websockets"]


@pytest.fixture(scope="module")
def hb() -> Iterator[dict[str, str]]:
    yield from reference(["--heartbeat-s", f"{HB_S:g}"])


@pytest.fixture(scope="module")
def no_hb() -> Iterator[dict[str, str]]:
    yield from reference(["--heartbeat-s", "0"])


@pytest.fixture
def silent_first(request: pytest.FixtureRequest) -> Iterator:
    """silent_first(url, n_bytes, k) → the URL of a silencer in front of `url`."""
    procs = []

    def make(url: str, n_bytes: int = 1000, k: int = 1) -> str:
        scheme, _, hostport = url.partition("://")
        proc, port = start_server([SILENCER, hostport, str(n_bytes), str(k)])
        procs.append(proc)
        return f"{scheme}://127.0.0.1:{port}"

    yield make
    for p in procs:
        stop_server(p)


def _last_before(acct, t_ns: int) -> int:
    return max(t for t in acct.t_recv_ns if t < t_ns)


@pytest.mark.parametrize("arm", ARMS)
def test_silent_connection_is_declared_dead_and_resumed(hb, silent_first, arm: str) -> None:
    url = silent_first(hb[arm])
    (a,), sink = run_user(
        arm,
        url,
        stream=STREAM,
        behaviour=BehaviourSpec(resume=True, dead_after_heartbeats=K, stream_timeout_s=30),
        server=ServerSpec(heartbeat_s=HB_S),
    )
    assert (a.outcome, a.n_lost, a.n_dup, a.checksum_ok) == (OK, 0, 0, True)
    assert (a.dead_declared, a.reconnects) == (1, 1)
    (t_dead,) = a.t_drop_ns
    assert 0 < a.t_recv_ns.index(_last_before(a, t_dead)) < 39  # cut mid-stream
    assert t_dead - _last_before(a, t_dead) >= SILENCE_NS
    dead = [c for c in sink.connections if (c.close_reason or "").startswith("dead peer")]
    assert len(dead) == 1 and dead[0].closed_by == "client"
    assert dead[0].close_reason == f"dead peer: nothing read for {HB_S * K:g} s"


PAUSED = StreamSpec(tokens=20, ttft_ms=20, gap_ms=10, pause_ms=1500, pause_at=5)


@pytest.mark.parametrize("arm", ARMS)
@pytest.mark.parametrize("heartbeats", [True, False])
def test_a_paused_stream_lives_by_its_heartbeats(request, arm: str, heartbeats: bool) -> None:
    """A 1.5 s pause (2.5 silences): with a heartbeat every 0.2 s never declared dead;
    without heartbeats, watched by the same fixed silence, (wrongly) declared dead —
    and resumed on the original schedule, nothing lost."""
    urls = request.getfixturevalue("hb" if heartbeats else "no_hb")
    watch = {"dead_after_heartbeats": K} if heartbeats else {"dead_after_s": HB_S * K}
    (a,), _ = run_user(
        arm,
        urls[arm],
        stream=PAUSED,
        behaviour=BehaviourSpec(**watch),
        server=ServerSpec(heartbeat_s=HB_S if heartbeats else 0),
    )
    assert (a.outcome, a.n_lost, a.n_dup) == (OK, 0, 0)
    if heartbeats:
        assert (a.dead_declared, a.reconnects) == (0, 0)
    else:
        assert a.dead_declared >= 1 and a.reconnects == a.dead_declared


@pytest.mark.parametrize("arm", ["sse", "ws"])
def test_dead_peer_under_gevent(hb, silent_first, arm: str) -> None:
    users = 5
    url = silent_first(hb[arm], 1000, users)
    out = drive(
        protocol_of(arm),
        url,
        "--users",
        str(users),
        "--tokens",
        "40",
        "--ttft-ms",
        "20",
        "--gap-ms",
        "10",
        "--heartbeat-s",
        f"{HB_S:g}",
        "--dead-after-heartbeats",
        f"{K:g}",
        "--stream-timeout-s",
        "30",
        "--rows",
    )
    assert out["outcomes"] == {"ok": users} and not out["greenlet_errors"], out
    assert (out["lost"], out["dup"], out["checksum_ok"]) == (0, 0, users), out
    assert out["dead_declared"] == users == out["reconnects"], out
    for row in out["rows"]:
        (t_dead,) = row["t_drops_ns"]
        assert t_dead - row["t_first_ns"] >= SILENCE_NS
    dead = [c for c in out["conn_rows"] if (c["close_reason"] or "").startswith("dead peer")]
    assert len(dead) == users
