/**
 * The per-unit state of one (run, layer), struct-of-arrays: one typed array
 * per field, indexed by global unit. At default settings without abs_sum a
 * unit costs 10 × 4 (bucket fires) + 4 (window fires) + 4 (last fire step)
 * + 4 (expired silence) + 2 × 4 (revival evidence) + 2 (state, flags) = 62 bytes.
 * With abs_sum and sq_sum, 5 × 2 × 4 more (float32 sums per pair of buckets): 102 bytes.
 *
 * Fire counts are 32-bit: a unit's fires in one bucket, and in the window, must
 * stay below 2^32 (4.3 billion samples per window).
 */
import { BucketClock, type Segment, Segments } from "./window.js";

export const UNKNOWN = 0;
export const ACTIVE = 1;
export const MOSTLY_SILENT = 2;
export const DEAD = 3;
export const STATE_NAMES = ["UNKNOWN", "ACTIVE", "MOSTLY_SILENT", "DEAD"] as const;

/** Set when a resume cut removed the only record of a unit's fires (lastFire is the hot-path record). */
export const FLAG_EVER_FIRED = 1;
export const FLAG_BORN_DEAD = 2;
export const FLAG_CONSTANT = 4;
/** A DEAD verdict given before a resume cut: it stands only if the evidence left still proves it. */
export const FLAG_RECHECK = 8;

/** lastFire value of a unit whose last fire is unknown or never happened. */
export const NEVER = -2147483648;
const U32_MAX = 4294967295;

/** Per-unit activation sums of one snapshot (abs/sq and nonfinite optional). */
export interface UnitStats {
  fires: Uint32Array;
  abs: Float32Array | Float64Array | null;
  sq: Float32Array | Float64Array | null;
  /** Samples on which each unit's activation was NaN or ±Inf: no evidence either way. */
  nonfinite?: Uint32Array | null;
}

export class LayerState {
  readonly units: number;
  readonly clock: BucketClock;
  readonly segments: Segments;
  /** Fires per bucket slot, slot-major: fires[slot] is a view of length `units`. */
  readonly fires: Uint32Array[];
  readonly windowFires: Uint32Array;
  /** Step of the newest fire, relative to `origin`; NEVER when unknown. */
  readonly lastFire: Int32Array;
  /** Samples since the last fire that lie in buckets already expired (saturating). */
  readonly silentExpired: Uint32Array;
  /** Fires and samples of buckets closed since the unit's dead verdict (saturating). */
  readonly deathFires: Uint32Array;
  readonly deathSamples: Uint32Array;
  readonly state: Uint8Array;
  readonly flags: Uint8Array;
  /**
   * Σ|h| and Σh² per sum slot, allocated when the first snapshot carrying them
   * arrives. Sums are kept per group of SUM_GROUP buckets, in float32, so they
   * cost 8 bytes a unit per two buckets: the means and variances they give are
   * over the window at that granularity (9 or 10 of its 10 buckets).
   */
  absSum: Float32Array[] | null = null;
  sqSum: Float32Array[] | null = null;
  /** Buckets per sum slot, and how many slots the ring has. */
  readonly sumGroup: number;
  readonly sumSlots: number;
  /** The bucket group each sum slot holds (NaN: none). */
  private readonly sumGroupIds: Float64Array;
  /**
   * Non-finite samples per unit and bucket slot, allocated for a slot only
   * when a snapshot in that bucket reports one, and released when the bucket
   * leaves the window: a layer that never sees a NaN pays nothing. A unit's
   * evidence in a bucket is the segment's samples minus this.
   */
  readonly nonfinite: Array<Uint32Array | null>;
  /** Newest bucket id with data; NaN before the first snapshot. */
  head = Number.NaN;
  /** Newest step applied (after a resume, the step before the cut). */
  newestStep = Number.NaN;
  /** Steps are stored relative to this, so they fit an Int32Array. */
  origin = Number.NaN;
  /** Newest relative step any lastFire may hold. */
  private newestRel = NEVER;
  /** Keys of the snapshots applied to each bucket slot, so a redelivery is recognised. */
  readonly seen: Array<Set<string>>;
  /**
   * Units given a DEAD verdict by the pass whose head was each bucket slot's
   * bucket: the evidence of such a verdict ends with that bucket, so a resume
   * cut at or before it unproves the verdict.
   */
  readonly verdicts: number[][];

