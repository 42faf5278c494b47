"""The client's gevent fast paths: `wire._ReadWaiter` (one io watcher per connection, one
timer per deadline, no gevent.Timeout per read) and `WSTransport._parse_frames` (server
frames parsed without websockets' generator parser). The in-process transport tests use
plain sockets, so the gevent path is driven here through `python -m loadtests.drive`.
"""

from __future__ import annotations

from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State

from core.schedule import token_payload
from loadtests.memsink import MemorySink
from loadtests.transport import Closed, Token, TransportContext
from loadtests.ws_transport import WSTransport

from .conftest import TINY, drive, needs_servers, start_server, stop_server

SID = b'"s1"'


def _transport() -> WSTransport:
    ctx = TransportContext("t", "ws", "test", 0, "t/0.0", MemorySink())
    tr = WSTransport(ctx, "ws://127.0.0.1:9")
    tr._proto = ClientProtocol(tr._uri, state=State.OPEN)
    tr._fast = True
    tr._current = "s1"
    return tr


def _text(payload: bytes, *, fin: bool = True, op: Opcode = Opcode.TEXT) -> bytes:
    return Frame(op, payload, fin=fin).serialize(mask=False)


def _tokens(out: list) -> list[tuple[int, int, str]]:
    return [(e.t_ns, e.seq, e.text) for e in out if isinstance(e, Token)]


def test_frames_split_anywhere_give_the_same_tokens_stamped_by_the_completing_read() -> None:
    long_text = b'{"s":"s1","i":2,"t":5,"d":"' + b"x" * 300 + b'"}'  # 16-bit length
    frames = [token_payload(SID, 0, 5, 1), token_payload(SID, 1, 5, 2), long_text]
    wire = b"".join(_text(p) for p in frames)
    whole = _transport()
    out: list = []
    whole._parse_frames(7, wire, out)
    assert [s for _, s, _ in _tokens(out)] == [0, 1, 2]
    assert all(t == 7 for t, _, _ in _tokens(out))
    assert [e.nbytes for e in out] == [len(p) for p in frames]
    for cut in range(1, len(wire)):
        tr, got = _transport(), []
        tr._parse_frames(1, wire[:cut], got)
        tr._parse_frames(2, wire[cut:], got)
        assert [s for _, s, _ in _tokens(got)] == [0, 1, 2], cut
        assert tr._rx == b""
        # a token whose last byte came in the second read carries the second stamp
        first_end = len(_text(frames[0]))
        assert _tokens(got)[0][0] == (1 if cut >= first_end else 2)


def test_byte_by_byte() -> None:
    wire = b"".join(_text(token_payload(SID, i, 5, i)) for i in range(5))
    tr, got = _transport(), []
    for i in range(len(wire)):
        tr._parse_frames(i, wire[i : i + 1], got)
    assert [s for _, s, _ in _tokens(got)] == list(range(5))


def test_fragments_with_a_ping_between_and_the_pong_queued() -> None:
    payload = token_payload(SID, 3, 5, 4)
    wire = (
        _text(payload[:10], fin=False)
        + Frame(Opcode.PING, b"hi").serialize(mask=False)
        + _text(payload[10:], op=Opcode.CONT)
        + _text(token_payload(SID, 4, 5, 4))
    )
    tr, got = _transport(), []
    tr._parse_frames(1, wire, got)
    assert [s for _, s, _ in _tokens(got)] == [3, 4]
    assert tr._proto is not None
    sent = b"".join(tr._proto.data_to_send())
    assert sent[0] == 0x8A  # a PONG frame, masked by the client
    assert tr._fast


def test_close_frame_goes_to_the_protocol_and_so_does_the_rest() -> None:
    wire = (
        _text(token_payload(SID, 0, 5, 1))
        + Frame(Opcode.CLOSE, Close(1000, "bye").serialize()).serialize(mask=False)
        + _text(token_payload(SID, 1, 5, 1))
    )
    tr, got = _transport(), []
    tr._parse_frames(1, wire, got)
    assert [s for _, s, _ in _tokens(got)] == [0]  # nothing after the close frame counts
    assert tr._proto is not None and tr._proto.state is State.CLOSING
    assert tr._proto.close_rcvd is not None and tr._proto.close_rcvd.code == 1000
    assert not tr._fast


