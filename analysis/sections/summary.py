"""The report's executive summary and its methods section.

The summary comes first: one line per claim with its verdict and the number behind it,
the five figures that matter (each with what to read in it and where its section is),
and the conditions — the machine, the load, what was not measured and why. Methods come
last: where every definition and rule lives (docs/methodology.md, linked relative to the
report), the validity rules applied, and the source of every price.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from analysis.cost_sections import prices_item
from analysis.html import slugify
from analysis.results import arms_in
from analysis.sections.base import Section, Text, always
from analysis.sections.claims import claim_rows
from analysis.sections.cost import cost_items, measured_cost
from analysis.sections.run import run_status
from analysis.tables import METRIC, md_table
from analysis.verdicts import NOT_MEASURED

if TYPE_CHECKING:  # pragma: no cover
    from analysis.report_data import Report

__all__ = ["KEY_FIGURES", "METHODS", "SUMMARY", "KeyFigure", "methods_href", "slug"]


def slug(heading: str) -> str:
    """The anchor a heading gets (GitHub's rule, which analysis.html follows)."""
    return slugify(heading, {})


def methods_href(rep: Report, anchor: str = "") -> str:
    """Link to docs/methodology.md relative to where the report is written (a published
    folder carries its own copy: `Report.methods_href`)."""
    from analysis.report_data import REPO_ROOT

    href = rep.methods_href
    if href is None:
        doc = REPO_ROOT / "docs" / "methodology.md"
        href = os.path.relpath(doc, rep.out_dir) if rep.out_dir is not None else str(doc)
    return href + (f"#{slug(anchor)}" if anchor else "")


# --------------------------------------------------------------------------- claims


#: Per claim, which of its numbers carry the verdict (substrings of the number's name);
#: claims not listed show their first numbers.
_KEY_NUMBERS: dict[str, tuple[str, ...]] = {
    "C1": ("ratio",),
    "C8": ("bytes/token",),
}


def _numbers_line(row: dict[str, Any], rep: Report) -> str:
    if row["id"] == "C2":
        return _c2_numbers(rep)
    if row["id"] == "C6":
        return _c6_numbers(row)
    numbers = row.get("numbers") or {}
    keys = _KEY_NUMBERS.get(row["id"])
    picked = [(k, v) for k, v in numbers.items() if keys is None or any(s in k for s in keys)]
    return "; ".join(f"{k} {v}" for k, v in picked[:3])


def _c6_numbers(row: dict[str, Any]) -> str:
    per = [
        float(v)
        for k, v in (row.get("numbers") or {}).items()
        if "wasted per cancel" in k and _is_number(v)
    ]
    if not per:
        return ""
    return (
        f"tokens the server generated after the client left: at most {max(per):.2f} per "
        f"cancelled stream ({len(per)} phase(s))"
    )


def _is_number(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _c2_numbers(rep: Report) -> str:
    ci = measured_cost(rep)
    if ci is None or ci.ratios.empty:
        return ""
    priced = ci.ratios[ci.ratios["connection_priced"].astype(bool)]
    rows = (priced if len(priced) else ci.ratios).sort_values("ws_over_sse", ascending=False)
    parts = [
        f"{r.pair} {r.ws_over_sse:.1f}× (${r.sse_usd:,.0f} → ${r.ws_usd:,.0f})"
        for r in rows.itertuples()
    ]
    return "our WS/SSE per month (SSE → WS $) vs the article's $680 → $4,100 = 6.03×: " + "; ".join(
        parts
    )


def _claim_lines(rep: Report) -> list[str]:
    lines = []
    for r in claim_rows(rep):
        head = f"- **{r['id']}** {r['claim']} — **{r['status']}**"
        verdict = str(r.get("verdict") or "")
        if verdict and verdict != r["status"] and r["status"] != NOT_MEASURED:
            head += f": {verdict.removeprefix(r['status']).lstrip(': ')}"
        if r["status"] == NOT_MEASURED:
            why = r.get("why") or verdict
            lines.append(f"{head} ({why})." if why and why != verdict else f"{head}.")
            continue
        numbers = _numbers_line(r, rep)
        lines.append(f"{head}. {numbers}." if numbers else f"{head}.")
    return lines


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class KeyFigure:
    """A figure the summary points to: its file name, the section it is in, what it
    answers, and whether this run has it."""

    name: str
    section: str
    question: str
    available: Callable[[Report], bool]


def _has_latency(rep: Report) -> bool:
    return rep.main is not None


def _has_pairings(rep: Report) -> bool:
    ci = measured_cost(rep)
    return ci is not None and not ci.ratios.empty


def _has_item(name: str) -> Callable[[Report], bool]:
    return lambda rep: _has_pairings(rep) and any(it.name == name for it in cost_items(rep))


#: In priority order; the summary shows the first five this run has.
KEY_FIGURES: tuple[KeyFigure, ...] = (
    KeyFigure(
        "ttft_cdf", "Latency", "Does either protocol make the first token wait?", _has_latency
    ),
    KeyFigure("itl_cdf", "Latency", "Does either protocol delay tokens mid-answer?", _has_latency),
    KeyFigure(
        "connection_time",
        "Resources",
        "How long connections stay open, and idle, per session: what platforms bill.",
        _has_latency,
    ),
    KeyFigure(
        "cost_c2",
        "Cost",
        "Our WS/SSE cost per platform next to the article's 6×.",
        _has_item("cost_c2"),
    ),
    KeyFigure(
        "cost_tornado",
        "Cost",
        "Which usage assumption moves the WS/SSE ratio most.",
        _has_item("cost_tornado"),
    ),
    KeyFigure(
        "ramp",
        "Capacity",
        "Throughput and SLO attainment as load steps up.",
        lambda rep: bool(rep.summary.groups("ramp")),
    ),
    KeyFigure(
        "reconnect_outcomes",
        "Reconnects",
        "Do dropped streams come back whole?",
        lambda rep: bool(rep.summary.groups("reconnects")),
    ),
)


def key_figures(rep: Report, n: int = 5) -> list[KeyFigure]:
    return [f for f in KEY_FIGURES if f.available(rep)][:n]


def _figure_lines(rep: Report) -> list[str]:
    out = []
    for i, f in enumerate(key_figures(rep), 1):
        out.append(
            f"{i}. {f.question} ([{f.section}](#{slug(f.section)}))\n\n"
            f"   ![{f.question}](figures/{f.name}.png)"
        )
    return out


# --------------------------------------------------------------------------- conditions


def _load_rows(rep: Report) -> list[list[str]]:
    rows = []
    for g, block in rep.summary.scenarios.items():
        sc = rep.manifest.scenario(block.traits.scenario or g)
        if sc is None:
            continue
        load = sc.load
        users = (
            "→".join(str(u) for u in load.ramp_steps) + f" ({load.step_s:g} s a step)"
            if load.ramp_steps
            else f"{load.users}"
        )
        stream = sc.stream
        rows.append(
            [
                g,
                ", ".join(t.replace("_", " ") for t in block.traits.active) or "steady streaming",
                users,
                f"{load.duration_s:g} s" if not load.ramp_steps else "—",
                str(sc.repetitions),
                f"{stream.tokens} tokens, first at {stream.ttft_ms:g} ms, then every "
                f"{stream.gap_ms:g} ms",
                f"{block.streams:,}",
            ]
        )
    return rows


def _withheld(rep: Report) -> list[str]:
    """Headline figures withheld by a validity rule, grouped by figure and reason."""
    found: dict[tuple[str, str], list[str]] = {}
    for g, arm, a in arms_in(rep.summary, rep.summary.groups()):
        for key, why in a.invalid.items():
            found.setdefault((key, why), []).append(f"{g}/{arm}")
    return [
        f"{METRIC[k].label if k in METRIC else k} n/a in {', '.join(where)} ({why})"
        for (k, why), where in sorted(found.items())
    ]


def _conditions(rep: Report) -> str:
    m = rep.manifest
    host = m.host.describe() if m.host is not None else "not recorded"
    when = (m.created_utc or "?")[:16].replace("T", " ")
    lines = [
        f"- **Machine**: {host}; the load generator, the servers and the sampler shared it "
        f"(run started {when} UTC, git {m.git.sha7 or '?'}"
        f"{', uncommitted changes' if m.git.dirty else ''}). Other load on the machine was "
        "not recorded by the run; the load generator's own CPU is (headline tables, "
        "pitfall 6).",
        *(f"- **Noted when published**: {n}" for n in rep.notes),
        "- **Load** (each scenario on every arm, repetitions interleaved A B A B):",
        "",
        md_table(
            ["scenario", "exercises", "users", "duration", "reps", "answer schedule", "streams"],
            _load_rows(rep),
        ),
        "",
        "- **Not measured, and why**:",
    ]
    missing = [
        f"  - {r['id']} {r['claim']}: {r.get('why') or r['verdict']}"
        for r in claim_rows(rep)
        if r["status"] == NOT_MEASURED
    ]
    missing += [f"  - {w}" for w in _withheld(rep)]
    missing.append(
        "  - bytes on the wire (TCP/TLS headers): the byte figures are what the client parsed, "
        "at application level"
    )
    return "\n".join(lines + missing)


def _summary(rep: Report) -> str:
    st = run_status(rep)
    status = (
        f"Run **{st.status}**"
        + (f" ({st.reason})" if st.reason and not st.complete else "")
        + f": {len(st.phases_recorded)} of {st.phases_listed + len(st.phases_not_started)} "
        "planned phase(s) have recorded streams"
        + ("" if st.complete else " — this summary covers only what was recorded")
        + "."
    )
    parts = [status, "", "### Claims", "", *_claim_lines(rep)]
    figs = _figure_lines(rep)
    if figs:
        parts += ["", f"### The {len(figs)} figures that matter", "", *figs]
    parts += ["", "### Conditions", "", _conditions(rep)]
    return "\n".join(parts)


SUMMARY = Section(
    "summary",
    "Summary",
    always,
    "always: the claims' verdicts with their numbers, the key figures, the conditions",
    (Text(_summary),),
)


# --------------------------------------------------------------------------- methods


def _methods(rep: Report) -> str:
    links = ", ".join(
        f"[{h}]({methods_href(rep, h)})"
        for h in ("Metrics", "Validity rules", "Claims and verdict rules", "Cost model", "Pitfalls")
    )
    slo = rep.summary.slo
    over_t, over_g = slo.get("ttft_over_schedule_ms"), slo.get("tpot_over_schedule_ms")
    slo_text = (
        f"TTFT ≤ the stream's scheduled TTFT + {over_t:g} ms and TPOT ≤ its scheduled gap + "
        f"{over_g:g} ms"
        if isinstance(over_t, int | float) and isinstance(over_g, int | float)
        else f"TTFT ≤ {slo.get('ttft_ms', math.nan):g} ms and TPOT ≤ "
        f"{slo.get('tpot_ms', math.nan):g} ms"
    )
    boot = rep.summary.bootstrap
    return "\n".join(
        [
            f"Every definition, rule and threshold is in the project's [methodology]"
            f"({methods_href(rep)}): {links}.",
            "",
            "- Every number is computed from this run's recorded rows (one row per stream, "
            "token, connection and resource sample; monotonic clocks; tokens stamped when "
            "parsed). summary.json holds them all.",
            "- Percentiles need enough samples (p95 72, p99 368); medians carry a 95 % "
            f"bootstrap CI ({boot.get('n_boot', '?')} resamples; token-level figures "
            "resample whole streams). Ratios are SSE ÷ the other arm.",
            f"- SLO attainment: {slo_text}; a stream cancelled by its user or stopped by "
            "the load generator is judged on what it delivered before it ended.",
            "- A figure that fails its validity rule reads `n/a (reason)` (memory fits: "
            "R² ≥ 0.9 over ≥ 100 connections; shares: ≥ 20 streams; nothing negative; no "
            "ratio whose CI spans more than 2×).",
            "- Verdicts: holds / does not hold / depends (on what is named) / inconclusive "
            "/ not measured in this run, by the rules linked above.",
        ]
    )


def _pricing(rep: Report) -> str | None:
    ci = measured_cost(rep)
    if ci is None:
        return None
    item = prices_item(ci)
    rows = [
        [
            r["platform"],
            r["billing basis"],
            "yes" if r["connection priced"] else "no",
            r["verified"],
            str(r["oldest read"]),
            r["free tier"],
            f"<{r['source']}>",
        ]
        for r in item.value.to_dict("records")
    ]
    head = [
        "platform",
        "billing basis",
        "connection-priced",
        "verified",
        "read on",
        "free tier",
        "source",
    ]
    return "\n".join(
        [
            "### Pricing sources",
            "",
            md_table(head, rows),
            "",
            "*Every price is a number in `analysis/pricing/<platform>.toml` with the page it "
            "was read on; 'verified' counts the values read on the provider's own page (the "
            "others say why in the file). The cost section lists prices read more than 90 "
            "days before the report or not verified.*",
        ]
    )


METHODS = Section(
    "methods",
    "Methods",
    always,
    "always: where the definitions and rules are, and the source of every price",
    (Text(_methods), Text(_pricing)),
)
