"""The fault schedule, sans I/O: given a profile, a seed and the bytes as they arrive, when
does each byte leave the proxy, and which faults hit which connection.

Everything is deterministic from (seed, connection serial, direction): each decision draws
from its own `random.Random` seeded with a string naming it, so one connection's draws do
not shift when another connection appears, and the tests recompute the truth from the
same seed.

**Delay line** (`DelayLine`, one per direction of a connection). A chunk that arrives at
``t`` is split into pieces (at lost-segment offsets, and into bucket-sized pieces when the
bandwidth is capped); each piece leaves at

    release = max(previous release,  depart + latency + jitter + stall)

where ``depart`` is the token bucket's answer (``t`` when uncapped), ``jitter`` is drawn
once per chunk, and ``stall`` is a lost segment's retransmission time. The max keeps the
byte order: jitter never reorders, a late chunk holds back the ones behind it (as TCP's
in-order delivery does).

**Loss model.** Real TCP never loses bytes; it loses segments and retransmits them, so a
loss shows up as a delay. A chunk the proxy reads stands for ``ceil(n / mss)`` segments
(a token event written with Nagle off is one small segment; a bulk read of 64 KiB is 46);
every segment is lost with probability ``loss``, independently, and its retransmission is
lost again with the same probability, up to ``max_retries`` times (r consecutive losses in
all). The bytes from the lost segment on are held back for
``rto·(1 + 2 + … + 2^(r−1)) = rto·(2^r − 1)`` — the retransmission timer doubling after
each failed retransmission (RFC 6298 §5.5), capped at ``rto_max``. The sequence of draws
is fixed by the seed; which bytes a draw hits depends on how the stream arrived in reads
(one read per token event on a paced stream, so in practice the same bytes run after
run). Not modelled: fast retransmit / RACK-TLP (a loss with enough data behind it is
repaired in about one RTT, not one RTO — so this is the tail-loss case, the usual one for
a trickle of small token events), congestion-window effects on later throughput.

**Blackholes** (the network goes dark). A piece whose release falls inside a blackhole
window is lost; with ``recovery = "rto"`` it goes out at the sender's first
retransmission after the window ends — retransmissions at ``t_lost + rto·(2^k − 1)``,
``t_lost`` being the first piece of this direction that fell in the window — and
everything behind it waits. New connections in a window are held until the first SYN
retransmission after it (``syn_rto``, 1 s doubling).

**Handovers** cut every open connection at the window's start (modes from the profile);
new connections during the gap are refused (reset) or held like a SYN in a blackhole.

**Closes** by a peer (its FIN or RST) cross the path like its bytes (`close_release`):
after the direction's latency, behind what is in flight, and held by a blackhole — a
phone that gives up on a connection in a tunnel does not tell the server until the
tunnel ends.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from typing import Any

from bench.faultproxy.profile import (
    CutRule,
    HandoverSpec,
    LinkSpec,
    NetworkProfile,
    Range,
    TcpSpec,
)

__all__ = [
    "Admission",
    "ConnCuts",
    "Cut",
    "DelayLine",
    "LossPlan",
    "Timeline",
    "TokenBucket",
    "Window",
    "admit",
    "plan_cuts",
    "retransmit_after",
    "rng",
]

MS = 1_000_000
S = 1_000_000_000


def rng(seed: int, *parts: object) -> random.Random:
    """A generator for one named decision ("timeline/blackholes", "conn/7/down/loss", …).

    Seeded with a string (hashed with SHA-512 by `random`), so it is the same in every
    process and Python run, whatever PYTHONHASHSEED is."""
    return random.Random("/".join([str(seed), *map(str, parts)]))


def draw_range(r: random.Random, span: Range) -> float:
    lo, hi = span
    return lo if lo == hi else r.uniform(lo, hi)


def retransmit_after(t_lost_ns: int, t_end_ns: int, rto_ns: int, rto_max_ns: int) -> int:
    """The first retransmission at or after `t_end_ns` of a segment first sent (and lost)
    at `t_lost_ns`: retransmissions at t_lost + rto, then after 2·rto, 4·rto, … (each gap
    capped at rto_max)."""
    t, gap = t_lost_ns, rto_ns
    while t < t_end_ns:
        t += gap
        gap = min(gap * 2, rto_max_ns)
    return t


# --------------------------------------------------------------------------- timeline


@dataclass(frozen=True)
class Window:
    """A blackhole or a handover gap, in absolute monotonic ns."""

    kind: str  # "blackhole" | "handover"
    index: int  # 0, 1, … within its kind
    start_ns: int
    end_ns: int

    def contains(self, t_ns: int) -> bool:
        return self.start_ns <= t_ns < self.end_ns


class Timeline:
    """The phase-wide windows (blackholes, handover gaps) from t0, generated lazily."""

    def __init__(self, profile: NetworkProfile, seed: int, t0_ns: int) -> None:
        self.t0_ns = t0_ns
        self._gens: dict[str, tuple[Range, Range, Range, random.Random]] = {}
        self._windows: dict[str, list[Window]] = {}
        self._next_start: dict[str, int] = {}
        if profile.blackholes is not None:
            b = profile.blackholes
            self._add("blackhole", b.first_at_s, b.interval_s, b.duration_s, seed)
        if profile.handover is not None:
            h = profile.handover
            self._add("handover", h.first_at_s, h.interval_s, h.gap_s, seed)

    def _add(self, kind: str, first: Range, interval: Range, length: Range, seed: int) -> None:
        r = rng(seed, "timeline", kind)
        self._gens[kind] = (first, interval, length, r)
        self._windows[kind] = []
        self._next_start[kind] = self.t0_ns + round(draw_range(r, first) * S)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._gens)

    def _extend(self, kind: str, t_ns: int) -> list[Window]:
        ws = self._windows[kind]
        _, interval, length, r = self._gens[kind]
        while self._next_start[kind] <= t_ns:
            start = self._next_start[kind]
            end = start + round(draw_range(r, length) * S)
            ws.append(Window(kind, len(ws), start, end))
            self._next_start[kind] = end + round(draw_range(r, interval) * S)
        return ws

    def windows(self, kind: str, until_ns: int) -> list[Window]:
        """Every `kind` window that starts at or before `until_ns`."""
        if kind not in self._gens:
            return []
        return list(self._extend(kind, until_ns))

    def at(self, kind: str, t_ns: int) -> Window | None:
        """The `kind` window holding `t_ns`, if any."""
        if kind not in self._gens:
            return None
        ws = self._extend(kind, t_ns)
        i = bisect.bisect_right([w.start_ns for w in ws], t_ns) - 1
        return ws[i] if i >= 0 and ws[i].contains(t_ns) else None

    def next_window(self, kind: str, after_ns: int) -> Window:
        """The first `kind` window starting after `after_ns` (kind must be present)."""
        ws = self._extend(kind, after_ns)
        for w in ws:
            if w.start_ns > after_ns:
                return w
        return self._extend(kind, self._next_start[kind])[-1]


# --------------------------------------------------------------------------- connections


@dataclass(frozen=True)
class Cut:
    rule: int
    client: str  # fin | rst | silent
    server: str
    after_ns: int | None = None  # since accept
    after_bytes: int | None = None  # server → client bytes delivered


@dataclass(frozen=True)
class ConnCuts:
    """A connection's cuts: the earliest timed one and the smallest byte count."""

    timed: Cut | None = None
    by_bytes: Cut | None = None


