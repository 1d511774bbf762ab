/**
 * The checkpoint changelog format: a checkpoint that goes through records and
 * back restores a detector that goes on exactly as the one that wrote it; a
 * reader never combines chunks of two checkpoints; an unknown format version,
 * a missing chunk or a damaged one are refused with their code.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { encodeVersioned } from "../../../src/codec/checkpoint-codec.js";
import {
  CHECKPOINT_FORMAT_VERSION,
  type CheckpointMigration,
  type CheckpointRecord,
  checkpointKeys,
  decodeCheckpoint,
  encodeCheckpoint,
  parseCheckpointKey,
} from "../../../src/codec/index.js";
import { type ActivationSnapshot, Detector, type DetectorConfig } from "../../../src/core/index.js";
import { generateFleet, resolveScenario } from "../../../src/sim/index.js";
import { propertyParams } from "../../support/property.js";

const CONFIG: Partial<DetectorConfig> = {
  window_steps: 400,
  window_buckets: 8,
  alpha: 0.01,
  dead_rate: 0.01,
  silent_rate: 0.05,
};

function fleet(name: string, seed: number): ActivationSnapshot[] {
  return [
    ...generateFleet(resolveScenario(name, { seed, units: 40, steps: 1200, interval: 25, samples: 128 })),
  ];
}

function applied(snapshots: ActivationSnapshot[]): Detector {
  const d = new Detector(CONFIG);
  for (const s of snapshots) d.apply(s, s.time);
  return d;
}

function codeOf(code: string) {
  return (e: unknown) => (e as { code?: string }).code === code;
}

/** A detector whose every layer went through encode and decode. */
function throughRecords(d: Detector, chunkBytes: number): Detector {
  const fresh = new Detector(CONFIG);
  for (const { run_id, layer } of d.layerIds()) {
    const records = encodeCheckpoint(d.checkpoint(run_id, layer)!, [], { chunkBytes });
    fresh.restore(decodeCheckpoint(records).checkpoint);
  }
  return fresh;
}

