"""A real Chromium (Playwright) through a real nginx: the per-origin limit of C7.

Over HTTP/1.1 the browser keeps at most 6 connections to one origin, so EventSources 7..n
wait for one of the first six to end; over HTTP/2 (the same nginx TLS listener, ALPN) all
n are open at once on one connection. The pure parts always run; the browser test is
skipped with the reason only when chromium, Playwright or nginx is missing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.browser import (
    BROWSER_H1_LIMIT,
    browser_available,
    eventsource_wave,
    max_concurrent,
    wave_summary,
)
from bench.nginx import NginxProcess, nginx_available, read_access_log, variant
from bench.nginx_logs import summarize_access_log
from bench.procs import start_listening

BROWSER_OK, BROWSER_WHY = browser_available()
NGINX_OK, NGINX_WHY = nginx_available()
for ok, why in ((BROWSER_OK, BROWSER_WHY), (NGINX_OK, NGINX_WHY)):
    if not ok:
        print(f"tests/bench/test_browser.py: real-browser test skipped: {why}", file=sys.stderr)
needs_browser = pytest.mark.skipif(
    not (BROWSER_OK and NGINX_OK), reason=BROWSER_WHY if not BROWSER_OK else NGINX_WHY
)

N = 12
# 20 tokens 20 ms apart: a stream lasts ~0.42 s, so a stream that waits for a free
# HTTP/1.1 connection gets its first token about one stream-length late.
PARAMS = {"seed": 3, "tokens": 20, "ttft_ms": 20, "gap_ms": 20}


def test_max_concurrent_counts_overlapping_open_intervals() -> None:
    rows = [
        {"open_ms": 0, "done_ms": 10},
        {"open_ms": 5, "done_ms": 15},
        {"open_ms": 10, "done_ms": 20},  # opens as the first ends: not 3 at once
        {"open_ms": None, "done_ms": None},  # never opened
        {"open_ms": 12, "done_ms": None},  # never finished: stays open
    ]
    assert max_concurrent(rows) == 3
    assert max_concurrent([]) == 0


def test_wave_summary_splits_first_six_from_the_rest() -> None:
    rows = [
        {"i": i, "open_ms": 1.0, "first_ms": 10.0 + i, "done_ms": 50.0, "tokens": 5, "error": None}
        for i in range(6)
    ] + [
        {"i": 6, "open_ms": 50.0, "first_ms": 60.0, "done_ms": 99.0, "tokens": 5, "error": None},
        {"i": 7, "open_ms": None, "first_ms": None, "done_ms": None, "tokens": 0, "error": "x"},
    ]
    s = wave_summary(rows)
    assert s["streams"] == 8 and s["completed"] == 7 and s["errors"] == 1
    assert s["tokens"] == 35 and s["max_open_at_once"] == 6
    assert s["ttft_ms_p50_first"] == pytest.approx(12.5)
    assert s["ttft_ms_p50_rest"] == pytest.approx(60.0)


def test_only_loopback_origins() -> None:
    with pytest.raises(ValueError, match="loopback"):
        eventsource_wave("https://example.com", 2, PARAMS, http2=True)


@pytest.fixture(scope="module")
def sse_port() -> Iterator[int]:
    cmd = [sys.executable, "-m", "servers", "sse", "--port", "0", "--host", "127.0.0.1"]
    server = start_listening("sse", cmd, cwd=Path(__file__).resolve().parents[2])
    try:
        yield server.port
    finally:
        server.stop(grace_s=10)


@needs_browser
def test_browser_h1_waits_at_six_connections_and_h2_multiplexes(
    sse_port: int, tmp_path: Path
) -> None:
    got = {}
    for http2 in (False, True):
        with NginxProcess(
            variant("h2"), upstream_sse=f"127.0.0.1:{sse_port}", workdir=tmp_path / str(http2)
        ) as ng:
            assert ng.https_url is not None
            rows = eventsource_wave(ng.https_url, N, PARAMS, http2=http2)
        access = summarize_access_log(read_access_log(ng.access_log))
        got[http2] = (wave_summary(rows), access)
        print("HTTP/2" if http2 else "HTTP/1.1", got[http2])
    (h1, h1_log), (h2, h2_log) = got[False], got[True]
    for s in (h1, h2):
        assert s["completed"] == N and s["errors"] == 0 and s["tokens"] == N * PARAMS["tokens"]
    # HTTP/1.1: the browser's limit, and the streams over it wait for a connection
    assert h1["max_open_at_once"] == BROWSER_H1_LIMIT
    assert h1_log["protocols"] == ["HTTP/1.1"] and h1_log["connections"] >= BROWSER_H1_LIMIT
    stream_s = PARAMS["tokens"] * PARAMS["gap_ms"]
    assert h1["ttft_ms_p50_rest"] - h1["ttft_ms_p50_first"] > 0.5 * stream_s, h1
    # HTTP/2: every stream open at once on ONE connection, nobody waits
    assert h2["max_open_at_once"] == N
    assert h2_log["protocols"] == ["HTTP/2.0"] and h2_log["connections"] == 1
    assert h2_log["streams_per_connection_max"] == N
    assert h2["ttft_ms_p50_rest"] - h2["ttft_ms_p50_first"] < 0.25 * stream_s, h2
