/**
 * Checkpoint cost: `npx tsx bench/state.ts [--quick]`. Builds layers of 1M
 * units whose whole window is full (12 bucket-closing snapshots from two
 * tensor-parallel shards, with abs/sq sums and a few NaN counts, so every
 * array a checkpoint holds is populated), then times per layer:
 * Detector.checkpoint + encodeCheckpoint, decodeCheckpoint, Detector.restore.
 * Bytes are the record values as written; zstd bytes are those values
 * compressed at level 3 (what a zstd producer would ship; Kafka compresses
 * batches, so this is an estimate). Prints one JSON document.
 *
 * Configurations: 1 layer × 1M units without sums, 1 × 1M with sums,
 * 10 layers × 1M with sums (10M tracked units).
 *
 * Then the checkpoint overhead on throughput: the apply loop of 4 layers × 1M
 * units with sums (two shards a layer, one bucket closed a step) runs for
 * BENCH_STATE_OVERHEAD_S seconds of its own (default 70, so the default cadence
 * writes once) without checkpoints, with the ChangelogStore at the default
 * checkpoint_interval_ms (60000) and at 1000 ms, on the same snapshots; the
 * three take turns in slices of a second, each store's clock counting only
 * its own loop's time, and each slice ends with a full garbage collection
 * counted in it. The store encodes into a writer that only counts
 * bytes: this is the consumer's in-process cost, not the broker's. Reported:
 * snapshots applied per second, checkpoints written, and the throughput ratio
 * to the loop without checkpoints of the same run.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { constants, zstdCompressSync } from "node:zlib";
import { pino } from "pino";
import { decodeCheckpoint, encodeCheckpoint } from "../src/codec/index.js";
import { type ActivationSnapshot, Detector } from "../src/core/index.js";
import { ChangelogStore } from "../src/service/changelog-store.js";
import { build, layerName, lcg, STEP, snapshot, UNITS } from "./lib/state-layers.js";
import { figure, load1, machine } from "./lib/stats.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const quick = process.argv.includes("--quick");
const RUNS = quick ? 1 : 3;

function seconds(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function measure(layers: number, sums: boolean) {
  const d = build(layers, sums);
  const encode: number[] = [];
  const decode: number[] = [];
  const restore: number[] = [];
  let bytes = 0;
  let zstd = 0;
  let records = 0;
  let largest = 0;
  for (let run = 0; run < RUNS; run++) {
    const fresh = new Detector();
    let enc = 0;
    let dec = 0;
    let res = 0;
    bytes = 0;
    records = 0;
    for (const { run_id, layer } of d.layerIds()) {
      let out: ReturnType<typeof encodeCheckpoint> = [];
      enc += seconds(() => {
        out = encodeCheckpoint(d.checkpoint(run_id, layer)!, [{ partition: 0, offset: "123456" }]);
      });
      let decoded: ReturnType<typeof decodeCheckpoint> | undefined;
      dec += seconds(() => {
        decoded = decodeCheckpoint(out);
      });
      res += seconds(() => fresh.restore(decoded!.checkpoint));
      for (const r of out) {
        bytes += r.value!.byteLength;
        largest = Math.max(largest, Buffer.byteLength(r.key) + r.value!.byteLength);
        if (run === 0) {
          zstd += zstdCompressSync(r.value!, {
            params: { [constants.ZSTD_c_compressionLevel]: 3 },
          }).byteLength;
        }
      }
      records += out.length;
    }
    encode.push(enc);
    decode.push(dec);
    restore.push(res);
    if (JSON.stringify(fresh.summaries()) !== JSON.stringify(d.summaries())) {
      throw new Error("the restored detector's summaries differ from the original's");
    }
  }
  const units = layers * UNITS;
  return {
    layers,
    units,
    sums,
    state_bytes: d.stateBytes(),
    records,
    largest_record_bytes: largest,
    bytes,
    bytes_per_unit: bytes / units,
    zstd_bytes: zstd,
    zstd_bytes_per_unit: zstd / units,
    encode_s: figure(encode),
    decode_s: figure(decode),
    restore_s: figure(restore),
  };
}

const OVERHEAD_LAYERS = 4;
const OVERHEAD_S = Number(process.env.BENCH_STATE_OVERHEAD_S ?? (quick ? 20 : 70));
/** The cadences take turns in slices this long, so a change in the machine's load hits all three alike. */
const SLICE_S = 1;
/** A probe every 50 steps, as the demo trainer publishes: a bucket closes every other step. */
const PROBE_STEPS = STEP / 2;
const CADENCES = [
  { label: "none", intervalMs: Number.POSITIVE_INFINITY },
  { label: "default", intervalMs: 60_000 },
  { label: "aggressive", intervalMs: 1_000 },
] as const;

