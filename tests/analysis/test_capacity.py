"""analysis.capacity: capacity within the SLO on synthetic runs of known truth, and the VM
cost model sizing instances from it."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from analysis import capacity as CAP
from analysis import cost as K
from analysis.load import with_groups
from analysis.summary import summarize
from tests.analysis.analysis_synth import BASE, MS, S, Script, build, frame

STEP_S = 10
T0 = BASE + 2 * MS  # first send of the ramp (Script.dispatch_ms = 2)


def _ramp(arm: str, steps: list[tuple[int, int, float]], rep: int = 1) -> dict[str, pd.DataFrame]:
    """(users_target, streams, ttft_ms) per step, STEP_S apart; 3 tokens 20 ms apart per
    stream, every stream sent and finished inside its step's first 9.3 s."""
    phase = f"ramp/{arm}/r{rep}"
    parts = []
    for k, (users, n, ttft) in enumerate(steps):
        fr = build(
            [
                Script(
                    arm=arm,
                    phase=phase,
                    streams=n,
                    tokens=3,
                    ttft_ms=ttft,
                    gap_ms=20.0,
                    spacing_s=9.0 / n,
                    start_ns=BASE + k * STEP_S * S,
                    users_target=users,
                )
            ]
        )
        for name in ("streams", "tokens", "connections"):
            df = fr[name]
            if "stream_uid" in df:
                df["stream_uid"] = f"s{k}/" + df["stream_uid"].astype(str)
            if "conn_uid" in df:
                df["conn_uid"] = f"s{k}/" + df["conn_uid"].astype(str)
        parts.append(fr)
    return {
        name: pd.concat([p[name] for p in parts], ignore_index=True)
        for name in ("streams", "tokens", "connections")
    }


