/**
 * The processor decodes records into views of their bytes (src/codec/snapshot-reader.ts):
 * these tests hold the rule that makes that safe. The detector keeps copies, never the
 * views, so a batch's buffer may change or be collected once its records were processed.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { encodeSnapshot } from "../../../src/codec/index.js";
import { type ActivationSnapshot, Detector } from "../../../src/core/index.js";
import { SnapshotProcessor } from "../../../src/service/snapshot-processor.js";
import type { SourceRecord } from "../../../src/source/source.js";

const UNITS = 32;

function snapshot(rank: number, step: number): ActivationSnapshot {
  const fires = Uint32Array.from({ length: UNITS }, (_, u) =>
    (u * 7 + rank + step) % 5 === 0 ? 0 : (u + step) % 9,
  );
  return {
    run_id: "alias",
    layer: "fc1",
    rank,
    step,
    time: 1_700_000_000_000 + step,
    unit_offset: 0,
    unit_count: UNITS,
    layer_units: UNITS,
    samples: 16,
    stats: {
      kind: "counts",
      fires,
      abs_sum: Float32Array.from(fires, (f) => f * 0.5),
      sq_sum: Float32Array.from(fires, (f) => f * 0.25),
      nonfinite: Uint32Array.from({ length: UNITS }, (_, u) => (u === rank ? 1 : 0)),
    },
  };
}

/** The messages packed back to back in one buffer, each at its own misalignment, as a fetch response holds them. */
function batchOf(messages: Buffer[]): { host: Buffer; records: SourceRecord[] } {
  const host = Buffer.alloc(messages.reduce((n, m) => n + m.length + 3, 0));
  const records: SourceRecord[] = [];
  let at = 0;
  for (const [i, m] of messages.entries()) {
    at += i % 4;
    m.copy(host, at);
    records.push({
      topic: "t",
      partition: 0,
      offset: String(i),
      key: null,
      value: host.subarray(at, at + m.length),
    });
    at += m.length;
  }
  return { host, records };
}

function processor(detector: Detector): SnapshotProcessor {
  const limits = {
    max_tracked_units: 1 << 20,
    max_layers_per_run: 10,
    max_units_per_layer: 1 << 16,
    max_message_bytes: 1 << 20,
  };
  return new SnapshotProcessor(detector, { limits, evictIdleMs: 60_000, clock: "snapshot" });
}

function messages(): Buffer[] {
  const out: Buffer[] = [];
  for (let step = 0; step < 2000; step += 50)
    for (let rank = 0; rank < 4; rank++) out.push(encodeSnapshot(snapshot(rank, step)));
  return out;
}

function state(d: Detector): unknown {
  return { summaries: d.summaries(), units: d.units("alias", "fc1") };
}

test("the detector's state does not change when a processed batch's buffer is overwritten", () => {
  const reference = new Detector();
  const refProcessor = processor(reference);
  const all = messages();
  for (const [i, m] of all.entries()) {
    const effects = refProcessor.process(
      { topic: "t", partition: 0, offset: String(i), key: null, value: Buffer.from(m) },
      { kind: "single-object" },
      0,
    );
    assert.equal(effects.deadLetter, undefined);
  }

  const detector = new Detector();
  const p = processor(detector);
  const { host, records } = batchOf(all);
  for (const r of records) assert.equal(p.process(r, { kind: "single-object" }, 0).deadLetter, undefined);
  const before = state(detector);
  assert.deepEqual(before, state(reference));
  host.fill(0xff);
  assert.deepEqual(state(detector), before);
});

/** Processes one batch; returns a weak reference to its buffer and nothing else of it. */
function processDropped(p: SnapshotProcessor): WeakRef<ArrayBufferLike> {
  const batch = batchOf(messages());
  for (const r of batch.records)
    assert.equal(p.process(r, { kind: "single-object" }, 0).deadLetter, undefined);
  return new WeakRef(batch.host.buffer);
}

test("a processed batch's buffer is not retained: it is collected once the batch is dropped", async () => {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const detector = new Detector();
  const collected = processDropped(processor(detector));
  // A WeakRef's target lives at least to the end of the current job: collect in later ones.
  const deadline = Date.now() + 10_000;
  while (collected.deref() !== undefined && Date.now() < deadline) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  assert.equal(collected.deref(), undefined);
  assert.ok(detector.summaries()[0]!.window_samples > 0);
});
