"""Phase hooks: what runs beside one phase's load — a proxy in the path, a probe after it.

The runner (`bench.run`) knows no hook by name. For every phase it asks each registered
hook class whether the phase needs it (`HookClass.for_phase(plan, scenario)` → a hook or
None), orders the hooks by `order` (server side first) and drives them through one life
cycle. Nothing here starts a process itself; hooks use `bench.procs` (or their own class
built on it) so every child is stopped by PID and dies with the runner.

The life cycle, in the order the runner calls it::

    unavailable()              before anything of the phase starts: a reason (str) skips the
                               phase — recorded with that reason, never faked
    before_load(ctx, target)   the server is up and answers; `target` is the address the
                               client would use. A hook that puts itself between client and
                               server starts here and returns the Target the client (or the
                               next hook) should use instead; others return `target`
    pids()                     its processes now: the resource sampler watches them (role
                               `role`) from before_load until stop
    config()                   facts for the phase config the load client reads (merged
                               into PhaseConfig.proxy), asked once every hook has started
    after_load(ctx, target)    the load is over, every hook still up: probes through the path
                               (the browser check). `target` is the client's final one
    stop()                     stop its processes by PID. Idempotent: the runner also calls it
                               on Ctrl-C, SIGTERM and crashes (nothing is left running)
    records(ctx, target)       after stop: write its files under ctx.dir(...) and return what
                               the manifest keeps. The runner deep-merges it into the phase
                               entry under `record_key` and into the run-level file
                               ``<record_key>.json`` (phase name → record)
    skipped(reason)            the record of a phase skipped by `unavailable()`

Hooks with the same `record_key` extend one record (the browser check adds ``browser``
to nginx's ``proxy`` record); choose your own key unless that is what you want. A hook
whose after-load probe sends its own requests through the path sets `probe_mark` (a
string in their request targets), so a proxy hook can keep them out of the load's own
figures (`ctx.probe_marks`).

Adding a hook: write a `PhaseHook` subclass, list its module in `HOOK_MODULES` and call
`register` at its import. See docs/architecture.md, "Add a phase hook".
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from bench.plan import PhasePlan
    from core.scenario import Scenario

#: Modules whose import registers the project's hooks (`register`), in no particular
#: order (the runner orders hooks by `PhaseHook.order`).
HOOK_MODULES: tuple[str, ...] = ("bench.nginx_hook", "bench.browser_hook", "bench.network_hook")


@dataclass(frozen=True)
class Target:
    """Where the load client connects: the server, or the outermost hook in front of it.

    `path` lists the hooks between client and server, server side first. `https_url` is a
    TLS listener in the path (an HTTP/2 proxy) for probes that need one; `access_log` is a
    request log of the path's proxy (nginx's access-log format, `bench.nginx_logs`).
    """

    protocol: str  # "sse" | "ws"
    host: str
    port: int
    https_url: str | None = None
    access_log: Path | None = None
    path: tuple[str, ...] = ()
    #: The server speaks TLS (https / wss); a hook in the path passes it through.
    tls: bool = False

    @property
    def http_base(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The base URL the load client uses (http(s):// for SSE, ws(s):// for WS)."""
        if self.protocol == "sse":
            return self.http_base
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        """``host:port``, e.g. for a proxy's upstream."""
        return f"{self.host}:{self.port}"

    def via(self, hook: str, host: str, port: int, **changes: Any) -> Target:
        """This target seen through `hook` listening on host:port."""
        return replace(self, host=host, port=port, path=(*self.path, hook), **changes)

    @classmethod
    def from_url(cls, protocol: str, url: str) -> Target:
        parts = urlsplit(url)
        tls = parts.scheme in ("https", "wss")
        return cls(protocol, parts.hostname or "", parts.port or (443 if tls else 80), tls=tls)


@dataclass
class HookContext:
    """What a hook may use during one phase (built by the runner)."""

    run_dir: Path
    phase: str  # "<scenario>[.<variant>]/<arm>/r<rep>"
    stem: str  # file-name form of the phase name
    arm: str
    protocol: str
    scenario: Scenario  # the phase's scenario (a [proxy] variant's server overrides applied)
    seed: int  # the phase seed
    out: Callable[[str], None] = print
    warn: Callable[[str], None] = print  # printed and kept in the manifest's warnings
    #: Request-target marks of the probes of this phase (see PhaseHook.probe_mark).
    probe_marks: tuple[str, ...] = ()

    def dir(self, kind: str) -> Path:
        """``<run>/<kind>/<phase stem>/`` (created): a hook's files for this phase."""
        d = self.run_dir / kind / self.stem
        d.mkdir(parents=True, exist_ok=True)
        return d

    def rel(self, path: Path) -> str:
        """`path` relative to the run folder, as the manifest stores it."""
        try:
            return str(Path(path).relative_to(self.run_dir))
        except ValueError:
            return str(path)


