"""bench.perf.profile (py-spy raw stacks → CPU shares by bucket) and bench.perf.why (the
"Why the misses" section), on a profile written here with known counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.perf.profile import OTHER, bucket_of, summarize
from bench.perf.why import why_section

RAW = """\
<module> (servers/__main__.py:89);run (asyncio/runners.py:118);write (aiohttp/http_writer.py:157) 60
<module> (servers/__main__.py:89);run_stream (servers/engine.py:138) 25
<module> (servers/__main__.py:89);build (core/schedule.py:262);choices (random.py:519) 10
<module> (servers/__main__.py:89);thing (somewhere/else.py:3) 5
not a stack line
"""


def test_summarize_shares_by_leaf_bucket_and_top_functions(tmp_path: Path) -> None:
    path = tmp_path / "p.txt"
    path.write_text(RAW)
    s = summarize(path)
    assert s["samples"] == 100
    assert s["buckets"] == pytest.approx(
        {
            "aiohttp": 0.60,
            "project server (servers/)": 0.25,
            "synthetic text (random)": 0.10,
            OTHER: 0.05,
        }
    )
    assert next(iter(s["buckets"])) == "aiohttp"  # largest first
    assert s["top"][0] == ["aiohttp/http_writer.py:write", pytest.approx(0.6)]
    assert summarize(tmp_path / "missing.txt") == {"samples": 0, "buckets": {}, "top": []}


def test_bucket_of_known_and_unknown_files() -> None:
    assert bucket_of("gevent/hub.py") == "gevent hub / greenlets"
    assert bucket_of("loadtests/wire.py") == "project client (loadtests/)"
    assert bucket_of("core/client/sse.py") == "project client core (core/client/, core/formats/)"
    assert bucket_of("core/formats/native.py").startswith("project client core")
    assert bucket_of("core/schedule.py") == "project core (core/)"
    assert bucket_of("websockets/protocol.py") == "websockets library"
    assert bucket_of("x/y.py") == OTHER


def _perf(profile: dict | None, passed: bool) -> dict:
    ours = {"server": "sse", "mode": "flood", "n": 1000, "server_us_per_token": 15.0}
    ref = {"server": "starlette", "mode": "flood", "n": 1000, "server_us_per_token": 27.0}
    if profile is not None:
        ours["profile"] = profile
        ref["profile"] = {"error": "py-spy exit 1: Permission denied"}
    ratio = {
        "name": "sse / starlette",
        "kind": "throughput",
        "ours": "sse",
        "ref": "starlette",
        "value": 1.8,
        "target": 2.0,
        "op": ">=",
        "pass": passed,
    }
    return {"throughput": [ours, ref], "ratios": [ratio]}


def test_why_section_gives_each_miss_its_measured_shares_and_a_remedy() -> None:
    prof = {"samples": 600, "buckets": {"aiohttp": 0.47, "h11": 0.2}}
    text = "\n".join(why_section(_perf(prof, False), str))
    assert "## Why the misses" in text
    assert "sse 15.0 µs, starlette 27.0 µs" in text
    assert "sse CPU by bucket: aiohttp 47%, h11 20% (600 samples)" in text
    assert "starlette CPU by bucket: not profiled: py-spy exit 1: Permission denied" in text
    assert "what would cut it: aiohttp (47%): aiohttp's response writer" in text


def test_no_misses_no_section_and_no_profile_says_so() -> None:
    assert why_section(_perf(None, True), str) == []
    text = "\n".join(why_section(_perf(None, False), str))
    assert "sse CPU by bucket: not profiled" in text and "what would cut it" not in text
