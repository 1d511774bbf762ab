/**
 * The newest transitions of one layer, kept so a unit's history can be shown
 * without a store: two columnar rings, 21 bytes an entry, that grow with what
 * happens. Deaths and revivals (transitions to or from DEAD, born-dead
 * verdicts included) get up to one entry per unit, so a layer that dies at
 * once keeps every death; the far more frequent changes between ACTIVE and
 * MOSTLY_SILENT (a unit near silent_rate flaps) get up to a quarter of that,
 * so they cannot push the deaths out. A living unit's first verdict (from
 * UNKNOWN) is not logged: every unit has one, and logging them would cost a
 * healthy layer memory for nothing. Both rings hold at least MIN_CAPACITY
 * entries before they overwrite the oldest. At most 26.25 bytes a unit, and
 * nothing for a layer where no unit has changed since its first verdict.
 *
 * Example: a 4-unit layer in which unit 2 dies at step 900 and revives at
 * step 1400: `forUnit(2)` gives the revival first, then the death.
 */
import type { UnitState, UnitTransition } from "./snapshot.js";

const MIN_CAPACITY = 256;
const INITIAL_LENGTH = 64;
const STATES: readonly UnitState[] = ["UNKNOWN", "ACTIVE", "MOSTLY_SILENT", "DEAD"];
const CODE: Record<UnitState, number> = { UNKNOWN: 0, ACTIVE: 1, MOSTLY_SILENT: 2, DEAD: 3 };
const BORN_DEAD = 16;

/** A transition as the log keeps it: the layer's identity is implied. */
export type LoggedTransition = Pick<
  UnitTransition,
  "unit" | "from" | "to" | "born_dead" | "step" | "firing_rate" | "rate_upper_bound"
>;

/**
 * One ring of transitions. Its arrays start small and double as entries
 * arrive, up to the capacity, so a layer whose units rarely change costs
 * almost nothing; only at the capacity do new entries overwrite the oldest.
 */
class Ring {
  readonly capacity: number;
  private unit: Uint32Array;
  private code: Uint8Array;
  private step: Float64Array;
  private rate: Float32Array;
  private bound: Float32Array;
  /** Entries ever written; the newest is at (written - 1) % allocated length. */
  private written = 0;

  constructor(capacity: number) {
    this.capacity = Math.max(MIN_CAPACITY, capacity);
    this.unit = new Uint32Array(0);
    this.code = new Uint8Array(0);
    this.step = new Float64Array(0);
    this.rate = new Float32Array(0);
    this.bound = new Float32Array(0);
  }

  /** Grows the arrays, keeping the entries (not wrapped yet: below capacity the ring has never wrapped). */
  private grow(): void {
    const n = Math.min(this.capacity, Math.max(INITIAL_LENGTH, this.unit.length * 2));
    const copy = <T extends Uint32Array | Uint8Array | Float64Array | Float32Array>(old: T, fresh: T): T => {
      fresh.set(old);
      return fresh;
    };
    this.unit = copy(this.unit, new Uint32Array(n));
    this.code = copy(this.code, new Uint8Array(n));
    this.step = copy(this.step, new Float64Array(n));
    this.rate = copy(this.rate, new Float32Array(n));
    this.bound = copy(this.bound, new Float32Array(n));
  }

  unitAt(i: number): number {
    return this.unit[i]!;
  }

  get size(): number {
    return Math.min(this.written, this.unit.length);
  }

  add(t: UnitTransition): void {
    if (this.written === this.unit.length && this.unit.length < this.capacity) this.grow();
    const i = this.written % this.unit.length;
    this.unit[i] = t.unit;
    this.code[i] = (CODE[t.from] << 2) | CODE[t.to] | (t.born_dead ? BORN_DEAD : 0);
    this.step[i] = t.step;
    this.rate[i] = t.firing_rate;
    this.bound[i] = t.rate_upper_bound;
    this.written++;
  }

  bytes(): number {
    return this.unit.length * 21;
  }

