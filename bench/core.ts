/**
 * Micro-benchmark of the detector core: `npx tsx bench/core.ts [--quick]`.
 * Prints one JSON document and a table. Each figure is the median of several
 * runs, with the min and max beside it. Throughputs are computed from the
 * process's CPU time (user + system) of the timed part, so other load on a
 * shared machine inflates them less than wall time would; the wall-time
 * figures are in the JSON too. Memory is measured in child processes started
 * with --expose-gc, from heap and ArrayBuffer deltas around building a fully
 * covered layer.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { classifyLayer } from "../src/core/classify.js";
import { Detector } from "../src/core/index.js";
import type { LayerState } from "../src/core/layer-state.js";
import type { ActivationSnapshot } from "../src/core/snapshot.js";

const quick = process.argv.includes("--quick");
const RUNS = quick ? 3 : 7;

interface Figure {
  median: number;
  min: number;
  max: number;
  runs: number;
}

function figure(xs: number[]): Figure {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, runs: s.length };
}

/** Runs fn once and returns its [wall, cpu] seconds. */
function timed(fn: () => void): [number, number] {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  return [wall, (c.user + c.system) / 1e6];
}

interface Throughput {
  cpu: Figure;
  wall: Figure;
}

function throughput(work: number, times: Array<[number, number]>): Throughput {
  return { cpu: figure(times.map(([, c]) => work / c)), wall: figure(times.map(([w]) => work / w)) };
}

function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 4294967296;
  };
}

/** Fires of a realistic layer: 10 % dead units (0), the rest fire on a share of the samples. */
function realisticFires(units: number, samples: number, seed: number): Uint32Array {
  const r = lcg(seed);
  const f = new Uint32Array(units);
  for (let i = 0; i < units; i++) f[i] = r() < 0.1 ? 0 : Math.floor(r() * samples) + 1;
  return f;
}

function countsSnapshot(
  units: number,
  step: number,
  rank: number,
  fires: Uint32Array,
  sums = false,
): ActivationSnapshot {
  // Sums as a probe computes them: Σ|h| ≈ Σh ≈ fires × mean activation.
  const abs = sums ? Float32Array.from(fires, (f) => f * 1.5) : null;
  const sq = sums ? Float32Array.from(fires, (f) => f * 4.5) : null;
  return {
    run_id: "bench",
    layer: "mlp",
    rank,
    step,
    time: step * 1000 + rank,
    unit_offset: 0,
    unit_count: units,
    layer_units: units,
    samples: 512,
    stats: { kind: "counts", fires, abs_sum: abs, sq_sum: sq },
  };
}

/** FiringCounts unit-updates per second: 8 ranks × steps inside one bucket, so no bucket closes. */
function benchCounts(): Throughput {
  const units = 1 << 20;
  const ranks = 8;
  const steps = 10;
  const fires = Array.from({ length: ranks }, (_, r) => realisticFires(units, 512, r + 1));
  const times: Array<[number, number]> = [];
  for (let run = 0; run < RUNS; run++) {
    const d = new Detector();
    d.apply(countsSnapshot(units, 0, 0, fires[0]!), 0); // allocate outside the timed part
    times.push(
      timed(() => {
        for (let s = 1; s <= steps; s++)
          for (let r = 0; r < ranks; r++) d.apply(countsSnapshot(units, s, r, fires[r]!), s);
      }),
    );
  }
  return throughput(steps * ranks * units, times);
}

/** Raw float32 values per second: 4096 units × 256 samples per snapshot, half of them zero. */
function benchRaw(dtype: "FLOAT32" | "FLOAT16" | "BFLOAT16"): Throughput {
  const units = 4096;
  const samples = 256;
  const n = units * samples;
  const r = lcg(7);
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) f[i] = r() < 0.5 ? 0 : r() * 3;
  let bytes: Uint8Array;
  if (dtype === "FLOAT32") bytes = new Uint8Array(f.buffer);
  else {
    // 16-bit patterns of the same values: bfloat16 truncates the float32 bits; for float16 use small exact values.
    const u32 = new Uint32Array(f.buffer);
    const h = new Uint16Array(n);
    for (let i = 0; i < n; i++)
      h[i] = dtype === "BFLOAT16" ? u32[i]! >>> 16 : f[i] === 0 ? 0 : 0x3c00 + (i & 0xff);
    bytes = new Uint8Array(h.buffer);
  }
  const reps = 60;
  const times: Array<[number, number]> = [];
  for (let run = 0; run < RUNS; run++) {
    const d = new Detector();
    const snap = (step: number): ActivationSnapshot => ({
      run_id: "bench",
      layer: "raw",
      rank: 0,
      step,
      time: step,
      unit_offset: 0,
      unit_count: units,
      layer_units: units,
      samples,
      stats: { kind: "raw", dtype, values: bytes },
    });
    d.apply(snap(0), 0);
    times.push(
      timed(() => {
        for (let s = 1; s <= reps; s++) d.apply(snap(s), s);
      }),
    );
  }
  return throughput(reps * n, times);
}

/**
 * Milliseconds of one classification pass over a 1M-unit layer whose window is
 * full (steady state: few transitions), and of the apply that closes the first
 * bucket with n_min samples, which emits a transition for every unit.
 */
