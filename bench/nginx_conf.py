"""nginx proxy variants and the standalone nginx.conf rendered for each (pure, no I/O).

A `ProxyVariant` names one point of the README's proxy matrix: upstream HTTP version ×
`proxy_buffering` × gzip (× the server's `X-Accel-Buffering` header, which is a server
setting, `ServerSpec.accel_header`, not a proxy one) plus `proxy_read_timeout` for the idle
experiments (C4) and HTTP/2 towards the client (C7).

`render_config` writes every directive whose default matters *explicitly* — buffer sizes,
timeouts, buffering, HTTP version — so the config file saved in the run folder is the
record of what was measured, independent of the nginx build's compiled-in defaults.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

__all__ = [
    "VARIANTS",
    "ProxyVariant",
    "default_buffer_size",
    "render_config",
    "variant",
    "variant_from_dict",
]

#: Minimum nginx version that takes `http2 on;` (older ones: `listen ... ssl http2;`).
HTTP2_DIRECTIVE_SINCE = (1, 25, 1)


def default_buffer_size() -> str:
    """nginx's default proxy buffer: one memory page ("4k" on x86-64 Linux)."""
    try:
        page = os.sysconf("SC_PAGESIZE")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        page = 4096
    return f"{page // 1024}k"


@dataclass(frozen=True)
class ProxyVariant:
    """One nginx configuration under test. Defaults are nginx's own defaults.

    buffer_size / buffers: None means nginx's default (one memory page; "8 <page>"); the
    rendered config and `record()` always carry the resolved values.
    read_timeout_s: `proxy_read_timeout` — the idle gap (no byte from upstream) after which
    nginx closes the stream (C4). Applies to upgraded WS connections too.
    http2: also listen on a TLS port speaking HTTP/2 (self-signed cert made at run time).
    """

    name: str = "buffered"
    buffering: bool = True  # proxy_buffering (nginx default: on)
    upstream_http: str = "1.0"  # proxy_http_version towards the SSE upstream (nginx default 1.0)
    gzip: bool = False  # gzip on for text/event-stream (applies when the client sends A-E: gzip)
    read_timeout_s: float = 60.0  # proxy_read_timeout (nginx default 60 s)
    buffer_size: str | None = None  # proxy_buffer_size
    buffers: str | None = None  # proxy_buffers "<number> <size>"
    http2: bool = False
    master_process: bool = True
    worker_connections: int = 8192
    worker_shutdown_timeout_s: float = 5.0  # bounds a graceful stop with streams still open
    description: str = ""

    def __post_init__(self) -> None:
        if self.upstream_http not in ("1.0", "1.1"):
            raise ValueError(f"upstream_http must be '1.0' or '1.1', got {self.upstream_http!r}")
        if self.read_timeout_s <= 0:
            raise ValueError("read_timeout_s must be > 0")
        if not self.name or any(c.isspace() or c == "/" for c in self.name):
            raise ValueError(f"variant name must be a non-empty word, got {self.name!r}")
        if self.worker_connections < 16:
            raise ValueError("worker_connections must be >= 16")

    @property
    def resolved_buffer_size(self) -> str:
        return self.buffer_size or default_buffer_size()

    @property
    def resolved_buffers(self) -> str:
        return self.buffers or f"8 {default_buffer_size()}"

    def record(self) -> dict[str, Any]:
        """The variant with resolved buffer sizes, for the manifest / report."""
        d = asdict(self)
        d["buffer_size"] = self.resolved_buffer_size
        d["buffers"] = self.resolved_buffers
        return d

    def with_(self, **changes: Any) -> ProxyVariant:
        return replace(self, **changes)


