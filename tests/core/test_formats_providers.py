"""The provider formats (openai-chat, openai-responses, anthropic), sans-I/O.

- the providers' own worked examples decode as the reference says (sources in each test);
- client request → server params → server writer → client reader gives the native texts,
  the stamps, the usage and the integrity record;
- every recorded stream split at every byte offset through the client core (HTTP/1.1
  chunked SSE, and WS frames for the Responses WebSocket mode) gives the same tokens,
  stamped by the read that completed them, and the first byte / first event stamps.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol

from core.client.events import Done, Failed, FirstByte, FirstEvent, Token, Usage
from core.client.sse import SSEClient
from core.client.ws import WSClient, ws_uri
from core.formats import UnsupportedRequest, get_format, llmapi
from core.schedule import ParamError, StreamParams, StreamPlan, done_summary
from core.sse import SSEDecoder
from core.wsmsg import ProtocolError
from tests.core.test_client_sse import chunked, run

PROVIDERS = ("openai-chat", "openai-responses", "anthropic")
# seed 1872: the first four tokens include a newline (JSON-escaped) and " —" (UTF-8)
PARAMS = StreamParams(seed=1872, tokens=4, ttft_ms=0, gap_ms=0, stream="p-1")
CREATED = 1_760_000_000


def _decode(name: str, wire: bytes) -> list[Any]:
    reader = get_format(name).sse_reader(200)
    out: list[Any] = []
    reader.on_events(5, SSEDecoder().feed_tuples(wire), out)
    return out


def _tokens(out: list[Any]) -> list[str]:
    return [e.text for e in out if isinstance(e, Token)]


# --------------------------------------------------------------------------- worked examples
def test_openai_chat_reference_example() -> None:
    """openai/openai-openapi openapi.yaml, CreateChatCompletionStreamResponse's example
    (as on developers.openai.com, chat completions streaming events), then [DONE]."""
    chunks = [
        '{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,'
        '"model":"gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb", "choices":[{"index":0,'
        '"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],'
        '"obfuscation":"r4N7vQ2m"}',
        '{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,'
        '"model":"gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb", "choices":[{"index":0,'
        '"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],'
        '"obfuscation":"p9K3xT6w"}',
        '{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,'
        '"model":"gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb", "choices":[{"index":0,'
        '"delta":{},"logprobs":null,"finish_reason":"stop"}],"obfuscation":""}',
        "[DONE]",
    ]
    out = _decode("openai-chat", b"".join(b"data: %s\n\n" % c.encode() for c in chunks))
    # the role-only chunk is not content: one token, numbered 0, no server stamp
    assert [e for e in out if isinstance(e, Token)] == [Token(5, 0, None, len(chunks[1]), "Hello")]
    assert out[-1] == Done(5, None, None, "chatcmpl-123")
    # a chunk carrying an error object (as OpenAI sends mid-stream) fails the stream
    err = b'data: {"error":{"message":"Rate limit","type":"requests","code":"rate_limit"}}\n\n'
    assert _decode("openai-chat", err) == [Failed(5, 200, "rate_limit: Rate limit")]


def test_openai_responses_reference_examples() -> None:
    """openai/openai-openapi openapi.yaml examples of ResponseCreatedEvent (trimmed to its
    id), ResponseTextDeltaEvent, ResponseCompletedEvent (trimmed) and ResponseErrorEvent,
    each framed as ``event: <type>`` + ``data:`` as the Responses API streams them."""
    events = [
        {"type": "response.created", "response": {
            "id": "resp_67ccfcdd16748190a91872c75d38539e09e4d4aac714747c", "object": "response",
            "status": "in_progress", "output": [], "usage": None}, "sequence_number": 1},
        {"type": "response.output_text.delta", "item_id": "msg_123", "output_index": 0,
         "content_index": 0, "delta": "In", "sequence_number": 1},
        {"type": "response.completed", "response": {
            "id": "resp_123", "object": "response", "status": "completed",
            "usage": {"input_tokens": 0, "output_tokens": 0,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 0}},
         "sequence_number": 1},
    ]  # fmt: skip
    wire = b"".join(
        b"event: %s\ndata: %s\n\n" % (e["type"].encode(), json.dumps(e).encode()) for e in events
    )
    out = _decode("openai-responses", wire)
    assert _tokens(out) == ["In"]
    assert out[-2:] == [Usage(5, 0, 0), Done(5, None, None, "resp_123")]
    error = {"type": "error", "code": "ERR_SOMETHING", "message": "Something went wrong",
             "param": None, "sequence_number": 1}  # fmt: skip
    wire = b"event: error\ndata: %s\n\n" % json.dumps(error).encode()
    assert _decode("openai-responses", wire) == [
        Failed(5, 200, "ERR_SOMETHING: Something went wrong")
    ]


#: Anthropic's "Streaming Messages" page, https://platform.claude.com/docs/en/build-with-claude/streaming,
#: "Basic streaming request": the response, verbatim (spaces after the colons as printed).
ANTHROPIC_PAGE_STREAM = b"""event: message_start
data: {"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5-20250929", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}

