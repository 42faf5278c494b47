"""The WS client core without sockets: a sans-I/O websockets server answers its upgrade, then
recorded server frames are fed in any split (the fast frame parser and the protocol path)."""

from __future__ import annotations

import itertools

import pytest
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Close, Frame, Opcode
from websockets.server import ServerProtocol

from core.client.events import Closed, Done, FirstByte, FirstEvent, Token
from core.client.ws import WSClient, ws_uri
from core.formats import get_format
from core.schedule import StreamParams, StreamPlan, done_summary, token_payload

NATIVE = get_format("native")
SID = b'"s1"'
PARAMS = StreamParams(seed=4, tokens=5, ttft_ms=0, gap_ms=0, stream="s1")


def opened(compression: str = "off") -> tuple[WSClient, ServerProtocol]:
    """A client whose upgrade a websockets ServerProtocol accepted, with stream s1 started."""
    client = WSClient(NATIVE, ws_uri("127.0.0.1", 9, "/v1/ws"), compression=compression)
    exts = [ServerPerMessageDeflateFactory()] if compression == "deflate" else None
    server = ServerProtocol(extensions=exts)
    server.receive_data(client.handshake())
    [request] = server.events_received()
    server.send_response(server.accept(request))
    client.feed_handshake(3, b"".join(server.data_to_send()))
    assert client.is_open and client.t_open_ns == 3 and client.handshake_error is None
    server.receive_data(client.start(PARAMS))
    [start] = server.events_received()
    assert start.data.startswith(b'{"type":"start"')  # masked by the client, read back
    return client, server


def text(payload: bytes, *, fin: bool = True, op: Opcode = Opcode.TEXT) -> bytes:
    return Frame(op, payload, fin=fin).serialize(mask=False)


def tokens(out: list) -> list[tuple[int, int, str]]:
    return [(e.t_ns, e.seq, e.text) for e in out if isinstance(e, Token)]


def test_frames_split_anywhere_give_the_same_tokens_stamped_by_the_completing_read() -> None:
    long_text = b'{"s":"s1","i":2,"t":5,"d":"' + b"x" * 300 + b'"}'  # 16-bit length
    frames = [token_payload(SID, 0, 5, 1), token_payload(SID, 1, 5, 2), long_text]
    wire = b"".join(text(p) for p in frames)
    whole, _ = opened()
    out: list = []
    whole.feed(7, wire, out)
    assert [s for _, s, _ in tokens(out)] == [0, 1, 2]
    assert all(t == 7 for t, _, _ in tokens(out))
    # the stream's first message is also its first byte and its first event
    assert out[:2] == [FirstByte(7), FirstEvent(7)]
    assert [e.nbytes for e in out[2:]] == [len(p) for p in frames]
    assert whole.take_bytes() == sum(len(p) for p in frames)
    first_end = len(text(frames[0]))
    for cut in range(1, len(wire)):
        c, _ = opened()
        got: list = []
        c.feed(1, wire[:cut], got)
        c.feed(2, wire[cut:], got)
        assert [s for _, s, _ in tokens(got)] == [0, 1, 2], cut
        # a token whose last byte came in the second read carries the second stamp
        assert tokens(got)[0][0] == (1 if cut >= first_end else 2)
        firsts = [e for e in got if isinstance(e, FirstByte | FirstEvent)]
        assert [e.t_ns for e in firsts] == [tokens(got)[0][0]] * 2, cut


def test_a_recorded_stream_byte_by_byte_then_done() -> None:
    plan = StreamPlan.build(PARAMS)
    w = NATIVE.ws_writer(plan)
    wire = b"".join(text(w.token(i, 10 + i, plan.ids[i])) for i in range(plan.n))
    wire += text(w.done()[0].encode())
    c, _ = opened()
    got: list = []
    for i in range(len(wire)):
        c.feed(i, wire[i : i + 1], got)
    assert [e.text for e in got if isinstance(e, Token)] == plan.texts()
    assert got[-1] == Done(len(wire) - 1, plan.n, done_summary(plan.texts())["sha256"])
    assert c.t_first_event_ns == len(text(w.token(0, 10, plan.ids[0]))) - 1


def test_fragments_with_a_ping_between_and_the_pong_queued() -> None:
    payload = token_payload(SID, 3, 5, 4)
    wire = (
        text(payload[:10], fin=False)
        + Frame(Opcode.PING, b"hi").serialize(mask=False)
        + text(payload[10:], op=Opcode.CONT)
        + text(token_payload(SID, 4, 5, 4))
    )
    c, server = opened()
    got: list = []
    c.feed(1, wire, got)
    assert [s for _, s, _ in tokens(got)] == [3, 4]
    pong = c.data_to_send()
    assert pong[0] == 0x8A  # a PONG frame, masked by the client
    server.receive_data(pong)
    assert server.events_received()[0].opcode is Opcode.PONG


