/**
 * What a simulated fleet looks like: its shape (runs, data-parallel ranks,
 * tensor-parallel shards, layers, units), its schedule (steps, snapshot
 * interval, samples per snapshot) and its ground truth (firing-rate
 * distribution, deaths, revivals, born-dead units, stale ranks).
 */

export interface RateDistribution {
  /** Healthy units' firing rates, drawn uniformly from [lo, hi). */
  active: [number, number];
  /** Fraction of each layer's living units that are mostly silent: sparse but alive. */
  silent_fraction: number;
  /** Mostly-silent units' rates, drawn log-uniformly from [lo, hi). Default [1e-3, 1e-2]. */
  silent: [number, number];
}

/** At `step`, `fraction` of layer `layer`'s units (of all its units, chosen among those still alive) die. */
export interface DeathEvent {
  layer: number;
  fraction: number;
  step: number;
  /** Only in this run (index); every run when omitted. */
  run?: number;
}

/** At `step`, `fraction` of the units that died in earlier events of layer `layer` fire again at their old rate. */
export interface RevivalEvent {
  layer: number;
  fraction: number;
  step: number;
  run?: number;
}

/** From `step` on, `fraction` of layer `layer`'s units (chosen among those that never die) output NaN on every sample. */
export interface NanEvent {
  layer: number;
  fraction: number;
  step: number;
  run?: number;
}

/**
 * The job (every run) crashes after publishing the snapshots of the steps
 * before `crash_step` and resumes from the checkpoint of `resume_step`: steps
 * resume_step..crash_step are published twice, first by the replaced timeline,
 * then by the new incarnation. `deaths` happen on the replaced timeline only;
 * the truth is the new timeline.
 */
export interface Crash {
  resume_step: number;
  crash_step: number;
  deaths: DeathEvent[];
}

/** Rank `rank` publishes nothing from `after_step` on (in every run). */
export interface StaleRank {
  rank: number;
  after_step: number;
}

export interface Scenario {
  name: string;
  seed: number;
  runs: number;
  ranks: number;
  /** Tensor-parallel shards per layer: each rank sends one message per shard, covering a contiguous slice. */
  shards: number;
  layers: number;
  units: number;
  /** Snapshots are taken at steps 0, interval, 2·interval, … below `steps`. */
  steps: number;
  interval: number;
  /** Samples per snapshot, per rank and shard. */
  samples: number;
  payload: "counts" | "raw";
  /** With counts: also send abs_sum and sq_sum. */
  sums: boolean;
  rates: RateDistribution;
  /** Fraction of each layer's units dead from step 0. */
  born_dead: number;
  deaths: DeathEvent[];
  revivals: RevivalEvent[];
  stale_ranks: StaleRank[];
  /** Snapshots per rank, shard and snapshot step (gradient-accumulation micro-batches), each of `samples`. */
  micro_batches: number;
  /** Stamp snapshots with an incarnation (the wall time the timeline started); 0 otherwise. */
  incarnations: boolean;
  crash: Crash | null;
  nan_units: NanEvent[];
  /** With sums: probability that a snapshot carries a NaN abs_sum entry (its fires stay valid). */
  nan_sum_rate: number;
  /** `time` of step 0, ms since the epoch; fixed so output is the same on every run. */
  start_time: number;
  /** Milliseconds of simulated wall time per training step. */
  step_ms: number;
}

const defaults: Scenario = {
  name: "healthy",
  seed: 1,
  runs: 1,
  ranks: 4,
  shards: 1,
  layers: 3,
  units: 256,
  steps: 2000,
  interval: 50,
  samples: 512,
  payload: "counts",
  sums: false,
  rates: { active: [0.05, 0.6], silent_fraction: 0.1, silent: [1e-3, 1e-2] },
  born_dead: 0,
  deaths: [],
  revivals: [],
  stale_ranks: [],
  micro_batches: 1,
  incarnations: false,
  crash: null,
  nan_units: [],
  nan_sum_rate: 0,
  start_time: Date.UTC(2026, 0, 1),
  step_ms: 250,
};

export const DEFAULT_SCENARIO: Readonly<Scenario> = Object.freeze(defaults);

