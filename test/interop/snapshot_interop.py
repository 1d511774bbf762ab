"""Python side of the snapshot contract's interop test, using fastavro.

    write OUT_DIR   encode sample ActivationSnapshots with single-object
                    encoding into OUT_DIR/<case>.bin, and their field values
                    into OUT_DIR/expected.json
    read FILE...    decode single-object messages written by another
                    implementation and print their fields as JSON

The single-object header (0xC3 0x01 + the writer schema's CRC-64-AVRO
fingerprint, little-endian) is built and checked here by hand: fastavro
provides the schemaless body and the fingerprint, not the framing.
"""

import io
import json
import struct
import sys
from pathlib import Path

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
MAGIC = b"\xc3\x01"


def load_schema(name="ActivationSnapshot.avsc"):
    with open(SCHEMAS / name, encoding="utf-8") as f:
        schema = fastavro.parse_schema(json.load(f))
    # fastavro prints the 8 header bytes in order, as hex.
    header = MAGIC + bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))
    return schema, header


def encode(schema, header, record):
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema, record)
    return header + body.getvalue()


def decode(schema, header, message):
    if message[:2] != MAGIC:
        raise ValueError(f"not single-object encoded: {message[:2].hex()}")
    if message[:10] != header:
        raise ValueError(f"unknown writer fingerprint {message[2:10].hex()}")
    stream = io.BytesIO(message[10:])
    record = fastavro.schemaless_reader(stream, schema, schema)
    if stream.read(1):
        raise ValueError("trailing bytes after the record")
    return record


def bfloat16(values):
    """bfloat16 is the upper half of a float32 (truncated)."""
    return b"".join(struct.pack("<f", v)[2:] for v in values)


def cases():
    fires = [0, 1, 17, 4096, 0, 3]
    abs_sum = [0.0, 0.5, 12.25, 1e6, 0.0, 2.5]
    sq_sum = [0.0, 0.25, 40.0, 3e9, 0.0, 7.0]
    raw16 = [0.0, 1.5, -2.0, 0.0, 65504.0, -0.0]  # 3 samples x 2 units
    rawbf = [0.0, 1.0, -3.0, 256.0]  # 2 samples x 2 units
    return {
        "counts_with_sums": {
            "run_id": "py-run-\u00e9t\u00e9",
            "layer": "blocks.3.mlp.fc1",
            "rank": 5,
            "step": 2**40 + 7,
            "time": 1764000000123,
            "unit_offset": 10,
            "unit_count": 6,
            "layer_units": 32,
            "samples": 4096,
            "stats": (
                "reluwatch.v1.FiringCounts",
                {
                    "fires": struct.pack(f"<{len(fires)}I", *fires),
                    "abs_sum": struct.pack(f"<{len(abs_sum)}f", *abs_sum),
                    "sq_sum": struct.pack(f"<{len(sq_sum)}f", *sq_sum),
                },
            ),
            "micro_batch": 3,
            "incarnation": 1763990000456,
            "_expect": {"kind": "counts", "fires": fires, "abs_sum": abs_sum, "sq_sum": sq_sum, "nonfinite": None},
        },
        "counts_with_nonfinite": {
            "run_id": "py-run",
            "layer": "blocks.0.mlp.fc1",
            "rank": 3,
            "step": 1200,
            "time": 1764000000500,
            "unit_offset": 0,
            "unit_count": 4,
            "layer_units": 4,
            "samples": 512,
            "stats": (
                "reluwatch.v1.FiringCounts",
                {
                    "fires": struct.pack("<4I", 3, 0, 0, 500),
                    "abs_sum": None,
                    "sq_sum": None,
                    "nonfinite": struct.pack("<4I", 0, 12, 512, 12),
                },
            ),
            "micro_batch": 2**31 - 1,
            "incarnation": 2**52 + 1,
            "_expect": {
                "kind": "counts",
                "fires": [3, 0, 0, 500],
                "abs_sum": None,
                "sq_sum": None,
                "nonfinite": [0, 12, 512, 12],
            },
        },
        "previous_schema": {
            "_schema": "previous/ActivationSnapshot.v1.avsc",
            "_defaults": {"micro_batch": 0, "incarnation": 0},
            "run_id": "py-run-v1",
            "layer": "fc",
            "rank": 1,
            "step": 7,
            "time": 1764000000002,
            "unit_offset": 0,
            "unit_count": 2,
            "layer_units": 2,
            "samples": 8,
            "stats": (
                "reluwatch.v1.FiringCounts",
                {"fires": struct.pack("<2I", 8, 0), "abs_sum": None, "sq_sum": None},
            ),
            "_expect": {"kind": "counts", "fires": [8, 0], "abs_sum": None, "sq_sum": None, "nonfinite": None},
        },
        "counts_without_sums": {
            "run_id": "py-run",
            "layer": "fc",
            "rank": 0,
            "step": 0,
            "time": 0,
            "unit_offset": 0,
            "unit_count": 3,
            "layer_units": 3,
            "samples": 1,
            "stats": (
                "reluwatch.v1.FiringCounts",
                {"fires": struct.pack("<3I", 1, 0, 1), "abs_sum": None, "sq_sum": None},
            ),
            "_expect": {"kind": "counts", "fires": [1, 0, 1], "abs_sum": None, "sq_sum": None, "nonfinite": None},
        },
        "raw_float16": {
            "run_id": "py-run",
            "layer": "conv1",
            "rank": 1,
            "step": 99,
            "time": 1764000000000,
            "unit_offset": 0,
            "unit_count": 2,
            "layer_units": 2,
            "samples": 3,
            "stats": (
                "reluwatch.v1.RawActivations",
                {"dtype": "FLOAT16", "values": struct.pack(f"<{len(raw16)}e", *raw16)},
            ),
            "_expect": {"kind": "raw", "dtype": "FLOAT16", "values": list(struct.pack(f"<{len(raw16)}e", *raw16))},
        },
        "raw_bfloat16": {
            "run_id": "py-run",
            "layer": "conv2",
            "rank": 2,
            "step": 100,
            "time": 1764000000001,
            "unit_offset": 0,
            "unit_count": 2,
            "layer_units": 2,
            "samples": 2,
            "stats": ("reluwatch.v1.RawActivations", {"dtype": "BFLOAT16", "values": bfloat16(rawbf)}),
            "_expect": {"kind": "raw", "dtype": "BFLOAT16", "values": list(bfloat16(rawbf))},
        },
    }


