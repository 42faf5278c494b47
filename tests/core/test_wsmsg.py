"""WS message codec: accepted messages, refused ones and their close codes."""

from __future__ import annotations

import json

import pytest

from core.schedule import StreamParams
from core.wsmsg import (
    CLOSE_POLICY_VIOLATION,
    CLOSE_TOO_BIG,
    MAX_CLIENT_MESSAGE,
    Cancel,
    ProtocolError,
    Resume,
    Start,
    cancel_message,
    done_message,
    parse_client_message,
    resume_message,
    start_message,
)


def test_start_round_trip() -> None:
    p = StreamParams(seed=4, tokens=10, ttft_ms=5, gap_ms=1, stream="a")
    msg = parse_client_message(start_message(p))
    assert isinstance(msg, Start) and msg.params == p


def test_contract_start_message_parses() -> None:
    text = '{"type":"start","seed":1,"tokens":5,"ttft_ms":300,"gap_ms":20,"jitter":0,"stream":9}'
    msg = parse_client_message(text)
    assert isinstance(msg, Start)
    assert msg.params.stream == 9 and msg.params.tokens == 5


def test_cancel_and_resume_round_trip() -> None:
    assert parse_client_message(cancel_message("x")) == Cancel("x")
    r = parse_client_message(resume_message(3, 41))
    assert r == Resume(3, 41, None)
    p = StreamParams(seed=2, tokens=50, stream=3)
    r2 = parse_client_message(resume_message(3, 10, p))
    assert isinstance(r2, Resume) and r2.params == p and r2.after == 10


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", CLOSE_POLICY_VIOLATION),
        ("[1,2]", CLOSE_POLICY_VIOLATION),
        ('{"type":"launch"}', CLOSE_POLICY_VIOLATION),
        ('{"type":"start","tokens":-1}', CLOSE_POLICY_VIOLATION),
        ('{"type":"start","nope":1}', CLOSE_POLICY_VIOLATION),
        ('{"type":"cancel"}', CLOSE_POLICY_VIOLATION),
        ('{"type":"resume","stream":1}', CLOSE_POLICY_VIOLATION),
        ('{"type":"resume","stream":1,"after":"x"}', CLOSE_POLICY_VIOLATION),
        ("x" * (MAX_CLIENT_MESSAGE + 1), CLOSE_TOO_BIG),
    ],
)
def test_refused_messages_carry_close_code_and_short_reason(text: str, code: int) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_message(text)
    assert info.value.code == code
    assert 0 < len(info.value.reason.encode()) <= 123


def test_done_message_has_contract_keys() -> None:
    obj = json.loads(done_message({"count": 3, "sha256": "ab"}, "s"))
    assert obj["type"] == "done" and obj["count"] == 3 and obj["sha256"] == "ab"
