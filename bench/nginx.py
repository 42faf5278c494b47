"""A real nginx in the path (issue 6): find it, run it for one run, probe what it delivers.

- `nginx_available()` → (ok, reason). The reason is what a skipped test or scenario prints;
  nothing is ever faked when nginx is missing.
- `NginxProcess(variant, upstream_sse=..., upstream_ws=..., workdir=...)`: a context manager
  that writes the rendered nginx.conf into `workdir` (the run folder keeps exactly what was
  measured), validates it with `nginx -t`, runs nginx as a child process (`daemon off`,
  loopback ports only; bench.procs: its own process group, dies with its starter), waits
  until it accepts, and stops it by PID (SIGQUIT, then SIGKILL) — master and workers.
- `probe_sse()` / `probe_ws()` (bench.probes, re-exported): one stream through a client
  that timestamps every read, so proxy batching shows as it happens.

Config rendering lives in `bench.nginx_conf` (pure) and is re-exported here.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil

from bench.nginx_conf import (
    VARIANTS,
    ProxyVariant,
    default_buffer_size,
    render_config,
    variant,
    variant_from_dict,
)
from bench.nginx_logs import (
    count_log_events,
    proxy_closes,
    read_access_log,
    read_error_log,
    summarize_access_log,
    summarize_closes,
)
from bench.probes import SSEProbe, WSProbe, probe_sse, probe_ws
from bench.procs import Child, free_port, spawn
from core.tlscert import CertError
from core.tlscert import make_self_signed_cert as _make_cert

__all__ = [
    "ENV_NGINX",
    "VARIANTS",
    "NginxError",
    "NginxProcess",
    "ProxyVariant",
    "SSEProbe",
    "WSProbe",
    "default_buffer_size",
    "find_nginx",
    "free_port",
    "make_self_signed_cert",
    "nginx_available",
    "nginx_version",
    "probe_sse",
    "probe_ws",
    "proxy_closes",
    "read_access_log",
    "read_error_log",
    "render_config",
    "summarize_access_log",
    "summarize_closes",
    "variant",
    "variant_from_dict",
]

ENV_NGINX = "SSEVSWS_NGINX"
_FALLBACK = "/usr/sbin/nginx"
_INSTALL_HINT = "install nginx-light as root (`make system-deps`) or set SSEVSWS_NGINX"


class NginxError(RuntimeError):
    """nginx could not be found, validated, started or stopped (message says why)."""


# --------------------------------------------------------------------------- discovery


def find_nginx(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The nginx binary: `explicit` (config) > $SSEVSWS_NGINX > PATH > /usr/sbin/nginx."""
    for cand in (explicit, os.environ.get(ENV_NGINX)):
        if cand:
            p = Path(cand)
            return p if p.is_file() and os.access(p, os.X_OK) else None
    found = shutil.which("nginx")
    if found:
        return Path(found)
    p = Path(_FALLBACK)
    return p if p.is_file() and os.access(p, os.X_OK) else None


def nginx_version(binary: Path | str) -> tuple[int, int, int]:
    """Parse `nginx -v` (it prints "nginx version: nginx/1.22.1" on stderr)."""
    out = subprocess.run(
        [str(binary), "-v"], capture_output=True, text=True, timeout=10, check=False
    )
    m = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out.stderr + out.stdout)
    if not m:
        raise NginxError(f"cannot read the version of {binary}: {out.stderr.strip()!r}")
    return int(m[1]), int(m[2]), int(m[3])


def nginx_available(explicit: str | os.PathLike[str] | None = None) -> tuple[bool, str]:
    """(True, "nginx 1.22.1 at /usr/sbin/nginx") or (False, why not — printable as a skip)."""
    binary = find_nginx(explicit)
    if binary is None:
        where = explicit or os.environ.get(ENV_NGINX)
        if where:
            return False, f"nginx not found at {where} (from config/{ENV_NGINX}); {_INSTALL_HINT}"
        return False, f"nginx not found on PATH or at {_FALLBACK}; {_INSTALL_HINT}"
    try:
        ver = nginx_version(binary)
    except (OSError, subprocess.SubprocessError, NginxError) as exc:
        return False, f"nginx at {binary} does not run: {exc}"
    return True, f"nginx {'.'.join(map(str, ver))} at {binary}"


