/** Read-only views of a layer for sinks: the layer summary and per-unit detail. */
import { deadBound } from "./bound.js";
import type { DetectorConfig } from "./config.js";
import type { LayerRecord } from "./layer-record.js";
import {
  ACTIVE,
  FLAG_BORN_DEAD,
  FLAG_CONSTANT,
  type LayerState,
  MOSTLY_SILENT,
  STATE_NAMES,
} from "./layer-state.js";
import type { UnitState } from "./snapshot.js";
import type { Segment } from "./window.js";

/** Upper bounds of the cumulative firing-rate distribution in LayerSummary.firing_rate_le. */
export const FIRING_RATE_BOUNDS: readonly number[] = [0, 1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.25, 0.5, 0.75, 1];

export interface LayerSummary {
  run_id: string;
  layer: string;
  layer_units: number;
  units_by_state: Record<UnitState, number>;
  /** Living units whose activation barely varies over the window (see DetectorConfig.constant_cv). */
  constant_units: number;
  /** dead / layer_units */
  dead_ratio: number;
  /** Cumulative since the layer was first seen (a layer_units reset keeps counting). */
  transitions_total: Array<{ from: UnitState; to: UnitState; count: number }>;
  deaths_total: number;
  revivals_total: number;
  /** Units now DEAD that were never seen firing before their verdict. */
  born_dead_units: number;
  /**
   * Cumulative count of units whose windowed firing rate is <= le. Only units
   * with at least one sample in the window have a rate and are counted, in
   * whatever state (UNKNOWN included); units no snapshot in the window covered
   * are left out, so the count at le = 1 is the number of observed units.
   */
  firing_rate_le: Array<{ le: number; units: number }>;
  /** Newest step of the layer. */
  step: number;
  /**
   * Samples in the window, minimum over units: with tensor-parallel shards each
   * unit sees only its shard's samples, and the minimum is the evidence every
   * unit has at least. 0 when some unit is covered by no snapshot in the window.
   */
  window_samples: number;
  ranks: Array<{ rank: number; newest_step: number; stale: boolean }>;
  stale_ranks: number;
  /**
   * Non-finite values seen in the layer: NaN/±Inf activations of raw snapshots,
   * `nonfinite` counts of FiringCounts, and NaN/±Inf entries of abs_sum/sq_sum.
   */
  nonfinite_values_total: number;
  /**
   * The layer's mean |activation| over the window (mean over units of each
   * unit's windowed mean |h|), the denominator of every unit's ReDo dormancy
   * score; the mean of the scores themselves is 1 by construction. Null when
   * no snapshot in the window carried abs_sum.
   */
  dormancy_mean: number | null;
  /** Lowest-rate living (ACTIVE or MOSTLY_SILENT) units, at most closest_k, lowest first. */
  closest_to_death: Array<{ unit: number; firing_rate: number; fires: number; samples: number }>;
  duplicates_total: number;
  late_total: number;
  resumes_total: number;
  resets_total: number;
  last_snapshot_ms: number;
}

export interface UnitDetail {
  unit: number;
  state: UnitState;
  constant: boolean;
  /** Windowed fires / samples; 0 when the window holds no (finite) samples for the unit. */
  firing_rate: number;
  /** Upper confidence bound of the rate given the trailing silence (effective samples). */
  rate_upper_bound: number;
  fires: number;
  samples: number;
  /** Trailing silence in samples, before effective_sample_fraction. */
  n_silent: number;
  last_fire_step: number | null;
  born_dead: boolean;
  /** Windowed mean |h| divided by the layer's (ReDo); null without abs_sum. */
  dormancy: number | null;
}

/** Windowed mean |h| per unit (NaN where no sample carried abs_sum) and the layer mean. */
function activationMeans(layer: LayerState): { unitMean: Float64Array; layerMean: number } | null {
  const absSum = layer.absSum;
  if (absSum === null || !layer.started) return null;
  const slots = layer.sumSlotsInWindow();
  const unitMean = new Float64Array(layer.units).fill(Number.NaN);
  let total = 0;
  let counted = 0;
  for (const seg of layer.segments.list) {
    let n = 0;
    for (const s of slots) n += seg.statSamples[s]!;
    if (n === 0) continue;
    for (let j = seg.start; j < seg.end; j++) {
      let s1 = 0;
      for (const s of slots) s1 += absSum[s]![j]!;
      const m = s1 / n;
      unitMean[j] = m;
      total += m;
      counted++;
    }
  }
  if (counted === 0) return null;
  return { unitMean, layerMean: total / counted };
}

