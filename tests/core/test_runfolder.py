"""Run folder: naming, manifest under concurrency, record parts, crash safety, reading."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
import warnings
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from core import runfolder as rf
from core.records import SCHEMA_VERSION, TABLES

NOW = datetime(2026, 5, 9, 7, 35, 25, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def token_row(i: int, uid: str = "w-1") -> dict:
    return {"stream_uid": uid, "seq": i, "t_recv_ns": 10**15 + i, "t_server_ns": None, "nbytes": 60}


# --------------------------------------------------------------------------- naming


def test_run_dir_name_and_initial_manifest(tmp_path: Path) -> None:
    run = rf.create_run_dir(tmp_path / "results", "chat/sse smoke!", git_sha7="abc1234", now=NOW)
    assert run.name == "20260509T073525Z_chat-sse-smoke_abc1234"
    assert run.is_dir()
    m = rf.read_manifest(run)
    assert m["schema_version"] == SCHEMA_VERSION
    assert m["status"] == rf.STATUS_INCOMPLETE
    assert m["run_id"] == run.name
    assert m["scenario_name"] == "chat/sse smoke!"


def test_run_dir_time_is_utc_and_nogit(tmp_path: Path) -> None:
    local = NOW.astimezone(timezone(timedelta(hours=5)))
    run = rf.create_run_dir(tmp_path, "x", now=local)
    assert run.name == "20260509T073525Z_x_nogit"


def test_sanitize_name() -> None:
    assert rf.sanitize_name("../../etc/passwd") == "etc-passwd"
    assert rf.sanitize_name("ok_name-1.2") == "ok_name-1.2"
    assert rf.sanitize_name("...") == "run"
    assert rf.sanitize_name("") == "run"


def test_never_overwrites_same_second(tmp_path: Path) -> None:
    a = rf.create_run_dir(tmp_path, "s", git_sha7="abc1234", now=NOW)
    (a / "marker").write_text("first")
    b = rf.create_run_dir(tmp_path, "s", git_sha7="abc1234", now=NOW)
    c = rf.create_run_dir(tmp_path, "s", git_sha7="abc1234", now=NOW)
    assert len({a, b, c}) == 3
    assert b.name == a.name + "-2" and c.name == a.name + "-3"
    assert (a / "marker").read_text() == "first"


def test_latest_symlink_is_relative_and_moves(tmp_path: Path) -> None:
    a = rf.create_run_dir(tmp_path, "s", now=NOW)
    latest = tmp_path / "latest"
    assert latest.is_symlink() and os.readlink(latest) == a.name
    b = rf.create_run_dir(tmp_path, "s", now=NOW + timedelta(seconds=1))
    assert os.readlink(latest) == b.name
    assert latest.resolve() == b.resolve()
    assert rf.read_run(latest).path == b.resolve()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp links left


def test_start_run_fills_git_host_packages(tmp_path: Path) -> None:
    run = rf.start_run(tmp_path, "s", repo_dir=tmp_path, manifest={"seeds": [1, 2]}, now=NOW)
    m = rf.read_manifest(run)
    assert m["git"] == {"sha": None, "sha7": None, "dirty": None}  # not a checkout: no raise
    assert m["host"]["logical_cores"] == os.cpu_count()
    assert m["packages"]["pyarrow"] is not None
    assert m["seeds"] == [1, 2]
    assert m["status"] == "incomplete"


# --------------------------------------------------------------------------- host facts / git


def test_git_info_on_a_checkout(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
    }
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    try:
        subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, env=env)
        (tmp_path / "f").write_text("1")
        (tmp_path / "results").mkdir()
        (tmp_path / "results" / "index.md").write_text("published")
        subprocess.run(["git", "-C", str(tmp_path), "add", "f", "results"], check=True, env=env)
        subprocess.run(["git", "-C", str(tmp_path), "commit", "-qm", "x"], check=True, env=env)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git not usable here")
    info = rf.git_info(tmp_path)
    assert len(info["sha"]) == 40 and info["sha7"] == info["sha"][:7]
    assert info["dirty"] is False
    # a published result rewritten (make sample's second suite after the first's publish)
    # is not a change to the code that ran
    (tmp_path / "results" / "index.md").write_text("republished")
    assert rf.git_info(tmp_path)["dirty"] is False
    (tmp_path / "f").write_text("2")
    assert rf.git_info(tmp_path)["dirty"] is True
    assert rf.git_info(tmp_path / "nope")["sha"] is None


def test_host_facts_and_package_versions() -> None:
    facts = rf.host_facts()
    for key in ("cpu_model", "logical_cores", "memory_bytes", "kernel", "python_version"):
        assert key in facts
    assert facts["memory_bytes"] is None or facts["memory_bytes"] > 0
    json.dumps(facts)
    versions = rf.package_versions(["pyarrow", "surely-not-installed-pkg"])
    assert versions["pyarrow"] and versions["surely-not-installed-pkg"] is None


# --------------------------------------------------------------------------- manifest


def test_manifest_roundtrip_and_status(tmp_path: Path) -> None:
    run = rf.create_run_dir(tmp_path, "s", now=NOW)
    rf.write_manifest(run, {"arms": ["sse", "ws"], "path": run, "when": NOW})
    m = rf.read_manifest(run)
    assert m["schema_version"] == SCHEMA_VERSION and m["status"] == "incomplete"
    assert m["path"] == str(run) and m["when"] == NOW.isoformat()
    rf.update_manifest(run, phases=["a"])
    rf.update_manifest(run, {"weird key": 1})
    m = rf.mark_complete(run)
    assert m["status"] == "complete" and "completed_utc" in m
    assert rf.read_manifest(run)["phases"] == ["a"]
    assert rf.read_manifest(run)["weird key"] == 1
    m = rf.mark_incomplete(run, "interrupted")
    assert m["status"] == "incomplete" and m["incomplete_reason"] == "interrupted"
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def _update_many(run_dir: str, proc: int, n: int) -> None:
    for j in range(n):
        rf.update_manifest(run_dir, {f"p{proc}_{j}": j})

        def add(m: dict, proc: int = proc, j: int = j) -> None:
            m.setdefault("log", []).append(f"{proc}:{j}")

        rf.modify_manifest(run_dir, add)


def test_manifest_concurrent_updates_lose_nothing(tmp_path: Path) -> None:
    run = rf.create_run_dir(tmp_path, "s", now=NOW)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_update_many, args=(str(run), p, 20)) for p in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    m = rf.read_manifest(run)
    for p in range(4):
        for j in range(20):
            assert m[f"p{p}_{j}"] == j
    assert len(m["log"]) == 80 and len(set(m["log"])) == 80
    assert m["status"] == "incomplete" and m["schema_version"] == SCHEMA_VERSION


def test_write_json_atomic(tmp_path: Path) -> None:
    path = rf.write_json(tmp_path, "summary.json", {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    rf.write_json(tmp_path, "summary.json", {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
    with pytest.raises(ValueError):
        rf.write_json(tmp_path, "../x.json", {})


# --------------------------------------------------------------------------- RecordWriter


def test_flush_by_rows(tmp_path: Path) -> None:
    clock = FakeClock()
    with rf.RecordWriter(tmp_path, "tokens", "w 1/x", flush_rows=10, clock=clock) as w:
        w.extend(token_row(i) for i in range(25))
        assert w.buffered == 5
        assert [p.name for p in w.parts] == ["w-1-x-00000.parquet", "w-1-x-00001.parquet"]
    assert len(w.parts) == 3 and w.rows_written == 25
    df = rf.read_table(tmp_path, "tokens")
    assert list(df.columns) == TABLES["tokens"].names
    assert df["seq"].tolist() == list(range(25))
    assert df["seq"].dtype == "Int64"
    assert df["t_server_ns"].isna().all()
    assert df["t_recv_ns"].iloc[-1] == 10**15 + 24  # exact int64, no float round trip


def test_flush_by_time_on_append_and_poll(tmp_path: Path) -> None:
    clock = FakeClock()
    w = rf.RecordWriter(tmp_path, "tokens", "w", flush_seconds=2.0, clock=clock)
    w.append(token_row(0))
    clock.t += 1.9
    w.append(token_row(1))
    assert w.parts == []
    clock.t += 0.2
    w.append(token_row(2))  # 2.1 s since the last flush
    assert len(w.parts) == 1 and w.buffered == 0
    w.append(token_row(3))
    assert not w.poll()
    clock.t += 2.0
    assert w.poll() and len(w.parts) == 2
    assert w.flush() is None  # nothing buffered: no empty part
    w.close()
    with pytest.raises(ValueError):
        w.append(token_row(4))
    assert rf.read_table(tmp_path, "tokens")["seq"].tolist() == [0, 1, 2, 3]


def test_append_columns_and_mixed_order(tmp_path: Path) -> None:
    with rf.RecordWriter(tmp_path, "tokens", "w", clock=FakeClock()) as w:
        w.append(token_row(0))
        w.append_columns({"stream_uid": ["a"] * 3, "seq": [1, 2, 3], "t_recv_ns": [5, 6, 7]})
        w.append(token_row(4))
        w.append_columns({})
    df = rf.read_table(tmp_path, "tokens")
    assert df["seq"].tolist() == [0, 1, 2, 3, 4]
    assert df["nbytes"].isna().tolist() == [False, True, True, True, False]
    with rf.RecordWriter(tmp_path, "tokens", "w2") as w2:
        with pytest.raises(ValueError):
            w2.append_columns({"seq": [1], "t_recv_ns": [1, 2]})
        with pytest.raises(KeyError):
            w2.append_columns({"bogus": [1]})


def test_unknown_column_and_bad_type(tmp_path: Path) -> None:
    w = rf.RecordWriter(tmp_path, "streams", "w")
    with pytest.raises(KeyError):
        w.append({"stream_uid": "a", "not_a_column": 1})
    w.append({"stream_uid": "a", "seed": "not an int"})
    with pytest.raises(Exception, match=r"seed|int"):
        w.flush()
    assert w.rows_dropped == 1
    w.append({"stream_uid": "b", "seed": 3, "done": True})  # the writer still works
    w.close()
    df = rf.read_table(tmp_path, "streams")
    assert df["stream_uid"].tolist() == ["b"] and bool(df["done"].iloc[0])
    with pytest.raises(KeyError):
        rf.RecordWriter(tmp_path, "nope", "w")


def test_reused_writer_id_never_overwrites(tmp_path: Path) -> None:
    for i in range(2):
        with rf.RecordWriter(tmp_path, "tokens", "w") as w:
            w.append(token_row(i))
    names = sorted(p.name for p in rf.part_files(tmp_path, "tokens"))
    assert names == ["w-00000.parquet", "w-00001.parquet"]
    assert sorted(rf.read_table(tmp_path, "tokens")["seq"].tolist()) == [0, 1]


def test_several_writers_and_tables(tmp_path: Path) -> None:
    for wid in ("a", "b", "c"):
        with rf.RecordWriter(tmp_path, "tokens", wid, flush_rows=3) as w:
            w.extend(token_row(i, uid=wid) for i in range(7))
    df = rf.read_table(tmp_path, "tokens")
    assert len(df) == 21 and df.groupby("stream_uid").size().to_dict() == {"a": 7, "b": 7, "c": 7}
    cols = rf.read_table(tmp_path, "tokens", columns=["seq"])
    assert list(cols.columns) == ["seq"] and len(cols) == 21


def test_read_table_empty_has_schema(tmp_path: Path) -> None:
    for name, schema in TABLES.items():
        df = rf.read_table(tmp_path, name)
        assert df.empty and list(df.columns) == schema.names
    df = rf.read_table(tmp_path, "streams")
    assert df["t_send_ns"].dtype == "Int64" and df["done"].dtype == "boolean"
    assert rf.read_table(tmp_path, "streams", dtypes="numpy")["t_send_ns"].dtype == "int64"


def test_corrupt_and_temp_parts_skipped(tmp_path: Path) -> None:
    with rf.RecordWriter(tmp_path, "tokens", "good") as w:
        w.extend(token_row(i) for i in range(5))
    good = w.parts[0]
    (tmp_path / "tokens" / "bad-00000.parquet").write_bytes(b"PAR1 not really")
    truncated = tmp_path / "tokens" / "trunc-00000.parquet"
    truncated.write_bytes(good.read_bytes()[:100])
    (tmp_path / "tokens" / ".half.tmp").write_bytes(good.read_bytes()[:50])
    with pytest.warns(rf.CorruptPartWarning) as record:
        df = rf.read_table(tmp_path, "tokens")
    assert len(record) == 2
    assert df["seq"].tolist() == list(range(5))


_KILLED_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from core import runfolder as rf
    run = sys.argv[1]
    w = rf.RecordWriter(run, "tokens", "victim", flush_rows=100)
    for i in range(250):
        w.append({"stream_uid": "s", "seq": i, "t_recv_ns": i, "nbytes": 1})
    rf.update_manifest(run, phase="chat/sse/rep1")
    print("ready", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_killed_writer_keeps_flushed_rows(tmp_path: Path) -> None:
    run = rf.create_run_dir(tmp_path, "s", now=NOW)
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_CHILD, str(run)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -9, proc.stderr
    assert "ready" in proc.stdout
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = rf.read_run(run)
        assert r.tokens["seq"].tolist() == list(range(200))  # two flushed parts; 50 lost
    assert r.status == "incomplete" and not r.complete
    assert r.manifest["phase"] == "chat/sse/rep1"


# --------------------------------------------------------------------------- runs and schema


def test_read_run_lazy_tables(tmp_path: Path) -> None:
    run = rf.create_run_dir(tmp_path, "s", now=NOW)
    rf.write_json(run, "summary.json", {"ok": True})
    r = rf.read_run(run)
    assert r.schema_version == SCHEMA_VERSION and r.run_id == run.name
    assert r._cache == {}
    assert r.streams.empty and "streams" in r._cache
    assert r.json("summary.json") == {"ok": True} and r.json("missing.json") is None
    assert isinstance(r.resources, pd.DataFrame)


def test_check_schema(tmp_path: Path) -> None:
    a = rf.read_run(rf.create_run_dir(tmp_path, "a", now=NOW))
    b = rf.read_run(rf.create_run_dir(tmp_path, "b", now=NOW))
    assert rf.check_schema([a, b]) == SCHEMA_VERSION
    assert rf.check_schema([a.manifest, b], expected=SCHEMA_VERSION) == SCHEMA_VERSION
    assert rf.check_schema([]) is None
    old = {"run_id": "old-run", "schema_version": SCHEMA_VERSION - 1}
    with pytest.raises(rf.SchemaMismatch, match="old-run"):
        rf.check_schema([a, old])
    with pytest.raises(rf.SchemaMismatch):
        rf.check_schema([old], expected=SCHEMA_VERSION)
    with pytest.raises(rf.SchemaMismatch):
        rf.check_schema([a, {"run_id": "no-version"}])
