"""Where a process spends its CPU, sampled in the run: py-spy on a PID, summarised by bucket.

`ssevsws perf` samples each project server and the alternative it is compared with during
the flood window, and the load client during the end-to-end run, so the report can say
*why* a target is missed with figures from the same run (issue 7), not from memory.

- `record(pid, seconds, out)`: `py-spy record --format raw --nonblocking` (the target is
  never paused; samples are taken only while a thread is on the CPU, so the shares are
  shares of CPU time). Returns an error string instead of raising: a machine that forbids
  ptrace gets "not profiled: <reason>" in the report, never an invented why.
- `summarize(path)`: total samples, shares per bucket of the *leaf* frame's file (where
  the CPU was when sampled: aiohttp's write path, the websockets library, gevent's hub,
  the project's own modules …) and the top leaf functions. Native code (uvloop, libev,
  syscalls) has no Python frame of its own: it is counted in the Python frame that runs
  it — the event loop's `run` (asyncio bucket) or gevent's `Hub.run`.
- `REMEDIES`: for a dominant bucket, what would cut it — advice keyed by a measured
  share, printed next to that share.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["BUCKETS", "REMEDIES", "bucket_of", "find_py_spy", "record", "summarize"]

#: (bucket, path fragments of the leaf frame's file); the first match wins.
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("project server (servers/)", ("servers/",)),
    ("project client core (core/client/, core/formats/)", ("core/client/", "core/formats/")),
    ("project core (core/)", ("core/",)),
    ("project client (loadtests/)", ("loadtests/",)),
    ("aiohttp", ("aiohttp/",)),
    ("websockets library", ("websockets/",)),
    ("uvicorn / starlette", ("uvicorn/", "starlette/", "sse_starlette/", "anyio/")),
    ("h11", ("h11/",)),
    ("gevent hub / greenlets", ("gevent/", "greenlet")),
    ("event loop (native: I/O, scheduling)", ("asyncio/", "uvloop")),
    ("synthetic text (random)", ("random.py",)),
    ("json", ("json/",)),
    ("hashing", ("hashlib",)),
    ("records (pyarrow / pandas)", ("pyarrow/", "pandas/")),
)
OTHER = "other"

#: What would cut a bucket's share (shown only next to a measured share).
REMEDIES: dict[str, str] = {
    "aiohttp": (
        "aiohttp's response writer: chunk framing and one transport.write per token "
        "(the flood sends one write per event-loop pass by design); writing pre-framed "
        "chunks straight to the transport, or coalescing tokens due in the same pass, "
        "would cut it"
    ),
    "websockets library": (
        "the websockets library's frame building and per-message send path; a hand-rolled "
        "unmasked text frame (as the client's fast path does) would cut it"
    ),
    "uvicorn / starlette": (
        "the ASGI layers (uvicorn → starlette → sse-starlette) per event: the alternative's "
        "own cost, what our server is compared with"
    ),
    "gevent hub / greenlets": (
        "the hub's own loop (native: epoll_wait, one io-watcher callback per ready socket, "
        "timers) — the reader already drains every ready socket per pass and wakes a user "
        "only when its script must act, so what is left is paid per pass, not per token: "
        "fuller passes (more streams per process) spread it thinner; fewer passes (waiting "
        "a little between them under load) would cut it, at the cost of added delay"
    ),
    "project client (loadtests/)": (
        "per-token bookkeeping of the session script and transports (event objects, "
        "accounting, record rows); fewer objects per token would cut it"
    ),
    "project client core (core/client/, core/formats/)": (
        "the client core per read and per token: HTTP body framing, SSE lines / WS frames, the "
        "payload format's decoder and one Token object; batching several sockets' reads per "
        "pass, or decoding fewer fields per token, would cut it"
    ),
    "project server (servers/)": (
        "the emission loop itself (due-time check, payload, stats) once per token"
    ),
    "project core (core/)": (
        "payload formatting, SSE/WS framing and (client side) parsing in core/ per token"
    ),
    "event loop (native: I/O, scheduling)": (
        "the event loop's own code (uvloop is native, so its send/recv syscalls land here): "
        "one loop pass and one send per token by design (a handler that never yields starves "
        "every other connection)"
    ),
    "h11": "h11's per-request parsing (once per stream, heavy for short streams)",
    "synthetic text (random)": "drawing the synthetic token ids (random.choices per stream)",
    "records (pyarrow / pandas)": "writing record rows (flushes of the parquet part files)",
}

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):\d+\)$")


def find_py_spy() -> str | None:
    """py-spy next to this interpreter (the venv's), else on PATH."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path, *, rate: int = 200) -> str | None:
    """Sample `pid` for `seconds` into `out` (py-spy raw format). None, or why it failed."""
    exe = find_py_spy()
    if exe is None:
        return "py-spy not installed (pip install -e '.[perf]')"
    cmd = [exe, "record", "--format", "raw", "--nonblocking", "-r", str(rate)]
    cmd += ["-d", str(max(1, round(seconds))), "-p", str(pid), "-o", str(out)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"py-spy failed: {e}"
    if done.returncode != 0 or not out.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"py-spy exit {done.returncode}: {tail[0][:200]}"
    return None


def bucket_of(file: str) -> str:
    for name, frags in BUCKETS:
        if any(f in file for f in frags):
            return name
    return OTHER


def _leaf(stack: str) -> tuple[str, str]:
    """(file, "file:function") of a raw stack's leaf frame."""
    leaf = stack.rsplit(";", 1)[-1]
    m = _FRAME.match(leaf)
    if not m:
        return leaf, leaf
    return m["file"], f"{m['file']}:{m['func']}"


def summarize(path: Path, *, top: int = 8) -> dict[str, Any]:
    """Shares (0..1) of samples per bucket and the top leaf functions of a raw profile."""
    buckets: Counter[str] = Counter()
    funcs: Counter[str] = Counter()
    total = 0
    with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            file, func = _leaf(stack)
            buckets[bucket_of(file)] += n
            funcs[func] += n
            total += n
    if total == 0:
        return {"samples": 0, "buckets": {}, "top": []}
    return {
        "samples": total,
        "buckets": {k: v / total for k, v in buckets.most_common()},
        "top": [[k, v / total] for k, v in funcs.most_common(top)],
    }