export function summarize(rec: LayerRecord, config: DetectorConfig): LayerSummary {
  const layer = rec.state;
  const N = layer.units;
  const byState = [0, 0, 0, 0];
  let constant = 0;
  let bornDead = 0;
  const le = new Array<number>(FIRING_RATE_BOUNDS.length).fill(0);
  const k = config.closest_k;
  // Sorted ascending by (rate, unit); bounded insertion keeps this O(N) for small k.
  const closeRate: number[] = [];
  const closeUnit: number[] = [];
  let windowSamples = Number.POSITIVE_INFINITY;
  const anyBad = layer.hasNonfinite;
  for (const seg of layer.segments.list) {
    const sw = seg.window;
    if (sw < windowSamples) windowSamples = sw;
    for (let j = seg.start; j < seg.end; j++) {
      const st = layer.state[j]!;
      byState[st]!++;
      const fl = layer.flags[j]!;
      if (fl & FLAG_CONSTANT) constant++;
      if (fl & FLAG_BORN_DEAD) bornDead++;
      const ev = anyBad ? layer.evidence(j, seg) : sw;
      if (ev <= 0) continue;
      const rate = layer.windowFires[j]! / ev;
      for (let b = FIRING_RATE_BOUNDS.length - 1; b >= 0 && rate <= FIRING_RATE_BOUNDS[b]!; b--) le[b]!++;
      if (k > 0 && (st === ACTIVE || st === MOSTLY_SILENT)) {
        if (closeRate.length === k && rate >= closeRate[k - 1]!) continue;
        let i = closeRate.length;
        while (i > 0 && closeRate[i - 1]! > rate) i--;
        closeRate.splice(i, 0, rate);
        closeUnit.splice(i, 0, j);
        if (closeRate.length > k) {
          closeRate.pop();
          closeUnit.pop();
        }
      }
    }
  }
  const ranks = new Map<number, number>();
  for (const s of rec.streams.values()) {
    const prev = ranks.get(s.rank);
    if (prev === undefined || s.step > prev) ranks.set(s.rank, s.step);
  }
  const step = layer.started && !Number.isNaN(layer.newestStep) ? layer.newestStep : 0;
  const rankList = [...ranks.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([rank, newest]) => ({
      rank,
      newest_step: newest,
      stale: step - newest >= config.stale_after_steps,
    }));
  const transitions: LayerSummary["transitions_total"] = [];
  for (let i = 0; i < 16; i++) {
    const count = rec.transitions[i]!;
    if (count > 0) transitions.push({ from: STATE_NAMES[i >> 2]!, to: STATE_NAMES[i & 3]!, count });
  }
  const means = activationMeans(layer);
  return {
    run_id: rec.run_id,
    layer: rec.layer,
    layer_units: N,
    units_by_state: {
      UNKNOWN: byState[0]!,
      ACTIVE: byState[1]!,
      MOSTLY_SILENT: byState[2]!,
      DEAD: byState[3]!,
    },
    constant_units: constant,
    dead_ratio: N > 0 ? byState[3]! / N : 0,
    transitions_total: transitions,
    deaths_total: rec.deaths,
    revivals_total: rec.revivals,
    born_dead_units: bornDead,
    firing_rate_le: FIRING_RATE_BOUNDS.map((bound, i) => ({ le: bound, units: le[i]! })),
    step,
    window_samples: Number.isFinite(windowSamples) ? windowSamples : 0,
    ranks: rankList,
    stale_ranks: rankList.filter((r) => r.stale).length,
    nonfinite_values_total: rec.nonfinite,
    dormancy_mean: means === null ? null : means.layerMean,
    closest_to_death: closeUnit.map((unit, i) => {
      const seg = layer.segments.find(unit);
      const samples = layer.evidence(unit, seg);
      return { unit, firing_rate: closeRate[i]!, fires: layer.windowFires[unit]!, samples };
    }),
    duplicates_total: rec.duplicates,
    late_total: rec.late,
    resumes_total: rec.resumes,
    resets_total: rec.resets,
    last_snapshot_ms: rec.lastSnapshotMs,
  };
}

