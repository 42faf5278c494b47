"""What-ifs: change one usage assumption or one price and see every bill move.

``ssevsws cost RUN --set tokens_per_message=4 --set think_s=30 --set aws-lambda.memory_gb=1``
and the report's sensitivity chart both go through :func:`parse_what_ifs` and
:func:`apply_what_ifs`. A what-if has the highest precedence (what-if > profile file >
measured calibration > model defaults, see :mod:`analysis.cost_usage`). Keys:

* profile keys (:data:`PROFILE_KEYS`), e.g. ``mau``, ``think_s``, ``tab_open_s``,
  ``tokens_per_message`` (tokens per SSE event / WS frame), ``sse_connection=per_tab``;
* ``function_memory_mb``: the memory of every duration-billed function (Lambda);
* ``PLATFORM.PRICE_KEY``: any ``[prices]`` key of a pricing file, validated like the file.

Unknown keys and bad values raise :class:`WhatIfError` naming the known keys.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from analysis.cost_pricing import Pricing, PricingError
from analysis.cost_usage import SSE_CONNECTIONS, Profile, ProfileError


class WhatIfError(ValueError):
    """A what-if key or value is not usable (the message lists what is)."""


#: what-if name → (Profile field, help). ``think_s`` keeps the linger after the last
#: answer (Profile.with_think_time) unless ``tab_open_s`` is set too.
PROFILE_KEYS: dict[str, tuple[str, str]] = {
    "mau": ("monthly_active_users", "monthly active users"),
    "sessions_per_user": ("sessions_per_user_per_month", "sessions per user per month"),
    "turns": ("turns_per_session", "answers per session"),
    "tokens_per_answer": ("tokens_per_answer", "tokens per answer"),
    "prompt_tokens": ("prompt_tokens", "prompt tokens per question"),
    "tokens_per_message": ("tokens_per_message", "tokens per SSE event / WS frame"),
    "think_s": ("think_time_s", "seconds between an answer and the next question"),
    "tab_open_s": ("tab_open_s", "seconds a tab stays open per session"),
    "tokens_per_s": ("tokens_per_s", "generation rate"),
    "ttft_s": ("ttft_s", "time to first token"),
    "sse_heartbeat_s": ("sse_heartbeat_s", "SSE keepalive comment interval (0 = none)"),
    "ws_heartbeat_s": ("ws_heartbeat_s", "WS app heartbeat interval (0 = none)"),
    "sse_connection": ("sse_connection", "per_answer | per_tab (one EventSource per tab)"),
    "cancel_share": ("cancel_share", "share of answers the user stops"),
    "cancel_at_fraction": ("cancel_at_fraction", "share of a stopped answer delivered"),
    "peak_factor": ("peak_factor", "peak minute ÷ busiest-hour average"),
}
MEMORY_KEY = "function_memory_mb"


@dataclass(frozen=True)
class WhatIfs:
    """Parsed what-ifs: profile field changes and price changes per platform."""

    profile: Mapping[str, Any] = field(default_factory=dict)
    prices: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    function_memory_gb: float | None = None
    text: tuple[str, ...] = ()  # as given, for tables and captions

    def __bool__(self) -> bool:
        return bool(self.profile or self.prices or self.function_memory_gb)


def known_keys() -> list[str]:
    return [*PROFILE_KEYS, MEMORY_KEY, "PLATFORM.PRICE_KEY"]


def _number(key: str, raw: str) -> float:
    try:
        v = float(raw)
    except ValueError:
        raise WhatIfError(f"--set {key}={raw}: not a number") from None
    if not math.isfinite(v) or v < 0:
        raise WhatIfError(f"--set {key}={raw}: must be a finite number >= 0")
    return v


def _price_value(key: str, raw: str) -> Any:
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    try:
        return float(raw)
    except ValueError:
        raise WhatIfError(f"--set {key}={raw}: not a number (or true/false)") from None


def parse_what_ifs(items: Iterable[str]) -> WhatIfs:
    """``["think_s=30", "aws-lambda.memory_gb=1", …]`` → :class:`WhatIfs` (validated keys)."""
    profile: dict[str, Any] = {}
    prices: dict[str, dict[str, Any]] = {}
    memory: float | None = None
    text = []
    for item in items:
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key or not raw:
            raise WhatIfError(f"--set expects KEY=VALUE, got {item!r}")
        text.append(f"{key}={raw}")
        if key in PROFILE_KEYS:
            name = PROFILE_KEYS[key][0]
            if name == "sse_connection":
                if raw not in SSE_CONNECTIONS:
                    raise WhatIfError(
                        f"--set sse_connection={raw}: one of {', '.join(SSE_CONNECTIONS)}"
                    )
                profile[name] = raw
            else:
                profile[name] = _number(key, raw)
        elif key == MEMORY_KEY:
            mb = _number(key, raw)
            if mb <= 0:
                raise WhatIfError(f"--set {key}={raw}: must be > 0")
            memory = mb / 1024.0
        elif "." in key:
            platform, _, price_key = key.partition(".")
            prices.setdefault(platform, {})[price_key] = _price_value(key, raw)
        else:
            raise WhatIfError(f"unknown what-if {key!r}; known: {', '.join(known_keys())}")
    return WhatIfs(profile, prices, memory, tuple(text))


def apply_to_profile(profile: Profile, what: WhatIfs) -> Profile:
    """The profile with the what-ifs applied (re-validated: a bad value raises)."""
    if not what.profile:
        return profile
    changes = dict(what.profile)
    think = changes.pop("think_time_s", None)
    try:
        out = replace(profile, **changes)
        if think is not None:
            out = (
                replace(out, think_time_s=think)
                if "tab_open_s" in changes
                else out.with_think_time(think)
            )
    except ProfileError as exc:
        raise WhatIfError(f"--set: {exc}") from None
    return replace(out, name=f"{profile.name} ({', '.join(what.text)})")


def apply_to_catalogue(catalogue: Mapping[str, Pricing], what: WhatIfs) -> dict[str, Pricing]:
    """The catalogue with price what-ifs applied (unknown platform or key → WhatIfError)."""
    out = dict(catalogue)
    for platform, changes in what.prices.items():
        if platform not in out:
            raise WhatIfError(
                f"--set {platform}.…: unknown platform; known: {', '.join(sorted(out))}"
            )
        p = out[platform]
        unknown = [k for k in changes if k not in p.prices]
        if unknown:
            raise WhatIfError(
                f"--set {platform}.{unknown[0]}: not a price of {platform}; "
                f"known: {', '.join(p.prices)}"
            )
        try:
            out[platform] = p.with_prices(**changes)
        except PricingError as exc:
            raise WhatIfError(str(exc)) from None
    if what.function_memory_gb is not None:
        for name, p in out.items():
            if p.billing_basis == "requests_duration":
                out[name] = p.with_prices(memory_gb=what.function_memory_gb)
    return out
