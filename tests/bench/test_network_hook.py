"""`[network]` scenarios: parsed and planned per profile, and run through the fault proxy
as a phase hook — its log in the run folder, its record in the manifest, its cuts joined
onto the client's connection records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.fault_attribution import connection_faults, fault_rows_of_run
from analysis.load import load_run
from bench.cli import main
from bench.faultproxy.__main__ import _override, set_args
from bench.plan import ArmTarget, plan_phases
from core.runfolder import read_manifest, read_table
from core.scenario import ScenarioError, scenario_from_dict

ARMS = [ArmTarget.named("sse"), ArmTarget.named("ws")]


def scenario(**network):
    return scenario_from_dict({"name": "m", "network": network})


def test_network_section_parses_and_round_trips() -> None:
    rtt = {"name": "rtt50", "profile": "passthrough", "set": {"up.latency_ms": 25}}
    s = scenario(
        profiles=["loopback", "4g", rtt], set={"down": {"latency_ms": 80}, "tcp.rto_ms": 300}
    )
    assert [(v.name, v.profile) for v in s.network.profiles] == [
        ("loopback", "loopback"),
        ("4g", "4g"),
        ("rtt50", "passthrough"),
    ]
    assert dict(s.network.overrides) == {"down.latency_ms": 80, "tcp.rto_ms": 300}
    assert s.network.overrides_for(s.network.profiles[2]) == {
        "down.latency_ms": 80,
        "tcp.rto_ms": 300,
        "up.latency_ms": 25,
    }
    assert scenario_from_dict(s.to_dict()).network == s.network
    assert [v.name for v in scenario(profile="tunnel").network.profiles] == ["tunnel"]
    assert scenario_from_dict({"name": "plain"}).network.profiles == ()


@pytest.mark.parametrize(
    ("network", "message"),
    [
        ({"profile": "4g", "profiles": ["3g"]}, "not both"),
        ({"profiles": "4g"}, "a list of profile names"),
        ({"profiles": ["4g", "4g"]}, "duplicate"),
        ({"profiles": [{"name": "x"}]}, "a table with profile = NAME"),
        ({"profiles": [{"profile": "4g", "speed": 1}]}, "unknown field"),
        ({"profiles": ["4g g"]}, "letters, digits"),
        ({"set": {"down.loss": 0.1}}, "needs profile"),
        ({"profiles": ["4g"], "speed": 3}, "unknown field"),
    ],
)
def test_network_section_errors(network: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        scenario(**network)


def test_phases_per_profile_named_and_checked() -> None:
    rtt = {"name": "rtt150", "profile": "passthrough", "set": {"down.latency_ms": 75}}
    plans = plan_phases(scenario(profiles=["loopback", "4g", rtt]), ARMS)
    assert [p.name for p in plans] == [
        f"m.{net}/{arm}/r1" for net in ("loopback", "4g", "rtt150") for arm in ("sse", "ws")
    ]
    assert [p.network.profile for p in plans] == ["loopback"] * 2 + ["4g"] * 2 + ["passthrough"] * 2
    assert len({p.seed for p in plans}) == 1  # one repetition: both arms, same faults
    with pytest.raises(ScenarioError, match="no network profile '5g'"):
        plan_phases(scenario(profiles=["5g"]), ARMS)
    with pytest.raises(ScenarioError, match=r"network 4g: .*down\.loss: 3 is out of range"):
        plan_phases(scenario(profiles=["4g"], set={"down.loss": 3}), ARMS)
    # the overrides leave the no-proxy control alone (it would refuse faults)
    plan_phases(scenario(profiles=["loopback"], set={"down.loss": 0.1}), ARMS)


def test_a_foreign_server_off_loopback_skips_the_phase() -> None:
    from bench.network_hook import NetworkHook

    s = scenario(profiles=["loopback", "4g"])
    far = [ArmTarget.named("sse", "http://10.1.2.3:8081")]
    near = [ArmTarget.named("sse", "http://127.0.0.1:8081")]
    why = [NetworkHook.for_phase(p, s).unavailable() for p in plan_phases(s, far)]
    assert why[0] is None  # loopback: no proxy, nothing to dial
    assert "not on loopback" in why[1]
    assert NetworkHook.for_phase(plan_phases(s, near)[1], s).unavailable() is None


def test_set_args_survive_the_command_line() -> None:
    overrides = {
        "cuts": [{"after_s": 0.5, "how": "rst"}],
        "down.latency_ms": 80,
        "handover": {"gap_s": [1, 2], "client": "fin"},
        "down.jitter_dist": "uniform",
    }
    args = set_args(overrides)
    assert dict(_override(a) for a in args[1::2]) == overrides


TINY = """\
name = "nettiny"
arms = ["sse", "ws"]
seed = 5
[load]
users = 4
spawn_rate = 50
duration_s = 3
stop_timeout_s = 5
[stream]
tokens = 40
ttft_ms = 50
gap_ms = 20
[network]
profiles = ["loopback", "passthrough"]
set = { cuts = [{ after_s = 0.3, how = "rst" }], "down.latency_ms" = 10 }
"""


def test_a_network_run_records_the_faults_and_joins_them(tmp_path: Path) -> None:
    path = tmp_path / "nettiny.toml"
    path.write_text(TINY)
    results = tmp_path / "r"
    assert main(["run", str(path), "--results", str(results), "--pause", "0"]) == 0
    (run,) = [p for p in results.iterdir() if p.is_dir() and not p.is_symlink()]
    m = read_manifest(run)
    phases = {ph["name"]: ph for ph in m["phases"]}
    assert set(phases) == {
        f"nettiny.{n}/{a}/r1" for n in ("loopback", "passthrough") for a in ("sse", "ws")
    }
    assert m["sampler"]["roles"]["faultproxy"]
    conns = read_table(run, "connections")
    resources = read_table(run, "resources")
    for name, ph in phases.items():
        rec = ph["network"]
        assert rec["seed"] == ph["seed"]
        if name.startswith("nettiny.loopback"):
            assert rec == {
                "label": "loopback",
                "profile": "loopback",
                "proxy": False,
                "overrides": {},
                "seed": 5,
            }
            continue
        assert rec["profile"] == "passthrough" and rec["stopped_cleanly"]
        assert rec["settings"]["down"]["latency_ms"] == 10
        log = run / rec["logs"]["faults"]
        assert log.is_file() and log.parent == run / "network" / name.replace("/", "_")
        # every connection the client opened went through the proxy, and only those
        assert rec["connections"] == (conns["phase"] == name).sum() > 0
        assert rec["counts"]["cut"] >= 4
        assert rec["lateness"]["pieces"] > 0 and rec["lateness"]["p50_ms"] is not None
        mine = resources[(resources["phase"] == name) & (resources["role"] == "faultproxy")]
        assert len(mine) > 0
    assert set(json.loads((run / "network.json").read_text())) == set(phases)
    # the join: every cut lands on the client's connection, closed when the cut happened
    data = load_run(run)
    # the analysis groups by network entry, as by proxy variant (records carry it)
    assert set(data.streams["group"]) == {"nettiny.loopback", "nettiny.passthrough"}
    rows = fault_rows_of_run(data.manifest, data.path)
    faults = connection_faults(data.connections, data.streams, rows)
    assert faults["conn_uid"].notna().all()
    cut = faults[faults["cut_cause"].notna()].merge(data.connections, on="conn_uid")
    assert len(cut) == sum(ph["network"].get("counts", {}).get("cut", 0) for ph in phases.values())
    assert (cut["closed_by"] == "proxy").all()
    lag_ms = (cut["t_close_ns"] - cut["t_cut_ns"]) / 1e6
    assert lag_ms.between(0, 50).all(), lag_ms.describe()
