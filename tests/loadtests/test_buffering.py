"""A client that buffered reads would see the first token only when later bytes arrive.

The tiny server sends token 0 at once (a ~60-byte event, far below any 1 KiB read size)
and token 1 only a second later (ttft_ms=0, pause_at=1, pause_ms=1000). Measured TTFT must
be ≈ 0, not ≈ 1 s (docs/methodology.md, pitfall 1). Tolerances are loose on purpose (2 noisy cores):
the failure mode this guards against is a whole second.
"""

from __future__ import annotations

import pytest

from core.accounting import OK
from core.scenario import StreamSpec

from .conftest import run_user

SPEC = StreamSpec(tokens=3, ttft_ms=0, gap_ms=10, pause_at=1, pause_ms=1000)


@pytest.mark.parametrize("arm", ["sse", "ws"])
def test_first_token_is_not_held_back(tiny: dict[str, str], arm: str) -> None:
    (acct,), _ = run_user(arm, tiny[arm], stream=SPEC)
    assert acct.outcome == OK and acct.checksum_ok
    assert acct.ttft_ns < 100e6, f"TTFT {acct.ttft_ns / 1e6:.1f} ms: reads are buffered"
    assert acct.itl_ns[0] > 900e6  # the pause really happened between token 0 and 1


@pytest.mark.parametrize("arm", ["sse", "ws"])
def test_the_check_catches_a_buffering_client(
    tiny: dict[str, str], arm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads that wait for more bytes (up to 1,024, as `read(1024)` does, or 1.5 s of
    silence) show TTFT ≈ 1 s. Every read reaches the parsers through `Channel.on_read`
    (the process reader's, or a blocking read's), so that is where the buffering goes."""
    import gevent

    from loadtests import wire

    real = wire.Channel.on_read
    held: dict[wire.Channel, tuple[int, bytes, gevent.Greenlet]] = {}

    def release(chan: wire.Channel) -> None:
        t, buf, _ = held.pop(chan)
        real(chan, t, buf)

    def buffered(self: wire.Channel, t_ns: int, data: bytes) -> None:
        if self in held:
            _, buf, timer = held.pop(self)
            timer.kill(block=False)
            if not data:  # EOF: what was held, then the EOF
                real(self, t_ns, buf)
                real(self, t_ns, data)
                return
            data = buf + data
        if data and len(data) < 1024:  # wait for more, as read(1024) would
            held[self] = (t_ns, data, gevent.spawn_later(1.5, release, self))
            return
        real(self, t_ns, data)

    monkeypatch.setattr(wire.Channel, "on_read", buffered)
    (acct,), _ = run_user(arm, tiny[arm], stream=SPEC)
    assert acct.ttft_ns > 900e6