  constructor(units: number, windowSteps: number, buckets: number) {
    this.units = units;
    this.clock = new BucketClock(windowSteps, buckets);
    this.sumGroup = buckets >= 2 ? 2 : 1;
    this.sumSlots = Math.ceil(buckets / this.sumGroup);
    this.sumGroupIds = new Float64Array(this.sumSlots).fill(Number.NaN);
    this.segments = new Segments(units, buckets, this.sumSlots);
    const all = new Uint32Array(units * buckets);
    this.fires = Array.from({ length: buckets }, (_, s) => all.subarray(s * units, (s + 1) * units));
    this.windowFires = new Uint32Array(units);
    this.lastFire = new Int32Array(units).fill(NEVER);
    this.silentExpired = new Uint32Array(units);
    this.deathFires = new Uint32Array(units);
    this.deathSamples = new Uint32Array(units);
    this.state = new Uint8Array(units);
    this.flags = new Uint8Array(units);
    this.seen = Array.from({ length: buckets }, () => new Set<string>());
    this.nonfinite = new Array<Uint32Array | null>(buckets).fill(null);
    this.verdicts = Array.from({ length: buckets }, () => []);
  }

  private sumSlotOf(bucket: number): number {
    const s = Math.floor(bucket / this.sumGroup) % this.sumSlots;
    return s < 0 ? s + this.sumSlots : s;
  }

  /** Makes sum slot `k` hold bucket group `group`, dropping the older group it held. */
  private claimSumSlot(k: number, group: number): void {
    if (this.sumGroupIds[k] === group) return;
    this.dropSumSlot(k);
    this.sumGroupIds[k] = group;
  }

  private dropSumSlot(k: number): void {
    if (this.absSum !== null && this.sqSum !== null) {
      this.absSum[k]!.fill(0);
      this.sqSum[k]!.fill(0);
    }
    for (const seg of this.segments.list) seg.statSamples[k] = 0;
    this.sumGroupIds[k] = Number.NaN;
  }

  /**
   * The sum slots whose bucket group lies in the window, i.e. whose sums and
   * statSamples the means read. A group partly expired still counts whole; one
   * whose slot a newer group claimed is gone.
   */
  sumSlotsInWindow(): number[] {
    if (!this.started) return [];
    const first = Math.floor((this.head - this.clock.buckets + 1) / this.sumGroup);
    const last = Math.floor(this.head / this.sumGroup);
    const out: number[] = [];
    for (let k = 0; k < this.sumSlots; k++) {
      const g = this.sumGroupIds[k]!;
      if (g >= first && g <= last) out.push(k);
    }
    return out;
  }

  /** Whether some bucket in the window holds non-finite samples. */
  get hasNonfinite(): boolean {
    return this.nonfinite.some((a) => a !== null);
  }

  /** Unit j's non-finite samples over the window. */
  nonfiniteInWindow(j: number): number {
    let n = 0;
    for (const a of this.nonfinite) if (a !== null) n += a[j]!;
    return n;
  }

  get started(): boolean {
    return !Number.isNaN(this.head);
  }

  /** Whether a bucket is still inside the window ending at the head bucket. */
  inWindow(bucket: number): boolean {
    return this.started && bucket > this.head - this.clock.buckets;
  }

