"""The arrows between the rooms (docs/architecture.md): servers, loadtests and analysis meet
in core and never import each other; bench drives servers and Locust as processes."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {
    "core": set(),
    "servers": {"core"},
    "loadtests": {"core"},
    "analysis": {"core"},
    "bench": {"core", "analysis"},
    "benchmarks": {"core", "bench"},
}


def rooms_imported(source: str) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out & set(ALLOWED)


def test_imports_follow_the_arrows() -> None:
    wrong = {}
    for room, allowed in ALLOWED.items():
        for path in sorted((ROOT / room).rglob("*.py")):
            bad = rooms_imported(path.read_text()) - allowed - {room}
            if bad:
                wrong[path.relative_to(ROOT).as_posix()] = sorted(bad)
    assert wrong == {}


def test_the_scan_sees_an_import() -> None:
    assert rooms_imported("from loadtests.wire import Channel\nimport servers.run") == {
        "loadtests",
        "servers",
    }
