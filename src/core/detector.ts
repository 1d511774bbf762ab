/**
 * The detector: routes validated snapshots to their layer, deduplicates
 * redeliveries, recognises checkpoint resumes (a newer incarnation, or for
 * writers without one a repeated step at a later time), late snapshots and
 * layer_units changes, and classifies a layer whenever one of its buckets closes.
 *
 * Worked example, window_steps 1000, window_buckets 10 (buckets of 100 steps):
 *
 *     gradient accumulation: rank 0 sends step 420 micro_batch 0..3, 512 samples each
 *       → four snapshots, 2048 samples of evidence at step 420; a second copy of
 *         (rank 0, offset 0, step 420, micro_batch 2, incarnation 7) is a duplicate
 *     crash and resume: incarnation 7 reached step 980; incarnation 8 arrives at step 700
 *       → every rank's and shard's evidence from step 700 (bucket 7) on is dropped,
 *         the layer continues from step 699; a later incarnation-7 snapshot is late
 *     NaNs: 512 samples, nonfinite[j] = 512 → unit j gains no evidence at all;
 *       nonfinite[j] = 12 → 500 samples of evidence
 *
 * Replaying a recording is a loop: `for (s of snapshots) detector.apply(s, s.time)`,
 * then `detector.flush()` for the verdicts of the last, still open bucket.
 */
import { samplesNeeded } from "./bound.js";
import { checkpointRecord, type LayerCheckpoint, restoreRecord } from "./checkpoint.js";
import { type ClassifyParams, classifyLayer } from "./classify.js";
import { type DetectorConfig, resolveDetectorConfig } from "./config.js";
import { type LayerRecord, newLayerRecord } from "./layer-record.js";
import { LayerState } from "./layer-state.js";
import { bytesPerValue, reduceRaw, SnapshotShapeError, type UnitSums } from "./reduce.js";
import type { ActivationSnapshot, UnitTransition } from "./snapshot.js";
import {
  type LayerSummary,
  summarize,
  type UnitColumns,
  type UnitDetail,
  unitColumns,
  unitDetail,
  unitDetails,
} from "./summary.js";
import { type LoggedTransition, TransitionLog } from "./transition-log.js";

export type ApplyResult = "ok" | "duplicate" | "late";

export interface LayerNotice {
  kind: "resume" | "reset";
  run_id: string;
  layer: string;
  rank: number;
  step: number;
  detail: string;
}

export interface ApplyOutcome {
  result: ApplyResult;
  /**
   * State changes found when this snapshot closed a bucket of its layer (empty
   * otherwise). They are stamped with the layer's newest step and snapshot time
   * before this snapshot: the evidence they rest on.
   */
  transitions: UnitTransition[];
  notices: LayerNotice[];
}

export class Detector {
  readonly config: DetectorConfig;
  /** Samples a dead verdict needs (n_min). */
  readonly samplesNeeded: number;
  private readonly params: ClassifyParams;
  private readonly runs = new Map<string, Map<string, LayerRecord>>();
  private scratch: UnitSums = {
    fires: new Uint32Array(0),
    abs: new Float64Array(0),
    sq: new Float64Array(0),
    nonfinite: new Uint32Array(0),
  };

  constructor(config: Partial<DetectorConfig> = {}) {
    this.config = Object.freeze(resolveDetectorConfig(config));
    this.samplesNeeded = samplesNeeded(this.config.alpha, this.config.dead_rate);
    this.params = { config: this.config, nMin: this.samplesNeeded };
  }