class PhaseHook:
    """Base class: every step is a no-op, so a hook implements only what it needs."""

    #: Short name: log lines, Target.path.
    name: ClassVar[str] = "hook"
    #: Sampler role of its processes (resources.role) and what the manifest says of it.
    role: ClassVar[str] = "hook"
    role_description: ClassVar[str] = ""
    #: Position in the path: lower is nearer the server (before_load runs in this order).
    order: ClassVar[int] = 100
    #: Key of its record in the phase entry and run-level file ``<key>.json``; None: none.
    record_key: ClassVar[str | None] = None
    #: Its probe requests carry this in their target (None: it sends none).
    probe_mark: ClassVar[str | None] = None

    @classmethod
    def for_phase(cls, plan: PhasePlan, scenario: Scenario) -> PhaseHook | None:
        """The hook for this phase, or None when the phase does not need it."""
        return None

    def unavailable(self) -> str | None:
        return None

    def config(self) -> dict[str, Any]:
        return {}

    def before_load(self, ctx: HookContext, target: Target) -> Target:
        return target

    def pids(self) -> list[int]:
        return []

    def after_load(self, ctx: HookContext, target: Target) -> None:
        return None

    def stop(self) -> None:
        return None

    def records(self, ctx: HookContext, target: Target) -> dict[str, Any]:
        return {}

    def skipped(self, reason: str) -> dict[str, Any]:
        return {"skipped": reason}


_REGISTRY: list[type[PhaseHook]] = []


def register(cls: type[PhaseHook]) -> type[PhaseHook]:
    """Add a hook class (usable as a class decorator); registering twice is a no-op."""
    if cls not in _REGISTRY:
        _REGISTRY.append(cls)
    return cls


def registered() -> list[type[PhaseHook]]:
    """Every hook class (imports HOOK_MODULES first)."""
    for module in HOOK_MODULES:
        importlib.import_module(module)
    return list(_REGISTRY)


def phase_hooks(plan: PhasePlan, scenario: Scenario) -> list[PhaseHook]:
    """The hooks this phase declares, server side first."""
    hooks = [h for cls in registered() if (h := cls.for_phase(plan, scenario)) is not None]
    return sorted(hooks, key=lambda h: h.order)


def sampler_roles() -> dict[str, str]:
    """role → description of every registered hook's processes (for the manifest)."""
    return {c.role: c.role_description for c in registered() if c.role_description}


def merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `extra` merged in, recursively for nested dicts (in place; returned)."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value
    return base


@dataclass
class PhaseHooks:
    """The hooks of one phase and their state: which started, what they recorded."""

    hooks: list[PhaseHook]
    started: list[PhaseHook] = field(default_factory=list)
    target: Target | None = None

    def unavailable(self) -> str | None:
        for h in self.hooks:
            why = h.unavailable()
            if why:
                return why
        return None

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for h in self.hooks:
            merge(out, h.config())
        return out

    def probe_marks(self) -> tuple[str, ...]:
        return tuple(h.probe_mark for h in self.hooks if h.probe_mark)

    def before_load(
        self,
        ctx: HookContext,
        target: Target,
        *,
        guard: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
        on_pids: Callable[[PhaseHook, list[int]], None] | None = None,
    ) -> Target:
        """Each hook in order; `guard` wraps each start (the runner holds signals there so
        a Ctrl-C cannot land between a process's start and its registration)."""
        for h in self.hooks:
            self.started.append(h)  # before it starts: a failure half-way is still stopped
            with guard():
                target = h.before_load(ctx, target)
            if on_pids is not None:
                on_pids(h, h.pids())
        self.target = target
        return target

    def after_load(self, ctx: HookContext) -> None:
        assert self.target is not None
        for h in self.started:
            h.after_load(ctx, self.target)

    def pids(self) -> Iterator[int]:
        for h in self.started:
            yield from h.pids()

    def stop(
        self, ctx: HookContext, on_error: Callable[[PhaseHook, BaseException], None]
    ) -> dict[str, dict[str, Any]]:
        """Stop every started hook (outermost first), then collect their records:
        record_key → merged record. A hook that fails to stop or record is reported through
        `on_error` and does not keep the others from stopping."""
        started, self.started = self.started, []
        for h in reversed(started):
            try:
                h.stop()
            except Exception as exc:
                on_error(h, exc)
        out: dict[str, dict[str, Any]] = {}
        target = self.target or Target("sse", "", 0)
        for h in started:
            if h.record_key is None:
                continue
            try:
                rec = h.records(ctx, target)
            except Exception as exc:
                on_error(h, exc)
                continue
            merge(out.setdefault(h.record_key, {}), rec)
        return out

    def skipped(self, reason: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for h in self.hooks:
            if h.record_key is not None:
                merge(out.setdefault(h.record_key, {}), h.skipped(reason))
        return out