test("a checkpoint through the records restores a detector that goes on as the one that wrote it", () => {
  fc.assert(
    fc.property(
      fc.constantFrom("tensor-parallel", "crash-resume", "nan-units", "nan-sums", "grad-accum", "born-dead"),
      fc.integer({ min: 1, max: 1000 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.integer({ min: 1, max: 5000 }),
      (name, seed, at, chunkBytes) => {
        const snapshots = fleet(name, seed);
        const cut = Math.floor(at * snapshots.length);
        const whole = applied(snapshots);
        let d = applied(snapshots.slice(0, cut));
        d = throughRecords(d, chunkBytes);
        for (const s of snapshots.slice(cut)) d.apply(s, s.time);
        assert.deepEqual(d.flush(), whole.flush());
        assert.deepEqual(d.summaries(), whole.summaries());
        for (const { run_id, layer } of whole.layerIds()) {
          assert.deepEqual(d.units(run_id, layer), whole.units(run_id, layer));
          assert.deepEqual(d.checkpoint(run_id, layer), whole.checkpoint(run_id, layer));
        }
      },
    ),
    propertyParams({ numRuns: 25 }),
  );
});

test("positions, run and layer come back as written; keys name the layer unambiguously", () => {
  const d = applied(fleet("tensor-parallel", 2));
  const { run_id, layer } = d.layerIds()[1]!;
  const positions = [
    { partition: 0, offset: "0" },
    { partition: 7, offset: "9223372036854775807" },
  ];
  const records = encodeCheckpoint(d.checkpoint(run_id, layer)!, positions, { chunkBytes: 1000 });
  const out = decodeCheckpoint(records);
  assert.deepEqual(out.positions, positions);
  assert.equal(out.version, CHECKPOINT_FORMAT_VERSION);
  assert.equal(out.chunks, records.length - 1);
  assert.ok(out.chunks > 1);
  assert.equal(out.checkpoint.run_id, run_id);
  const keys = checkpointKeys(run_id, layer, out.chunks);
  assert.deepEqual(
    records.map((r) => r.key),
    [...keys.chunks, keys.manifest],
  );
  assert.deepEqual(parseCheckpointKey(checkpointKeys("run/7", "a/b", 3).chunks[2]!), {
    run_id: "run/7",
    layer: "a/b",
    part: 2,
  });
  assert.notEqual(checkpointKeys("a/b", "c", 1).manifest, checkpointKeys("a", "b/c", 1).manifest);
  assert.equal(parseCheckpointKey("some-other-key"), null);
  const cp = d.checkpoint(run_id, layer)!;
  assert.throws(() => encodeCheckpoint(cp, [{ partition: 0, offset: "12x" }]), /int64 offset/);
  assert.throws(
    () => encodeCheckpoint(cp, [{ partition: 0, offset: "9223372036854775808" }]),
    /int64 offset/,
  );
  assert.throws(() => encodeCheckpoint(cp, [{ partition: 1.5, offset: "1" }]), /int32 partition/);
  assert.equal(parseCheckpointKey("run/layer/01"), null);
});

test("a layer of 2^18 units with sums fits Kafka records of at most 1 MiB", () => {
  const units = 1 << 18;
  const d = new Detector(CONFIG);
  for (let step = 0; step < 400; step += 50) {
    const fires = new Uint32Array(units).map((_, j) => (j * 7 + step) % 5);
    d.apply(
      {
        run_id: "big",
        layer: "fc",
        rank: 0,
        step,
        time: step,
        unit_offset: 0,
        unit_count: units,
        layer_units: units,
        samples: 16,
        stats: {
          kind: "counts",
          fires,
          abs_sum: new Float32Array(units).fill(1.5),
          sq_sum: new Float32Array(units).fill(3),
        },
      },
      step,
    );
  }
  const records = encodeCheckpoint(d.checkpoint("big", "fc")!, []);
  assert.ok(records.length > 20, `${records.length} records`);
  for (const r of records) assert.ok(Buffer.byteLength(r.key) + r.value!.byteLength <= 1024 * 1024, r.key);
  const back = new Detector(CONFIG);
  back.restore(decodeCheckpoint(records).checkpoint);
  assert.deepEqual(back.summary("big", "fc"), d.summary("big", "fc"));
});

function twoCheckpoints(): { first: CheckpointRecord[]; second: CheckpointRecord[] } {
  const snapshots = fleet("nan-sums", 5);
  const d = new Detector(CONFIG);
  const half = Math.floor(snapshots.length / 2);
  for (const s of snapshots.slice(0, half)) d.apply(s, s.time);
  const first = encodeCheckpoint(d.checkpoint(d.layerIds()[0]!.run_id, "blocks.0.mlp.fc1")!, [], {
    chunkBytes: 2000,
  });
  for (const s of snapshots.slice(half)) d.apply(s, s.time);
  const second = encodeCheckpoint(d.checkpoint(d.layerIds()[0]!.run_id, "blocks.0.mlp.fc1")!, [], {
    chunkBytes: 2000,
  });
  return { first, second };
}

test("the newest manifest wins; an interrupted write leaves the previous checkpoint readable", () => {
  const { first, second } = twoCheckpoints();
  const stepOf = (records: CheckpointRecord[]) => decodeCheckpoint(records).checkpoint.state.newestStep;
  assert.ok(stepOf(second) > stepOf(first));
  // An uncompacted topic: both checkpoints in order.
  assert.equal(stepOf([...first, ...second]), stepOf(second));
  // A writer died after some chunks of a third checkpoint: no manifest names them.
  assert.equal(stepOf([...first, ...second.slice(0, 3)]), stepOf(first));
});

test("chunks of two checkpoints are never combined: a chunk of another one is a missing chunk", () => {
  const { first, second } = twoCheckpoints();
  // Compaction kept the old chunk 1 (the new one was lost): the manifest's hash does not match it.
  const mixed = second.map((r) => (r.key === second[1]!.key ? first[1]! : r));
  assert.throws(() => decodeCheckpoint(mixed), codeOf("CHECKPOINT_INCOMPLETE"));
  assert.throws(() => decodeCheckpoint(second.filter((_, i) => i !== 2)), /chunks are missing \(first: 2\)/);
  assert.throws(() => decodeCheckpoint(second.slice(0, -1)), codeOf("CHECKPOINT_INCOMPLETE"));
  assert.throws(() => decodeCheckpoint([]), /no manifest/);
  // A manifest claiming more chunks than there are records is refused before anything is allocated.
  const manifest = Buffer.from(second.at(-1)!.value!);
  manifest.writeUInt32LE(0xffffffff, 40);
  assert.throws(() => decodeCheckpoint([{ key: "m", value: manifest }]), /names 4294967295 chunks/);
});

test("a damaged chunk or manifest is refused as CHECKPOINT_CORRUPT, a foreign record as CHECKPOINT_BAD_MAGIC", () => {
  const { second } = twoCheckpoints();
  const flipped = second.map((r, i) => {
    if (i !== 1) return r;
    const v = Buffer.from(r.value!);
    v[v.length - 1]! ^= 1;
    return { key: r.key, value: v };
  });
  assert.throws(() => decodeCheckpoint(flipped), codeOf("CHECKPOINT_CORRUPT"));
  const manifest = second.at(-1)!;
  const truncated = { key: manifest.key, value: manifest.value!.subarray(0, manifest.value!.byteLength - 3) };
  assert.throws(() => decodeCheckpoint([...second.slice(0, -1), truncated]), codeOf("CHECKPOINT_CORRUPT"));
  const foreign = { key: "x", value: Buffer.from("not a checkpoint at all, just bytes") };
  assert.throws(() => decodeCheckpoint([...second, foreign]), codeOf("CHECKPOINT_BAD_MAGIC"));
  // A tombstone is no record at all.
  assert.equal(decodeCheckpoint([...second, { key: "x", value: null }]).chunks, second.length - 1);
});

/** Format 0 kept the per-layer counters in one object; format 1 keeps them flat. */
const COUNTERS = ["deaths", "revivals", "duplicates", "late", "resumes", "resets", "nonfinite"] as const;
const toV0 = (meta: Record<string, unknown>) => {
  const { deaths, revivals, duplicates, late, resumes, resets, nonfinite, ...rest } = meta;
  return { ...rest, counters: { deaths, revivals, duplicates, late, resumes, resets, nonfinite } };
};
const v0ToV1: CheckpointMigration = (meta) => {
  const { counters, ...rest } = meta as { counters: Record<string, number> };
  return { ...rest, ...Object.fromEntries(COUNTERS.map((k) => [k, counters[k]])) };
};

test("a checkpoint of an older format is migrated when a migration exists, and refused when none does", () => {
  const d = applied(fleet("lr-spike", 3));
  const { run_id } = d.layerIds()[0]!;
  const cp = d.checkpoint(run_id, "blocks.2.mlp.fc1")!;
  assert.ok(cp.deaths > 0);
  const old = encodeVersioned(cp, [], { chunkBytes: 3000 }, 0, toV0);
  assert.throws(
    () => decodeCheckpoint(old),
    (e: unknown) => codeOf("CHECKPOINT_VERSION")(e) && /no migration from format 0 to 1/.test(String(e)),
  );
  const migrated = decodeCheckpoint(old, { migrations: new Map([[0, v0ToV1]]) });
  assert.equal(migrated.version, 0);
  const back = new Detector(CONFIG);
  back.restore(migrated.checkpoint);
  assert.deepEqual(back.summary(run_id, "blocks.2.mlp.fc1"), d.summary(run_id, "blocks.2.mlp.fc1"));
});

test("a checkpoint of a newer format is refused, whatever migrations there are", () => {
  const d = applied(fleet("healthy", 1));
  const { run_id, layer } = d.layerIds()[0]!;
  const newer = encodeVersioned(
    d.checkpoint(run_id, layer)!,
    [],
    {},
    CHECKPOINT_FORMAT_VERSION + 1,
    (m) => m,
  );
  assert.throws(
    () => decodeCheckpoint(newer, { migrations: new Map([[0, v0ToV1]]) }),
    (e: unknown) => codeOf("CHECKPOINT_VERSION")(e) && /written by a newer reluwatch/.test(String(e)),
  );
});
