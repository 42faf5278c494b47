"""Bytes per token by payload format and transport: for runs that compare formats (an arm
whose format is not native) or measure TLS — what the same tokens cost on the wire in each
framing, with and without TLS records."""

from __future__ import annotations

from typing import TYPE_CHECKING

from analysis.sections.base import Section, Table
from analysis.tables import fmt, md_table
from core.arms import get_arm, is_known

if TYPE_CHECKING:  # pragma: no cover
    from analysis.report_data import Report

__all__ = ["WIRE"]


def _format(arm: str) -> str:
    return get_arm(arm).format if is_known(arm) else "?"


def _applies(rep: Report) -> bool:
    s = rep.summary
    formats = {_format(a) for b in s.scenarios.values() for a in b.arms}
    if not formats:
        return False
    return len(formats) > 1 or "native" not in formats or bool(s.groups("tls"))


def _table(rep: Report) -> str | None:
    rows = []
    for g, block in rep.summary.scenarios.items():
        for arm, a in block.arms.items():
            b = a.bytes
            if b is None:
                continue
            rows.append(
                [
                    g,
                    arm,
                    _format(arm),
                    get_arm(arm).protocol.upper() if is_known(arm) else "?",
                    "yes" if block.traits.tls else "no",
                    fmt(b.event_bytes_per_token, "{:.1f}"),
                    fmt(b.app_bytes_per_token, "{:.1f}"),
                    fmt(b.conn_bytes_per_token, "{:.1f}"),
                ]
            )
    if not rows:
        return None
    head = [
        "scenario", "arm", "format", "transport", "TLS", "token event B", "stream B/token",
        "on the connection B/token",
    ]  # fmt: skip
    note = (
        "\n\n*Token event: the bytes of one content event (payload and its SSE / WS framing "
        "as parsed); stream: everything the client parsed for its streams (events, done, "
        "heartbeats) ÷ tokens; on the connection: the bytes the sockets read (HTTP heads, "
        "the WS upgrade and, over TLS, the ciphertext with its record headers and "
        "handshakes) ÷ tokens.*"
    )
    return md_table(head, rows) + note


WIRE = Section(
    "wire",
    "Bytes per token by format and transport",
    _applies,
    "arms of more than one payload format (or a format other than native), or a TLS configuration",
    (Table("wire_bytes", _table),),
)
