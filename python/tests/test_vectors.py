"""The shared test vectors (test/fixtures/snapshot-vectors.json), which the TypeScript codec checks too:
this package decodes each one's bytes to its fields and encodes its fields to its bytes."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from make_vectors import PATH, as_json, snapshots
from reluwatch import (
    FiringCounts,
    RawActivations,
    Snapshot,
    decode_snapshot,
    encode_snapshot,
    snapshot_fingerprint,
)

VECTORS = json.loads(PATH.read_text(encoding="utf-8"))


def from_json(v: dict[str, Any]) -> Snapshot:
    stats = v["stats"]

    def arr(key: str, dtype: type) -> np.ndarray | None:
        return None if stats[key] is None else np.array(stats[key], dtype)

    parsed: FiringCounts | RawActivations
    if stats["kind"] == "counts":
        parsed = FiringCounts(
            samples=v["samples"],
            fires=arr("fires", np.uint32),  # type: ignore[arg-type]
            abs_sum=arr("abs_sum", np.float32),
            sq_sum=arr("sq_sum", np.float32),
            nonfinite=arr("nonfinite", np.uint32),
        )
    else:
        parsed = RawActivations(stats["dtype"], bytes.fromhex(stats["values_hex"]))
    return Snapshot(**{k: val for k, val in v.items() if k != "stats"}, stats=parsed)


def test_the_vectors_use_the_shipped_schema() -> None:
    assert VECTORS["fingerprint"] == snapshot_fingerprint()
    assert all(v["hex"].startswith("c301" + snapshot_fingerprint()) for v in VECTORS["vectors"])


def test_the_committed_vectors_are_what_the_generator_writes() -> None:
    assert [v["name"] for v in VECTORS["vectors"]] == list(snapshots())
    assert [v["snapshot"] for v in VECTORS["vectors"]] == [as_json(s) for s in snapshots().values()]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_fields_encode_to_the_vector_bytes(vector: dict[str, Any]) -> None:
    assert encode_snapshot(from_json(vector["snapshot"])).hex() == vector["hex"]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_vector_bytes_decode_to_the_fields(vector: dict[str, Any]) -> None:
    assert as_json(decode_snapshot(bytes.fromhex(vector["hex"]))) == vector["snapshot"]