event: content_block_start
data: {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 0}

event: message_delta
data: {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence":null}, "usage": {"output_tokens": 15}}

event: message_stop
data: {"type": "message_stop"}

"""  # noqa: E501

#: The same page, "Streaming request with tool use": three of its events, verbatim — a tool
#: block after the text block, its input streamed as partial JSON, the tool_use stop.
ANTHROPIC_PAGE_TOOL_EVENTS = b"""event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"location\\":"}}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

"""  # noqa: E501


def test_anthropic_streaming_page_example() -> None:
    """The "Streaming Messages" page's basic stream: the text deltas are the tokens (seq by
    arrival, nbytes = the data line), message_start / content_block_start / ping are not
    content, message_delta's cumulative usage (with message_start's input tokens) is the
    Usage, message_stop the Done with the message id; its error event fails the stream."""
    events = ANTHROPIC_PAGE_STREAM.split(b"\n\n")[:-1]
    assert len(events) == 8
    assert _decode("anthropic", b"\n\n".join(events[:3]) + b"\n\n") == []  # before content
    out = _decode("anthropic", ANTHROPIC_PAGE_STREAM)
    lines = [e.split(b"data: ", 1)[1] for e in events[3:5]]
    assert [e for e in out if isinstance(e, Token)] == [
        Token(5, 0, None, len(lines[0]), "Hello"),
        Token(5, 1, None, len(lines[1]), "!"),
    ]
    assert out[-2:] == [
        Usage(5, 25, 15),
        Done(5, None, None, "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"),
    ]
    # a tool block's partial JSON is not text: no token, only the usage
    assert _decode("anthropic", ANTHROPIC_PAGE_TOOL_EVENTS) == [Usage(5, None, 89)]
    error = b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "mess'
    error += b'age": "Overloaded"}}\n\n'
    assert _decode("anthropic", error) == [Failed(5, 200, "overloaded_error: Overloaded")]


def test_anthropic_sdk_recorded_stream() -> None:
    """anthropics/anthropic-sdk-python tests/lib/streaming/fixtures/basic_response.txt (the
    SDK's recorded stream: compact JSON, three deltas)."""
    wire = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_4QpJur2dWWDj'
        b'F6C758FbBw5vm12BaVipnK","type":"message","role":"assistant","content":[],"model":"clau'
        b'de-3-opus-latest","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":11,'
        b'"output_tokens":1}}}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_bl'
        b'ock":{"type":"text","text":""}}\n\n'
        b'event: ping\ndata: {"type": "ping"}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"ty'
        b'pe":"text_delta","text":"Hello"}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"ty'
        b'pe":"text_delta","text":" there"}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"ty'
        b'pe":"text_delta","text":"!"}}\n\n'
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn",'
        b'"stop_sequence":null},"usage":{"output_tokens":6}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    out = _decode("anthropic", wire)
    assert [(e.seq, e.text) for e in out if isinstance(e, Token)] == [
        (0, "Hello"),
        (1, " there"),
        (2, "!"),
    ]
    assert out[-2:] == [
        Usage(5, 11, 6),
        Done(5, None, None, "msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK"),
    ]


#: OpenAI's WebSocket mode guide, https://developers.openai.com/api/docs/guides/websocket-mode:
#: the client's ``response.create`` of "Connect and create responses" and of "Continue with
#: incremental inputs" (a tool output and the next user message, ``previous_response_id``),
#: verbatim; the page sends ``json.dumps`` of each.
WS_MODE_FIRST = {
    "type": "response.create",
    "model": "gpt-5.5",
    "store": False,
    "input": [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Find fizz_buzz()"}],
        }
    ],
    "tools": [],
}
WS_MODE_CONTINUE = {
    "type": "response.create",
    "model": "gpt-5.5",
    "store": False,
    "previous_response_id": "resp_123",
    "input": [
        {
            "type": "function_call_output",
            "call_id": "call_123",
            "output": "tool result",
        },
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Now optimize it."}],
        },
    ],
    "tools": [],
}