def _server(arm: str, phase: str, cores: list[float], pid: int = 7) -> list[dict]:
    """Server samples every second from T0: cumulative CPU growing at cores[k] during
    step k (split 3:1 user:sys)."""
    rows, cpu = [], 0.0
    for i in range(len(cores) * STEP_S + 1):
        rows.append(
            {
                "t_ns": T0 + i * S,
                "phase": phase,
                "arm": arm,
                "role": "server",
                "pid": pid,
                "cpu_user_s": cpu * 0.75,
                "cpu_sys_s": cpu * 0.25,
                "rss_bytes": 50_000_000,
                "connections": 0,
            }
        )
        cpu += cores[min(i // STEP_S, len(cores) - 1)]
    return rows


KIB16 = 16 * 1024


def _idle(arm: str, pid: int = 9, base: int = 40_000_000) -> list[dict]:
    """Idle-hold: 0 → 300 connections, RSS + 16 KiB each, hold, then close while the
    allocator keeps the memory (samples that must not flatten the slope)."""
    conns = [0, 50, 100, 150, 200, 250, 300, 300, 300, 300, 100, 0]
    rows, cpu = [], 0.0
    for i, c in enumerate(conns):
        peak_so_far = max(conns[: i + 1])
        rows.append(
            {
                "t_ns": BASE + 100 * S + i * S,
                "phase": f"idle-hold/{arm}/r1",
                "arm": arm,
                "role": "server",
                "pid": pid,
                "cpu_user_s": cpu,
                "cpu_sys_s": 0.0,
                "rss_bytes": base + KIB16 * peak_so_far,
                "connections": c,
            }
        )
        cpu += 0.003 if c == 300 else 0.05  # 0.003 cores while holding 300 → 1e-5 each
    return rows


def _run(steps, cores, idle=True):
    """Frames as analysis.load gives them (with the ``group`` column)."""
    fr = _ramp("sse", steps)
    rows = _server("sse", "ramp/sse/r1", cores)
    if idle:
        rows += _idle("sse")
    fr["resources"] = frame("resources", rows)
    return {k: with_groups(v) for k, v in fr.items()}


#: The groups the summary would pass (their configuration: a ramp, idle holding).
GROUPS = {"ramp_scenarios": ["ramp"], "idle_scenarios": ["idle-hold"]}


def _cap(fr, **kw):
    return CAP.capacity(fr["streams"], fr["tokens"], fr["resources"], **GROUPS, **kw)


def _steps(fr):
    return CAP.ramp_steps(fr["streams"], fr["tokens"], fr["resources"], scenarios=["ramp"])


@pytest.fixture(scope="module")
def broken_run():
    # steps 10 / 20 / 40 users; TTFT 200 ms, then 2 s at 40 users: the SLO breaks at 40
    return _run([(10, 400, 200.0), (20, 400, 200.0), (40, 400, 2000.0)], [0.25, 0.5, 1.0])


def test_steps_known_truth(broken_run):
    st = _steps(broken_run)
    st = st.set_index("users_target")
    assert list(st.index) == [10, 20, 40]
    assert list(st["slo"]) == [CAP.MET, CAP.MET, CAP.BROKEN]
    assert st.loc[20, "ttft_p99_ms"] == pytest.approx(200.0)
    assert st.loc[20, "itl_p99_ms"] == pytest.approx(20.0)
    assert st.loc[20, "tokens"] == 1200
    assert st.loc[20, "window_s"] == pytest.approx(10.0)
    assert st.loc[20, "tokens_per_s"] == pytest.approx(120.0)
    assert st.loc[10, "cores"] == pytest.approx(0.25)
    assert st.loc[20, "cores"] == pytest.approx(0.5)
    assert st.loc[20, "tokens_per_s_per_core"] == pytest.approx(240.0)
    assert "TTFT p99 2000.0 > 1000 ms" in st.loc[40, "why"]


def test_capacity_at_highest_step_before_the_break(broken_run):
    cap = _cap(broken_run)
    json.dumps(cap)  # strict JSON
    assert cap["slo"] == {"ttft_p99_ms": 1000.0, "itl_p99_ms": 100.0}
    a = cap["arms"]["sse"]
    assert a["users_at_slo"] == 20
    assert a["tokens_per_s_at_slo"] == pytest.approx(120.0)
    assert a["cores_at_slo"] == pytest.approx(0.5)
    assert a["tokens_per_s_per_core"] == pytest.approx(240.0)
    assert a["slo_broken_at_users"] == 40
    assert a["bounded_below"] is False
    # idle-hold: 16 KiB per connection → 65,536 connections per GiB
    assert a["bytes_per_connection"] == pytest.approx(KIB16)
    assert a["connections_per_gib"] == pytest.approx(65536.0)
    assert a["baseline_rss_bytes"] == pytest.approx(40_000_000)
    assert a["cores_per_idle_connection"] == pytest.approx(1e-5)
    txt = CAP.format_capacity(cap)
    assert "120" in txt and "65,536" in txt and "SLO broken at 40 users" in txt
    assert "Capacity within the SLO" in CAP.capacity_markdown(cap)


def test_slo_is_configurable(broken_run):
    a = _cap(broken_run, slo_ttft_p99_ms=3000.0)["arms"]["sse"]
    assert a["users_at_slo"] == 40 and a["bounded_below"] is True
    a = _cap(broken_run, slo_itl_p99_ms=10.0)["arms"]["sse"]  # ITL 20 ms breaks at once
    assert a["slo_broken_at_users"] == 10 and a["tokens_per_s_at_slo"] is None


def test_bounded_below_when_the_ramp_never_breaks():
    fr = _run([(10, 400, 200.0), (20, 400, 200.0), (40, 400, 300.0)], [0.25, 0.5, 1.0])
    a = _cap(fr)["arms"]["sse"]
    assert a["bounded_below"] is True
    assert a["slo_broken_at_users"] is None
    assert a["users_at_slo"] == 40
    assert a["cores_at_slo"] == pytest.approx(1.0)
    assert any("at least" in n for n in a["notes"])
    assert "≥ " in CAP.format_capacity(_cap(fr))


def test_insufficient_samples_are_not_judged_at_a_lower_percentile():
    # step 10: 100 streams (< 368: no p99) → insufficient, skipped; step 20 meets;
    # step 40: 100 streams but p95 already 2 s > 1 s → broken even without a p99
    fr = _run([(10, 100, 200.0), (20, 400, 200.0), (40, 100, 2000.0)], [0.25, 0.5, 1.0])
    st = _steps(fr).set_index("users_target")
    assert st.loc[10, "slo"] == CAP.INSUFFICIENT
    assert math.isnan(st.loc[10, "ttft_p99_ms"])
    assert "n=100 < 368" in st.loc[10, "why"]
    assert st.loc[40, "slo"] == CAP.BROKEN and "p95" in st.loc[40, "why"]
    a = _cap(fr)["arms"]["sse"]
    assert a["users_at_slo"] == 20 and a["slo_broken_at_users"] == 40
    assert any("insufficient samples" in n for n in a["notes"])

    only_few = _run([(10, 100, 200.0)], [0.25])
    a = _cap(only_few)["arms"]["sse"]
    assert a["tokens_per_s_at_slo"] is None and a["bounded_below"] is False
    assert any("no ramp step met the SLO" in n for n in a["notes"])


def test_no_ramp_no_idle_not_measured():
    fr = _run([(10, 400, 200.0)], [0.25], idle=False)
    a = _cap(fr)["arms"]["sse"]
    assert a["connections_per_gib"] is None
    assert any("no scenario holding connections idle" in n for n in a["notes"])
    empty = CAP.capacity(fr["streams"].iloc[0:0], None, None)
    assert empty["arms"] == {}


def test_summary_carries_capacity(broken_run):
    # the summary picks the groups by their recorded configuration, not by their names
    configs = [
        {"name": "ramp", "load": {"ramp_steps": [10, 20, 40]}},
        {"name": "idle-hold", "stream": {"gap_ms": 3000.0}},
    ]
    fr = {**broken_run, "manifest": {"suite": {"scenarios": configs}}}
    s = summarize(fr, n_boot=20)
    assert s.capacity["arms"]["sse"]["tokens_per_s_per_core"] == pytest.approx(240.0)
    assert s.capacity["ramp_scenarios"] == ["ramp"]
    assert s.capacity["idle_scenarios"] == ["idle-hold"]
    assert s.capacity["arms"]["sse"]["bytes_per_connection"] == pytest.approx(KIB16)
    s2 = summarize(fr, n_boot=20, capacity_slo={"slo_ttft_p99_ms": 3000.0})
    assert s2.capacity["slo"]["ttft_p99_ms"] == 3000.0
    unconfigured = summarize({**broken_run, "manifest": {}}, n_boot=20)
    assert unconfigured.capacity["arms"] == {}  # no configuration: no ramp is assumed


# --------------------------------------------------------------------------- cost model


def _vm_usd(u: K.Usage) -> float:
    cat = K.load_catalogue()
    lines = K.bill(u, cat["vm"])
    return sum(ln.usd for ln in lines if ln.dimension == "instances")


def test_vm_cost_follows_measured_capacity():
    # vm.toml: $0.0168/instance-hour; instance size 2 vCPU / 2 GiB (VM_INSTANCE_DEFAULT)
    base = dict(arm="sse", hours=730.0, peak_concurrent_connections=10, peak_tokens_per_s=1e5)
    slow = K.Usage(**base, measured_tokens_per_s_per_core=10_000.0)  # 20k/inst → 5
    fast = K.Usage(**base, measured_tokens_per_s_per_core=50_000.0)  # 100k/inst → 1
    assert _vm_usd(slow) == pytest.approx(5 * 730 * 0.0168)
    assert _vm_usd(fast) == pytest.approx(1 * 730 * 0.0168)
    # connections: 65,536 per GiB × (2 GiB − 0.5 GiB baseline) = 98,304 per instance
    conns = K.Usage(
        arm="ws",
        hours=730.0,
        peak_concurrent_connections=200_000,
        measured_connections_per_gib=65536.0,
        measured_baseline_rss_bytes=0.5 * 2**30,
        measured_tokens_per_s_per_core=1e6,
    )
    assert _vm_usd(conns) == pytest.approx(3 * 730 * 0.0168)
    cap, src = K.vm_capacity_for(conns, K.load_catalogue()["vm"])
    assert cap["connections_per_instance"] == pytest.approx(98_304)
    assert "measured" in src
    # without measured capacity the file's placeholder is used, and says so
    _, src = K.vm_capacity_for(K.Usage(arm="sse"), K.load_catalogue()["vm"])
    assert "placeholder" in src


def test_measured_capacity_flows_from_summary_to_the_cost_table():
    prof = K.load_profile("support-assistant-10k").with_mau(5e7)
    arm_cap = {"tokens_per_s_per_core": 2_000.0, "connections_per_gib": 65536.0}
    cal = K.with_measured_capacity(K.Calibration(), arm_cap)
    assert cal.tokens_per_s_per_core == 2_000.0 and cal.baseline_rss_bytes is None
    # memory per connection: the idle-hold fit wins over the main scenario's slope
    chat = K.Calibration(kib_per_connection=0.7)
    assert K.with_measured_capacity(chat, arm_cap).kib_per_connection == 0.7  # not measured
    fitted = K.with_measured_capacity(chat, {**arm_cap, "bytes_per_connection": 17 * 1024.0})
    assert fitted.kib_per_connection == pytest.approx(17.0)
    lo = K.cost_table(K.usages_from_profile(prof, ("sse",), {"sse": cal}), ["vm"], prof)
    hi_cal = K.with_measured_capacity(K.Calibration(), {**arm_cap, "tokens_per_s_per_core": 4e4})
    hi = K.cost_table(K.usages_from_profile(prof, ("sse",), {"sse": hi_cal}), ["vm"], prof)
    assert float(lo["monthly_usd"].iloc[0]) > float(hi["monthly_usd"].iloc[0])
