"""ActivationSnapshot <-> Avro single-object encoding, byte for byte what the TypeScript codec writes.

A message is ``C3 01``, the writer schema's CRC-64-AVRO fingerprint (little-endian, 8 bytes), then the
Avro binary body. The schemas are the ones shipped inside this package (identical to the repository's
``schemas/``, which a test checks).
"""

from __future__ import annotations

import copy
import io
import json
from functools import cache
from importlib import resources
from typing import Any

import fastavro
import numpy as np
from fastavro.schema import fingerprint, to_parsing_canonical_form

from .snapshot import ContractError, FiringCounts, RawActivations, Snapshot, validate

MAGIC = b"\xc3\x01"
HEADER_BYTES = 10
COUNTS = "reluwatch.v1.FiringCounts"
RAW = "reluwatch.v1.RawActivations"


def schema_text(name: str) -> str:
    """The text of a shipped schema file, e.g. ``ActivationSnapshot.avsc``."""
    return resources.files("reluwatch").joinpath("schemas", name).read_text(encoding="utf-8")


def _without_logical_types(node: Any) -> Any:
    """The schema with logicalType annotations removed: ``time`` stays epoch milliseconds, not a
    datetime. Canonical form drops logicalType, so the fingerprint is unchanged."""
    if isinstance(node, dict):
        return {k: _without_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_without_logical_types(v) for v in node]
    return node


@cache
def _snapshot_schema() -> tuple[Any, bytes]:
    declared = json.loads(schema_text("ActivationSnapshot.avsc"))
    parsed = fastavro.parse_schema(_without_logical_types(copy.deepcopy(declared)))
    fp = fingerprint(to_parsing_canonical_form(fastavro.parse_schema(declared)), "CRC-64-AVRO")
    # fastavro gives the fingerprint's 8 bytes as hex in wire order.
    return parsed, MAGIC + bytes.fromhex(fp)


def snapshot_fingerprint() -> str:
    """The shipped ActivationSnapshot schema's CRC-64-AVRO fingerprint, as the 16 hex digits of the wire."""
    return _snapshot_schema()[1][2:].hex()


def _le(values: np.ndarray | None, dtype: str) -> bytes | None:
    return None if values is None else np.ascontiguousarray(values, dtype=dtype).tobytes()


def _to_avro(s: Snapshot) -> dict[str, Any]:
    stats: tuple[str, dict[str, Any]]
    if isinstance(s.stats, FiringCounts):
        c = s.stats
        stats = (
            COUNTS,
            {
                "fires": _le(c.fires, "<u4"),
                "abs_sum": _le(c.abs_sum, "<f4"),
                "sq_sum": _le(c.sq_sum, "<f4"),
                "nonfinite": _le(c.nonfinite, "<u4"),
            },
        )
    else:
        stats = (RAW, {"dtype": s.stats.dtype, "values": bytes(s.stats.values)})
    return {
        "run_id": s.run_id,
        "layer": s.layer,
        "rank": int(s.rank),
        "step": int(s.step),
        "time": int(s.time),
        "unit_offset": int(s.unit_offset),
        "unit_count": int(s.unit_count),
        "layer_units": int(s.layer_units),
        "samples": int(s.samples),
        "stats": stats,
        "micro_batch": int(s.micro_batch),
        "incarnation": int(s.incarnation),
    }


def encode_snapshot(s: Snapshot) -> bytes:
    """Validates ``s`` (raising ContractError) and encodes it as one single-object message."""
    validate(s)
    schema, header = _snapshot_schema()
    body = io.BytesIO()
    body.write(header)
    fastavro.schemaless_writer(body, schema, _to_avro(s))
    return body.getvalue()


def _array(raw: bytes | None, dtype: str, field: str) -> np.ndarray | None:
    if raw is None:
        return None
    if len(raw) % 4:
        raise ContractError(
            "LENGTH_MISMATCH", f"{len(raw)} bytes is not a whole number of 4-byte values", field
        )
    return np.frombuffer(raw, dtype=dtype).astype(dtype[1:])


def decode_snapshot(message: bytes) -> Snapshot:
    """Decodes and validates one message written with the shipped schema; raises ContractError."""
    schema, header = _snapshot_schema()
    if len(message) < HEADER_BYTES:
        raise ContractError("TRUNCATED", f"{len(message)} bytes, shorter than the 10-byte header")
    if message[:2] != MAGIC:
        raise ContractError("BAD_MAGIC", f"starts with {message[:2].hex()}, not c301")
    if message[:HEADER_BYTES] != header:
        raise ContractError("UNKNOWN_FINGERPRINT", f"writer fingerprint {message[2:10].hex()}")
    stream = io.BytesIO(message[HEADER_BYTES:])
    try:
        rec = fastavro.schemaless_reader(stream, schema, schema, return_record_name=True)
    except (EOFError, ValueError, IndexError) as err:
        raise ContractError("TRUNCATED", f"the Avro body ends early: {err}") from err
    if stream.read(1):
        raise ContractError("MALFORMED", "trailing bytes after the record")
    name, body = rec["stats"]
    if name == COUNTS:
        stats: FiringCounts | RawActivations = FiringCounts(
            samples=rec["samples"],
            fires=_array(body["fires"], "<u4", "stats.fires"),  # type: ignore[arg-type]
            abs_sum=_array(body["abs_sum"], "<f4", "stats.abs_sum"),
            sq_sum=_array(body["sq_sum"], "<f4", "stats.sq_sum"),
            nonfinite=_array(body["nonfinite"], "<u4", "stats.nonfinite"),
        )
    else:
        stats = RawActivations(dtype=body["dtype"], values=bytes(body["values"]))
    return validate(
        Snapshot(
            run_id=rec["run_id"],
            layer=rec["layer"],
            rank=rec["rank"],
            step=rec["step"],
            time=rec["time"],
            unit_offset=rec["unit_offset"],
            unit_count=rec["unit_count"],
            layer_units=rec["layer_units"],
            samples=rec["samples"],
            stats=stats,
            micro_batch=rec["micro_batch"],
            incarnation=rec["incarnation"],
        )
    )