/** Named scenarios the end-to-end tests and the evaluation use; flags override any field. */
export const BUILT_IN_SCENARIOS: Readonly<Record<string, Partial<Scenario>>> = Object.freeze({
  /** Every unit alive; 10% mostly silent. Nothing should ever be called dead. */
  healthy: {},
  /** A learning-rate spike: 30% of layer 2's units die at step 500. */
  "lr-spike": { deaths: [{ layer: 2, fraction: 0.3, step: 500 }] },
  /** 5% of every layer's units never fire, and 20% are mostly silent (alive). */
  "born-dead": {
    born_dead: 0.05,
    rates: { active: [0.05, 0.6], silent_fraction: 0.2, silent: [1e-3, 1e-2] },
  },
  /** Rank 3 stops publishing at step 800 while the others go on. */
  "stale-rank": { stale_ranks: [{ rank: 3, after_step: 800 }] },
  /** 20% of layer 1 dies at step 500; half of those fire again from step 1200. */
  revival: {
    deaths: [{ layer: 1, fraction: 0.2, step: 500 }],
    revivals: [{ layer: 1, fraction: 0.5, step: 1200 }],
  },
  /** Two tensor-parallel shards per layer, 2 runs, with sums; 25% of layer 0 dies at step 1000 in run 1 only. */
  "tensor-parallel": {
    runs: 2,
    shards: 2,
    sums: true,
    deaths: [{ layer: 0, fraction: 0.25, step: 1000, run: 1 }],
  },
  /** Gradient accumulation: 4 micro-batches of 128 samples per rank and snapshot step, one millisecond; 30% of layer 2 dies at step 500. */
  "grad-accum": {
    micro_batches: 4,
    samples: 128,
    incarnations: true,
    deaths: [{ layer: 2, fraction: 0.3, step: 500 }],
  },
  /**
   * Crash and resume: the job reaches step 850, crashes and resumes from the checkpoint of
   * step 500. On the replaced timeline 30% of layer 1 died at step 510 and 10% of layer 0 at
   * 520, both called dead before the crash; on the new one 20% of layer 2 dies at step 1200.
   * None of the replaced deaths may be DEAD at the end. The replaced timeline's last snapshots
   * of one rank arrive after the resume (late).
   */
  "crash-resume": {
    incarnations: true,
    crash: {
      resume_step: 500,
      crash_step: 900,
      deaths: [
        { layer: 1, fraction: 0.3, step: 510 },
        { layer: 0, fraction: 0.1, step: 520 },
      ],
    },
    deaths: [{ layer: 2, fraction: 0.2, step: 1200 }],
  },
  /** 10% of layer 1 turns NaN on every sample at step 600, besides an ordinary death in layer 2. */
  "nan-units": {
    nan_units: [{ layer: 1, fraction: 0.1, step: 600 }],
    deaths: [{ layer: 2, fraction: 0.3, step: 500 }],
  },
  /** With sums, 20% of snapshots carry a NaN abs_sum entry; 30% of layer 2 dies at step 500. */
  "nan-sums": {
    sums: true,
    nan_sum_rate: 0.2,
    deaths: [{ layer: 2, fraction: 0.3, step: 500 }],
  },
});

export class ScenarioError extends Error {
  override readonly name = "ScenarioError";
}

/** A complete scenario: built-in `base` (default "healthy") under the given overrides, validated. */
export function resolveScenario(base = "healthy", overrides: Partial<Scenario> = {}): Scenario {
  const builtIn = Object.hasOwn(BUILT_IN_SCENARIOS, base) ? BUILT_IN_SCENARIOS[base] : undefined;
  if (!builtIn) {
    throw new ScenarioError(
      `unknown scenario "${base}"; built-in: ${Object.keys(BUILT_IN_SCENARIOS).join(", ")}`,
    );
  }
  const s: Scenario = structuredClone({ ...DEFAULT_SCENARIO, ...builtIn, name: base, ...overrides });
  validateScenario(s);
  return s;
}

function int(value: number, field: string, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new ScenarioError(`${field} must be an integer >= ${min}, got ${value}`);
  }
}

function fraction(value: number, field: string): void {
  if (!(value >= 0 && value <= 1)) throw new ScenarioError(`${field} must be in [0, 1], got ${value}`);
}

function range(r: [number, number], field: string): void {
  if (!Array.isArray(r) || r.length !== 2 || !(r[0] > 0 && r[0] <= r[1] && r[1] <= 1)) {
    throw new ScenarioError(`${field} must be [lo, hi] with 0 < lo <= hi <= 1, got ${JSON.stringify(r)}`);
  }
}

function checkEvents(s: Scenario, events: readonly DeathEvent[], what: string): void {
  for (const [i, e] of events.entries()) {
    int(e.layer, `${what} ${i} layer`, 0);
    if (e.layer >= s.layers)
      throw new ScenarioError(`${what} ${i}: layer ${e.layer} but there are ${s.layers} layers`);
    int(e.step, `${what} ${i} step`, 0);
    fraction(e.fraction, `${what} ${i} fraction`);
    if (e.run !== undefined) {
      int(e.run, `${what} ${i} run`, 0);
      if (e.run >= s.runs) throw new ScenarioError(`${what} ${i}: run ${e.run} but there are ${s.runs} runs`);
    }
  }
}

