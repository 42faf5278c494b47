"""Which user runs in which page, on which host name, when, and with which decisions (pure).

The browser load generator hands every page a list of users; each user carries
everything its sessions need, computed here so the page holds no randomness of its own:

- ``windows``: when the user is active, in ms after the phase start — Locust's spawn
  rate for a fixed user count, or the steps of ``load.ramp_steps``;
- ``draws``: one ``(cancel?, think seconds, tokens)`` per stream, from the same per-user RNG and
  in the same order as the Locust users (`loadtests.session.draw_turn`), so both kinds of
  client make the same decisions for user *u* of the same phase seed;
- ``arrivals``: the open model's exponential gaps between sessions (same RNG as Locust's);
- ``http_base`` / ``ws_url``: the user's server address. Over HTTP/1.1 a browser keeps at
  most 6 connections per host, so users are spread over host names ``u<k>.localhost``,
  `users_per_host` each (Chromium is told to resolve them to the server's loopback address);
  ``users_per_host = 0`` keeps every user on the phase URL's own host.

Stream ids and seeds follow the Locust users' rule (worker index 0, user = its index in the
phase): ``<phase seed>.0.<user>.<session>.<turn>``, seed = phase seed + the user's stream
count.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from core.scenario import LoadSpec, Scenario
from loadtests.session import SessionPlan, TurnDraw, UserIds, arrival_rng, draw_turn, user_rng

WORKER_INDEX = 0
#: Never hand a user more pre-drawn turns or arrivals than this (the page stops a user that
#: runs out and says so; it never invents a decision).
MAX_DRAWS = 5000
SHARD_DOMAIN = "localhost"


class LayoutError(ValueError):
    """The phase cannot be laid out (e.g. a server address that is not loopback)."""


@dataclass(frozen=True)
class PageUser:
    index: int
    page: int
    host: str  # host name the user connects to ("u3.localhost" or the URL's own)
    http_base: str
    ws_url: str
    conn_prefix: str
    windows: tuple[tuple[float, float], ...]
    draws: tuple[TurnDraw, ...]
    arrivals: tuple[float, ...] | None

    def to_page(self) -> dict[str, Any]:
        """The JSON the page's harness.js takes for this user."""
        return {
            "index": self.index,
            "http_base": self.http_base,
            "ws_url": self.ws_url,
            "conn_prefix": self.conn_prefix,
            "windows": [list(w) for w in self.windows],
            "draws": [[d.cancel, d.think_s, d.tokens] for d in self.draws],
            "arrivals": list(self.arrivals) if self.arrivals is not None else None,
        }


def total_users(load: LoadSpec) -> int:
    return max(load.ramp_steps) if load.ramp_steps else load.users


def user_windows(load: LoadSpec) -> list[tuple[tuple[float, float], ...]]:
    """Per user index: the (start, end) ms of its active spells.

    Fixed users start one after another at `spawn_rate` and stay to the end. With ramp
    steps, step *i* (from ``i·step_s``) has ``ramp_steps[i]`` users: user *u* is active
    while the target exceeds *u*, new users of a step starting at `spawn_rate`.
    """
    end = load.run_s * 1000.0
    rate = max(load.spawn_rate, 1e-9)
    if not load.ramp_steps:
        return [((u / rate * 1000.0, end),) for u in range(load.users)]
    spells: list[list[tuple[float, float]]] = [[] for _ in range(total_users(load))]
    prev = 0
    for i, target in enumerate(load.ramp_steps):
        t_step = i * load.step_s * 1000.0
        t_next = (i + 1) * load.step_s * 1000.0 if i + 1 < len(load.ramp_steps) else end
        for u in range(target):
            start = t_step + max(0, u - prev) / rate * 1000.0 if u >= prev else t_step
            mine = spells[u]
            if mine and mine[-1][1] == t_step:  # still active from the last step
                mine[-1] = (mine[-1][0], t_next)
            else:
                mine.append((min(start, t_next), t_next))
        prev = target
    return [tuple(s) for s in spells]