def test_a_masked_server_frame_is_a_protocol_error_as_before() -> None:
    wire = Frame(Opcode.TEXT, token_payload(SID, 0, 5, 1)).serialize(mask=True)
    tr, got = _transport(), []
    tr._parse_frames(1, wire, got)
    assert not _tokens(got)
    assert tr._proto is not None and tr._proto.state is not State.OPEN
    assert not any(isinstance(e, Closed) for e in got)  # _read reports the close


def test_oversized_frame_is_left_to_the_protocol() -> None:
    tr, got = _transport(), []
    assert tr._proto is not None
    big = _text(b"x" * (tr._proto.max_message_size + 1))
    tr._parse_frames(1, big, got)
    assert not got and not tr._fast
    assert tr._proto.state is not State.OPEN  # 1009 message too big


# --------------------------------------------------------------------------- under gevent
STREAM = ("--tokens", "30", "--ttft-ms", "50", "--gap-ms", "10", "--jitter", "0")


def _ok(out: dict, n: int) -> None:
    assert out["killed"] == 0 and not out["greenlet_errors"], out
    assert out["outcomes"] == {"ok": n}, out
    assert out["checksum_ok"] == n and out["lost"] == 0 and out["dup"] == 0, out


@needs_servers
def test_stream_timeout_fires_at_the_deadline(ref: dict[str, str]) -> None:
    for arm in ("sse", "ws"):
        out = drive(
            arm,
            ref[arm],
            "--users",
            "20",
            "--tokens",
            "50",
            "--ttft-ms",
            "300",
            "--gap-ms",
            "20",
            "--stream-timeout-s",
            "0.5",
            "--rows",
        )
        assert out["outcomes"] == {"timeout": 20}, out
        for row in out["rows"]:
            took = (row["t_end_ns"] - row["t_send_ns"]) / 1e9
            assert 0.5 <= took < 0.7, (arm, took)
            assert 5 <= row["n_received"] < 50


@needs_servers
def test_drops_aborts_cancels_and_turns_under_gevent(ref: dict[str, str]) -> None:
    for arm in ("sse", "ws"):
        p = "sse" if arm == "sse" else "ws"
        _ok(drive(p, ref[arm], "--users", "20", *STREAM, "--drop-after", "10"), 20)
        _ok(drive(p, ref[arm], "--users", "20", *STREAM, "--client-abort-after", "7"), 20)
        _ok(drive(p, ref[arm], "--users", "10", *STREAM, "--turns", "3", "--think-s", "0.3"), 30)
        out = drive(
            p,
            ref[arm],
            "--users",
            "10",
            *STREAM,
            "--turns",
            "2",
            "--cancel-prob",
            "1",
            "--cancel-after",
            "5",
            "--cancel-mode",
            "cancel",
        )
        assert out["outcomes"] == {"cancelled": 20} and not out["greenlet_errors"], out


def test_ws_answers_pings_while_idle_under_gevent() -> None:
    """The tiny server pings every 0.2 s and closes a client that has not answered within
    0.2 s; two turns with 1.5 s of think time between them stay on one connection."""
    proc, port = start_server([str(TINY), "ws", "{port}", "0.2"])
    try:
        out = drive(
            "ws",
            f"ws://127.0.0.1:{port}",
            "--users",
            "5",
            *STREAM,
            "--turns",
            "2",
            "--think-s",
            "1.5",
            "--rows",
        )
    finally:
        stop_server(proc)
    assert out["outcomes"] == {"ok": 10}, out
    assert out["connections"] == 5, out
    assert all(c["closed_by"] == "client" for c in out["conn_rows"]), out["conn_rows"]
