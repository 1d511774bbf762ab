/**
 * Scores a detector's transition events against a simulated fleet's ground
 * truth: precision and recall of DEAD at the end, false dead verdicts at any
 * time among clearly living units, and the detection delay after a true death.
 * Pure code: the caller reads the truth and the events from wherever it keeps
 * them (`reluwatch simulate --truth`, `reluwatch replay --events`).
 */
import { samplesNeeded } from "../core/bound.js";
import type { DetectorConfig } from "../core/config.js";
import type { UnitState, UnitTransition } from "../core/snapshot.js";
import { resumeTime, type Scenario, snapshotSteps } from "../sim/scenario.js";
import { type FleetTruth, rankPublishes, rateAt, timelineRateAt, type UnitTruth } from "../sim/truth.js";

/** What `make eval` holds every scenario to. */
export const EVAL_TARGETS = Object.freeze({
  precision: 0.999,
  recall: 0.99,
  /** Units whose true rate is at least this multiple of dead_rate must never be called dead. */
  lively_multiple: 3,
  false_dead: 0,
  /** Units that died only on a timeline a crash replaced and are still DEAD at the end. */
  replaced_dead_at_end: 0,
  /** Dead verdicts for units while every one of their activations was NaN. */
  nan_dead: 0,
});

export interface DelayBound {
  /** Samples per training step a unit gets, summed over the fewest ranks that publish at any step. */
  samples_per_step: number;
  /** Samples a dead verdict needs, after effective_sample_fraction. */
  n_min: number;
  /** Steps needed to collect n_min samples at samples_per_step. */
  n_min_steps: number;
  bucket_steps: number;
  /** n_min_steps + bucket_steps: the p95 delay target. */
  steps: number;
}

/**
 * The detection-delay target of a scenario. Tensor-parallel shards do not
 * add samples (each unit lives in one shard); data-parallel ranks do. The
 * rate is taken at the step with the fewest publishing ranks, so a stale
 * rank makes the bound longer, never shorter.
 */
export function delayBound(s: Scenario, config: DetectorConfig): DelayBound {
  let fewestRanks = s.ranks;
  for (const step of snapshotSteps(s)) {
    let n = 0;
    for (let rank = 0; rank < s.ranks; rank++) if (rankPublishes(s, rank, step)) n++;
    fewestRanks = Math.min(fewestRanks, n);
  }
  const samplesPerStep = (fewestRanks * s.samples * (s.micro_batches ?? 1)) / s.interval;
  const nMin = samplesNeeded(config.alpha, config.dead_rate) / config.effective_sample_fraction;
  const nMinSteps = samplesPerStep > 0 ? Math.ceil(nMin / samplesPerStep) : Number.POSITIVE_INFINITY;
  const bucketSteps = config.window_steps / config.window_buckets;
  return {
    samples_per_step: samplesPerStep,
    n_min: Math.ceil(nMin),
    n_min_steps: nMinSteps,
    bucket_steps: bucketSteps,
    steps: nMinSteps + bucketSteps,
  };
}