export function validateScenario(s: Scenario): void {
  if (!/^[A-Za-z0-9._-]+$/.test(s.name))
    throw new ScenarioError(`name must be [A-Za-z0-9._-]+, got "${s.name}"`);
  int(s.seed, "seed", 0);
  int(s.runs, "runs", 1);
  int(s.ranks, "ranks", 1);
  int(s.shards, "shards", 1);
  int(s.layers, "layers", 1);
  int(s.units, "units", 1);
  int(s.steps, "steps", 1);
  int(s.interval, "interval", 1);
  int(s.samples, "samples", 1);
  int(s.start_time, "start_time", 0);
  int(s.step_ms, "step_ms", 0);
  if (s.shards > s.units) throw new ScenarioError(`shards (${s.shards}) cannot exceed units (${s.units})`);
  if (s.payload !== "counts" && s.payload !== "raw") {
    throw new ScenarioError(`payload must be "counts" or "raw", got ${String(s.payload)}`);
  }
  range(s.rates.active, "rates.active");
  range(s.rates.silent, "rates.silent");
  fraction(s.rates.silent_fraction, "rates.silent_fraction");
  fraction(s.born_dead, "born_dead");
  checkEvents(s, [...s.deaths, ...s.revivals], "event");
  int(s.micro_batches, "micro_batches", 1);
  if (typeof s.incarnations !== "boolean") throw new ScenarioError("incarnations must be true or false");
  fraction(s.nan_sum_rate, "nan_sum_rate");
  if (s.nan_sum_rate > 0 && (!s.sums || s.payload !== "counts")) {
    throw new ScenarioError("nan_sum_rate needs counts with sums");
  }
  checkEvents(s, s.nan_units, "nan event");
  if (s.crash !== null) {
    const c = s.crash;
    int(c.resume_step, "crash resume_step", 0);
    int(c.crash_step, "crash crash_step", 0);
    if (!(c.resume_step < c.crash_step && c.crash_step <= s.steps)) {
      throw new ScenarioError(
        `crash needs resume_step < crash_step <= steps, got ${c.resume_step}, ${c.crash_step}, ${s.steps}`,
      );
    }
    checkEvents(s, c.deaths, "crash death");
    for (const d of c.deaths) {
      if (d.step < c.resume_step || d.step >= c.crash_step) {
        throw new ScenarioError(
          `crash death at step ${d.step} is not on the replaced steps [${c.resume_step}, ${c.crash_step})`,
        );
      }
    }
  }
  for (const r of s.stale_ranks) {
    int(r.rank, "stale rank", 0);
    if (r.rank >= s.ranks) throw new ScenarioError(`stale rank ${r.rank} but there are ${s.ranks} ranks`);
    int(r.after_step, "stale after_step", 0);
  }
}

/** Run ids and layer names, so the truth file and the snapshots agree. */
export function runId(s: Scenario, run: number): string {
  return `sim-${s.name}-${s.seed}-r${run}`;
}

export function layerName(layer: number): string {
  return `blocks.${layer}.mlp.fc1`;
}

/**
 * One published pass over a snapshot step: the step, the incarnation that
 * published it, and the simulated wall time. Without a crash this is every
 * snapshot step once; with one, the replaced timeline's steps up to the crash
 * come first, then the new incarnation's from the resume on.
 */
export interface TimelineStep {
  step: number;
  /** 0 for the first timeline, 1 for the one after the crash. */
  timeline: 0 | 1;
  time: number;
  incarnation: number;
}

export function timelineSteps(s: Scenario): TimelineStep[] {
  const steps = snapshotSteps(s);
  const crash = s.crash;
  const at = (step: number, tick: number, timeline: 0 | 1, startTick: number): TimelineStep => ({
    step,
    timeline,
    time: s.start_time + tick * s.step_ms,
    incarnation: s.incarnations ? s.start_time + startTick * s.step_ms + timeline : 0,
  });
  if (crash === null) return steps.map((step) => at(step, step, 0, 0));
  const out = steps.filter((step) => step < crash.crash_step).map((step) => at(step, step, 0, 0));
  // The new incarnation starts at the wall time the crash happened.
  for (const step of steps) {
    if (step >= crash.resume_step)
      out.push(at(step, crash.crash_step + step - crash.resume_step, 1, crash.crash_step));
  }
  return out;
}

/** The wall time from which the new incarnation publishes, or null without a crash. */
export function resumeTime(s: Scenario): number | null {
  const crash = s.crash ?? null;
  return crash === null ? null : s.start_time + crash.crash_step * s.step_ms;
}

/** The steps at which snapshots are taken. */
export function snapshotSteps(s: Scenario): number[] {
  const out: number[] = [];
  for (let step = 0; step < s.steps; step += s.interval) out.push(step);
  return out;
}

/** The [offset, count) slice of shard `k`: even slices, the remainder spread over the first shards. */
export function shardSlice(s: Scenario, k: number): { offset: number; count: number } {
  const base = Math.floor(s.units / s.shards);
  const extra = s.units % s.shards;
  return { offset: k * base + Math.min(k, extra), count: base + (k < extra ? 1 : 0) };
}