def _cut_time_ns(rule: CutRule, r: random.Random) -> int | None:
    if rule.after_s is not None:
        return round(draw_range(r, rule.after_s) * S)
    if rule.after_s_mean is not None:
        return round(r.expovariate(1.0 / rule.after_s_mean) * S)
    return None


def plan_cuts(profile: NetworkProfile, seed: int, serial: int) -> ConnCuts:
    """Which cut rules hit connection `serial` and when (drawn per rule and connection)."""
    timed: Cut | None = None
    by_bytes: Cut | None = None
    for i, rule in enumerate(profile.cuts):
        r = rng(seed, "conn", serial, "cut", i)
        if r.random() >= rule.share:
            continue
        after_ns = _cut_time_ns(rule, r)
        if after_ns is not None and (timed is None or after_ns < (timed.after_ns or 0)):
            timed = Cut(i, rule.client, rule.server, after_ns=after_ns)
        if rule.after_bytes is not None and (
            by_bytes is None or rule.after_bytes < (by_bytes.after_bytes or 0)
        ):
            by_bytes = Cut(i, rule.client, rule.server, after_bytes=rule.after_bytes)
    return ConnCuts(timed, by_bytes)


@dataclass(frozen=True)
class Admission:
    """What happens to a connection accepted at some instant."""

    action: str  # "ok" | "hold" | "refuse"
    release_ns: int | None = None  # hold: when it goes ahead
    cause: str | None = None  # "blackhole" | "handover"


