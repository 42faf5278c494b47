"""Network profiles: every shipped one loads and cites its numbers; bad ones fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faultproxy.profile import (
    ProfileError,
    available_profiles,
    check_sources,
    load_profile,
    merge_overrides,
    parse_profile,
)

REQUIRED = {"loopback", "wifi", "4g", "3g", "lossy", "tunnel", "handover"}
SOURCE = {"fields": ["down.latency_ms"], "figure": "x", "assumption": "y"}


def test_the_required_profiles_ship_and_load() -> None:
    names = set(available_profiles())
    assert names >= REQUIRED
    for name in names:
        p = load_profile(name)
        assert p.name == name
        assert p.description
    assert not load_profile("loopback").proxy
    assert load_profile("passthrough").faults_off
    assert load_profile("tunnel").blackholes is not None
    assert load_profile("handover").handover is not None
    assert load_profile("lossy").down.loss > 0


def test_every_shipped_number_is_cited_by_a_url_or_an_assumption() -> None:
    for name in available_profiles():
        p = load_profile(name)
        for s in p.sources:
            assert s.url or s.assumption, (name, s)
            assert s.figure.strip()
        if not p.faults_off:
            assert p.sources, name


def test_extends_takes_the_base_link_and_sources() -> None:
    base, tunnel = load_profile("4g"), load_profile("tunnel")
    assert tunnel.down == base.down and tunnel.up == base.up
    assert tunnel.description != base.description
    assert set(base.sources) <= set(tunnel.sources)


def test_extends_loop_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(f'extends = "{tmp_path / "b.toml"}"\n')
    (tmp_path / "b.toml").write_text(f'extends = "{tmp_path / "a.toml"}"\n')
    with pytest.raises(ProfileError, match="circular"):
        load_profile(tmp_path / "a.toml")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"down": {"latncy_ms": 5}}, r"profile\.down: unknown key 'latncy_ms'"),
        ({"down": {"latency_ms": -1}}, r"down\.latency_ms: -1 is out of range"),
        ({"down": {"loss": 0.9}}, r"down\.loss: 0\.9 is out of range"),
        ({"down": {"latency_ms": "fast"}}, r"expected a number"),
        ({"down": {"jitter_dist": "pareto"}}, r"not one of normal, uniform, exponential"),
        ({"tcp": {"mss_bytes": 1000.5}}, r"whole number"),
        ({"blackholes": {"duration_s": [5, 3]}}, r"lo > hi"),
        ({"blackholes": {"duration_s": [1, 2, 3]}}, r"a range is \[lo, hi\]"),
        ({"cuts": [{"share": 0.5}]}, r"needs after_s, after_s_mean or after_bytes"),
        ({"cuts": [{"after_s": 1, "after_s_mean": 2}]}, r"not both"),
        ({"cuts": [{"after_s": 1, "how": "slam"}]}, r"not one of fin, rst, silent"),
        ({"handover": {"new_connections": "maybe"}}, r"not one of refuse, hold"),
        ({"proxy": False, "down": {"latency_ms": 5}}, r"cannot inject faults"),
        ({"speed": 1}, r"unknown key\(s\) speed"),
    ],
)
def test_invalid_tables_name_the_key(table: dict, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_profile({"name": "t", **table})


def test_sources_must_cover_what_the_file_sets() -> None:
    table = {"name": "t", "down": {"latency_ms": 5, "loss": 0.01}, "sources": [SOURCE]}
    with pytest.raises(ProfileError, match=r"no \[\[sources\]\] entry cites down\.loss"):
        check_sources(table)
    whole_section = {**SOURCE, "fields": ["down"]}
    check_sources({**table, "sources": [whole_section]})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"fields": [], "figure": "x", "url": "u"}, "non-empty list"),
        ({"fields": ["down.loss"], "figure": "", "url": "u"}, "figure"),
        ({"fields": ["down.loss"], "figure": "x"}, "url .* or an assumption"),
        ({**SOURCE, "doi": "10.1/x"}, "unknown key"),
    ],
)
def test_bad_sources_are_refused(source: dict, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_profile({"name": "t", "sources": [source]})


def test_overrides_merge_and_are_validated() -> None:
    p = load_profile("4g", {"down.latency_ms": 80, "tcp": {"rto_ms": 300}})
    assert p.down.latency_ms == 80 and p.down.loss == load_profile("4g").down.loss
    assert p.tcp.rto_ms == 300
    with pytest.raises(ProfileError, match=r"4g\.toml \+ overrides\.down\.loss"):
        load_profile("4g", {"down.loss": 2})


def test_merge_overrides_spells_dotted_keys_as_tables() -> None:
    out = merge_overrides({"down": {"a": 1, "b": 2}}, {"down.b": 3, "up": {"c": 4}})
    assert out == {"down": {"a": 1, "b": 3}, "up": {"c": 4}}


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ProfileError, match=r"known: .*4g"):
        load_profile("5g-mmwave")


def test_a_cut_how_sets_both_sides() -> None:
    p = parse_profile({"name": "t", "cuts": [{"after_bytes": 10, "how": "rst"}]})
    assert (p.cuts[0].client, p.cuts[0].server) == ("rst", "rst")
    p = parse_profile({"name": "t", "cuts": [{"after_s": 1, "how": "rst", "server": "silent"}]})
    assert (p.cuts[0].client, p.cuts[0].server) == ("rst", "silent")
    assert p.cuts[0].after_s == (1.0, 1.0)