# --------------------------------------------------------------------------- helpers


def _nginx_answers(port: int, timeout_s: float = 0.5) -> bool:
    """True when *nginx* answers its own `/__nginx` location on `port`.

    Accepting a connection is not enough: if another process grabbed the port between
    `free_port()` and the start, nginx keeps retrying bind() for ~2.5 s while the port
    accepts — someone else's connections.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
            s.sendall(b"GET /__nginx HTTP/1.0\r\nHost: localhost\r\n\r\n")
            buf = b""
            while len(buf) < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
    except OSError:
        return False
    head, _, body = buf.partition(b"\r\n\r\n")
    return head.startswith(b"HTTP/1.1 200") and b"\r\nServer: nginx" in head and body == b"ok\n"


def make_self_signed_cert(workdir: Path | str) -> tuple[Path, Path]:
    """EC P-256 self-signed cert for CN=localhost (+ SANs 127.0.0.1, ::1), valid one day
    (core.tlscert). Made at run time into the run folder, so no key material lives in the
    repository."""
    try:
        return _make_cert(workdir)
    except CertError as exc:
        raise NginxError(f"{exc} (for the HTTP/2 (TLS) proxy variant)") from None


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no error log)"


# --------------------------------------------------------------------------- the process


class NginxProcess:
    """One nginx for one run (or phase), as a context manager.

    The config goes to `<workdir>/nginx.conf`; logs, pid file and temp paths stay inside
    `workdir`. Ports default to free loopback ports. When the harness runs as root, the
    workers are told to run as the same user (`user root;`): nginx would otherwise drop
    them to `nobody`, which cannot write proxy temp files inside a private run folder.
    """

    def __init__(
        self,
        variant: ProxyVariant,
        *,
        upstream_sse: str | None = None,
        upstream_ws: str | None = None,
        workdir: Path | str,
        listen_port: int | None = None,
        tls_port: int | None = None,
        binary: str | os.PathLike[str] | None = None,
        start_timeout_s: float = 10.0,
        die_with_parent: bool = True,
    ) -> None:
        found = find_nginx(binary)
        if found is None:
            raise NginxError(nginx_available(binary)[1])
        self.binary = found
        self.version = nginx_version(found)
        self.variant = variant
        self.upstream_sse = upstream_sse
        self.upstream_ws = upstream_ws
        self.workdir = Path(workdir).resolve()
        self._auto_ports = listen_port is None and tls_port is None
        self.port = listen_port or free_port()
        self.tls_port = (tls_port or free_port()) if variant.http2 else None
        self.start_timeout_s = start_timeout_s
        # Linux PDEATHSIG fires when the *thread* that started nginx exits: start it from
        # the main thread (or a thread that lives as long as the run), or pass False.
        self.die_with_parent = die_with_parent
        self.conf_path = self.workdir / "nginx.conf"
        self.error_log = self.workdir / "error.log"
        self.access_log = self.workdir / "access.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.child: Child | None = None  # bench.procs: own process group, stopped by PID
        self._procs: list[psutil.Process] = []
        self.started_ns: int | None = None
        self.stopped_ns: int | None = None
        self.stop_signal: str | None = None

    # -- rendering ---------------------------------------------------------------------
    def render(self) -> str:
        cert = None
        if self.variant.http2:
            cert = (self.workdir / "cert.pem", self.workdir / "key.pem")
        user = None
        if os.geteuid() == 0:
            user = pwd.getpwuid(os.geteuid()).pw_name
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        want = 2 * self.variant.worker_connections + 64
        nofile = want if hard == resource.RLIM_INFINITY else min(want, hard)
        return render_config(
            self.variant,
            self.port,
            self.upstream_sse,
            self.upstream_ws,
            self.workdir,
            tls_port=self.tls_port,
            cert=cert,
            nginx_version=self.version,
            user=user,
            worker_rlimit_nofile=nofile,
        )

    def write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.workdir / "temp" / kind).mkdir(parents=True, exist_ok=True)
        if self.variant.http2:
            make_self_signed_cert(self.workdir)
        self.conf_path.write_text(self.render())
        return self.conf_path

    def _cmd(self, *extra: str) -> list[str]:
        return [
            str(self.binary),
            "-c", str(self.conf_path),
            "-p", str(self.workdir),
            "-e", str(self.error_log),
            *extra,
        ]  # fmt: skip

    def validate(self) -> None:
        out = subprocess.run(self._cmd("-t"), capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise NginxError(f"nginx -t rejected {self.conf_path}:\n{out.stderr.strip()}")

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> NginxProcess:
        """Write, validate and start; retry on fresh ports if an auto-picked one was taken."""
        if self.proc is not None:
            raise NginxError("already started")
        for attempt in range(3):
            try:
                return self._start_once()
            except NginxError as exc:
                if not self._auto_ports or "in use" not in str(exc) or attempt == 2:
                    raise
                self.port = free_port()
                self.tls_port = free_port() if self.variant.http2 else None
        raise AssertionError("unreachable")

    def _start_once(self) -> NginxProcess:
        self.write_config()
        self.validate()
        self.child = spawn(
            "nginx",
            self._cmd(),
            log_path=self.workdir / "nginx.out",
            die_with_parent=self.die_with_parent,
        )
        self.proc = self.child.popen
        self.started_ns = time.monotonic_ns()
        ports = [p for p in (self.port, self.tls_port) if p]
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise NginxError(f"nginx exited at start (code {code}):\n{_tail(self.error_log)}")
            # the master binds every listen socket before any worker starts, so once the
            # plain port answers from nginx the TLS port is bound too
            if _nginx_answers(self.port):
                break
            if time.monotonic() > deadline:
                self.stop()
                raise NginxError(
                    f"nginx did not accept on {ports} within {self.start_timeout_s} s:\n"
                    f"{_tail(self.error_log)}"
                )
            time.sleep(0.02)
        self._procs = self._snapshot()
        return self

    def _snapshot(self) -> list[psutil.Process]:
        if self.proc is None:
            return []
        try:
            master = psutil.Process(self.proc.pid)
            return [master, *master.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def pids(self) -> list[int]:
        """Master first, then workers (fresh each call: workers may be respawned)."""
        return [p.pid for p in self._snapshot()]

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self, quit_grace_s: float | None = None) -> None:
        """SIGQUIT (graceful, bounded by worker_shutdown_timeout), then SIGKILL.

        Only the processes this object started are signalled, by PID; workers are tracked
        (psutil checks creation time, so a reused PID is never hit).
        """
        if self.proc is None or self.child is None:
            return
        procs = {p.pid: p for p in [*self._procs, *self._snapshot()]}
        grace = (
            self.variant.worker_shutdown_timeout_s + 1.0 if quit_grace_s is None else quit_grace_s
        )
        # SIGQUIT to nginx's own process group (master and workers), SIGKILL after `grace`
        self.child.stop(grace_s=grace, first=signal.SIGQUIT)
        self.stop_signal = self.child.stop_signal
        for p in procs.values():  # orphaned workers (master killed hard)
            with contextlib.suppress(psutil.Error):
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    p.kill()
        self.stopped_ns = time.monotonic_ns()
        self.proc = None
        self.child = None

    def __enter__(self) -> NginxProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses and record ----------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def https_url(self) -> str | None:
        return f"https://127.0.0.1:{self.tls_port}" if self.tls_port else None

    def log_events(self) -> dict[str, int]:
        """Counts of error-log lines that say who closed what (`bench.nginx_logs`).

        "upstream timed out" is nginx's proxy_read_timeout firing (it closes the client
        side); "client prematurely closed" / "upstream prematurely closed" name the side
        that hung up first.
        """
        return count_log_events(self.error_log)

    def closes(self) -> list[dict[str, Any]]:
        """Per-connection outcomes from error.log (`bench.nginx_logs.proxy_closes`)."""
        return proxy_closes(self.error_log)

    def record(self) -> dict[str, Any]:
        """What the manifest should say about this proxy."""
        return {
            "kind": "nginx",
            "binary": str(self.binary),
            "version": ".".join(map(str, self.version)),
            "variant": self.variant.record(),
            "listen_port": self.port,
            "tls_port": self.tls_port,
            "upstream_sse": self.upstream_sse,
            "upstream_ws": self.upstream_ws,
            "config": str(self.conf_path),
            "stop_signal": self.stop_signal,
        }