  /**
   * Adds one snapshot's per-unit statistics to the bucket of `step`. The
   * caller has made that bucket part of the window (advance) beforehand.
   */
  add(step: number, samples: number, offset: number, count: number, stats: UnitStats): void {
    if (Number.isNaN(this.origin)) this.origin = step;
    const bucket = this.clock.bucketOf(step);
    const slot = this.clock.slotOf(bucket);
    const sumSlot = this.sumSlotOf(bucket);
    const group = Math.floor(bucket / this.sumGroup);
    // A straggler of a group whose slot a newer group holds keeps its fires but not its sums.
    const hasStats = stats.abs !== null && stats.sq !== null && !(this.sumGroupIds[sumSlot]! > group);
    if (hasStats) {
      if (this.absSum === null || this.sqSum === null) {
        this.absSum = Array.from({ length: this.sumSlots }, () => new Float32Array(this.units));
        this.sqSum = Array.from({ length: this.sumSlots }, () => new Float32Array(this.units));
      }
      this.claimSumSlot(sumSlot, group);
    }
    for (const seg of this.segments.cover(offset, count)) {
      seg.samples[slot] = seg.samples[slot]! + samples;
      seg.window += samples;
      if (hasStats) seg.statSamples[sumSlot] = seg.statSamples[sumSlot]! + samples;
    }
    const rel = Math.max(-2147483647, Math.min(2147483647, step - this.origin));
    const fb = this.fires[slot]!;
    const win = this.windowFires;
    const last = this.lastFire;
    const f = stats.fires;
    if (rel >= this.newestRel) {
      // In-order snapshot (the common case): its step is the newest, so every
      // firing unit's last fire is this step; a select, not a branch.
      this.newestRel = rel;
      for (let i = 0, j = offset; i < count; i++, j++) {
        const v = f[i]!;
        fb[j] = fb[j]! + v;
        win[j] = win[j]! + v;
        last[j] = v === 0 ? last[j]! : rel;
      }
    } else {
      for (let i = 0, j = offset; i < count; i++, j++) {
        const v = f[i]!;
        fb[j] = fb[j]! + v;
        win[j] = win[j]! + v;
        if (v !== 0 && rel > last[j]!) last[j] = rel;
      }
    }
    const nf = stats.nonfinite;
    if (nf) {
      let bad = this.nonfinite[slot] ?? null;
      for (let i = 0, j = offset; i < count; i++, j++) {
        const v = nf[i]!;
        if (v === 0) continue;
        if (bad === null) {
          bad = new Uint32Array(this.units);
          this.nonfinite[slot] = bad;
        }
        bad[j] = bad[j]! + v;
      }
    }
    if (hasStats) {
      const a = this.absSum![sumSlot]!;
      const q = this.sqSum![sumSlot]!;
      const sa = stats.abs!;
      const sq = stats.sq!;
      for (let i = 0, j = offset; i < count; i++, j++) {
        a[j] = a[j]! + sa[i]!;
        q[j] = q[j]! + sq[i]!;
      }
    }
    if (!(step <= this.newestStep)) this.newestStep = step;
  }

  /** Makes `bucket` the head, expiring every bucket that falls out of the window. */
  advance(bucket: number): void {
    if (!this.started) {
      this.head = bucket;
      return;
    }
    const B = this.clock.buckets;
    const firstExpiring = this.head - B + 1;
    const lastExpiring = Math.min(bucket - B, this.head);
    for (let b = firstExpiring; b <= lastExpiring; b++) this.expire(this.clock.slotOf(b));
    this.head = bucket;
  }

  private expire(slot: number): void {
    const fb = this.fires[slot]!;
    const win = this.windowFires;
    const silent = this.silentExpired;
    const bad = this.nonfinite[slot] ?? null;
    for (const seg of this.segments.list) {
      const s = seg.samples[slot]!;
      for (let j = seg.start; j < seg.end; j++) {
        const v = fb[j]!;
        if (v !== 0) {
          win[j] = win[j]! - v;
          silent[j] = 0;
        } else if (s !== 0) {
          const t = silent[j]! + s - (bad === null ? 0 : bad[j]!);
          silent[j] = Math.min(t, U32_MAX);
        }
      }
      seg.window -= s;
      seg.expired += s;
      seg.samples[slot] = 0;
    }
    fb.fill(0);
    this.nonfinite[slot] = null;
    this.verdicts[slot] = [];
    this.seen[slot]!.clear();
  }

