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
    """Reads that wait for more bytes (up to 1,024, as `read(1024)` does) show TTFT ≈ 1 s."""
    import time

    from loadtests import wire

    real = wire.Channel.recv_some

    def buffered(self: wire.Channel, deadline_ns: int) -> tuple[int, bytes] | None:
        got = real(self, deadline_ns)
        if got is None or not got[1]:
            return got
        t, buf = got
        while len(buf) < 1024:  # wait (up to 1.5 s a read) for more before returning
            more = real(self, min(deadline_ns, time.monotonic_ns() + 1_500_000_000))
            if more is None or not more[1]:
                break
            t, buf = more[0], buf + more[1]
        return t, buf

    monkeypatch.setattr(wire.Channel, "recv_some", buffered)
    (acct,), _ = run_user(arm, tiny[arm], stream=SPEC)
    assert acct.ttft_ns > 900e6
