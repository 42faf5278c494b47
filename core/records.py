"""Record schema: one row per stream, token, connection and resource sample
(docs/methodology.md, "Records").

All times are `time.monotonic_ns()` values (one clock for every process on a Linux
host), kept as int64 nanoseconds; durations derived from them are computed in
analysis, not stored rounded. Nullable columns hold None where a figure could not
be measured (e.g. server stamps from a foreign server) — never a guess.

Bump SCHEMA_VERSION on any incompatible change. Version history:

1. the first schema: a row's scenario, proxy variant and repetition were only in its phase
   name ``<scenario>[.<variant>]/<arm>/r<rep>``.
2. ``scenario``, ``variant`` and ``rep`` are columns of streams, connections and resources
   (written by whoever writes the row, from the phase's configuration). Analysis reads
   version 1 runs by deriving them from the phase name (analysis.load, one function).
   Later additions of nullable columns keep version 2: parts written before them read as
   nulls ("not measured"), which is what analysis shows for them —
   connections ``t_tcp_ns``, ``t_tls_ns``, ``tls_version``, ``tls_resumed`` (TLS);
   streams ``t_first_byte_ns``, ``t_first_event_ns`` (time to first byte and to first
   event, beside TTFT: a provider format's bookkeeping events come first) and
   ``usage_input_tokens``, ``usage_output_tokens`` (the usage the stream reported).
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 2

#: Schema 2: the phase's identity as columns (null outside a phase / for a foreign writer).
PHASE_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("scenario", pa.string()),  # the scenario's name, e.g. "chat", "proxy-buffering"
    ("variant", pa.string()),  # its [proxy] variant label ("direct", "buffered"…), else null
    ("rep", pa.int64()),  # repetition, 1-based
)

STREAMS = pa.schema(
    [
        ("stream_uid", pa.string()),  # unique in the run: "<worker>-<n>"
        ("phase", pa.string()),  # phase name, e.g. "chat/sse/r1"
        *PHASE_COLUMNS,
        ("arm", pa.string()),  # "sse" | "ws" | "ws-websockets" | user label
        ("worker", pa.string()),  # locust worker id (host-pid)
        ("user", pa.int64()),  # user index within the worker
        ("session", pa.int64()),  # session counter of that user
        ("turn", pa.int64()),  # turn within the session
        ("stream_id", pa.string()),  # the id sent to the server (str of int/str)
        ("conn_uid", pa.string()),  # connection that carried the (first part of the) stream
        ("seed", pa.int64()),
        ("tokens_expected", pa.int64()),
        ("ttft_ms_sched", pa.float64()),  # configured TTFT (server schedule)
        ("gap_ms_sched", pa.float64()),  # configured inter-token gap
        ("t_sched_ns", pa.int64()),  # open model: when the request should have been sent
        ("t_send_ns", pa.int64()),  # request sent (SSE request / WS start message)
        ("t_open_ns", pa.int64()),  # response headers (SSE) / start sent on an open WS
        ("t_first_ns", pa.int64()),  # first content token parsed
        ("t_last_ns", pa.int64()),  # last content token parsed
        ("t_end_ns", pa.int64()),  # done / error / close observed
        ("n_received", pa.int64()),  # content tokens received (incl. duplicates)
        ("n_unique", pa.int64()),
        ("n_lost", pa.int64()),  # expected - unique (when the stream was meant to finish)
        ("n_dup", pa.int64()),
        ("n_out_of_order", pa.int64()),
        ("checksum_ok", pa.bool_()),  # None when no done event arrived
        ("done", pa.bool_()),
        ("outcome", pa.string()),  # ok | cancelled | aborted | dropped | error | timeout
        ("error", pa.string()),
        ("reconnects", pa.int64()),
        ("bytes_in", pa.int64()),  # application bytes received for this stream
        ("reused_conn", pa.bool_()),  # SSE keep-alive reuse / WS existing connection
        ("t_drop_ns", pa.int64()),  # first drop (client abort / server drop) observed, if any
        ("t_drops_ns", pa.list_(pa.int64())),  # every drop, in order (its parts: resumes)
        ("dead_declared", pa.int64()),  # drops the client declared (silent connection)
        ("users_target", pa.int64()),  # load shape's target user count when the stream started
        # the response's first body byte (WS: the stream's first message) and its first
        # event of any kind (role-only chunk, response.created, ping…), parsed
        ("t_first_byte_ns", pa.int64()),
        ("t_first_event_ns", pa.int64()),
        ("usage_input_tokens", pa.int64()),  # the usage the stream reported, if it did
        ("usage_output_tokens", pa.int64()),
    ]
)

TOKENS = pa.schema(
    [
        ("stream_uid", pa.string()),
        ("seq", pa.int64()),
        ("t_recv_ns", pa.int64()),  # client monotonic ns when the event was parsed
        ("t_server_ns", pa.int64()),  # server monotonic ns stamped in the payload ("t")
        ("nbytes", pa.int64()),  # application bytes of this event / frame payload
    ]
)

CONNECTIONS = pa.schema(
    [
        ("conn_uid", pa.string()),
        ("phase", pa.string()),
        *PHASE_COLUMNS,
        ("arm", pa.string()),
        ("worker", pa.string()),
        ("user", pa.int64()),
        ("t_connect_ns", pa.int64()),  # connect() called
        ("t_tcp_ns", pa.int64()),  # TCP connected (null in runs before it was recorded)
        ("t_tls_ns", pa.int64()),  # TLS handshake done; null: no TLS (or not recorded)
        ("tls_version", pa.string()),  # e.g. "TLSv1.3"
        ("tls_resumed", pa.bool_()),  # the handshake resumed an earlier TLS session
        ("t_open_ns", pa.int64()),  # TCP (+ TLS) + HTTP headers / WS upgrade done
        ("t_close_ns", pa.int64()),
        ("closed_by", pa.string()),  # client | server | proxy | error | unknown
        ("close_code", pa.int64()),  # WS close code or HTTP status
        ("close_reason", pa.string()),
        ("streams", pa.int64()),  # streams carried
        ("busy_ns", pa.int64()),  # time with at least one stream in flight
        ("bytes_in", pa.int64()),
        ("bytes_out", pa.int64()),
    ]
)

RESOURCES = pa.schema(
    [
        ("t_ns", pa.int64()),
        ("phase", pa.string()),
        *PHASE_COLUMNS,
        ("arm", pa.string()),
        ("role", pa.string()),  # server | client | nginx | master
        ("pid", pa.int64()),
        ("cpu_user_s", pa.float64()),  # cumulative
        ("cpu_sys_s", pa.float64()),  # cumulative
        ("cpu_pct", pa.float64()),  # over the last interval, 100 = one core
        ("rss_bytes", pa.int64()),
        ("fds", pa.int64()),
        ("connections", pa.int64()),
        # unique set size: the pages only this process maps (what its exit would free).
        # Summed over a browser's processes it is their private memory, unaffected by other
        # programs mapping the same files (PSS would be: it splits the chromium binary's
        # pages with every other browser on the machine). Written by loadtests/browser for
        # the browser's processes, null elsewhere; older parts read as null.
        ("uss_bytes", pa.int64()),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "streams": STREAMS,
    "tokens": TOKENS,
    "connections": CONNECTIONS,
    "resources": RESOURCES,
}
