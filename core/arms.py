"""The arm registry: every side of a comparison the harness knows, in one place.

An *arm* is one way of delivering the same synthetic token stream: a transport protocol
("sse" or "ws"), a payload format (``native`` = the project's ``{"s","i","t","d"}``), the
reference server that speaks it, the client that drives it, and how its usage is metered by
the cost model. Every module that needs to know "is this arm SSE or WS", "which server do I
start", "which colour is it" looks it up here; nothing else lists arm names.

Adding an arm is one `register(Arm(...))` call here (plus the server / client / format it
names, and tests). See docs/architecture.md, "Add an arm".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.registry import Registry

Protocol = Literal["sse", "ws"]
PROTOCOLS: tuple[Protocol, ...] = ("sse", "ws")
#: `Arm.client` of the arms a browser page drives (loadtests/browser).
BROWSER_CLIENT_PREFIX = "browser-"


class UnknownArm(KeyError):
    """An arm name that is not in the registry (the message lists the known ones)."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class Arm:
    """One side of the comparison.

    - ``protocol``: the transport family, ``"sse"`` or ``"ws"``; decides which claims and
      which cost formulas apply (a WS arm holds a connection per session, an SSE arm makes
      one HTTP request per stream).
    - ``format``: the payload format's name (a ``core.formats`` registry key).
    - ``server_kind``: the reference server to start (``python -m servers KIND``), or None
      when the project has no reference server for this arm.
    - ``client``: which client drives it (``"sse"`` / ``"ws"`` for the Locust transports;
      ``"browser-…"`` for the page clients of the browser load generator,
      ``loadtests/browser``, which the runner starts instead of Locust).
    - ``metering``: how the cost model meters its usage (``"sse"`` or ``"ws"``).
    - ``label`` / ``color``: how reports and plots show it (Okabe-Ito, colour-blind safe).
    - ``order``: its place in tables and legends (lower first).
    """

    name: str
    protocol: Protocol
    format: str = "native"
    server_kind: str | None = None
    client: str = ""
    metering: Protocol | None = None
    label: str = ""
    color: str = "#555555"
    order: int = 100

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"arm {self.name}: protocol must be one of {PROTOCOLS}")
        # defaults that follow from the protocol (frozen: set through object.__setattr__)
        if not self.client:
            object.__setattr__(self, "client", self.protocol)
        if self.metering is None:
            object.__setattr__(self, "metering", self.protocol)
        if not self.label:
            object.__setattr__(self, "label", self.name)

    @property
    def is_ws(self) -> bool:
        return self.protocol == "ws"

    @property
    def is_sse(self) -> bool:
        return self.protocol == "sse"

    @property
    def is_browser(self) -> bool:
        """Driven by a real browser (loadtests/browser), not by Locust."""
        return self.client.startswith(BROWSER_CLIENT_PREFIX)


_REGISTRY: Registry[Arm] = Registry("arm", UnknownArm, order=lambda a: (a.order, a.name))


def register(arm: Arm) -> Arm:
    """Add an arm (a name may be registered once)."""
    return _REGISTRY.add(arm.name, arm)


def get_arm(name: str) -> Arm:
    """The registered arm of that name, or UnknownArm naming the known ones."""
    return _REGISTRY.get(name)


def is_known(name: str) -> bool:
    return name in _REGISTRY


def arm_names() -> tuple[str, ...]:
    """Every registered arm name, in display order."""
    return _REGISTRY.names()


def all_arms() -> tuple[Arm, ...]:
    return tuple(get_arm(n) for n in arm_names())


def protocol_of(name: str) -> Protocol:
    """ "sse" or "ws" for a registered arm (UnknownArm otherwise: never guessed from a
    prefix, so an arm named ``sse-h2`` can never be counted as WS somewhere)."""
    return get_arm(name).protocol


