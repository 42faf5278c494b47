"""The run manifest, typed (read side): what the report and the claims read from
``manifest.json``.

`Manifest.from_json` is tolerant: every field of an older manifest that lacks it comes
back empty ("" / None / ()), and ``raw`` keeps the whole document. Phase entries come in
three historical shapes (a list of names, a list of dicts, a mapping name → state); all
read as `PhaseEntry`. A phase's outcome is ``status`` — ``ok``, ``failed``, ``timeout``,
``skipped``, ``interrupted`` (older runs: ``complete``, ``starting``…) — with ``reason``
saying why it did not run or finish; the run's is ``status`` (complete / incomplete /
failed) with ``status_reason`` (older runs: ``incomplete_reason``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from analysis.legacy import phase_identity
from core.scenario import Scenario, ScenarioError, scenario_from_dict

__all__ = [
    "FINISHED_STATES",
    "ArmEntry",
    "GitInfo",
    "HostInfo",
    "Manifest",
    "PhaseEntry",
    "group_label",
]

#: Phase states that mean "ran to its end" (older runs wrote complete/done).
FINISHED_STATES = frozenset({"ok", "complete", "completed", "done", "finished"})
SKIPPED = "skipped"


def group_label(scenario: str | None, variant: str | None) -> str | None:
    """The analysis group of a phase: ``<scenario>`` or ``<scenario>.<variant>``."""
    if not scenario:
        return None
    return f"{scenario}.{variant}" if variant else scenario


def _str(v: Any) -> str | None:
    return None if v is None else str(v)


def _map(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


@dataclass(frozen=True)
class GitInfo:
    sha: str | None = None
    sha7: str | None = None
    dirty: bool | None = None


@dataclass(frozen=True)
class HostInfo:
    """The machine the run measured (core.hostinfo.host_facts; older key names accepted)."""

    cpu_model: str = ""
    logical_cores: int | None = None
    memory_bytes: int | None = None
    kernel: str = ""

    @classmethod
    def from_json(cls, d: Any) -> HostInfo | None:
        d = _map(d)
        if not d:
            return None
        cores = d.get("logical_cores") or d.get("cpu_count") or d.get("cores")
        mem = d.get("memory_bytes") or d.get("mem_total_bytes")
        return cls(
            cpu_model=str(d.get("cpu_model") or d.get("cpu") or ""),
            logical_cores=int(cores) if isinstance(cores, int | float) else None,
            memory_bytes=int(mem) if isinstance(mem, int | float) else None,
            kernel=str(d.get("kernel") or d.get("platform") or ""),
        )

    def describe(self) -> str:
        mem = f", {self.memory_bytes / 1024**3:.1f} GiB" if self.memory_bytes else ""
        cores = f" {self.logical_cores} cores" if self.logical_cores else ""
        return f"{self.cpu_model}{cores}{mem} {self.kernel}".strip()


@dataclass(frozen=True)
class ArmEntry:
    """One arm of the run; ``reference_server`` False = the user's own server at ``url``."""

    name: str
    protocol: str | None = None
    reference_server: bool = True
    url: str | None = None

    @classmethod
    def from_json(cls, d: Any) -> ArmEntry:
        if not isinstance(d, Mapping):
            return cls(name=str(d))
        return cls(
            name=str(d.get("name", "?")),
            protocol=_str(d.get("protocol")),
            reference_server=d.get("reference_server") is not False,
            url=_str(d.get("url")),
        )

    @property
    def label(self) -> str:
        if self.reference_server:
            return self.name
        return f"{self.name} (your server at {self.url})"


@dataclass(frozen=True)
class PhaseEntry:
    """One planned or run phase: its identity, outcome and the records bench kept of it
    (``proxy``: the nginx record of a proxy phase — settings, log counts, browser check)."""

    name: str
    arm: str | None = None
    scenario: str | None = None
    variant: str | None = None
    rep: int | None = None
    status: str = ""  # "" = not recorded
    reason: str | None = None
    proxy: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def group(self) -> str | None:
        return group_label(self.scenario, self.variant)

    @property
    def finished(self) -> bool:
        return self.status.lower() in FINISHED_STATES

    @property
    def skipped(self) -> bool:
        return self.status.lower() == SKIPPED

    @classmethod
    def from_json(cls, d: Any, name: str | None = None) -> PhaseEntry:
        """From a dict entry, a bare name, or (``name`` given) a state string."""
        if isinstance(d, str) and name is None:
            d = {"name": d}
        elif not isinstance(d, Mapping):
            d = {"name": name, "status": d}
        elif name is not None:
            d = {"name": name, **d}
        pname = str(d.get("name") or d.get("phase") or "?")
        sc, var, rep = phase_identity(pname)  # older entries: identity only in the name
        status = d.get("status") or d.get("state") or ""
        if not status and "ended" in d:
            status = "complete" if d.get("ended") else "incomplete"
        reason = d.get("reason") or d.get("status_reason") or d.get("failure_reason")
        if not reason and d.get("error"):
            reason = d.get("error")
        r = d.get("rep")
        has = lambda k: k in d  # noqa: E731 - a phase entry may say variant: null on purpose
        return cls(
            name=pname,
            arm=_str(d.get("arm")) or (pname.split("/")[1] if pname.count("/") >= 2 else None),
            scenario=_str(d.get("scenario")) if d.get("scenario") else sc,
            variant=_str(d.get("variant")) if has("variant") else var,
            rep=int(r) if isinstance(r, int | float) and not isinstance(r, bool) else rep,
            status=str(status),
            reason=_str(reason),
            proxy=dict(d["proxy"]) if isinstance(d.get("proxy"), Mapping) else None,
            raw=dict(d),
        )


