"""A page's stream and connection records → the run folder's rows (core.accounting).

The page (page/harness.js) reports what each stream saw with page-clock times (ms); here
every time is mapped onto the harness clock (`core.clock_sync.ClockMap`) and replayed into
the same `StreamAccount` / `ConnectionAccount` the Locust client fills, so the streams,
tokens and connections rows — and every analysis of them — are the same for both kinds of
client. Token payloads come over raw and are parsed here: the server's stamp ``t`` is an
integer of up to 19 digits, which a JavaScript number would round.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.accounting import OUTCOMES, ConnectionAccount, ConnectionLabels, StreamAccount
from core.clock_sync import ClockMap
from core.scenario import StreamSpec
from loadtests.session import UserIds, stream_params, stream_request


class RecordError(ValueError):
    """A page record that does not match what the harness asked for (a harness bug)."""


@dataclass(frozen=True)
class PhaseLabels:
    phase: str
    arm: str
    worker: str
    seed: int  # the phase seed
    worker_index: int = 0
    scenario: str | None = None  # the phase's scenario, variant, repetition (record columns)
    variant: str | None = None
    rep: int | None = None

    def user_ids(self, user: int) -> UserIds:
        return UserIds(
            self.phase,
            self.arm,
            self.worker,
            self.worker_index,
            user,
            self.seed,
            self.scenario,
            self.variant,
            self.rep,
        )


def _ns(clock: ClockMap, ms: float | None) -> int | None:
    return None if ms is None else clock.to_harness_ns(ms)


def page_stream_template(spec: StreamSpec) -> dict[str, Any]:
    """The request fields every stream of the phase shares (the page adds seed, stream)."""
    d = stream_params(spec, 0, "x").to_dict()
    del d["seed"], d["stream"]
    return d


def stream_account(
    rec: dict[str, Any],
    labels: PhaseLabels,
    spec: StreamSpec,
    clock: ClockMap,
    users_target: Callable[[int | None], int | None],
    *,
    sees_framing: bool = True,
) -> StreamAccount:
    """Replay one page stream record into a StreamAccount (times on the harness clock).
    `sees_framing` False (EventSource): the page's byte count is the events' data alone,
    so the stream's application bytes are recorded as not measured."""
    user, session, turn, k = (int(rec[f]) for f in ("user", "session", "turn", "k"))
    ids = labels.user_ids(user)
    t_send = _ns(clock, rec["t_send"])
    stream_labels, _ = stream_request(
        ids, spec, session, turn, k, users_target(t_send), tokens=int(rec["n_tokens"])
    )
    if rec["id"] != stream_labels.stream_id or int(rec["seed"]) != stream_labels.seed:
        raise RecordError(
            f"page stream {rec['id']!r} (seed {rec['seed']}) is not "
            f"{stream_labels.stream_id!r} (seed {stream_labels.seed})"
        )
    if rec["outcome"] not in OUTCOMES:
        raise RecordError(f"page stream {rec['id']}: unknown outcome {rec['outcome']!r}")
    acct = StreamAccount(stream_labels, t_sched_ns=_ns(clock, rec["t_sched"]))
    if t_send is not None:
        acct.sent(t_send)
    if rec["t_open"] is not None:
        acct.opened(
            clock.to_harness_ns(rec["t_open"]),
            rec["conn"],
            reused=rec["reused"],
            status=rec["status"],
        )
    elif rec["status"] is not None:
        acct.status = rec["status"]
    flat = rec["tokens"]
    for j in range(0, len(flat), 2):
        payload: str = flat[j + 1]
        tok = json.loads(payload)
        acct.token(
            int(tok["i"]),
            clock.to_harness_ns(flat[j]),
            int(tok["t"]) if "t" in tok else None,
            len(payload.encode("utf-8")),
            tok["d"],
        )
    for t in rec["drops"]:
        acct.dropped(clock.to_harness_ns(t))
    for _ in range(int(rec["reconnects"])):
        acct.reconnected(0)  # only counted: the gap is derived from drops and tokens
    if sees_framing:
        acct.add_bytes(int(rec["bytes_in"]))
    else:
        acct.bytes_in = None
    done = rec["done"]
    if done is not None:
        acct.done(int(done["count"]), str(done["sha256"]))
    acct.finish(clock.to_harness_ns(rec["t_end"]), rec["outcome"], rec["error"])
    return acct


def connection_account(
    rec: dict[str, Any], labels: PhaseLabels, clock: ClockMap, *, sees_framing: bool = True
) -> ConnectionAccount:
    """Replay one page connection record (a WebSocket, or one HTTP request of an SSE
    client) into a ConnectionAccount (bytes received not measured when the page does not
    see the framing)."""
    events = rec["events"]
    if not events or events[0][0] != "connect":
        raise RecordError(f"connection {rec.get('uid')!r} does not start with connect")
    acct = ConnectionAccount(
        ConnectionLabels(
            rec["uid"],
            labels.phase,
            labels.arm,
            labels.worker,
            int(rec["user"]),
            labels.scenario,
            labels.variant,
            labels.rep,
        ),
        clock.to_harness_ns(events[0][1]),
    )
    for ev in events[1:]:
        kind, t = ev[0], clock.to_harness_ns(ev[1])
        if kind == "open":
            acct.opened(t)
        elif kind == "start":
            acct.stream_started(t)
        elif kind == "end":
            acct.stream_ended(t)
        elif kind == "close":
            acct.close(t, ev[2], ev[3], ev[4])
        else:
            raise RecordError(f"connection {rec['uid']!r}: unknown event {kind!r}")
    acct.bytes_in = int(rec["bytes_in"]) if sees_framing else None
    acct.bytes_out = int(rec["bytes_out"])
    return acct
