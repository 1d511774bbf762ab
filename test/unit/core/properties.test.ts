/**
 * Property tests: verdicts and counts do not depend on how ranks' snapshots
 * interleave inside a bucket, duplicates change nothing, and the window equals
 * a recomputation from the snapshots it still retains.
 *
 * Small statistics keep the runs short: alpha = dead_rate = 0.05 (n_min = 59),
 * silent_rate 0.2, a 40-step window in 4 buckets.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  type ActivationSnapshot,
  Detector,
  type DetectorConfig,
  type LayerSummary,
  type UnitTransition,
} from "../../../src/core/index.js";
import { propertyParams } from "../../support/property.js";
import { binomial, counts, rng } from "./helpers.js";

const CONFIG: Partial<DetectorConfig> = {
  window_steps: 40,
  window_buckets: 4,
  alpha: 0.05,
  dead_rate: 0.05,
  silent_rate: 0.2,
  revive_min_fires: 2,
};
const WIDTH = 10;
const RATES = [0, 0.01, 0.1, 0.5];

interface Scenario {
  ranks: number;
  /** Tensor-parallel shards per rank (1: every rank sends the whole layer). */
  shards: number;
  units: number;
  steps: number[];
  seed: number;
}

const scenario = fc.record({
  ranks: fc.integer({ min: 1, max: 3 }),
  shards: fc.integer({ min: 1, max: 2 }),
  units: fc.integer({ min: 2, max: 6 }),
  // Increasing steps with gaps, some longer than the window.
  steps: fc.array(fc.integer({ min: 1, max: 25 }), { minLength: 5, maxLength: 40 }).map((gaps) => {
    const steps: number[] = [];
    for (const g of gaps) steps.push((steps.at(-1) ?? -1) + g);
    return steps;
  }),
  seed: fc.integer({ min: 1, max: 2 ** 30 }),
});

/** Every rank's snapshots (one per shard), per step in rank order (the canonical interleaving). */
function snapshots(sc: Scenario): ActivationSnapshot[][] {
  const next = rng(sc.seed);
  const unitRates = Array.from({ length: sc.units }, () => RATES[Math.floor(next() * RATES.length)]!);
  const cut = sc.shards === 1 ? sc.units : Math.floor(sc.units / 2);
  const ranges =
    sc.shards === 1
      ? [[0, sc.units]]
      : [
          [0, cut],
          [cut, sc.units],
        ];
  return sc.steps.map((step) =>
    Array.from({ length: sc.ranks }, (_, rank) =>
      ranges.map(([from, to]) => {
        // Shards of one step may carry different sample counts.
        const samples = 1 + Math.floor(next() * 10);
        return counts({
          rank,
          step,
          samples,
          unit_offset: from!,
          layer_units: sc.units,
          fires: unitRates.slice(from, to).map((p) => binomial(next, samples, p)),
        });
      }),
    ).flat(),
  );
}

function observe(d: Detector): {
  units: unknown;
  summary: Omit<LayerSummary, "duplicates_total" | "late_total">;
} {
  const { duplicates_total: _d, late_total: _l, ...summary } = d.summary("run", "fc1")!;
  return { units: d.units("run", "fc1"), summary };
}

function sortTransitions(ts: UnitTransition[]): string[] {
  return ts.map((t) => JSON.stringify(t)).sort();
}