  /**
   * Applies one snapshot, already validated by the codec. `nowMs` is the wall
   * time of arrival: it only feeds last_snapshot_ms and dropIdleRuns. Throws
   * SnapshotShapeError when the unit range or the stats do not fit the layer.
   */
  apply(snapshot: ActivationSnapshot, nowMs: number): ApplyOutcome {
    checkShape(snapshot);
    const transitions: UnitTransition[] = [];
    const notices: LayerNotice[] = [];
    const { run_id, layer, rank, step, time, unit_offset } = snapshot;
    const microBatch = snapshot.micro_batch ?? 0;
    const incarnation = snapshot.incarnation ?? 0;
    const rec = this.record(snapshot, incarnation, notices);
    rec.lastSnapshotMs = nowMs;
    rec.version++;
    if (incarnation < rec.incarnation) {
      // Evidence of a timeline a newer incarnation replaced.
      rec.late++;
      return { result: "late", transitions, notices };
    }
    const state = rec.state;
    const clock = state.clock;
    const bucket = clock.bucketOf(step);
    // Without an incarnation only the time tells a resumed step from a redelivered one.
    const key =
      incarnation === 0
        ? `${rank}/${unit_offset}/${step}/${microBatch}/t${time}`
        : `${rank}/${unit_offset}/${step}/${microBatch}/i${incarnation}`;
    if (state.inWindow(bucket) && bucket <= state.head && state.seen[clock.slotOf(bucket)]!.has(key)) {
      rec.duplicates++;
      return { result: "duplicate", transitions, notices };
    }
    const streamKey = `${rank}/${unit_offset}`;
    const stream = rec.streams.get(streamKey);
    let resumed = false;
    if (incarnation > rec.incarnation) {
      const previous = rec.incarnation;
      rec.incarnation = incarnation;
      if (state.started && step <= state.newestStep) {
        const reached = state.newestStep;
        const cutStart = this.cutBack(rec, step);
        resumed = true;
        notices.push({
          kind: "resume",
          run_id,
          layer,
          rank,
          step,
          detail: `incarnation ${incarnation} (rank ${rank}) resumed at step ${step} after the layer reached step ${reached}; evidence of incarnation ${previous} from step ${cutStart} on discarded for every rank`,
        });
      }
    } else if (
      incarnation === 0 &&
      stream !== undefined &&
      time > stream.time &&
      (step < stream.step || (step === stream.step && microBatch <= stream.micro_batch))
    ) {
      // Same or earlier (step, micro_batch), later time: the rank restarted from a checkpoint.
      const cutStart = this.cutBack(rec, step);
      resumed = true;
      notices.push({
        kind: "resume",
        run_id,
        layer,
        rank,
        step,
        detail: `rank ${rank} resumed at step ${step} after reporting step ${stream.step}; window cut back to step ${cutStart}`,
      });
    }
    if (!resumed && state.started && bucket <= state.head - clock.buckets) {
      rec.late++;
      return { result: "late", transitions, notices };
    }
    if (!state.started || bucket > state.head) {
      if (state.started) {
        // After a resume the head is a bucket that closed before: pass over it again (to
        // retract verdicts the cut unproved) without adding its evidence twice.
        this.classify(
          rec,
          {
            run_id,
            layer,
            step: state.newestStep,
            time: rec.lastTime,
            closing: !resumed,
            headCounted: resumed,
          },
          transitions,
        );
      }
      state.advance(bucket);
    }
    this.addStats(rec, snapshot);
    state.seen[clock.slotOf(bucket)]!.add(key);
    if (stream === undefined) {
      rec.streams.set(streamKey, { rank, unit_offset, step, micro_batch: microBatch, time });
    } else if (step > stream.step || (step === stream.step && microBatch >= stream.micro_batch)) {
      stream.step = step;
      stream.micro_batch = microBatch;
      stream.time = time;
    }
    if (!(time <= rec.lastTime)) rec.lastTime = time;
    rec.unclassified = true;
    return { result: "ok", transitions, notices };
  }

  /**
   * Drops the layer's evidence from the bucket of `step` on, for every rank
   * and shard; returns the first step dropped.
   */
  private cutBack(rec: LayerRecord, step: number): number {
    const clock = rec.state.clock;
    rec.resumes++;
    rec.state.cutBack(step);
    const cutStart = clock.firstStep(clock.bucketOf(step));
    for (const s of rec.streams.values()) {
      if (s.step >= cutStart) {
        s.step = cutStart - 1;
        s.micro_batch = 0;
      }
    }
    return cutStart;
  }

