"""The browser load generator in a real Chromium against the reference servers.

- In-page TTFT, ITL and delivery latency agree with the Python client's on the same
  schedule (50 streams in one page), and no token is stamped before the server sent it
  (the clock mapping's truth check).
- EventSource honours the server's `retry:` (500 ms → a ~500 ms gap) and sends
  Last-Event-ID (nothing lost, nothing repeated); fetch without resume loses the tokens in
  flight and the counts say how many; fetch and WebSocket resume by hand.
- The page's SSE parser handles every chunking.

Skipped, with the reason, only when chromium is missing (the parser test: or Playwright).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from core.browser import CHROMIUM_FLAGS, browser_available, chromium_available, find_chromium
from core.runfolder import read_manifest, read_table
from loadtests.browser.clients import PAGE_DIR
from tests.bench.test_integrity import small_disk  # noqa: F401 - the 1 MiB tmpfs fixture
from tests.loadtests.browser_phase import COMMAND, ROOT, browser_phase, medians, phase_env
from tests.loadtests.conftest import drive, reference

CHROMIUM_OK, CHROMIUM_WHY = chromium_available()  # the load generator needs only chromium
BROWSER_OK, BROWSER_WHY = browser_available()  # the parser test drives a page with Playwright
for ok, why in ((CHROMIUM_OK, CHROMIUM_WHY), (BROWSER_OK, BROWSER_WHY)):
    if not ok:
        print(f"tests/loadtests/test_browser_load.py: skipped: {why}", file=sys.stderr)
pytestmark = pytest.mark.skipif(not CHROMIUM_OK, reason=CHROMIUM_WHY)

#: Stated tolerance: medians of the page's and the Python client's figures on one schedule.
AGREE_MS = 2.0
USERS, TOKENS, TTFT_MS, GAP_MS, SPAWN_S = 50, 40, 200, 20, 1.0
RETRY_MS = 500


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    yield from reference(["--retry-ms", str(RETRY_MS)])


def _proto(arm: str) -> str:
    return "ws" if arm == "browser-ws" else "sse"


def _first_tokens(streams: pd.DataFrame, tokens: pd.DataFrame) -> pd.DataFrame:
    first = tokens.groupby("stream_uid", sort=False).first().reset_index()
    return streams.merge(
        first[["stream_uid", "t_server_ns"]].rename(columns={"t_server_ns": "t_server_first_ns"}),
        on="stream_uid",
    )


def _split_ttft(rows: pd.DataFrame) -> dict[str, float]:
    """TTFT = dispatch (request sent → the server has it; from the server's stamp on token
    0 minus its scheduled TTFT, so server lag included) + the rest (scheduled TTFT + first
    token's delivery), medians in ms; and the smallest dispatch (a causality check)."""
    ttft = (rows["t_first_ns"] - rows["t_send_ns"]) / 1e6
    dispatch = (rows["t_server_first_ns"] - rows["t_send_ns"]) / 1e6 - TTFT_MS
    return {
        "ttft": float(ttft.median()),
        "dispatch": float(dispatch.median()),
        "after_dispatch": float((ttft - dispatch).median()),
        "dispatch_min": float(dispatch.min()),
    }


@pytest.mark.parametrize("arm", ["browser-eventsource", "browser-fetch", "browser-ws"])
def test_in_page_ttft_and_itl_agree_with_the_python_client(
    tmp_path: Path, urls: dict[str, str], arm: str
) -> None:
    """Same server, same schedule, 50 streams: the Python client, then one Chromium page.

    ITL and delivery latency medians agree within AGREE_MS. TTFT is the request's dispatch
    plus what follows the server's receipt; the latter agrees within AGREE_MS. The dispatch
    is the browser's own cost and is not expected to agree: a page cannot open a connection
    before its clock starts (EventSource opens one per stream, a first fetch also sends a
    CORS preflight), where the Python client connects first (pitfall 16).
    """
    url = urls[_proto(arm)]
    schedule = ["--tokens", str(TOKENS), "--ttft-ms", str(TTFT_MS), "--gap-ms", str(GAP_MS)]
    py = drive(
        _proto(arm), url, "--users", str(USERS), "--spawn-s", str(SPAWN_S), "--rows", *schedule
    )
    run = browser_phase(
        tmp_path,
        arm,
        url,
        {
            "load": {
                "users": USERS,
                "spawn_rate": USERS / SPAWN_S,
                "duration_s": 2,
                "stop_timeout_s": 10,
            },
            "stream": {"tokens": TOKENS, "ttft_ms": TTFT_MS, "gap_ms": GAP_MS},
            "session": {"sessions_per_user": 1},
            "browser": {"users_per_page": USERS},
        },
    )
    assert run.code == 0, run.log[-3000:]
    assert len(run.record["pages"]) == 1  # 50 streams in one page
    assert set(run.streams["outcome"]) == {"ok"} and len(run.streams) == USERS
    assert run.streams["checksum_ok"].all()
    page = medians(run.streams, run.tokens)
    for key in ("itl_ms_median", "delivery_ms_p50"):
        assert abs(page[key] - py[key]) <= AGREE_MS, (key, page[key], py[key])
    ours = _split_ttft(_first_tokens(run.streams, run.tokens))
    theirs = _split_ttft(pd.DataFrame(py["rows"]))
    figures = {"page": ours, "python": theirs}
    assert abs(ours["after_dispatch"] - theirs["after_dispatch"]) <= AGREE_MS, figures
    assert ours["ttft"] - theirs["ttft"] >= -AGREE_MS, figures  # a page is never faster
    # causality both ways: mapped onto the harness clock, no request reaches the server
    # before the page sent it and no token arrives before the server sent it
    bound_ms = run.record["clock"]["half_width_ns_max"] / 1e6
    assert ours["dispatch_min"] >= -bound_ms, (figures, bound_ms)
    assert page["delivery_ms_min"] >= -bound_ms, (page["delivery_ms_min"], bound_ms)
    assert bound_ms < 1.0
    p0 = run.record["pages"][0]
    assert p0["cross_origin_isolated"] and p0["resolution_ms"] <= 0.005 + 1e-9
    # framing bytes per token (everything parsed − the token payload), as the Python client
    # counts them; an EventSource page never sees the framing: not measured
    if arm == "browser-eventsource":
        assert run.streams["bytes_in"].isna().all()
    else:
        app = run.streams["bytes_in"].sum() / run.streams["n_received"].sum()
        framing = app - run.tokens["nbytes"].mean()
        py_framing = py["app_bytes_per_token"] - py["event_bytes_per_token"]
        assert abs(framing - py_framing) <= 0.5, (framing, py_framing)
    print(f"{arm}: page {ours} python {theirs} page {page} python {py['itl_ms_median']}")


def _reconnect_run(tmp_path: Path, urls: dict[str, str], arm: str, users: int = 10):
    return browser_phase(
        tmp_path,
        arm,
        urls[_proto(arm)],
        {
            "load": {"users": users, "spawn_rate": 100, "duration_s": 1, "stop_timeout_s": 10},
            "stream": {"tokens": 30, "ttft_ms": 50, "gap_ms": 10, "drop_after": 10},
            "session": {"sessions_per_user": 1},
            "behaviour": {"resume": True, "max_reconnects": 3},
        },
    )


def _gaps_ms(run) -> np.ndarray:
    st, tk = run.streams, run.tokens
    out = []
    for uid, t_drop in zip(st["stream_uid"], st["t_drop_ns"], strict=True):
        t = tk.loc[(tk["stream_uid"] == uid) & (tk["t_recv_ns"] > t_drop), "t_recv_ns"]
        if len(t):
            out.append((t.min() - t_drop) / 1e6)
    return np.asarray(out)


def test_eventsource_honours_retry_and_sends_last_event_id(
    tmp_path: Path, urls: dict[str, str]
) -> None:
    run = _reconnect_run(tmp_path, urls, "browser-eventsource")
    assert run.code == 0, run.log[-3000:]
    st = run.streams
    assert st["t_drop_ns"].notna().all() and (st["reconnects"] >= 1).all()
    # Last-Event-ID: the server resumed after the last event the page had — had the
    # browser not sent it, the stream would start over and repeat 10 tokens
    assert set(st["outcome"]) == {"ok"} and st["checksum_ok"].all()
    assert st["n_lost"].sum() == 0 and st["n_dup"].sum() == 0
    assert (st["n_received"] == 30).all()
    # retry: the browser waited the server's 500 ms (default would be 3 s), not 0
    gaps = _gaps_ms(run)
    assert len(gaps) == len(st)
    assert gaps.min() >= RETRY_MS - 5, gaps
    assert abs(float(np.median(gaps)) - RETRY_MS) <= 100, gaps
    assert run.record["client"]["recovery_lines"] <= 5


@pytest.mark.parametrize("arm", ["browser-fetch", "browser-ws"])
def test_fetch_and_websocket_resume_by_hand(tmp_path: Path, urls: dict[str, str], arm: str) -> None:
    run = _reconnect_run(tmp_path, urls, arm)
    assert run.code == 0, run.log[-3000:]
    st = run.streams
    assert st["t_drop_ns"].notna().all() and (st["reconnects"] >= 1).all()
    assert set(st["outcome"]) == {"ok"} and st["checksum_ok"].all()
    assert st["n_lost"].sum() == 0 and st["n_dup"].sum() == 0
    gaps = _gaps_ms(run)
    assert len(gaps) == len(st) and float(np.median(gaps)) < RETRY_MS  # no retry wait
    assert run.record["client"]["recovery_lines"] > 0


def test_fetch_without_resume_loses_the_tokens_in_flight(
    tmp_path: Path, urls: dict[str, str]
) -> None:
    run = _reconnect_run(tmp_path, urls, "browser-fetch-noresume")
    assert run.code == 1  # like Locust: streams failed, the data is good
    st = run.streams
    assert set(st["outcome"]) == {"dropped"} and (st["reconnects"] == 0).all()
    # the server cut after 10 of 30 tokens: at least 20 lost per stream, every one counted
    assert (st["n_lost"] >= 20).all() and (st["n_lost"] <= 30).all()
    assert (st["n_lost"] + st["n_unique"] == 30).all()
    assert st["checksum_ok"].isna().all()  # no done event
    assert run.record["client"]["recovery_lines"] == 0
    assert run.record["streams"] == {"dropped": len(st)}


CHUNKINGS = r"""
(src) => {
  const results = [];
  const feedAll = (chunks) => {
    const got = [];
    const p = new SSEParser((ev) => got.push([ev.type, ev.data, ev.id]));
    for (const c of chunks) p.feed(c);
    return [got, p.retry, p.lastEventId];
  };
  const text = src;
  // every split point, one and two cuts
  const whole = JSON.stringify(feedAll([text]));
  for (let i = 0; i <= text.length; i++) {
    results.push(JSON.stringify(feedAll([text.slice(0, i), text.slice(i)])) === whole);
    for (let j = i; j <= text.length; j += 7)
      results.push(
        JSON.stringify(feedAll([text.slice(0, i), text.slice(i, j), text.slice(j)])) === whole);
  }
  return [results.every(Boolean), JSON.parse(whole)];
}
"""


@pytest.mark.skipif(not BROWSER_OK, reason=BROWSER_WHY)
def test_the_page_sse_parser_handles_every_chunking() -> None:
    from playwright.sync_api import sync_playwright

    stream = (
        '\ufeffretry: 500\r\n\r\n: keepalive\n\nid: 1\ndata: {"i":1}\r\n\r\n'
        "event: done\rdata: a\rdata: b\r\rid: 2\0x\ndata: c\n\nid\ndata\n\n"
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(find_chromium()), args=list(CHROMIUM_FLAGS)
        )
        try:
            page = browser.new_page()
            page.add_script_tag(content=(PAGE_DIR / "sse_parser.js").read_text())
            same, (events, retry, last_id) = page.evaluate(CHUNKINGS, stream)
        finally:
            browser.close()
    assert same  # any chunking gives the same events
    assert events == [
        ["message", '{"i":1}', "1"],
        ["done", "a\nb", "1"],
        ["message", "c", "1"],  # "id: 2\0x" has a NUL: ignored
        ["message", "", ""],  # a bare "id" resets the last event id; bare "data" is ""
    ]
    assert retry == 500 and last_id == ""


def test_sigterm_ends_the_phase_keeps_the_records_and_leaves_no_browser(
    tmp_path: Path, urls: dict[str, str]
) -> None:
    run, phase, env = phase_env(
        tmp_path,
        "browser-ws",
        urls["ws"],
        {
            "load": {"users": 6, "spawn_rate": 100, "duration_s": 60, "stop_timeout_s": 10},
            "stream": {"tokens": 1000, "ttft_ms": 10, "gap_ms": 10},
        },
    )
    proc = subprocess.Popen(
        COMMAND, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    started = proc.stdout.readline()  # printed once every user of the page has started
    assert started.startswith("browser phase"), started
    browser = [
        p
        for p in psutil.Process(proc.pid).children(recursive=True)
        if "chrom" in " ".join(p.cmdline()[:1])
    ]
    time.sleep(2)  # streams in flight
    proc.send_signal(signal.SIGTERM)
    out = started + proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, out[-2000:]
    st = read_table(run, "streams")
    assert len(st) == 6 and set(st["outcome"]) == {"stopped"}, out[-2000:]
    assert (st["n_received"] > 50).all()  # what arrived before the signal is kept
    assert read_manifest(run)["browser_load"][phase]["stopped_by_signal"]
    assert browser and all(_gone(p) for p in browser)


def _gone(p: psutil.Process) -> bool:
    try:
        return p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_full_disk_stops_the_phase_with_the_writer_exit_code(
    small_disk: Path,  # noqa: F811 - the fixture imported above
    urls: dict[str, str],
) -> None:
    from core.scenario import EXIT_WRITER_FAILED

    _, _, env = phase_env(
        small_disk,
        "browser-ws",
        urls["ws"],
        {
            "load": {"users": 10, "spawn_rate": 100, "duration_s": 40, "stop_timeout_s": 5},
            "stream": {"tokens": 300, "ttft_ms": 5, "gap_ms": 5},
        },
    )
    stat = os.statvfs(small_disk)
    (small_disk / "ballast").write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - 200 * 1024))
    t0 = time.monotonic()
    done = subprocess.run(COMMAND, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode == EXIT_WRITER_FAILED, out[-3000:]
    assert time.monotonic() - t0 < 30, "the phase did not stop when the disk filled up"
    assert "ssevsws: record writer" in out and "No space left on device" in out, out[-3000:]


def _cancelled_on_server(base: str) -> float:
    import urllib.request

    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("ssevsws_streams_cancelled") and not line.startswith("#")
    )


def test_a_fetch_page_cancels_through_the_endpoint_with_its_secret(
    tmp_path: Path, urls: dict[str, str]
) -> None:
    before = _cancelled_on_server(urls["sse"])
    run = browser_phase(
        tmp_path,
        "browser-fetch",
        urls["sse"],
        {
            "load": {"users": 4, "spawn_rate": 100, "duration_s": 1, "stop_timeout_s": 5},
            "stream": {"tokens": 200, "ttft_ms": 20, "gap_ms": 10},
            "session": {"sessions_per_user": 1},
            "behaviour": {"cancel_prob": 1.0, "cancel_after": 5, "cancel_mode": "cancel"},
        },
    )
    assert run.code == 0, run.log[-3000:]
    assert set(run.streams["outcome"]) == {"cancelled"} and len(run.streams) == 4
    # the server stopped them on the cancel request (preflighted, with X-Cancel-Secret),
    # not because the page went away
    deadline = time.monotonic() + 5
    while _cancelled_on_server(urls["sse"]) - before < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _cancelled_on_server(urls["sse"]) - before == 4