test("the interleaving of ranks' snapshots within a bucket changes no state or count", () => {
  fc.assert(
    fc.property(scenario, fc.integer({ min: 0, max: 2 ** 30 }), (sc, shuffleSeed) => {
      const perStep = snapshots(sc);
      const canonical = new Detector(CONFIG);
      const canonicalTs: UnitTransition[] = [];
      for (const group of perStep)
        for (const s of group) canonicalTs.push(...canonical.apply(s, 0).transitions);
      canonicalTs.push(...canonical.flush());

      // Group by bucket, then merge the ranks' queues in a random order, each rank keeping its own order.
      const shuffled = new Detector(CONFIG);
      const shuffledTs: UnitTransition[] = [];
      const next = rng(shuffleSeed + 1);
      const buckets = new Map<number, ActivationSnapshot[][]>();
      for (const group of perStep) {
        const b = Math.floor(group[0]!.step / WIDTH);
        if (!buckets.has(b))
          buckets.set(
            b,
            Array.from({ length: sc.ranks }, () => []),
          );
        for (const s of group) buckets.get(b)![s.rank]!.push(s);
      }
      for (const queues of buckets.values()) {
        while (queues.some((q) => q.length > 0)) {
          const live = queues.filter((q) => q.length > 0);
          const s = live[Math.floor(next() * live.length)]!.shift()!;
          shuffledTs.push(...shuffled.apply(s, 0).transitions);
        }
      }
      shuffledTs.push(...shuffled.flush());
      assert.deepEqual(observe(shuffled), observe(canonical));
      assert.deepEqual(sortTransitions(shuffledTs), sortTransitions(canonicalTs));
    }),
    propertyParams({ numRuns: 150 }),
  );
});

test("redelivered snapshots change nothing but the duplicate and late counters", () => {
  fc.assert(
    fc.property(
      scenario,
      fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 20 }),
      (sc, redeliveries) => {
        const stream = snapshots(sc).flat();
        const once = new Detector(CONFIG);
        const onceTs: UnitTransition[] = [];
        for (const s of stream) onceTs.push(...once.apply(s, 0).transitions);

        // Insert copies of snapshots anywhere after their original.
        const withCopies = [...stream];
        for (const [a, b] of redeliveries) {
          const original = stream[a % stream.length]!;
          const from = withCopies.indexOf(original) + 1;
          withCopies.splice(from + (b % (withCopies.length - from + 1)), 0, structuredClone(original));
        }
        const twice = new Detector(CONFIG);
        const twiceTs: UnitTransition[] = [];
        let skipped = 0;
        for (const s of withCopies) {
          const o = twice.apply(s, 0);
          twiceTs.push(...o.transitions);
          if (o.result !== "ok") skipped++;
        }
        assert.equal(skipped, redeliveries.length);
        assert.deepEqual(observe(twice), observe(once));
        assert.deepEqual(twiceTs, onceTs);
        const s = twice.summary("run", "fc1")!;
        assert.equal(s.duplicates_total + s.late_total, redeliveries.length);
      },
    ),
    propertyParams({ numRuns: 150 }),
  );
});

test("window expiry equals recomputing the window from the retained snapshots", () => {
  fc.assert(
    fc.property(scenario, (sc) => {
      const stream = snapshots(sc).flat();
      const d = new Detector(CONFIG);
      for (const s of stream) d.apply(s, 0);
      const head = Math.floor(stream.at(-1)!.step / WIDTH);
      const retained = stream.filter((s) => Math.floor(s.step / WIDTH) > head - 4);
      const fires = new Array<number>(sc.units).fill(0);
      const samples = new Array<number>(sc.units).fill(0);
      for (const s of retained) {
        if (s.stats.kind !== "counts") continue;
        for (let i = 0; i < s.unit_count; i++) {
          fires[s.unit_offset + i]! += s.stats.fires[i]!;
          samples[s.unit_offset + i]! += s.samples;
        }
      }
      const units = d.units("run", "fc1")!;
      assert.deepEqual(
        units.map((u) => [u.fires, u.samples]),
        fires.map((f, i) => [f, samples[i]]),
      );
      // A fresh detector fed only the retained snapshots holds the same window.
      const fresh = new Detector(CONFIG);
      for (const s of retained) fresh.apply(s, 0);
      assert.deepEqual(
        fresh.units("run", "fc1")!.map((u) => [u.fires, u.samples, u.firing_rate]),
        units.map((u) => [u.fires, u.samples, u.firing_rate]),
      );
    }),
    propertyParams({ numRuns: 200 }),
  );
});