export interface ScenarioScore {
  scenario: string;
  seed: number;
  units: number;
  /** Last snapshot step: "the end" of the scenario. */
  end_step: number;
  /** Units whose true rate at the end is 0. */
  truly_dead: number;
  /** Units in state DEAD at the end. */
  dead_verdicts: number;
  true_positives: number;
  /** DEAD at the end, true rate at the end >= lively_multiple × dead_rate. */
  false_positives: number;
  /**
   * DEAD at the end, true rate at the end above 0 but below lively_multiple × dead_rate: the
   * band where the verdict's confidence allows an error on alpha of the verdict opportunities.
   */
  dead_in_gray_zone: number;
  /** Units the truth revived (alive at the end) that are still DEAD at the end, whatever their rate. */
  revived_still_dead: number;
  /** true_positives / (true_positives + false_positives); null when that is 0/0. The target. */
  precision: number | null;
  /** true_positives / dead_verdicts, gray zone counted as wrong; null when nothing is called dead. */
  precision_strict: number | null;
  /** true_positives / truly_dead; null when no unit is truly dead. */
  recall: number | null;
  /** Units whose true rate is >= lively_multiple × dead_rate at some step. */
  lively_units: number;
  /** Transitions to DEAD at a step where the unit's true rate was >= lively_multiple × dead_rate. */
  false_dead: number;
  /** Transitions to DEAD at a step where the unit's true rate was > 0 but below that (informational). */
  false_dead_sparse: number;
  /** True deaths (born-dead included, at step 0) that stayed dead for at least the delay bound. */
  deaths: number;
  /** Of those, deaths never followed by a DEAD state before revival or the end. */
  undetected: number;
  delay_median: number | null;
  delay_p95: number | null;
  delay_max: number | null;
  bound: DelayBound;
  /** Units that died only on a timeline a crash replaced (alive at the end) and are DEAD at the end. */
  replaced_dead_at_end: number;
  /** Transitions to DEAD of units at a step from which all their activations were NaN. */
  nan_dead: number;
  /** Units that turned NaN on every sample. */
  nan_units: number;
  /** Targets missed, one line each; empty when the scenario passes. */
  failures: string[];
}

/** Nearest-rank percentile of sorted values (q in (0, 1]). */
export function percentile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function unitKey(run_id: string, layer: string, unit: number): string {
  return `${run_id}\u0000${layer}\u0000${unit}`;
}

/** The state a unit was in after each of its transitions, in event order. */
type Timeline = Array<{ step: number; to: UnitState }>;

/** The first step >= from at which the unit is DEAD, or null when it is not before `until`. */
function firstDeadFrom(timeline: Timeline | undefined, from: number, until: number): number | null {
  if (timeline === undefined) return null;
  let before: UnitState = "UNKNOWN";
  for (const t of timeline) {
    if (t.step >= from) break;
    before = t.to;
  }
  // Already called dead (wrongly, while it was alive) when it truly died: no delay.
  if (before === "DEAD") return from;
  for (const t of timeline) {
    if (t.step < from) continue;
    if (t.step >= until) break;
    if (t.to === "DEAD") return t.step;
  }
  return null;
}

/**
 * Scores one scenario. `transitions` must be in the order the detector
 * emitted them (as `replay --events` writes them); a unit's final state is
 * the target of its last transition.
 */