#: The README's proxy matrix (combine with the server's accel_header on/off).
VARIANTS: dict[str, ProxyVariant] = {
    v.name: v
    for v in (
        ProxyVariant(
            "buffered",
            description="nginx defaults: proxy_buffering on, upstream HTTP/1.0",
        ),
        ProxyVariant("unbuffered", buffering=False, description="proxy_buffering off"),
        ProxyVariant(
            "buffered-http11",
            upstream_http="1.1",
            description="buffering on, proxy_http_version 1.1 (chunked upstream)",
        ),
        ProxyVariant(
            "gzip",
            gzip=True,
            description="buffering on, HTTP/1.0 upstream, gzip on for text/event-stream",
        ),
        ProxyVariant(
            "gzip-http11",
            gzip=True,
            upstream_http="1.1",
            description="buffering on, HTTP/1.1 upstream, gzip on for text/event-stream",
        ),
        ProxyVariant(
            "idle-short",
            read_timeout_s=2.0,
            buffering=False,
            description="proxy_buffering off, proxy_read_timeout 2 s (idle cut, C4)",
        ),
        ProxyVariant(
            "h2",
            buffering=False,
            http2=True,
            description="HTTP/2 + TLS towards the client, proxy_buffering off (C7)",
        ),
    )
}


def variant(name: str, **changes: Any) -> ProxyVariant:
    """A preset from VARIANTS by name, optionally changed (e.g. read_timeout_s=1.0)."""
    try:
        base = VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown proxy variant {name!r} (known: {', '.join(VARIANTS)})") from None
    return replace(base, **changes) if changes else base


