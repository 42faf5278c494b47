"""Suites: several scenarios run into one run folder (`ssevsws bench`, `make bench`).

A suite file (bench/suites/*.toml) lists scenarios with load overrides, the arms and the
repetitions; the phases of each scenario run A B A B before the next scenario starts. An
entry may also run a scenario under another name (``label``: its analysis group) with
server settings of its own (``server = { tls = true }``), so one scenario file can run
twice in a suite — e.g. chat over plain TCP and over TLS — and run arms of its own
(``arms = [...]``, names from the arm registry core.arms) instead of the suite's: e.g. one
short chat entry on every payload format while the others run a pair. ``profiles = [...]``
runs the scenario on those network profiles instead of its own `[network]` list (its
``set`` is kept).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.plan import resolve_scenario_path
from core.arms import UnknownArm, get_arm, protocol_of
from core.scenario import (
    Scenario,
    ScenarioError,
    ServerSpec,
    load_scenario,
    validate,
    with_network_profiles,
    with_overrides,
)

SUITES_DIR = Path(__file__).resolve().parent / "suites"
#: Load fields a suite entry may override (the rest of a scenario is its own file's).
OVERRIDABLE = {
    "users",
    "duration_s",
    "repetitions",
    "spawn_rate",
    "stop_timeout_s",
    "ramp_steps",
    "step_s",
    "processes",
    "max_error_share",
}


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    budget_s: float
    scenarios: list[tuple[Scenario, Path]]
    source: Path
    #: what loading left out and why (printed by `ssevsws bench`)
    notes: list[str] = field(default_factory=list)

    @property
    def arms(self) -> list[str]:
        """Every arm some entry runs, in the order they first appear (the run's arm targets;
        each scenario's phases use its own of them, bench.plan.plan_suite)."""
        return list(dict.fromkeys(a for s, _ in self.scenarios for a in s.arms))


def available_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def resolve_suite_path(arg: str) -> Path:
    path = Path(arg).expanduser()
    if path.suffix == ".toml":
        if path.is_file():
            return path.resolve()
        raise ScenarioError(f"suite file not found: {arg}")
    named = SUITES_DIR / f"{arg}.toml"
    if named.is_file():
        return named
    raise ScenarioError(f"unknown suite {arg!r} (known: {', '.join(available_suites())})")


#: Entry fields besides the load overrides: the scenario file, its name in the run, server
#: settings (ServerSpec fields), arms and network profiles for this entry only.
_ENTRY_FIELDS = {"name", "label", "server", "arms", "profiles"}


def _entry_arms(entry: dict[str, Any], where: str) -> list[str] | None:
    """The entry's own ``arms`` (registered names, no repeats), or None when it has none."""
    arms = entry.get("arms")
    if arms is None:
        return None
    if not isinstance(arms, list) or not arms or not all(isinstance(a, str) for a in arms):
        raise ScenarioError(f"{where}.arms: a non-empty list of arm names, got {arms!r}")
    if len(set(arms)) != len(arms):
        raise ScenarioError(f"{where}.arms: an arm listed twice in {arms!r}")
    for name in arms:
        try:
            get_arm(name)
        except UnknownArm as exc:
            raise ScenarioError(f"{where}.arms: {exc}") from None
    return arms


def _relabel(scenario: Scenario, entry: dict[str, Any], where: str) -> Scenario:
    """The scenario under the entry's ``label`` with its ``server`` settings laid over."""
    label, server = entry.get("label"), entry.get("server", {})
    if label is not None and (not isinstance(label, str) or not label.strip()):
        raise ScenarioError(f"{where}.label: a scenario name, got {label!r}")
    if not isinstance(server, dict):
        raise ScenarioError(f"{where}.server: a table of server settings")
    known = {f for f in ServerSpec.__dataclass_fields__}
    if unknown := set(server) - known:
        raise ScenarioError(f"{where}.server: unknown field(s) {', '.join(sorted(unknown))}")
    out = replace(scenario, name=label or scenario.name)
    if server:
        out = replace(out, server=replace(out.server, **server))
    validate(out)
    return out


def _entry_overrides(entry: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = set(entry) - OVERRIDABLE - _ENTRY_FIELDS
    if unknown:
        raise ScenarioError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))} "
            f"(a suite entry may set: {', '.join(sorted(OVERRIDABLE | _ENTRY_FIELDS))})"
        )
    out = {k: v for k, v in entry.items() if k not in _ENTRY_FIELDS}
    if "ramp_steps" in out:
        out["ramp_steps"] = tuple(int(x) for x in out["ramp_steps"])
    return out


def load_suite(
    path: Path, *, arms: list[str] | None = None, repetitions: int | None = None
) -> Suite:
    """Read a suite file; `arms` / `repetitions` (CLI) override the suite's own."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    entries = data.get("scenarios")
    if not isinstance(entries, list) or not entries:
        raise ScenarioError(f"{path}: needs at least one [[scenarios]] entry")
    suite_arms = data.get("arms")
    suite_reps = repetitions or data.get("repetitions")
    scenarios: list[tuple[Scenario, Path]] = []
    notes: list[str] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries, 1):
        where = f"{path.name} [[scenarios]] #{i}"
        if not isinstance(entry, dict) or "name" not in entry:
            raise ScenarioError(f"{where}: needs a name")
        src = resolve_scenario_path(str(entry["name"]))
        scenario = _relabel(load_scenario(src), entry, where)
        if scenario.name in seen:
            raise ScenarioError(f"{where}: scenario {scenario.name!r} listed twice")
        seen.add(scenario.name)
        overrides = _entry_overrides(entry, where)
        overrides.setdefault("repetitions", suite_reps)
        # the CLI's arms win over the entry's own, the entry's over the suite's
        own_arms = _entry_arms(entry, where)
        entry_arms = arms or own_arms or suite_arms
        if entry_arms:
            # a scenario that names only some protocols (proxy-h2: SSE) keeps that limit;
            # one of browser arms keeps its own unless arms were asked for by name
            try:
                own = {protocol_of(a) for a in scenario.arms}
                if all(get_arm(a).is_browser for a in scenario.arms):
                    kept = [a for a in entry_arms if a in scenario.arms]
                    kept = kept or ([] if arms or own_arms else list(scenario.arms))
                else:
                    kept = [a for a in entry_arms if protocol_of(a) in own]
            except UnknownArm as exc:
                raise ScenarioError(f"{path.name}: {exc}") from None
            if not kept:
                notes.append(
                    f"{scenario.name} left out: it runs {', '.join(scenario.arms)} only, "
                    f"the suite runs {', '.join(entry_arms)}"
                )
                continue
            overrides["arms"] = kept
        try:
            scenario = with_overrides(scenario, **overrides)
            if "profiles" in entry:
                scenario = with_network_profiles(scenario, entry["profiles"])
        except TypeError as exc:
            raise ScenarioError(f"{where}: bad override: {exc}") from None
        except ScenarioError as exc:
            raise ScenarioError(f"{where}: {exc}") from None
        scenarios.append((scenario, src))
    return Suite(
        name=str(data.get("name", Path(path).stem)),
        description=str(data.get("description", "")),
        budget_s=float(data.get("budget_s", 600)),
        scenarios=scenarios,
        source=Path(path),
        notes=notes,
    )