def write(out_dir):
    schema, header = load_schema()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    expected = {"fingerprint": header[2:].hex(), "cases": {}}
    for name, case in cases().items():
        record = {k: v for k, v in case.items() if not k.startswith("_")}
        # Cases without micro_batch/incarnation rely on fastavro filling the schema defaults.
        writer = load_schema(case["_schema"]) if "_schema" in case else (schema, header)
        (out / f"{name}.bin").write_bytes(encode(*writer, record))
        fields = {"micro_batch": 0, "incarnation": 0, **case.get("_defaults", {})}
        fields.update({k: v for k, v in record.items() if k != "stats"})
        expected["cases"][name] = {**fields, "stats": case["_expect"]}
    (out / "expected.json").write_text(json.dumps(expected, indent=1), encoding="utf-8")


def fields(record):
    """The record with its byte payloads unpacked into numbers, as the contract defines them."""
    stats = record["stats"]
    out = {k: v for k, v in record.items() if k != "stats"}
    if "fires" in stats:
        n = record["unit_count"]

        def floats(b):
            return None if b is None else list(struct.unpack(f"<{n}f", b))

        def counts(b):
            return None if b is None else list(struct.unpack(f"<{n}I", b))

        out["stats"] = {
            "kind": "counts",
            "fires": counts(stats["fires"]),
            "abs_sum": floats(stats["abs_sum"]),
            "sq_sum": floats(stats["sq_sum"]),
            "nonfinite": counts(stats["nonfinite"]),
        }
    else:
        out["stats"] = {"kind": "raw", "dtype": stats["dtype"], "values": list(stats["values"])}
    return out


def read(paths):
    schema, header = load_schema()
    decoded = [fields(decode(schema, header, Path(p).read_bytes())) for p in paths]
    # timestamp-millis comes back as a datetime; the contract speaks epoch milliseconds.
    for d in decoded:
        t = d["time"]
        if not isinstance(t, int):
            d["time"] = round(t.timestamp() * 1000)
    json.dump({"fingerprint": header[2:].hex(), "records": decoded}, sys.stdout)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "write":
        write(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "read":
        read(sys.argv[2:])
    else:
        sys.exit(__doc__)