  /**
   * A rank resumed from a checkpoint at `step`: drop every window bucket from
   * the one holding `step` on (bucket granularity, so a few earlier steps of
   * that bucket go too) and make the bucket before it the head. DEAD
   * verdicts given on evidence that reached into the dropped buckets (a death
   * on the replaced timeline) are marked for a recheck: the next pass keeps
   * them only if the evidence left still proves them. A cut before the window
   * start marks every DEAD unit: where their verdicts came from is no longer known.
   */
  cutBack(step: number): void {
    if (!this.started) return;
    const B = this.clock.buckets;
    const cut = this.clock.bucketOf(step);
    const from = Math.max(cut, this.head - B + 1);
    if (cut < from) {
      for (let j = 0; j < this.units; j++)
        if (this.state[j] === DEAD) this.flags[j] = this.flags[j]! | FLAG_RECHECK;
    } else {
      for (let b = from; b <= this.head; b++) {
        for (const j of this.verdicts[this.clock.slotOf(b)]!) {
          if (this.state[j] === DEAD) this.flags[j] = this.flags[j]! | FLAG_RECHECK;
        }
      }
    }
    for (let b = from; b <= this.head; b++) {
      this.clear(this.clock.slotOf(b));
      // A group's sums cannot be split: the part of it before the cut goes too.
      const k = this.sumSlotOf(b);
      if (this.sumGroupIds[k] === Math.floor(b / this.sumGroup)) this.dropSumSlot(k);
    }
    const cutStartRel = this.clock.firstStep(cut) - this.origin;
    const last = this.lastFire;
    for (let j = 0; j < this.units; j++) {
      // The exact earlier fire step is gone with the bucket; keep what the remaining buckets prove.
      if (last[j]! >= cutStartRel) {
        this.flags[j] = this.flags[j]! | FLAG_EVER_FIRED;
        last[j] = this.newestFireBefore(j, cut);
      }
    }
    this.newestRel = Math.min(this.newestRel, cutStartRel - 1);
    if (cut - 1 < this.head) this.head = cut - 1;
    const before = this.clock.firstStep(cut) - 1;
    if (this.newestStep > before) this.newestStep = before;
  }

  /** Last step of the newest remaining window bucket before `cut` in which unit j fired, else NEVER. */
  private newestFireBefore(j: number, cut: number): number {
    const B = this.clock.buckets;
    for (let b = Math.min(cut - 1, this.head); b > this.head - B; b--) {
      if (this.fires[this.clock.slotOf(b)]![j]! !== 0) return this.clock.firstStep(b + 1) - 1 - this.origin;
    }
    return NEVER;
  }

  private clear(slot: number): void {
    const fb = this.fires[slot]!;
    const win = this.windowFires;
    for (let j = 0; j < this.units; j++) win[j] = win[j]! - fb[j]!;
    fb.fill(0);
    for (const seg of this.segments.list) {
      seg.window -= seg.samples[slot]!;
      seg.samples[slot] = 0;
    }
    this.nonfinite[slot] = null;
    this.verdicts[slot] = [];
    this.seen[slot]!.clear();
  }

  /** Slots ordered newest first: ageSlots[a] is the slot of bucket head − a. */
  ageSlots(): number[] {
    return Array.from({ length: this.clock.buckets }, (_, a) => this.clock.slotOf(this.head - a));
  }

  /** Whether unit j was ever seen firing in this layer. */
  everFired(j: number): boolean {
    return this.lastFire[j] !== NEVER || (this.flags[j]! & FLAG_EVER_FIRED) !== 0;
  }

  /** Step of unit j's newest known fire, or null. */
  lastFireStep(j: number): number | null {
    const v = this.lastFire[j]!;
    return v === NEVER ? null : this.origin + v;
  }

  /**
   * Unit j's trailing silence in samples, at bucket granularity: the samples
   * of every bucket after the newest bucket in which it fired, including
   * expired ones. Non-finite samples are not silence.
   */
  silence(j: number, seg: Segment): number {
    if (this.windowFires[j] === 0) {
      return this.silentExpired[j]! + seg.window - this.nonfiniteInWindow(j);
    }
    let n = 0;
    for (let a = 0; a < this.clock.buckets; a++) {
      const slot = this.clock.slotOf(this.head - a);
      if (this.fires[slot]![j]! !== 0) return n;
      n += seg.samples[slot]! - (this.nonfinite[slot]?.[j] ?? 0);
    }
    return n;
  }

  /** Unit j's evidence in the window: its segment's samples less its non-finite ones. */
  evidence(j: number, seg: Segment): number {
    return seg.window - this.nonfiniteInWindow(j);
  }

