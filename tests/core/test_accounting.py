"""StreamAccount / ConnectionAccount: figures and integrity from a scripted clock."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.accounting import (
    CANCELLED,
    DROPPED,
    OK,
    ConnectionAccount,
    ConnectionLabels,
    StreamAccount,
    StreamLabels,
)
from core.records import CONNECTIONS, STREAMS, TOKENS
from core.schedule import done_summary, token_texts

MS = 1_000_000


def labels(n: int = 10, **kw) -> StreamLabels:
    base = dict(
        stream_uid="p:1",
        phase="p",
        arm="sse",
        worker="h-1",
        user=0,
        session=0,
        turn=0,
        stream_id="1.0.0.0.0",
        seed=1,
        tokens_expected=n,
    )
    base.update(kw)
    return StreamLabels(**base)


def feed(acct: StreamAccount, seqs: list[int], texts: list[str], t0: int, gap: int) -> int:
    t = t0
    for s in seqs:
        acct.token(s, t, t - 1000, 40, texts[s])
        t += gap
    return t


def test_scripted_clock_e2e_minus_ttft_is_sum_of_itl() -> None:
    texts = token_texts(1, "x", 10)
    acct = StreamAccount(labels(), t_sched_ns=0)
    acct.sent(5 * MS)
    acct.opened(6 * MS, "c1", reused=False, status=200)
    gaps = [20, 21, 19, 35, 5, 20, 20, 22, 18]
    t = 305 * MS
    for i, text in enumerate(texts):
        acct.token(i, t, t - 100, 50, text)
        if i < len(gaps):
            t += gaps[i] * MS
    summary = done_summary(texts)
    acct.done(summary["count"], summary["sha256"])
    acct.finish(t + MS, OK)
    assert acct.ttft_ns == 300 * MS
    assert acct.itl_ns == [g * MS for g in gaps]
    assert acct.e2e_ns - acct.ttft_ns == sum(acct.itl_ns)
    assert acct.tpot_ns == sum(gaps) * MS / 9
    row = acct.streams_row()
    assert row["checksum_ok"] is True and row["done"] is True
    assert row["n_lost"] == 0 and row["n_dup"] == 0 and row["n_out_of_order"] == 0
    assert row["t_first_ns"] - row["t_send_ns"] == 300 * MS
    assert set(row) == set(STREAMS.names)
    assert set(acct.tokens_columns()) == set(TOKENS.names)


@given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=60))
def test_identity_holds_for_any_arrival_times(deltas: list[int]) -> None:
    acct = StreamAccount(labels(len(deltas)))
    acct.sent(0)
    t = 0
    for i, d in enumerate(deltas):
        t += d
        acct.token(i, t, None, 1, "a")
    assert acct.e2e_ns - acct.ttft_ns == sum(acct.itl_ns)
    assert len(acct.itl_ns) == len(deltas) - 1


def test_reconnect_with_resume_loses_nothing() -> None:
    """Drop after seq 4, resume after 4: expected = unique + lost with zero lost, zero dup."""
    texts = token_texts(2, "r", 10)
    acct = StreamAccount(labels(10))
    acct.sent(0)
    acct.opened(MS, "c1", reused=False)
    t = feed(acct, [0, 1, 2, 3, 4], texts, 300 * MS, 20 * MS)
    acct.dropped(t)
    assert acct.last_seq == 4
    acct.reconnected(t + MS)
    acct.sent(t + MS)  # does not move the stream's clock
    feed(acct, [5, 6, 7, 8, 9], texts, t + 7 * MS, 20 * MS)
    s = done_summary(texts)
    acct.done(s["count"], s["sha256"])
    acct.finish(t + 200 * MS, OK)
    row = acct.streams_row()
    assert row["t_send_ns"] == 0
    assert row["tokens_expected"] == row["n_unique"] + row["n_lost"]
    assert (row["n_lost"], row["n_dup"], row["reconnects"]) == (0, 0, 1)
    assert row["t_drop_ns"] == t
    assert acct.reconnect_gaps_ns == [7 * MS]
    assert row["checksum_ok"] is True
    assert acct.e2e_ns - acct.ttft_ns == sum(acct.itl_ns)


def test_reconnect_replaying_counts_duplicates() -> None:
    """A server that resumes from an earlier seq: duplicates counted, checksum still right."""
    texts = token_texts(3, "d", 8)
    acct = StreamAccount(labels(8))
    acct.sent(0)
    t = feed(acct, [0, 1, 2, 3, 4], texts, MS, MS)
    acct.dropped(t)
    acct.reconnected(t)
    feed(acct, [2, 3, 4, 5, 6, 7], texts, t + MS, MS)
    s = done_summary(texts)
    acct.done(s["count"], s["sha256"])
    acct.finish(t + 100 * MS, OK)
    row = acct.streams_row()
    assert (row["n_received"], row["n_unique"], row["n_dup"], row["n_lost"]) == (11, 8, 3, 0)
    assert row["n_out_of_order"] == 0  # a replayed seq is a duplicate, not out of order
    assert row["checksum_ok"] is True


def test_drop_without_resume_counts_lost() -> None:
    texts = token_texts(4, "l", 10)
    acct = StreamAccount(labels(10))
    acct.sent(0)
    t = feed(acct, [0, 1, 2], texts, MS, MS)
    acct.dropped(t)
    acct.finish(t, DROPPED, "connection closed mid-stream")
    row = acct.streams_row()
    assert row["n_lost"] == 7 and row["tokens_expected"] == row["n_unique"] + row["n_lost"]
    assert row["checksum_ok"] is None and row["done"] is False
    assert acct.reconnect_gaps_ns == [None]


def test_out_of_order_and_bad_checksum() -> None:
    texts = token_texts(5, "o", 4)
    acct = StreamAccount(labels(4))
    acct.sent(0)
    feed(acct, [0, 2, 1, 3], texts, MS, MS)
    acct.done(4, hashlib.sha256(b"something else").hexdigest())
    acct.finish(10 * MS, OK)
    row = acct.streams_row()
    assert row["n_out_of_order"] == 1 and row["n_dup"] == 0
    assert row["checksum_ok"] is False


def test_checksum_needs_the_right_count() -> None:
    texts = token_texts(6, "c", 3)
    acct = StreamAccount(labels(3))
    feed(acct, [0, 1, 2], texts, MS, MS)
    s = done_summary(texts)
    acct.done(4, s["sha256"])
    assert acct.checksum_ok is False


def test_cancelled_stream_has_no_loss_and_first_finish_wins() -> None:
    acct = StreamAccount(labels(10))
    acct.sent(0)
    feed(acct, [0, 1], token_texts(1, "c", 10), MS, MS)
    acct.finish(5 * MS, CANCELLED)
    acct.finish(9 * MS, OK)
    row = acct.streams_row()
    assert row["outcome"] == CANCELLED and row["t_end_ns"] == 5 * MS
    assert row["n_lost"] is None


def test_no_tokens_gives_no_timings() -> None:
    acct = StreamAccount(labels(5))
    acct.sent(0)
    acct.finish(MS, "error", "HTTP 400: tokens: must be between 1 and 100000")
    assert acct.ttft_ns is None and acct.e2e_ns is None and acct.tpot_ns is None
    assert acct.itl_ns == [] and acct.last_seq is None
    with pytest.raises(ValueError):
        StreamAccount(labels()).finish(0, "weird")


def test_connection_busy_and_idle() -> None:
    c = ConnectionAccount(ConnectionLabels("c1", "p", "ws", "h-1", 0), t_connect_ns=0)
    c.opened(2 * MS)
    c.stream_started(10 * MS)
    c.stream_ended(110 * MS)
    c.stream_started(3_110 * MS)
    assert c.close(3_160 * MS, "client", 1000, "bye")  # closing ends the busy span
    assert not c.close(4_000 * MS, "server")
    row = c.row()
    assert set(row) == set(CONNECTIONS.names)
    assert row["streams"] == 2 and row["busy_ns"] == 150 * MS
    assert row["t_close_ns"] - row["t_open_ns"] - row["busy_ns"] == 3_008 * MS
    assert row["closed_by"] == "client"
