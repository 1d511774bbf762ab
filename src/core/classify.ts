/**
 * One classification pass over a layer: every unit's state from its trailing
 * silence (dead?) and its windowed rate (how sparse?), with hysteresis on
 * revival and between ACTIVE and MOSTLY_SILENT. Runs when a bucket closes, so a verdict never depends on how the
 * ranks' snapshots interleave inside a bucket.
 */
import { deadBound } from "./bound.js";
import type { DetectorConfig } from "./config.js";
import {
  ACTIVE,
  DEAD,
  FLAG_BORN_DEAD,
  FLAG_CONSTANT,
  FLAG_RECHECK,
  type LayerState,
  MOSTLY_SILENT,
  STATE_NAMES,
} from "./layer-state.js";
import type { UnitTransition } from "./snapshot.js";

const U32_MAX = 4294967295;

export interface ClassifyContext {
  run_id: string;
  layer: string;
  step: number;
  time: number;
  /**
   * True when the head bucket is closing for good: its fires and samples then
   * join the revival evidence of DEAD units. A provisional pass (flush) reads
   * them without keeping them, so the bucket is not counted twice.
   */
  closing: boolean;
  /**
   * True when the head bucket closed before and its fires and samples are
   * already in the revival evidence: the pass right after a resume cut the
   * window back to such a bucket.
   */
  headCounted?: boolean;
}

/** Counts a pass adds to the layer's cumulative totals. */
export interface ClassifyTally {
  /** transitions[from * 4 + to] */
  transitions: Float64Array;
  deaths: number;
  revivals: number;
}

export interface ClassifyParams {
  config: DetectorConfig;
  nMin: number;
}

