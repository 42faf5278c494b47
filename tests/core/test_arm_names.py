"""Every arm named anywhere resolves in the arm registry, and nothing guesses a protocol from
an arm's name: scenarios, suites, pricing pairings, plot colours, perf servers, and no
``startswith("ws")``-style rule in the code."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from core.arms import PROTOCOLS, all_arms, arm_names, get_arm, is_known

ROOT = Path(__file__).resolve().parents[2]
CODE_ROOMS = ("core", "servers", "loadtests", "bench", "analysis", "benchmarks")


def _toml(path: Path) -> dict:
    return tomllib.loads(path.read_text())


@pytest.mark.parametrize(
    "path", sorted((ROOT / "loadtests" / "scenarios").glob("*.toml")), ids=lambda p: p.name
)
def test_scenario_arms_are_registered(path: Path) -> None:
    arms = _toml(path).get("arms", [])
    assert [a for a in arms if not is_known(a)] == []


@pytest.mark.parametrize("path", sorted((ROOT / "bench" / "suites").glob("*.toml")), ids=str)
def test_suite_arms_are_registered(path: Path) -> None:
    arms = _toml(path).get("arms", [])
    assert [a for a in arms if not is_known(a)] == []


def test_every_arm_is_metered_and_priced_as_a_protocol() -> None:
    # the pricing catalogue pairs products with the protocols arms are metered as
    served: set[str] = set()
    for path in sorted((ROOT / "analysis" / "pricing").glob("*.toml")):
        data = _toml(path)
        pairing = {k for k in data.get("pairing", {}) if k != "why"}
        assert pairing <= set(PROTOCOLS), path.name
        assert set(data["serves"]) <= set(PROTOCOLS), path.name
        served |= set(data["serves"])
    for arm in all_arms():
        assert arm.metering in PROTOCOLS and arm.metering in served, arm.name
        assert arm.client in PROTOCOLS or arm.is_browser, arm.name


def test_plots_and_perf_know_every_arm() -> None:
    from analysis import plots
    from bench.perf.cmd import SERVER_ARGV
    from bench.perf.report import OURS, SERVERS

    assert set(plots.ARM_COLORS) == set(arm_names())
    assert plots.arm_order(["ws-websockets", "zz", "sse", "ws"]) == [
        "sse",
        "ws",
        "ws-websockets",
        "zz",
    ]
    assert plots.arm_order([*reversed(arm_names()), "zz"]) == [*arm_names(), "zz"]
    assert len({a.color for a in all_arms()}) == len(arm_names())  # distinct colours
    # perf compares the servers' own implementations: the native-payload arms (the
    # provider-format arms run on the same servers)
    assert set(OURS) == {
        a.name for a in all_arms() if a.server_kind and a.format == "native" and not a.is_browser
    }
    assert {"sse", "ws", "ws-websockets"} <= set(OURS)
    for name in OURS:
        assert SERVERS[name][1] == "ours"
        assert SERVER_ARGV[name][1] == get_arm(name).protocol
        assert SERVER_ARGV[name][0][-1] == get_arm(name).server_kind


def test_browser_arms_are_driven_by_a_page_client() -> None:
    from loadtests.browser.clients import CLIENTS

    browser = [a for a in all_arms() if a.is_browser]
    assert {a.name for a in browser} >= {"browser-eventsource", "browser-fetch", "browser-ws"}
    for arm in browser:
        assert arm.client in CLIENTS, arm.name
        assert CLIENTS[arm.client].protocol == arm.protocol, arm.name
        assert arm.server_kind is not None, arm.name
    assert not any(get_arm(n).is_browser for n in ("sse", "ws", "ws-websockets"))


def test_server_kinds_are_the_registrys() -> None:
    from servers.config import KINDS

    assert set(KINDS) == {a.server_kind for a in all_arms() if a.server_kind}


def _prefix_rules(tree: ast.AST) -> list[int]:
    """Lines that guess a protocol from a name: x.startswith("ws…") / x.startswith("sse…")."""
    out = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "startswith"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and re.fullmatch(r"(ws|sse)(-.*)?", node.args[0].value)
        ):
            out.append(node.lineno)
    return out


def test_no_protocol_guessed_from_an_arm_name() -> None:
    found = []
    for room in CODE_ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")):
            lines = _prefix_rules(ast.parse(path.read_text(), str(path)))
            found += [f"{path.relative_to(ROOT)}:{n}" for n in lines]
    assert found == [], "look the arm up in core.arms instead"


def test_the_scan_finds_a_prefix_rule() -> None:
    # the scan above must be able to fail
    bad = ast.parse('proto = "ws" if arm.startswith("ws-") else "sse"')
    assert _prefix_rules(bad) == [1]
