"""Phase hooks (bench.hooks): the runner drives any registered hook through its life cycle
without knowing it. A test hook puts a real TCP forwarder (tests/bench/forwarder.py, a
bench.procs child) between Locust and the server — what the fault proxy will do."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import psutil
import pytest

from bench import hooks as H
from bench.cli import main
from bench.procs import Child, spawn, wait_for_listening
from core.runfolder import read_manifest, read_table

FORWARDER = Path(__file__).with_name("forwarder.py")

TINY = """\
name = "hooked"
arms = ["sse"]
seed = 5
[load]
users = 3
spawn_rate = 50
duration_s = 2
stop_timeout_s = 3
[stream]
tokens = 10
ttft_ms = 20
gap_ms = 10
"""


class ForwardHook(H.PhaseHook):
    """Between client and server: a forwarder process; records its byte counts."""

    name = "fwd"
    role = "fwd"
    role_description = "test forwarder"
    record_key = "fwd"
    calls: ClassVar[list[str]] = []
    why_unavailable: ClassVar[str | None] = None
    fail_start: ClassVar[bool] = False
    pid_seen: ClassVar[list[int]] = []

    def __init__(self) -> None:
        self.child: Child | None = None
        self.log: Path | None = None

    @classmethod
    def for_phase(cls, plan: Any, scenario: Any) -> ForwardHook:
        cls.calls.append("for_phase")
        return cls()

    def unavailable(self) -> str | None:
        self.calls.append("unavailable")
        return self.why_unavailable

    def config(self) -> dict[str, Any]:
        self.calls.append("config")
        return {"fwd": {"kind": "tcp forwarder"}}

    def before_load(self, ctx: H.HookContext, target: H.Target) -> H.Target:
        self.calls.append("before_load")
        self.log = ctx.dir("fwd") / "fwd.log"
        cmd = [sys.executable, str(FORWARDER), target.address]
        self.child = spawn("fwd", cmd, log_path=self.log)
        self.pid_seen.append(self.child.pid)
        if self.fail_start:
            raise RuntimeError("the forwarder refused to start")
        host, port = wait_for_listening(self.child, timeout_s=20)
        return target.via(self.name, host, port)

    def pids(self) -> list[int]:
        return [self.child.pid] if self.child is not None and self.child.alive() else []

    def after_load(self, ctx: H.HookContext, target: H.Target) -> None:
        self.calls.append("after_load")
        assert target.path == ("fwd",)

    def stop(self) -> None:
        self.calls.append("stop")
        if self.child is not None:
            self.child.stop(grace_s=5)

    def records(self, ctx: H.HookContext, target: H.Target) -> dict[str, Any]:
        self.calls.append("records")
        assert self.log is not None
        last = self.log.read_text().strip().splitlines()[-1]
        return {"counts": json.loads(last), "log": ctx.rel(self.log), "url": target.url}

    def skipped(self, reason: str) -> dict[str, Any]:
        return {"skipped": reason, "by": "fwd"}


@pytest.fixture
def fwd_hook() -> Iterator[type[ForwardHook]]:
    ForwardHook.calls.clear()
    ForwardHook.pid_seen.clear()
    ForwardHook.why_unavailable, ForwardHook.fail_start = None, False
    H.register(ForwardHook)
    try:
        yield ForwardHook
    finally:
        H._REGISTRY.remove(ForwardHook)


def _run(tmp_path: Path) -> tuple[int, Path]:
    scenario = tmp_path / "hooked.toml"
    scenario.write_text(TINY)
    results = tmp_path / "r"
    code = main(["run", str(scenario), "--results", str(results), "--pause", "0"])
    (run,) = [p for p in results.iterdir() if p.is_dir() and not p.is_symlink()]
    return code, run


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_phase_hooks_order_and_records_merge() -> None:
    class A(H.PhaseHook):
        name, order, record_key = "a", 10, "k"

        def before_load(self, ctx: Any, target: H.Target) -> H.Target:
            return target.via("a", "127.0.0.1", 2)

        def records(self, ctx: Any, target: H.Target) -> dict[str, Any]:
            return {"x": 1, "logs": {"a": "a.log"}}

    class B(H.PhaseHook):
        name, order, record_key, probe_mark = "b", 20, "k", "stream=probe-"

        def records(self, ctx: Any, target: H.Target) -> dict[str, Any]:
            return {"y": target.port, "logs": {"b": "b.log"}}

        def stop(self) -> None:
            raise OSError("b would not stop")

    hooks = H.PhaseHooks(sorted([B(), A()], key=lambda h: h.order))
    assert hooks.probe_marks() == ("stream=probe-",)
    target = hooks.before_load(None, H.Target("sse", "127.0.0.1", 1))  # type: ignore[arg-type]
    assert target.url == "http://127.0.0.1:2" and target.path == ("a",)
    errors: list[str] = []
    recs = hooks.stop(None, lambda h, e: errors.append(f"{h.name}: {e}"))  # type: ignore[arg-type]
    assert recs == {"k": {"x": 1, "y": 2, "logs": {"a": "a.log", "b": "b.log"}}}
    assert errors == ["b: b would not stop"] and hooks.started == []
    ws = H.Target("ws", "::1", 9).via("p", "127.0.0.1", 7, https_url="https://127.0.0.1:8")
    assert (ws.url, ws.https_url, ws.address) == (
        "ws://127.0.0.1:7",
        "https://127.0.0.1:8",
        "127.0.0.1:7",
    )


def test_runner_drives_a_hook_it_does_not_know(tmp_path: Path, fwd_hook: type) -> None:
    code, run = _run(tmp_path)
    assert code == 0
    assert fwd_hook.calls == [
        "for_phase",
        "unavailable",
        "before_load",
        "config",
        "after_load",
        "stop",
        "records",
    ]
    m = read_manifest(run)
    (ph,) = m["phases"]
    rec = ph["fwd"]
    # the client went through the forwarder: every byte it received crossed it
    assert ph["url"] == rec["url"] != ph["server"]["url"]
    assert rec["counts"]["connections"] >= ph["streams"] > 0
    received = int(read_table(run, "streams")["bytes_in"].sum())
    assert rec["counts"]["bytes_down"] >= received > 0
    assert json.loads((run / "fwd.json").read_text()) == {ph["name"]: rec}
    assert (run / rec["log"]).is_file()
    cfg = json.loads((run / ph["config"]).read_text())
    assert cfg["proxy"]["fwd"] == {"kind": "tcp forwarder"}
    assert m["sampler"]["roles"]["fwd"] == "test forwarder"
    roles = set(read_table(run, "resources")["role"].astype(object))
    assert "fwd" in roles  # the sampler watched the hook's process
    assert all(_gone(pid) for pid in fwd_hook.pid_seen)


def test_an_unavailable_hook_skips_the_phase_with_its_reason(
    tmp_path: Path, fwd_hook: type
) -> None:
    fwd_hook.why_unavailable = "forwarder not installed"
    code, run = _run(tmp_path)
    assert code == 0
    m = read_manifest(run)
    (ph,) = m["phases"]
    assert ph["status"] == "skipped" and ph["reason"] == "forwarder not installed"
    skipped = {"skipped": "forwarder not installed", "by": "fwd"}
    assert json.loads((run / "fwd.json").read_text()) == {ph["name"]: skipped}
    assert "before_load" not in fwd_hook.calls


def test_a_hook_that_fails_to_start_fails_the_run_and_is_stopped(
    tmp_path: Path, fwd_hook: type
) -> None:
    fwd_hook.fail_start = True
    code, run = _run(tmp_path)
    assert code == 1
    m = read_manifest(run)
    assert m["status"] != "complete"
    assert "the forwarder refused to start" in json.dumps(m)
    assert "stop" in fwd_hook.calls
    assert all(_gone(pid) for pid in fwd_hook.pid_seen)
    assert all(_gone(p["server"]["pid"]) for p in m["phases"] if isinstance(p.get("server"), dict))