@pytest.mark.parametrize("example", [WS_MODE_FIRST, WS_MODE_CONTINUE], ids=["first", "continue"])
def test_responses_websocket_mode_page_examples(example: dict[str, Any]) -> None:
    """The guide's ``response.create`` messages, read by the server side of the format (the
    reference WS server's), answered, and the answer decoded; and the message our client
    builds for the same turn has the page's shape."""
    fmt = get_format("openai-responses")
    msg = fmt.ws_client_message(json.dumps(example))
    params = msg.params  # type: ignore[union-attr]
    previous = example.get("previous_response_id")
    assert params.extra["model"] == "gpt-5.5" and params.extra["store"] is False
    assert params.extra["previous_response_id"] == previous
    assert params.extra["input_tokens"] == llmapi.input_tokens(example["input"])
    # the answer echoes the chain and the options, and decodes to the plan's texts
    plan = StreamPlan.build(replace(params, tokens=3, ttft_ms=0, gap_ms=0))
    w = fmt.ws_writer(plan, created_s=CREATED)
    encode = w.encoder()
    messages = [
        *w.preamble(),
        *(encode(i, 70 + i, plan.ids[i]).decode() for i in range(plan.n)),
        *w.done(),
    ]
    created, completed = json.loads(messages[0]), json.loads(messages[-1])
    for event in (created, completed):
        assert event["response"]["previous_response_id"] == previous
        assert event["response"]["model"] == "gpt-5.5" and event["response"]["store"] is False
    reader = fmt.ws_reader()
    reader.start(params)
    out: list[Any] = []
    for m in messages:
        assert reader.on_message(9, m.encode(), out)
    assert _tokens(out) == plan.texts()
    assert out[-1] == Done(
        9, plan.n, done_summary(plan.texts())["sha256"], completed["response"]["id"]
    )
    assert completed["response"]["id"] != previous
    # our client's message for this turn: the page's fields where it has them, no stream
    ours = json.loads(
        fmt.ws_reader().start(
            StreamParams(tokens=3, extra={"model": "gpt-5.5", "previous_response_id": previous})
        )
    )
    assert {k: ours[k] for k in ("type", "model")} == {k: example[k] for k in ("type", "model")}
    assert ours.get("previous_response_id") == previous
    assert "stream" not in ours and "background" not in ours
    assert set(ours) - set(example) == {"max_output_tokens", llmapi.EXT}
    assert [item["role"] for item in ours["input"]] == ["user"]