def users_target(load: LoadSpec, t_ms: float) -> int:
    """The load shape's target user count at `t_ms` after the phase start."""
    if not load.ramp_steps:
        return load.users
    i = int(max(0.0, t_ms) // (load.step_s * 1000.0))
    return load.ramp_steps[min(i, len(load.ramp_steps) - 1)]


def _min_turn_s(s: Scenario) -> float:
    """A lower bound of one turn's duration, to size the pre-drawn decisions."""
    st, b = s.stream, s.behaviour
    shortest = st.tokens_min if st.tokens_min > 0 else st.tokens
    tokens = shortest if b.cancel_prob <= 0 else min(shortest, max(1, b.cancel_after))
    if st.drop_after and not b.resume:
        tokens = min(tokens, st.drop_after)
    ms = (st.ttft_ms + st.gap_ms * max(0, tokens - 1)) * (1.0 - st.jitter)
    think = {"fixed": s.session.think_s, "uniform": s.session.think_min_s}.get(
        s.session.think_dist, 0.0
    )
    return max(ms / 1000.0 + think, 0.02)


def draws_for(s: Scenario, ids: UserIds, active_s: float) -> tuple[TurnDraw, ...]:
    plan = SessionPlan.from_scenario(s)
    n = math.ceil((active_s + s.load.stop_timeout_s) / _min_turn_s(s)) + s.session.turns + 4
    rng = user_rng(ids)
    return tuple(draw_turn(rng, plan) for _ in range(min(n, MAX_DRAWS)))


def arrivals_for(s: Scenario, seed: int, user: int, active_s: float) -> tuple[float, ...] | None:
    if s.load.mode != "open":
        return None
    rate = s.load.arrival_rate / total_users(s.load)
    mean = active_s * rate
    n = math.ceil(mean + 6 * math.sqrt(mean + 1)) + 4
    rng = arrival_rng(seed, WORKER_INDEX, user)
    return tuple(rng.expovariate(rate) for _ in range(min(n, MAX_DRAWS)))


def server_host(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of the phase URL; only loopback servers are accepted."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost" or host.endswith(".localhost")
    if not loopback:
        raise LayoutError(f"the browser only talks to loopback servers, got {url!r}")
    default = 443 if parts.scheme in ("https", "wss") else 80
    return parts.scheme, host, parts.port or default


def host_rules(url: str, users_per_host: int) -> list[str]:
    """Chromium flags that resolve the shard names to the server's address (none without
    sharding, or when the URL already names a host under .localhost)."""
    if users_per_host == 0:
        return []
    _, host, _ = server_host(url)
    ip = "127.0.0.1" if host == "localhost" or host.endswith(".localhost") else host
    target = f"[{ip}]" if ":" in ip else ip
    return [f"--host-resolver-rules=MAP *.{SHARD_DOMAIN} {target}"]


def layout(
    s: Scenario, *, phase: str, arm: str, worker: str, seed: int, url: str
) -> list[PageUser]:
    """Every user of the phase, with its page, address and pre-drawn decisions."""
    scheme, host, port = server_host(url)
    http_scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    ws_scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
    per_page, per_host = s.browser.users_per_page, s.browser.users_per_host
    users: list[PageUser] = []
    for u, spells in enumerate(user_windows(s.load)):
        page = u // per_page
        name = f"u{(u % per_page) // per_host}.{SHARD_DOMAIN}" if per_host else host
        netloc = f"[{name}]:{port}" if ":" in name else f"{name}:{port}"
        active_s = sum(b - a for a, b in spells) / 1000.0
        ids = UserIds(phase, arm, worker, WORKER_INDEX, u, seed)
        users.append(
            PageUser(
                index=u,
                page=page,
                host=name,
                http_base=f"{http_scheme}://{netloc}",
                ws_url=f"{ws_scheme}://{netloc}/v1/ws",
                conn_prefix=f"{phase}/b{page}.{u}",
                windows=spells,
                draws=draws_for(s, ids, active_s),
                arrivals=arrivals_for(s, seed, u, active_s),
            )
        )
    return users


def pages_of(users: list[PageUser]) -> dict[int, list[PageUser]]:
    out: dict[int, list[PageUser]] = {}
    for user in users:
        out.setdefault(user.page, []).append(user)
    return out