  /**
   * Everything this layer holds, for a checkpoint. The typed arrays are views
   * of the live state, not copies: encode the image (or restore it) before
   * the layer changes again.
   */
  image(): LayerStateImage {
    return {
      units: this.units,
      windowSteps: this.clock.width * this.clock.buckets,
      buckets: this.clock.buckets,
      head: this.head,
      newestStep: this.newestStep,
      origin: this.origin,
      newestRel: this.newestRel,
      sumGroupIds: Array.from(this.sumGroupIds),
      segments: this.segments.list.map((s) => ({
        start: s.start,
        end: s.end,
        samples: Array.from(s.samples),
        statSamples: Array.from(s.statSamples),
        window: s.window,
        expired: s.expired,
      })),
      seen: this.seen.map((keys) => [...keys]),
      verdicts: this.verdicts.map((units) => Uint32Array.from(units)),
      fires: this.fires,
      windowFires: this.windowFires,
      lastFire: this.lastFire,
      silentExpired: this.silentExpired,
      deathFires: this.deathFires,
      deathSamples: this.deathSamples,
      state: this.state,
      flags: this.flags,
      absSum: this.absSum,
      sqSum: this.sqSum,
      nonfinite: [...this.nonfinite],
    };
  }

  /**
   * A layer holding exactly what `image` describes (copied, so the image's
   * arrays stay the caller's). Throws CheckpointError when the image does not
   * fit its own shape: a unit count, bucket count or array length that disagree.
   */
  static fromImage(img: LayerStateImage): LayerState {
    checkImage(img);
    const layer = new LayerState(img.units, img.windowSteps, img.buckets);
    layer.head = img.head;
    layer.newestStep = img.newestStep;
    layer.origin = img.origin;
    layer.newestRel = img.newestRel;
    layer.sumGroupIds.set(img.sumGroupIds);
    layer.segments.list.splice(
      0,
      layer.segments.list.length,
      ...img.segments.map((s) => ({
        start: s.start,
        end: s.end,
        samples: Float64Array.from(s.samples),
        statSamples: Float64Array.from(s.statSamples),
        window: s.window,
        expired: s.expired,
      })),
    );
    for (let b = 0; b < img.buckets; b++) {
      for (const key of img.seen[b]!) layer.seen[b]!.add(key);
      layer.verdicts[b] = Array.from(img.verdicts[b]!);
      layer.fires[b]!.set(img.fires[b]!);
      const bad = img.nonfinite[b];
      layer.nonfinite[b] = bad ? bad.slice() : null;
    }
    layer.windowFires.set(img.windowFires);
    layer.lastFire.set(img.lastFire);
    layer.silentExpired.set(img.silentExpired);
    layer.deathFires.set(img.deathFires);
    layer.deathSamples.set(img.deathSamples);
    layer.state.set(img.state);
    layer.flags.set(img.flags);
    if (img.absSum !== null && img.sqSum !== null) {
      layer.absSum = img.absSum.map((a) => a.slice());
      layer.sqSum = img.sqSum.map((a) => a.slice());
    }
    return layer;
  }

  /** Bytes of typed-array storage this layer holds. */
  bytes(): number {
    const B = this.clock.buckets;
    let n = this.units * (B * 4 + 4 * 5 + 2);
    if (this.absSum) n += this.units * this.sumSlots * 8;
    for (const a of this.nonfinite) if (a !== null) n += a.byteLength;
    return n;
  }
}

/** A segment of a LayerStateImage: Segment with plain arrays. */
export interface SegmentImage {
  start: number;
  end: number;
  samples: number[];
  statSamples: number[];
  window: number;
  expired: number;
}

/**
 * The complete state of one layer as plain data: what LayerState.image gives
 * and LayerState.fromImage takes. Per-unit data stays in typed arrays (one per
 * bucket slot where the state keeps one per slot); the rest is small: a few
 * numbers per segment, per bucket and per snapshot key.
 */
