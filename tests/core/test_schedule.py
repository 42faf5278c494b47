"""The synthetic model: determinism, validation, schedule arithmetic, payload bytes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.schedule import (
    VOCAB,
    ParamError,
    StreamParams,
    StreamPlan,
    done_summary,
    offsets_ns,
    parse_params,
    parse_token_payload,
    stream_id_json,
    token_payload,
    token_texts,
)


def test_texts_are_deterministic_per_seed_and_stream() -> None:
    a = token_texts(7, "abc", 500)
    assert a == token_texts(7, "abc", 500)
    assert a != token_texts(8, "abc", 500)
    assert a != token_texts(7, "abd", 500)
    # A longer stream extends the shorter one: the prefix does not depend on n.
    assert token_texts(7, "abc", 600)[:500] == a


def test_int_and_str_stream_ids_differ_but_query_digits_are_ints() -> None:
    assert parse_params({"stream": "42"}).stream == 42
    assert parse_params({"stream": 42}).stream == 42
    assert token_texts(0, 42, 50) != token_texts(0, "s42", 50)


def test_average_token_length_is_about_four_characters() -> None:
    texts = token_texts(1, 1, 20_000)
    mean = sum(len(t) for t in texts) / len(texts)
    assert 3.0 < mean < 6.0


def test_done_summary_is_sha256_of_concatenated_utf8() -> None:
    texts = token_texts(3, 3, 300)
    expected = hashlib.sha256("".join(texts).encode("utf-8")).hexdigest()
    assert done_summary(texts) == {"count": 300, "sha256": expected}


def test_offsets_fixed_schedule_without_jitter() -> None:
    p = StreamParams(tokens=5, ttft_ms=300, gap_ms=20)
    assert offsets_ns(p) == [300_000_000, 320_000_000, 340_000_000, 360_000_000, 380_000_000]


def test_offsets_do_not_drift_over_long_streams() -> None:
    p = StreamParams(tokens=10_000, ttft_ms=0.5, gap_ms=0.3)
    off = offsets_ns(p)
    # Absolute schedule: last offset equals ttft + (n-1) * gap, no accumulation error.
    assert off[-1] == round((0.5 + 9_999 * 0.3) * 1e6)


def test_pause_lengthens_one_gap_or_the_ttft() -> None:
    mid = offsets_ns(StreamParams(tokens=4, ttft_ms=10, gap_ms=10, pause_ms=1000, pause_at=2))
    assert [b - a for a, b in pairwise(mid)] == [10_000_000, 1_010_000_000, 10_000_000]
    first = offsets_ns(StreamParams(tokens=2, ttft_ms=10, gap_ms=10, pause_ms=2500, pause_at=0))
    assert first[0] == 2_510_000_000


def test_jitter_is_bounded_and_deterministic() -> None:
    p = StreamParams(seed=5, tokens=2000, ttft_ms=100, gap_ms=20, jitter=0.5)
    off = offsets_ns(p)
    assert off == offsets_ns(p)
    gaps = [b - a for a, b in pairwise(off)]
    assert min(gaps) >= 10_000_000 - 1 and max(gaps) <= 30_000_000 + 1
    assert len(set(gaps)) > 100
    assert 50_000_000 <= off[0] <= 150_000_000


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"tokens": "0"}, "tokens"),
        ({"tokens": "abc"}, "tokens"),
        ({"tokens": 1.5}, "tokens"),
        ({"ttft_ms": "-1"}, "ttft_ms"),
        ({"gap_ms": "nan"}, "gap_ms"),
        ({"gap_ms": "inf"}, "gap_ms"),
        ({"jitter": "2"}, "jitter"),
        ({"seed": True}, "seed"),
        ({"stream": "has space"}, "stream"),
        ({"stream": "x" * 200}, "stream"),
        ({"stream": [1]}, "stream"),
        ({"bogus": 1}, "bogus"),
        ({"tokens": 5, "pause_at": 5}, "pause_at"),
    ],
)
def test_bad_params_name_the_field(raw: dict, field: str) -> None:
    with pytest.raises(ParamError) as info:
        parse_params(raw)
    assert info.value.field == field
    assert info.value.as_dict()["field"] == field


def test_query_strings_and_json_values_parse_alike() -> None:
    q = parse_params(
        {"seed": "3", "tokens": "10", "ttft_ms": "1.5", "gap_ms": "2", "stream": "s-1"}
    )
    j = parse_params({"seed": 3, "tokens": 10, "ttft_ms": 1.5, "gap_ms": 2, "stream": "s-1"})
    assert q == j


def test_payload_bytes_match_the_contract() -> None:
    plan = StreamPlan.build(StreamParams(seed=1, tokens=3, stream="abc"))
    raw = token_payload(stream_id_json("abc"), 2, 123456789, plan.ids[2])
    obj = json.loads(raw)
    assert list(obj) == ["s", "i", "t", "d"]
    assert obj == {"s": "abc", "i": 2, "t": 123456789, "d": plan.text(2)}
    assert b" " not in raw.split(b'"d":')[0]
    assert parse_token_payload(raw) == ("abc", 2, 123456789, plan.text(2))


@given(st.sampled_from(range(len(VOCAB))), st.integers(0, 10**6), st.integers(0, 2**62))
def test_every_vocab_entry_round_trips_through_the_payload(vid: int, seq: int, ns: int) -> None:
    raw = token_payload(stream_id_json(7), seq, ns, vid)
    assert parse_token_payload(raw) == (7, seq, ns, VOCAB[vid])
    assert b"\n" not in raw and b"\r" not in raw  # safe as one SSE data line


@pytest.mark.parametrize(
    "params",
    [
        StreamParams(),
        StreamParams(seed=3, tokens=50, ttft_ms=300, gap_ms=20, stream="1.0.2.3.0"),
        StreamParams(stream=7, jitter=0.2, pause_ms=500, pause_at=4, drop_after=9),
    ],
)
def test_to_dict_is_the_dataclass_fields_in_order_without_none_or_extra(
    params: StreamParams,
) -> None:
    want = {
        f.name: getattr(params, f.name)
        for f in dataclasses.fields(params)
        if f.name != "extra" and getattr(params, f.name) is not None
    }
    got = params.to_dict()
    assert got == want and list(got) == list(want)
    assert parse_params(got) == params  # and it is a valid request again


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("stream", "²"),  # str.isdigit() is True, int() refuses it: was a ValueError (500)
        ("stream", "١٢٣"),  # Arabic-Indic digits: int() accepts them
        ("tokens", "١٢٣"),
        ("tokens", "1_000"),  # int() accepts digit separators
        ("seed", "²"),
        ("seed", " 12"),
        ("seed", "+12"),
        ("ttft_ms", "1_0.5"),
        ("ttft_ms", "١٢"),
        ("gap_ms", "2 "),
        ("jitter", "0x1"),
        ("ttft_ms", "infinity"),
    ],
)
def test_numbers_in_strings_are_ascii_digits_only(field: str, raw: str) -> None:
    with pytest.raises(ParamError) as info:
        parse_params({field: raw})
    assert info.value.field == field


def test_ascii_numbers_in_strings_still_parse() -> None:
    p = parse_params(
        {"seed": "12", "tokens": "30", "ttft_ms": "1.5", "gap_ms": "2e1", "jitter": ".5"}
    )
    assert (p.seed, p.tokens, p.ttft_ms, p.gap_ms, p.jitter) == (12, 30, 1.5, 20.0, 0.5)
    assert parse_params({"stream": "007"}).stream == 7
    with pytest.raises(ParamError, match="between"):
        parse_params({"gap_ms": "-1"})


def test_very_long_digit_strings_are_a_param_error() -> None:
    for field in ("seed", "tokens", "ttft_ms"):
        with pytest.raises(ParamError):
            parse_params({field: "1" * 5000})  # int() refuses > 4300 digits with ValueError


def test_first_offset_is_the_schedules_first() -> None:
    """What the client records as a stream's scheduled TTFT (its own, jitter and a pause
    at token 0 included) equals the server's schedule."""
    from core.schedule import first_offset_ns

    for jitter, pause_ms, pause_at in (
        (0.0, 0.0, 0),
        (0.3, 0.0, 0),
        (0.2, 250.0, 0),
        (0.2, 99.0, 3),
    ):
        for stream in ("a.1", 7, "x"):
            p = StreamParams(seed=5, tokens=8, ttft_ms=150, gap_ms=10, jitter=jitter,
                             stream=stream, pause_ms=pause_ms, pause_at=pause_at)  # fmt: skip
            assert first_offset_ns(p) == offsets_ns(p)[0]