  /**
   * Classifies, once, every layer that has had snapshots since its last
   * classification but none within `idleMs` before `nowMs`: a run that stopped
   * publishing gets the verdicts of its still-open bucket. The pass is
   * provisional like flush(), so if the run publishes again and the bucket
   * closes, nothing is counted twice.
   *
   *     idleMs 60000; a layer's last snapshot applied at t = 1,000,000 ms
   *     flushIdle(1,030,000, 60000) → nothing (30 s idle)
   *     flushIdle(1,060,000, 60000) → the layer's transitions from its open bucket
   *     flushIdle(1,090,000, 60000) → nothing (already classified on that evidence)
   */
  flushIdle(nowMs: number, idleMs: number): UnitTransition[] {
    const out: UnitTransition[] = [];
    for (const layers of this.runs.values()) {
      for (const rec of layers.values()) {
        if (!rec.unclassified || nowMs - rec.lastSnapshotMs < idleMs) continue;
        this.classifyOpen(rec, out);
      }
    }
    return out;
  }

  private classifyOpen(rec: LayerRecord, out: UnitTransition[]): void {
    rec.unclassified = false;
    if (!rec.state.started) return;
    this.classify(
      rec,
      {
        run_id: rec.run_id,
        layer: rec.layer,
        step: rec.state.newestStep,
        time: rec.lastTime,
        closing: false,
      },
      out,
    );
  }

  /**
   * Classifies every layer on what its window holds now, without closing the
   * open bucket (the end of a replay, or a consumer that wants fresh verdicts).
   */
  flush(): UnitTransition[] {
    const out: UnitTransition[] = [];
    for (const layers of this.runs.values()) for (const rec of layers.values()) this.classifyOpen(rec, out);
    return out;
  }

  layerIds(): Array<{ run_id: string; layer: string }> {
    const ids: Array<{ run_id: string; layer: string }> = [];
    for (const [run_id, layers] of this.runs) for (const layer of layers.keys()) ids.push({ run_id, layer });
    return ids;
  }

  summary(run_id: string, layer: string): LayerSummary | undefined {
    const rec = this.runs.get(run_id)?.get(layer);
    return rec === undefined ? undefined : summarize(rec, this.config);
  }

  summaries(): LayerSummary[] {
    const out: LayerSummary[] = [];
    for (const layers of this.runs.values())
      for (const rec of layers.values()) out.push(summarize(rec, this.config));
    return out;
  }

  units(run_id: string, layer: string): UnitDetail[] | undefined {
    const rec = this.runs.get(run_id)?.get(layer);
    return rec === undefined ? undefined : unitDetails(rec, this.config);
  }

  /** One unit's detail; undefined when the layer is not tracked or has no such unit. */
  unit(run_id: string, layer: string, unit: number): UnitDetail | undefined {
    const rec = this.runs.get(run_id)?.get(layer);
    if (rec === undefined || !Number.isInteger(unit) || unit < 0 || unit >= rec.state.units) return undefined;
    return unitDetail(rec, this.config, unit);
  }

  /** Every unit of a layer as typed arrays (the compact form of units()). */
  unitColumns(run_id: string, layer: string): UnitColumns | undefined {
    const rec = this.runs.get(run_id)?.get(layer);
    return rec === undefined ? undefined : unitColumns(rec, this.config);
  }

  /**
   * The layer's transitions this detector produced and still logs, newest
   * first: of one unit, or of the whole layer when unit is undefined.
   */
  transitionsOf(
    run_id: string,
    layer: string,
    unit: number | undefined,
    limit: number,
  ): LoggedTransition[] | undefined {
    const rec = this.runs.get(run_id)?.get(layer);
    if (rec === undefined) return undefined;
    return unit === undefined ? rec.log.newest(limit) : rec.log.forUnit(unit, limit);
  }

  /** Changes whenever anything the layer's views show may have changed; undefined when not tracked. */
  layerVersion(run_id: string, layer: string): number | undefined {
    return this.runs.get(run_id)?.get(layer)?.version;
  }

  /**
   * The complete state of one layer, or undefined when it is not tracked. Its
   * typed arrays are views of the live state: encode or restore it before the
   * next apply, flush or drop.
   */
  checkpoint(run_id: string, layer: string): LayerCheckpoint | undefined {
    const rec = this.runs.get(run_id)?.get(layer);
    return rec === undefined ? undefined : checkpointRecord(rec);
  }

