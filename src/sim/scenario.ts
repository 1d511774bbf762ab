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
  for (const [i, e] of [...s.deaths, ...s.revivals].entries()) {
    int(e.layer, `event ${i} layer`, 0);
    if (e.layer >= s.layers)
      throw new ScenarioError(`event ${i}: layer ${e.layer} but there are ${s.layers} layers`);
    int(e.step, `event ${i} step`, 0);
    fraction(e.fraction, `event ${i} fraction`);
    if (e.run !== undefined) {
      int(e.run, `event ${i} run`, 0);
      if (e.run >= s.runs) throw new ScenarioError(`event ${i}: run ${e.run} but there are ${s.runs} runs`);
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
