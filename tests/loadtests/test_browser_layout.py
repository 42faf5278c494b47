"""loadtests.browser.layout / clients / records: the pure parts of the browser load generator."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core.accounting import OK
from core.clock_sync import ClockMap
from core.scenario import scenario_from_dict
from loadtests.browser.clients import CLIENTS, PAGE_DIR, client_code, recovery_lines
from loadtests.browser.layout import (
    LayoutError,
    host_rules,
    layout,
    pages_of,
    user_windows,
    users_target,
)
from loadtests.browser.records import (
    PhaseLabels,
    RecordError,
    connection_account,
    page_stream_template,
    stream_account,
)
from loadtests.session import SessionPlan, UserIds, draw_turn, user_rng


def _scenario(**sections: dict) -> object:
    return scenario_from_dict({"name": "t", **sections})


def test_users_are_spread_over_pages_and_host_names() -> None:
    s = _scenario(load={"users": 10}, browser={"users_per_page": 4, "users_per_host": 3})
    users = layout(s, phase="t/x/r1", arm="x", worker="w", seed=5, url="http://127.0.0.1:8080")
    pages = pages_of(users)
    assert [len(pages[p]) for p in sorted(pages)] == [4, 4, 2]
    assert [u.host for u in pages[0]] == ["u0.localhost"] * 3 + ["u1.localhost"]
    assert users[5].http_base == "http://u0.localhost:8080"  # page 1 starts its names over
    assert users[5].ws_url == "ws://u0.localhost:8080/v1/ws"
    assert host_rules("http://127.0.0.1:8080", 3) == [
        "--host-resolver-rules=MAP *.localhost 127.0.0.1"
    ]
    # no sharding: the server's own address, no resolver rule
    s0 = _scenario(load={"users": 3}, browser={"users_per_host": 0})
    u0 = layout(s0, phase="p", arm="x", worker="w", seed=1, url="ws://127.0.0.1:9")
    assert {u.http_base for u in u0} == {"http://127.0.0.1:9"}
    assert host_rules("http://127.0.0.1:9", 0) == []


def test_browser_section_of_a_scenario_is_validated() -> None:
    from core.scenario import ScenarioError

    s = _scenario(browser={"users_per_page": 10, "users_per_host": 0})
    assert (s.browser.users_per_page, s.browser.users_per_host) == (10, 0)
    assert scenario_from_dict(s.to_dict()).browser == s.browser
    for bad in ({"users_per_host": 7}, {"users_per_page": 0}, {"per_page": 3}):
        with pytest.raises(ScenarioError):
            _scenario(browser=bad)


def test_only_loopback_servers() -> None:
    s = _scenario()
    with pytest.raises(LayoutError, match="loopback"):
        layout(s, phase="p", arm="x", worker="w", seed=1, url="http://10.0.0.1:80")


def test_pre_drawn_decisions_are_the_locust_users_own() -> None:
    s = _scenario(
        load={"users": 3, "duration_s": 5},
        session={"turns": 2, "think_s": 1.0, "think_dist": "exp"},
        behaviour={"cancel_prob": 0.3, "cancel_after": 5},
        stream={"tokens": 20, "tokens_min": 5},
    )
    users = layout(s, phase="p", arm="x", worker="w", seed=7, url="http://127.0.0.1:1")
    plan = SessionPlan.from_scenario(s)
    for u in users:
        rng = user_rng(UserIds("p", "x", "w", 0, u.index, 7))
        expected = [draw_turn(rng, plan) for _ in range(len(u.draws))]
        assert list(u.draws) == expected
        assert len(u.draws) > 5 / 1.3  # enough turns for the phase
        assert any(d.cancel for d in u.draws) and not all(d.cancel for d in u.draws)
        assert {d.tokens for d in u.draws} <= set(range(5, 21))
        assert len({d.tokens for d in u.draws}) > 1  # drawn lengths reach the page
        assert u.to_page()["draws"][0] == [u.draws[0].cancel, u.draws[0].think_s, u.draws[0].tokens]


def test_windows_follow_spawn_rate_and_ramp_steps() -> None:
    s = _scenario(load={"users": 4, "spawn_rate": 2, "duration_s": 10})
    assert user_windows(s.load) == [
        ((0.0, 10000.0),),
        ((500.0, 10000.0),),
        ((1000.0, 10000.0),),
        ((1500.0, 10000.0),),
    ]
    r = _scenario(load={"ramp_steps": [1, 3, 2], "step_s": 2, "spawn_rate": 10})
    w = user_windows(r.load)
    assert w[0] == ((0.0, 6000.0),)
    assert w[1] == ((2000.0, 6000.0),)
    assert w[2] == ((2100.0, 4000.0),)  # gone when the target drops to 2
    assert users_target(r.load, 2500) == 3 and users_target(r.load, 99_999) == 2


def test_recovery_lines_count_marked_code_only() -> None:
    src = "\n".join(
        [
            "a();",
            "b();  // recovery",
            "// recovery:begin",
            "  // a comment inside",
            "",
            "  c();",
            "  d();",
            "// recovery:end",
            "e();",
        ]
    )
    assert recovery_lines(src) == 3
    with pytest.raises(ValueError):
        recovery_lines("// recovery:begin\nx();")


def test_every_client_file_is_marked_and_counted() -> None:
    for name, c in CLIENTS.items():
        info = client_code(name)
        assert c.path.is_file() and info["code_lines"] > 20
        if c.resumes:
            assert info["recovery_lines"] > 0, name
        else:
            assert info["recovery_lines"] == 0, name
    es, ws = client_code("browser-eventsource"), client_code("browser-ws")
    assert (
        es["recovery_lines"] < client_code("browser-fetch")["recovery_lines"] < ws["recovery_lines"]
    )
    assert (PAGE_DIR / "index.html").read_text().count("<script") == 5


CLOCK = ClockMap(
    ref_page_ms=1000.0,
    ref_harness_ns=5_000_000_000,
    half_width_ns=100,
    samples=1,
    rtt_min_ns=1,
    resolution_ns=0,
)
LABELS = PhaseLabels("p/browser-ws/r1", "browser-ws", "h-1", 7)


def _page_stream(**over: object) -> dict:
    payloads = [
        json.dumps({"s": "7.0.2.0.0", "i": i, "t": 4_000_000_000 + i, "d": t})
        for i, t in enumerate(["a", "b", "c"])
    ]
    rec = {
        "user": 2,
        "session": 0,
        "turn": 0,
        "k": 0,
        "id": "7.0.2.0.0",
        "seed": 7,
        "n_tokens": 3,
        "t_sched": 999.0,
        "t_send": 1000.0,
        "t_open": 1000.5,
        "conn": "c1",
        "reused": False,
        "status": None,
        "tokens": [1010.0, payloads[0], 1011.0, payloads[1], 1012.25, payloads[2]],
        "drops": [],
        "reconnects": 0,
        "bytes_in": 99,
        "outcome": OK,
        "error": None,
        "t_end": 1013.0,
        "done": None,
    }
    rec.update(over)
    return rec


def test_a_page_stream_becomes_the_same_rows_a_locust_stream_would() -> None:
    import hashlib

    s = _scenario(stream={"tokens": 3, "ttft_ms": 10, "gap_ms": 1})
    sha = hashlib.sha256(b"abc").hexdigest()
    acct = stream_account(
        _page_stream(done={"count": 3, "sha256": sha}), LABELS, s.stream, CLOCK, lambda t: 4
    )
    row = acct.streams_row()
    assert row["stream_uid"] == "p/browser-ws/r1/7.0.2.0.0"
    assert row["t_send_ns"] == 5_000_000_000 and row["t_open_ns"] == 5_000_500_000
    assert acct.ttft_ns == 10_000_000 and acct.itl_ns == [1_000_000, 1_250_000]
    assert list(acct.t_server_ns) == [4_000_000_000, 4_000_000_001, 4_000_000_002]
    assert row["checksum_ok"] is True and row["n_lost"] == 0 and row["users_target"] == 4
    assert acct.nbytes[0] == len(_page_stream()["tokens"][1])
    assert page_stream_template(s.stream) == {
        "tokens": 3,
        "ttft_ms": 10.0,
        "gap_ms": 1.0,
        "jitter": 0.0,
        "pause_ms": 0.0,
        "pause_at": 0,
    }


def test_eventsource_bytes_are_not_measured_not_taken_for_the_framing() -> None:
    """An EventSource page sees each event's data only: its stream and connection bytes
    are recorded as not measured, so C8 never reads the data alone as "0 % overhead"."""
    from analysis.metrics import bytes_per_token
    from loadtests.browser.clients import CLIENTS

    assert not CLIENTS["browser-eventsource"].sees_framing
    assert all(c.sees_framing for n, c in CLIENTS.items() if n != "browser-eventsource")
    s = _scenario(stream={"tokens": 3, "ttft_ms": 10, "gap_ms": 1})
    rows = []
    for framing in (True, False):
        acct = stream_account(
            _page_stream(), LABELS, s.stream, CLOCK, lambda t: 4, sees_framing=framing
        )
        rows.append({**acct.streams_row(), "arm": str(framing)})
    assert [r["bytes_in"] for r in rows] == [99, None]
    per_token = bytes_per_token(pd.DataFrame(rows)).set_index("arm")["app_bytes_per_token"]
    assert per_token["True"] == 33.0 and pd.isna(per_token["False"])


def test_a_record_that_is_not_what_was_asked_is_refused() -> None:
    s = _scenario()
    with pytest.raises(RecordError):
        stream_account(_page_stream(seed=8), LABELS, s.stream, CLOCK, lambda t: None)
    with pytest.raises(RecordError):
        stream_account(_page_stream(outcome="fine"), LABELS, s.stream, CLOCK, lambda t: None)


def test_a_page_connection_replays_into_a_connection_account() -> None:
    rec = {
        "uid": "p/b0.2.c1",
        "user": 2,
        "bytes_in": 10,
        "bytes_out": 5,
        "events": [
            ["connect", 1000.0],
            ["open", 1001.0],
            ["start", 1001.0],
            ["end", 1003.0],
            ["close", 1010.0, "server", 1006, "EOF"],
        ],
    }
    row = connection_account(rec, LABELS, CLOCK).row()
    assert row["t_connect_ns"] == 5_000_000_000 and row["t_close_ns"] == 5_010_000_000
    assert row["busy_ns"] == 2_000_000 and row["streams"] == 1
    assert (row["closed_by"], row["close_code"], row["close_reason"]) == ("server", 1006, "EOF")
