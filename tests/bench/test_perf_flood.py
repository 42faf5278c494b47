"""bench.perf.flood's paced accounting without sockets: which streams were active in the
window (the figure that tells a slow-to-connect run from a server that cannot keep up)."""

from __future__ import annotations

import pytest

from bench.perf.flood import State, _finished, _params


def test_active_seconds_count_only_token_flow_inside_the_window() -> None:
    st = State()
    spec = {"tokens": 11, "gap_ms": 100.0}
    t = 100.0  # monotonic seconds
    # stream a: tokens from t to t+1, ended before the window [t+2, t+4]
    st.first_token("a", t)
    _finished(st, _params(spec, "a"), t, t, t + 1.0)
    # stream b: t+1.5 → t+3, half of it in the window
    st.first_token("b", t + 1.5)
    _finished(st, _params(spec, "b"), t + 1.5, t + 1.5, t + 3.0)
    # stream c: started at t+2.5 and still running at the window's end
    st.first_token("c", t + 2.5)
    assert st.active_seconds(t + 2.0, t + 4.0) == pytest.approx(0.0 + 1.0 + 1.5)
    assert st.streams_done == 2 and set(st.live) == {"c"}
    # the per-stream rate: 10 gaps of 100 ms = 1 s scheduled; a took 1 s, b 1.5 s
    assert st.kept == pytest.approx([1.0, 1.0 / 1.5])


def test_a_stream_that_never_delivered_is_not_active() -> None:
    st = State()
    _finished(st, _params({"tokens": 3, "gap_ms": 10.0}, "x"), 0.0, 0.0, 0.0)
    assert st.active_seconds(0.0, 1.0) == 0.0 and st.spans == []
