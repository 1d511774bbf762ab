import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { pino } from "pino";
import { encodeSnapshot } from "../../../src/codec/index.js";
import { type ActivationSnapshot, Detector } from "../../../src/core/index.js";
import { packageRoot } from "../../../src/paths.js";
import { LIMIT_REASONS, SnapshotProcessor } from "../../../src/service/snapshot-processor.js";
import { Telemetry } from "../../../src/service/telemetry.js";
import { DEAD_LETTER_HEADERS } from "../../../src/sink/kafka-sinks.js";
import { Exporter } from "../../../src/sink/prometheus.js";
import { parseExposition, sumOf } from "../../support/metrics.js";

function snapshot(run_id: string, layer: string, layer_units = 8, step = 10): ActivationSnapshot {
  return {
    run_id,
    layer,
    rank: 0,
    step,
    time: 1_700_000_000_000 + step,
    unit_offset: 0,
    unit_count: layer_units,
    layer_units,
    samples: 16,
    stats: { kind: "counts", fires: new Uint32Array(layer_units).fill(4), abs_sum: null, sq_sum: null },
  };
}

function harness(
  limits = {
    max_tracked_units: 24,
    max_layers_per_run: 2,
    max_units_per_layer: 64,
    max_message_bytes: 1 << 20,
  },
) {
  const detector = new Detector();
  const exporter = new Exporter(detector, { unitSeries: false, unitSeriesMax: 1, processMetrics: false });
  const telemetry = new Telemetry(pino({ level: "silent" }), exporter);
  const processor = new SnapshotProcessor(detector, { limits, evictIdleMs: 60_000, clock: "wall" });
  let offset = 0;
  const feed = (value: Buffer | null, partition = 0, now = 1_700_000_000_000) => {
    const effects = processor.process(
      { topic: "t", partition, offset: String(offset++), key: null, value },
      { kind: "single-object" },
      now,
    );
    telemetry.record(effects.events);
    return effects;
  };
  const counters = async () => parseExposition(await exporter.metrics());
  return { detector, processor, feed, counters };
}

