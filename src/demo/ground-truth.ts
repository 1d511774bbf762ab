/**
 * Ground truth for the detector: which units are really dead, by running the
 * whole dataset through the trained model, and how a predicted DEAD set scores
 * against it.
 */
import type * as tf from "@tensorflow/tfjs";
import { ActivationProbe } from "../publisher/activation-probe.js";
import { MemorySnapshotSink } from "../publisher/probe.js";

/** Per ReLU layer name, the indices of the units in the set. */
export type DeadUnits = Map<string, Set<number>>;

/**
 * Units whose activation is never > 0 on any row of `x`, per ReLU layer.
 * Rows go through in chunks so memory stays bounded for any dataset size.
 */
export async function evaluateDeadUnits(
  model: tf.LayersModel,
  x: tf.Tensor,
  chunk = 1024,
): Promise<DeadUnits> {
  const sink = new MemorySnapshotSink();
  const probe = new ActivationProbe(model, {
    sink,
    run_id: "ground-truth",
    probe_batch: chunk,
    every_steps: 1,
    sums: false,
  });
  const n = x.shape[0]!;
  const fires = new Map<string, Float64Array>(probe.layers.map((l) => [l.name, new Float64Array(l.units)]));
  for (let start = 0; start < n; start += chunk) {
    const rows = x.slice(start, Math.min(chunk, n - start));
    try {
      for (const s of await probe.probe(0, rows)) {
        const total = fires.get(s.layer)!;
        if (s.stats.kind !== "counts") continue;
        s.stats.fires.forEach((f, u) => {
          total[u]! += f;
        });
      }
    } finally {
      rows.dispose();
    }
  }
  const dead: DeadUnits = new Map();
  for (const [layer, total] of fires) {
    const set = new Set<number>();
    total.forEach((f, u) => {
      if (f === 0) set.add(u);
    });
    dead.set(layer, set);
  }
  return dead;
}

export interface SetScore {
  /** |predicted ∩ truth| / |predicted|; 1 when nothing was predicted. */
  precision: number;
  /** |predicted ∩ truth| / |truth|; 1 when the truth is empty. */
  recall: number;
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
}

function keys(units: DeadUnits): Set<string> {
  const out = new Set<string>();
  for (const [layer, set] of units) for (const u of set) out.add(`${layer}\u0000${u}`);
  return out;
}

/** Precision and recall of a predicted dead set against the truth, over every (layer, unit) pair. */
export function scoreDeadSet(predicted: DeadUnits, truth: DeadUnits): SetScore {
  const p = keys(predicted);
  const t = keys(truth);
  let truePositives = 0;
  for (const k of p) if (t.has(k)) truePositives++;
  const falsePositives = p.size - truePositives;
  const falseNegatives = t.size - truePositives;
  return {
    precision: p.size === 0 ? 1 : truePositives / p.size,
    recall: t.size === 0 ? 1 : truePositives / t.size,
    truePositives,
    falsePositives,
    falseNegatives,
  };
}

export function countUnits(units: DeadUnits): number {
  let n = 0;
  for (const set of units.values()) n += set.size;
  return n;
}

/** JSON form: { layer: [units…] } with units sorted. */
export function deadUnitsToJson(units: DeadUnits): Record<string, number[]> {
  return Object.fromEntries([...units].map(([layer, set]) => [layer, [...set].sort((a, b) => a - b)]));
}
