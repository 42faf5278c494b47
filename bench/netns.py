"""Network namespaces for `ssevsws run --hosts N`: one machine, several network hosts.

A `Lab` makes, for one run, a hub namespace holding a bridge and one namespace per host
(the server, the Locust master, each load host), each joined to the bridge by a veth pair
(``<role>`` on the hub side, ``eth0`` inside) and given its own address from a private
range (`SUBNET`.0/24). Nothing is added to the machine's own namespace: no interface, no
route, no address, so traffic can only flow between the lab's namespaces and nothing
leaves the machine. Every name starts with ``ssevsws-<runner pid>-`` so it can never
collide with anything else, and a stale lab (its runner gone) is recognised by that PID.

Children are placed in a host with ``ip netns exec NS CMD`` (`wrap`): `ip` enters the
namespace and execs CMD, so the child's PID is the one the runner started and stops.
The runner's own HTTP calls to the server (health checks, /metrics) run in a thread that
joined the server's namespace (`call_in`): a network namespace is per thread on Linux.

Removal: `remove()` (the runner calls it after stopping the children: also after Ctrl-C and
crashes) deletes the namespaces, and with them the veths and the bridge. If the runner is
SIGKILLed, a guard process (``python -m bench.netns --guard TAG``, reading a pipe from the
runner) sees the pipe close and removes them, first killing any process still inside —
processes only this run put there. A lab left over anyway is removed by the next run
(`reap_stale`).

Requires root and iproute2's ``ip``; `unavailable()` says why not in one line.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

PREFIX = "ssevsws"
#: The lab's private /24 (RFC 1918); it exists only inside the lab's namespaces.
SUBNET = "10.213.0"
NETNS_DIR = Path("/run/netns")
_CLONE_NEWNET = 0x40000000
_TAG = re.compile(rf"^{PREFIX}-(\d+)-")
T = TypeVar("T")


class NetnsError(RuntimeError):
    """An `ip` command failed (message has the command and its stderr)."""


def ip_binary() -> str | None:
    return shutil.which("ip") or next(
        (p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip") if os.access(p, os.X_OK)), None
    )


def unavailable() -> str | None:
    """Why `--hosts` cannot run here (one line), or None when it can."""
    if os.geteuid() != 0:
        return "--hosts needs root (network namespaces and veth pairs): run as root or drop it"
    ip = ip_binary()
    if ip is None:
        return "--hosts needs iproute2's `ip` (apt-get install iproute2)"
    probe = subprocess.run([ip, "netns", "list"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"--hosts: `ip netns` does not work here: {probe.stderr.strip()[:200]}"
    return None


def _ip(*args: str) -> str:
    ip = ip_binary() or "ip"
    done = subprocess.run([ip, *args], capture_output=True, text=True, check=False, timeout=20)
    if done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def lab_namespaces(tag: str | None = None) -> list[str]:
    """Namespaces of labs (all of them, or those of one `tag`) that exist now."""
    try:
        names = sorted(p.name for p in NETNS_DIR.iterdir())
    except OSError:
        return []
    if tag is None:
        return [n for n in names if _TAG.match(n)]
    return [n for n in names if n.startswith(f"{tag}-")]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_inside(ns: str) -> None:
    """SIGKILL the processes still in a lab namespace (only a run's own children go there)."""
    with contextlib.suppress(NetnsError):
        for pid in _ip("netns", "pids", ns).split():
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid), signal.SIGKILL)


def delete_namespaces(names: Sequence[str]) -> list[str]:
    """Delete these namespaces (processes inside are killed first); the ones that could not
    be deleted are returned."""
    left = []
    for ns in names:
        _kill_inside(ns)
        try:
            _ip("netns", "delete", ns)
        except NetnsError:
            if (NETNS_DIR / ns).exists():
                left.append(ns)
    return left


def reap_stale() -> list[str]:
    """Delete labs whose runner is gone (a SIGKILL the guard did not survive); returns
    their names."""
    stale = [n for n in lab_namespaces() if not _pid_alive(int(_TAG.match(n)[1]))]  # type: ignore[index]
    delete_namespaces(stale)
    return stale


@dataclass(frozen=True)
class Host:
    """One network host of the lab."""

    role: str  # "server", "master", "w1", …
    netns: str
    address: str

    @property
    def veth(self) -> str:
        """The hub side of its veth pair (inside the host it is ``eth0``)."""
        return f"v-{self.role}"