# --------------------------------------------------------------------------- round trips
def _server_stream(name: str, params: StreamParams = PARAMS) -> tuple[StreamPlan, list[bytes]]:
    """What the reference server writes for the request a client of `name` sends: the
    preamble, one event per token (stamped 1000 + seq), the end."""
    fmt = get_format(name)
    req = fmt.sse_request(params)
    assert req.method == "POST" and req.target == fmt.sse_path
    plan = StreamPlan.build(fmt.sse_params({}, req.body))
    w = fmt.sse_writer(plan, retry_ms=0, created_s=CREATED)
    encode = w.encoder()
    tokens = [encode(i, 1000 + i, plan.ids[i]) for i in range(plan.n)]
    assert tokens == [w.token(i, 1000 + i, plan.ids[i]) for i in range(plan.n)]
    return plan, [w.preamble(), *tokens, w.done()]


@pytest.mark.parametrize("name", PROVIDERS)
def test_round_trip_gives_the_native_texts(name: str) -> None:
    plan, events = _server_stream(name)
    assert plan.texts() == StreamPlan.build(PARAMS).texts()  # same model as native
    out = _decode(name, b"".join(events))
    tokens = [e for e in out if isinstance(e, Token)]
    assert [(t.seq, t.text) for t in tokens] == list(enumerate(plan.texts()))
    assert [t.t_server_ns for t in tokens] == [1000 + i for i in range(plan.n)]
    assert [t.nbytes for t in tokens] == [
        len(e.split(b"data: ", 1)[1].rstrip(b"\n")) for e in events[1:-1]
    ]
    usage, done = out[-2:]
    prompt = [{"role": "user", "content": llmapi.PROMPT}]
    assert usage == Usage(5, llmapi.input_tokens(prompt), plan.n)
    summary = done_summary(plan.texts())
    assert done.count == plan.n and done.sha256 == summary["sha256"]
    assert done.response_id and done.response_id.startswith(
        {"openai-chat": "chatcmpl-", "openai-responses": "resp_", "anthropic": "msg_"}[name]
    )


@pytest.mark.parametrize("name", PROVIDERS)
def test_events_before_the_first_token_are_not_content(name: str) -> None:
    _, events = _server_stream(name)
    assert events[0]  # the preamble: role chunk / created… / message_start + ping
    assert _decode(name, events[0]) == []
    heartbeat = (
        get_format(name)
        .sse_writer(StreamPlan.build(PARAMS), retry_ms=0, created_s=CREATED)
        .heartbeat
    )
    assert heartbeat is not None and _decode(name, heartbeat) == []


