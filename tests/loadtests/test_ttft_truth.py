"""TTFT is the first content delta, not the first byte (docs/methodology.md, "TTFT").

A scripted provider endpoint (tests/loadtests/scripted_llm.py, not the project's servers)
answers at once with the provider's own bookkeeping — OpenAI's role-only chunk, Anthropic's
``message_start`` + ``content_block_start`` + ``ping``, the Responses API's
``response.created`` + ``response.in_progress`` — and sends the first content delta 300 ms
after it read the request. The harness (the Locust user's transports and session script)
must report TTFT ≈ 300 ms and time to first byte / first event ≈ 0: a benchmark that stops
the clock at the first byte would report the latter as TTFT.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.scenario import SessionSpec, StreamSpec

from .conftest import run_user, start_server, stop_server

SCRIPT = Path(__file__).with_name("scripted_llm.py")
DELAY_MS = 300.0  # scripted_llm.DELAY_MS: content starts this long after the request is read
#: Generous bound for the harness and a loaded shared machine; the truth is the gap between
#: ~0 (bookkeeping) and 300 ms (content), two orders of magnitude.
SLACK_MS = 60.0


@pytest.fixture(scope="module")
def scripted() -> Iterator[str]:
    server, port = start_server([str(SCRIPT), "{port}"])
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(server)


@pytest.mark.parametrize("arm", ["sse-openai-chat", "sse-anthropic", "sse-openai-responses"])
def test_ttft_is_the_first_content_delta_not_the_first_byte(scripted: str, arm: str) -> None:
    accounts, _ = run_user(
        arm,
        scripted,
        stream=StreamSpec(tokens=3, ttft_ms=DELAY_MS, gap_ms=20),
        session=SessionSpec(turns=2),
    )
    assert len(accounts) == 2
    for acct in accounts:
        assert acct.outcome == "ok" and acct.error is None, acct.error
        assert [acct._texts[i] for i in range(3)] == ["Hello", " there", "!"]
        # a foreign server: no integrity record, so the checksum is not measured
        assert acct.got_done and acct.checksum_ok is None and acct.n_lost == 0
        assert acct.t_send_ns is not None and acct.ttft_ns is not None
        ttft = acct.ttft_ns / 1e6
        ttfb = (acct.t_first_byte_ns - acct.t_send_ns) / 1e6  # type: ignore[operator]
        first_event = (acct.t_first_event_ns - acct.t_send_ns) / 1e6  # type: ignore[operator]
        # the content cannot arrive before the script sends it; the bookkeeping is at once
        assert DELAY_MS - 1 <= ttft < DELAY_MS + SLACK_MS, (arm, ttft)
        assert 0 < ttfb <= first_event < SLACK_MS, (arm, ttfb, first_event)
        assert ttfb < ttft / 5
