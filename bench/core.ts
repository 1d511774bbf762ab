/**
 * Micro-benchmark of the detector core: `npx tsx bench/core.ts [--quick]`.
 * Prints one JSON document and a table. Each figure is the median of several
 * runs, with the min and max beside it; memory is measured in child processes
 * started with --expose-gc, from heap and ArrayBuffer deltas around building
 * a fully covered layer.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { classifyLayer } from "../src/core/classify.js";
import { Detector } from "../src/core/index.js";
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

function countsSnapshot(units: number, step: number, rank: number, fires: Uint32Array): ActivationSnapshot {
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
    stats: { kind: "counts", fires, abs_sum: null, sq_sum: null },
  };
}

/** FiringCounts unit-updates per second: 8 ranks × steps inside one bucket, so no bucket closes. */
function benchCounts(): Figure {
  const units = 1 << 20;
  const ranks = 8;
  const fires = Array.from({ length: ranks }, (_, r) => realisticFires(units, 512, r + 1));
  const out: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const d = new Detector();
    d.apply(countsSnapshot(units, 0, 0, fires[0]!), 0); // allocate outside the timed part
    const steps = 10;
    const t0 = process.hrtime.bigint();
    for (let s = 1; s <= steps; s++)
      for (let r = 0; r < ranks; r++) d.apply(countsSnapshot(units, s, r, fires[r]!), s);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    out.push((steps * ranks * units) / secs);
  }
  return figure(out);
}

/** Raw float32 values per second: 4096 units × 256 samples per snapshot, half of them zero. */
function benchRaw(dtype: "FLOAT32" | "FLOAT16" | "BFLOAT16"): Figure {
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
  const out: number[] = [];
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
    const reps = 60;
    const t0 = process.hrtime.bigint();
    for (let s = 1; s <= reps; s++) d.apply(snap(s), s);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    out.push((reps * n) / secs);
  }
  return figure(out);
}

/** Milliseconds of one steady-state classification pass over a 1M-unit layer (windows full, few transitions). */
function benchClassify(): { steady: Figure; first: Figure } {
  const units = 1 << 20;
  const fires = realisticFires(units, 512, 3);
  const steady: number[] = [];
  const first: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const d = new Detector();
    let t = 0;
    for (let step = 0; step < 1000; step += 20) {
      const t0 = process.hrtime.bigint();
      const o = d.apply(countsSnapshot(units, step, 0, fires), step);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (step % 100 === 0 && step > 0) {
        if (o.transitions.length > 1000) first.push(ms);
        else t = ms;
      }
    }
    // Time the pass itself, excluding the apply around it.
    const rec = (d as unknown as { runs: Map<string, Map<string, { state: never }>> }).runs
      .get("bench")!
      .get("mlp")!;
    const params = { config: d.config, nMin: d.samplesNeeded };
    const tally = { transitions: new Float64Array(16), deaths: 0, revivals: 0 };
    const sink: never[] = [];
    const t0 = process.hrtime.bigint();
    classifyLayer(
      rec.state,
      params,
      { run_id: "bench", layer: "mlp", step: 0, time: 0, closing: false },
      tally,
      sink,
    );
    steady.push(Number(process.hrtime.bigint() - t0) / 1e6);
    void t;
  }
  return { steady: figure(steady), first: figure(first) };
}

/** Child-process part: bytes per unit of one fully covered layer of `units` units. */
function measureMemory(units: number): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --expose-gc");
  const fires = realisticFires(units, 512, 9);
  const snap = countsSnapshot(units, 0, 0, fires);
  gc();
  gc();
  const before = process.memoryUsage();
  const d = new Detector();
  d.apply(snap, 0);
  d.apply(countsSnapshot(units, 100, 1, fires), 1); // one bucket closed: classification state in place
  gc();
  gc();
  const after = process.memoryUsage();
  const delta = after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers);
  if (d.trackedUnits() !== units) throw new Error("layer not tracked");
  return delta / units;
}

function benchMemory(units: number): Figure {
  const runs = quick ? 1 : 3;
  const out: number[] = [];
  const self = fileURLToPath(import.meta.url);
  for (let i = 0; i < runs; i++) {
    const stdout = execFileSync(
      process.execPath,
      ["--expose-gc", "--max-old-space-size=4096", "--import", "tsx", self, "--memory-child", String(units)],
      { encoding: "utf8" },
    );
    out.push(Number(stdout.trim()));
  }
  return figure(out);
}

const childAt = process.argv.indexOf("--memory-child");
if (childAt >= 0) {
  process.stdout.write(`${measureMemory(Number(process.argv[childAt + 1]))}\n`);
} else {
  const counts = benchCounts();
  const raw32 = benchRaw("FLOAT32");
  const raw16 = benchRaw("FLOAT16");
  const rawbf = benchRaw("BFLOAT16");
  const classify = benchClassify();
  const mem1 = benchMemory(1_000_000);
  const mem10 = benchMemory(10_000_000);
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
  };
  console.log(JSON.stringify(result, null, 2));
  const fmt = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(1)}M` : x.toFixed(2));
  const rows: Array<[string, Figure, string]> = [
    ["FiringCounts unit-updates/s", counts, ">= 200M"],
    ["raw float32 values/s", raw32, ">= 300M"],
    ["raw float16 values/s", raw16, ""],
    ["raw bfloat16 values/s", rawbf, ""],
    ["classify ms / 1M units (steady)", classify.steady, "< 20"],
    ["apply+classify ms / 1M units (first verdicts, 1M events)", classify.first, ""],
    ["bytes / unit at 1M units", mem1, "<= 64"],
    ["bytes / unit at 10M units", mem10, "<= 64"],
  ];
  console.log("\n| measure | median | min | max | target |\n| --- | --- | --- | --- | --- |");
  for (const [name, f, target] of rows) {
    console.log(`| ${name} | ${fmt(f.median)} | ${fmt(f.min)} | ${fmt(f.max)} | ${target} |`);
  }
}