  /**
   * Makes the layer of `cp` hold exactly what it held when `cp` was taken,
   * replacing whatever this detector had for it (the arrays are copied).
   * Throws CheckpointError when `cp` was taken under another window_steps or
   * window_buckets, or does not hold together; the detector is then unchanged.
   */
  restore(cp: LayerCheckpoint): void {
    const rec = restoreRecord(cp, this.config.window_steps, this.config.window_buckets);
    let layers = this.runs.get(cp.run_id);
    if (layers === undefined) {
      layers = new Map();
      this.runs.set(cp.run_id, layers);
    }
    // A version the replaced record never had, so views cached from it are refreshed.
    rec.version = (layers.get(cp.layer)?.version ?? 0) + 1;
    layers.set(cp.layer, rec);
  }

  /** Forgets a layer (its partition was revoked); true when it was tracked. */
  dropLayer(run_id: string, layer: string): boolean {
    const layers = this.runs.get(run_id);
    if (layers === undefined || !layers.delete(layer)) return false;
    if (layers.size === 0) this.runs.delete(run_id);
    return true;
  }

  /** Forgets every run none of whose layers was applied to within idleMs before nowMs. */
  dropIdleRuns(nowMs: number, idleMs: number): string[] {
    const removed: string[] = [];
    for (const [run_id, layers] of this.runs) {
      let newest = Number.NEGATIVE_INFINITY;
      for (const rec of layers.values()) newest = Math.max(newest, rec.lastSnapshotMs);
      if (nowMs - newest > idleMs) removed.push(run_id);
    }
    for (const run_id of removed) this.runs.delete(run_id);
    return removed;
  }

  trackedUnits(): number {
    let n = 0;
    for (const layers of this.runs.values()) for (const rec of layers.values()) n += rec.state.units;
    return n;
  }

  /** Bytes of per-unit typed-array storage held by all layers (window state and transition logs). */
  stateBytes(): number {
    let n = 0;
    for (const layers of this.runs.values())
      for (const rec of layers.values()) n += rec.state.bytes() + rec.log.bytes();
    return n;
  }

  private record(s: ActivationSnapshot, incarnation: number, notices: LayerNotice[]): LayerRecord {
    let layers = this.runs.get(s.run_id);
    if (layers === undefined) {
      layers = new Map();
      this.runs.set(s.run_id, layers);
    }
    let rec = layers.get(s.layer);
    const { window_steps, window_buckets } = this.config;
    if (rec === undefined) {
      rec = newLayerRecord(s.run_id, s.layer, s.layer_units, window_steps, window_buckets);
      layers.set(s.layer, rec);
    } else if (rec.state.units !== s.layer_units && incarnation >= rec.incarnation) {
      // Different units entirely: nothing of the old state applies to the new layer.
      notices.push({
        kind: "reset",
        run_id: s.run_id,
        layer: s.layer,
        rank: s.rank,
        step: s.step,
        detail: `layer_units changed from ${rec.state.units} to ${s.layer_units}; layer state reset`,
      });
      rec.resets++;
      rec.state = new LayerState(s.layer_units, window_steps, window_buckets);
      rec.log = new TransitionLog(s.layer_units);
      rec.streams.clear();
    }
    return rec;
  }

  private classify(rec: LayerRecord, ctx: Parameters<typeof classifyLayer>[2], out: UnitTransition[]): void {
    const tally = { transitions: rec.transitions, deaths: 0, revivals: 0 };
    const first = out.length;
    classifyLayer(rec.state, this.params, ctx, tally, out);
    for (let i = first; i < out.length; i++) rec.log.add(out[i]!);
    rec.version++;
    rec.deaths += tally.deaths;
    rec.revivals += tally.revivals;
  }

