"""Loading the pricing catalogue: validation errors, and prices that live only in data."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from analysis.cost import (
    PRICING_DIR,
    PricingError,
    Usage,
    cost_table,
    load_catalogue,
    load_pricing,
    price_warnings,
)
from analysis.cost_formulas import FORMULAS
from analysis.cost_pricing import REQUIRED_PRICES

MINIMAL = """
platform = "toy"
billing_basis = "requests_cpu"
source = "test"
read_on = 2026-11-23
serves = ["sse", "ws"]
[prices]
usd_per_million_requests = 1.0
usd_per_million_cpu_ms = 1.0
[provenance]
usd_per_million_requests = { verified = true, read_on = 2026-11-23 }
usd_per_million_cpu_ms = { verified = false, read_on = 2026-11-23, note = "from memory" }
"""


def test_formulas_and_file_format_name_the_same_bases():
    assert set(FORMULAS) == set(REQUIRED_PRICES)


def test_catalogue_loads_every_file_with_source_and_provenance():
    cat = load_catalogue()
    expected = {
        "aws-apigw-websocket",
        "aws-alb",
        "aws-lambda",
        "cloudflare-workers",
        "cloudflare-durable-objects",
        "cloudflare-durable-objects-hibernation",
        "ably",
        "azure-web-pubsub",
        "vm",
        "gcp-cloud-run",
    }
    assert expected <= set(cat)
    for p in cat.values():
        assert p.source.startswith("https://") and p.read_on >= dt.date(2026, 11, 30)
        assert p.billing_basis in REQUIRED_PRICES
        assert p.pairing["sse"] in cat and p.pairing["ws"] in cat
        # every number carries where it comes from and whether it was read on the page
        keys = [*p.prices, *(f"included.{k}" for k in p.included)]
        keys += [f"free_tier.{k}" for k in p.free_tier]
        assert sorted(p.provenance) == sorted(keys)
        for key, pv in p.provenance.items():
            assert pv.verified or pv.note, f"{p.platform}.{key}: unverified without a note"
            assert pv.source.startswith("https://")
        assert p.free_tier_term != "" and (p.free_tier_term == "none") == (not p.free_tier)
    assert cat["aws-apigw-websocket"].serves == ("ws",)
    assert cat["aws-lambda"].serves == ("sse",)


def test_minimal_file_loads(tmp_path: Path):
    f = tmp_path / "toy.toml"
    f.write_text(MINIMAL)
    p = load_pricing(f)
    assert p.platform == "toy" and p.pairing["sse"] == "toy"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.replace('source = "test"\n', ""), "missing field(s) source"),
        (lambda s: s.replace("read_on = 2026-11-23\n", ""), "missing field(s) read_on"),
        (lambda s: s.replace('"requests_cpu"', '"per_vibes"'), "unknown billing_basis 'per_vibes'"),
        (lambda s: s.replace("usd_per_million_cpu_ms = 1.0\n", ""), "needs [prices] usd_per_mill"),
        (lambda s: s.replace('["sse", "ws"]', '["grpc"]'), "serves must list"),
        (lambda s: 'colour = "blue"\n' + s, "unknown field(s) colour"),
        (lambda s: s.replace("read_on = 2026-11-23\n", 'read_on = "soon"\n', 1), "is not a date"),
        (
            lambda s: s.replace("= 1.0\nusd_per_million_cpu_ms", "= -5\nusd_per_million_cpu_ms"),
            "usd_per_million_requests = -5 is negative",
        ),
        (
            lambda s: s.replace("= 1.0\nusd_per_million_cpu_ms", "= nan\nusd_per_million_cpu_ms"),
            "usd_per_million_requests is NaN",
        ),
        (
            lambda s: s.replace("= 1.0\nusd_per_million_cpu_ms", "= inf\nusd_per_million_cpu_ms"),
            "is not finite",
        ),
        (
            lambda s: s.replace(
                "= 1.0\nusd_per_million_cpu_ms", '= "cheap"\nusd_per_million_cpu_ms'
            ),
            "usd_per_million_requests = 'cheap' is not a number",
        ),
        (
            lambda s: s.replace(
                "= 1.0\nusd_per_million_cpu_ms", "= [[1.0, -2]]\nusd_per_million_cpu_ms"
            ),
            "tiers must be",
        ),
        (lambda s: s.replace("[prices]", "[prices]\nhibernation = 3"), "must be true or false"),
        (lambda s: s.replace("[prices]", "[prices\n"), "not valid TOML"),
        (
            lambda s: "\n".join(
                ln for ln in s.splitlines() if not ln.startswith("usd_per_million_cpu_ms = {")
            ),
            "[provenance] has no entry for usd_per_million_cpu_ms",
        ),
        (lambda s: s.replace(', note = "from memory"', ""), "unverified values need a note"),
        (
            lambda s: s.replace("[prices]", "[free_tier]\nrequests = 5\n[prices]"),
            "free_tier_term must be one of",
        ),
    ],
)
def test_invalid_files_are_refused_with_a_clear_error(tmp_path: Path, edit, message):
    f = tmp_path / "toy.toml"
    f.write_text(edit(MINIMAL))
    with pytest.raises(PricingError) as exc:
        load_pricing(f)
    assert message in str(exc.value)
    assert "toy.toml" in str(exc.value)


def test_dangling_backend_refused(tmp_path: Path):
    (tmp_path / "toy.toml").write_text(MINIMAL.replace("[prices]", 'backend = "nope"\n[prices]'))
    with pytest.raises(PricingError, match="backend = 'nope' is not in the catalogue"):
        load_catalogue(tmp_path)


def test_changing_a_price_in_toml_changes_the_table(tmp_path: Path):
    shutil.copytree(PRICING_DIR, tmp_path / "pricing")
    folder = tmp_path / "pricing"
    u = {
        "ws": Usage(
            arm="ws",
            hours=730,
            ws_messages_out=10_000_000,
            ws_messages_in=0,
            connection_minutes_total=4_000_000,
            connections_opened=10_000,
            http_requests=10_000,
            peak_concurrent_connections=100,
        )
    }
    before = cost_table(u, str(folder), include_backend=False).set_index("platform")
    f = folder / "aws-apigw-websocket.toml"
    text = f.read_text()
    assert "usd_per_million_connection_minutes = 0.25" in text
    f.write_text(
        text.replace(
            "usd_per_million_connection_minutes = 0.25", "usd_per_million_connection_minutes = 0.75"
        )
    )
    after = cost_table(u, str(folder), include_backend=False).set_index("platform")
    # 4M connection-minutes: $0.25/M → $1.00 ; $0.75/M → $3.00 ; messages unchanged ($10)
    col = "usd:aws-apigw-websocket:connection_minutes"
    assert before.loc["aws-apigw-websocket", col] == pytest.approx(1.00)
    assert after.loc["aws-apigw-websocket", col] == pytest.approx(3.00)
    delta = (
        after.loc["aws-apigw-websocket", "monthly_usd"]
        - before.loc["aws-apigw-websocket", "monthly_usd"]
    )
    assert delta == pytest.approx(2.00)
    # every other platform unchanged
    others = before.index.drop("aws-apigw-websocket")
    assert (after.loc[others, "monthly_usd"] == before.loc[others, "monthly_usd"]).all()


def test_new_platform_is_one_file(tmp_path: Path):
    shutil.copytree(PRICING_DIR, tmp_path / "pricing")
    (tmp_path / "pricing" / "toy.toml").write_text(
        MINIMAL.replace('source = "test"', 'source = "https://example.test/pricing"')
    )
    u = {"sse": Usage(arm="sse", http_requests=2_000_000, server_cpu_seconds=3_000)}
    t = cost_table(u, str(tmp_path / "pricing")).set_index("platform")
    # 2M requests × $1/M + 3M CPU-ms × $1/M = $5.00
    assert t.loc["toy", "monthly_usd"] == pytest.approx(5.0)


def test_price_warnings_flag_old_and_unverified(tmp_path: Path):
    f = tmp_path / "toy.toml"
    f.write_text(MINIMAL)
    toy = {"toy": load_pricing(f)}
    fresh = price_warnings(toy, today=dt.date(2026, 12, 1))
    assert fresh == ["toy: not verified on the provider's page: usd_per_million_cpu_ms"]
    old = price_warnings(toy, today=dt.date(2027, 3, 1))  # 98 days after 2026-11-23
    assert any("98 days ago, more than 90" in w for w in old)
    # the shipped catalogue is fresh today (read 2026-11-30)
    assert not [w for w in price_warnings(load_catalogue(), dt.date(2026, 12, 1)) if "days" in w]


def test_what_if_price_is_validated_like_the_file():
    p = load_catalogue()["aws-lambda"]
    with pytest.raises(PricingError, match="negative"):
        p.with_prices(memory_gb=-1.0)
    with pytest.raises(PricingError, match="NaN"):
        p.with_prices(memory_gb=float("nan"))
