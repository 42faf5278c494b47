"""Admission: whether a stream may start, decided before its plan is built.

A stream's plan (token ids and due times) costs about 50 bytes a token while it runs:
one WebSocket connection sending 400 starts of 100,000 tokens once reached 1.88 GB. So
every stream is admitted here first, against three limits (0 = no limit):

- ``streams_per_connection``: streams running at once on one WebSocket connection (an
  HTTP/1.1 connection carries one SSE stream at a time, so it never reaches this one);
- ``active_streams``: streams running at once in the server;
- ``planned_tokens``: the sum of the planned tokens of the running streams.

A refusal names the limit. It is *transient* (the server is busy: HTTP 503 with
Retry-After, WS close 1013 "try again later") or *permanent* (this request can never be
served as it is: one stream over the whole token budget, or too many streams on one
connection: HTTP 400, WS close 1008 "policy violation"). Every refusal is counted by limit
(``ssevsws_streams_refused_total{limit=...}``).
"""

from __future__ import annotations

STREAMS_PER_CONNECTION = "streams_per_connection"
ACTIVE_STREAMS = "active_streams"
PLANNED_TOKENS = "planned_tokens"
LIMITS = (STREAMS_PER_CONNECTION, ACTIVE_STREAMS, PLANNED_TOKENS)


class LimitExceeded(Exception):
    """A stream refused by one of the limits (see the module docstring)."""

    def __init__(self, limit: str, message: str, *, permanent: bool) -> None:
        super().__init__(f"{limit}: {message}")
        self.limit = limit
        self.message = message
        self.permanent = permanent

    def as_dict(self) -> dict[str, str]:
        return {"error": self.message, "limit": self.limit}


class Admission:
    """The running streams' count and planned tokens against the configured limits."""

    __slots__ = ("active", "max_active", "max_per_connection", "max_tokens", "refused", "tokens")

    def __init__(self, max_per_connection: int, max_active: int, max_tokens: int) -> None:
        self.max_per_connection = max_per_connection
        self.max_active = max_active
        self.max_tokens = max_tokens
        self.active = 0
        self.tokens = 0
        #: Refusals by limit (read by servers.metrics).
        self.refused = dict.fromkeys(LIMITS, 0)

    def admit(self, n_tokens: int, on_connection: int = 0) -> None:
        """Reserve room for a stream of `n_tokens`, the connection already running
        `on_connection` streams; raise LimitExceeded instead. Pair with `release`."""
        refusal = self._refusal(n_tokens, on_connection)
        if refusal is not None:
            self.refused[refusal.limit] += 1
            raise refusal
        self.active += 1
        self.tokens += n_tokens

    def release(self, n_tokens: int) -> None:
        self.active -= 1
        self.tokens -= n_tokens

    def _refusal(self, n_tokens: int, on_connection: int) -> LimitExceeded | None:
        per_conn, most, budget = self.max_per_connection, self.max_active, self.max_tokens
        if per_conn and on_connection >= per_conn:
            return LimitExceeded(
                STREAMS_PER_CONNECTION,
                f"{on_connection} streams already running on this connection (limit {per_conn})",
                permanent=True,
            )
        if budget and n_tokens > budget:
            return LimitExceeded(
                PLANNED_TOKENS,
                f"a stream of {n_tokens} tokens is over the server's budget of {budget}",
                permanent=True,
            )
        if most and self.active >= most:
            return LimitExceeded(
                ACTIVE_STREAMS,
                f"server busy: {self.active} streams running (limit {most})",
                permanent=False,
            )
        if budget and self.tokens + n_tokens > budget:
            return LimitExceeded(
                PLANNED_TOKENS,
                f"server busy: {self.tokens} tokens planned, {n_tokens} more would pass "
                f"the limit of {budget}",
                permanent=False,
            )
        return None
