"""A run's cost inputs: measured usage → calibration → a month of a profile → cost tables.

:func:`cost_inputs` is what ``ssevsws cost``, the report and notebooks/cost.ipynb call.
Usage is measured on the run's headline scenario (RunSummary.main_scenario: steady
streaming, chosen by the scenarios' recorded configuration), from the record tables when
the run has them, else from summary.json alone (a committed
sample carries no record tables: everything the model needs per token is in the summary
except the bytes a client sends per stream, which then stay at the model default).
CPU per 1k tokens and KiB per connection come from the summary either way (the report's
numbers; KiB per connection from the idle-hold fit when the run has one), the share of a
cancelled answer from the scenario whose users cancel. Precedence of every figure: what-if >
profile > measured > model default (:mod:`analysis.cost_usage`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import cost as K
from analysis.cost_calibration import (
    calibration_from_summary,
    calibration_from_usage,
    cancel_fraction,
    usage_from_records,
    usage_from_summary,
    with_measured_capacity,
)
from analysis.cost_pricing import PRICING_DIR, load_catalogue, price_warnings
from analysis.cost_whatif import WhatIfs, apply_to_catalogue, apply_to_profile, parse_what_ifs
from analysis.load import group_rows
from analysis.results import RunSummary
from core.arms import PROTOCOLS, UnknownArm, get_arm, sort_arms

#: The profile the report and the CLI price a run with unless told otherwise.
DEFAULT_PROFILE = "support-assistant-10k"


@dataclass
class CostInputs:
    """The cost section's inputs and tables (see :func:`cost_inputs`)."""

    scenario: str | None
    measured: dict[str, K.Usage]
    calibrations: dict[str, K.Calibration]
    profile: K.Profile
    usages: dict[str, K.Usage]
    table: pd.DataFrame
    ratios: pd.DataFrame
    platforms: K.Selection | Sequence[str] | None = None
    source: str = "model defaults"  # where the calibration comes from
    what_ifs: WhatIfs = field(default_factory=WhatIfs)
    warnings: list[str] = field(default_factory=list)
    free_tiers: bool = False


def _metering(arm: str) -> str | None:
    try:
        return str(get_arm(arm).metering)
    except UnknownArm:
        return None


def _cost_arms(arms: Iterable[str]) -> dict[str, str]:
    """metering label ("sse"/"ws") → the run's arm priced as it: the first registered arm
    (display order, core.arms.sort_arms) metered that way; unregistered arms are ignored."""
    ranked = [a for a in sort_arms(set(arms)) if _metering(a)]
    out: dict[str, str] = {}
    for label in PROTOCOLS:
        mine = [a for a in ranked if _metering(a) == label]
        if mine:
            out[label] = mine[0]
    return out


#: Rows of one scenario group (the ``group`` column analysis.load adds); all rows if None.
scenario_rows = group_rows


def _typed(summary: RunSummary | Mapping[str, Any], data: Any) -> RunSummary:
    """The summary typed; a summary.json written before groups carried their traits gets
    them from the run's manifest."""
    if isinstance(summary, RunSummary):
        return summary
    return RunSummary.from_json(summary, manifest=getattr(data, "manifest", None))


def _scenario_arms(summary: Mapping[str, Any], scenario: str | None) -> Mapping[str, Any]:
    if not scenario:
        return {}
    return ((summary.get("scenarios") or {}).get(scenario) or {}).get("arms") or {}


def run_summary(folder: str | Path, data: Any, n_boot: int = 200) -> dict[str, Any]:
    """The run's summary: summarize() of its records, or its summary.json when it has no
    record tables (a committed sample)."""
    from analysis.summary import summarize

    summary = summarize(data, n_boot=n_boot).to_json()
    saved = Path(folder) / "summary.json"
    if not summary.get("scenarios") and saved.is_file():
        return json.loads(saved.read_text(encoding="utf-8"))
    return summary