export function unitDetails(rec: LayerRecord, config: DetectorConfig): UnitDetail[] {
  const layer = rec.state;
  const means = activationMeans(layer);
  const out: UnitDetail[] = [];
  for (const seg of layer.segments.list) {
    for (let j = seg.start; j < seg.end; j++) out.push(detailOf(rec, config, j, seg, means));
  }
  return out;
}

/** Unit j's detail (0 <= j < layer units). */
export function unitDetail(rec: LayerRecord, config: DetectorConfig, j: number): UnitDetail {
  return detailOf(rec, config, j, rec.state.segments.find(j), activationMeans(rec.state));
}

function detailOf(
  rec: LayerRecord,
  config: DetectorConfig,
  j: number,
  seg: Segment,
  means: ReturnType<typeof activationMeans>,
): UnitDetail {
  const layer = rec.state;
  const fires = layer.windowFires[j]!;
  const silence = layer.started ? layer.silence(j, seg) : 0;
  const samples = layer.evidence(j, seg);
  const fl = layer.flags[j]!;
  const m = means?.unitMean[j];
  return {
    unit: j,
    state: STATE_NAMES[layer.state[j]!]!,
    constant: (fl & FLAG_CONSTANT) !== 0,
    firing_rate: samples > 0 ? fires / samples : 0,
    rate_upper_bound: deadBound(silence * config.effective_sample_fraction, config.alpha),
    fires,
    samples,
    n_silent: silence,
    last_fire_step: layer.lastFireStep(j),
    born_dead: (fl & FLAG_BORN_DEAD) !== 0,
    dormancy:
      means === null || m === undefined || Number.isNaN(m)
        ? null
        : means.layerMean > 0
          ? m / means.layerMean
          : 0,
  };
}

/** Bits of UnitColumns.flags. */
export const UNIT_FLAG_CONSTANT = 4;
export const UNIT_FLAG_BORN_DEAD = 8;

/**
 * Every unit of a layer as typed arrays, the compact form of unitDetails for
 * views that draw all units at once: 9 bytes a unit instead of an object.
 * flags[j] holds the state index (0 UNKNOWN, 1 ACTIVE, 2 MOSTLY_SILENT,
 * 3 DEAD) in its low two bits, plus UNIT_FLAG_CONSTANT and UNIT_FLAG_BORN_DEAD.
 */
export interface UnitColumns {
  flags: Uint8Array;
  firing_rate: Float32Array;
  rate_upper_bound: Float32Array;
}

export function unitColumns(rec: LayerRecord, config: DetectorConfig): UnitColumns {
  const layer = rec.state;
  const N = layer.units;
  const flags = new Uint8Array(N);
  const rate = new Float32Array(N);
  const bound = new Float32Array(N);
  // deadBound depends only on the silence, which is shared by the many units of a segment silent equally long.
  const bounds = new Map<number, number>();
  for (const seg of layer.segments.list) {
    for (let j = seg.start; j < seg.end; j++) {
      const fl = layer.flags[j]!;
      flags[j] =
        layer.state[j]! |
        (fl & FLAG_CONSTANT ? UNIT_FLAG_CONSTANT : 0) |
        (fl & FLAG_BORN_DEAD ? UNIT_FLAG_BORN_DEAD : 0);
      const samples = layer.evidence(j, seg);
      rate[j] = samples > 0 ? layer.windowFires[j]! / samples : 0;
      const silence = layer.started ? layer.silence(j, seg) : 0;
      let b = bounds.get(silence);
      if (b === undefined) {
        b = deadBound(silence * config.effective_sample_fraction, config.alpha);
        bounds.set(silence, b);
      }
      bound[j] = b;
    }
  }
  return { flags, firing_rate: rate, rate_upper_bound: bound };
}