function benchClassify(): { steady: Throughput; first: Throughput } {
  const units = 1 << 20;
  const fires = realisticFires(units, 512, 3);
  const steady: Array<[number, number]> = [];
  const first: Array<[number, number]> = [];
  for (let run = 0; run < RUNS; run++) {
    const d = new Detector();
    let emitted = 0;
    for (let step = 0; step < 1000; step += 20) {
      const snap = countsSnapshot(units, step, 0, fires);
      const t = timed(() => {
        emitted = d.apply(snap, step).transitions.length;
      });
      if (emitted > units / 2) first.push(t);
    }
    const rec = (d as unknown as { runs: Map<string, Map<string, { state: LayerState }>> }).runs
      .get("bench")!
      .get("mlp")!;
    const params = { config: d.config, nMin: d.samplesNeeded };
    const tally = { transitions: new Float64Array(16), deaths: 0, revivals: 0 };
    const ctx = { run_id: "bench", layer: "mlp", step: 0, time: 0, closing: false };
    steady.push(timed(() => classifyLayer(rec.state, params, ctx, tally, [])));
  }
  // Reported in milliseconds: the "work" of 1e-3 turns seconds into ms per pass after inversion.
  const ms = (times: Array<[number, number]>): Throughput => {
    const inv = throughput(1, times);
    const flip = (f: Figure): Figure => ({
      median: 1000 / f.median,
      min: 1000 / f.max,
      max: 1000 / f.min,
      runs: f.runs,
    });
    return { cpu: flip(inv.cpu), wall: flip(inv.wall) };
  };
  return { steady: ms(steady), first: ms(first) };
}

/** Child-process part: bytes per unit of one fully covered layer of `units` units, with or without sums. */
function measureMemory(units: number, sums: boolean): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --expose-gc");
  const fires = realisticFires(units, 512, 9);
  const snap = countsSnapshot(units, 0, 0, fires, sums);
  const next = countsSnapshot(units, 100, 1, fires, sums);
  gc();
  gc();
  const before = process.memoryUsage();
  const d = new Detector();
  d.apply(snap, 0);
  d.apply(next, 1); // one bucket closed: classification state in place
  gc();
  gc();
  const after = process.memoryUsage();
  const delta = after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers);
  if (d.trackedUnits() !== units) throw new Error("layer not tracked");
  return delta / units;
}

function benchMemory(units: number, sums = false): Figure {
  const runs = quick ? 1 : 3;
  const out: number[] = [];
  const self = fileURLToPath(import.meta.url);
  for (let i = 0; i < runs; i++) {
    const stdout = execFileSync(
      process.execPath,
      [
        ...["--expose-gc", "--max-old-space-size=4096", "--import", "tsx", self],
        ...["--memory-child", String(units), ...(sums ? ["--sums"] : [])],
      ],
      { encoding: "utf8" },
    );
    out.push(Number(stdout.trim()));
  }
  return figure(out);
}

const childAt = process.argv.indexOf("--memory-child");
if (childAt >= 0) {
  process.stdout.write(
    `${measureMemory(Number(process.argv[childAt + 1]), process.argv.includes("--sums"))}\n`,
  );
} else {
  const counts = benchCounts();
  const raw32 = benchRaw("FLOAT32");
  const raw16 = benchRaw("FLOAT16");
  const rawbf = benchRaw("BFLOAT16");
  const classify = benchClassify();
  const mem1 = benchMemory(1_000_000);
  const mem10 = benchMemory(10_000_000);
  const mem1Sums = benchMemory(1_000_000, true);
  const result = {
    node: process.version,
    runs: RUNS,
    counts_unit_updates_per_s: counts,
    raw_float32_values_per_s: raw32,
    raw_float16_values_per_s: raw16,
    raw_bfloat16_values_per_s: rawbf,
    classify_ms_per_1m_units_steady: classify.steady,
    classify_ms_per_1m_units_first_verdicts: classify.first,
    bytes_per_unit_1m: mem1,
    bytes_per_unit_10m: mem10,
    bytes_per_unit_1m_with_sums: mem1Sums,
  };
  console.log(JSON.stringify(result, null, 2));
  const fmt = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(1)}M` : x.toFixed(2));
  const rows: Array<[string, Figure, string]> = [
    ["FiringCounts unit-updates/s (CPU time)", counts.cpu, ">= 200M"],
    ["raw float32 values/s (CPU time)", raw32.cpu, ">= 300M"],
    ["raw float16 values/s (CPU time)", raw16.cpu, ""],
    ["raw bfloat16 values/s (CPU time)", rawbf.cpu, ""],
    ["classify ms / 1M-unit layer (steady, CPU time)", classify.steady.cpu, "< 20"],
    ["apply + first verdicts ms / 1M units (1M events, CPU time)", classify.first.cpu, ""],
    ["bytes / unit at 1M units", mem1, "<= 64"],
    ["bytes / unit at 10M units", mem10, "<= 64"],
    ["bytes / unit at 1M units, with abs_sum and sq_sum", mem1Sums, "<= 128"],
  ];
  console.log("\n| measure | median | min | max | target |\n| --- | --- | --- | --- | --- |");
  for (const [name, f, target] of rows) {
    console.log(`| ${name} | ${fmt(f.median)} | ${fmt(f.min)} | ${fmt(f.max)} | ${target} |`);
  }
}
