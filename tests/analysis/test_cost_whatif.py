"""What-ifs and precedence: what-if > profile > measured calibration > model default."""

from __future__ import annotations

from dataclasses import replace

import pytest

from analysis import cost as K
from analysis.cost_usage import Calibration, session_usage_from_profile
from analysis.cost_whatif import (
    WhatIfError,
    apply_to_catalogue,
    apply_to_profile,
    parse_what_ifs,
)

PROFILE = K.load_profile("support-assistant-10k")


@pytest.fixture(scope="module")
def sel():
    return K.Selection.of(K.load_catalogue())


def test_measured_framing_never_overrides_the_profile():
    # a run that framed 1 token per message (messages_per_token = 1) and a profile that
    # batches 4 tokens per frame: the profile wins, bytes follow the run's overhead
    run = Calibration(message_overhead_bytes=50.0, messages_per_token=1.0)
    p4 = replace(PROFILE, tokens_per_message=4.0, cancel_share=0.0)
    u = session_usage_from_profile(p4, "ws", run)
    turns, n = PROFILE.turns_per_session, PROFILE.tokens_per_answer
    assert u.ws_messages_out == turns * (n / 4 + 1)  # 450 frames + done per answer
    data = next(b for c, b in u.out_message_sizes if c == turns * n / 4)
    assert data == pytest.approx(50.0 + 4 * 4.0)  # overhead + 4 tokens × 4 chars


def test_what_if_beats_the_profile_and_validates(sel):
    what = parse_what_ifs(["tokens_per_message=2", "think_s=30", "mau=20000"])
    p = apply_to_profile(PROFILE, what)
    assert p.tokens_per_message == 2 and p.think_time_s == 30 and p.monthly_active_users == 2e4
    assert p.linger_s == pytest.approx(PROFILE.linger_s)  # think_s keeps the linger
    assert "tokens_per_message=2" in p.name
    with pytest.raises(WhatIfError, match=r"unknown what-if 'vibes'; known: mau, "):
        parse_what_ifs(["vibes=3"])
    with pytest.raises(WhatIfError, match="not a number"):
        parse_what_ifs(["think_s=long"])
    with pytest.raises(WhatIfError, match="must be a finite number >= 0"):
        parse_what_ifs(["think_s=-1"])
    with pytest.raises(WhatIfError, match="KEY=VALUE"):
        parse_what_ifs(["think_s"])
    with pytest.raises(WhatIfError, match="tokens_per_message must be > 0"):
        apply_to_profile(PROFILE, parse_what_ifs(["tokens_per_message=0"]))
    with pytest.raises(WhatIfError, match="one of per_answer, per_tab"):
        parse_what_ifs(["sse_connection=sometimes"])


def test_price_what_ifs(sel):
    cat = apply_to_catalogue(sel.catalogue, parse_what_ifs(["aws-lambda.memory_gb=1"]))
    assert cat["aws-lambda"].prices["memory_gb"] == 1.0
    mem = apply_to_catalogue(sel.catalogue, parse_what_ifs(["function_memory_mb=1024"]))
    assert mem["aws-lambda"].prices["memory_gb"] == 1.0
    assert mem["cloudflare-workers"] == sel.catalogue["cloudflare-workers"]
    for bad, msg in [
        ("nope.memory_gb=1", "unknown platform"),
        ("aws-lambda.vibes=1", "not a price of aws-lambda"),
        ("aws-lambda.memory_gb=-1", "is negative"),
        ("aws-lambda.memory_gb=nan", "is NaN"),
    ]:
        with pytest.raises(WhatIfError, match=msg):
            apply_to_catalogue(sel.catalogue, parse_what_ifs([bad]))


def test_batching_tokens_per_frame_is_the_api_gateway_lever(sel):
    # API Gateway bills every frame: WS/SSE falls as tokens per frame rise; Durable
    # Objects (no hibernation) bill connection time and do not care
    ratios = {}
    for k in (1, 2, 5):
        p = replace(PROFILE, tokens_per_message=float(k), cancel_share=0.0)
        r = K.ratio_table(K.cost_table(K.usages_from_profile(p), sel, p), sel).set_index("pair")
        ratios[k] = r["ws_over_sse"]
    api = "aws-lambda (SSE) vs aws-apigw-websocket (WS)"
    # 12.0× at 1 token per frame, 6.8× at 2, 3.4× at 5 (model defaults, default profile
    # without cancels: the figures of issue 13)
    assert [ratios[k][api] for k in (1, 2, 5)] == pytest.approx([12.0, 6.8, 3.4], rel=0.02)
    do = "cloudflare-durable-objects"
    assert ratios[1][do] == pytest.approx(ratios[5][do], rel=1e-6)
