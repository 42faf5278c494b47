"""A scripted stand-in for a provider's streaming endpoint (raw asyncio, not the project's
servers): it answers at once with the provider's own bookkeeping events, copied from the
providers' worked examples, and sends the first content delta `DELAY_MS` after it read the
request — the truth the TTFT test measures the harness against.

    python tests/loadtests/scripted_llm.py PORT

- ``POST /v1/chat/completions``: the role-only chunk, then 300 ms later "Hello", " there",
  "!" chunks, the finish chunk and ``data: [DONE]`` (openai/openai-openapi's
  CreateChatCompletionStreamResponse example);
- ``POST /v1/messages``: ``message_start``, ``content_block_start`` and ``ping``, then the
  three ``text_delta`` events, ``content_block_stop``, ``message_delta``, ``message_stop``
  (anthropics/anthropic-sdk-python's recorded basic_response.txt);
- ``POST /v1/responses``: ``response.created`` and ``response.in_progress``, then three
  ``response.output_text.delta`` events and ``response.completed``.

No send stamps, no integrity record: a foreign server. Prints "listening on
http://127.0.0.1:PORT" when ready (port 0: the kernel picks one).
"""

from __future__ import annotations

import asyncio
import json
import sys

DELAY_MS = 300
TEXTS = ("Hello", " there", "!")


def _chunk(delta: dict, finish: str | None = None) -> bytes:
    obj = {"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
           "model": "gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb",
           "choices": [{"index": 0, "delta": delta, "logprobs": None,
                        "finish_reason": finish}]}  # fmt: skip
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _event(obj: dict) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (obj["type"].encode(), json.dumps(obj).encode())


def script(path: str) -> tuple[bytes, list[bytes], bytes]:
    """(sent at once, one event per content delta, the end) of `path`'s stream."""
    if path == "/v1/chat/completions":
        return (
            _chunk({"role": "assistant", "content": ""}),
            [_chunk({"content": t}) for t in TEXTS],
            _chunk({}, "stop") + b"data: [DONE]\n\n",
        )
    if path == "/v1/messages":
        message = {"id": "msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK", "type": "message",
                   "role": "assistant", "content": [], "model": "claude-3-opus-latest",
                   "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": 11, "output_tokens": 1}}  # fmt: skip
        return (
            _event({"type": "message_start", "message": message})
            + _event(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                }
            )
            + b'event: ping\ndata: {"type": "ping"}\n\n',
            [
                _event(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": t},
                    }
                )
                for t in TEXTS
            ],
            _event({"type": "content_block_stop", "index": 0})
            + _event(
                {
                    "type": "message_delta",
                    "usage": {"output_tokens": 6},
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                }
            )
            + _event({"type": "message_stop"}),
        )
    response = {"id": "resp_123", "object": "response", "status": "in_progress", "output": []}
    return (
        _event({"type": "response.created", "response": response, "sequence_number": 0})
        + _event({"type": "response.in_progress", "response": response, "sequence_number": 1}),
        [
            _event(
                {
                    "type": "response.output_text.delta",
                    "item_id": "msg_123",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": t,
                    "sequence_number": 2 + i,
                }
            )
            for i, t in enumerate(TEXTS)
        ],
        _event(
            {
                "type": "response.completed",
                "sequence_number": 5,
                "response": {**response, "status": "completed"},
            }
        ),
    )


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            loop = asyncio.get_running_loop()
            due = loop.time() + DELAY_MS / 1000  # from the moment the request was read
            lines = head.decode().split("\r\n")
            method, path = lines[0].split(" ")[:2]
            length = next(
                (int(v) for k, _, v in (ln.partition(":") for ln in lines[1:])
                 if k.lower() == "content-length"), 0,
            )  # fmt: skip
            await reader.readexactly(length)
            if method != "POST":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
                continue
            first, deltas, end = script(path)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + _chunked(first)
            )
            await writer.drain()
            await asyncio.sleep(max(0.0, due - loop.time()))
            for d in deltas:
                writer.write(_chunked(d))
                await writer.drain()
                await asyncio.sleep(0.02)
            writer.write(_chunked(end) + b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(serve_one, "127.0.0.1", port)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on http://127.0.0.1:{bound}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
