"""Which load processes' delivery latency is a latency: the clock verdicts of a run.

Delivery latency (client receive − server stamp) needs the client's and the server's
monotonic clocks to be one. Each load process records its clock facts and offset estimates
against the server (``load_workers[<phase>].workers[<writer>].clock`` in the manifest,
written by Locust: loadtests.workers); the runner records the server's clock facts
(``phases[].server.clock``). `core.clocksync.delivery_verdict` decides; the tokens of a load
process it rules out are left out of delivery latency, which is then "not measured" for
that process (and for an arm when none is left), with the reason in the summary's flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analysis.manifest import Manifest
from core.clocksync import NOT_MEASURED, delivery_verdict

#: (phase, writer id "<host>-<pid>") → why its delivery latency is not measured
Exclusions = dict[tuple[str, str], str]


def delivery_exclusions(manifest: Manifest | Mapping[str, Any] | None) -> Exclusions:
    """The load processes whose clock cannot be compared with the server's."""
    if isinstance(manifest, Manifest):
        manifest = manifest.raw
    if not manifest:
        return {}
    server_clock = {
        str(p.get("name")): p["server"].get("clock")
        for p in manifest.get("phases") or []
        if isinstance(p, Mapping) and isinstance(p.get("server"), Mapping)
    }
    out: Exclusions = {}
    for phase, rec in (manifest.get("load_workers") or {}).items():
        for writer, worker in ((rec or {}).get("workers") or {}).items():
            verdict, why = delivery_verdict((worker or {}).get("clock"), server_clock.get(phase))
            if verdict == NOT_MEASURED:
                out[(str(phase), str(writer))] = why
    return out


def exclusion_flags(excluded: Exclusions) -> list[str]:
    return [
        f"{phase}: delivery latency of load process {writer} not measured: {why}"
        for (phase, writer), why in sorted(excluded.items())
    ]