def measure(
    data: Any, summary: RunSummary | Mapping[str, Any]
) -> tuple[str | None, dict[str, K.Usage], dict[str, K.Calibration], str]:
    """(scenario, measured usage and calibration per metering label, source) of a run."""
    typed = _typed(summary, data)
    sc = typed.main_scenario
    summary = typed.to_json()
    s_arms = _scenario_arms(summary, sc)
    cap_arms = (summary.get("capacity") or {}).get("arms") or {}
    cancels = typed.groups("cancels")
    cancel_arms = _scenario_arms(summary, cancels[0] if cancels else None)
    streams = scenario_rows(getattr(data, "streams", None), sc)
    from_records = streams is not None and len(streams) > 0
    names = pd.unique(streams["arm"].astype(object).dropna()) if from_records else list(s_arms)
    measured: dict[str, K.Usage] = {}
    cals: dict[str, K.Calibration] = {}
    for label, arm in _cost_arms(names).items():
        block = s_arms.get(arm, {})
        if from_records:
            conns = scenario_rows(getattr(data, "connections", None), sc)
            res = scenario_rows(getattr(data, "resources", None), sc)
            u = usage_from_records(
                arm, streams, conns, res if res is not None and len(res) else None
            )
            if u.tokens_delivered <= 0 or u.streams <= 0:
                continue
            cal = calibration_from_usage(u)
            cpu, kib = block.get("server_cpu_s_per_1k_tokens"), block.get("rss_kib_per_conn")
            cal = replace(
                cal,
                cpu_s_per_1k_tokens=cpu if isinstance(cpu, int | float) and cpu > 0 else None,
                kib_per_connection=kib if isinstance(kib, int | float) and kib > 0 else None,
                cancel_at_fraction=cancel_fraction(cancel_arms.get(arm)),
            )
            cal = with_measured_capacity(cal, cap_arms.get(arm))
        else:
            maybe = usage_from_summary(arm, block)
            summary_cal = calibration_from_summary(
                arm, block, cap_arms.get(arm), cancel_arms.get(arm)
            )
            if maybe is None or summary_cal is None:
                continue
            u, cal = maybe, summary_cal
        measured[label] = replace(u, arm=label)
        cals[label] = cal
    source = "records" if from_records else "summary"
    return sc, measured, cals, source if measured else "none"


def cost_inputs(
    data: Any,
    summary: RunSummary | Mapping[str, Any],
    *,
    profile: str | K.Profile = DEFAULT_PROFILE,
    platforms: Sequence[str] | None = None,
    free_tiers: bool = False,
    what_ifs: WhatIfs | Sequence[str] = (),
    pricing_dir: str | Path | None = None,
    today: dt.date | None = None,
) -> CostInputs:
    """Measured usage per arm → calibration → a month of ``profile`` (with what-ifs) →
    cost tables on the pricing catalogue (``pricing_dir``, default analysis/pricing).

    Raises PricingError / ProfileError / WhatIfError (all ValueErrors) with one-line
    messages for bad prices, profiles and what-ifs. ``data`` is a RunData (record tables
    may be empty); ``summary`` its RunSummary, or summary.json's dict.
    """
    what = what_ifs if isinstance(what_ifs, WhatIfs) else parse_what_ifs(what_ifs)
    prof = profile if isinstance(profile, K.Profile) else K.load_profile(profile)
    prof = apply_to_profile(prof, what)
    cat = apply_to_catalogue(load_catalogue(pricing_dir or PRICING_DIR), what)
    sel = K.Selection.of(cat, list(platforms) if platforms else None)
    sc, measured, cals, source = measure(data, summary)
    arms = tuple(a for a in ("sse", "ws") if a in cals)
    usages = K.usages_from_profile(prof, arms, cals) if arms else {}
    table = K.cost_table(usages, sel, prof, free_tiers=free_tiers) if usages else pd.DataFrame()
    ratios = K.ratio_table(table, sel) if len(table) else pd.DataFrame()
    warnings = price_warnings({p.platform: p for p in sel.selected}, today)
    return CostInputs(
        sc, measured, cals, prof, usages, table, ratios, sel, source, what, warnings, free_tiers
    )


def missing_for_cost(summary: RunSummary | Mapping[str, Any], data: Any = None) -> str:
    """Why a run gives no cost table, precisely (for the CLI's exit-2 message)."""
    typed = _typed(summary, data)
    sc, summary = typed.main_scenario, typed.to_json()
    if sc is None:
        return (
            "no scenario with streams in this run's summary (the cost model calibrates on "
            "the headline scenario's streams)"
        )
    arms = _scenario_arms(summary, sc)
    if not arms:
        return f"scenario {sc!r} has no arms in the summary"
    lacking = [
        a
        for a, b in arms.items()
        if not (b.get("integrity") or {}).get("unique") or not b.get("streams")
    ]
    if lacking:
        return (
            f"scenario {sc!r}: arm(s) {', '.join(lacking)} delivered no tokens "
            "(integrity.unique and streams are needed per arm)"
        )
    unknown = [a for a in arms if not _metering(a)]
    if unknown:
        return f"scenario {sc!r}: arm(s) {', '.join(unknown)} are not in the arm registry"
    return f"scenario {sc!r}: no SSE or WS arm with measured tokens"