def test_chat_options_shape_the_chunks() -> None:
    fmt = get_format("openai-chat")
    body = {"model": "m%d", "messages": [], "stream": True, "max_completion_tokens": 3,
            "stream_options": {"include_usage": False, "include_obfuscation": False}}  # fmt: skip
    plan = StreamPlan.build(fmt.sse_params({}, json.dumps(body).encode()))
    assert plan.n == 3
    w = fmt.sse_writer(plan, retry_ms=0, created_s=CREATED)
    token = json.loads(w.token(0, 9, plan.ids[0])[len(b"data: ") :])
    assert "obfuscation" not in token and "usage" not in token
    assert token["model"] == "m%d"  # a % in a model name does not break the template
    assert token["choices"] == [
        {"index": 0, "delta": {"content": plan.text(0)}, "logprobs": None, "finish_reason": None}
    ]
    assert token[llmapi.STAMP] == 9 and token["created"] == CREATED
    assert list(token)[:5] == ["id", "object", "created", "model", "system_fingerprint"]
    assert w.done().endswith(b"data: [DONE]\n\n") and b'"usage"' not in w.done()
    # with include_usage every chunk has "usage": null and the last one the counts
    body["stream_options"] = {"include_usage": True}
    w = fmt.sse_writer(StreamPlan.build(fmt.sse_params({}, json.dumps(body).encode())), retry_ms=0)
    token = json.loads(w.token(1, 9, plan.ids[1])[len(b"data: ") :])
    assert token["usage"] is None and 8 <= len(token["obfuscation"]) <= 15
    chunks = [json.loads(c[6:]) for c in w.done().split(b"\n\n")[:-2]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3


def test_responses_sequence_numbers_count_every_event() -> None:
    plan, events = _server_stream("openai-responses")
    body = b"".join(events)
    objs = [json.loads(line[6:]) for line in body.split(b"\n") if line.startswith(b"data: ")]
    assert [o["sequence_number"] for o in objs] == list(range(len(objs)))
    types = [o["type"] for o in objs]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[4:-4] == ["response.output_text.delta"] * plan.n
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    text = "".join(plan.texts())
    assert (
        objs[-4]["text"] == text and objs[-1]["response"]["output"][0]["content"][0]["text"] == text
    )
    assert {o["item_id"] for o in objs[3:-2]} == {objs[2]["item"]["id"]}
    assert objs[0]["response"]["id"] == objs[-1]["response"]["id"]


def test_requests_carry_standard_fields_and_the_extension_object() -> None:
    params = StreamParams(seed=9, tokens=12, ttft_ms=300, gap_ms=5, jitter=0.1, stream="s",
                          extra={"model": "gpt-x", "previous_response_id": "resp_1"})  # fmt: skip
    chat = json.loads(get_format("openai-chat").sse_request(params).body)
    assert chat["seed"] == 9 and chat["max_tokens"] == 12 and chat["model"] == "gpt-x"
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    assert chat[llmapi.EXT] == {"ttft_ms": 300, "gap_ms": 5, "jitter": 0.1, "stream": "s",
                                "pause_ms": 0.0, "pause_at": 0}  # fmt: skip
    resp = json.loads(get_format("openai-responses").sse_request(params).body)
    assert resp["max_output_tokens"] == 12 and resp[llmapi.EXT]["seed"] == 9
    assert resp["previous_response_id"] == "resp_1" and "seed" not in resp
    msgs = get_format("anthropic").sse_request(params)
    assert ("anthropic-version", "2023-06-01") in msgs.headers
    assert json.loads(msgs.body)["max_tokens"] == 12
    for name in PROVIDERS:  # what a client sends, the server reads back
        fmt = get_format(name)
        assert fmt.sse_params({}, fmt.sse_request(params).body) == params
        with pytest.raises(UnsupportedRequest):
            fmt.sse_request(params, method="GET")
        with pytest.raises(UnsupportedRequest):
            fmt.sse_request(params, resume_after=3)


@pytest.mark.parametrize(
    ("name", "creates"),
    [("openai-chat", "a chat completion"), ("openai-responses", "a response"),
     ("anthropic", "a message")],
)  # fmt: skip
def test_provider_requests_are_one_post(name: str, creates: str) -> None:
    """One request builder for the three APIs (llmapi.PostFormat): POST to the format's path
    under the base path, JSON and SSE headers, the refusals naming what the POST creates."""
    fmt = get_format(name)
    assert isinstance(fmt, llmapi.PostFormat) and "sse_request" not in type(fmt).__dict__
    req = fmt.sse_request(PARAMS, base_path="/gw")
    assert (req.method, req.target) == ("POST", f"/gw{fmt.sse_path}")
    assert {("Content-Type", "application/json"), ("Accept", "text/event-stream")} <= set(
        req.headers
    )
    assert json.loads(req.body) == fmt.request_body(PARAMS)
    assert fmt.sse_request(PARAMS, method="POST") == fmt.sse_request(PARAMS)
    assert fmt.sse_request(PARAMS, resume_after=-1).body == req.body  # -1: from the start
    with pytest.raises(UnsupportedRequest, match=f"^{creates} is created with POST, not GET$"):
        fmt.sse_request(PARAMS, method="GET")
    with pytest.raises(UnsupportedRequest, match=f"^{creates} stream cannot be resumed$"):
        fmt.sse_request(PARAMS, resume_after=0)
    if "ws" in fmt.protocols:
        with pytest.raises(UnsupportedRequest, match="cannot be resumed"):
            fmt.ws_reader().start(PARAMS, resume_after=2)


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "m", "messages": []}, "stream"),  # the servers only stream
        ({"stream": True, "ssevsws": {"ttft": 1}}, "ttft"),  # unknown knob
        ({"stream": True, "ssevsws": [1]}, "ssevsws"),
        ({"stream": True, "ssevsws": {"gap_ms": -1}}, "gap_ms"),
        ({"stream": True, "model": 5}, "model"),
        ({"stream": True, "stream_options": {"include_obfuscation": "no"}}, None),
    ],
)
def test_bad_requests_are_param_errors(name: str, body: dict[str, Any], field: str | None) -> None:
    fmt = get_format(name)
    if field is None and name == "anthropic":
        return  # Anthropic has no stream_options
    with pytest.raises(ParamError) as err:
        fmt.sse_params({}, json.dumps(body).encode())
    if field is not None:
        assert err.value.field == field
    with pytest.raises(ParamError, match="body"):
        fmt.sse_params({}, None)


