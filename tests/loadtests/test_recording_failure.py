"""A record writer that cannot write (issue 11 item 2): the sink stops recording at once,
says why once, keeps what it flushed before, counts what it lost, and never raises into
the load generator. The write failure is injected (ENOSPC from the part writer); the real
full disk is tests/bench/test_integrity.py."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from core.accounting import OK, StreamAccount, StreamLabels
from core.runfolder import RecordWriter, read_table
from loadtests.recording import RunFolderSink


def _stream(i: int, tokens: int = 3) -> StreamAccount:
    labels = StreamLabels(
        stream_uid=f"p/s{i}",
        phase="p",
        arm="sse",
        worker="w",
        user=0,
        session=i,
        turn=0,
        stream_id=f"s{i}",
        seed=1,
        tokens_expected=tokens,
    )
    acct = StreamAccount(labels)
    acct.sent(1_000)
    for seq in range(tokens):
        acct.token(seq, 2_000 + seq, None, 10, "x")
    acct.finish(9_000, OK)
    return acct


def test_a_failed_write_stops_recording_and_says_so_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors: list[str] = []
    sink = RunFolderSink(tmp_path, "w", on_error=errors.append)
    sink.stream(_stream(0))
    sink.flush()  # this one reaches the disk
    real = RecordWriter._write_part

    def full(self: RecordWriter, table: object) -> Path:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(RecordWriter, "_write_part", full)
    sink.stream(_stream(1))
    sink.stream(_stream(2))
    sink.flush()  # fails: no exception escapes
    assert sink.error is not None and "No space left on device" in sink.error
    assert errors == [sink.error]
    sink.stream(_stream(3))  # after the failure: counted, not buffered
    sink.flush()
    monkeypatch.setattr(RecordWriter, "_write_part", real)  # space again: still stopped
    sink.close()
    assert errors == [sink.error]  # said once
    assert sink.streams_lost == 3
    s = read_table(tmp_path, "streams")
    assert list(s["stream_uid"]) == ["p/s0"]  # what was flushed before stays
    assert len(read_table(tmp_path, "tokens")) == 3