def test_close_frame_ends_the_stream_and_nothing_after_it_counts() -> None:
    wire = (
        text(token_payload(SID, 0, 5, 1))
        + Frame(Opcode.CLOSE, Close(1000, "bye").serialize()).serialize(mask=False)
        + text(token_payload(SID, 1, 5, 1))
    )
    c, _ = opened()
    got: list = []
    c.feed(1, wire, got)
    assert [s for _, s, _ in tokens(got)] == [0]
    assert got[-1] == Closed(1, "server", "closed 1000 bye")
    assert not c.is_open and c.close_code == 1000 and c.close_reason == "bye"
    assert c.data_to_send()[0] == 0x88  # the close reply is queued
    assert c.current is None


def test_a_masked_server_frame_is_a_protocol_error() -> None:
    c, _ = opened()
    got: list = []
    c.feed(1, Frame(Opcode.TEXT, token_payload(SID, 0, 5, 1)).serialize(mask=True), got)
    assert not tokens(got) and not c.is_open
    assert isinstance(got[-1], Closed)


def test_oversized_frame_is_left_to_the_protocol() -> None:
    c, _ = opened()
    got: list = []
    c.feed(1, text(b"x" * (c._proto.max_message_size + 1)), got)  # type: ignore[operator]
    assert not tokens(got) and not c.is_open  # 1009 message too big


def test_eof_mid_stream_is_a_drop() -> None:
    c, _ = opened()
    got: list = []
    c.feed(1, text(token_payload(SID, 0, 5, 1)), got)
    c.feed(2, b"", got)
    assert got[-1] == Closed(2, "server", "connection closed") and not c.is_open


def test_cancel_and_late_frames() -> None:
    c, server = opened()
    server.receive_data(c.cancel() or b"")
    assert server.events_received()[0].data == b'{"type":"cancel","stream":"s1"}'
    got: list = []
    c.feed(1, text(token_payload(SID, 0, 5, 1)), got)  # late frame of the cancelled stream
    assert got == [] and c.take_bytes() == 0 and c.is_open


def test_compressed_frames_go_through_the_protocol() -> None:
    c, server = opened("deflate")
    assert c.extensions == ["permessage-deflate"]
    plan = StreamPlan.build(PARAMS)
    w = NATIVE.ws_writer(plan)
    for i in range(plan.n):
        server.send_text(w.token(i, 1, plan.ids[i]))
    server.send_text(w.done()[0].encode())
    wire = b"".join(server.data_to_send())
    got: list = []
    for i, (a, b) in enumerate(itertools.pairwise([0, len(wire) // 3, len(wire)])):
        c.feed(i, wire[a:b], got)
    assert [e.text for e in got if isinstance(e, Token)] == plan.texts()
    assert isinstance(got[-1], Done)


# --------------------------------------------------------------------------- our own upgrade
def _upgrade_answer(client: WSClient) -> bytes:
    server = ServerProtocol()
    server.receive_data(client.handshake())
    [request] = server.events_received()
    server.send_response(server.accept(request))
    return b"".join(server.data_to_send())


def test_a_ping_right_behind_the_101_is_answered() -> None:
    client = WSClient(NATIVE, ws_uri("127.0.0.1", 9, "/v1/ws"))
    answer = _upgrade_answer(client)
    ping = Frame(Opcode.PING, b"hb").serialize(mask=False)
    for cut in (len(answer) - 3, len(answer), len(answer) + 3):  # the head split, or not
        c = WSClient(NATIVE, ws_uri("127.0.0.1", 9, "/v1/ws"))
        wire = _upgrade_answer(c) + ping
        c.feed_handshake(1, wire[:cut])
        if c.connecting:
            c.feed_handshake(2, wire[cut:])
        else:
            c.feed(2, wire[cut:], [])
        assert c.is_open and c.wants_send, cut
        pong = c.data_to_send()
        assert pong[0] == 0x80 | Opcode.PONG.value and not c.wants_send


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda w: w.replace(b"101 Switching Protocols", b"503 Service Unavailable"), "HTTP 503"),
        (lambda w: w.replace(b"Sec-WebSocket-Accept: ", b"Sec-WebSocket-Accept: x"), "Accept"),
        (lambda w: w.replace(b"Upgrade: websocket", b"Upgrade: h2c"), "Upgrade"),
        (lambda w: w.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: x\r\n\r\n"), "xtensions"),
        (lambda w: b"garbage\r\n\r\n", "status line"),
    ],
)
def test_a_bad_upgrade_answer_fails_the_handshake(edit, why: str) -> None:
    client = WSClient(NATIVE, ws_uri("127.0.0.1", 9, "/v1/ws"))
    client.feed_handshake(1, edit(_upgrade_answer(client)))
    assert not client.connecting and not client.is_open and client.closed
    assert why in str(client.handshake_error)


def test_eof_during_the_upgrade_fails_it() -> None:
    client = WSClient(NATIVE, ws_uri("127.0.0.1", 9, "/v1/ws"))
    client.handshake()
    client.feed_handshake(1, b"HTTP/1.1 101 Switching")
    assert client.connecting
    client.feed_handshake(2, b"")
    assert not client.connecting and "closed" in str(client.handshake_error)
