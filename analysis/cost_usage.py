"""Usage meters, usage profiles and the session model of the cost model.

A :class:`Usage` holds what a billing meter would count for one arm over some period:
requests, WebSocket messages, connection-minutes, bytes, CPU, … It comes from a
:class:`Profile` (:func:`session_usage_from_profile`, :func:`monthly_usage_from_profile`),
calibrated with figures measured in a run (:class:`Calibration`, derived in
:mod:`analysis.cost_calibration`).

The profile model, per session of ``turns`` answers:

* SSE, ``sse_connection = "per_answer"`` (what ``fetch()`` + a stream per answer does):
  one request per turn, held only while the answer streams (``ttft + tokens / rate``).
* SSE, ``sse_connection = "per_tab"`` (an app that keeps one ``EventSource`` open for
  the tab): one long request for the whole tab-open time, idle between answers, plus one
  short POST per question; a ``: keepalive`` comment every ``sse_heartbeat_s``.
* WS opens one connection when the tab opens and holds it for the whole tab-open time
  (at least the active time), sending an app-level heartbeat every ``ws_heartbeat_s``, a
  start message per question and a cancel message per answer the user stops (an SSE
  client stops by closing its request).
* Each answer is ``ceil(tokens / tokens_per_message)`` events/frames plus one ``done``.
* A share ``cancel_share`` of answers is stopped by the user after ``cancel_at_fraction``
  of its tokens; the generation the server would do after that is
  ``orphan_stream_minutes`` (billed only where a platform keeps running after the client
  left, e.g. Lambda response streaming).

Precedence (what wins when two sources give a figure): a what-if (CLI ``--set``, the
report's sweeps) > the profile file > figures measured in a run (wire bytes per message,
CPU per token, memory per connection, capacity) > the model defaults
(:class:`WireDefaults`). The profile describes the workload (how many tokens per frame the
app sends, how long tabs stay open); a run measures the implementation (how many bytes a
frame costs). A run's own framing (one token per frame in this harness) is reported but
never replaces the profile's ``tokens_per_message``.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from core.arms import get_arm

#: Hours in a billing month, as AWS and most price lists use (8,760 / 12).
HOURS_PER_MONTH = 730.0
#: Bytes in a GB for every GB-denominated meter in this module (2^30).
GB = 1024**3
PROFILES_DIR = Path(__file__).with_name("profiles")

#: (count, bytes each) classes of messages; see :attr:`Usage.out_message_sizes`.
Sizes = tuple[tuple[float, float], ...]


def protocol_of(arm: str) -> str:
    """How an arm's usage is metered, ``sse`` or ``ws``: its ``metering`` in the arm registry
    (core.arms). An unknown arm is refused (UnknownArm), never guessed from its name."""
    return str(get_arm(arm).metering)


# --------------------------------------------------------------------------- Usage


@dataclass(frozen=True)
class Usage:
    """Metered usage of one arm over a period (``hours``; 730 = a month).

    Counters are additive (scale with the number of sessions). ``peak_*`` figures,
    ``hours`` and ``hourly_share`` describe the time shape and are not scaled.
    ``connection_minutes_idle`` is the part of ``connection_minutes_total`` during which
    no stream was in flight, so busy (streaming) time = total − idle. For SSE the
    connection time is the time a *request* is open (a stream, or a tab's EventSource).
    ``keepalives`` counts heartbeat frames/comments (SSE ``: keepalive`` comments, WS
    app-level heartbeats); whether they bill as messages is a platform setting.
    ``out_message_sizes`` / ``in_message_sizes``: (count, bytes each) per class of
    message (data frames, done; start messages in) so that size-metered platforms round
    each message, not the average one; empty for measured usage (the average is used).
    ``orphan_stream_minutes``: generation time after a client cancelled (server side).
    ``memory_gb_seconds`` is server memory held for connections × time, in GiB·s.
    """

    arm: str = "sse"
    protocol: str = ""
    sessions: float = 0.0
    streams: float = 0.0
    http_requests: float = 0.0
    ws_messages_in: float = 0.0
    ws_messages_out: float = 0.0
    sse_events: float = 0.0
    keepalives: float = 0.0
    connections_opened: float = 0.0
    connection_minutes_total: float = 0.0
    connection_minutes_idle: float = 0.0
    orphan_stream_minutes: float = 0.0
    bytes_out: float = 0.0
    bytes_in: float = 0.0
    server_cpu_seconds: float = 0.0
    memory_gb_seconds: float = 0.0
    tokens_delivered: float = 0.0
    peak_concurrent_connections: float = 0.0
    peak_concurrent_streams: float = 0.0
    peak_tokens_per_s: float = 0.0
    hours: float = 0.0
    hourly_share: tuple[float, ...] = ()
    out_message_sizes: Sizes = ()
    in_message_sizes: Sizes = ()
    keepalive_bytes_each: float = 0.0
    # capacity measured within the SLO (analysis.capacity); 0 = not measured. Not usage:
    # carried along so the VM capacity model can size instances from it.
    measured_tokens_per_s_per_core: float = 0.0
    measured_connections_per_gib: float = 0.0
    measured_baseline_rss_bytes: float = 0.0

    def __post_init__(self) -> None:
        if not self.protocol:
            object.__setattr__(self, "protocol", protocol_of(self.arm))
        if self.protocol not in ("sse", "ws"):
            raise ValueError(f"Usage.protocol must be 'sse' or 'ws', got {self.protocol!r}")
        if self.connection_minutes_idle > self.connection_minutes_total + 1e-9:
            raise ValueError("connection_minutes_idle exceeds connection_minutes_total")
        if self.hourly_share:
            if len(self.hourly_share) != 24:
                raise ValueError("hourly_share needs 24 values (one per hour of the day)")
            total = sum(self.hourly_share)
            if total <= 0:
                raise ValueError("hourly_share must sum to a positive number")
            object.__setattr__(self, "hourly_share", tuple(x / total for x in self.hourly_share))

    # -- derived figures
    @property
    def connection_minutes_busy(self) -> float:
        """Connection-minutes with at least one stream in flight (wall clock of streams)."""
        return self.connection_minutes_total - self.connection_minutes_idle

    @property
    def messages_out(self) -> float:
        """Server→client data messages: WS frames or SSE events (keepalives excluded)."""
        return self.ws_messages_out + self.sse_events

    @property
    def idle_share(self) -> float:
        """Share of connection time with nothing streaming (0 when no connection time)."""
        if self.connection_minutes_total <= 0:
            return 0.0
        return self.connection_minutes_idle / self.connection_minutes_total

    @property
    def period_hours(self) -> float:
        """The period the usage covers; a month when not stated."""
        return self.hours if self.hours > 0 else HOURS_PER_MONTH

    @property
    def shares(self) -> tuple[float, ...]:
        """Share of a day's usage in each hour (flat when not stated)."""
        return self.hourly_share or (1.0 / 24,) * 24

    # -- arithmetic
    def scaled(self, factor: float) -> Usage:
        """Every additive counter × ``factor``; peaks and time shape unchanged."""
        changes: dict[str, Any] = {k: getattr(self, k) * factor for k in ADDITIVE_FIELDS}
        for k in ("out_message_sizes", "in_message_sizes"):
            changes[k] = tuple((n * factor, b) for n, b in getattr(self, k))
        return replace(self, **changes)

    def per_session(self) -> Usage:
        """Counters divided by ``sessions`` (sessions becomes 1); peaks unchanged."""
        if self.sessions <= 0:
            raise ValueError("per_session() needs sessions > 0")
        return self.scaled(1.0 / self.sessions)

    def per_1k_tokens(self) -> dict[str, float]:
        """Every additive counter per 1,000 tokens delivered."""
        if self.tokens_delivered <= 0:
            raise ValueError("per_1k_tokens() needs tokens_delivered > 0")
        k = 1000.0 / self.tokens_delivered
        return {name: getattr(self, name) * k for name in ADDITIVE_FIELDS}

    def streaming_only(self) -> Usage:
        """The usage a backend sees behind a managed connection service.

        API Gateway WebSocket or Web PubSub hold the client connection; the backend only
        works while an answer streams: connection time = busy time, no idle time, peak
        connections = peak streams, no client-facing bytes (the edge bills egress).
        """
        busy = self.connection_minutes_busy
        return replace(
            self,
            connection_minutes_total=busy,
            connection_minutes_idle=0.0,
            peak_concurrent_connections=self.peak_concurrent_streams,
            bytes_out=0.0,
            bytes_in=0.0,
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for DataFrames / JSON), with the derived figures added."""
        d = asdict(self)
        d["connection_minutes_busy"] = self.connection_minutes_busy
        d["idle_share"] = self.idle_share
        return d


_NOT_ADDITIVE = {
    "arm",
    "protocol",
    "peak_concurrent_connections",
    "peak_concurrent_streams",
    "peak_tokens_per_s",
    "hours",
    "hourly_share",
    "out_message_sizes",
    "in_message_sizes",
    "keepalive_bytes_each",
    "measured_tokens_per_s_per_core",
    "measured_connections_per_gib",
    "measured_baseline_rss_bytes",
}
ADDITIVE_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(Usage) if f.name not in _NOT_ADDITIVE
)


# --------------------------------------------------------------------------- Profile


class ProfileError(ValueError):
    """A usage profile file is invalid (message names the file and field)."""


SSE_CONNECTIONS = ("per_answer", "per_tab")


@dataclass(frozen=True)
class Profile:
    """A month of real use: who uses the assistant, how often, and how long tabs stay open."""

    name: str
    monthly_active_users: float
    sessions_per_user_per_month: float
    turns_per_session: float
    tokens_per_answer: float
    think_time_s: float
    tab_open_s: float
    tokens_per_s: float
    description: str = ""
    prompt_tokens: float = 200.0
    ttft_s: float = 0.4
    tokens_per_message: float = 1.0
    sse_heartbeat_s: float = 15.0
    ws_heartbeat_s: float = 30.0
    sse_connection: str = "per_answer"
    cancel_share: float = 0.0
    cancel_at_fraction: float | None = None  # None: the run's measured figure, else 0.5
    hourly_weights: tuple[float, ...] = ()
    peak_factor: float = 1.0

    def __post_init__(self) -> None:
        positive = (
            "monthly_active_users",
            "sessions_per_user_per_month",
            "turns_per_session",
            "tokens_per_answer",
            "tokens_per_s",
            "tokens_per_message",
            "peak_factor",
        )
        numeric = (
            *positive,
            "think_time_s",
            "tab_open_s",
            "ttft_s",
            "prompt_tokens",
            "sse_heartbeat_s",
            "ws_heartbeat_s",
            "cancel_share",
            "cancel_at_fraction",
        )
        for name in numeric:
            v = getattr(self, name)
            if v is None and name == "cancel_at_fraction":
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ProfileError(f"profile {self.name!r}: {name} = {v!r} is not a number")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ProfileError(f"profile {self.name!r}: {name} must be > 0")
        for name in numeric[len(positive) :]:
            if (getattr(self, name) or 0) < 0:
                raise ProfileError(f"profile {self.name!r}: {name} must be >= 0")
        for name in ("cancel_share", "cancel_at_fraction"):
            if (getattr(self, name) or 0) > 1:
                raise ProfileError(f"profile {self.name!r}: {name} must be between 0 and 1")
        if self.sse_connection not in SSE_CONNECTIONS:
            raise ProfileError(
                f"profile {self.name!r}: sse_connection must be one of {', '.join(SSE_CONNECTIONS)}"
            )
        if self.hourly_weights and (len(self.hourly_weights) != 24 or min(self.hourly_weights) < 0):
            raise ProfileError(f"profile {self.name!r}: hourly_weights needs 24 values >= 0")

    @property
    def sessions_per_month(self) -> float:
        return self.monthly_active_users * self.sessions_per_user_per_month

    @property
    def stream_s(self) -> float:
        """Wall clock of one (complete) answer: time to first token + tokens ÷ rate."""
        return self.ttft_s + self.tokens_per_answer / self.tokens_per_s

    @property
    def active_s(self) -> float:
        """From the first question to the last token: answers plus think time between them."""
        return (
            self.turns_per_session * self.stream_s
            + max(0.0, self.turns_per_session - 1) * self.think_time_s
        )

    @property
    def linger_s(self) -> float:
        """How long the tab stays open after the last answer."""
        return max(0.0, self.tab_open_s - self.active_s)

    @property
    def tab_s(self) -> float:
        """How long the tab holds a connection (tab open, at least the active time)."""
        return max(self.tab_open_s, self.active_s)

    @property
    def connection_s_ws(self) -> float:
        """How long a WS connection is held per session (the tab time)."""
        return self.tab_s

    def with_think_time(self, think_time_s: float) -> Profile:
        """Same profile with another think time; the linger after the last answer is kept."""
        moved = replace(self, think_time_s=think_time_s, tab_open_s=0.0)
        return replace(moved, tab_open_s=moved.active_s + self.linger_s)

    def with_mau(self, monthly_active_users: float) -> Profile:
        return replace(self, monthly_active_users=monthly_active_users)


_PROFILE_REQUIRED = (
    "name",
    "monthly_active_users",
    "sessions_per_user_per_month",
    "turns_per_session",
    "tokens_per_answer",
    "think_time_s",
    "tab_open_s",
    "tokens_per_s",
)


def profile_from_dict(data: Mapping[str, Any], *, origin: str = "<dict>") -> Profile:
    """Build a :class:`Profile`, refusing missing or unknown fields with a clear message."""
    known = {f.name for f in fields(Profile)}
    missing = [k for k in _PROFILE_REQUIRED if k not in data]
    if missing:
        raise ProfileError(f"{origin}: missing field(s) {', '.join(missing)}")
    unknown = sorted(set(data) - known)
    if unknown:
        raise ProfileError(f"{origin}: unknown field(s) {', '.join(unknown)}")
    kwargs = dict(data)
    if "hourly_weights" in kwargs:
        kwargs["hourly_weights"] = tuple(float(x) for x in kwargs["hourly_weights"])
    try:
        return Profile(**kwargs)
    except (TypeError, ProfileError) as exc:
        raise ProfileError(f"{origin}: {exc}") from exc


def load_profile(path_or_name: str | Path) -> Profile:
    """Load a profile TOML by path, or by name from ``analysis/profiles/``."""
    path = Path(path_or_name)
    if not path.suffix:
        path = PROFILES_DIR / f"{path_or_name}.toml"
    if not path.is_file():
        raise ProfileError(f"profile file not found: {path}")
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from exc
    return profile_from_dict(data, origin=str(path))


def list_profiles(folder: str | Path = PROFILES_DIR) -> list[str]:
    return sorted(p.stem for p in Path(folder).glob("*.toml"))


# --------------------------------------------------------------------------- wire / CPU model


@dataclass(frozen=True)
class Calibration:
    """Figures that replace the model's defaults, per arm, usually measured in a run.

    Every field is optional: ``None`` keeps the model default (:data:`DEFAULTS`).
    ``message_overhead_bytes`` is what a data message costs on the wire besides its token
    text (framing, JSON keys, ids); the model adds ``chars_per_token`` per token it
    carries, so batching tokens per frame changes bytes correctly. ``messages_per_token``
    is the run's own framing: reported, never applied (the profile decides framing).
    """

    message_overhead_bytes: float | None = None
    bytes_in_per_stream: float | None = None  # all client→server bytes ÷ streams
    messages_per_token: float | None = None  # the run's framing (reported only)
    cpu_s_per_1k_tokens: float | None = None
    kib_per_connection: float | None = None
    cancel_at_fraction: float | None = None  # tokens delivered ÷ expected, cancelled streams
    # capacity within the SLO (analysis.capacity), used by the VM capacity model only
    tokens_per_s_per_core: float | None = None
    connections_per_gib: float | None = None
    baseline_rss_bytes: float | None = None
    source: str = "model defaults"  # "records", "summary", … (shown in tables)


@dataclass(frozen=True)
class WireDefaults:
    """Model defaults (this harness's framing, measured at N=1,000). Bytes are app bytes."""

    payload_fixed_bytes: float = 56.0  # {"s":..,"i":..,"t":..,"d":""} — 60 B with 4 chars
    chars_per_token: float = 4.0
    sse_event_overhead: float = 23.0  # "id: N\n" + "data: " + "\n\n" + 6 B chunked framing
    sse_done_bytes: float = 110.0
    sse_response_headers: float = 250.0
    sse_request_bytes: float = 450.0  # request line + headers (+ prompt body)
    sse_keepalive_bytes: float = 19.0  # ": keepalive\n\n" + chunked framing
    ws_upgrade_request: float = 450.0
    ws_upgrade_response: float = 170.0
    ws_done_bytes: float = 100.0
    ws_start_overhead: float = 100.0  # JSON around the prompt in the start message
    ws_keepalive_bytes: float = 21.0  # client {"type":"ping"} + 6 B masked header
    ws_cancel_bytes: float = 40.0  # client {"type":"cancel","s":…} + 6 B masked header
    cpu_s_per_token: Mapping[str, float] = field(
        default_factory=lambda: {"sse": 5.7e-6, "ws": 5.0e-6}  # aiohttp, N=1,000
    )
    cpu_s_per_setup: float = 5e-4  # per request (SSE) / connection (WS)
    kib_per_connection: Mapping[str, float] = field(
        default_factory=lambda: {"sse": 12.3, "ws": 16.1}  # idle KiB/connection
    )

    def message_overhead(self, protocol: str) -> float:
        """Default bytes of a data message besides its token text."""
        framing = self.sse_event_overhead if protocol == "sse" else _ws_header(60.0, False)
        return self.payload_fixed_bytes + framing

    def fixed_out_bytes(self, protocol: str, streams: float, connections: float) -> float:
        """Server→client bytes that are not data messages: headers, done, upgrade."""
        if protocol == "sse":
            return streams * (self.sse_response_headers + self.sse_done_bytes)
        done = self.ws_done_bytes + _ws_header(self.ws_done_bytes, False)
        return connections * self.ws_upgrade_response + streams * done


DEFAULTS = WireDefaults()


def _ws_header(n: float, masked: bool) -> float:
    base = 2.0 if n <= 125 else (4.0 if n <= 65535 else 10.0)
    return base + (4.0 if masked else 0.0)


@dataclass(frozen=True)
class _Answers:
    """One session's answers after cancels: counts and times."""

    tokens: float
    data_msgs: float
    done_msgs: float
    busy_s: float
    orphan_s: float
    cancels: float
    msg_tokens: float  # tokens per data message (full frames)


#: Share of an answer delivered before a cancel when neither profile nor run says.
DEFAULT_CANCEL_AT = 0.5


def _answers(p: Profile, f: float) -> _Answers:
    turns, n, k = p.turns_per_session, p.tokens_per_answer, p.tokens_per_message
    s = p.cancel_share
    full_msgs = math.ceil(n / k)
    cut_msgs = math.ceil(f * n / k)
    return _Answers(
        tokens=turns * n * ((1 - s) + s * f),
        data_msgs=turns * ((1 - s) * full_msgs + s * cut_msgs),
        done_msgs=turns * (1 - s),
        busy_s=turns * ((1 - s) * p.stream_s + s * (p.ttft_s + f * n / p.tokens_per_s)),
        orphan_s=turns * s * (1 - f) * n / p.tokens_per_s,
        cancels=turns * s,
        msg_tokens=min(k, n),
    )


def cancel_at(profile: Profile, calibration: Calibration | None) -> float:
    """Share of a cancelled answer delivered: profile > measured in the run > 0.5."""
    if profile.cancel_at_fraction is not None:
        return profile.cancel_at_fraction
    if calibration is not None and calibration.cancel_at_fraction is not None:
        return calibration.cancel_at_fraction
    return DEFAULT_CANCEL_AT


def session_usage_from_profile(
    profile: Profile,
    arm: str,
    calibration: Calibration | None = None,
    defaults: WireDefaults = DEFAULTS,
) -> Usage:
    """Usage of ONE session of ``profile`` on ``arm``, from the profile alone (or calibrated).

    See the module docstring for the SSE per-answer / per-tab and WS models. Bytes out =
    data messages × (overhead + token text) + headers, done events and heartbeats; the
    overhead per message comes from the calibration when measured.
    """
    cal = calibration or Calibration()
    proto = protocol_of(arm)
    p = profile
    turns = p.turns_per_session
    a = _answers(p, cancel_at(p, cal))
    overhead = (
        cal.message_overhead_bytes
        if cal.message_overhead_bytes is not None
        else defaults.message_overhead(proto)
    )
    msg_bytes = overhead + defaults.chars_per_token * a.msg_tokens
    prompt_bytes = p.prompt_tokens * defaults.chars_per_token
    cpu_tok = (
        cal.cpu_s_per_1k_tokens / 1000.0
        if cal.cpu_s_per_1k_tokens is not None
        else defaults.cpu_s_per_token[proto]
    )
    kib = (
        cal.kib_per_connection
        if cal.kib_per_connection is not None
        else defaults.kib_per_connection[proto]
    )
    if proto == "sse":
        per_tab = p.sse_connection == "per_tab"
        held = 1.0 if per_tab else turns
        conn_s = p.tab_s if per_tab else a.busy_s
        if not p.sse_heartbeat_s:
            keepalives = 0.0
        elif per_tab:
            keepalives = float(math.floor(conn_s / p.sse_heartbeat_s))
        else:
            keepalives = turns * math.floor(p.stream_s / p.sse_heartbeat_s)
        out_sizes: Sizes = ((a.data_msgs, msg_bytes), (a.done_msgs, defaults.sse_done_bytes))
        in_sizes: Sizes = ()
        bytes_out = (
            held * defaults.sse_response_headers
            + a.data_msgs * msg_bytes
            + a.done_msgs * defaults.sse_done_bytes
            + keepalives * defaults.sse_keepalive_bytes
        )
        bytes_in = (held if per_tab else 0.0) * defaults.sse_request_bytes + turns * (
            defaults.sse_request_bytes + prompt_bytes
        )
        cpu = a.tokens * cpu_tok + (held + (turns if per_tab else 0.0)) * defaults.cpu_s_per_setup
        fields_: dict[str, float] = dict(
            http_requests=held + (turns if per_tab else 0.0),  # + one POST per question
            sse_events=a.data_msgs + a.done_msgs,
            connections_opened=held,
            connection_minutes_total=conn_s / 60.0,
            connection_minutes_idle=(conn_s - a.busy_s) / 60.0 if per_tab else 0.0,
        )
    else:
        conn_s = p.tab_s
        keepalives = float(math.floor(conn_s / p.ws_heartbeat_s)) if p.ws_heartbeat_s else 0.0
        start_bytes = prompt_bytes + defaults.ws_start_overhead
        done = defaults.ws_done_bytes + _ws_header(defaults.ws_done_bytes, False)
        start = start_bytes + _ws_header(start_bytes, masked=True)
        out_sizes = ((a.data_msgs, msg_bytes), (a.done_msgs, done))
        in_sizes = ((turns, start), (a.cancels, defaults.ws_cancel_bytes))
        bytes_out = defaults.ws_upgrade_response + a.data_msgs * msg_bytes + a.done_msgs * done
        bytes_in = (
            defaults.ws_upgrade_request
            + turns * start
            + a.cancels * defaults.ws_cancel_bytes
            + keepalives * defaults.ws_keepalive_bytes
        )
        cpu = a.tokens * cpu_tok + defaults.cpu_s_per_setup
        fields_ = dict(
            http_requests=1.0,
            ws_messages_in=turns + a.cancels,  # a start per question, a cancel per stop
            ws_messages_out=a.data_msgs + a.done_msgs,
            connections_opened=1.0,
            connection_minutes_total=conn_s / 60.0,
            connection_minutes_idle=(conn_s - a.busy_s) / 60.0,
        )
    if cal.bytes_in_per_stream is not None:
        bytes_in = turns * cal.bytes_in_per_stream
    return Usage(
        arm=arm,
        protocol=proto,
        sessions=1.0,
        streams=turns,
        keepalives=float(keepalives),
        orphan_stream_minutes=a.orphan_s / 60.0,
        keepalive_bytes_each=(
            defaults.sse_keepalive_bytes if proto == "sse" else defaults.ws_keepalive_bytes
        ),
        bytes_out=bytes_out,
        bytes_in=bytes_in,
        server_cpu_seconds=cpu,
        memory_gb_seconds=conn_s * kib / 1024**2,
        tokens_delivered=a.tokens,
        out_message_sizes=out_sizes,
        in_message_sizes=in_sizes,
        measured_tokens_per_s_per_core=cal.tokens_per_s_per_core or 0.0,
        measured_connections_per_gib=cal.connections_per_gib or 0.0,
        measured_baseline_rss_bytes=cal.baseline_rss_bytes or 0.0,
        **fields_,
    )


def scale_to_month(per_session: Usage, profile: Profile) -> Usage:
    """Scale a per-session usage (measured or modelled) to a month of ``profile``.

    Counters × monthly sessions (MAU × sessions per user). Peaks are derived from the
    profile's daily pattern: the busiest hour carries ``max(hourly share)`` of each day's
    connection-seconds, so its average concurrency is
    ``connection_seconds_per_day × max_share ÷ 3600``, × ``peak_factor`` for the peak
    minute. Same for streams (busy seconds) and tokens/s.
    """
    if per_session.sessions <= 0:
        raise ValueError("scale_to_month needs a usage with sessions > 0")
    unit = per_session.per_session() if per_session.sessions != 1 else per_session
    month = unit.scaled(profile.sessions_per_month)
    shares = profile.hourly_weights or (1.0,) * 24
    total = sum(shares)
    max_share = max(shares) / total
    days = HOURS_PER_MONTH / 24.0

    def peak(per_month: float) -> float:
        return per_month / days * max_share / 3600.0 * profile.peak_factor

    return replace(
        month,
        hours=HOURS_PER_MONTH,
        hourly_share=tuple(s / total for s in shares),
        peak_concurrent_connections=peak(month.connection_minutes_total * 60.0),
        peak_concurrent_streams=peak(month.connection_minutes_busy * 60.0),
        peak_tokens_per_s=peak(month.tokens_delivered),
    )


def monthly_usage_from_profile(
    profile: Profile,
    arm: str,
    calibration: Calibration | None = None,
    defaults: WireDefaults = DEFAULTS,
) -> Usage:
    """A month of ``profile`` on ``arm``: the session model scaled by :func:`scale_to_month`."""
    return scale_to_month(session_usage_from_profile(profile, arm, calibration, defaults), profile)


def usages_from_profile(
    profile: Profile,
    arms: Sequence[str] = ("sse", "ws"),
    calibrations: Mapping[str, Calibration] | None = None,
) -> dict[str, Usage]:
    """Monthly usage per arm for ``profile`` (calibrated per arm when given)."""
    cals = calibrations or {}
    return {arm: monthly_usage_from_profile(profile, arm, cals.get(arm)) for arm in arms}
