"""The report's first sections: the title, the run-status banner (its first lines: did the
run complete, which phases failed or were skipped and why), what was run on what, and the
headline tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from analysis.sections.base import Section, Table, Text, always
from analysis.tables import md_table, summary_markdown

if TYPE_CHECKING:  # pragma: no cover
    from analysis.manifest import PhaseEntry
    from analysis.report_data import Report

__all__ = ["HEADLINE", "RUN", "STATUS", "TITLE", "RunStatus", "run_status"]


@dataclass(frozen=True)
class RunStatus:
    """What the banner says: the run's status and reason, and what is missing."""

    status: str
    reason: str | None
    phases_listed: int
    phases_recorded: list[str]
    #: phases that ran but did not finish (failed, timeout, interrupted…): "name (why)"
    unfinished_phases: list[str]
    phases_not_started: list[str]
    phases_without_data: list[str]
    #: phases that did not run on purpose (e.g. no nginx): "name (why)"
    phases_skipped: list[str]
    scenarios_without_data: list[str]
    #: phases that finished with some failed streams (under their threshold, or not):
    #: "name: N of M streams failed (x %, allowed y %)"
    phases_with_failed_streams: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    #: record part files that could not be read (truncated, corrupt): table, part, error
    unreadable_parts: list[dict[str, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.status == "complete"


def _why(p: PhaseEntry) -> str:
    detail = ": ".join(x for x in (p.status, p.reason) if x)
    return f"{p.name} ({detail})" if detail else p.name


def _failed_streams(p: PhaseEntry) -> str | None:
    """What the runner's stream check counted as failed in phase `p`, when any: a phase may
    finish ``complete`` with failures under ``max_error_share``, and the reader must see them."""
    check = p.raw.get("stream_check")
    if not isinstance(check, dict):
        return None
    failed, rows = check.get("failed_streams"), check.get("rows")
    if not isinstance(failed, int) or not isinstance(rows, int) or failed <= 0 or rows <= 0:
        return None
    allowed = check.get("max_error_share")
    limit = f", allowed {allowed * 100:g} %" if isinstance(allowed, int | float) else ""
    return f"{p.name}: {failed} of {rows} streams failed ({failed / rows * 100:.1f} %{limit})"


def run_status(rep: Report) -> RunStatus:
    """Status, reason and what is missing: phases the manifest lists whose status is not a
    finished one, phases planned (``order``) that never started, phases without recorded
    streams, planned scenarios with no data."""
    m = rep.manifest
    streams = rep.data.streams
    recorded: set[str] = set()
    if not streams.empty:
        recorded = {str(p) for p in pd.unique(streams["phase"].astype(object).dropna())}
    skipped = [p for p in m.phases if p.skipped]
    unfinished = [p for p in m.phases if p.status and not p.finished and not p.skipped]
    listed = {p.name for p in m.phases}
    not_started = [n for n in m.order if n not in listed]
    skipped_names = {p.name for p in skipped}
    no_data = [n for n in [*(p.name for p in m.phases), *not_started] if n not in recorded]
    no_data = [n for n in no_data if n not in skipped_names]
    have = set(rep.summary.scenarios)
    # a scenario with [proxy] variants has data under "<scenario>.<variant>"
    missing_sc = [
        s
        for s in m.planned_scenarios
        if s not in have and not any(h.startswith(s + ".") for h in have)
    ]
    return RunStatus(
        status=m.status,
        reason=m.status_reason,
        phases_listed=len(m.phases),
        phases_recorded=sorted(recorded),
        unfinished_phases=[_why(p) for p in unfinished],
        phases_not_started=not_started,
        phases_without_data=no_data,
        phases_skipped=[_why(p) for p in skipped],
        scenarios_without_data=missing_sc,
        phases_with_failed_streams=[x for x in map(_failed_streams, m.phases) if x],
        flags=list(rep.summary.flags),
        unreadable_parts=list(getattr(rep.data, "unreadable_parts", []) or []),
    )


def _title(rep: Report) -> str:
    return f"# {rep.title}"


def _banner(rep: Report) -> str:
    st = run_status(rep)
    lines = []
    bad = st.unreadable_parts
    if st.complete and not bad and not st.phases_without_data:
        lines.append(f"**complete** — {len(st.phases_recorded)} phase(s) with recorded streams.")
    elif st.complete:
        lines.append(
            f"**complete** says the manifest, but only {len(st.phases_recorded)} of "
            f"{st.phases_listed} phase(s) have readable streams: this report covers what "
            "could be read."
        )
    else:
        reason = f" ({st.reason})" if st.reason else ""
        lines.append(
            f"**{st.status}**{reason}: this report covers only what the run flushed before "
            "it stopped."
        )
    if st.unfinished_phases:
        lines.append(f"- phases that did not finish: {', '.join(st.unfinished_phases)}")
    if st.phases_not_started:
        lines.append(f"- phases that never started: {', '.join(st.phases_not_started)}")
    if st.phases_without_data:
        lines.append(f"- phases with no recorded streams: {', '.join(st.phases_without_data)}")
    if st.phases_skipped:
        lines.append(f"- phases skipped (not run, not faked): {', '.join(st.phases_skipped)}")
    if st.scenarios_without_data:
        lines.append(f"- scenarios with no data: {', '.join(st.scenarios_without_data)}")
    if st.phases_with_failed_streams:
        lines.append(
            "- phases with failed streams (outcomes error / timeout): "
            + "; ".join(st.phases_with_failed_streams)
        )
    if bad:
        lines.append(
            f"- {len(bad)} record file(s) could not be read (truncated or corrupt) and were "
            "left out: " + "; ".join(f"{b['part']} ({b['error'][:80]})" for b in bad)
        )
    if not st.complete and not (
        st.unfinished_phases
        or st.phases_not_started
        or st.phases_without_data
        or st.scenarios_without_data
    ):
        lines.append(
            "- the manifest does not list the planned phases; recorded phases: "
            + (", ".join(st.phases_recorded) or "none")
        )
    if st.flags:
        lines += ["", "Flags:"] + [f"- {f}" for f in st.flags]
    return "\n".join(lines)


def _status_line(rep: Report) -> str:
    st = run_status(rep)
    bad = len(st.unfinished_phases) + len(st.phases_skipped)
    extra = f"; {bad} phase(s) failed or skipped" if bad else ""
    return f"Run {st.status}{extra}."


def _facts(rep: Report) -> str:
    m = rep.manifest
    dirty = " (dirty tree)" if m.git.dirty else ""
    rows = [
        ("run", rep.data.run_id or "?"),
        ("scenario / suite", m.scenario_name or "?"),
        ("created (UTC)", m.created_utc or "?"),
        ("completed (UTC)", m.completed_utc or "—"),
        ("git", f"{m.git.sha7 or '?'}{dirty}"),
        ("schema version", m.schema_version if m.schema_version is not None else "?"),
        ("arms", ", ".join(a.label for a in m.arms) or "?"),
    ]
    if m.host is not None:
        rows.append(("host", m.host.describe()))
    if m.packages:
        rows.append(("packages", ", ".join(f"{k} {v}" for k, v in sorted(m.packages.items()))))
    return "\n".join(
        [
            md_table(["", ""], rows),
            "",
            "Every number below is computed from this run's recorded rows by `analysis` "
            "(summary.json holds them all). `n/m` = not measured in this run. Metric "
            "definitions and verdict rules: docs/methodology.md.",
        ]
    )


TITLE = Section("title", "", always, "always", (Text(_title),))
STATUS = Section(
    "status",
    "Run status",
    always,
    "always: the run's status and every phase that failed or was skipped, with its reason",
    (Text(_banner),),
    headline=_status_line,
)
RUN = Section("run", "Run", always, "always", (Table("run_facts", _facts),))
HEADLINE = Section(
    "headline",
    "Headline numbers",
    always,
    "always (a run without streams says so)",
    (Table("summary", lambda rep: summary_markdown(rep.summary)),),
)
