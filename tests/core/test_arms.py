"""The arm registry: lookups, protocol rules, display order."""

from __future__ import annotations

import pytest

from core import arms
from core.arms import Arm, UnknownArm, arm_names, arms_of, get_arm, protocol_of, sort_arms


def test_builtin_arms_and_protocols() -> None:
    assert arm_names()[:3] == ("sse", "ws", "ws-websockets")
    assert protocol_of("sse") == "sse"
    assert protocol_of("ws") == "ws"
    assert protocol_of("ws-websockets") == "ws"
    assert get_arm("ws-websockets").server_kind == "ws-websockets"
    assert get_arm("sse").metering == "sse" and get_arm("ws").client == "ws"


def test_unknown_arm_is_refused_not_guessed() -> None:
    # a prefix rule would call "ws-foo" WS and "sse-h2" anything; the registry refuses both
    for name in ("ws-foo", "sse-h2", "", "SSE"):
        with pytest.raises(UnknownArm, match="known: sse, ws"):
            protocol_of(name)


def test_arms_of_and_sort() -> None:
    assert arms_of("ws", ["sse", "ws", "ws-websockets"]) == ["ws", "ws-websockets"]
    assert sort_arms({"zz-custom", "ws", "sse"}) == ["sse", "ws", "zz-custom"]


def test_register_twice_and_bad_protocol() -> None:
    with pytest.raises(ValueError, match="already registered"):
        arms.register(Arm("sse", "sse"))
    with pytest.raises(ValueError, match="protocol"):
        Arm("x", "http")  # type: ignore[arg-type]


def test_provider_format_arms() -> None:
    """The provider formats run on the same reference servers, metered by protocol."""
    want = {
        "sse-openai-chat": ("sse", "openai-chat", "sse"),
        "sse-openai-responses": ("sse", "openai-responses", "sse"),
        "ws-openai-responses": ("ws", "openai-responses", "ws"),
        "sse-anthropic": ("sse", "anthropic", "sse"),
    }
    for name, (protocol, fmt, server) in want.items():
        arm = get_arm(name)
        assert (arm.protocol, arm.format, arm.server_kind) == (protocol, fmt, server), name
        assert arm.metering == protocol and arm.client == protocol, name
    assert arm_names()[:3] == ("sse", "ws", "ws-websockets")  # the native arms come first
    assert arms_of("ws") == ["ws", "ws-websockets", "ws-openai-responses", "browser-ws"]


def test_reference_sse_arm() -> None:
    from core.arms import reference_sse_arm

    assert reference_sse_arm(["ws", "sse-openai-responses", "sse"]) == "sse"
    assert reference_sse_arm(
        ["ws-openai-responses", "sse-openai-chat", "sse-openai-responses"]
    ) == ("sse-openai-responses")
    assert reference_sse_arm(["sse-anthropic", "sse-openai-chat"]) == "sse-openai-chat"
    assert reference_sse_arm(["ws", "mystery"]) is None
