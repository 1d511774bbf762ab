"""Writes test/fixtures/snapshot-vectors.json: snapshots as JSON field values with the exact bytes this
package encodes them to. tests/test_vectors.py and the TypeScript codec's
test/unit/codec/shared-vectors.test.ts both check every vector: decoding the bytes gives the fields,
and encoding the fields gives the bytes, so each side reads what the other writes, byte for byte.

    .venv/bin/python python/tests/make_vectors.py   # after an intended change to the schema or the vectors
    npx biome format --write test/fixtures/snapshot-vectors.json
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from reluwatch import FiringCounts, RawActivations, Snapshot, encode_snapshot, snapshot_fingerprint
from support import REPO

PATH = REPO / "test/fixtures/snapshot-vectors.json"


def _f32(values: list[float]) -> np.ndarray:
    return np.array(values, np.float32)


def _u32(values: list[int]) -> np.ndarray:
    return np.array(values, np.uint32)


def snapshots() -> dict[str, Snapshot]:
    f16 = struct.pack("<6e", 0.0, 1.5, -2.0, 0.0, 65504.0, -0.0)
    bf16 = b"".join(struct.pack("<f", v)[2:] for v in (0.0, 1.0, -3.0, 256.0))
    return {
        "counts_all_fields": Snapshot(
            run_id="py-run-\u00e9t\u00e9",
            layer="blocks.3.mlp.act",
            rank=5,
            step=2**40 + 7,
            time=1_764_000_000_123,
            unit_offset=10,
            unit_count=6,
            layer_units=32,
            samples=4096,
            micro_batch=3,
            incarnation=1_764_000_000_000,
            stats=FiringCounts(
                samples=4096,
                fires=_u32([0, 1, 17, 4000, 0, 3]),
                abs_sum=_f32([0.0, 0.5, 12.25, 1e6, 0.0, 2.5]),
                sq_sum=_f32([0.0, 0.25, 40.0, 3e9, 0.0, 7.0]),
                nonfinite=_u32([0, 0, 2, 96, 4096, 0]),
            ),
        ),
        "counts_defaults": Snapshot(
            run_id="r",
            layer="fc",
            rank=0,
            step=0,
            time=0,
            unit_count=3,
            layer_units=3,
            samples=1,
            stats=FiringCounts(samples=1, fires=_u32([1, 0, 1])),
        ),
        "counts_fires_and_nonfinite": Snapshot(
            run_id="run-0001",
            layer="features.0",
            rank=1,
            step=450,
            time=1_764_000_000_456,
            unit_count=4,
            layer_units=4,
            samples=512,
            micro_batch=1,
            incarnation=7,
            stats=FiringCounts(samples=512, fires=_u32([0, 511, 256, 0]), nonfinite=_u32([512, 1, 0, 0])),
        ),
        "raw_float16": Snapshot(
            run_id="py-run",
            layer="conv1",
            rank=1,
            step=99,
            time=1_764_000_000_000,
            unit_count=2,
            layer_units=2,
            samples=3,
            stats=RawActivations("FLOAT16", f16),
        ),
        "raw_bfloat16": Snapshot(
            run_id="py-run",
            layer="conv2",
            rank=2,
            step=100,
            time=1_764_000_000_001,
            unit_count=2,
            layer_units=2,
            samples=2,
            micro_batch=2,
            stats=RawActivations("BFLOAT16", bf16),
        ),
        "raw_float32": Snapshot(
            run_id="py-run",
            layer="head",
            rank=0,
            step=1,
            time=2,
            unit_offset=2,
            unit_count=2,
            layer_units=4,
            samples=1,
            incarnation=2**53 - 2,
            stats=RawActivations("FLOAT32", struct.pack("<2f", -0.5, 3.25)),
        ),
    }


def _list(a: np.ndarray | None) -> list[float] | list[int] | None:
    return None if a is None else a.tolist()


def as_json(s: Snapshot) -> dict[str, Any]:
    """A snapshot's fields as JSON values, in the contract's units (byte payloads as numbers or hex)."""
    head = {k: getattr(s, k) for k in (
        "run_id", "layer", "rank", "step", "time", "unit_offset", "unit_count", "layer_units", "samples",
        "micro_batch", "incarnation",
    )}  # fmt: skip
    if isinstance(s.stats, FiringCounts):
        c = s.stats
        stats: dict[str, Any] = {
            "kind": "counts",
            "fires": _list(c.fires),
            "abs_sum": _list(c.abs_sum),
            "sq_sum": _list(c.sq_sum),
            "nonfinite": _list(c.nonfinite),
        }
    else:
        stats = {"kind": "raw", "dtype": s.stats.dtype, "values_hex": s.stats.values.hex()}
    return {**head, "stats": stats}


def vectors() -> dict[str, Any]:
    return {
        "about": "ActivationSnapshot single-object encodings; written by python/tests/make_vectors.py, "
        "checked by python/tests/test_vectors.py and test/unit/codec/shared-vectors.test.ts",
        "fingerprint": snapshot_fingerprint(),
        "vectors": [
            {"name": name, "snapshot": as_json(s), "hex": encode_snapshot(s).hex()}
            for name, s in snapshots().items()
        ],
    }


if __name__ == "__main__":
    PATH.write_text(json.dumps(vectors(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {PATH}")
