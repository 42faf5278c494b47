"""A real nginx between a raw client and the real reference servers (issue 6, C3/C4).

The config tests are pure and always run. Everything that needs nginx is skipped only
when `nginx_available()` says no, with its reason printed; nothing is faked.
Servers are started as subprocesses (`python -m servers ...`), never imported.
"""

from __future__ import annotations

import socket
import ssl
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bench.nginx import (
    NginxError,
    NginxProcess,
    SSEProbe,
    nginx_available,
    probe_sse,
    probe_ws,
    read_access_log,
    render_config,
    variant,
    variant_from_dict,
)
from bench.nginx_conf import ProxyVariant
from bench.procs import Child, spawn, wait_ready

ROOT = Path(__file__).resolve().parents[2]
NGINX_OK, NGINX_REASON = nginx_available()
needs_nginx = pytest.mark.skipif(not NGINX_OK, reason=NGINX_REASON)

# 100 tokens, one every 10 ms, from t=0: about 6 KB of events over ~1 s, so nginx's
# 4 KB default buffer fills part-way through (docs/methodology.md).
STREAM = {"seed": 7, "tokens": 100, "ttft_ms": 0, "gap_ms": 10}
ROUNDS = 5
# An idle gap (2.5 s) longer than the proxy_read_timeout (1 s) after token 20.
IDLE = {"seed": 8, "tokens": 30, "ttft_ms": 0, "gap_ms": 10, "pause_ms": 2500, "pause_at": 20}
READ_TIMEOUT_S = 1.0


# --------------------------------------------------------------------------- pure config


def test_config_is_standalone_and_loopback_only(tmp_path: Path) -> None:
    conf = render_config(variant("buffered"), 18080, "127.0.0.1:9001", "127.0.0.1:9002", tmp_path)
    wd = str(tmp_path.resolve())
    assert "daemon off;" in conf
    assert "worker_processes 1;" in conf
    assert f"pid {wd}/nginx.pid;" in conf
    assert f"error_log {wd}/error.log info;" in conf
    assert f"access_log {wd}/access.log bench;" in conf
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        assert f"{kind}_temp_path {wd}/temp/{kind};" in conf
    listens = [ln.strip() for ln in conf.splitlines() if ln.strip().startswith("listen ")]
    assert listens == ["listen 127.0.0.1:18080;"]
    # nginx defaults written out, so the saved config is the record
    assert "proxy_http_version 1.0;" in conf
    assert "proxy_buffering on;" in conf
    assert "proxy_buffer_size 4k;" in conf or "proxy_buffer_size 8k;" in conf
    assert "proxy_read_timeout 60s;" in conf
    assert "$upstream_response_time" in conf and "$request_time" in conf
    # websocket upgrade
    assert "map $http_upgrade $connection_upgrade" in conf
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_set_header Connection $connection_upgrade;" in conf
    with pytest.raises(ValueError, match="loopback"):
        render_config(variant("buffered"), 18080, "10.0.0.1:9001", None, tmp_path)


def test_config_variants(tmp_path: Path) -> None:
    off = render_config(variant("unbuffered"), 1, "127.0.0.1:2", None, tmp_path)
    assert "proxy_buffering off;" in off and "/v1/ws" not in off
    h11 = render_config(variant("buffered-http11"), 1, "127.0.0.1:2", None, tmp_path)
    assert "proxy_http_version 1.1;" in h11 and 'proxy_set_header Connection "";' in h11
    gz = render_config(variant("gzip"), 1, "127.0.0.1:2", None, tmp_path)
    assert "gzip on;" in gz and "gzip_types text/event-stream;" in gz
    short = render_config(
        variant("idle-short", read_timeout_s=1.5), 1, "127.0.0.1:2", None, tmp_path
    )
    assert "proxy_read_timeout 1500ms;" in short
    custom = ProxyVariant("big", buffer_size="16k", buffers="4 16k")
    assert custom.record()["buffers"] == "4 16k"
    assert "proxy_buffers 4 16k;" in render_config(custom, 1, "127.0.0.1:2", None, tmp_path)
    cert = (tmp_path / "c.pem", tmp_path / "k.pem")
    old = render_config(
        variant("h2"),
        1,
        "127.0.0.1:2",
        None,
        tmp_path,
        tls_port=3,
        cert=cert,
        nginx_version=(1, 22, 1),
    )
    assert "listen 127.0.0.1:3 ssl http2;" in old and "http2 on;" not in old
    new = render_config(
        variant("h2"),
        1,
        "127.0.0.1:2",
        None,
        tmp_path,
        tls_port=3,
        cert=cert,
        nginx_version=(1, 25, 1),
    )
    assert "listen 127.0.0.1:3 ssl;" in new and "http2 on;" in new
    with pytest.raises(ValueError):
        ProxyVariant("x", upstream_http="2")
    with pytest.raises(ValueError, match="unknown proxy variant"):
        variant("nope")
    # a scenario's [proxy] table
    v = variant_from_dict({"preset": "idle-short", "read_timeout_s": 2.0})
    assert v.read_timeout_s == 2.0 and not v.buffering
    with pytest.raises(ValueError, match="bufering"):
        variant_from_dict({"bufering": False})


