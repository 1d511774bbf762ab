"""Encoding and decoding: round trips, and every contract violation refused with the consumer's code."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from reluwatch import (
    ContractError,
    FiringCounts,
    RawActivations,
    Snapshot,
    decode_snapshot,
    encode_snapshot,
    firing_counts,
    snapshot_fingerprint,
)


def snapshot(**changes: object) -> Snapshot:
    base = Snapshot(
        run_id="run-0001",
        layer="blocks.0.act",
        rank=3,
        step=150,
        time=1_764_000_000_000,
        unit_count=3,
        layer_units=3,
        samples=10,
        stats=FiringCounts(samples=10, fires=np.array([0, 4, 10], np.uint32)),
        micro_batch=1,
        incarnation=1_764_000_000_000,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_counts_round_trip_with_every_field() -> None:
    counts = firing_counts(np.array([[1.0, np.nan], [0.0, 2.0], [3.0, 0.0]]))
    s = snapshot(unit_offset=4, unit_count=2, layer_units=8, samples=3, stats=counts, micro_batch=7)
    back = decode_snapshot(encode_snapshot(s))
    assert back.key == "run-0001/blocks.0.act"
    assert dataclasses.replace(back, stats=None) == dataclasses.replace(s, stats=None)
    assert isinstance(back.stats, FiringCounts)
    assert back.stats.fires.tolist() == [2, 1]
    assert back.stats.nonfinite is not None
    assert back.stats.nonfinite.tolist() == [0, 1]
    assert back.stats.abs_sum is not None
    assert back.stats.abs_sum.tolist() == [4.0, 2.0]


def test_the_header_is_magic_and_fingerprint() -> None:
    assert encode_snapshot(snapshot())[:10].hex() == "c301" + snapshot_fingerprint()


def test_raw_round_trip() -> None:
    values = np.array([[0.5, -1.0], [2.0, 0.0]], "<f2").tobytes()
    s = snapshot(unit_count=2, layer_units=2, samples=2, stats=RawActivations("FLOAT16", values))
    assert decode_snapshot(encode_snapshot(s)).stats == RawActivations("FLOAT16", values)


def test_non_finite_sums_are_valid_as_the_consumer_takes_them() -> None:
    stats = FiringCounts(
        10, np.array([1, 2, 3], np.uint32), abs_sum=np.array([np.inf, 1, np.nan], np.float32)
    )
    back = decode_snapshot(encode_snapshot(snapshot(stats=stats)))
    assert isinstance(back.stats, FiringCounts)
    assert back.stats.abs_sum is not None
    assert np.isinf(back.stats.abs_sum[0])
    assert np.isnan(back.stats.abs_sum[2])


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"run_id": ""}, "EMPTY_NAME", "run_id"),
        ({"layer": "x" * 513}, "TOO_LARGE", "layer"),
        ({"rank": -1}, "NEGATIVE", "rank"),
        ({"step": 2**53 - 1}, "MALFORMED", "step"),
        ({"samples": 0}, "NOT_POSITIVE", "samples"),
        ({"unit_offset": 1}, "UNIT_RANGE", "unit_count"),
        ({"micro_batch": -1}, "NEGATIVE", "micro_batch"),
        ({"incarnation": 1.5}, "MALFORMED", "incarnation"),
        ({"stats": FiringCounts(10, np.array([0, 11, 0], np.uint32))}, "FIRES_EXCEED_SAMPLES", "stats.fires"),
        ({"stats": FiringCounts(10, np.array([0, 1], np.uint32))}, "LENGTH_MISMATCH", "stats.fires"),
        (
            {
                "stats": FiringCounts(
                    10, np.array([0, 9, 0], np.uint32), nonfinite=np.array([0, 2, 0], np.uint32)
                )
            },
            "FIRES_EXCEED_SAMPLES",
            "stats.fires",
        ),
        (
            {"stats": FiringCounts(10, np.zeros(3, np.uint32), nonfinite=np.array([11, 0, 0], np.uint32))},
            "FIRES_EXCEED_SAMPLES",
            "stats.nonfinite",
        ),
        (
            {"stats": FiringCounts(10, np.zeros(3, np.uint32), sq_sum=np.array([0, -1, 0], np.float32))},
            "BAD_SUM",
            "stats.sq_sum",
        ),
        ({"stats": RawActivations("FLOAT16", b"\x00" * 5)}, "LENGTH_MISMATCH", "stats.values"),
        ({"stats": RawActivations("INT8", b"")}, "UNKNOWN_DTYPE", "stats.dtype"),  # type: ignore[arg-type]
    ],
)
def test_contract_violations_are_refused_with_the_consumers_code(
    changes: dict, code: str, field: str
) -> None:
    with pytest.raises(ContractError) as err:
        encode_snapshot(snapshot(**changes))
    assert (err.value.code, err.value.field) == (code, field)


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda b: b[:6], "TRUNCATED"),
        (lambda b: b"\x00\x01" + b[2:], "BAD_MAGIC"),
        (lambda b: b[:9] + bytes([b[9] ^ 1]) + b[10:], "UNKNOWN_FINGERPRINT"),
        (lambda b: b[:-3], "TRUNCATED"),
        (lambda b: b + b"\x00", "MALFORMED"),
    ],
)
def test_damaged_messages_are_refused(mutate: object, code: str) -> None:
    with pytest.raises(ContractError) as err:
        decode_snapshot(mutate(encode_snapshot(snapshot())))  # type: ignore[operator]
    assert err.value.code == code