def _setns(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if hasattr(os, "setns"):  # Python 3.12+
            os.setns(fd, _CLONE_NEWNET)
            return
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


class Lab:
    """The namespaces, veths and bridge of one run (see the module docstring)."""

    def __init__(self, roles: Sequence[str], tag: str | None = None) -> None:
        if len(set(roles)) != len(roles) or not roles:
            raise ValueError(f"roles must be distinct and non-empty: {roles}")
        if len(roles) > 200 or any(not re.fullmatch(r"[a-z][a-z0-9]{0,12}", r) for r in roles):
            raise ValueError(f"at most 200 roles of [a-z][a-z0-9]{{0,12}}: {roles}")
        self.tag = tag or f"{PREFIX}-{os.getpid()}"
        self.hub = f"{self.tag}-hub"
        self.hosts: dict[str, Host] = {
            role: Host(role, f"{self.tag}-{role}", f"{SUBNET}.{i + 1}")
            for i, role in enumerate(roles)
        }
        self._guard: subprocess.Popen[bytes] | None = None
        self.created = False

    # ------------------------------------------------------------------ lifecycle
    def create(self) -> None:
        """Make the hub, the bridge and every host; on any failure remove what was made."""
        reap_stale()
        self._start_guard()
        try:
            _ip("netns", "add", self.hub)
            self.created = True
            _ip("-n", self.hub, "link", "set", "lo", "up")
            _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.hub, "link", "set", "br0", "up")
            for host in self.hosts.values():
                self._add_host(host)
        except BaseException:
            self.remove()
            raise

    def _add_host(self, host: Host) -> None:
        ns = host.netns
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", self.hub, "link", "add", "name", host.veth, "type", "veth",
            "peer", "name", "eth0", "netns", ns)  # fmt: skip
        _ip("-n", self.hub, "link", "set", "dev", host.veth, "master", "br0")
        _ip("-n", self.hub, "link", "set", "dev", host.veth, "up")
        _ip("-n", ns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")

    def _start_guard(self) -> None:
        self._guard = subprocess.Popen(
            [sys.executable, "-m", "bench.netns", "--guard", self.tag],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd=Path(__file__).resolve().parents[1],
        )

    def remove(self) -> list[str]:
        """Delete every namespace of the lab (idempotent); the names still there after
        (normally none) are returned."""
        left = delete_namespaces(lab_namespaces(self.tag))
        if self._guard is not None:
            with contextlib.suppress(OSError):
                if self._guard.stdin is not None:
                    self._guard.stdin.close()  # the guard finds nothing and exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._guard.wait(5)
            self._guard = None
        return left

    def __enter__(self) -> Lab:
        self.create()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # ------------------------------------------------------------------ use
    def wrap(self, role: str, cmd: Sequence[str]) -> list[str]:
        """`cmd` run inside `role`'s namespace (exec'd: same PID)."""
        return [ip_binary() or "ip", "netns", "exec", self.hosts[role].netns, *cmd]

    def call_in(self, role: str, fn: Callable[[], T]) -> T:
        """`fn()` in a thread that joined `role`'s network namespace (its sockets are
        there); its result or exception."""
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                _setns(NETNS_DIR / self.hosts[role].netns)
                box["value"] = fn()
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc

        t = threading.Thread(target=run, name=f"netns-{role}", daemon=True)
        t.start()
        t.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def link_counters(self) -> dict[str, dict[str, int]]:
        """Bytes and packets through each host's veth, as the hub sees them (rx = sent by
        that host)."""
        out: dict[str, dict[str, int]] = {}
        data = json.loads(_ip("-n", self.hub, "-s", "-j", "link", "show") or "[]")
        by_veth = {h.veth: role for role, h in self.hosts.items()}
        for link in data:
            name = by_veth.get(link.get("ifname"))
            if name is not None:
                stats = link.get("stats64") or link.get("stats") or {}
                rx, tx = stats.get("rx", {}), stats.get("tx", {})
                out[name] = {
                    "from_host_bytes": int(rx.get("bytes", 0)),
                    "to_host_bytes": int(tx.get("bytes", 0)),
                    "from_host_packets": int(rx.get("packets", 0)),
                    "to_host_packets": int(tx.get("packets", 0)),
                }
        return out


# --------------------------------------------------------------------------- peers


def _hex_ipv4(text: str) -> str:
    """ "0100007F" (as in /proc/net/tcp, host byte order) → "127.0.0.1"."""
    return socket.inet_ntoa(struct.pack("<I", int(text, 16)))


def established_peers(pid: int) -> Counter[str]:
    """Remote IPv4 addresses of `pid`'s established TCP connections, counted — read from
    /proc/<pid>/net/tcp, i.e. in the process's own network namespace (psutil reads the
    caller's)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    peers: Counter[str] = Counter()
    try:
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return peers
    for line in lines:
        f = line.split()
        if len(f) > 9 and f[3] == "01" and f[9] in inodes:  # 01 = ESTABLISHED
            peers[_hex_ipv4(f[2].split(":")[0])] += 1
    return peers


class PeerWatch:
    """Samples the established peers of some processes every `interval_s` in a thread;
    `stop()` returns, per name, each peer address with the most connections seen at once."""

    def __init__(self, pids: dict[str, int], interval_s: float = 0.5) -> None:
        self.pids = pids
        self.interval_s = interval_s
        self.seen: dict[str, Counter[str]] = {name: Counter() for name in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peer-watch", daemon=True)

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            for peer, n in established_peers(pid).items():
                self.seen[name][peer] = max(self.seen[name][peer], n)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval_s)

    def start(self) -> PeerWatch:
        self._thread.start()
        return self

    def stop(self) -> dict[str, dict[str, int]]:
        self._stop.set()
        self._thread.join(5)
        return {name: dict(sorted(c.items())) for name, c in self.seen.items()}


# --------------------------------------------------------------------------- guard


def _guard(tag: str) -> int:
    """Wait for the runner's pipe to close, then remove what is left of its lab."""
    if not _TAG.match(f"{tag}-"):
        print(f"not a lab tag: {tag!r}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the runner's to handle
    with contextlib.suppress(OSError):
        while sys.stdin.buffer.read(4096):
            pass
    time.sleep(0.2)
    delete_namespaces(lab_namespaces(tag))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--guard":
        sys.exit(_guard(sys.argv[2]))
    print("usage: python -m bench.netns --guard ssevsws-<pid>", file=sys.stderr)
    sys.exit(2)