describe("SnapshotProcessor", () => {
  test("bad bytes become a dead letter with a stable reason, counted, never thrown", async () => {
    const h = harness();
    const good = encodeSnapshot(snapshot("r", "fc1"));
    const wrongMagic = Buffer.from(good);
    wrongMagic[0] = 0x00;
    const cases: Array<[Buffer | null, string]> = [
      [Buffer.from("definitely not avro"), "bad_magic"],
      [wrongMagic, "bad_magic"],
      [good.subarray(0, good.length - 5), "truncated"],
      [null, "truncated"],
    ];
    for (const [value, reason] of cases) {
      const out = h.feed(value);
      assert.equal(out.deadLetter?.reason, reason);
      assert.ok(out.deadLetter.message.length > 0);
      assert.deepEqual(out.transitions, []);
    }
    const m = await h.counters();
    assert.equal(sumOf(m, "reluwatch_snapshots_total", { result: "invalid" }), cases.length);
    assert.equal(sumOf(m, "reluwatch_invalid_snapshots_total", { reason: "bad_magic" }), 2);
    assert.equal(sumOf(m, "reluwatch_snapshots_total", { result: "ok" }), 0);
    assert.equal(h.detector.layerIds().length, 0, "nothing reached the detector");
  });

  test("limits on runs, layers per run and units per layer dead-letter what exceeds them and keep the rest", async () => {
    const h = harness();
    assert.equal(h.feed(encodeSnapshot(snapshot("r1", "a"))).deadLetter, undefined);
    assert.equal(h.feed(encodeSnapshot(snapshot("r1", "b"))).deadLetter, undefined);
    assert.equal(h.feed(encodeSnapshot(snapshot("r1", "c"))).deadLetter?.reason, "limit_layers_per_run");
    assert.equal(h.feed(encodeSnapshot(snapshot("r2", "a"))).deadLetter, undefined);
    assert.equal(h.feed(encodeSnapshot(snapshot("r3", "a"))).deadLetter?.reason, "limit_tracked_units");
    assert.equal(
      h.feed(encodeSnapshot(snapshot("r2", "big", 128))).deadLetter?.reason,
      "limit_units_per_layer",
    );
    // A known layer keeps flowing at the limit.
    assert.equal(h.feed(encodeSnapshot(snapshot("r1", "b", 8, 20))).deadLetter, undefined);
    const m = await h.counters();
    assert.equal(sumOf(m, "reluwatch_snapshots_total", { result: "over_limit" }), 3);
    assert.equal(sumOf(m, "reluwatch_invalid_snapshots_total", { reason: "limit_tracked_units" }), 1);
    assert.equal(sumOf(m, "reluwatch_snapshots_total", { result: "ok" }), 4);
    assert.equal(h.detector.layerIds().length, 3);
  });

  test("a new run evicts the longest-idle runs when the tracked-units budget is full", () => {
    const h = harness();
    const t0 = 1_700_000_000_000;
    h.feed(encodeSnapshot(snapshot("r1", "a")), 0, t0);
    h.feed(encodeSnapshot(snapshot("r1", "b")), 0, t0);
    h.feed(encodeSnapshot(snapshot("r2", "a")), 0, t0 + 30_000);
    const out = h.feed(encodeSnapshot(snapshot("r3", "a")), 0, t0 + 80_000);
    assert.equal(out.deadLetter, undefined);
    assert.deepEqual(out.events[0], { kind: "runs_evicted", runs: ["r1"], reason: "budget" });
    assert.deepEqual(
      h.detector
        .layerIds()
        .map((l) => l.run_id)
        .sort(),
      ["r2", "r3"],
    );
  });

  test("dropped layers free their limits' room", () => {
    const h = harness();
    h.feed(encodeSnapshot(snapshot("r1", "a")), 0);
    h.feed(encodeSnapshot(snapshot("r1", "b")), 1);
    assert.equal(h.processor.dropLayers([{ run_id: "r1", layer: "a" }]), 1);
    assert.deepEqual(
      h.detector.layerIds().map((l) => l.layer),
      ["b"],
    );
    assert.equal(h.feed(encodeSnapshot(snapshot("r1", "c")), 2).deadLetter, undefined, "room was freed");
  });

  test("a NaN sum is no dead letter: the snapshot is applied and its NaNs counted", async () => {
    const h = harness();
    const s = snapshot("r", "fc1", 4);
    s.stats = {
      kind: "counts",
      fires: Uint32Array.from([1, 2, 3, 4]),
      abs_sum: Float32Array.from([1, Number.NaN, 1, 1]),
      sq_sum: Float32Array.from([1, 1, 1, 1]),
      nonfinite: Uint32Array.from([0, 2, 0, 0]),
    };
    const out = h.feed(encodeSnapshot(s));
    assert.equal(out.deadLetter, undefined);
    assert.deepEqual(
      h.detector.units("r", "fc1")!.map((u) => u.fires),
      [1, 2, 3, 4],
    );
    const m = await h.counters();
    assert.equal(sumOf(m, "reluwatch_layer_nonfinite_values_total", { run: "r", layer: "fc1" }), 3);
  });

  test("an idle layer's open bucket is classified by flushIdle, once", () => {
    const h = harness();
    const s = snapshot("r1", "a", 2);
    s.samples = 8000;
    h.feed(encodeSnapshot(s));
    assert.deepEqual(h.processor.flushIdle(1_700_000_000_000 + 1_000, 60_000), []);
    const ts = h.processor.flushIdle(1_700_000_000_000 + 60_000, 60_000);
    assert.deepEqual(
      ts.map((t) => [t.unit, t.to]),
      [
        [0, "MOSTLY_SILENT"],
        [1, "MOSTLY_SILENT"],
      ],
    );
    assert.deepEqual(h.processor.flushIdle(1_700_000_000_000 + 120_000, 60_000), []);
  });

  test("idle runs are forgotten by punctuate", () => {
    const h = harness();
    h.feed(encodeSnapshot(snapshot("r1", "a")));
    assert.deepEqual(h.processor.punctuate(1_700_000_000_000 + 10, 60_000), []);
    assert.deepEqual(h.processor.punctuate(1_700_000_000_000 + 120_000, 60_000), [
      { kind: "runs_evicted", runs: ["r1"], reason: "idle", idleMs: 60_000 },
    ]);
    assert.equal(h.detector.layerIds().length, 0);
  });
});

describe("docs/errors.md", () => {
  test("documents every limit reason and every dead-letter header", () => {
    const doc = readFileSync(join(packageRoot, "docs/errors.md"), "utf8");
    const limits = [...doc.matchAll(/^\| `(limit_[a-z_]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual(limits.sort(), [...LIMIT_REASONS].sort());
    const headers = [...doc.matchAll(/^\| `(reluwatch-[a-z-]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual(headers.sort(), Object.values(DEAD_LETTER_HEADERS).sort());
  });
});
