"""The server's flags: bench passes a scenario's timeouts and limits, the server records
them, and a scenario that sets none runs the server exactly with its own defaults."""

from __future__ import annotations

import math

import pytest

from bench.plan import ArmTarget, server_command
from bench.run_manifest import arm_manifest
from core.scenario import SERVER_TUNING, ScenarioError, ServerSpec, scenario_from_dict
from servers.__main__ import build_parser
from servers.config import ServerConfig


def test_scenario_defaults_are_the_servers() -> None:
    spec, cfg = ServerSpec(), ServerConfig(kind="sse")
    for name in (*SERVER_TUNING, "heartbeat_s", "accel_header", "retry_ms"):
        assert getattr(spec, name) == getattr(cfg, name), name
    assert spec.ws_compression == cfg.compression


def test_bench_passes_and_the_server_records_every_setting() -> None:
    server = {
        "send_timeout_s": 7.5,
        "header_timeout_s": 3,
        "idle_timeout_s": 0,
        "max_streams_per_connection": 4,
        "max_active_streams": 123,
        "max_planned_tokens": 6_000_000,
    }
    s = scenario_from_dict({"name": "t", "server": server})
    cmd = server_command("ws", s)
    args = build_parser().parse_args(cmd[cmd.index("servers") + 1 :])
    described = {k: getattr(args, k) for k in server}
    assert described == {k: float(v) if k.endswith("_s") else v for k, v in server.items()}
    recorded = arm_manifest(ArmTarget.named("ws"), s)["server"]
    assert {k: recorded[k] for k in SERVER_TUNING} == server


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("send_timeout_s", -1),
        ("idle_timeout_s", math.nan),
        ("header_timeout_s", math.inf),
        ("max_active_streams", 2.5),
        ("max_planned_tokens", -5),
        ("max_streams_per_connection", True),
    ],
)
def test_scenario_refuses_what_the_server_would(field: str, value: object) -> None:
    with pytest.raises(ScenarioError, match=field):
        scenario_from_dict({"name": "t", "server": {field: value}})


@pytest.mark.parametrize("flag", ["--send-timeout-s", "--idle-timeout-s", "--max-active-streams"])
@pytest.mark.parametrize("value", ["-1", "nan", "inf", "x"])
def test_server_flags_refuse_bad_values(flag: str, value: str) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["sse", flag, value])
    assert info.value.code == 2
