"""Run integrity (issue 11, items 1, 2, 3, 10): a run whose streams fail, whose records are
lost or whose disk fills up never ends "complete" with exit 0; usage errors are exit 2 with
one line before any process starts; a SIGKILLed runner takes every child with it."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bench.cli import main
from bench.sampler import ResourceSampler
from core.runfolder import RecordWriter, read_manifest, read_table

ROOT = Path(__file__).resolve().parents[2]

TINY = """\
name = "tiny"
arms = ["sse"]
seed = 11
[load]
users = {users}
spawn_rate = 50
duration_s = {duration}
stop_timeout_s = 2
[stream]
tokens = {tokens}
ttft_ms = {ttft_ms}
gap_ms = {gap_ms}
[behaviour]
stream_timeout_s = {timeout_s}
"""


def scenario(tmp_path: Path, **kw: float) -> Path:
    values = {"users": 3, "duration": 2, "tokens": 10, "ttft_ms": 20, "gap_ms": 10}
    values["timeout_s"] = 60
    values.update(kw)
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(**values))
    return path


def run_cli(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "bench.cli", "run", *args, "--pause", "0"]
    return subprocess.run(
        cmd,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def only_run(results: Path) -> Path:
    (run,) = [p for p in results.iterdir() if p.is_dir() and not p.is_symlink()]
    return run


# --------------------------------------------------------------------------- usage errors


def _usage_error(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2, argv
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    return lines[0]


BAD_RUN_ARGS = [
    (["--duration", "inf"], "--duration"),
    (["--duration", "nan"], "--duration"),
    (["--pause", "nan"], "--pause"),
    (["--pause", "inf"], "--pause"),
    (["--pause", "-1"], "--pause"),
    (["--seed", "-1"], "seed"),
    (["--seed", str(2**70)], "seed"),
    (["--seed", "1.5"], "--seed"),
    (["--users", "50.5"], "--users"),
    (["--max-error-share", "2"], "--max-error-share"),
]


@pytest.mark.parametrize(("args", "word"), BAD_RUN_ARGS, ids=[" ".join(a) for a, _ in BAD_RUN_ARGS])
def test_bad_flags_are_usage_errors_before_any_process(
    tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], word: str
) -> None:
    results = tmp_path / "r"
    line = _usage_error(capsys, ["run", str(scenario(tmp_path)), *args, "--results", str(results)])
    assert word in line
    assert not results.exists()  # nothing was created, nothing started


@pytest.mark.parametrize(
    ("snippet", "word"),
    [
        ("[stream]\ntokens = 0", "stream.tokens"),
        ("[stream]\ngap_ms = -5", "stream.gap_ms"),
        ("[load]\nduration_s = nan", "load.duration_s"),
        ("[load]\nusers = 50.5", "load.users"),
        ("[load]\nusers = true", "load.users"),
        ("[load]\nspawn_rate = 0", "load.spawn_rate"),
        ("[load", "not valid TOML"),
    ],
)
def test_bad_scenario_files_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture, snippet: str, word: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\n' + snippet + "\n")
    results = tmp_path / "r"
    assert word in _usage_error(capsys, ["run", str(path), "--results", str(results)])
    assert not results.exists()


def test_results_on_a_file_or_a_read_only_folder_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    line = _usage_error(capsys, ["run", str(scenario(tmp_path)), "--results", str(a_file)])
    assert "--results" in line and "not a folder" in line
    below_file = a_file / "sub"
    line = _usage_error(capsys, ["run", str(scenario(tmp_path)), "--results", str(below_file)])
    assert "--results" in line
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)  # enough for a user; root writes anyway, so also a read-only bind mount
    subprocess.run(["mount", "--bind", "-o", "ro", str(ro), str(ro)], capture_output=True)
    try:
        if not _is_ro_mount(ro):
            pytest.skip("cannot make a read-only folder here (root without mount rights)")
        line = _usage_error(capsys, ["run", str(scenario(tmp_path)), "--results", str(ro / "r")])
        assert "--results" in line and "not writable" in line
    finally:
        subprocess.run(["umount", str(ro)], check=False, capture_output=True)
        ro.chmod(0o755)


def _is_ro_mount(path: Path) -> bool:
    try:
        with open(path / ".probe", "w"):
            pass
    except OSError:
        return True
    (path / ".probe").unlink()
    return False


def test_bench_checks_its_flags_too(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for argv in (
        ["bench", "--repetitions", "0", "--results", str(tmp_path / "r")],
        ["bench", "--repetitions", "1.5", "--results", str(tmp_path / "r")],
        ["bench", "--protocols", "sse,grpc", "--results", str(tmp_path / "r")],
        ["bench", "--results", str(tmp_path / "tiny.toml"), "--quick"],
    ):
        scenario(tmp_path)  # tiny.toml is a file: --results on it must be refused
        _usage_error(capsys, argv)
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- failed streams


def test_a_phase_whose_streams_fail_fails_the_run(tmp_path: Path) -> None:
    """Every stream times out (stream_timeout_s 0.3 s < TTFT 2 s): the servers answer, the
    client gives up — the phase is failed with the error share, the run exits 1."""
    results = tmp_path / "r"
    path = scenario(tmp_path, ttft_ms=2000, timeout_s=0.3, duration=2)
    res = run_cli(str(path), "--results", str(results))
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    m = read_manifest(only_run(results))
    assert m["status"] == "failed" and "error share" in m["status_reason"]
    (ph,) = m["phases"]
    assert ph["status"] == "failed" and "error share" in ph["reason"]
    check = ph["stream_check"]
    assert check["failed_streams"] == check["rows"] > 0
    assert check["error_share"] == 1.0 and check["max_error_share"] == 0.01
    assert m["load_generator"]["max_error_share"] == 0.01
    assert "FAILED" in res.stdout


def test_the_error_share_threshold_is_configurable(tmp_path: Path) -> None:
    results = tmp_path / "r"
    path = scenario(tmp_path, ttft_ms=2000, timeout_s=0.3, duration=2)
    res = run_cli(str(path), "--results", str(results), "--max-error-share", "1")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    m = read_manifest(only_run(results))
    assert m["status"] == "complete" and m["phases"][0]["status"] == "ok"
    assert m["phases"][0]["stream_check"]["max_error_share"] == 1.0


# --------------------------------------------------------------------------- full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only); filled up to ~250 KiB free when the run starts."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_stops_the_phase_at_once_and_fails_the_run(small_disk: Path) -> None:
    ballast = small_disk / "ballast"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    ballast.write_bytes(b"\0" * (free - 700 * 1024))  # ~440 KiB for records after the reserve
    results = small_disk / "r"
    path = scenario(small_disk.parent, users=10, tokens=1000, ttft_ms=5, gap_ms=5, duration=40)
    t0 = time.monotonic()
    res = run_cli(str(path), "--results", str(results), timeout_s=120)
    wall = time.monotonic() - t0
    out = res.stdout + res.stderr
    assert res.returncode == 1, out[-4000:]
    assert "Traceback" not in out, out[-4000:]
    assert wall < 40, f"the phase ran {wall:.0f} s: it did not stop when the disk filled up"
    assert any("No space left on device" in ln for ln in res.stderr.splitlines()), out[-3000:]
    m = read_manifest(only_run(results))
    assert m["status"] == "failed", m.get("status_reason")
    assert "No space left on device" in m["status_reason"]
    (ph,) = m["phases"]
    assert ph["status"] == "failed" and ph["reason"]
    # what was flushed before the disk filled up stays readable, and whole: every stream
    # row on disk has all its token rows (tokens are written before their streams)
    run = only_run(results)
    s = read_table(run, "streams")
    assert len(s) > 0 and s["stream_uid"].is_unique
    per_stream = read_table(run, "tokens").groupby("stream_uid").size()
    for uid, n in zip(s["stream_uid"], s["n_received"], strict=True):
        assert per_stream.get(uid, 0) == n, uid


def test_the_sampler_stops_on_a_failed_write_without_raising(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sampler = ResourceSampler(tmp_path, writer_id="bench-1", flush_seconds=0.0)
    sampler.set_phase("p", "sse")
    sampler.watch(os.getpid(), "server")

    def full(self: RecordWriter, table: object) -> Path:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(RecordWriter, "_write_part", full)
    sampler.sample_once()
    assert sampler.write_error is not None and "No space left" in sampler.write_error
    assert sampler.sample_once() == 0  # stopped
    sampler.stop()  # does not raise
    assert sampler.rows_dropped >= 1


# --------------------------------------------------------------------------- SIGKILL


def test_sigkill_of_the_runner_takes_every_child_with_it(tmp_path: Path) -> None:
    results = tmp_path / "r"
    path = scenario(tmp_path, duration=30)
    cmd = [sys.executable, "-m", "bench.cli", "run", str(path), "--results", str(results)]
    runner = subprocess.Popen(
        [*cmd, "--processes", "2"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    kids: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # server + Locust master + 2 workers
            kids = psutil.Process(runner.pid).children(recursive=True)
            if len(kids) >= 4 and results.exists() and _streams_flushed(results):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the run did not get going: {kids}")
        kids = psutil.Process(runner.pid).children(recursive=True)
        runner.send_signal(signal.SIGKILL)
        runner.wait(10)
        _, alive = psutil.wait_procs(kids, timeout=15)
        assert not alive, [(p.pid, p.name()) for p in alive]
    finally:
        if runner.poll() is None:
            runner.kill()
        for p in kids:  # never leave one behind, even when the test failed
            with contextlib.suppress(psutil.Error):
                p.kill()
    m = read_manifest(only_run(results))
    assert m["status"] == "incomplete"  # killed: nobody could say more — and it says so
    assert len(read_table(only_run(results), "streams")) > 0


def test_sigkill_of_a_locust_worker_fails_the_phase_and_keeps_its_flushed_records(
    tmp_path: Path,
) -> None:
    results = tmp_path / "r"
    path = scenario(tmp_path, duration=12, users=6)  # long enough for a loaded machine
    cmd = [sys.executable, "-m", "bench.cli", "run", str(path), "--results", str(results)]
    runner = subprocess.Popen(
        [*cmd, "--processes", "2", "--pause", "0"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        victim = _worker_with_a_flushed_part(runner.pid, results)
        victim.send_signal(signal.SIGKILL)
        out, _ = runner.communicate(timeout=90)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 1, out[-3000:]
    m = read_manifest(only_run(results))
    (ph,) = m["phases"]
    wid = next(w for w in m["record_writers"][ph["name"]] if w.endswith(f"-{victim.pid}"))
    assert ph["status"] == "failed" and f"{wid} never closed" in ph["reason"]
    assert m["status"] == "failed"
    # what the killed worker flushed before it died is on disk
    s = read_table(only_run(results), "streams")
    assert (s["worker"].astype(object) == wid).sum() > 0


def _worker_with_a_flushed_part(runner_pid: int, results: Path) -> psutil.Process:
    """A Locust worker (grandchild of the runner) once its first streams part is on disk."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for master in psutil.Process(runner_pid).children():
            try:  # other children come and go (ss, git): skip what is gone or a zombie
                if "locust" not in " ".join(master.cmdline()):
                    continue
                workers = master.children()
            except psutil.Error:
                continue
            for worker in workers:
                parts = results.glob(f"*/streams/*-{worker.pid}-*.parquet")
                if results.exists() and any(parts):
                    return worker
        time.sleep(0.1)
    pytest.fail("no Locust worker flushed streams within 60 s")


def _streams_flushed(results: Path) -> bool:
    runs = [p for p in results.iterdir() if p.is_dir() and not p.is_symlink()]
    return bool(runs) and any((runs[0] / "streams").glob("*.parquet"))


def test_the_manifest_status_fields_are_documented() -> None:
    text = (ROOT / "results" / "README.md").read_text()
    for word in ("status_reason", "`failed`", "phases[].status", "max_error_share"):
        assert word in text, word