  image(): RingImage {
    return {
      written: this.written,
      unit: this.unit,
      code: this.code,
      step: this.step,
      rate: this.rate,
      bound: this.bound,
    };
  }

  /** Takes over an image's arrays (the caller hands over copies). */
  load(img: RingImage): void {
    const n = img.unit.length;
    const lengths = [img.code.length, img.step.length, img.rate.length, img.bound.length];
    if (
      n > this.capacity ||
      lengths.some((l) => l !== n) ||
      !(img.written >= 0) ||
      (n === 0 && img.written > 0)
    ) {
      throw new RangeError(
        `a transition ring of ${n} entries (${img.written} written) does not fit capacity ${this.capacity}`,
      );
    }
    this.written = img.written;
    this.unit = img.unit;
    this.code = img.code;
    this.step = img.step;
    this.rate = img.rate;
    this.bound = img.bound;
  }

  collect(keep: (i: number) => boolean, limit: number): LoggedTransition[] {
    const out: LoggedTransition[] = [];
    for (let k = 1; k <= this.size && out.length < limit; k++) {
      const i = (this.written - k) % this.unit.length;
      if (keep(i)) out.push(this.entry(i));
    }
    return out;
  }

  private entry(i: number): LoggedTransition {
    const code = this.code[i]!;
    return {
      unit: this.unit[i]!,
      from: STATES[(code >> 2) & 3]!,
      to: STATES[code & 3]!,
      born_dead: (code & BORN_DEAD) !== 0,
      step: this.step[i]!,
      firing_rate: this.rate[i]!,
      rate_upper_bound: this.bound[i]!,
    };
  }
}

/** A ring's entries as arrays, for checkpoints: `written` counts every entry ever added. */
export interface RingImage {
  written: number;
  unit: Uint32Array;
  code: Uint8Array;
  step: Float64Array;
  rate: Float32Array;
  bound: Float32Array;
}

/** A log's two rings, for checkpoints. */
export interface TransitionLogImage {
  deaths: RingImage;
  others: RingImage;
}

export class TransitionLog {
  private readonly deaths: Ring;
  private readonly others: Ring;

  constructor(units: number) {
    this.deaths = new Ring(units);
    this.others = new Ring(units >> 2);
  }

  add(t: UnitTransition): void {
    if (t.to === "DEAD" || t.from === "DEAD") this.deaths.add(t);
    // Every unit's first verdict is a change from UNKNOWN; only a dead one (born dead) is worth a place.
    else if (t.from !== "UNKNOWN") this.others.add(t);
  }

  /** The unit's logged transitions, newest first, at most `limit`. */
  forUnit(unit: number, limit = Number.POSITIVE_INFINITY): LoggedTransition[] {
    return this.merged((ring) => ring.collect((i) => ring.unitAt(i) === unit, limit), limit);
  }

  /** The layer's logged transitions, newest first, at most `limit`. */
  newest(limit: number): LoggedTransition[] {
    return this.merged((ring) => ring.collect(() => true, limit), limit);
  }

  bytes(): number {
    return this.deaths.bytes() + this.others.bytes();
  }

  /** The rings as they are; the arrays are live views. */
  image(): TransitionLogImage {
    return { deaths: this.deaths.image(), others: this.others.image() };
  }

  /** A log of a `units`-unit layer holding what `img` holds (its arrays are taken over, not copied). */
  static fromImage(units: number, img: TransitionLogImage): TransitionLog {
    const log = new TransitionLog(units);
    log.deaths.load(img.deaths);
    log.others.load(img.others);
    return log;
  }

  /** Both rings' picks, newest step first (a death before another change of the same step). */
  private merged(pick: (ring: Ring) => LoggedTransition[], limit: number): LoggedTransition[] {
    const all = [...pick(this.deaths), ...pick(this.others)];
    all.sort((a, b) => b.step - a.step);
    return all.length > limit ? all.slice(0, limit) : all;
  }
}
