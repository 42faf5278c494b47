"""Subprocesses the orchestrator owns: start, wait until ready, stop — always by PID.

Every child is started with ``start_new_session=True``, so it leads its own process
group (pgid == pid). That does two things: a Ctrl-C in the terminal reaches only the
orchestrator (which then stops its children in order, flushing what they hold), and
stopping a child can signal its whole group — Locust's forked ``--processes`` workers
included — without ever touching a process this program did not start. Every child also
gets SIGTERM from the kernel when this process dies (core.parentdeath), so a SIGKILLed or
OOM-killed orchestrator leaves nothing running; start children from the main thread (the
signal follows the thread that started the child).

Servers are started with ``--port 0`` and announce the port the kernel gave them
("listening on http://H:P ..."), so there is no race between picking a free port and
binding it; `free_port` remains for callers that must choose a port up front (nginx).
`start_listening` is the one way to start a server — in the orchestrator, perf, the
benchmarks and the tests: spawn it, wait for its announcement (and /healthz), stop it
by PID if it never gets there.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from core.parentdeath import preexec_die_with_parent

LOOPBACK = "127.0.0.1"
_LISTENING = re.compile(r"listening on (?:https?|wss?)://(?P<host>[^:/\s]+):(?P<port>\d+)")


class ProcessError(RuntimeError):
    """A child did not start, did not become ready, or exited early (message says why)."""


def free_port(host: str = LOOPBACK) -> int:
    """A currently free TCP port on `host` (the kernel's pick; it may be taken again
    before it is used — prefer letting the server bind port 0 and announce it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_ports(n: int, host: str = LOOPBACK) -> list[int]:
    """`n` distinct free ports (all sockets held open until every port is picked)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((host, 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def tail(path: Path, max_chars: int = 2000) -> str:
    """The last `max_chars` of a log file ('' if missing): for error messages."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_chars))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


@dataclass
class Child:
    """One started subprocess, its log file and how it was started."""

    name: str
    cmd: list[str]
    popen: subprocess.Popen[bytes]
    log_path: Path
    t_start_ns: int = field(default_factory=time.monotonic_ns)
    stop_signal: str | None = None

    @property
    def pid(self) -> int:
        return int(self.popen.pid)

    def poll(self) -> int | None:
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Exit code, or None when still running after `timeout_s`."""
        try:
            return self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def signal_group(self, sig: int) -> bool:
        """Send `sig` to the child's own process group; False if the leader is gone.

        Only while the leader is not reaped: until we `wait()` for it, its pid (= the
        group id) cannot be reused, so the signal can only reach processes we started.
        """
        if self.popen.poll() is not None:
            return False
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            return False
        except PermissionError:  # pragma: no cover - not our group: signal only the leader
            self.popen.send_signal(sig)
        return True

    def descendants(self) -> list[psutil.Process]:
        """The child's descendants now (e.g. Locust's forked workers); [] if it is gone."""
        if self.popen.poll() is not None:
            return []
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            return []

    def stop(self, *, grace_s: float = 10.0, first: int = signal.SIGTERM) -> int | None:
        """Ask the group to stop (`first`, default SIGTERM), wait `grace_s`, then SIGKILL the
        group. Descendants that outlive the leader are killed by PID (psutil checks their
        start time, so a reused PID is never hit). Returns the leader's exit code;
        `stop_signal` says which signal ended it (None: it had exited by itself)."""
        members = self.descendants()
        if self.signal_group(first):
            self.stop_signal = signal.Signals(first).name
            code = self.wait(grace_s)
            if code is None and self.signal_group(signal.SIGKILL):
                self.stop_signal = "SIGKILL"
                code = self.wait(5.0)
        else:
            code = self.popen.returncode
        for proc in members:
            with contextlib.suppress(psutil.Error):
                if proc.is_running():
                    proc.kill()
        return code


def spawn(
    name: str,
    cmd: Sequence[str],
    *,
    log_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    cpus: set[int] | None = None,
    die_with_parent: bool = True,
) -> Child:
    """Start `cmd` in a new session, stdout and stderr appended to `log_path` (None: a
    fresh temporary file); it dies with this process unless `die_with_parent` is False
    (a child started from a short-lived thread). `cpus`: pin it to those CPUs."""
    if log_path is None:
        log_path = Path(tempfile.mkdtemp(prefix="ssevsws-")) / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=preexec_die_with_parent if die_with_parent else None,
        )
    child = Child(name=name, cmd=list(cmd), popen=popen, log_path=log_path)
    if cpus is not None:
        try:
            os.sched_setaffinity(child.pid, cpus)
        except OSError:
            child.stop(grace_s=3.0)
            raise
    return child


def _announcement(child: Child) -> re.Match[str] | None:
    return _LISTENING.search(tail(child.log_path, 1 << 16))


def wait_for_listening(child: Child, timeout_s: float = 20.0) -> tuple[str, int]:
    """Poll the child's log for "listening on http://H:P"; (host, port) when seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        m = _announcement(child)
        if m:
            return m["host"], int(m["port"])
        code = child.poll()
        if code is not None:
            raise ProcessError(
                f"{child.name} exited with code {code} before listening; "
                f"log {child.log_path}:\n{tail(child.log_path)}"
            )
        if time.monotonic() > deadline:
            raise ProcessError(
                f"{child.name} did not announce a port within {timeout_s:g} s; "
                f"log {child.log_path}:\n{tail(child.log_path)}"
            )
        time.sleep(0.05)