def variant_from_dict(data: dict[str, Any]) -> ProxyVariant:
    """A variant from a scenario's `[proxy]` table: `preset = "buffered"` plus any field.

    Unknown keys are an error (named), so a typo never silently measures nginx defaults.
    """
    data = dict(data)
    preset = data.pop("preset", None)
    known = set(ProxyVariant.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        names = ", ".join(sorted(known))
        raise ValueError(f"proxy: unknown field(s) {', '.join(unknown)} (known: preset, {names})")
    if preset is not None:
        return variant(str(preset), **data)
    return ProxyVariant(**data)


def _seconds(x: float) -> str:
    """nginx time value; milliseconds keep sub-second timeouts exact."""
    ms = round(x * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _upstream(host_port: str) -> str:
    host, sep, port = host_port.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"upstream must be 'host:port', got {host_port!r}")
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
        raise ValueError(f"upstreams must be on loopback, got {host_port!r}")
    return host_port


def render_config(
    variant: ProxyVariant,
    listen_port: int,
    upstream_sse: str | None,
    upstream_ws: str | None,
    workdir: Path | str,
    *,
    tls_port: int | None = None,
    cert: tuple[Path | str, Path | str] | None = None,
    nginx_version: tuple[int, int, int] = (1, 22, 1),
    user: str | None = None,
    worker_rlimit_nofile: int | None = None,
) -> str:
    """A complete standalone nginx.conf for `variant`.

    Upstreams are "127.0.0.1:PORT" (either may be None: a one-arm proxy). `/v1/ws` goes to
    the WS upstream with the upgrade headers; `/v1/stream` and everything else (healthz,
    metrics, cancel) to the SSE upstream, or to the WS upstream when there is no SSE one.
    `/__nginx` is answered by nginx itself (a readiness probe that needs no upstream).
    With `variant.http2`, `tls_port` and `cert` (cert.pem, key.pem) are required.
    `user`: only for a root master — workers then run as this user (see NginxProcess).
    """
    if upstream_sse is None and upstream_ws is None:
        raise ValueError("need at least one upstream")
    if not 0 < listen_port < 65536:
        raise ValueError(f"bad listen port {listen_port}")
    if variant.http2 and (tls_port is None or cert is None):
        raise ValueError("http2 variant needs tls_port and cert=(cert.pem, key.pem)")
    wd = Path(workdir).resolve()
    v = variant
    lines: list[str] = []
    add = lines.append

    add(f"# sse-vs-ws proxy variant {v.name!r}: {v.description}")
    add(f"# nginx {'.'.join(map(str, nginx_version))}; rendered by bench/nginx_conf.py")
    add("daemon off;")
    add(f"master_process {'on' if v.master_process else 'off'};")
    add("worker_processes 1;")
    if user:
        add(f"user {user};")
    add(f"pid {wd / 'nginx.pid'};")
    add(f"error_log {wd / 'error.log'} info;")
    if worker_rlimit_nofile:
        add(f"worker_rlimit_nofile {worker_rlimit_nofile};")
    add(f"worker_shutdown_timeout {_seconds(v.worker_shutdown_timeout_s)};")
    add("")
    add("events {")
    add(f"    worker_connections {v.worker_connections};")
    add("}")
    add("")
    add("http {")
    add("    default_type application/octet-stream;")
    add("    log_format bench '$remote_addr [$time_iso8601] \"$request\" $status $bytes_sent '")
    add("                     'rt=$request_time urt=$upstream_response_time us=$upstream_status '")
    add("                     'conn=$connection reqs=$connection_requests proto=$server_protocol';")
    add(f"    access_log {wd / 'access.log'} bench;")
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        add(f"    {kind}_temp_path {wd / 'temp' / kind};")
    add("")
    add("    map $http_upgrade $connection_upgrade {")
    add("        default upgrade;")
    add("        ''      close;")
    add("    }")
    add("")
    if upstream_sse:
        add("    upstream sse_upstream {")
        add(f"        server {_upstream(upstream_sse)};")
        if v.upstream_http == "1.1":
            add("        keepalive 64;")
        add("    }")
    if upstream_ws:
        add("    upstream ws_upstream {")
        add(f"        server {_upstream(upstream_ws)};")
        add("    }")
    add("")
    add(f"    proxy_http_version {v.upstream_http};")
    add(f"    proxy_buffering {'on' if v.buffering else 'off'};")
    add(f"    proxy_buffer_size {v.resolved_buffer_size};")
    add(f"    proxy_buffers {v.resolved_buffers};")
    add(f"    proxy_read_timeout {_seconds(v.read_timeout_s)};")
    add("    proxy_send_timeout 60s;")
    add("    proxy_connect_timeout 5s;")
    add("    proxy_set_header Host $host;")
    if v.upstream_http == "1.1":
        add('    proxy_set_header Connection "";  # upstream keepalive')
    if v.gzip:
        add("    gzip on;")
        add("    gzip_types text/event-stream;")
        add("    gzip_min_length 0;")
        add("    gzip_proxied any;")
    else:
        add("    gzip off;")
    add("")
    add("    server {")
    add(f"        listen 127.0.0.1:{listen_port};")
    if v.http2:
        cert_pem, key_pem = (Path(p).resolve() for p in cert)  # type: ignore[union-attr]
        if nginx_version >= HTTP2_DIRECTIVE_SINCE:
            add(f"        listen 127.0.0.1:{tls_port} ssl;")
            add("        http2 on;")
        else:
            add(f"        listen 127.0.0.1:{tls_port} ssl http2;")
        add(f"        ssl_certificate {cert_pem};")
        add(f"        ssl_certificate_key {key_pem};")
        add("        ssl_protocols TLSv1.2 TLSv1.3;")
        add("        http2_max_concurrent_streams 1024;")
    add("        server_name localhost;")
    add("")
    add("        location = /__nginx {")
    add("            access_log off;")
    add('            return 200 "ok\\n";')
    add("        }")
    if upstream_ws:
        add("        location /v1/ws {")
        add("            proxy_pass http://ws_upstream;")
        add("            proxy_http_version 1.1;")
        add("            # proxy_set_header here replaces the inherited ones: repeat Host")
        add("            proxy_set_header Host $host;")
        add("            proxy_set_header Upgrade $http_upgrade;")
        add("            proxy_set_header Connection $connection_upgrade;")
        add("        }")
    default = "sse_upstream" if upstream_sse else "ws_upstream"
    if upstream_sse:
        add("        location /v1/stream {")
        add("            proxy_pass http://sse_upstream;")
        add("        }")
    add("        location / {")
    add(f"            proxy_pass http://{default};")
    add("        }")
    add("    }")
    add("}")
    return "\n".join(lines) + "\n"
