"""The nginx proxy matrix (docs/methodology.md), measured: TTFT / E2E / first byte per variant.

    python benchmarks/proxy_probe.py [--rounds 5] [--tokens 100] [--gap-ms 10] [--out DIR]

Starts two reference SSE servers (one sending `X-Accel-Buffering: no`, one not; heartbeat
off), one nginx per (variant, server), and reads the same stream through each with a raw
socket client that timestamps every recv() (bench.nginx.probe_sse). Rounds are
interleaved across rows (A B C … A B C …) so drift hits every row alike. Prints medians;
`--json` also writes every probe. The nginx configs and logs stay in `--out` (default: a
temporary folder, printed) so the numbers can be traced to the exact config.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.nginx import (  # noqa: E402
    NginxProcess,
    SSEProbe,
    nginx_available,
    probe_sse,
    variant,
)
from bench.procs import Listening, ProcessError, start_listening  # noqa: E402 - after the path fix-up


@dataclass(frozen=True)
class Row:
    label: str
    variant: str | None  # None = direct to the server
    accel_header: bool  # the server sends X-Accel-Buffering: no
    accept_gzip: bool  # the client sends Accept-Encoding: gzip


ROWS = (
    Row("direct", None, False, False),
    Row("nginx defaults (buffering on, upstream 1.0)", "buffered", False, False),
    Row("  + X-Accel-Buffering: no", "buffered", True, False),
    Row("proxy_buffering off", "unbuffered", False, False),
    Row("proxy_http_version 1.1 (buffering on)", "buffered-http11", False, False),
    Row("gzip, client A-E: gzip", "gzip", False, True),
    Row("gzip, client A-E: gzip + X-Accel", "gzip", True, True),
    Row("gzip, no A-E from client", "gzip", False, False),
    Row("gzip + upstream 1.1, A-E: gzip", "gzip-http11", False, True),
)


def _start_server(cmd: list[str], accel: bool) -> tuple[Listening, int]:
    """`<cmd> sse --port 0 ...` until it announces its port (bench.procs.start_listening)."""
    flags = ["--heartbeat-s", "0"] + ([] if accel else ["--no-accel-header"])
    argv = [*cmd, "sse", "--port", "0", "--host", "127.0.0.1", *flags]
    try:
        ready = start_listening("sse-server", argv, cwd=ROOT, health_path=None)
    except ProcessError as exc:
        raise SystemExit(f"server did not start: {shlex.join(argv)}: {exc}") from None
    return ready, ready.port


def _med(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return statistics.median(vals) if vals else None


def _fmt(x: float | None, width: int = 8) -> str:
    return f"{x:{width}.1f}" if x is not None else f"{'-':>{width}}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--gap-ms", type=float, default=10.0)
    ap.add_argument("--ttft-ms", type=float, default=0.0)
    ap.add_argument("--out", type=Path, default=None, help="keep configs/logs here")
    ap.add_argument("--json", type=Path, default=None, help="write every probe here")
    ap.add_argument(
        "--server-cmd",
        default=f"{shlex.quote(sys.executable)} -m servers",
        help="command prefix that takes `sse --port 0 [--no-accel-header] --heartbeat-s 0` "
        "and prints 'listening on http://HOST:PORT'",
    )
    args = ap.parse_args(argv)
    ok, reason = nginx_available()
    if not ok:
        print(f"skipped: {reason}")
        return 0
    out = args.out or Path(tempfile.mkdtemp(prefix="proxy_probe_"))
    out.mkdir(parents=True, exist_ok=True)
    cmd = shlex.split(args.server_cmd)
    stream = {"seed": 11, "tokens": args.tokens, "ttft_ms": args.ttft_ms, "gap_ms": args.gap_ms}

    servers = {accel: _start_server(cmd, accel) for accel in (False, True)}
    results: dict[str, list[SSEProbe]] = {r.label: [] for r in ROWS}
    with contextlib.ExitStack() as stack:
        for ready, _ in servers.values():
            stack.callback(ready.stop, 5.0)
        urls: dict[str, str] = {}
        records: dict[str, dict] = {}
        proxies: dict[tuple[str, bool], NginxProcess] = {}
        for row in ROWS:
            port = servers[row.accel_header][1]
            if row.variant is None:
                urls[row.label] = f"http://127.0.0.1:{port}"
                continue
            key = (row.variant, row.accel_header)
            if key not in proxies:
                wd = out / f"{row.variant}-{'accel' if row.accel_header else 'noaccel'}"
                ng = NginxProcess(
                    variant(row.variant), upstream_sse=f"127.0.0.1:{port}", workdir=wd
                )
                proxies[key] = stack.enter_context(ng)
            urls[row.label] = proxies[key].url
            records[row.label] = proxies[key].record()
        for r in range(args.rounds):
            for row in ROWS:
                p = probe_sse(
                    urls[row.label], {**stream, "stream": f"p{r}"}, accept_gzip=row.accept_gzip
                )
                results[row.label].append(p)

    ver = next(iter(records.values()))["version"] if records else "?"
    print(
        f"nginx {ver}; {args.tokens} tokens, ttft {args.ttft_ms:g} ms, gap {args.gap_ms:g} ms; "
        f"medians of {args.rounds} streams; configs/logs in {out}"
    )
    head = (
        f"{'path':46s} {'hdr':>4s} {'A-E':>4s} {'TTFT':>8s} {'E2E':>8s} {'1st B':>8s} "
        f"{'deliv':>5s} {'batch1':>6s} {'enc':>5s} {'buffers':>12s} {'ok':>3s}"
    )
    print(head)
    print("-" * len(head))
    rows_json = []
    for row in ROWS:
        ps = results[row.label]
        deliv = _med([float(p.deliveries) for p in ps])
        batch1 = _med([float(p.token_t_ns.count(p.token_t_ns[0])) for p in ps if p.token_t_ns])
        ok_all = all(p.outcome == "complete" and p.sha_ok for p in ps)
        rec = records.get(row.label)
        bufs = f"{rec['variant']['buffer_size']}/{rec['variant']['buffers']}" if rec else "-"
        enc = ps[0].headers.get("content-encoding", "-") if ps else "-"
        summary = {
            "row": row.label,
            "variant": row.variant,
            "accel_header": row.accel_header,
            "accept_gzip": row.accept_gzip,
            "ttft_ms": _med([p.ttft_ms for p in ps]),
            "e2e_ms": _med([p.e2e_ms for p in ps]),
            "first_byte_ms": _med([p.first_byte_ms for p in ps]),
            "deliveries": deliv,
            "first_batch_tokens": batch1,
            "content_encoding": enc,
            "proxy": rec,
            "all_complete": ok_all,
            "probes": [p.summary() for p in ps],
        }
        rows_json.append(summary)
        print(
            f"{row.label:46s} {'yes' if row.accel_header else 'no':>4s} "
            f"{'gzip' if row.accept_gzip else '-':>4s} {_fmt(summary['ttft_ms'])} "
            f"{_fmt(summary['e2e_ms'])} {_fmt(summary['first_byte_ms'])} "
            f"{_fmt(deliv, 5)} {_fmt(batch1, 6)} {enc:>5s} {bufs:>12s} "
            f"{'yes' if ok_all else 'NO':>3s}"
        )
    print("hdr = server sends X-Accel-Buffering: no; deliv = distinct recv() instants carrying")
    print("tokens; batch1 = tokens in the first delivery; times in ms from request sent.")
    if args.json:
        args.json.write_text(json.dumps({"stream": stream, "rows": rows_json}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
