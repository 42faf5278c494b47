"""The payload-format registry and the native format: server encode → client decode."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from core.arms import all_arms
from core.client.events import Done, Failed, Token
from core.formats import (
    UnknownFormat,
    UnsupportedRequest,
    format_names,
    get_format,
    register_format,
)
from core.formats.native import NativeFormat
from core.schedule import (
    ParamError,
    StreamParams,
    StreamPlan,
    done_summary,
    stream_id_json,
    token_payload,
)
from core.sse import SSEDecoder, encode_token

NATIVE = get_format("native")
PARAMS = StreamParams(seed=3, tokens=40, ttft_ms=0, gap_ms=0, stream="f-1")


def test_registry() -> None:
    assert "native" in format_names()
    with pytest.raises(ValueError, match="already registered"):
        register_format(NativeFormat())
    with pytest.raises(UnknownFormat, match=r"known: .*native"):
        get_format("openai-chat-v0")


def test_every_arm_has_a_format_for_its_protocol() -> None:
    for arm in all_arms():
        fmt = get_format(arm.format)
        assert arm.protocol in fmt.protocols, arm.name
        assert fmt.sse_path if arm.protocol == "sse" else fmt.ws_path, arm.name


def _server_sse(plan: StreamPlan) -> bytes:
    w = NATIVE.sse_writer(plan, retry_ms=1500)
    parts = [w.preamble()]
    for seq in range(plan.n):
        parts.append(w.token(seq, 1_000 + seq, plan.ids[seq]))
        if seq == 3:
            assert w.heartbeat is not None
            parts.append(w.heartbeat)  # a heartbeat is not content
    parts.append(w.done())
    return b"".join(parts)


def test_native_sse_round_trip() -> None:
    plan = StreamPlan.build(PARAMS)
    wire = _server_sse(plan)
    dec = SSEDecoder()
    reader = NATIVE.sse_reader(200)
    out: list = []
    reader.on_events(7, dec.feed_tuples(wire), out)
    tokens = [e for e in out if isinstance(e, Token)]
    assert [t.seq for t in tokens] == list(range(plan.n))
    assert [t.text for t in tokens] == plan.texts()
    assert [t.t_server_ns for t in tokens] == [1_000 + i for i in range(plan.n)]
    assert all(t.t_ns == 7 for t in tokens)
    payload0 = token_payload(stream_id_json("f-1"), 0, 1_000, plan.ids[0])
    assert tokens[0].nbytes == len(payload0)
    assert out[-1] == Done(7, plan.n, done_summary(plan.texts())["sha256"]) and reader.done
    assert dec.retry_ms == 1500 and dec.comments == 1


def test_native_sse_token_bytes_are_the_contract() -> None:
    plan = StreamPlan.build(PARAMS)
    w = NATIVE.sse_writer(plan, retry_ms=0)
    sj = stream_id_json("f-1")
    assert w.token(5, 42, plan.ids[5]) == encode_token(5, token_payload(sj, 5, 42, plan.ids[5]))
    assert w.token(5, 42, plan.ids[5]).startswith(b'id: 5\ndata: {"s":"f-1","i":5,"t":42,"d":')


def test_native_sse_reader_errors_and_foreign_events() -> None:
    reader = NATIVE.sse_reader(200)
    out: list = []
    reader.on_events(
        1,
        [
            ("message", "not json", ""),  # a foreign server's extra event: not a token
            ("progress", "{}", ""),  # unknown event types are not content
            ("done", "{bad", ""),
            ("error", "overloaded", ""),
        ],
        out,
    )
    assert out[0] == Failed(1, 200, "malformed done event: '{bad'")
    assert out[1] == Failed(1, 200, "overloaded")
    assert len(out) == 2 and not reader.done


def test_native_ws_round_trip_and_stream_filter() -> None:
    plan = StreamPlan.build(PARAMS)
    w = NATIVE.ws_writer(plan)
    reader = NATIVE.ws_reader()
    start = json.loads(reader.start(PARAMS))
    assert start == {"type": "start", **PARAMS.to_dict()}
    assert reader.current == "f-1"
    out: list = []
    for seq in range(plan.n):
        assert reader.on_message(9, w.token(seq, 50 + seq, plan.ids[seq]), out)
    other = NATIVE.ws_writer(StreamPlan.build(StreamParams(seed=3, tokens=2, stream="other")))
    assert not reader.on_message(9, other.token(0, 1, 1), out)  # another stream's frame
    assert not reader.on_message(9, other.done()[0].encode(), out)
    assert not reader.on_message(9, w.cancelled(3).encode(), out)  # an ack is not content
    assert reader.on_message(9, w.done()[0].encode(), out)
    assert [e.text for e in out if isinstance(e, Token)] == plan.texts()
    assert [e.t_server_ns for e in out if isinstance(e, Token)][:2] == [50, 51]
    assert out[-1] == Done(9, plan.n, done_summary(plan.texts())["sha256"])
    reader.finish()
    assert not reader.on_message(9, w.token(0, 1, 1), out)  # late frames are ignored


def test_native_ws_general_path_and_malformed() -> None:
    reader = NATIVE.ws_reader()
    reader.start(StreamParams(stream=5))
    out: list = []
    # other key order and whitespace: not the servers' layout, still a token
    assert reader.on_message(1, b'{"i": 2, "d": "x", "s": 5, "t": 0}', out)
    assert out[0] == Token(1, 2, None, 34, "x")
    assert reader.on_message(2, b'{"type":"error","error":"bad","field":"tokens"}', out)
    assert out[1] == Failed(2, None, "tokens: bad")
    assert reader.on_message(3, b"[1,2", out)
    assert isinstance(out[2], Failed) and "malformed server message" in out[2].error


def test_native_ws_client_messages() -> None:
    reader = NATIVE.ws_reader()
    resume = json.loads(reader.start(PARAMS, resume_after=7))
    assert resume["type"] == "resume" and resume["stream"] == "f-1" and resume["after"] == 7
    assert json.loads(reader.cancel() or "") == {"type": "cancel", "stream": "f-1"}
    assert reader.current is None and reader.cancel() is None
    parsed = NATIVE.ws_client_message(NATIVE.ws_reader().start(PARAMS))
    assert parsed.params == PARAMS  # type: ignore[union-attr]
    assert json.loads(NATIVE.ws_error("no such stream", 4, "stream"))["field"] == "stream"
    assert json.loads(NATIVE.ws_error("busy", 4, limit="streams"))["limit"] == "streams"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_native_sse_request_round_trip(method: str) -> None:
    req = NATIVE.sse_request(PARAMS, base_path="/base", resume_after=4, method=method)
    assert req.method == method
    assert ("Last-Event-ID", "4") in req.headers
    parts = urlsplit(req.target)
    assert parts.path == "/base/v1/stream"
    query = dict(parse_qsl(parts.query))
    got = NATIVE.sse_params(query, req.body if method == "POST" else None)
    assert got == PARAMS
    assert ("Last-Event-ID", "4") not in NATIVE.sse_request(PARAMS, resume_after=-1).headers
    with pytest.raises(UnsupportedRequest):
        NATIVE.sse_request(PARAMS, method="PUT")
    for body in (b"[1]", b"{bad", b"[" * 100_000):
        with pytest.raises(ParamError, match="body"):
            NATIVE.sse_params({}, body)
    cancel = NATIVE.sse_cancel_request("a/b", base_path="/base")
    assert cancel is not None and cancel.target == "/base/v1/streams/a%2Fb/cancel"
    assert cancel.headers == ()
    # a server that gave the stream a cancel secret gets it back
    cancel = NATIVE.sse_cancel_request(7, response_headers={"x-cancel-secret": "s3"})
    assert cancel is not None and cancel.headers == (("X-Cancel-Secret", "s3"),)
