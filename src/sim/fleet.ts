/**
 * The synthetic fleet: a pure, seeded generator of the ActivationSnapshots a
 * fleet of trainers would publish under a scenario. Same scenario, same
 * snapshots, in the same order: per snapshot step, run, layer, rank, shard.
 */
import type { ActivationSnapshot } from "../core/snapshot.js";
import { BinomialSampler } from "./binomial.js";
import { Prng } from "./prng.js";
import { layerName, runId, type Scenario, shardSlice, snapshotSteps } from "./scenario.js";
import { layerTruth, rankPublishes, rateAt, type UnitTruth } from "./truth.js";

const SAMPLING_STREAM = 0x5a3;

/** How many snapshots generateFleet yields: for progress bars and rate targets. */
export function fleetSize(s: Scenario): number {
  let n = 0;
  for (const step of snapshotSteps(s)) {
    for (let rank = 0; rank < s.ranks; rank++) if (rankPublishes(s, rank, step)) n++;
  }
  return n * s.runs * s.layers * s.shards;
}

/** Mean |activation| of a firing unit; varies by unit so magnitude-based scores have something to rank. */
function magnitude(t: UnitTruth): number {
  return 0.25 + ((t.unit * 2654435761) % 1000) / 500;
}

export function* generateFleet(s: Scenario): Generator<ActivationSnapshot> {
  const rng = new Prng(s.seed, SAMPLING_STREAM);
  const binomial = new BinomialSampler(s.samples);
  const truth: UnitTruth[][][] = [];
  for (let run = 0; run < s.runs; run++) {
    truth.push([]);
    for (let layer = 0; layer < s.layers; layer++) truth[run]!.push(layerTruth(s, run, layer));
  }
  for (const step of snapshotSteps(s)) {
    for (let run = 0; run < s.runs; run++) {
      for (let layer = 0; layer < s.layers; layer++) {
        const units = truth[run]![layer]!;
        const rates = Float64Array.from(units, (t) => rateAt(t, step));
        for (let rank = 0; rank < s.ranks; rank++) {
          if (!rankPublishes(s, rank, step)) continue;
          for (let shard = 0; shard < s.shards; shard++) {
            const { offset, count } = shardSlice(s, shard);
            yield {
              run_id: runId(s, run),
              layer: layerName(layer),
              rank,
              step,
              time: s.start_time + step * s.step_ms,
              unit_offset: offset,
              unit_count: count,
              layer_units: s.units,
              samples: s.samples,
              stats:
                s.payload === "raw"
                  ? rawStats(rng, rates, units, offset, count, s.samples)
                  : countStats(rng, binomial, rates, units, offset, count, s.sums),
            };
          }
        }
      }
    }
  }
}

function countStats(
  rng: Prng,
  binomial: BinomialSampler,
  rates: Float64Array,
  units: UnitTruth[],
  offset: number,
  count: number,
  sums: boolean,
): ActivationSnapshot["stats"] {
  const fires = new Uint32Array(count);
  for (let i = 0; i < count; i++) fires[i] = binomial.sample(rates[offset + i]!, rng);
  if (!sums) return { kind: "counts", fires, abs_sum: null, sq_sum: null };
  // Firing magnitudes are exponential with the unit's mean m: E[sum] = k·m, E[sum of squares] = 2k·m².
  const abs = new Float32Array(count);
  const sq = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const m = magnitude(units[offset + i]!);
    abs[i] = fires[i]! * m;
    sq[i] = fires[i]! * 2 * m * m;
  }
  return { kind: "counts", fires, abs_sum: abs, sq_sum: sq };
}

function rawStats(
  rng: Prng,
  rates: Float64Array,
  units: UnitTruth[],
  offset: number,
  count: number,
  samples: number,
): ActivationSnapshot["stats"] {
  const values = new Float32Array(samples * count);
  for (let s = 0; s < samples; s++) {
    for (let i = 0; i < count; i++) {
      // Each sample fires with the unit's rate, so fires are Binomial(samples, rate) here too.
      if (rng.next() < rates[offset + i]!)
        values[s * count + i] = magnitude(units[offset + i]!) * rng.exponential();
    }
  }
  return { kind: "raw", dtype: "FLOAT32", values: new Uint8Array(values.buffer) };
}
