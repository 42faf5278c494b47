"""analysis.attribution: nginx's close verdicts joined onto the client's connection records."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from analysis.attribution import attribute_proxy_closes, proxy_closes_of_run


def conns(*rows: tuple[str, str | None, str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "conn_uid": pd.array([r[0] for r in rows], dtype="string"),
            "closed_by": pd.array([r[1] for r in rows], dtype="string"),
            "close_reason": pd.array([r[2] for r in rows], dtype="string"),
        }
    )


STREAMS = pd.DataFrame(
    {
        "phase": ["p/sse/r1", "p/sse/r1", "q/sse/r1"],
        "stream_id": ["1.0.0.0.0", "1.0.1.0.0", "1.0.0.0.0"],
        "conn_uid": ["p/sse/r1/0.0.c1", "p/sse/r1/0.1.c1", "q/sse/r1/0.0.c1"],
    }
)


def close(closed_by: str = "proxy", **kw: str | None) -> dict:
    return {
        "phase": kw.pop("phase", "p/sse/r1"),
        "event": "upstream_timed_out",
        "closed_by": closed_by,
        "message": "upstream timed out (110: Connection timed out) while reading upstream",
        "stream_id": kw.pop("stream_id", None),
        "conn_uid": kw.pop("conn_uid", None),
    }


def test_sse_close_found_through_the_stream_id_of_the_same_phase() -> None:
    c = conns(
        ("p/sse/r1/0.0.c1", "server", "EOF before done"),
        ("p/sse/r1/0.1.c1", "client", "session end"),
        ("q/sse/r1/0.0.c1", "server", "EOF before done"),
    )
    out, stats = attribute_proxy_closes(c, STREAMS, [close(stream_id="1.0.0.0.0")])
    assert out["closed_by"].tolist() == ["proxy", "client", "server"]  # q's same id untouched
    assert out["close_reason"][0].startswith("nginx: upstream timed out")
    assert out["close_reason"][0].endswith("(client saw: EOF before done)")
    assert stats == {"closes": 1, "matched": 1, "changed": 1, "unplaced": 0}
    assert c["closed_by"][0] == "server"  # the input frame is not modified
    assert out["closed_by"].dtype == c["closed_by"].dtype


def test_ws_close_found_through_conn_uid_and_client_closes_stay() -> None:
    c = conns(("p/ws/r1/0.0.c1", "error", None), ("p/ws/r1/0.1.c1", "client", "bye"))
    closes = [close(conn_uid="p/ws/r1/0.0.c1"), close(conn_uid="p/ws/r1/0.1.c1")]
    out, stats = attribute_proxy_closes(c, STREAMS, closes)
    assert out["closed_by"].tolist() == ["proxy", "client"]
    assert out["close_reason"][0] == (
        "nginx: upstream timed out (110: Connection timed out) while reading upstream"
    )
    assert out["close_reason"][1] == "bye"
    assert stats["matched"] == 2 and stats["changed"] == 1


def test_unplaceable_closes_are_counted_not_guessed() -> None:
    c = conns(("p/sse/r1/0.0.c1", "server", None))
    closes = [close(), close(stream_id="no-such"), close(conn_uid="nope")]
    out, stats = attribute_proxy_closes(c, STREAMS, closes)
    assert out["closed_by"].tolist() == ["server"]
    assert stats["unplaced"] == 3 and stats["matched"] == 0


def test_server_verdict_keeps_server_and_names_nginx() -> None:
    c = conns(("p/sse/r1/0.0.c1", "server", None))
    out, stats = attribute_proxy_closes(c, STREAMS, [close("server", stream_id="1.0.0.0.0")])
    assert out["closed_by"].tolist() == ["server"]
    assert out["close_reason"][0].startswith("nginx: ")
    assert stats["changed"] == 0


def test_closes_read_from_the_phases_of_the_manifest(tmp_path: Path) -> None:
    (tmp_path / "nginx" / "p").mkdir(parents=True)
    (tmp_path / "nginx" / "p" / "closes.json").write_text(json.dumps([close(stream_id="x")]))
    manifest = {
        "phases": [
            {"name": "p/sse/r1", "proxy": {"logs": {"closes": "nginx/p/closes.json"}}},
            {"name": "d/sse/r1"},  # no proxy
            {"name": "m/sse/r1", "proxy": {"logs": {"closes": "nginx/m/closes.json"}}},  # gone
        ]
    }
    rows = proxy_closes_of_run(manifest, tmp_path)
    assert [(r["phase"], r["stream_id"]) for r in rows] == [("p/sse/r1", "x")]
    assert proxy_closes_of_run(manifest, None) == []