def test_a_field_given_twice_must_agree() -> None:
    fmt = get_format("openai-chat")
    body = {"stream": True, "seed": 3, "ssevsws": {"seed": 3, "stream": "a"}}
    assert fmt.sse_params({}, json.dumps(body).encode()).seed == 3
    body["ssevsws"]["seed"] = 4  # type: ignore[index]
    with pytest.raises(ParamError, match="disagrees"):
        fmt.sse_params({}, json.dumps(body).encode())


# --------------------------------------------------------------------------- split everywhere
def _sse_wire(events: list[bytes]) -> tuple[bytes, int, int, list[int]]:
    """The chunked response; the offsets of its first body byte, of the last byte of its
    first event, and of the last byte of each token event."""
    wire = chunked(events)
    pos = wire.index(b"\r\n\r\n") + 4
    first_byte = pos + len(b"%x\r\n" % len(events[0]))
    first_event = first_byte + events[0].index(b"\n\n") + 1
    ends = []
    for i, e in enumerate(events):
        pos += len(b"%x\r\n" % len(e)) + len(e)
        if 0 < i < len(events) - 1:
            ends.append(pos - 1)
        pos += 2
    return wire, first_byte, first_event, ends


@pytest.mark.parametrize("name", PROVIDERS)
def test_sse_split_at_every_byte(name: str) -> None:
    fmt = get_format(name)
    plan, events = _server_stream(name)
    wire, first_byte, first_event, ends = _sse_wire(events)

    def fresh() -> SSEClient:
        c = SSEClient(fmt, "127.0.0.1:1")
        c.request(PARAMS)
        return c

    want = run(fresh(), wire, [])
    assert [type(e).__name__ for e in want[:3]] == ["Opened", "FirstByte", "FirstEvent"]
    for cut in range(1, len(wire)):
        c = fresh()
        got = run(c, wire, [cut])
        assert [type(e) for e in got] == [type(e) for e in want], cut
        tokens = [e for e in got if isinstance(e, Token)]
        assert [(t.seq, t.text) for t in tokens] == list(enumerate(plan.texts())), cut
        assert [t.t_ns for t in tokens] == [1 if end < cut else 2 for end in ends], cut
        firsts = {type(e): e.t_ns for e in got if isinstance(e, FirstByte | FirstEvent)}
        assert firsts[FirstByte] == (1 if first_byte < cut else 2), cut
        assert firsts[FirstEvent] == (1 if first_event < cut else 2), cut
        assert isinstance(got[-1], Done) and got[-1].count == plan.n and c.done, cut
        assert c.ended and c.reusable, cut


def _ws_pair() -> tuple[WSClient, ServerProtocol]:
    fmt = get_format("openai-responses")
    client = WSClient(fmt, ws_uri("127.0.0.1", 9, fmt.ws_path or ""))
    server = ServerProtocol()
    server.receive_data(client.handshake())
    [request] = server.events_received()
    server.send_response(server.accept(request))
    client.feed_handshake(1, b"".join(server.data_to_send()))
    assert client.is_open
    return client, server


