"""The official SDKs as real clients of the reference servers (``base_url`` on 127.0.0.1).

Each streams an answer and must get exactly the native token texts for the same seed,
length and stream id, with the usage the stream reported: OpenAI's chat completions and
Responses API (SSE), Anthropic's messages, and the Responses API's WebSocket mode through
``client.responses.connect()`` (several responses on one connection, continued with
``previous_response_id``). The timing knobs ride in ``extra_body={"ssevsws": {...}}``
(core.formats.llmapi). The ``openai[realtime]`` extra pins websockets < 16, which this
project cannot use (>= 17): the SDK's WebSocket mode runs on websockets 17 here.
"""

from __future__ import annotations

import pytest

from core.schedule import token_texts
from tests.servers.conftest import ServerPool, start_server, stop_server

openai = pytest.importorskip("openai")  # dev dependencies (pyproject: openai>=3.8)
anthropic = pytest.importorskip("anthropic")

N = 25
KNOBS = {"ttft_ms": 20, "gap_ms": 2, "stream": "sdk-1"}


def _want(seed: int) -> str:
    return "".join(token_texts(seed, "sdk-1", N))


def _openai(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=20)


def test_openai_chat_completions(servers: ServerPool) -> None:
    client = _openai(servers.get("sse").http)
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "hello"}],
        stream=True,
        seed=7,
        max_tokens=N,
        stream_options={"include_usage": True},
        extra_body={"ssevsws": KNOBS},
    )
    parts, usage, roles = [], None, []
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk" and chunk.model == "gpt-test"
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.role:
                roles.append(choice.delta.role)
            if choice.delta.content:
                parts.append(choice.delta.content)
    assert "".join(parts) == _want(7) and roles == ["assistant"]
    assert usage is not None and usage.completion_tokens == N


def test_openai_responses_over_sse(servers: ServerPool) -> None:
    client = _openai(servers.get("sse").http)
    knobs = {**KNOBS, "seed": 8}
    with client.responses.stream(
        model="gpt-test", input="hello", max_output_tokens=N, extra_body={"ssevsws": knobs}
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == _want(8) == final.output_text
    assert final.status == "completed" and final.usage is not None
    assert final.usage.output_tokens == N


def test_anthropic_messages(servers: ServerPool) -> None:
    client = anthropic.Anthropic(
        base_url=servers.get("sse").http, api_key="unused", max_retries=0, timeout=20
    )
    knobs = {**KNOBS, "seed": 9}
    with client.messages.stream(
        model="claude-test",
        max_tokens=N,
        messages=[{"role": "user", "content": "hello"}],
        extra_body={"ssevsws": knobs},
    ) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert text == _want(9) and message.stop_reason == "end_turn"
    assert message.usage.output_tokens == N and message.id.startswith("msg_")


def test_openai_responses_websocket_mode(servers: ServerPool) -> None:
    client = _openai(servers.get("ws").http)
    assert hasattr(client.responses, "connect")  # openai >= 3.8
    with client.responses.connect() as conn:
        # the SDK's typed call, without the extension object: native defaults (stream 0,
        # TTFT 400 ms, a token every 20 ms), 5 tokens
        conn.response.create(model="gpt-test", input="hello", max_output_tokens=5)
        deltas, first = [], None
        for event in conn:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
            elif event.type == "response.completed":
                first = event.response
                break
            assert event.type != "error", event
        assert first is not None and "".join(deltas) == "".join(token_texts(0, 0, 5))
        # the next turns continue it on the same connection (a raw event: the typed
        # create() takes no extra body fields)
        previous = first.id
        for seed in (10, 11):
            conn.send({"type": "response.create", "model": "gpt-test", "input": "more",
                       "max_output_tokens": N, "previous_response_id": previous,
                       "ssevsws": {**KNOBS, "seed": seed}})  # fmt: skip
            deltas = []
            for event in conn:
                if event.type == "response.output_text.delta":
                    deltas.append(event.delta)
                elif event.type == "response.completed":
                    assert event.response.previous_response_id == previous
                    previous = event.response.id
                    break
                assert event.type != "error", event
            assert "".join(deltas) == _want(seed)


def test_sdk_api_keys_are_the_servers_token() -> None:
    srv = start_server("sse", env={"SSEVSWS_TOKEN": "t0ken"})
    try:
        bad = openai.OpenAI(base_url=f"{srv.http}/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(model="m", messages=[], stream=True, max_tokens=2)
        good = openai.OpenAI(base_url=f"{srv.http}/v1", api_key="t0ken", max_retries=0)
        chunks = good.chat.completions.create(
            model="m", messages=[], stream=True, max_tokens=2,
            extra_body={"ssevsws": {"ttft_ms": 0, "gap_ms": 0}},
        )  # fmt: skip
        assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 2
        claude = anthropic.Anthropic(base_url=srv.http, api_key="t0ken", max_retries=0)
        msg = claude.messages.create(
            model="m", max_tokens=2, messages=[], stream=True,
            extra_body={"ssevsws": {"ttft_ms": 0, "gap_ms": 0}},
        )  # fmt: skip
        assert [e.type for e in msg][-1] == "message_stop"
    finally:
        assert stop_server(srv) == 0
