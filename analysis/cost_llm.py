"""Transport cost as a share of the LLM token bill for the same traffic.

LLM token prices live in ``analysis/pricing/llm/*.toml`` (one file per provider, each
model with ``usd_per_million_input_tokens``, ``usd_per_million_output_tokens``,
``verified``, ``read_on``, ``note``; validated like the transport catalogue). For a month
of a profile: output tokens = tokens delivered, input tokens = prompt tokens × questions.
A chat app that resends the conversation with each question pays more input tokens than
that, so the shares shown are upper bounds of the transport's share.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.cost_pricing import PRICING_DIR, PricingError, check_value, parse_date
from analysis.cost_usage import Profile, Usage

LLM_DIR = PRICING_DIR / "llm"
_MODEL_KEYS = {
    "name",
    "usd_per_million_input_tokens",
    "usd_per_million_output_tokens",
    "verified",
    "read_on",
    "note",
}

LLM_SHARE_CAPTION = (
    "What streaming the tokens costs next to what generating them costs: per pairing and "
    "model, the transport's monthly bill as a share of the LLM token bill for the same "
    "answers (output tokens delivered, input = prompt tokens per question; resending the "
    "conversation makes the token bill larger, so these shares are upper bounds)."
)


@dataclass(frozen=True)
class LlmPrice:
    provider: str
    model: str
    usd_per_million_input: float
    usd_per_million_output: float
    verified: bool
    read_on: dt.date
    source: str
    note: str = ""


def load_llm_prices(folder: str | Path = LLM_DIR) -> list[LlmPrice]:
    """Every model of every ``*.toml`` in ``folder`` (validated; PricingError names the file)."""
    out = []
    for path in sorted(Path(folder).glob("*.toml")):
        origin = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise PricingError(f"{origin}: not valid TOML: {exc}") from exc
        for key in ("provider", "source", "models"):
            if key not in data:
                raise PricingError(f"{origin}: missing field {key}")
        for m in data["models"]:
            extra = set(m) - _MODEL_KEYS
            if extra or _MODEL_KEYS - {"note"} - set(m):
                raise PricingError(
                    f"{origin}: a model needs {sorted(_MODEL_KEYS)}, got {sorted(m)}"
                )
            for k in ("usd_per_million_input_tokens", "usd_per_million_output_tokens"):
                check_value(origin, "models", k, m[k])
            if not isinstance(m["verified"], bool):
                raise PricingError(f"{origin}: {m['name']}: verified must be true or false")
            out.append(
                LlmPrice(
                    provider=data["provider"],
                    model=m["name"],
                    usd_per_million_input=float(m["usd_per_million_input_tokens"]),
                    usd_per_million_output=float(m["usd_per_million_output_tokens"]),
                    verified=m["verified"],
                    read_on=parse_date(origin, "read_on", m["read_on"]),
                    source=data["source"],
                    note=m.get("note", ""),
                )
            )
    return out


def llm_usd(price: LlmPrice, input_tokens: float, output_tokens: float) -> float:
    return (
        input_tokens * price.usd_per_million_input + output_tokens * price.usd_per_million_output
    ) / 1e6


def llm_share(
    profile: Profile,
    usages: Mapping[str, Usage],
    ratios: pd.DataFrame,
    prices: list[LlmPrice] | None = None,
) -> pd.DataFrame:
    """Per pairing × model: token bill, SSE and WS transport bills, and their shares."""
    prices = load_llm_prices() if prices is None else prices
    if ratios is None or ratios.empty or not usages:
        return pd.DataFrame()
    u = usages.get("sse") or next(iter(usages.values()))
    output = u.tokens_delivered
    inputs = profile.prompt_tokens * profile.turns_per_session * profile.sessions_per_month
    rows: list[dict[str, Any]] = []
    for price in prices:
        bill = llm_usd(price, inputs, output)
        for r in ratios.itertuples():
            rows.append(
                {
                    "pair": r.pair,
                    "model": f"{price.provider} {price.model}",
                    "price_verified": price.verified,
                    "llm_usd": bill,
                    "sse_usd": r.sse_usd,
                    "ws_usd": r.ws_usd,
                    "sse_share": r.sse_usd / bill if bill else float("nan"),
                    "ws_share": r.ws_usd / bill if bill else float("nan"),
                }
            )
    return pd.DataFrame(rows)