/** One step's snapshots of every layer (both shards); the loop re-stamps their step. */
function stepSnapshots(): ActivationSnapshot[] {
  const rand = lcg(11);
  const half = UNITS / 2;
  const out: ActivationSnapshot[] = [];
  for (let l = 0; l < OVERHEAD_LAYERS; l++) {
    for (const offset of [0, half]) out.push(snapshot(layerName(l), 0, offset, half, true, rand, -1));
  }
  return out;
}

/**
 * One cadence's consumer: its own detector (a full window of 4 layers) and store, whose clock is
 * the time this cadence has spent in its own loop, so the interval counts its work and not the
 * other cadences' turns.
 */
function cadenceLoop(intervalMs: number) {
  const d = build(OVERHEAD_LAYERS, true);
  const ids = d.layerIds();
  let ownNs = 0n;
  let sliceStart: bigint | undefined;
  const now = () =>
    Number(ownNs + (sliceStart === undefined ? 0n : process.hrtime.bigint() - sliceStart)) / 1e6;
  const totals = { snapshots: 0, seconds: 0, cpu_s: 0, checkpoints: 0, checkpoint_bytes: 0, checkpoint_s: 0 };
  const store = new ChangelogStore(
    d,
    { read: async () => new Map() },
    {
      write: async (_partition, records) => {
        totals.checkpoints++;
        for (const r of records)
          totals.checkpoint_bytes += Buffer.byteLength(r.key) + (r.value?.byteLength ?? 0);
      },
    },
    { intervalMs, log: pino({ level: "silent" }), now },
  );
  // The partition's first checkpoint is before the loop, as a restored or long-running consumer's would be.
  if (Number.isFinite(intervalMs)) void store.checkpoint(0, 0n, ids, true);
  totals.checkpoints = 0;
  totals.checkpoint_bytes = 0;
  let step = 12 * STEP;
  return {
    totals,
    slice(template: readonly ActivationSnapshot[]) {
      sliceStart = process.hrtime.bigint();
      const cpu0 = process.cpuUsage();
      const end = sliceStart + BigInt(Math.round(SLICE_S * 1e9));
      while (process.hrtime.bigint() < end) {
        for (const s of template) {
          const time = 1_700_000_000_000 + step;
          d.apply({ ...s, step, time }, time);
          totals.snapshots++;
        }
        // One batch a step: the stream task asks the store after each written batch.
        if (Number.isFinite(intervalMs)) {
          const c0 = process.hrtime.bigint();
          void store.checkpoint(0, BigInt(totals.snapshots), ids);
          totals.checkpoint_s += Number(process.hrtime.bigint() - c0) / 1e9;
        }
        step += PROBE_STEPS;
      }
      // Each cadence collects its own garbage (a checkpoint allocates its size), inside its own time,
      // so it does not land in the next cadence's slice.
      gc();
      const took = process.hrtime.bigint() - sliceStart;
      ownNs += took;
      sliceStart = undefined;
      totals.seconds += Number(took) / 1e9;
      const cpu = process.cpuUsage(cpu0);
      totals.cpu_s += (cpu.user + cpu.system) / 1e6;
    },
  };
}

function overhead() {
  const template = stepSnapshots();
  const loops = CADENCES.map(({ label, intervalMs }) => ({
    label,
    intervalMs,
    loop: cadenceLoop(intervalMs),
  }));
  for (let t = 0; t < OVERHEAD_S; t += SLICE_S) for (const { loop } of loops) loop.slice(template);
  const rate = (i: number) => loops[i]!.loop.totals.snapshots / loops[i]!.loop.totals.seconds;
  return {
    layers: OVERHEAD_LAYERS,
    units: OVERHEAD_LAYERS * UNITS,
    sums: true,
    steps_between_snapshots: PROBE_STEPS,
    seconds_each: OVERHEAD_S,
    slice_s: SLICE_S,
    cadences: loops.map(({ label, intervalMs, loop }, i) => ({
      label,
      checkpoint_interval_ms: Number.isFinite(intervalMs) ? intervalMs : null,
      ...loop.totals,
      snapshots_per_s: rate(i),
      unit_updates_per_s: (rate(i) * UNITS) / 2,
      ratio_to_none: rate(i) / rate(0),
    })),
  };
}

const before = load1();
const only = process.argv.includes("--overhead-only");
const results = only ? [] : [measure(1, false), measure(1, true), measure(10, true)];
const checkpoint_overhead = overhead();
process.stdout.write(
  `${JSON.stringify({ command: `npx tsx bench/state.ts${quick ? " --quick" : ""}`, machine: machine(), load1: [before, load1()], runs: RUNS, results, checkpoint_overhead }, null, 2)}\n`,
);