def admit(timeline: Timeline | None, profile: NetworkProfile, t_ns: int) -> Admission:
    """A new connection at `t_ns`: go ahead, wait (SYN retransmitted until the network is
    back), or be refused (a handover gap with ``new_connections = "refuse"``)."""
    if timeline is None:
        return Admission("ok")
    tcp = profile.tcp
    syn_ns, max_ns = round(tcp.syn_rto_ms * MS), round(tcp.rto_max_ms * MS)
    release, cause = t_ns, None
    gap = timeline.at("handover", t_ns)
    if gap is not None:
        assert isinstance(profile.handover, HandoverSpec)
        if profile.handover.new_connections == "refuse":
            return Admission("refuse", cause="handover")
        release, cause = retransmit_after(t_ns, gap.end_ns, syn_ns, max_ns), "handover"
    dark = timeline.at("blackhole", t_ns)
    if dark is not None:
        assert profile.blackholes is not None
        end = (
            retransmit_after(t_ns, dark.end_ns, syn_ns, max_ns)
            if profile.blackholes.recovery == "rto"
            else dark.end_ns
        )
        if end > release:
            release, cause = end, "blackhole"
    return Admission("hold", release, cause) if cause else Admission("ok")


# --------------------------------------------------------------------------- one direction


class LossPlan:
    """Which of a direction's segments are lost: `next_index` is the index (0, 1, …) of the
    next lost segment (math.inf when loss is 0)."""

    def __init__(self, loss: float, max_retries: int, r: random.Random) -> None:
        self.loss, self.max_retries, self._r = loss, max_retries, r
        self.next_index: float = math.inf
        if loss > 0:
            self.next_index = self._gap()

    def _gap(self) -> int:
        """Segments that get through before the next lost one (geometric, ≥ 0)."""
        u = 1.0 - self._r.random()  # (0, 1]
        return int(math.log(u) / math.log1p(-self.loss))

    def take(self) -> int:
        """The lost segment at `next_index`: how many times in a row it is lost (≥ 1);
        moves `next_index` to the next lost segment."""
        retries = 1
        while retries < self.max_retries and self._r.random() < self.loss:
            retries += 1
        self.next_index += 1 + self._gap()
        return retries


class TokenBucket:
    """Bytes leave at `rate` bytes/s with bursts up to `burst` bytes (the bucket starts
    full). `depart(n, t)` is when a piece of n ≤ burst bytes, ready at t, goes out."""

    def __init__(self, bytes_per_s: float, burst: int) -> None:
        self.bytes_per_s = bytes_per_s
        self.ns_per_byte = S / bytes_per_s
        self.burst = burst
        self.tokens = float(burst)
        self.t_ns = 0  # time `tokens` refers to; pieces are handled in order

    def depart(self, n: int, t_ns: int) -> int:
        t = max(t_ns, self.t_ns)
        tokens = min(self.burst, self.tokens + (t - self.t_ns) / self.ns_per_byte)
        if tokens < n:
            t += math.ceil((n - tokens) * self.ns_per_byte)
            tokens = float(n)
        self.tokens, self.t_ns = tokens - n, t
        return t


def burst_bytes(link: LinkSpec, tcp: TcpSpec) -> int:
    """The bucket depth: as set, or 10 ms at the rate, at least two segments."""
    if link.burst_bytes:
        return link.burst_bytes
    return max(2 * tcp.mss_bytes, round(link.bandwidth_kbps * 1000 / 8 * 0.010))


@dataclass
class Piece:
    release_ns: int
    data: bytes


