/**
 * The rolling window: `window_buckets` buckets of `window_steps / window_buckets`
 * steps each, kept in a ring indexed by bucket id modulo the bucket count.
 *
 * Worked example, window_steps = 1000, window_buckets = 10 (width 100):
 *
 *     step 0..99 → bucket 0, step 100..199 → bucket 1, …, step 1234 → bucket 12 (slot 2)
 *
 *     newest step 1234: head bucket 12; the window holds buckets 3..12,
 *     i.e. steps 300..1234 (between 900 and 1000 steps, bucket granularity).
 *     A snapshot of step 299 (bucket 2) is late and dropped; one of step 300 still counts.
 *     When step 1300 arrives (bucket 13), bucket 12 closes: the layer is classified
 *     on what the window holds, then bucket 3 expires (its fires and samples leave
 *     the window totals) and slot 3 is reused for bucket 13.
 *     A jump to step 2750 (bucket 27) expires every bucket up to 17 at once.
 *
 * Samples are the same for every unit one shard covers, so they are kept per
 * segment (a maximal unit range no shard boundary cuts) and per bucket, not
 * per unit: a layer of 1M units sent by 8 tensor-parallel shards keeps 8 sample
 * rings, not 1M.
 *
 *     shards [0,512) and [512,1024) from every data-parallel rank → segments [0,512), [512,1024)
 *     a rank that sends the whole layer [0,1024) adds its samples to both
 */

export class BucketClock {
  readonly width: number;
  readonly buckets: number;
  constructor(windowSteps: number, buckets: number) {
    this.width = windowSteps / buckets;
    this.buckets = buckets;
  }
  bucketOf(step: number): number {
    return Math.floor(step / this.width);
  }
  slotOf(bucket: number): number {
    const s = bucket % this.buckets;
    return s < 0 ? s + this.buckets : s;
  }
  firstStep(bucket: number): number {
    return bucket * this.width;
  }
}

/** Units [start, end) that every shard either covers wholly or not at all. */
export interface Segment {
  start: number;
  end: number;
  /** Samples per bucket slot. */
  samples: Float64Array;
  /**
   * Samples per sum slot (see LayerState.sumSlotOf) that came with abs_sum/sq_sum: the
   * denominator of the activation means.
   */
  statSamples: Float64Array;
  /** Σ samples over the window, kept incrementally. */
  window: number;
  /** Samples of buckets that have expired since the layer was created. */
  expired: number;
}

/** The segments of one layer, sorted and covering [0, layer_units). */
export class Segments {
  readonly list: Segment[];
  private readonly buckets: number;
  private readonly sumSlots: number;

  constructor(layerUnits: number, buckets: number, sumSlots = buckets) {
    this.buckets = buckets;
    this.sumSlots = sumSlots;
    this.list = [this.make(0, layerUnits)];
  }

  private make(start: number, end: number): Segment {
    return {
      start,
      end,
      samples: new Float64Array(this.buckets),
      statSamples: new Float64Array(this.sumSlots),
      window: 0,
      expired: 0,
    };
  }

  /** Splits the segment containing `at` so that a segment starts there. */
  private boundary(at: number): void {
    const list = this.list;
    for (let i = 0; i < list.length; i++) {
      const s = list[i]!;
      if (s.start === at || at >= s.end) continue;
      if (at < s.start) return;
      const tail = this.make(at, s.end);
      tail.samples.set(s.samples);
      tail.statSamples.set(s.statSamples);
      tail.window = s.window;
      tail.expired = s.expired;
      s.end = at;
      list.splice(i + 1, 0, tail);
      return;
    }
  }

  /** The segments exactly covering [offset, offset + count), splitting as needed. */
  cover(offset: number, count: number): Segment[] {
    this.boundary(offset);
    this.boundary(offset + count);
    return this.list.filter((s) => s.start >= offset && s.end <= offset + count);
  }

  /** The segment holding `unit`. */
  find(unit: number): Segment {
    let lo = 0;
    let hi = this.list.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.list[mid]!.start <= unit) lo = mid;
      else hi = mid - 1;
    }
    return this.list[lo]!;
  }
}