def _phase_entries(ph: Any) -> tuple[PhaseEntry, ...]:
    if isinstance(ph, Mapping):
        return tuple(PhaseEntry.from_json(v, name=str(k)) for k, v in ph.items())
    if isinstance(ph, list):
        return tuple(PhaseEntry.from_json(x) for x in ph if isinstance(x, str | Mapping))
    return ()


def _tolerant_scenario(d: Mapping[str, Any]) -> Scenario | None:
    """A recorded scenario configuration as core.scenario.Scenario, ignoring fields this
    version does not know (an older or newer run); None when it cannot be read."""
    from core import scenario as S

    known = {f.name for f in dataclasses.fields(Scenario)}
    data: dict[str, Any] = {k: v for k, v in d.items() if k in known}
    sections = {
        "load": S.LoadSpec,
        "stream": S.StreamSpec,
        "session": S.SessionSpec,
        "behaviour": S.BehaviourSpec,
        "server": S.ServerSpec,
    }
    for name, cls in sections.items():
        if isinstance(data.get(name), Mapping):
            fields = {f.name for f in dataclasses.fields(cls)}
            data[name] = {k: v for k, v in data[name].items() if k in fields}
    try:
        return scenario_from_dict(data)
    except (ScenarioError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Manifest:
    """manifest.json, typed. ``raw`` is the document as read (to_json returns it)."""

    run_id: str | None = None
    schema_version: int | None = None
    status: str = "unknown"
    status_reason: str | None = None
    scenario_name: str | None = None
    suite_name: str | None = None
    created_utc: str | None = None
    completed_utc: str | None = None
    git: GitInfo = field(default_factory=GitInfo)
    host: HostInfo | None = None
    packages: Mapping[str, str] = field(default_factory=dict)
    arms: tuple[ArmEntry, ...] = ()
    order: tuple[str, ...] = ()
    phases: tuple[PhaseEntry, ...] = ()
    #: scenario name → its recorded configuration (the suite's scenarios, or the run's one).
    scenario_configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    def to_json(self) -> dict[str, Any]:
        return dict(self.raw)

    @classmethod
    def from_json(cls, d: Any) -> Manifest:
        d = _map(d)
        git = _map(d.get("git"))
        version = d.get("schema_version")
        suite = _map(d.get("suite"))
        configs: dict[str, Mapping[str, Any]] = {}
        for sc in [d.get("scenario"), *(suite.get("scenarios") or [])]:
            if isinstance(sc, Mapping) and sc.get("name"):
                configs[str(sc["name"])] = sc
        planned = suite.get("scenarios") or d.get("scenarios") or []
        for p in planned:  # planned scenarios known by name only: no configuration
            if isinstance(p, str):
                configs.setdefault(p, {})
        return cls(
            run_id=_str(d.get("run_id")),
            schema_version=int(version) if isinstance(version, int | float) else None,
            status=str(d.get("status") or "unknown"),
            status_reason=_str(d.get("status_reason") or d.get("incomplete_reason")),
            scenario_name=_str(d.get("scenario_name")),
            suite_name=_str(suite.get("name")),
            created_utc=_str(d.get("created_utc")),
            completed_utc=_str(d.get("completed_utc")),
            git=GitInfo(
                sha=_str(git.get("sha")),
                sha7=_str(git.get("sha7") or d.get("git_sha7")),
                dirty=git.get("dirty") if isinstance(git.get("dirty"), bool) else None,
            ),
            host=HostInfo.from_json(d.get("host")),
            packages={str(k): str(v) for k, v in _map(d.get("packages")).items() if v},
            arms=tuple(ArmEntry.from_json(a) for a in d.get("arms") or ()),
            order=tuple(str(n) for n in d.get("order") or () if isinstance(n, str)),
            phases=_phase_entries(d.get("phases")),
            scenario_configs=configs,
            raw=dict(d),
        )

    def scenario(self, name: str | None) -> Scenario | None:
        """The recorded configuration of scenario ``name`` (None when not recorded)."""
        cfg = self.scenario_configs.get(name or "")
        return _tolerant_scenario(cfg) if cfg else None

    def phase(self, name: str) -> PhaseEntry | None:
        return next((p for p in self.phases if p.name == name), None)

    def phases_of(self, group: str, arm: str | None = None) -> list[PhaseEntry]:
        """The phase entries of one analysis group (and arm)."""
        return [p for p in self.phases if p.group == group and (arm is None or p.arm == arm)]

    @property
    def planned_scenarios(self) -> list[str]:
        return list(self.scenario_configs)


def phases_from(entries: Iterable[Any]) -> tuple[PhaseEntry, ...]:
    """PhaseEntry objects from entries that may be raw dicts (tests, older callers)."""
    return tuple(e if isinstance(e, PhaseEntry) else PhaseEntry.from_json(e) for e in entries)
