"""Did a phase measure what it meant to? The verdict on one phase, from its records on disk.

A phase is ``ok`` only when Locust ended on its own (exit 0, or 1 = some requests failed),
its records reached the disk and few enough of its streams failed. Otherwise it is
``timeout`` (Locust overran its hard timeout and was stopped) or ``failed``, with every
reason that applies:

- Locust exited with another code — `core.scenario.EXIT_WRITER_FAILED` (74) when a record
  writer failed, e.g. on a full disk;
- no stream records at all;
- fewer stream records on disk than Locust counted streams (records lost);
- a record writer (a Locust process) that checked in (manifest ``record_writers``) and
  never checked out — it was killed, and the records of its last flush interval with it —
  or that says it lost records;
- the **error share** — streams whose outcome is ``error`` or ``timeout`` over all stream
  rows — above the scenario's ``load.max_error_share`` (default 0.01, ``--max-error-share``).
  ``dropped`` and ``aborted`` are not counted: scenarios cause them on purpose (server
  drops, client aborts, proxy cuts) and measure them; a server that refuses a stream or
  never answers is an ``error`` or a ``timeout``.

Duplicate stream rows and workers without records are warnings, not failures (a worker
with no users writes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.accounting import ERROR, TIMEOUT
from core.scenario import EXIT_WRITER_FAILED

#: Stream outcomes that count as failed in the error share.
FAILED_OUTCOMES = (ERROR, TIMEOUT)
#: Locust exit codes of a phase that ended on its own (1: some requests failed).
LOCUST_OK = (0, 1)


@dataclass
class PhaseVerdict:
    status: str  # ok | failed | timeout
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    check: dict[str, Any] = field(default_factory=dict)  # the manifest's stream_check

    @property
    def reason(self) -> str | None:
        return "; ".join(self.reasons) or None


def stream_check(
    streams: pd.DataFrame,
    *,
    locust_reported: int | None,
    workers_expected: int,
    max_error_share: float,
) -> dict[str, Any]:
    """Counts of one phase's stream rows (columns worker, stream_uid, outcome) against
    Locust's own count; ``by_worker`` is popped by the runner into its own field."""
    rows = len(streams)
    by_worker = {str(k): int(v) for k, v in streams["worker"].astype(object).value_counts().items()}
    failed = int(streams["outcome"].astype(object).isin(FAILED_OUTCOMES).sum())
    unique = int(streams["stream_uid"].nunique())
    return {
        "rows": rows,
        "unique_stream_uids": unique,
        "sum_over_workers": sum(by_worker.values()),
        "workers": len(by_worker),
        "workers_expected": workers_expected,
        "locust_reported": locust_reported,
        "failed_streams": failed,
        "failed_outcomes": list(FAILED_OUTCOMES),
        "error_share": failed / rows if rows else None,
        "max_error_share": max_error_share,
        "ok": rows == unique == sum(by_worker.values()) and locust_reported in (None, rows),
        "by_worker": by_worker,
    }


def verdict(
    check: dict[str, Any],
    *,
    locust_exit: int | None,
    timed_out: bool,
    hard_timeout_s: float,
    writer_error: str | None = None,
    writers: dict[str, Any] | None = None,
) -> PhaseVerdict:
    """The phase's status and every reason for it (see the module docstring). `writers`:
    the manifest's ``record_writers`` of the phase (writer id → check-in / check-out)."""
    v = PhaseVerdict("ok", check=check)
    writers = writers or {}
    gone = sorted(w for w, st in writers.items() if not st.get("closed"))
    if gone and not timed_out:
        v.reasons.append(
            f"record writer(s) {', '.join(gone)} never closed (the process died; the records "
            "of its last flush interval are lost)"
        )
    lost = {w: st.get("streams_lost") for w, st in writers.items() if st.get("streams_lost")}
    if lost:
        v.reasons.append(
            "records lost by the writers: "
            + ", ".join(f"{w}: {n} stream(s)" for w, n in sorted(lost.items()))
        )
    rows, reported = check["rows"], check["locust_reported"]
    if timed_out:
        v.reasons.append(f"Locust still running after its hard timeout of {hard_timeout_s:g} s")
    elif locust_exit == EXIT_WRITER_FAILED:
        v.reasons.append(f"a record writer failed ({writer_error or 'see the Locust log'})")
    elif locust_exit not in LOCUST_OK:
        v.reasons.append(f"Locust exit code {locust_exit}")
    if writer_error and locust_exit != EXIT_WRITER_FAILED:
        v.reasons.append(f"a record writer failed ({writer_error})")
    if rows == 0:
        v.reasons.append("no stream records")
    elif reported is not None and rows < reported:
        v.reasons.append(f"records lost: {rows} stream rows on disk, Locust counted {reported}")
    share = check["error_share"]
    if share is not None and share > check["max_error_share"]:
        v.reasons.append(
            f"error share {share:.2f} > max_error_share {check['max_error_share']:g} "
            f"({check['failed_streams']} of {rows} streams ended in error or timeout)"
        )
    if reported is not None and rows > reported:
        v.warnings.append(f"{rows} stream rows on disk, Locust counted {reported}")
    if check["unique_stream_uids"] != rows:
        v.warnings.append(f"{rows - check['unique_stream_uids']} duplicate stream_uid rows")
    if rows and check["workers"] != check["workers_expected"]:
        v.warnings.append(
            f"records from {check['workers']} worker(s), {check['workers_expected']} expected"
        )
    per_worker = check.get("per_worker") or {}
    if per_worker.get("enforced"):  # --workers / --processes: each load process's count
        v.reasons += list(per_worker.get("problems") or [])
    if v.reasons:
        v.status = "timeout" if timed_out else "failed"
    return v
