"""Everything a scenario can set is checked when it is loaded (issue 11, items 1 and 10):
a value the servers would refuse, a non-finite number, a whole-number field given 50.5 or
true — a ScenarioError naming the field, before any process starts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from core.scenario import (
    ScenarioError,
    load_scenario,
    scenario_from_dict,
    with_overrides,
)
from core.schedule import LIMITS

SEED_MAX = 2**62

BASE = 'name = "v"\n'

#: (TOML snippet, words the error must contain)
BAD_TOML = [
    ("[stream]\ntokens = 0", "stream.tokens"),
    ("[stream]\ntokens = 100001", "stream.tokens"),
    ("[stream]\ngap_ms = -5", "stream.gap_ms"),
    ("[stream]\nttft_ms = nan", "stream.ttft_ms"),
    ("[stream]\njitter = 1.5", "stream.jitter"),
    ("[stream]\ntokens = 10\npause_at = 10", "stream.pause_at"),
    ("[stream]\ndrop_after = -1", "stream.drop_after"),
    ("[stream]\ntokens = 2.5", "stream.tokens"),
    ("[load]\nduration_s = nan", "load.duration_s"),
    ("[load]\nduration_s = inf", "load.duration_s"),
    ("[load]\nusers = 50.5", "load.users"),
    ("[load]\nusers = true", "load.users"),
    ("[load]\nprocesses = true", "load.processes"),
    ("[load]\nspawn_rate = 0", "load.spawn_rate"),
    ("[load]\nspawn_rate = true", "load.spawn_rate"),
    ("[load]\nstop_timeout_s = -1", "load.stop_timeout_s"),
    ("[load]\nstep_s = 0\nramp_steps = [1, 2]", "load.step_s"),
    ("[load]\nramp_steps = [1, -2]", "load.ramp_steps"),
    ("[load]\nramp_steps = [1.5]", "load.ramp_steps"),
    ("[load]\nmode = 'open'\narrival_rate = inf", "load.arrival_rate"),
    ("[load]\nmax_error_share = 1.5", "load.max_error_share"),
    ("[session]\nthink_s = -1", "session.think_s"),
    ("[session]\nturns = 0", "session.turns"),
    ("[session]\nsessions_per_user = -1", "session.sessions_per_user"),
    ("[behaviour]\nstream_timeout_s = 0", "behaviour.stream_timeout_s"),
    ("[behaviour]\nmax_reconnects = -1", "behaviour.max_reconnects"),
    ("[behaviour]\ncancel_after = 1.5", "behaviour.cancel_after"),
    ("[behaviour]\nresume = 1", "behaviour.resume"),
    ("[server]\nheartbeat_s = -1", "server.heartbeat_s"),
    ("[server]\nheartbeat_s = inf", "server.heartbeat_s"),
    ("[server]\nretry_ms = -1", "server.retry_ms"),
    ("[server]\nws_compression = 3", "server.ws_compression"),
    ("seed = -1", "seed"),
    (f"seed = {2**63 - 1}", "seed"),
    ("repetitions = 0", "repetitions"),
    ("repetitions = true", "repetitions"),
    ("description = 5", "description"),
    ("arms = 'sse'", "arms"),
    ("[proxy]\nvariants = [{ name = 'x', preset = 'buffered', heartbeat_s = nan }]", "heartbeat_s"),
]


@pytest.mark.parametrize(("snippet", "field"), BAD_TOML, ids=[f for _, f in BAD_TOML])
def test_a_bad_scenario_value_is_refused_naming_the_field(
    tmp_path: Path, snippet: str, field: str
) -> None:
    path = tmp_path / "v.toml"
    path.write_text(BASE + snippet + "\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert field in str(exc.value), str(exc.value)
    assert "\n" not in str(exc.value)


def test_the_stream_limits_are_the_servers_own() -> None:
    # the same table the servers enforce (a scenario cannot ask for what they refuse)
    lo, hi = LIMITS["tokens"]
    scenario_from_dict({"name": "x", "stream": {"tokens": int(hi)}})
    with pytest.raises(ScenarioError):
        scenario_from_dict({"name": "x", "stream": {"tokens": int(hi) + 1}})
    with pytest.raises(ScenarioError):
        scenario_from_dict({"name": "x", "stream": {"tokens": int(lo) - 1}})
    # drop_after = 0 means "never" in a scenario (the servers' lower limit is 1)
    assert scenario_from_dict({"name": "x", "stream": {"drop_after": 0}}).stream.drop_after == 0


def test_good_values_still_load_and_whole_floats_stay_floats() -> None:
    s = scenario_from_dict(
        {"name": "x", "seed": 0, "load": {"duration_s": 5, "spawn_rate": 2}, "stream": {}}
    )
    assert s.load.duration_s == 5.0 and isinstance(s.load.duration_s, float)
    assert s.seed == 0
    assert scenario_from_dict({"name": "x", "seed": SEED_MAX}).seed == SEED_MAX


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"seed": -1}, "seed"),
        ({"seed": 2**70}, "seed"),
        ({"duration_s": math.inf}, "duration_s"),
        ({"duration_s": math.nan}, "duration_s"),
        ({"users": True}, "users"),
        ({"repetitions": 0}, "repetitions"),
        ({"max_error_share": -0.1}, "max_error_share"),
    ],
)
def test_overrides_are_checked_like_the_file(override: dict, field: str) -> None:
    s = scenario_from_dict({"name": "x"})
    with pytest.raises(ScenarioError) as exc:
        with_overrides(s, **override)
    assert field in str(exc.value)


def test_the_seed_leaves_room_for_every_derived_seed() -> None:
    # phase seed = seed + (rep - 1) * 1000, stream seed = phase seed + stream count: the
    # largest allowed seed must keep every derived one inside the servers' seed limit
    assert LIMITS["seed"][1] >= SEED_MAX + 1000 * 1000 + 10**12


def test_extends_lays_a_scenario_over_another(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text(
        'name = "base"\narms = ["sse"]\n[stream]\ntokens = 50\ngap_ms = 5.0\n'
        '[behaviour]\nresume = true\n[network]\nprofiles = ["4g"]\n'
    )
    (tmp_path / "child.toml").write_text(
        'extends = "base"\n[stream]\ntokens = 70\n[behaviour]\nresume = false\n'
    )
    s = load_scenario(tmp_path / "child.toml")
    assert (s.name, s.arms, s.stream.tokens, s.stream.gap_ms) == ("child", ("sse",), 70, 5.0)
    assert s.behaviour.resume is False and [v.name for v in s.network.profiles] == ["4g"]
    (tmp_path / "loop.toml").write_text('extends = "loop2"\n')
    (tmp_path / "loop2.toml").write_text('extends = "loop"\n')
    with pytest.raises(ScenarioError, match="loop"):
        load_scenario(tmp_path / "loop.toml")
    (tmp_path / "missing.toml").write_text('extends = "nowhere"\n')
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.toml")
