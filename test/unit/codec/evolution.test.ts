import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import avro from "avsc";
import {
  type AvroSchema,
  CodecError,
  fingerprintBytes,
  fingerprintOf,
  MAGIC,
  SingleObjectType,
  SnapshotCodec,
  snapshotSchema,
} from "../../../src/codec/index.js";
import { decodeSnapshot, snapshotToAvro } from "../../../src/codec/snapshot-codec.js";
import { packageRoot } from "../../../src/paths.js";
import { countsSnapshot, plain } from "./fixtures.js";

type RecordSchema = { type: "record"; name: string; namespace?: string; fields: Record<string, unknown>[] };

function clone(): RecordSchema {
  return structuredClone(snapshotSchema) as unknown as RecordSchema;
}

/** A later version: the snapshot gains an optional `host` field, FiringCounts an optional `nan_count`. */
function newerSchema(): AvroSchema {
  const s = clone();
  s.fields.push({ name: "host", type: ["null", "string"], default: null, doc: "The trainer's host." });
  const union = s.fields.find((f) => f.name === "stats")!.type as RecordSchema[];
  union[0]!.fields.push({ name: "nan_count", type: ["null", "bytes"], default: null, doc: "NaNs per unit." });
  return s as unknown as AvroSchema;
}

/** An earlier version: no tensor-parallel shards (no unit_offset) and no sq_sum. */
function olderSchema(): AvroSchema {
  const s = clone();
  s.fields = s.fields.filter((f) => f.name !== "unit_offset");
  const union = s.fields.find((f) => f.name === "stats")!.type as RecordSchema[];
  union[0]!.fields = union[0]!.fields.filter((f) => f.name !== "sq_sum");
  return s as unknown as AvroSchema;
}

function singleObject(schema: AvroSchema, record: unknown): Buffer {
  const type = avro.Type.forSchema(schema, { wrapUnions: "auto" });
  return Buffer.concat([MAGIC, fingerprintBytes(fingerprintOf(type)), type.toBuffer(record)]);
}

test("the current reader reads a newer writer's record once it knows that writer's schema", () => {
  const s = countsSnapshot();
  const record = snapshotToAvro(s) as unknown as Record<string, unknown>;
  const stats = record.stats as Record<string, Record<string, unknown>>;
  stats["reluwatch.v1.FiringCounts"]!.nan_count = Buffer.alloc(16);
  const buf = singleObject(newerSchema(), { ...record, host: "node-7" });

  const codec = new SnapshotCodec();
  assert.throws(
    () => codec.decode(buf),
    (e: unknown) => e instanceof CodecError && e.code === "UNKNOWN_FINGERPRINT",
  );
  const fp = codec.addWriterSchema(newerSchema());
  assert.notEqual(fp, codec.fingerprint);
  assert.deepEqual(plain(codec.decode(buf)), plain(s));
});

test("the current reader reads an older writer's record, filling unit_offset and sq_sum with their defaults", () => {
  const s = countsSnapshot({ unit_offset: 0 });
  const record = snapshotToAvro(s) as unknown as Record<string, unknown>;
  const stats = record.stats as Record<string, Record<string, unknown>>;
  delete stats["reluwatch.v1.FiringCounts"]!.sq_sum;
  delete record.unit_offset;
  const codec = new SnapshotCodec();
  codec.addWriterSchema(olderSchema());
  const back = codec.decode(singleObject(olderSchema(), record));
  assert.equal(back.unit_offset, 0);
  assert.equal(back.stats.kind === "counts" && back.stats.sq_sum, null);
  assert.deepEqual(plain(back), plain({ ...s, stats: { ...s.stats, sq_sum: null } as typeof s.stats }));
});

test("an older reader reads the current writer's record, ignoring the fields it does not know", () => {
  const reader = new SingleObjectType(olderSchema());
  reader.addWriterSchema(snapshotSchema);
  const s = countsSnapshot();
  const rec = reader.decode(new SnapshotCodec().encode(s)) as Record<string, unknown>;
  assert.equal(rec.unit_offset, undefined);
  assert.equal(rec.layer, s.layer);
  assert.equal(rec.step, s.step);
  const stats = rec.stats as Record<string, Record<string, unknown>>;
  assert.deepEqual(Object.keys(stats["reluwatch.v1.FiringCounts"]!).sort(), [
    "abs_sum",
    "fires",
    "nonfinite",
  ]);
});

test("the shared reader knows the previous shipped schema: its writers decode with the new fields' defaults", () => {
  const previous = JSON.parse(
    readFileSync(join(packageRoot, "schemas/previous/ActivationSnapshot.v1.avsc"), "utf8"),
  ) as AvroSchema;
  const s = countsSnapshot();
  const record = snapshotToAvro(s) as unknown as Record<string, unknown>;
  delete record.micro_batch;
  delete record.incarnation;
  const stats = record.stats as Record<string, Record<string, unknown>>;
  delete stats["reluwatch.v1.FiringCounts"]!.nonfinite;
  const buf = singleObject(previous, record);
  assert.notEqual(buf.readBigUInt64LE(2), fingerprintOf(snapshotSchema));
  for (const back of [decodeSnapshot(buf), new SnapshotCodec().decode(buf)]) {
    assert.deepEqual(
      plain(back),
      plain({
        ...s,
        micro_batch: 0,
        incarnation: 0,
        stats: { ...s.stats, nonfinite: null } as typeof s.stats,
      }),
    );
  }
});

test("a writer schema that cannot be resolved is refused when it is registered", () => {
  const s = clone();
  s.fields = s.fields.map((f) => (f.name === "layer" ? { ...f, type: "long" } : f));
  assert.throws(
    () => new SnapshotCodec().addWriterSchema(s as unknown as AvroSchema),
    /cannot be resolved to reader.*cannot read "long" as "string"/,
  );
});
