"""Suites: loading, overrides, the phase plan across scenarios, the budget estimate."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faultproxy.profile import available_profiles
from bench.plan import ArmTarget, estimate_s, plan_suite
from bench.suite import available_suites, load_suite, resolve_suite_path
from core.arms import all_arms, get_arm
from core.scenario import ScenarioError


@pytest.mark.parametrize("name", ["default", "quick"])
def test_shipped_suites_load_and_fit_their_budget(name: str) -> None:
    suite = load_suite(resolve_suite_path(name))
    names = [s.name for s, _ in suite.scenarios]
    assert {"chat", "reconnect", "cancel", "ramp"} <= set(names)
    first = suite.scenarios[0][0]
    plans = plan_suite([s for s, _ in suite.scenarios], [ArmTarget.named(a) for a in first.arms])
    assert estimate_s(plans, first) <= suite.budget_s
    assert set(first.arms) == {"sse", "ws"}


def test_default_suite_has_idle_hold_and_two_interleaved_repetitions() -> None:
    suite = load_suite(resolve_suite_path("default"))
    assert "idle-hold" in [s.name for s, _ in suite.scenarios]
    first = suite.scenarios[0][0]
    plans = plan_suite(
        [s for s, _ in suite.scenarios], [ArmTarget.named("sse"), ArmTarget.named("ws")]
    )
    chat = [p.name for p in plans if p.name.startswith("chat/")]
    assert chat == ["chat/sse/r1", "chat/ws/r1", "chat/sse/r2", "chat/ws/r2"]
    assert [p.index for p in plans] == list(range(1, len(plans) + 1))
    assert all(p.scenario is not None for p in plans)
    assert first.repetitions == 2


def test_entry_overrides_apply_and_cli_overrides_win(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text(
        'name = "t"\narms = ["sse", "ws"]\nrepetitions = 2\n'
        '[[scenarios]]\nname = "chat"\nusers = 3\nduration_s = 4\n'
        '[[scenarios]]\nname = "ramp"\nramp_steps = [1, 2]\nstep_s = 1\n'
    )
    suite = load_suite(f, arms=["ws"], repetitions=1)
    chat, ramp = (s for s, _ in suite.scenarios)
    assert chat.load.users == 3 and chat.load.duration_s == 4
    assert ramp.load.ramp_steps == (1, 2)
    assert chat.arms == ("ws",) and chat.repetitions == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('name = "t"\n', "at least one"),
        ('[[scenarios]]\nname = "nope"\n', "unknown scenario"),
        ('[[scenarios]]\nname = "chat"\ncolour = 1\n', "unknown field"),
        ('[[scenarios]]\nname = "chat"\n[[scenarios]]\nname = "chat"\n', "twice"),
        ("[[scenarios]\n", "not valid TOML"),
    ],
)
def test_bad_suites_are_refused_with_the_reason(tmp_path: Path, body: str, message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(body)
    with pytest.raises(ScenarioError, match=message):
        load_suite(f)


def test_unknown_suite_name_lists_the_known_ones() -> None:
    with pytest.raises(ScenarioError) as info:
        resolve_suite_path("nosuch")
    for name in available_suites():
        assert name in str(info.value)


def test_full_suite_keeps_proxy_h2_to_the_sse_arm_and_fits_its_budget() -> None:
    suite = load_suite(resolve_suite_path("full"))
    names = [s.name for s, _ in suite.scenarios]
    assert {"proxy-buffering", "proxy-idle", "proxy-h2"} <= set(names)
    first = suite.scenarios[0][0]
    plans = plan_suite([s for s, _ in suite.scenarios], [ArmTarget.named(a) for a in first.arms])
    h2 = [p.name for p in plans if p.name.startswith("proxy-h2")]
    assert h2 == ["proxy-h2.h2/sse/r1", "proxy-h2.h2/sse/r2"]  # no WS phase: SSE-only scenario
    assert any(p.name.startswith("proxy-idle.") and p.arm.name == "ws" for p in plans)
    assert estimate_s(plans, first) <= suite.budget_s
    # issue 17: 10,000 mostly idle streams (a token every 10 s, heartbeats on) in ONE client
    # process, both arms, all open together (spawned before the first stream ends)
    (big,) = [s for s, _ in suite.scenarios if s.name == "idle-hold-10k"]
    assert big.load.users == 10_000 and big.load.processes == 1 and big.server.heartbeat_s > 0
    assert big.stream.gap_ms == 10_000 and set(big.arms) == {"sse", "ws"}
    spawn_s = big.load.users / big.load.spawn_rate
    assert spawn_s < (big.stream.ttft_ms + (big.stream.tokens - 1) * big.stream.gap_ms) / 1000
    assert {p.arm.name for p in plans if p.name.startswith("idle-hold-10k/")} == {"sse", "ws"}
    # asked for WS only, the SSE-only scenario is left out with a note, not run as WS
    ws = load_suite(resolve_suite_path("full"), arms=["ws"])
    assert "proxy-h2" not in [s.name for s, _ in ws.scenarios]
    assert any("proxy-h2 left out" in n for n in ws.notes)


def test_formats_suite_runs_chat_plain_and_tls_every_format_and_agent_chains() -> None:
    """`make bench SUITE=formats`: one scenario file run under three labels (plain, TLS, and
    every payload format on each of its transports: the wire table's rows), the agent's
    chains plain and TLS, within its budget (and within 8 minutes)."""
    suite = load_suite(resolve_suite_path("formats"))
    by_name = {s.name: s for s, _ in suite.scenarios}
    assert set(by_name) == {"chat", "chat-tls", "chat-formats", "agent"}
    assert not by_name["chat"].server.tls and by_name["chat-tls"].server.tls
    pair = ("sse-openai-responses", "ws-openai-responses")
    assert by_name["chat"].arms == by_name["chat-tls"].arms == by_name["agent"].arms == pair
    formats = by_name["chat-formats"].arms
    assert {(get_arm(a).format, get_arm(a).protocol) for a in formats} == {
        (a.format, a.protocol) for a in all_arms()
    }
    assert len(formats) == 6 and not by_name["chat-formats"].server.tls
    agent = by_name["agent"]
    assert agent.session.chain and agent.session.turns == 20
    assert {v.name: v.server_dict() for v in agent.proxy.variants} == {
        "plain": {},
        "tls": {"tls": True},
    }
    # the run's arm targets are every entry's arms; each scenario runs its own (cmd_bench)
    assert set(suite.arms) == set(formats)
    plans = plan_suite([s for s, _ in suite.scenarios], [ArmTarget.named(a) for a in suite.arms])
    assert [p.arm.name for p in plans if p.group == "chat-formats"] == list(formats)
    assert {p.arm.name for p in plans if p.group != "chat-formats"} == set(pair)
    assert [p.group for p in plans].count("agent.tls") == 2 * agent.repetitions
    first = suite.scenarios[0][0]
    assert estimate_s(plans, first) <= min(suite.budget_s, 8 * 60)


def test_entry_arms_replace_the_suites_and_the_cli_replaces_both(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text(
        'name = "t"\narms = ["sse", "ws"]\n'
        '[[scenarios]]\nname = "chat"\n'
        '[[scenarios]]\nname = "chat"\nlabel = "all"\narms = ["ws", "sse-anthropic"]\n'
        '[[scenarios]]\nname = "proxy-h2"\narms = ["ws", "sse-openai-chat"]\n'
    )
    suite = load_suite(f)
    chat, both, h2 = (s for s, _ in suite.scenarios)
    assert chat.arms == ("sse", "ws") and both.arms == ("ws", "sse-anthropic")
    assert h2.arms == ("sse-openai-chat",)  # an SSE-only scenario keeps its limit
    assert suite.arms == ["sse", "ws", "sse-anthropic", "sse-openai-chat"]
    plans = plan_suite([s for s, _ in suite.scenarios], [ArmTarget.named(a) for a in suite.arms])
    assert [p.name for p in plans if p.group == "all"] == ["all/ws/r1", "all/sse-anthropic/r1"]
    cli = load_suite(f, arms=["ws"])
    assert [s.arms for s, _ in cli.scenarios] == [("ws",), ("ws",)]  # proxy-h2 left out
    assert any("proxy-h2 left out" in n for n in cli.notes)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('label = ""', "label"),
        ("server = 3", "server"),
        ("server = { nope = 1 }", "nope"),
        ("server = { tls = 3 }", "server.tls"),
        ('arms = ["sse", "nope"]', "arms: unknown arm 'nope'"),
        ("arms = []", "arms: a non-empty list"),
        ('arms = "sse"', "arms: a non-empty list"),
        ('arms = ["ws", "ws"]', "arms: an arm listed twice"),
    ],
)
def test_bad_entry_labels_server_settings_and_arms(
    tmp_path: Path, entry: str, message: str
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f'name = "s"\n[[scenarios]]\nname = "chat"\n{entry}\n')
    with pytest.raises(ScenarioError, match=message):
        load_suite(path)
    with pytest.raises(ScenarioError, match=message):  # even when the CLI names the arms
        load_suite(path, arms=["sse"])


def test_full_runs_mobile_on_two_profiles_and_network_runs_every_profile() -> None:
    """Issue 15: `make bench SUITE=full` runs the mobile sessions (resume and lost) on two
    fault profiles; `SUITE=network` runs every profile of bench/networks/ and the RTT sweeps
    (chat and agent chains at +0 / 50 / 150 ms, plain and TLS), within its budget."""
    full = {s.name: s for s, _ in load_suite(resolve_suite_path("full")).scenarios}
    for name in ("mobile", "mobile-noresume"):
        assert [p.profile for p in full[name].network.profiles] == ["tunnel", "handover"]
    suite = load_suite(resolve_suite_path("network"))
    by_name = {s.name: s for s, _ in suite.scenarios}
    assert {p.profile for p in by_name["mobile"].network.profiles} == set(available_profiles())
    first = suite.scenarios[0][0]
    plans = plan_suite([s for s, _ in suite.scenarios], [ArmTarget.named(a) for a in first.arms])
    for sweep in ("chat-rtt", "agent-rtt"):
        groups = {p.group for p in plans if p.scenario is not None and p.scenario.name == sweep}
        for tls in ("plain", "tls"):
            assert {f"{sweep}.{tls}.rtt{r}" for r in (0, 50, 150)} <= groups
        tls_plans = [p for p in plans if p.group.startswith(f"{sweep}.tls.")]
        assert tls_plans and all(p.scenario.server.tls for p in tls_plans)
    assert estimate_s(plans, first) <= suite.budget_s
