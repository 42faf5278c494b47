"""The harness on every payload format agrees with native (a real short run each).

The reference servers stream the same synthetic answers (same seed, length and stream id)
in every format; the load client (python -m loadtests.drive: the Locust user's transports
and session script under gevent) runs the same users against each arm, side by side. Each
provider format must report the same TTFT and ITL as the native arm on the same transport
within run-to-run noise, and byte-identical token texts (one digest over every stream's id
and received texts; every checksum verified). Their bookkeeping events come first: time to
first byte is a small fraction of TTFT (native SSE's first bytes are its retry field).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.arms import all_arms

from .conftest import _servers, drive

USERS, SESSIONS, TOKENS = 20, 2, 30
ARGS = ("--users", str(USERS), "--sessions", str(SESSIONS), "--spawn-s", "0.2",
        "--tokens", str(TOKENS), "--ttft-ms", "300", "--gap-ms", "20", "--jitter", "0",
        "--limit-s", "60")  # fmt: skip
#: Run-to-run noise of the median on this machine class (shared, 2 cores): a few ms for
#: TTFT (40 streams), well under a millisecond for ITL (1,160 gaps). A format that parsed
#: slowly, or timed a bookkeeping event, would move them by far more.
TTFT_NOISE_MS = 10.0
ITL_NOISE_MS = 1.0


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    specs = {
        kind: (["-m", "servers", kind, "--port", "{port}", "--host", "127.0.0.1"], scheme)
        for kind, scheme in (("sse", "http"), ("ws", "ws"))
    }
    yield from _servers(specs)


def test_every_format_agrees_with_native(urls: dict[str, str]) -> None:
    arms = [a for a in all_arms() if a.server_kind in ("sse", "ws")]
    assert {"native", "openai-chat", "openai-responses", "anthropic"} <= {a.format for a in arms}
    out = {}
    for arm in arms:
        out[arm.name] = drive(arm.protocol, urls[arm.server_kind], "--format", arm.format, *ARGS)
    want = out["sse"]["texts_sha256"]
    for arm in arms:
        o = out[arm.name]
        assert o["outcomes"] == {"ok": USERS * SESSIONS}, (arm.name, o["errors"])
        assert o["checksum_ok"] == USERS * SESSIONS and o["lost"] == 0, arm.name
        assert o["texts_sha256"] == want, arm.name  # the same texts in every format
        native = out[arm.protocol]  # the native arm on the same transport
        assert abs(o["ttft_ms_median"] - native["ttft_ms_median"]) < TTFT_NOISE_MS, (arm, o)
        assert abs(o["itl_ms_median"] - native["itl_ms_median"]) < ITL_NOISE_MS, (arm, o)
        if arm.format != "native":  # bookkeeping first: answered at once, content at 300 ms
            assert o["ttfb_ms_median"] < o["ttft_ms_median"] / 5, (arm.name, o)
            assert o["event_bytes_per_token"] > out[arm.protocol]["event_bytes_per_token"]
    # native WS: the first message is the first token
    assert out["ws"]["first_event_ms_median"] == out["ws"]["ttft_ms_median"]
