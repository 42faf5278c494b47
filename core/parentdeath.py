"""Die with the parent: Linux's parent-death signal (prctl PR_SET_PDEATHSIG).

Every process the harness starts — servers, Locust and its forked workers, nginx, the
browser — asks the kernel for a signal when the process that started it dies, so a
SIGKILLed or OOM-killed orchestrator cannot leave children running and writing into its
run folder. The kernel clears the setting on fork, so a process that forks workers (Locust
``--processes``) sets it again in each worker; and it fires when the *thread* that started
the child exits, so children are started from the main thread.

`die_with_parent` is safe to call between fork and exec (as a ``preexec_fn``): the libc
function is looked up once, at import, and the call allocates nothing. Elsewhere than
Linux it does nothing and returns False.
"""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1

try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _prctl = None


def die_with_parent(sig: int = signal.SIGTERM, *, parent: int | None = None) -> bool:
    """Have the kernel send `sig` to this process when its parent dies. With `parent`
    (the PID the caller expects as its parent), a parent that already died before the
    call — the signal would never come — ends this process at once with `sig`."""
    if _prctl is None:
        return False
    if _prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), sig)
    return True


def preexec_die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """`subprocess.Popen(preexec_fn=...)`: the child gets SIGTERM when we die."""
    die_with_parent(signal.SIGTERM)
