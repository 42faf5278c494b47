"""Tornado, bootstrap, LLM share and the report items built on them."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import cost as K
from analysis.cost_llm import LlmPrice, llm_share, llm_usd, load_llm_prices
from analysis.cost_pricing import PricingError
from analysis.cost_run import cost_inputs
from analysis.cost_sensitivity import (
    KNOBS,
    Factors,
    bootstrap_costs,
    bootstrap_factors,
    tornado_table,
)

PROFILE = K.load_profile("support-assistant-10k")
API = "aws-lambda (SSE) vs aws-apigw-websocket (WS)"


@pytest.fixture(scope="module")
def sel():
    return K.Selection.of(K.load_catalogue())


def test_tornado_moves_what_the_bill_depends_on(sel):
    t = tornado_table(PROFILE, sel).set_index(["pair", "knob"])
    assert set(t.index.get_level_values("knob")) == {k.name for k in KNOBS}
    # API Gateway bills frames: 10 tokens per frame cuts WS/SSE several-fold
    frames = t.loc[(API, "tokens per frame")]
    assert frames["ratio_high"] < frames["ratio_low"] / 4
    # Workers bill no wall clock: no knob of usage shape moves it off 1
    assert t.loc[("cloudflare-workers", "think time s"), "swing"] == pytest.approx(0, abs=1e-9)
    # Durable Objects without hibernation bill the tab: tab-open time swings the ratio
    assert t.loc[("cloudflare-durable-objects", "tab-open time s"), "swing"] > 0.5
    # one EventSource per tab makes SSE pay connection time on DO too: the ratio falls
    do_tab = t.loc[("cloudflare-durable-objects", "SSE connection")]
    assert do_tab["ratio_high"] < do_tab["ratio_low"] / 3
    # function memory only moves pairings with a duration-billed function
    mem = t.xs("function memory MB", level="knob")["swing"]
    assert mem[API] > 0.1 and mem["vm"] == pytest.approx(0, abs=1e-12)
    base = t.loc[(API, "tokens per frame"), "ratio_base"]
    assert base == pytest.approx(t.loc[(API, "monthly active users"), "ratio_base"])


def test_bootstrap_quantiles_follow_the_factors(sel):
    cals = {
        "sse": K.Calibration(message_overhead_bytes=70.0),
        "ws": K.Calibration(message_overhead_bytes=50.0),
    }
    ones = np.ones(51)
    fixed = Factors({"sse": ones, "ws": ones}, {"sse": ones, "ws": ones}, "none")
    still = bootstrap_costs(PROFILE, sel, cals, fixed)
    row = still[(still["pair"] == API) & (still["quantity"] == "WS/SSE")].iloc[0]
    assert row["p10"] == row["p50"] == row["p90"]  # nothing resampled, no spread
    # bytes per message ×0.5…×1.5 over replicates: egress moves, the bills spread
    spread = np.linspace(0.5, 1.5, 51)
    moving = Factors({"sse": spread, "ws": spread}, {"sse": ones, "ws": ones}, "bytes")
    boot = bootstrap_costs(PROFILE, sel, cals, moving)
    r = boot[(boot["pair"] == API) & (boot["quantity"] == "WS $/month")].iloc[0]
    assert r["p10"] < r["p50"] < r["p90"]


def test_bootstrap_factors_from_records_and_phases():
    streams = pd.DataFrame(
        {"arm": ["sse"] * 4, "bytes_in": [100, 200, 300, 400], "n_received": [1, 1, 1, 1]}
    )
    phases = [
        {"scenario": "chat", "arm": "sse", "cpu_s_per_1k_tokens": 0.1},
        {"scenario": "chat", "arm": "sse", "cpu_s_per_1k_tokens": 0.3},
        {"scenario": "cancel", "arm": "sse", "cpu_s_per_1k_tokens": 9.0},
    ]
    f = bootstrap_factors(["sse", "ws"], streams, phases, "chat", n_boot=400, seed=1)
    assert f.bytes["sse"].mean() == pytest.approx(1.0, abs=0.05)  # resampled ÷ full
    assert f.bytes["sse"].min() < 1 < f.bytes["sse"].max()
    assert set(np.round(f.cpu["sse"], 6)) <= {0.5, 1.0, 1.5}  # means of 2 of {0.1, 0.3} ÷ 0.2
    assert (f.bytes["ws"] == 1).all() and "ws: bytes fixed" in f.what


def test_llm_share_by_hand(tmp_path: Path):
    price = LlmPrice("P", "m", 1.0, 10.0, True, dt.date(2026, 11, 30), "https://x")
    usages = K.usages_from_profile(PROFILE)
    ratios = pd.DataFrame([{"pair": "x", "sse_usd": 10.0, "ws_usd": 60.0}])
    row = llm_share(PROFILE, usages, ratios, [price]).iloc[0]
    out = usages["sse"].tokens_delivered
    inp = PROFILE.prompt_tokens * PROFILE.turns_per_session * PROFILE.sessions_per_month
    assert row["llm_usd"] == pytest.approx((inp * 1.0 + out * 10.0) / 1e6)
    assert row["ws_share"] == pytest.approx(60.0 / llm_usd(price, inp, out))
    # the shipped LLM price files load, each model verified or saying why not
    assert all(p.verified or p.note for p in load_llm_prices())
    (tmp_path / "bad.toml").write_text(
        'provider = "p"\nsource = "s"\n[[models]]\nname = "m"\nverified = true\n'
        "read_on = 2026-11-30\nusd_per_million_input_tokens = -1\n"
        "usd_per_million_output_tokens = 1\n"
    )
    with pytest.raises(PricingError, match="is negative"):
        load_llm_prices(tmp_path)


def test_cost_inputs_from_summary_alone_matches_the_records(tmp_path: Path):
    """A run with only summary.json prices like the same run with its records."""
    from analysis.load import load_run
    from analysis.summary import summarize
    from tests.analysis.test_report_synth import make_run

    run = make_run(tmp_path)
    data = load_run(run)
    summary = summarize(data, n_boot=50)
    full = cost_inputs(data, summary)
    bare = cost_inputs(None, summary)
    assert full.source == "records" and bare.source == "summary"
    a = full.ratios.set_index("pair")["ws_over_sse"]
    b = bare.ratios.set_index("pair")["ws_over_sse"]
    # same profile, same prices: only bytes in per stream differ (model default)
    assert (b / a).between(0.9, 1.1).all()
    assert not math.isnan(a[API])