def arms_of(protocol: Protocol, names: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """The names (of ``names``, default: all registered) whose protocol is ``protocol``."""
    pool = arm_names() if names is None else names
    return [n for n in pool if get_arm(n).protocol == protocol]


def arm_for(protocol: Protocol, fmt: str) -> Arm:
    """The first registered arm (display order) carrying payload format `fmt` over
    `protocol` — what ``--sse-format`` / ``--ws-format`` pick; UnknownArm if none does."""
    for arm in all_arms():
        if arm.protocol == protocol and arm.format == fmt:
            return arm
    raise UnknownArm(f"no arm carries payload format {fmt!r} over {protocol}")


def sort_arms(names: list[str] | tuple[str, ...] | set[str]) -> list[str]:
    """Registered arms in display order; unknown labels (a foreign run's) after them, sorted."""
    known = [n for n in arm_names() if n in names]
    return known + sorted(n for n in names if n not in _REGISTRY)


def reference_sse_arm(names: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """The SSE arm a scenario's other arms are compared with: ``sse`` when it ran, else the
    SSE arm carrying a WS arm's payload format (the Responses pair: the same events over
    both transports), else the first SSE arm in display order; None without a registered
    SSE arm."""
    known = [n for n in sort_arms(names) if is_known(n)]
    sse = [n for n in known if get_arm(n).protocol == "sse"]
    if not sse or "sse" in sse:
        return "sse" if sse else None
    ws_formats = [get_arm(n).format for n in known if get_arm(n).protocol == "ws"]
    same_format = [n for f in ws_formats for n in sse if get_arm(n).format == f]
    return (same_format or sse)[0]


# --------------------------------------------------------------------------- the arms
register(Arm("sse", "sse", server_kind="sse", label="SSE (aiohttp)", color="#0072B2", order=10))
register(Arm("ws", "ws", server_kind="ws", label="WS (aiohttp)", color="#D55E00", order=20))
register(
    Arm(
        "ws-websockets",
        "ws",
        server_kind="ws-websockets",
        label="WS (websockets)",
        color="#009E73",
        order=30,
    )
)
# The provider formats (core.formats), served by the same reference servers: the SSE
# server speaks every SSE form, the aiohttp WS server the Responses API's WebSocket mode.
register(
    Arm(
        "sse-openai-chat",
        "sse",
        format="openai-chat",
        server_kind="sse",
        label="SSE OpenAI chat",
        color="#56B4E9",
        order=40,
    )
)
register(
    Arm(
        "sse-openai-responses",
        "sse",
        format="openai-responses",
        server_kind="sse",
        label="SSE OpenAI Responses",
        color="#CC79A7",
        order=50,
    )
)
register(
    Arm(
        "ws-openai-responses",
        "ws",
        format="openai-responses",
        server_kind="ws",
        label="WS OpenAI Responses",
        color="#E69F00",
        order=60,
    )
)
register(
    Arm(
        "sse-anthropic",
        "sse",
        format="anthropic",
        server_kind="sse",
        label="SSE Anthropic",
        color="#000000",
        order=70,
    )
)

# Browser arms (issue 16): Chromium pages as the client, each page running many users'
# sessions. The EventSource arm uses the browser's own reconnect (retry:, Last-Event-ID);
# fetch POSTs and parses the stream in the page, resuming by hand; fetch-noresume is the
# same client without the hand-written resume (what most LLM web apps ship: a cut answer is
# lost); WS reconnects and resumes by hand. See loadtests/browser/README.md. Colours from
# Paul Tol's colour-blind-safe palette (Okabe-Ito's eight are taken above).
register(
    Arm(
        "browser-eventsource",
        "sse",
        server_kind="sse",
        client="browser-eventsource",
        label="Browser EventSource (GET)",
        color="#332288",
        order=80,
    )
)
register(
    Arm(
        "browser-fetch",
        "sse",
        server_kind="sse",
        client="browser-fetch",
        label="Browser fetch (POST, resume by hand)",
        color="#AA4499",
        order=81,
    )
)
register(
    Arm(
        "browser-fetch-noresume",
        "sse",
        server_kind="sse",
        client="browser-fetch-noresume",
        label="Browser fetch (POST, no resume)",
        color="#DDCC77",
        order=82,
    )
)
register(
    Arm(
        "browser-ws",
        "ws",
        server_kind="ws",
        client="browser-ws",
        label="Browser WebSocket (resume by hand)",
        color="#882255",
        order=83,
    )
)
