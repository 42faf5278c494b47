"""core.procrow: CPU % between samples of one pid, the resources row's columns."""

from __future__ import annotations

from types import SimpleNamespace

import psutil

from core.procrow import CpuRate, resource_row


def test_cpu_rate_is_per_pid_and_none_on_a_first_or_same_time_sample() -> None:
    r = CpuRate()
    assert r.pct(1, 1_000_000_000, 2.0) is None
    assert r.pct(2, 1_000_000_000, 5.0) is None
    assert r.pct(1, 3_000_000_000, 3.0) == 50.0  # 1 CPU-s over 2 s
    assert r.pct(1, 3_000_000_000, 3.5) is None  # no time passed
    r.forget(2)
    assert r.pct(2, 2_000_000_000, 6.0) is None  # forgotten: a first sample again


def test_resource_row_has_the_records_columns() -> None:
    from core.records import TABLES

    me = psutil.Process()
    row = resource_row(
        t_ns=5,
        phase="p",
        columns={"scenario": "s", "variant": None, "rep": 1},
        arm="sse",
        role="server",
        proc=me,
        cpu=SimpleNamespace(user=1, system=2),
        cpu_pct=None,
        rss=10,
        fds=None,
        connections=3,
    )
    assert row["pid"] == me.pid and row["cpu_user_s"] == 1.0 and row["rss_bytes"] == 10
    assert set(row) <= set(TABLES["resources"].names)