class DelayLine:
    """One direction of one connection: `push(data, t)` → the pieces with their release
    times, and the fault events to log (stalls, blackhole holds)."""

    def __init__(
        self,
        profile: NetworkProfile,
        direction: str,
        seed: int,
        serial: int,
        timeline: Timeline | None = None,
    ) -> None:
        link: LinkSpec = getattr(profile, direction)
        tcp = profile.tcp
        self.direction = direction
        self.latency_ns = round(link.latency_ms * MS)
        self.jitter_ns = link.jitter_ms * MS
        self.jitter_dist = link.jitter_dist
        self.rto_ns, self.rto_max_ns = round(tcp.rto_ms * MS), round(tcp.rto_max_ms * MS)
        self.max_retries = tcp.max_retries
        self._jitter_r = rng(seed, "conn", serial, direction, "jitter")
        self.mss = tcp.mss_bytes
        loss_rng = rng(seed, "conn", serial, direction, "loss")
        self.loss = LossPlan(link.loss, tcp.max_retries, loss_rng)
        self.segments = 0  # segments pushed so far
        self.bucket: TokenBucket | None = None
        self.quantum = 1 << 62
        if link.bandwidth_kbps > 0:
            burst = burst_bytes(link, tcp)
            self.bucket = TokenBucket(link.bandwidth_kbps * 1000 / 8, burst)
            self.quantum = min(burst, 16_384)
        self.timeline = timeline if timeline and "blackhole" in timeline.kinds else None
        self.recovery = profile.blackholes.recovery if profile.blackholes else "instant"
        self._lost_in: dict[int, int] = {}  # blackhole index → t of the first piece lost in it
        self.offset = 0  # bytes pushed so far
        self.last_release_ns = 0

    def _jitter(self) -> int:
        if not self.jitter_ns:
            return 0
        r = self._jitter_r
        if self.jitter_dist == "uniform":
            return round(r.uniform(-self.jitter_ns, self.jitter_ns))
        if self.jitter_dist == "exponential":
            return round(r.expovariate(1.0 / self.jitter_ns))
        return round(r.gauss(0.0, self.jitter_ns))

    def _stall_ns(self, retries: int) -> int:
        total, gap = 0, self.rto_ns
        for _ in range(retries):
            total += gap
            gap = min(gap * 2, self.rto_max_ns)
        return total

    def push(self, data: bytes, t_ns: int) -> tuple[list[Piece], list[dict[str, Any]]]:
        delay = max(0, self.latency_ns + self._jitter())
        pieces: list[Piece] = []
        events: list[dict[str, Any]] = []
        view = memoryview(data)
        n, mss, loss = len(data), self.mss, self.loss
        seg0 = self.segments  # the chunk is segments seg0 … seg0 + ceil(n / mss) - 1
        self.segments += -(-n // mss)
        pos = 0
        while pos < n:
            size = n - pos
            stall = 0
            if loss.next_index <= seg0 + pos // mss:  # this piece starts a lost segment
                segment = int(loss.next_index)
                retries = loss.take()
                stall = self._stall_ns(retries)
                events.append(
                    {
                        "ev": "stall",
                        "dir": self.direction,
                        "segment": segment,
                        "offset": self.offset + pos,
                        "retries": retries,
                        "stall_ms": stall / MS,
                    }
                )
            if loss.next_index < self.segments:  # the next lost segment is in this chunk
                size = min(size, int(loss.next_index - seg0) * mss - pos)
            size = min(size, self.quantum)
            depart = self.bucket.depart(size, t_ns) if self.bucket is not None else t_ns
            release = max(self.last_release_ns, depart + delay + stall)
            if stall:
                events[-1]["release_ns"] = release
            release = self._through_blackholes(release, events)
            self.last_release_ns = release
            piece = data if size == n else bytes(view[pos : pos + size])
            pieces.append(Piece(release, piece))
            pos += size
        self.offset += n
        return pieces, events

    def close_release(self, t_ns: int) -> tuple[int, list[dict[str, Any]]]:
        """When a close (FIN or RST) sent at `t_ns` reaches the other end: like a segment,
        after the one-way latency, behind the bytes already in flight, and after a
        blackhole at the sender's first retransmission once it ends (an RST itself is not
        retransmitted, but the peer learns of it only when its own segments get through
        and draw one). No jitter or loss draw: a close consumes no random numbers, so the
        data's schedule stays the seed's. Returns (release, events to log)."""
        events: list[dict[str, Any]] = []
        release = max(self.last_release_ns, t_ns + self.latency_ns)
        return self._through_blackholes(release, events), events

    def _through_blackholes(self, release: int, events: list[dict[str, Any]]) -> int:
        """`release` moved past any blackhole it falls in (repeatedly: the retransmission
        can land in the next one)."""
        if self.timeline is None:
            return release
        while True:
            w = self.timeline.at("blackhole", release)
            if w is None:
                return release
            first = w.index not in self._lost_in
            t_lost = self._lost_in.setdefault(w.index, release)
            resume = (
                retransmit_after(t_lost, w.end_ns, self.rto_ns, self.rto_max_ns)
                if self.recovery == "rto"
                else w.end_ns
            )
            if first:
                events.append(
                    {
                        "ev": "blackhole",
                        "dir": self.direction,
                        "window": w.index,
                        "t_lost_ns": t_lost,
                        "resume_ns": resume,
                    }
                )
            release = max(release, resume)