def test_unavailable_reason_names_the_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SSEVSWS_NGINX", str(tmp_path / "no-nginx"))
    ok, reason = nginx_available()
    assert not ok and str(tmp_path / "no-nginx") in reason and "nginx-light" in reason


# --------------------------------------------------------------------------- real processes


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, int]]:
    """Reference servers, started in parallel (bench.procs): name → port."""
    specs = {
        "sse_noaccel": ("sse", "--no-accel-header", "--heartbeat-s", "0"),
        "sse_accel": ("sse", "--heartbeat-s", "0"),
        "sse_hb": ("sse", "--heartbeat-s", "0.3"),
        "ws": ("ws", "--heartbeat-s", "0"),
        "ws_hb": ("ws", "--heartbeat-s", "0.3"),
    }
    started: dict[str, Child] = {}
    try:
        for name, (arm, *flags) in specs.items():
            cmd = [sys.executable, "-m", "servers", arm, "--port", "0", "--host", "127.0.0.1"]
            started[name] = spawn(name, [*cmd, *flags], cwd=ROOT)
        yield {name: wait_ready(child).port for name, child in started.items()}
    finally:
        for child in started.values():
            child.stop(grace_s=5)


def _up(port: int) -> str:
    return f"127.0.0.1:{port}"


def _median(xs: list[float | None]) -> float:
    vals = [x for x in xs if x is not None]
    assert len(vals) == len(xs), f"streams without tokens: {xs}"
    return statistics.median(vals)


@needs_nginx
def test_buffering_breaks_sse_and_header_or_off_restores_it(
    servers: dict[str, int], tmp_path: Path
) -> None:
    """C3, side by side in one test: direct; nginx defaults (buffering on, upstream HTTP/1.0)
    without the header; the same with `X-Accel-Buffering: no`; `proxy_buffering off`."""
    with (
        NginxProcess(
            variant("buffered"),
            upstream_sse=_up(servers["sse_noaccel"]),
            workdir=tmp_path / "buffered-noaccel",
        ) as buffered,
        NginxProcess(
            variant("buffered"),
            upstream_sse=_up(servers["sse_accel"]),
            workdir=tmp_path / "buffered-accel",
        ) as accel,
        NginxProcess(
            variant("unbuffered"),
            upstream_sse=_up(servers["sse_noaccel"]),
            workdir=tmp_path / "unbuffered",
        ) as unbuffered,
    ):
        paths = {
            "direct": f"http://127.0.0.1:{servers['sse_noaccel']}",
            "buffered": buffered.url,
            "accel": accel.url,
            "off": unbuffered.url,
        }
        probes: dict[str, list[SSEProbe]] = {k: [] for k in paths}
        for r in range(ROUNDS):  # interleaved: A B C D A B C D ...
            for name, url in paths.items():
                probes[name].append(probe_sse(url, {**STREAM, "stream": f"{name}-{r}"}))
        record = variant("buffered").record()

    for name, ps in probes.items():
        for p in ps:
            assert p.outcome == "complete" and p.sha_ok, (name, p.summary())
            assert p.tokens == STREAM["tokens"]
    ttft = {name: _median([p.ttft_ms for p in ps]) for name, ps in probes.items()}
    e2e_direct = _median([p.e2e_ms for p in probes["direct"]])
    print(f"\nTTFT medians over {ROUNDS} streams (ms): {ttft}; buffers {record['buffers']}")

    # Buffering on, no header: tokens arrive in a few batches, the first one late.
    assert ttft["buffered"] > ttft["direct"] + 0.25 * e2e_direct, ttft
    for p in probes["buffered"]:
        assert p.deliveries <= STREAM["tokens"] // 10, p.summary()
        first_batch = p.token_t_ns.count(p.token_t_ns[0])
        assert first_batch >= 10, p.summary()
    # Header or buffering off: per-token delivery, TTFT as direct's within 2 % of the
    # stream's length (buffering costs tens of %: a ratio, not an absolute time, so a
    # scheduling hiccup on a busy machine is not taken for buffering).
    for name in ("accel", "off"):
        assert abs(ttft[name] - ttft["direct"]) <= 0.02 * e2e_direct, (name, ttft, e2e_direct)
        for p in probes[name]:
            assert p.deliveries >= STREAM["tokens"] * 0.9, (name, p.summary())


