"""Claim C2 in bands, side by side with the article, and the inverse (usage → $4,100)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from analysis import cost as K
from analysis import cost_c2 as C2
from analysis.cost_article import c2_inverse, c2_table, solve_increasing


@pytest.mark.parametrize(
    ("ratio", "band"),
    [
        (0.5, C2.REVERSED),
        (0.79, C2.REVERSED),
        (0.8, C2.ABOUT_EQUAL),
        (1.25, C2.ABOUT_EQUAL),
        (1.26, C2.WELL_BELOW),
        (3.99, C2.WELL_BELOW),
        (4.0, C2.CLOSE),
        (6.03, C2.CLOSE),
        (9.0, C2.CLOSE),
        (9.01, C2.FAR_ABOVE),
        (26.0, C2.FAR_ABOVE),
        (math.nan, "n/a"),
    ],
)
def test_band_edges(ratio, band):
    assert C2.band(ratio) == band


def test_article_figures_and_symmetric_close_band():
    assert pytest.approx(4100 / 680) == C2.ARTICLE_RATIO
    # the close band is a factor 1.5 either side of 6 (symmetric on a log scale)
    assert C2.CLOSE_TO / 6 == pytest.approx(6 / C2.CLOSE_FROM) == pytest.approx(1.5)
    assert pytest.approx(1 / C2.REVERSED_BELOW) == C2.EQUAL_UP_TO


def test_verdict_only_counts_connection_priced_pairings():
    rows = [
        {
            "pair": "api",
            "ws_over_sse": 5.0,
            "sse_usd": 20,
            "ws_usd": 100,
            "driver": "m",
            "connection_priced": True,
        },
        {
            "pair": "workers",
            "ws_over_sse": 1.0,
            "sse_usd": 5,
            "ws_usd": 5,
            "driver": "",
            "connection_priced": False,
        },
    ]
    v = C2.c2_verdict(rows)
    assert v["status"] == "holds"
    # ours next to the article's, per pairing
    assert v["numbers"]["api"] == (
        "SSE $20.00 → WS $100.00 = 5.00× (close to 6×; driver m) — article $680 → $4,100 = 6.03×"
    )


def test_c2_table_puts_the_article_beside_ours():
    ratios = pd.DataFrame(
        [
            {
                "pair": "x",
                "connection_priced": True,
                "sse_usd": 10.0,
                "ws_usd": 120.0,
                "ws_over_sse": 12.0,
                "driver": "d",
            },
        ]
    )
    t = c2_table(ratios).iloc[0]
    assert t["band"] == C2.FAR_ABOVE
    assert (t["article_sse_usd"], t["article_ws_usd"]) == (680.0, 4100.0)
    assert t["ours_over_article"] == pytest.approx(12.0 / (4100 / 680))


def test_solve_increasing():
    assert solve_increasing(lambda x: 2 * x, 4100, 1, 1e9) == pytest.approx(2050, rel=1e-9)
    assert math.isnan(solve_increasing(lambda x: 2 * x, 4100, 1e4, 1e9))  # not bracketed


TOY = """
platform = "toy-{arm}"
billing_basis = "messages_connection_minutes"
source = "test"
read_on = 2026-11-30
serves = ["{arm}"]
[pairing]
sse = "toy-sse"
ws = "toy-ws"
[prices]
usd_per_million_messages = 0.0
usd_per_million_connection_minutes = {rate}
[provenance]
usd_per_million_messages = {{ verified = true, read_on = 2026-11-30 }}
usd_per_million_connection_minutes = {{ verified = true, read_on = 2026-11-30 }}
"""


def test_inverse_finds_the_mau_that_reproduces_the_article(tmp_path: Path):
    # a toy pairing billed only per connection-minute at $1/M: the bill is linear in MAU,
    # so the MAU for $4,100 is 4,100 ÷ (the bill at 1 MAU)
    (tmp_path / "toy-sse.toml").write_text(TOY.format(arm="sse", rate=1.0))
    (tmp_path / "toy-ws.toml").write_text(TOY.format(arm="ws", rate=1.0))
    sel = K.Selection.of(K.load_catalogue(tmp_path))
    prof = K.load_profile("support-assistant-10k")
    one = K.pair_costs(K.usages_from_profile(prof.with_mau(1)), sel)[("toy-sse", "toy-ws")]
    inv = c2_inverse(prof, sel).iloc[0]
    assert inv["mau_for_ws_4100"] == pytest.approx(4100 / one[1], rel=1e-6)
    assert inv["mau_for_sse_680"] == pytest.approx(680 / one[0], rel=1e-6)
    assert inv["ratio_at_ws_4100"] == pytest.approx(one[1] / one[0], rel=1e-6)
    # the toy's ratio does not depend on tokens per frame: no value gives 6.03×
    assert math.isnan(inv["tokens_per_frame_for_6x"])
