"""Any selection and order of test files collects: tests/conftest.py patches the process
with gevent before a test module is imported, whichever comes first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_server_test_before_a_load_client_test_collects() -> None:
    """A server test file (requests → urllib3 → ssl) collected before a load-client test
    file (Locust → gevent's patch): the order that stopped with a RecursionError in ssl."""
    files = ["tests/servers/test_contract.py", "tests/loadtests/test_ttft_truth.py"]
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert all(f in res.stdout for f in files)