@needs_nginx
def test_idle_gap_longer_than_read_timeout_is_cut_without_heartbeat(
    servers: dict[str, int], tmp_path: Path
) -> None:
    """C4 on both arms: proxy_read_timeout 1 s, a 2.5 s idle gap mid-stream."""
    v = variant("idle-short", read_timeout_s=READ_TIMEOUT_S)
    with NginxProcess(
        v,
        upstream_sse=_up(servers["sse_accel"]),
        upstream_ws=_up(servers["ws"]),
        workdir=tmp_path / "idle-hb-off",
    ) as ng:
        sse = probe_sse(ng.url, {**IDLE, "stream": "idle-sse"}, timeout_s=10)
        ws = probe_ws(ng.ws_url, {**IDLE, "stream": "idle-ws"}, timeout_s=10)
        time.sleep(0.1)  # let the worker flush its log lines
        events = ng.log_events()
    assert sse.outcome == "cut" and sse.tokens == IDLE["pause_at"], sse.summary()
    assert ws.outcome == "cut" and ws.tokens == IDLE["pause_at"], ws.summary()
    # nginx, not the client, closed them, and before the idle gap ended
    assert sse.end_ms is not None and sse.end_ms < IDLE["pause_ms"], sse.summary()
    assert ws.end_ms is not None and ws.end_ms < IDLE["pause_ms"], ws.summary()
    assert events["upstream_timed_out"] == 2, events
    rows = read_access_log(ng.access_log)
    assert sorted(r["status"] for r in rows) == [101, 200], rows
    assert all(r["request_time_s"] < IDLE["pause_ms"] / 1000 for r in rows), rows


@needs_nginx
def test_heartbeat_shorter_than_read_timeout_keeps_streams(
    servers: dict[str, int], tmp_path: Path
) -> None:
    v = variant("idle-short", read_timeout_s=READ_TIMEOUT_S)
    with NginxProcess(
        v,
        upstream_sse=_up(servers["sse_hb"]),
        upstream_ws=_up(servers["ws_hb"]),
        workdir=tmp_path / "idle-hb-on",
    ) as ng:
        sse = probe_sse(ng.url, {**IDLE, "stream": "hb-sse"}, timeout_s=10)
        ws = probe_ws(ng.ws_url, {**IDLE, "stream": "hb-ws"}, timeout_s=10)
        events = ng.log_events()
    assert sse.outcome == "complete" and sse.sha_ok, sse.summary()
    assert sse.comments >= 1, sse.summary()  # the heartbeat comments flowed through nginx
    assert ws.outcome == "complete" and ws.sha_ok, ws.summary()
    assert events["upstream_timed_out"] == 0, events


@needs_nginx
def test_ws_through_default_nginx_with_upgrade(servers: dict[str, int], tmp_path: Path) -> None:
    """The WS arm through nginx's default (buffered) config: the upgrade is proxied and
    frames are not buffered (an upgraded connection is a tunnel)."""
    with NginxProcess(
        variant("buffered"),
        upstream_sse=_up(servers["sse_accel"]),
        upstream_ws=_up(servers["ws"]),
        workdir=tmp_path / "ws",
    ) as ng:
        p = probe_ws(ng.ws_url, {**STREAM, "stream": "ws-1"}, timeout_s=10)
        access = ng.access_log
    assert p.outcome == "complete" and p.sha_ok and p.tokens == STREAM["tokens"], p.summary()
    assert len(set(p.token_t_ns)) >= STREAM["tokens"] * 0.9  # one frame, one delivery
    assert " 101 " in access.read_text()


@needs_nginx
def test_process_lifecycle_and_record(servers: dict[str, int], tmp_path: Path) -> None:
    ng = NginxProcess(
        variant("h2"),
        upstream_sse=_up(servers["sse_accel"]),
        upstream_ws=_up(servers["ws"]),
        workdir=tmp_path / "h2",
    )
    with ng:
        pids = ng.pids()
        assert len(pids) == 2 and pids[0] == ng.pid  # master + one worker
        procs = [psutil.Process(p) for p in pids]
        # HTTP/2 is offered on the TLS port (ALPN), with the cert made at run time
        ctx = ssl.create_default_context(cafile=str(ng.workdir / "cert.pem"))
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with (
            socket.create_connection(("127.0.0.1", ng.tls_port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.selected_alpn_protocol() == "h2"
        p = probe_sse(ng.url, {**STREAM, "tokens": 5, "stream": "life"})
        assert p.outcome == "complete", p.summary()
        rec = ng.record()
    rows = read_access_log(ng.access_log)
    assert [(r["status"], r["protocol"]) for r in rows] == [(200, "HTTP/1.1")], rows
    assert rec["variant"]["buffer_size"] and rec["variant"]["buffers"]
    assert Path(rec["config"]).read_text().startswith("# sse-vs-ws proxy variant 'h2'")
    assert ng.stop_signal == "SIGQUIT"
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in procs)
    assert not (ng.workdir / "nginx.pid").exists()


@needs_nginx
def test_start_failure_is_reported_not_hung(tmp_path: Path) -> None:
    """A port already taken: nginx exits at start and the error log says why."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ng = NginxProcess(
            variant("buffered"), upstream_sse="127.0.0.1:9", workdir=tmp_path, listen_port=port
        )
        with pytest.raises(NginxError, match="in use"):
            ng.start()
    assert ng.proc is None and ng.pids() == []