def test_responses_ws_split_at_every_byte_and_chained_responses() -> None:
    fmt = get_format("openai-responses")
    client, server = _ws_pair()
    server.receive_data(client.start(PARAMS))
    [create] = server.events_received()
    msg = fmt.ws_client_message(create.data.decode())
    plan = StreamPlan.build(msg.params)  # type: ignore[union-attr]
    assert msg.params == PARAMS  # type: ignore[union-attr]
    w = fmt.ws_writer(plan, created_s=CREATED)
    encode = w.encoder()
    messages = [
        *(m.encode() for m in w.preamble()),
        *(encode(i, 50 + i, plan.ids[i]) for i in range(plan.n)),
        *(m.encode() for m in w.done()),
    ]
    frames = [Frame(Opcode.TEXT, m).serialize(mask=False) for m in messages]
    wire = b"".join(frames)
    token_ends = []
    pos = 0
    for i, f in enumerate(frames):
        pos += len(f)
        if 4 <= i < 4 + plan.n:
            token_ends.append(pos - 1)
    first_end = len(frames[0]) - 1
    for cut in range(1, len(wire)):
        c, s = _ws_pair()
        s.receive_data(c.start(PARAMS))
        got: list[Any] = []
        c.feed(1, wire[:cut], got)
        c.feed(2, wire[cut:], got)
        tokens = [e for e in got if isinstance(e, Token)]
        assert [(t.seq, t.text, t.t_server_ns) for t in tokens] == [
            (i, plan.text(i), 50 + i) for i in range(plan.n)
        ], cut
        assert [t.t_ns for t in tokens] == [1 if end < cut else 2 for end in token_ends], cut
        firsts = [e.t_ns for e in got if isinstance(e, FirstByte | FirstEvent)]
        assert firsts == [1 if first_end < cut else 2] * 2, cut
        assert isinstance(got[-1], Done) and got[-1].sha256 == done_summary(plan.texts())["sha256"]
    # the next turn on the same connection continues the last response
    done = got[-1]
    client.finish()
    nxt = StreamParams(
        seed=12, tokens=2, stream="p-2", extra={"previous_response_id": done.response_id}
    )
    server.receive_data(client.start(nxt))
    body = json.loads(server.events_received()[0].data)
    assert body["type"] == "response.create" and "stream" not in body
    assert body["previous_response_id"] == done.response_id
    assert fmt.ws_client_message(json.dumps(body)).params.extra["previous_response_id"] == (  # type: ignore[union-attr]
        done.response_id
    )
    # no cancel message in WebSocket mode: the transport closes the connection instead
    assert client.cancel() is None and client.current is None


def test_responses_ws_client_messages_and_errors() -> None:
    fmt = get_format("openai-responses")
    for text in ("[1]", '{"type":"response.cancel"}', '{"type":"response.create","model":1}'):
        with pytest.raises(ProtocolError):
            fmt.ws_client_message(text)
    err = json.loads(fmt.ws_error("stream already running", "s", "stream"))
    assert err["status"] == 400 and err["type"] == "error"
    assert err["error"] == {"type": "invalid_request_error", "code": None,
                            "message": "stream already running", "param": "stream"}  # fmt: skip
    busy = json.loads(fmt.ws_error("busy", "s", limit="max_active_streams"))
    assert busy["status"] == 503 and busy["error"]["code"] == "max_active_streams"
    reader = fmt.ws_reader()
    reader.start(PARAMS)
    out: list[Any] = []
    assert reader.on_message(3, json.dumps(err).encode(), out)
    assert out == [Failed(3, None, "invalid_request_error: stream already running")]


def test_sse_only_formats_have_no_ws_form() -> None:
    for name in ("openai-chat", "anthropic"):
        fmt = get_format(name)
        assert fmt.protocols == ("sse",) and fmt.ws_path is None
        with pytest.raises(UnsupportedRequest, match="no WebSocket form"):
            fmt.ws_reader()