def http_get(
    url: str, timeout_s: float = 5.0, method: str = "GET", *, cafile: str | None = None
) -> tuple[int, str]:
    """(status, body) of a GET (or a bodiless `method`, e.g. POST /v1/stats/reset); status 0
    and the error text when nothing answered. An https URL is verified (against `cafile`,
    e.g. the run's self-signed certificate, else the system's CAs)."""
    try:
        req = urllib.request.Request(url, method=method)
        ctx = ssl.create_default_context(cafile=cafile) if url.startswith("https:") else None
        with urllib.request.urlopen(req, timeout=timeout_s, context=ctx) as resp:
            return int(resp.status), resp.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


def wait_http_ok(
    url: str, *, timeout_s: float = 20.0, child: Child | None = None, cafile: str | None = None
) -> None:
    """Poll `url` until it answers 200 (ProcessError on timeout or if `child` exits)."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        status, body = http_get(url, timeout_s=2.0, cafile=cafile)
        if status == 200:
            return
        last = f"{status} {body[:200]}"
        if child is not None and child.poll() is not None:
            raise ProcessError(
                f"{child.name} exited with code {child.poll()} while waiting for {url}; "
                f"log {child.log_path}:\n{tail(child.log_path)}"
            )
        time.sleep(0.1)
    raise ProcessError(f"{url} did not answer 200 within {timeout_s:g} s (last: {last})")


@dataclass
class Listening:
    """A started server that announced where it listens (and answered its health check)."""

    child: Child
    host: str
    port: int
    line: str  # the announcement, e.g. "listening on http://127.0.0.1:4321 (kind=sse)"

    @property
    def pid(self) -> int:
        return self.child.pid

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def output(self) -> str:
        """Everything it printed so far."""
        try:
            return self.child.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM its group, SIGKILL after `grace_s`; its exit code."""
        return self.child.stop(grace_s=grace_s)


def wait_ready(
    child: Child, *, timeout_s: float = 20.0, health_path: str | None = "/healthz"
) -> Listening:
    """Wait for the child's "listening on" line, then (unless `health_path` is None) for
    that path to answer 200; ProcessError if it exits or runs out of time."""
    host, port = wait_for_listening(child, timeout_s=timeout_s)
    m = _announcement(child)
    ready = Listening(child, host, port, m.group(0) if m else "")
    if health_path is not None:
        wait_http_ok(f"{ready.http_url}{health_path}", timeout_s=timeout_s, child=child)
    return ready


def start_listening(
    name: str,
    cmd: Sequence[str],
    *,
    log_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    cpus: set[int] | None = None,
    timeout_s: float = 20.0,
    health_path: str | None = "/healthz",
) -> Listening:
    """`spawn` a server that binds port 0 and announces it, and `wait_ready`; a server that
    never gets ready is stopped (by PID) before the ProcessError is raised."""
    child = spawn(name, cmd, log_path=log_path, env=env, cwd=cwd, cpus=cpus)
    try:
        return wait_ready(child, timeout_s=timeout_s, health_path=health_path)
    except BaseException:
        child.stop(grace_s=3.0)
        raise