  private addStats(rec: LayerRecord, s: ActivationSnapshot): void {
    const stats = s.stats;
    if (stats.kind === "counts") {
      const nonfinite = stats.nonfinite ?? null;
      let bad = nonfinite === null ? 0 : total(nonfinite);
      // Means and variances need both sums; one alone is ignored. A NaN or
      // infinite sum costs the snapshot its sums, never its fires.
      let withSums = stats.abs_sum !== null && stats.sq_sum !== null;
      const badSums = nonfiniteCount(stats.abs_sum) + nonfiniteCount(stats.sq_sum);
      if (badSums > 0) {
        bad += badSums;
        withSums = false;
      }
      rec.nonfinite += bad;
      rec.state.add(s.step, s.samples, s.unit_offset, s.unit_count, {
        fires: stats.fires,
        abs: withSums ? stats.abs_sum : null,
        sq: withSums ? stats.sq_sum : null,
        nonfinite,
      });
      return;
    }
    const n = s.unit_count;
    if (this.scratch.fires.length < n) {
      this.scratch = {
        fires: new Uint32Array(n),
        abs: new Float64Array(n),
        sq: new Float64Array(n),
        nonfinite: new Uint32Array(n),
      };
    }
    const sums: UnitSums = {
      fires: this.scratch.fires.subarray(0, n),
      abs: this.scratch.abs.subarray(0, n),
      sq: this.scratch.sq.subarray(0, n),
      nonfinite: this.scratch.nonfinite!.subarray(0, n),
    };
    sums.fires.fill(0);
    sums.abs.fill(0);
    sums.sq.fill(0);
    sums.nonfinite!.fill(0);
    const bad = reduceRaw(stats.dtype, stats.values, s.samples, n, sums);
    rec.nonfinite += bad;
    rec.state.add(s.step, s.samples, s.unit_offset, n, {
      fires: sums.fires,
      abs: sums.abs,
      sq: sums.sq,
      nonfinite: bad > 0 ? sums.nonfinite! : null,
    });
  }
}

function total(counts: Uint32Array): number {
  let n = 0;
  for (let i = 0; i < counts.length; i++) n += counts[i]!;
  return n;
}

function nonfiniteCount(sums: Float32Array | null): number {
  if (sums === null) return 0;
  let n = 0;
  // v − v is NaN exactly for NaN and ±Inf.
  for (let i = 0; i < sums.length; i++) if (sums[i]! - sums[i]! !== 0) n++;
  return n;
}

/** Checks what the detector relies on before it changes any state, so a bad snapshot leaves no trace. */
function checkShape(s: ActivationSnapshot): void {
  const where = `snapshot ${s.run_id}/${s.layer} rank ${s.rank} step ${s.step}`;
  const ok =
    Number.isSafeInteger(s.step) &&
    Number.isSafeInteger(s.unit_offset) &&
    Number.isSafeInteger(s.unit_count) &&
    Number.isSafeInteger(s.layer_units) &&
    Number.isSafeInteger(s.samples) &&
    s.unit_offset >= 0 &&
    s.unit_count >= 0 &&
    s.samples >= 0 &&
    s.unit_offset + s.unit_count <= s.layer_units;
  if (!ok) {
    throw new SnapshotShapeError(
      `${where}: unit range [${s.unit_offset}, ${s.unit_offset + s.unit_count}) of ${s.layer_units} units with ${s.samples} samples is not a valid shape`,
    );
  }
  const stats = s.stats;
  if (stats.kind === "raw") {
    const need = s.samples * s.unit_count * bytesPerValue(stats.dtype);
    if (stats.values.byteLength !== need) {
      throw new SnapshotShapeError(
        `${where}: raw activations have ${stats.values.byteLength} bytes, ${s.samples} samples × ${s.unit_count} units × ${stats.dtype} need ${need}`,
      );
    }
    return;
  }
  for (const [name, arr] of [
    ["fires", stats.fires],
    ["abs_sum", stats.abs_sum],
    ["sq_sum", stats.sq_sum],
    ["nonfinite", stats.nonfinite ?? null],
  ] as const) {
    if (arr !== null && arr.length !== s.unit_count) {
      throw new SnapshotShapeError(
        `${where}: ${name} has ${arr.length} entries, unit_count is ${s.unit_count}`,
      );
    }
  }
}
