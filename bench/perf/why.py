"""perf.md's "Why the misses": for every missed target, the profile of the same run.

A throughput miss shows where our server's CPU went next to where the reference's went
(py-spy during the flood window at the ratio's N) and the per-token cost gap; a client
miss (ceiling, end-to-end delivery) shows where the load client's CPU went during the
end-to-end run. The advice comes from `profile.REMEDIES`, keyed by the bucket with the
largest measured share that has one; without a profile the section says why not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.perf.profile import REMEDIES

__all__ = ["why_section"]


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _buckets(profile: Mapping[str, Any] | None, top: int = 5) -> str:
    if not profile:
        return "not profiled"
    if profile.get("error"):
        return f"not profiled: {profile['error']}"
    shares = list((profile.get("buckets") or {}).items())[:top]
    if not shares:
        return "not profiled: no samples"
    body = ", ".join(f"{k} {_pct(v)}" for k, v in shares)
    return f"{body} ({profile.get('samples', 0)} samples)"


def _remedy(profile: Mapping[str, Any] | None) -> str | None:
    for bucket, share in (profile or {}).get("buckets", {}).items():
        if bucket in REMEDIES:
            return f"{bucket} ({_pct(share)}): {REMEDIES[bucket]}"
    return None


def _flood_row(perf: Mapping[str, Any], server: str) -> Mapping[str, Any] | None:
    rows = [
        r for r in perf.get("throughput", []) if r.get("server") == server and r["mode"] == "flood"
    ]
    return max(rows, key=lambda r: r["n"]) if rows else None


def _us(v: Any) -> str:
    return f"{v:.1f}" if isinstance(v, int | float) else "—"


def _throughput_why(perf: Mapping[str, Any], r: Mapping[str, Any], label: Any) -> list[str]:
    ours, ref = _flood_row(perf, r["ours"]), _flood_row(perf, r["ref"])
    if ours is None or ref is None:
        return ["  - no flood rows for this pair"]
    out = [
        f"  - server CPU per token: {label(r['ours'])} {_us(ours.get('server_us_per_token'))} µs,"
        f" {label(r['ref'])} {_us(ref.get('server_us_per_token'))} µs",
        f"  - {label(r['ours'])} CPU by bucket: {_buckets(ours.get('profile'))}",
        f"  - {label(r['ref'])} CPU by bucket: {_buckets(ref.get('profile'))}",
    ]
    remedy = _remedy(ours.get("profile"))
    if remedy:
        out.append(f"  - what would cut it: {remedy}")
    return out


def _client_why(perf: Mapping[str, Any], r: Mapping[str, Any]) -> list[str]:
    e2e = next((e for e in perf.get("e2e", []) if e.get("proto") == r["ours"]), None)
    if e2e is None:
        return ["  - no end-to-end run to profile the client in"]
    prof = e2e.get("client_profile")
    out = [
        f"  - load client during the e2e run ({e2e.get('users')} streams x 50 tok/s, "
        f"{e2e.get('processes')} process(es)): {_us(e2e.get('client_cpu_us_per_token'))} µs CPU "
        f"per token, {e2e.get('client_cpu_pct', 0) or 0:.0f}% CPU",
        f"  - client CPU by bucket (one process): {_buckets(prof)}",
    ]
    top = (prof or {}).get("top") or []
    if top:
        out.append("  - top functions: " + ", ".join(f"{f} {_pct(s)}" for f, s in top[:4]))
    cost = next((c for c in perf.get("client", []) if c.get("proto") == r["ours"]), None)
    if cost is not None:
        out.append(
            f"  - client CPU per token {_us(cost.get('client_us_per_token'))} µs and per stream "
            f"{_us(cost.get('client_us_per_stream'))} µs (server "
            f"{_us(cost.get('server_us_per_token'))} / {_us(cost.get('server_us_per_stream'))}"
            " µs); by bucket on long streams: " + _buckets(cost.get("client_profile"))
        )
    remedy = _remedy(prof)
    if remedy:
        out.append(f"  - what would cut it: {remedy}")
    return out


def _hold_why(perf: Mapping[str, Any], r: Mapping[str, Any]) -> list[str]:
    h = next((x for x in perf.get("hold", []) if x.get("proto") == r["ours"]), None)
    if h is None:
        return ["  - no hold run"]
    return [
        f"  - outcomes {h.get('outcomes')}, connections {h.get('connections')}, errors "
        f"{(h.get('errors') or [])[:2]}; client RSS {_us(h.get('client_rss_mib_held'))} MiB "
        f"held (memory and descriptors, not CPU: no profile)"
    ]


def why_section(perf: Mapping[str, Any], label: Any) -> list[str]:
    """Markdown lines (empty when no target is missed). `label(server)` names a server."""
    misses = [r for r in perf.get("ratios", []) if r.get("pass") is False]
    if not misses:
        return []
    out = [
        "",
        "## Why the misses",
        "",
        "Profiles from this run (py-spy, shares of CPU samples by the file of the frame on "
        "the CPU; `profiles/` has the raw stacks).",
        "",
    ]
    for r in misses:
        out.append(f"- **{r['name']}**: {r['value']:.4g} (target {r['op']} {r['target']:g})")
        if r.get("kind") == "throughput":
            out += _throughput_why(perf, r, label)
        elif r.get("kind") in ("ceiling", "e2e"):
            out += _client_why(perf, r)
        elif r.get("kind") == "hold":
            out += _hold_why(perf, r)
        else:
            out.append("  - memory, not CPU: no profile")
    return out