export function scoreScenario(
  truth: FleetTruth,
  transitions: Iterable<UnitTransition>,
  config: DetectorConfig,
): ScenarioScore {
  const s = truth.scenario;
  const steps = snapshotSteps(s);
  const endStep = steps[steps.length - 1]!;
  const lively = EVAL_TARGETS.lively_multiple * config.dead_rate;
  const byKey = new Map<string, UnitTruth>();
  for (const t of truth.units) byKey.set(unitKey(t.run_id, t.layer, t.unit), t);

  const timelines = new Map<string, Timeline>();
  const finals = new Map<string, UnitState>();
  let falseDead = 0;
  let falseDeadSparse = 0;
  let nanDead = 0;
  // Transitions stamped before the resume, at steps the new incarnation published again, were
  // decided on the replaced timeline: judged against its rates, and no part of the truth's timeline.
  const resumedAt = resumeTime(s);
  const replacedFrom = s.crash?.resume_step ?? Number.POSITIVE_INFINITY;
  for (const tr of transitions) {
    const key = unitKey(tr.run_id, tr.layer, tr.unit);
    const t = byKey.get(key);
    if (t === undefined) {
      throw new Error(
        `transition for ${tr.run_id}/${tr.layer} unit ${tr.unit}, which the truth does not hold`,
      );
    }
    finals.set(key, tr.to);
    const replaced = resumedAt !== null && tr.time < resumedAt && tr.step >= replacedFrom;
    if (!replaced) {
      let line = timelines.get(key);
      if (line === undefined) {
        line = [];
        timelines.set(key, line);
      }
      line.push({ step: tr.step, to: tr.to });
    }
    if (tr.to === "DEAD") {
      const rate = timelineRateAt(t, tr.step, replaced ? 0 : 1);
      if (rate >= lively) falseDead++;
      else if (rate > 0) falseDeadSparse++;
      if (tr.step >= (t.nan_step ?? Number.POSITIVE_INFINITY)) nanDead++;
    }
  }

  const bound = delayBound(s, config);
  let trulyDead = 0;
  let deadVerdicts = 0;
  let tp = 0;
  let fp = 0;
  let gray = 0;
  let revivedStillDead = 0;
  let livelyUnits = 0;
  let deaths = 0;
  let undetected = 0;
  let replacedDead = 0;
  let nanUnits = 0;
  const delays: number[] = [];
  for (const [key, t] of byKey) {
    const line = timelines.get(key);
    const final = finals.get(key) ?? "UNKNOWN";
    if ((t.nan_step ?? null) !== null) nanUnits++;
    const endRate = rateAt(t, endStep);
    if (endRate === 0) trulyDead++;
    if (final === "DEAD") {
      deadVerdicts++;
      if (endRate === 0) tp++;
      else if (endRate >= lively) fp++;
      else gray++;
      if (endRate > 0 && t.revive_step !== null) revivedStillDead++;
      if (endRate > 0 && (t.replaced_death_step ?? null) !== null) replacedDead++;
    }
    if (t.segments.some((seg) => seg.rate >= lively)) livelyUnits++;
    if (t.death_step !== null) {
      const until = t.revive_step ?? endStep + 1;
      const detected = firstDeadFrom(line, t.death_step, until);
      const hadTime = Math.min(until - 1, endStep) - t.death_step >= bound.steps;
      if (detected !== null) delays.push(detected - t.death_step);
      if (hadTime) {
        deaths++;
        if (detected === null) {
          undetected++;
          delays.push(Number.POSITIVE_INFINITY);
        }
      }
    }
  }
  delays.sort((a, b) => a - b);
  const precision = tp + fp > 0 ? tp / (tp + fp) : null;
  const recall = trulyDead > 0 ? tp / trulyDead : null;
  const p95 = percentile(delays, 0.95);
  const failures: string[] = [];
  if (precision !== null && precision < EVAL_TARGETS.precision) {
    failures.push(`precision ${fmt(precision)} < ${EVAL_TARGETS.precision} (${fp} false)`);
  }
  if (recall !== null && recall < EVAL_TARGETS.recall) {
    failures.push(`recall ${fmt(recall)} < ${EVAL_TARGETS.recall} (${trulyDead - tp} missed)`);
  }
  if (falseDead > EVAL_TARGETS.false_dead) {
    failures.push(`${falseDead} dead verdicts for units at >= ${lively}`);
  }
  if (p95 !== null && p95 > bound.steps) {
    failures.push(`p95 delay ${p95} steps > bound ${bound.steps}`);
  }
  if (replacedDead > EVAL_TARGETS.replaced_dead_at_end) {
    failures.push(`${replacedDead} units dead only on the replaced timeline are DEAD at the end`);
  }
  if (nanDead > EVAL_TARGETS.nan_dead) failures.push(`${nanDead} dead verdicts for units that are all NaN`);
  return {
    scenario: s.name,
    seed: s.seed,
    units: byKey.size,
    end_step: endStep,
    truly_dead: trulyDead,
    dead_verdicts: deadVerdicts,
    true_positives: tp,
    false_positives: fp,
    dead_in_gray_zone: gray,
    revived_still_dead: revivedStillDead,
    precision,
    precision_strict: deadVerdicts > 0 ? tp / deadVerdicts : null,
    recall,
    lively_units: livelyUnits,
    false_dead: falseDead,
    false_dead_sparse: falseDeadSparse,
    deaths,
    undetected,
    delay_median: percentile(delays, 0.5),
    delay_p95: p95,
    delay_max: delays.length > 0 ? delays[delays.length - 1]! : null,
    bound,
    replaced_dead_at_end: replacedDead,
    nan_dead: nanDead,
    nan_units: nanUnits,
    failures,
  };
}

function fmt(x: number | null): string {
  return x === null ? "n/a" : x.toFixed(4);
}