export function classifyLayer(
  layer: LayerState,
  params: ClassifyParams,
  ctx: ClassifyContext,
  tally: ClassifyTally,
  out: UnitTransition[],
): void {
  if (!layer.started) return;
  const { config, nMin } = params;
  const esf = config.effective_sample_fraction;
  const deadRate = config.dead_rate;
  const silentRate = config.silent_rate;
  const headCounted = ctx.headCounted === true;
  const verdicts = layer.verdicts[layer.clock.slotOf(layer.head)]!;
  // Hysteresis: a living unit must cross the far edge of the band to change sides.
  const toSilent = silentRate * (1 - config.silent_hysteresis);
  const toActive = silentRate * (1 + config.silent_hysteresis);
  const reviveMin = config.revive_min_fires;
  const cv2 = config.constant_cv * config.constant_cv;
  const B = layer.clock.buckets;
  const slots = layer.ageSlots();
  const fires = layer.fires;
  const headFires = fires[slots[0]!]!;
  const win = layer.windowFires;
  const silentExp = layer.silentExpired;
  const state = layer.state;
  const flags = layer.flags;
  const deathFires = layer.deathFires;
  const deathSamples = layer.deathSamples;
  const absSum = layer.absSum;
  const sqSum = layer.sqSum;
  const sumSlots = layer.sumSlotsInWindow();
  const newer = new Float64Array(B);
  // Non-finite samples are no evidence: per unit, they come off every sample count below.
  const bad = slots.map((slot) => layer.nonfinite[slot] ?? null);
  const anyBad = bad.some((a) => a !== null);
  const headBad = bad[0]!;
  // n_min in raw samples: the silence a dead verdict rests on.
  const silenceCap = Math.ceil(nMin / esf);

  for (const seg of layer.segments.list) {
    // newer[a]: samples of the buckets after the one a buckets older than the head.
    for (let a = 1; a < B; a++) newer[a] = newer[a - 1]! + seg.samples[slots[a - 1]!]!;
    const segWin = seg.window;
    const known = (seg.expired + segWin) * esf >= nMin;
    const headSamples = seg.samples[slots[0]!]!;
    let statWin = 0;
    for (const k of sumSlots) statWin += seg.statSamples[k]!;
    for (let j = seg.start; j < seg.end; j++) {
      const st = state[j]!;
      const w = win[j]!;
      let silence: number;
      let unitWin = segWin;
      let nonfiniteWin = 0;
      if (anyBad) {
        for (let a = 0; a < B; a++) nonfiniteWin += bad[a]?.[j] ?? 0;
        unitWin -= nonfiniteWin;
      }
      if (w === 0) {
        silence = silentExp[j]! + unitWin;
      } else {
        let a = 0;
        while (a < B && fires[slots[a]!]![j] === 0) a++;
        silence = newer[a]!;
        if (anyBad) for (let b = 0; b < a; b++) silence -= bad[b]?.[j] ?? 0;
      }
      const nEff = silence * esf;
      let next = st;
      let retracted = false;
      let recheck = st === DEAD && (flags[j]! & FLAG_RECHECK) !== 0;
      if (recheck && nEff >= nMin) {
        // A verdict from before a resume that the evidence left still proves.
        flags[j] = flags[j]! & ~FLAG_RECHECK;
        recheck = false;
      }
      if (recheck) {
        // It rested on dropped evidence: judge the unit afresh on its rate (with no evidence at
        // all it waits for some).
        if (unitWin > 0) {
          flags[j] = flags[j]! & ~FLAG_RECHECK;
          next = w >= silentRate * unitWin ? ACTIVE : MOSTLY_SILENT;
          retracted = true;
        }
      } else if (st === DEAD) {
        const hf = headCounted ? 0 : headFires[j]!;
        let df = deathFires[j]! + hf;
        let ds = Math.min(deathSamples[j]! + (headCounted ? 0 : headSamples - (headBad?.[j] ?? 0)), U32_MAX);
        if (hf === 0 && (df === 0 || nEff >= nMin)) {
          // Silence before the first fire after the verdict, or a fresh n_min of silence after a
          // stray fire, counts as no more than the verdict's own evidence. Counting all of it would
          // make a unit dead for 100,000 samples that then fires at 2 × dead_rate wait another
          // 100,000 samples to revive; capped, the wait no longer grows with the time spent dead.
          df = 0;
          ds = Math.min(ds, silenceCap);
        }
        if (ctx.closing) {
          deathFires[j] = df;
          deathSamples[j] = ds;
        }
        if (df >= reviveMin && df >= deadRate * ds) {
          next = unitWin > 0 && w >= silentRate * unitWin ? ACTIVE : MOSTLY_SILENT;
        }
      } else if (nEff >= nMin) {
        next = DEAD;
      } else if (st === ACTIVE) {
        if (unitWin > 0 && w < toSilent * unitWin) next = MOSTLY_SILENT;
      } else if (st === MOSTLY_SILENT) {
        if (unitWin > 0 && w >= toActive * unitWin) next = ACTIVE;
      } else if (known) {
        if (unitWin > 0) next = w >= silentRate * unitWin ? ACTIVE : MOSTLY_SILENT;
      }

      if (absSum !== null && sqSum !== null) {
        let constant = false;
        // abs_sum and sq_sum leave non-finite samples out, statWin does not: such a unit is not judged.
        if ((next === ACTIVE || next === MOSTLY_SILENT) && statWin > 0 && nonfiniteWin === 0) {
          let s1 = 0;
          let s2 = 0;
          for (const k of sumSlots) {
            s1 += absSum[k]![j]!;
            s2 += sqSum[k]![j]!;
          }
          const mean = s1 / statWin;
          const variance = s2 / statWin - mean * mean;
          constant = mean > 0 && variance <= cv2 * mean * mean;
        }
        flags[j] = constant ? flags[j]! | FLAG_CONSTANT : flags[j]! & ~FLAG_CONSTANT;
      }

      if (next === st) continue;
      let bornDead = false;
      if (next === DEAD) {
        verdicts.push(j);
        deathFires[j] = 0;
        deathSamples[j] = 0;
        bornDead = !layer.everFired(j);
        if (bornDead) flags[j] = flags[j]! | FLAG_BORN_DEAD;
        if (st === ACTIVE || st === MOSTLY_SILENT) tally.deaths++;
      } else if (st === DEAD) {
        flags[j] = flags[j]! & ~FLAG_BORN_DEAD;
        // A retracted verdict is no revival: the unit never died on the timeline that stands.
        if (!retracted) tally.revivals++;
      }
      state[j] = next;
      tally.transitions[st * 4 + next]!++;
      out.push({
        run_id: ctx.run_id,
        layer: ctx.layer,
        unit: j,
        from: STATE_NAMES[st]!,
        to: STATE_NAMES[next]!,
        born_dead: bornDead,
        step: ctx.step,
        time: ctx.time,
        fires: w,
        samples: unitWin,
        firing_rate: unitWin > 0 ? w / unitWin : 0,
        rate_upper_bound: deadBound(nEff, config.alpha),
        last_fire_step: layer.lastFireStep(j),
      });
    }
  }
}
