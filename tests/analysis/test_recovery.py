"""Recovery per stream (analysis.recovery) on hand-made records whose every stamp is known."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.recovery import recovery_streams
from analysis.sections.network import rtt_rows

MS = 1_000_000


def _stream(drops: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "stream_uid": ["s1"],
            "phase": ["p"],
            "worker": ["w"],
            "user": [0],
            "t_send_ns": [0],
            "t_end_ns": [10_000 * MS],
            "t_drops_ns": [drops],
            "outcome": ["ok"],
            "n_lost": [0],
            "conn_uid": ["c1"],
        }
    )


def _tokens(recv_ms: list[float], sent_ms: list[float | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "stream_uid": "s1",
            "seq": np.arange(len(recv_ms)),
            "t_recv_ns": [int(x * MS) for x in recv_ms],
            "t_server_ns": pd.array(
                [None if x is None else int(x * MS) for x in sent_ms], dtype="Int64"
            ),
        }
    )


def test_fault_to_next_token_skips_tokens_already_on_their_way() -> None:
    """A handover at 1000 ms: two tokens the server wrote before it are read just after it
    (in the socket already); the outage ends with the first token sent after the fault
    (the resumed emission, read at 3500 ms). Client detect: the drop at 1001 ms."""
    faults = {"p": ([1000 * MS], {})}
    tokens = _tokens([900, 1000.5, 1002, 3500, 3520], [880, 985, 990, 3480, 3500])
    (row,) = recovery_streams(_stream([1001 * MS]), tokens, faults).itertuples(index=False)
    assert row.hit and row.faults == 1
    assert row.fault_to_token_ms == [2500.0]
    assert row.client_detect_ms == [1.0]
    assert row.stall_ms == 2498.0


def test_fault_to_next_token_without_send_stamps_uses_what_was_read() -> None:
    faults = {"p": ([1000 * MS], {})}
    tokens = _tokens([900, 1002, 3500], [None, None, None])
    (row,) = recovery_streams(_stream([]), tokens, faults).itertuples(index=False)
    assert row.fault_to_token_ms == [2.0]


def test_no_token_after_the_fault_is_not_measured() -> None:
    faults = {"p": ([1000 * MS], {})}
    tokens = _tokens([900, 1002], [880, 990])  # the rest was lost
    (row,) = recovery_streams(_stream([1001 * MS]), tokens, faults).itertuples(index=False)
    assert row.fault_to_token_ms == [None]


def test_rtt_rows_count_from_the_moment_the_user_asked() -> None:
    """The RTT sweep's TTFT includes a new connection's set-up (asked → request sent), and
    its label names the configuration within the scenario (plain / TLS and the RTT)."""
    streams = pd.DataFrame(
        {
            "arm": ["sse", "sse", "ws", "ws"],
            "turn": [0, 1, 0, 1],
            "t_sched_ns": pd.array([0, 1000 * MS, 0, None], dtype="Int64"),
            "t_send_ns": [200 * MS, 1000 * MS, 350 * MS, 1000 * MS],
            "t_first_ns": [500 * MS, 1300 * MS, 650 * MS, 1300 * MS],
        }
    )
    rows = rtt_rows(streams, "chat-rtt.tls.rtt150", "chat-rtt", ["sse", "ws"])
    got = {(r["arm"], r["label"]): (r["ttft_first_p50"], r["ttft_later_p50"]) for r in rows}
    # set-up of 200 / 350 ms on the first turn; the WS turn without t_sched from its send
    assert got == {("sse", "tls.rtt150"): (500.0, 300.0), ("ws", "tls.rtt150"): (650.0, 300.0)}
