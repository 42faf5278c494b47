"""Phase names: how a phase is named, and how its scenario and repetition are read back.

A phase is one (scenario [variant], arm, repetition) of a run, named
``<scenario>[.<variant>]/<arm>/r<rep>`` (older runs: ``rep<k>``). The orchestrator names
phases with `phase_name`; analysis reads the scenario group and the repetition with
`scenario_of` and `rep_of` — the one place a phase name is parsed (records that carry
scenario and rep as columns need no parsing at all).
"""

from __future__ import annotations

import re
from typing import Any

_REP_RE = re.compile(r"(?:^|[/_.-])(?:rep|r)(\d+)$")


def phase_name(group: str, arm: str, rep: int) -> str:
    """``<group>/<arm>/r<rep>``; `group` is the scenario, or ``<scenario>.<variant>``."""
    return f"{group}/{arm}/r{rep}"


def scenario_of(phase: Any) -> str | None:
    """The scenario group: the first segment (``chat/sse/r1`` → ``chat``,
    ``proxy-idle.idle-hb/ws/r1`` → ``proxy-idle.idle-hb``); None for no name."""
    return phase.split("/", 1)[0] if isinstance(phase, str) and phase else None


def rep_of(phase: Any) -> int | None:
    """The repetition (``chat/sse/rep2`` → 2, ``chat/ws/r1`` → 1); None if the name has none."""
    if not isinstance(phase, str):
        return None
    m = _REP_RE.search(phase)
    return int(m.group(1)) if m else None