export interface LayerStateImage {
  units: number;
  windowSteps: number;
  buckets: number;
  /** NaN before the first snapshot, like head, newestStep and origin. */
  head: number;
  newestStep: number;
  origin: number;
  newestRel: number;
  /** Bucket group per sum slot, NaN where none. */
  sumGroupIds: number[];
  segments: SegmentImage[];
  /** Redelivery keys per bucket slot. */
  seen: string[][];
  /** Units given a DEAD verdict by the pass of each bucket slot. */
  verdicts: Uint32Array[];
  /** Fires per bucket slot (each of length units). */
  fires: Uint32Array[];
  windowFires: Uint32Array;
  lastFire: Int32Array;
  silentExpired: Uint32Array;
  deathFires: Uint32Array;
  deathSamples: Uint32Array;
  state: Uint8Array;
  flags: Uint8Array;
  /** Per sum slot, or null when no snapshot carried sums. */
  absSum: Float32Array[] | null;
  sqSum: Float32Array[] | null;
  /** Per bucket slot, null where the bucket saw no non-finite sample. */
  nonfinite: Array<Uint32Array | null>;
}

export class CheckpointError extends Error {
  override readonly name = "CheckpointError";
}

/** The shape checks fromImage relies on, so a bad image fails whole instead of restoring half a layer. */
function checkImage(img: LayerStateImage): void {
  const { units: N, buckets: B } = img;
  const problems: string[] = [];
  if (!(Number.isSafeInteger(N) && N >= 1)) problems.push(`units ${N}`);
  if (!(Number.isSafeInteger(B) && B >= 1)) problems.push(`buckets ${B}`);
  if (problems.length > 0) throw new CheckpointError(`layer image: bad ${problems.join(", ")}`);
  const sumSlots = Math.ceil(B / (B >= 2 ? 2 : 1));
  const perSlot = (name: string, list: ArrayLike<unknown> | null, slots: number) => {
    if (list !== null && list.length !== slots)
      problems.push(`${name} has ${list.length} slots, not ${slots}`);
  };
  const perUnit = (name: string, a: ArrayLike<number> | null) => {
    if (a !== null && a.length !== N) problems.push(`${name} has ${a.length} units, not ${N}`);
  };
  perSlot("fires", img.fires, B);
  perSlot("seen", img.seen, B);
  perSlot("verdicts", img.verdicts, B);
  perSlot("nonfinite", img.nonfinite, B);
  perSlot("sumGroupIds", img.sumGroupIds, sumSlots);
  perSlot("absSum", img.absSum, sumSlots);
  perSlot("sqSum", img.sqSum, sumSlots);
  if ((img.absSum === null) !== (img.sqSum === null)) problems.push("absSum and sqSum must come together");
  for (const [i, a] of img.fires.entries()) perUnit(`fires[${i}]`, a);
  for (const [i, a] of img.nonfinite.entries()) perUnit(`nonfinite[${i}]`, a);
  for (const [i, a] of (img.absSum ?? []).entries()) perUnit(`absSum[${i}]`, a);
  for (const [i, a] of (img.sqSum ?? []).entries()) perUnit(`sqSum[${i}]`, a);
  perUnit("windowFires", img.windowFires);
  perUnit("lastFire", img.lastFire);
  perUnit("silentExpired", img.silentExpired);
  perUnit("deathFires", img.deathFires);
  perUnit("deathSamples", img.deathSamples);
  perUnit("state", img.state);
  perUnit("flags", img.flags);
  for (const [i, v] of img.verdicts.entries()) {
    if (v.some((j) => j >= N)) problems.push(`verdicts[${i}] names a unit outside the layer`);
  }
  for (let j = 0; j < img.state.length; j++) {
    if (img.state[j]! > DEAD) {
      problems.push(`unit ${j} has state ${img.state[j]}, which is no state`);
      break;
    }
  }
  let at = 0;
  for (const s of img.segments) {
    if (s.start !== at || !(s.end > s.start) || s.samples.length !== B || s.statSamples.length !== sumSlots) {
      problems.push(`segment [${s.start}, ${s.end}) does not continue the cover at ${at} with ${B} buckets`);
      break;
    }
    at = s.end;
  }
  if (at !== N) problems.push(`segments cover ${at} of ${N} units`);
  if (problems.length > 0) throw new CheckpointError(`layer image: ${problems.join("; ")}`);
}
