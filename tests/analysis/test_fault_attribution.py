"""analysis.fault_attribution: the fault proxy's log joined onto the client's connections."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from analysis.fault_attribution import (
    attribute_fault_cuts,
    connection_faults,
    fault_rows_of_run,
    place_connections,
)

P = "m.4g/sse/r1"
W = "m.4g/ws/r1"


def conns(*rows: tuple) -> pd.DataFrame:
    """(conn_uid, phase, user, t_connect_ns, closed_by, close_reason) per connection."""
    cols = ["conn_uid", "phase", "user", "t_connect_ns", "closed_by", "close_reason"]
    df = pd.DataFrame([dict(zip(cols, r, strict=True)) for r in rows])
    df["worker"] = "h-1"
    for c in ("conn_uid", "phase", "closed_by", "close_reason", "worker"):
        df[c] = pd.array(df[c], dtype="string")
    return df


STREAMS = pd.DataFrame(
    {
        "phase": [P, P],
        "stream_id": ["s-a", "s-b"],
        "worker": ["h-1", "h-1"],
        "user": [0, 1],
        "conn_uid": [f"{P}/0.0.c1", f"{P}/0.1.c1"],
    }
)


def ev(ev: str, t: int, conn: int, phase: str = P, **kw) -> dict:
    return {"ev": ev, "t_ns": t, "conn": conn, "phase": phase, **kw}


def test_sse_connections_placed_by_user_and_connect_time_including_a_resume() -> None:
    c = conns(
        (f"{P}/0.0.c1", P, 0, 1_000, "server", "EOF"),
        (f"{P}/0.0.c2", P, 0, 5_000, "client", "session end"),  # the resume of s-a
        (f"{P}/0.1.c1", P, 1, 1_100, "client", "session end"),
    )
    rows = [
        ev("accept", 1_010, 1),
        ev("request", 1_020, 1, stream_id="s-a"),
        ev("accept", 1_120, 2),
        ev("request", 1_130, 2, stream_id="s-b"),
        ev("cut", 3_000, 1, stream_id="s-a", cause="after_s", client="rst", server="rst"),
        ev("accept", 5_010, 3),
        ev("request", 5_020, 3, stream_id="s-a"),
        ev("stall", 6_000, 3, stream_id="s-a", stall_ms=200.0),
        ev("accept", 7_000, 4),
        ev("request", 7_010, 4, stream_id="s-unknown"),
    ]
    placed = place_connections(c, STREAMS, rows)
    assert placed == {
        (P, 1): f"{P}/0.0.c1",
        (P, 2): f"{P}/0.1.c1",
        (P, 3): f"{P}/0.0.c2",  # not in the streams table, found through user 0's connects
        (P, 4): None,
    }
    f = connection_faults(c, STREAMS, rows).set_index("conn")
    assert f.loc[1, "cut_cause"] == "after_s" and f.loc[1, "faults"] == 1
    assert f.loc[3, "stalls"] == 1 and f.loc[3, "stall_ms"] == 200.0
    out, stats = attribute_fault_cuts(c, STREAMS, rows)
    assert out["closed_by"].tolist() == ["proxy", "client", "client"]
    assert out["close_reason"][0] == (
        "faultproxy: cut after_s (rst to the client, rst to the server) (client saw: EOF)"
    )
    assert stats == {"cuts": 1, "matched": 1, "changed": 1, "unplaced": 0}
    assert c["closed_by"][0] == "server"  # the input is not modified
    assert out["closed_by"].dtype == c["closed_by"].dtype


def test_ws_placed_by_conn_uid_and_client_closes_are_kept() -> None:
    c = conns(
        (f"{W}/0.0.c1", W, 0, 1_000, "error", None),
        (f"{W}/0.1.c1", W, 1, 1_000, "client", "bye"),
    )
    rows = [
        ev("accept", 1_010, 1, W),
        ev("request", 1_011, 1, W, conn_uid=f"{W}/0.0.c1"),
        ev("refused", 1_012, 1, W, conn_uid=f"{W}/0.0.c1", cause="handover"),
        ev("accept", 1_020, 2, W),
        ev("request", 1_021, 2, W, conn_uid=f"{W}/0.1.c1"),
        ev(
            "cut",
            2_000,
            2,
            W,
            conn_uid=f"{W}/0.1.c1",
            cause="handover",
            client="rst",
            server="silent",
        ),
        ev("accept", 1_030, 3, W),
        ev("request", 1_031, 3, W, conn_uid=f"{W}/0.9.c1"),
        ev(
            "cut",
            2_000,
            3,
            W,
            conn_uid=f"{W}/0.9.c1",
            cause="handover",
            client="rst",
            server="silent",
        ),
    ]
    out, stats = attribute_fault_cuts(c, STREAMS.iloc[0:0], rows)
    assert out["closed_by"].tolist() == ["proxy", "client"]
    assert out["close_reason"][0] == "faultproxy: refused (network down)"
    assert stats == {"cuts": 3, "matched": 2, "changed": 1, "unplaced": 1}


def test_fault_rows_of_run_reads_each_network_phase(tmp_path: Path) -> None:
    log = tmp_path / "network" / "x" / "faults.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text(json.dumps({"ev": "accept", "t_ns": 1, "conn": 1}) + "\n{torn")
    manifest = {
        "phases": [
            {"name": P, "network": {"logs": {"faults": "network/x/faults.jsonl"}}},
            {"name": "m.loopback/sse/r1", "network": {"profile": "loopback", "proxy": False}},
            {"name": "plain/sse/r1"},
        ]
    }
    rows = fault_rows_of_run(manifest, tmp_path)
    assert rows == [{"ev": "accept", "t_ns": 1, "conn": 1, "phase": P}]
    assert fault_rows_of_run(manifest, None) == []
