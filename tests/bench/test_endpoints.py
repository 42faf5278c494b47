"""`ssevsws run` against your own endpoint: --sse-format / --ws-format, --header (syntax,
${VAR} from the environment, redaction), --ca-file / --insecure — usage errors are exit 2
with one line before any process starts; a self-signed https server is refused without its
certificate and accepted with it; a run with a bearer token never writes the token into
its run folder, and records integrity and the schedule as not measured."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.headers import REDACTED, HeaderError, describe, parse_headers, redact_argv
from bench.procs import Listening, start_listening
from core.runfolder import read_manifest, read_table
from core.tlscert import make_self_signed_cert

from .test_integrity import _usage_error, only_run, scenario

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-test-0123456789abcdef-SECRET"
LITERAL = "literal-value-4242-SECRET"


def _server(*args: str, env: dict[str, str] | None = None) -> Listening:
    cmd = [sys.executable, "-m", "servers", "sse", "--port", "0", *args]
    return start_listening(
        "sse", cmd, cwd=ROOT, env={**os.environ, **(env or {})}, health_path=None
    )


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    cert, key = make_self_signed_cert(tmp_path_factory.mktemp("cli-tls"))
    srv = _server("--tls-cert", str(cert), "--tls-key", str(key))
    try:
        yield f"https://127.0.0.1:{srv.port}", str(cert)
    finally:
        srv.stop(grace_s=5)


# --------------------------------------------------------------------------- headers


def test_header_syntax_env_and_redaction() -> None:
    env = {"KEY": SECRET}
    assert parse_headers(["Authorization: Bearer ${KEY}", "X-A:b"], env) == [
        ("Authorization", f"Bearer {SECRET}"),
        ("X-A", "b"),
    ]
    assert parse_headers(["X-Price: $5"], env) == [("X-Price", "$5")]  # only ${NAME} expands
    for bad, word in [
        ("no colon", "expected 'Name: value'"),
        ("Bad Name: x", "expected 'Name: value'"),
        ("Host: evil", "writes this header itself"),
        ("X-A: ${MISSING_VAR_XYZ}", "MISSING_VAR_XYZ is not set"),
    ]:
        with pytest.raises(HeaderError, match=word):
            parse_headers([bad], env)
    with pytest.raises(HeaderError, match="twice"):
        parse_headers(["X-A: 1", "x-a: 2"], env)
    shown = describe(["Authorization: Bearer ${KEY}"])
    assert shown == [{"name": "Authorization", "value": REDACTED, "from_env": ["KEY"]}]
    argv = ["ssevsws", "run", "chat", "--header", f"X-Lit: {LITERAL}", f"--head=X-B: {LITERAL}"]
    assert LITERAL not in " ".join(redact_argv(argv))
    assert redact_argv(argv)[-2:] == [f"X-Lit: {REDACTED}", f"--head=X-B: {REDACTED}"]


# --------------------------------------------------------------------------- usage errors


def _args(tmp_path: Path, *extra: str) -> list[str]:
    return ["run", str(scenario(tmp_path)), "--results", str(tmp_path / "r"), *extra]


def _resolve(argv: list[str]) -> Any:
    """bench.cmd_run.resolve on a parsed command line (RunOptions)."""
    from bench.cmd_run import add_parser, resolve

    parser = argparse.ArgumentParser(prog="ssevsws")
    add_parser(parser.add_subparsers())
    return resolve(parser.parse_args(argv))


@pytest.mark.parametrize(
    ("extra", "word"),
    [
        (["--sse-format", "nope"], "unknown payload format 'nope'"),
        (["--ws-format", "x"], "unknown payload format 'x'"),
        (["--ws-format", "anthropic"], "it has no WS form"),
        (["--header", "nocolon"], "expected 'Name: value'"),
        (["--header", "Authorization: Bearer ${SSEVSWS_TEST_UNSET_VAR}"], "is not set"),
        (["--ca-file", "/nonexistent/ca.pem"], "--ca-file"),
        (["--ca-file", "/etc/hostname", "--insecure"], "give one"),
        (["--sse-format", "native", "--protocols", "sse"], "give them or --protocols"),
        (["--sse-url", "ftp://127.0.0.1:1"], "expected http://HOST:PORT or https://HOST:PORT"),
        (["--model", " "], "--model"),
        (["--protocols", "browser-ws", "--model", "m"], "reference servers over plain HTTP"),
        (["--protocols", "browser-fetch", "--sse-url", "http://127.0.0.1:1"], "not with --sse-url"),
        (["--protocols", "sse,browser-eventsource", "--header", "X-A: 1"], "not with --header"),
    ],
)
def test_endpoint_flags_are_one_line_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture, extra: list[str], word: str
) -> None:
    os.environ.pop("SSEVSWS_TEST_UNSET_VAR", None)
    line = _usage_error(capsys, _args(tmp_path, *extra))
    assert word in line
    assert not (tmp_path / "r").exists()


def test_self_signed_refused_without_ca_file_accepted_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture, tls_server: tuple[str, str]
) -> None:
    url, cert = tls_server
    line = _usage_error(capsys, _args(tmp_path, "--sse-url", url, "--protocols", "sse"))
    assert "certificate verify failed" in line and "--ca-file" in line
    for extra in (["--ca-file", cert], ["--insecure"]):
        opts = _resolve(_args(tmp_path, "--sse-url", url, *extra))
        assert [(a.name, a.url) for a in opts.arms] == [("sse", url)]
        assert opts.tls.ca_file == (cert if "--ca-file" in extra else None)


def test_formats_pick_the_registered_arm(tmp_path: Path) -> None:
    opts = _resolve(_args(tmp_path, "--sse-format", "native"))
    assert [a.name for a in opts.arms] == ["sse"]
    pair = ["--sse-format", "openai-responses", "--ws-format", "openai-responses"]
    opts = _resolve(_args(tmp_path, *pair))
    assert [(a.name, a.reference) for a in opts.arms] == [
        ("sse-openai-responses", True),
        ("ws-openai-responses", True),
    ]  # reference server, native format


# --------------------------------------------------------------------------- a real run


def test_token_header_run_keeps_secrets_out_of_the_run_folder(tmp_path: Path) -> None:
    """A reference server that wants a bearer token, measured as your own endpoint: the
    token from ${VAR} and a literal header value reach the server (streams ok) and appear
    nowhere in the run folder; integrity and the schedule are not measured."""
    srv = _server(env={"SSEVSWS_TOKEN": SECRET})
    results = tmp_path / "results"
    try:
        cmd = [
            sys.executable, "-m", "bench.cli", "run", str(scenario(tmp_path, duration=2)),
            "--sse-url", f"http://127.0.0.1:{srv.port}", "--protocols", "sse",
            "--results", str(results), "--pause", "0", "--model", "m-1",
            "--header", "Authorization: Bearer ${SSEVSWS_TEST_KEY}",
            "--header", f"X-Literal: {LITERAL}",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SSEVSWS_TEST_KEY": SECRET}
        res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    finally:
        srv.stop(grace_s=5)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    run = only_run(results)
    streams = read_table(run, "streams")
    assert len(streams) > 0 and set(streams["outcome"]) == {"ok"}  # the token was accepted
    assert streams["tokens_expected"].isna().all() and streams["n_lost"].isna().all()
    assert streams["ttft_ms_sched"].isna().all()
    for path in run.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data, path
            assert LITERAL.encode() not in data, path
    m = read_manifest(run)
    assert m["endpoints"]["headers"][0] == {
        "name": "Authorization",
        "value": REDACTED,
        "from_env": ["SSEVSWS_TEST_KEY"],
    }
    assert m["endpoints"]["model"] == "m-1"
    client = next(iter(m["client"].values()))
    assert client["headers"] == {"Authorization": "redacted", "X-Literal": "redacted"}
    assert json.dumps(m).count(REDACTED) >= 3  # the command line too
    from analysis.summary import summarize

    arm = summarize(run).scenarios["tiny"].arms["sse"]
    assert arm.integrity is None  # not measured, not "0 lost"
