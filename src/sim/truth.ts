/**
 * The ground truth of a simulated fleet: every unit's class, its true firing
 * rate over time and its death step, if any. The generator samples from it,
 * and `reluwatch simulate --truth` writes it so a detector can be scored.
 *
 * Semantics: a unit's rate is piecewise constant, given by `segments`
 * (each from its `from_step` until the next one's). A unit with a death step
 * d has rate 0 on every snapshot at step >= d (until its revive step, if
 * any), so it fires exactly 0 times there. Born-dead units have death step 0.
 */
import { Prng } from "./prng.js";
import { layerName, runId, type Scenario } from "./scenario.js";

export type UnitClass = "active" | "mostly_silent" | "born_dead";

export interface RateSegment {
  from_step: number;
  rate: number;
}

export interface UnitTruth {
  run_id: string;
  layer: string;
  unit: number;
  class: UnitClass;
  /** The rate the unit fires at while alive (0 for born-dead units). */
  base_rate: number;
  /** First step at which the unit is dead (fires 0 times), or null if it never dies. */
  death_step: number | null;
  /** First step at which a dead unit fires again at base_rate, or null. */
  revive_step: number | null;
  /** First step from which every one of the unit's activations is NaN (no evidence either way), or null. */
  nan_step?: number | null;
  /** Death step on a timeline a crash replaced (see Scenario.crash), or null: not a death of the truth. */
  replaced_death_step?: number | null;
  segments: RateSegment[];
}

export interface FleetTruth {
  scenario: Scenario;
  units: UnitTruth[];
  /** Ranks that stop publishing, and from which step. */
  stale_ranks: Scenario["stale_ranks"];
}

/** A separate PRNG stream per (run, layer), so truth does not shift when the sampling changes. */
const TRUTH_STREAM = 0x7275;

export function layerTruth(s: Scenario, run: number, layer: number): UnitTruth[] {
  const rng = new Prng(s.seed, TRUTH_STREAM + run * 4096 + layer);
  const n = s.units;
  const bornDead = new Set(rng.sample(n, Math.round(s.born_dead * n)));
  const living = [...Array(n).keys()].filter((u) => !bornDead.has(u));
  const silent = new Set(
    rng.sample(living.length, Math.round(s.rates.silent_fraction * living.length)).map((i) => living[i]!),
  );
  const units: UnitTruth[] = [];
  for (let u = 0; u < n; u++) {
    const cls: UnitClass = bornDead.has(u) ? "born_dead" : silent.has(u) ? "mostly_silent" : "active";
    const base =
      cls === "born_dead"
        ? 0
        : cls === "mostly_silent"
          ? rng.logUniform(...s.rates.silent)
          : rng.uniform(...s.rates.active);
    units.push({
      run_id: runId(s, run),
      layer: layerName(layer),
      unit: u,
      class: cls,
      base_rate: base,
      death_step: cls === "born_dead" ? 0 : null,
      revive_step: null,
      nan_step: null,
      replaced_death_step: null,
      segments: [{ from_step: 0, rate: base }],
    });
  }
  const applies = (e: { layer: number; run?: number }) =>
    e.layer === layer && (e.run === undefined || e.run === run);
  const events = [
    ...s.deaths.filter(applies).map((e) => ({ ...e, kind: "death" as const })),
    ...s.revivals.filter(applies).map((e) => ({ ...e, kind: "revival" as const })),
  ].sort((a, b) => a.step - b.step || (a.kind === "death" ? -1 : 1));
  for (const e of events) {
    if (e.kind === "death") {
      const alive = units.filter((t) => t.death_step === null);
      const k = Math.min(alive.length, Math.round(e.fraction * n));
      for (const i of rng.sample(alive.length, k)) {
        const t = alive[i]!;
        t.death_step = e.step;
        t.segments.push({ from_step: e.step, rate: 0 });
      }
    } else {
      const dead = units.filter(
        (t) =>
          t.class !== "born_dead" &&
          t.death_step !== null &&
          t.revive_step === null &&
          t.death_step <= e.step,
      );
      for (const i of rng.sample(dead.length, Math.round(e.fraction * dead.length))) {
        const t = dead[i]!;
        t.revive_step = e.step;
        t.segments.push({ from_step: e.step, rate: t.base_rate });
      }
    }
  }
  for (const e of s.nan_units.filter(applies)) {
    const never = units.filter((t) => t.death_step === null && (t.nan_step ?? null) === null);
    for (const i of rng.sample(never.length, Math.min(never.length, Math.round(e.fraction * n)))) {
      never[i]!.nan_step = e.step;
    }
  }
  for (const e of (s.crash?.deaths ?? []).filter(applies)) {
    const alive = units.filter(
      (t) =>
        rateAt(t, e.step) > 0 && (t.replaced_death_step ?? null) === null && (t.nan_step ?? null) === null,
    );
    for (const i of rng.sample(alive.length, Math.min(alive.length, Math.round(e.fraction * n)))) {
      alive[i]!.replaced_death_step = e.step;
    }
  }
  for (const t of units) {
    // Two events at one step: the later segment wins.
    t.segments = t.segments.filter((seg, i, all) => all[i + 1]?.from_step !== seg.from_step);
  }
  return units;
}

export function fleetTruth(s: Scenario): FleetTruth {
  const units: UnitTruth[] = [];
  for (let run = 0; run < s.runs; run++) {
    for (let layer = 0; layer < s.layers; layer++) units.push(...layerTruth(s, run, layer));
  }
  return { scenario: s, units, stale_ranks: s.stale_ranks };
}

/** The unit's true firing rate at `step`. */
export function rateAt(t: UnitTruth, step: number): number {
  let rate = 0;
  for (const seg of t.segments) {
    if (seg.from_step > step) break;
    rate = seg.rate;
  }
  return rate;
}

/** The unit's rate at `step` on the replaced timeline of a crash (timeline 0), or on the truth's (1). */
export function timelineRateAt(t: UnitTruth, step: number, timeline: 0 | 1): number {
  const replaced = t.replaced_death_step ?? null;
  if (timeline === 0 && replaced !== null && step >= replaced) return 0;
  return rateAt(t, step);
}

/** Whether `rank` still publishes at `step`. */
export function rankPublishes(s: Scenario, rank: number, step: number): boolean {
  return !s.stale_ranks.some((r) => r.rank === rank && step >= r.after_step);
}
