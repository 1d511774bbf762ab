/**
 * The synthetic fleet: a pure, seeded generator of the ActivationSnapshots a
 * fleet of trainers would publish under a scenario. Same scenario, same
 * snapshots, in the same order: per snapshot step, run, layer, rank, shard.
 */
import type { ActivationSnapshot } from "../core/snapshot.js";
import { BinomialSampler } from "./binomial.js";
import { Prng } from "./prng.js";
import { layerName, runId, type Scenario, shardSlice, type TimelineStep, timelineSteps } from "./scenario.js";
import { layerTruth, rankPublishes, timelineRateAt, type UnitTruth } from "./truth.js";

const SAMPLING_STREAM = 0x5a3;

/** How many snapshots generateFleet yields: for progress bars and rate targets. */
export function fleetSize(s: Scenario): number {
  let n = 0;
  for (const { step } of timelineSteps(s)) {
    for (let rank = 0; rank < s.ranks; rank++) if (rankPublishes(s, rank, step)) n++;
  }
  return n * s.runs * s.layers * s.shards * s.micro_batches;
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
  const timeline = timelineSteps(s);
  // With incarnations, the replaced timeline's last snapshots of the last rank are still in
  // flight when the new incarnation starts publishing: they arrive after its first step.
  const lastOld = s.crash !== null && s.incarnations ? timeline.findLast((t) => t.timeline === 0) : undefined;
  const held: ActivationSnapshot[] = [];
  for (const [i, at] of timeline.entries()) {
    for (const snapshot of stepSnapshots(s, at, truth, rng, binomial)) {
      if (at === lastOld && snapshot.rank === s.ranks - 1) held.push(snapshot);
      else yield snapshot;
    }
    if (held.length > 0 && timeline[i - 1] === lastOld) yield* held.splice(0);
  }
  yield* held;
}

function* stepSnapshots(
  s: Scenario,
  at: TimelineStep,
  truth: UnitTruth[][][],
  rng: Prng,
  binomial: BinomialSampler,
): Generator<ActivationSnapshot> {
  const { step } = at;
  for (let run = 0; run < s.runs; run++) {
    for (let layer = 0; layer < s.layers; layer++) {
      const units = truth[run]![layer]!;
      const nan = units.map((t) => step >= (t.nan_step ?? Number.POSITIVE_INFINITY));
      const rates = Float64Array.from(units, (t, j) => (nan[j] ? 0 : timelineRateAt(t, step, at.timeline)));
      const anyNan = nan.some((x) => x);
      for (let rank = 0; rank < s.ranks; rank++) {
        if (!rankPublishes(s, rank, step)) continue;
        for (let shard = 0; shard < s.shards; shard++) {
          const { offset, count } = shardSlice(s, shard);
          for (let mb = 0; mb < s.micro_batches; mb++) {
            const stats =
              s.payload === "raw"
                ? rawStats(rng, rates, units, offset, count, s.samples, nan)
                : countStats(rng, binomial, rates, units, offset, count, s.sums);
            if (stats.kind === "counts") {
              if (anyNan) stats.nonfinite = nanCounts(nan, offset, count, s.samples);
              if (stats.abs_sum !== null && s.nan_sum_rate > 0 && rng.next() < s.nan_sum_rate) {
                stats.abs_sum[Math.floor(rng.next() * count)] = Number.NaN;
              }
            }
            yield {
              run_id: runId(s, run),
              layer: layerName(layer),
              rank,
              step,
              time: at.time,
              unit_offset: offset,
              unit_count: count,
              layer_units: s.units,
              samples: s.samples,
              stats,
              micro_batch: mb,
              incarnation: at.incarnation,
            };
          }
        }
      }
    }
  }
}

/** A unit that is NaN has every sample non-finite, and no fires (the caller samples it at rate 0). */
function nanCounts(nan: boolean[], offset: number, count: number, samples: number): Uint32Array {
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) if (nan[offset + i]) out[i] = samples;
  return out;
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
  nan: boolean[],
): ActivationSnapshot["stats"] {
  const values = new Float32Array(samples * count);
  for (let s = 0; s < samples; s++) {
    for (let i = 0; i < count; i++) {
      // Each sample fires with the unit's rate, so fires are Binomial(samples, rate) here too.
      if (rng.next() < rates[offset + i]!)
        values[s * count + i] = magnitude(units[offset + i]!) * rng.exponential();
      if (nan[offset + i]) values[s * count + i] = Number.NaN;
    }
  }
  return { kind: "raw", dtype: "FLOAT32", values: new Uint8Array(values.buffer) };
}
