/**
 * Everything `make bench` measures, in one go: bench/core.ts, bench/probe.ts,
 * bench/e2e.ts and bench/ui.ts as child processes (each prints JSON), then docs/benchmarks.json,
 * docs/benchmarks.md and, through bench/scale-model.ts, docs/scaling.md.
 *
 *   npx tsx bench/run.ts     (BENCH_BROKERS, BENCH_RUNS, BENCH_STEPS, BENCH_SOAK_S pass to e2e)
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import type { Figure } from "./lib/stats.js";
import { gitCommit, load1, machine } from "./lib/stats.js";
import { renderScaling } from "./scale-model.js";

const log = (m: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

function runJson(
  script: string,
  args: string[] = [],
  command: string[] = [process.execPath, "--import", "tsx"],
): { json: unknown; seconds: number; load1: [number, number] } {
  const before = load1();
  const t0 = Date.now();
  log(`${command.length === 1 ? command[0] : "npx tsx"} ${script} ${args.join(" ")}`);
  const out = execFileSync(command[0]!, [...command.slice(1), script, ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 64 * 1024 * 1024,
  });
  // core.ts prints its JSON document and then a Markdown table; the others only JSON.
  const end = out.indexOf("\n}\n");
  const json = JSON.parse(end >= 0 ? out.slice(0, end + 2) : out);
  return { json, seconds: (Date.now() - t0) / 1000, load1: [before, load1()] };
}

const started = new Date();
// --render-only: rewrite the Markdown and the scale model from the stored JSON, measuring nothing.
// --add-soak FILE COMMAND: also store a separate soak run (bench/e2e.ts with BENCH_ONLY=soak), then render.
const addSoak = process.argv.indexOf("--add-soak");
const renderOnly = process.argv.includes("--render-only") || addSoak >= 0;
// biome-ignore lint/suspicious/noExplicitAny: the JSON documents of the three scripts
type Json = any;
const results: Json = renderOnly ? JSON.parse(readFileSync("docs/benchmarks.json", "utf8")) : measure();
if (addSoak >= 0) {
  const extra = JSON.parse(readFileSync(process.argv[addSoak + 1]!, "utf8"));
  results.extra_soaks = [
    ...(results.extra_soaks ?? []),
    {
      command: process.argv[addSoak + 2],
      date: new Date().toISOString(),
      commit: gitCommit(),
      load1: load1(),
      soak: extra.soak,
    },
  ];
  writeFileSync("docs/benchmarks.json", `${JSON.stringify(results, null, 2)}\n`);
}
const commit: string = results.commit;
const core = { json: results.core, load1: results.load1.core };
const probe = { json: results.probe, load1: results.load1.probe };
const e2e = { json: results.e2e, load1: results.load1.e2e };

function measure(): Json {
  const commit = gitCommit();
  const core = runJson("bench/core.ts");
  const probe = runJson("bench/probe.ts", ["--steps", "300", "--runs", "3"]);
  const e2e = runJson("bench/e2e.ts");
  const ui = runJson("bench/ui.ts");
  // The Python SDK (python/, in the .venv that make bench installs): ReluProbe and Publisher.
  const python = runJson(
    "bench/python_probe.py",
    ["--brokers", process.env.BENCH_BROKERS ?? "127.0.0.1:9092"],
    [".venv/bin/python"],
  );
  const state = stateBenches();
  const results = {
    date: started.toISOString(),
    commit,
    command: "make bench",
    machine: machine(),
    env: {
      BENCH_RUNS: process.env.BENCH_RUNS ?? "3",
      BENCH_STEPS: process.env.BENCH_STEPS ?? "40",
      BENCH_SOAK_S: process.env.BENCH_SOAK_S ?? "600",
    },
    durations_s: {
      core: core.seconds,
      probe: probe.seconds,
      e2e: e2e.seconds,
      ui: ui.seconds,
      python: python.seconds,
      state: state.seconds,
    },
    load1: {
      core: core.load1,
      probe: probe.load1,
      e2e: e2e.load1,
      ui: ui.load1,
      python: python.load1,
      state: state.load1,
    },
    core: core.json,
    probe: probe.json,
    e2e: e2e.json,
    ui: ui.json,
    python: python.json,
    state: state.json,
  };
  writeFileSync("docs/benchmarks.json", `${JSON.stringify(results, null, 2)}\n`);
  return results;
}

// ---- Markdown ----

const c = core.json;
const p = probe.json;
const e = e2e.json;

const num = (x: number, d = 0) =>
  Number.isFinite(x)
    ? x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d })
    : "n/a";
const fig = (f: Figure, d = 0, k = 1) =>
  `${num(f.median * k, d)} (${num(f.min * k, d)}–${num(f.max * k, d)}, n=${f.runs})`;
const verdict = (ok: boolean) => (ok ? "met" : "**not met**");

const rows: string[][] = [];
const add = (section: string, measure: string, value: string, target = "", ok?: boolean) =>
  rows.push([section, measure, value, target, ok === undefined ? "" : verdict(ok)]);

add(
  "core",
  "FiringCounts unit-updates/s (CPU time)",
  fig(c.counts_unit_updates_per_s.cpu, 1, 1e-6) + " M",
  ">= 200 M",
  c.counts_unit_updates_per_s.cpu.median >= 200e6,
);
add(
  "core",
  "raw float32 values/s (CPU time)",
  fig(c.raw_float32_values_per_s.cpu, 1, 1e-6) + " M",
  ">= 300 M",
  c.raw_float32_values_per_s.cpu.median >= 300e6,
);
add(
  "core",
  "classify ms per 1M-unit layer (steady)",
  fig(c.classify_ms_per_1m_units_steady.cpu, 2),
  "< 20",
  c.classify_ms_per_1m_units_steady.cpu.median < 20,
);
add(
  "core",
  "bytes per unit at 1M units",
  fig(c.bytes_per_unit_1m, 1),
  "<= 64",
  c.bytes_per_unit_1m.median <= 64,
);
add(
  "core",
  "bytes per unit at 10M units",
  fig(c.bytes_per_unit_10m, 1),
  "<= 64",
  c.bytes_per_unit_10m.median <= 64,
);

// ---- state: bench/state.ts (checkpoint cost, its overhead on the apply loop) and bench/state-restore.ts ----

/** Both state benchmarks as one `state` document: bench/state.ts's, with bench/state-restore.ts's as `restore`. */
function stateBenches(): { json: Json; seconds: number; load1: [number, number] } {
  const state = runJson("bench/state.ts");
  // state-restore.ts reads KAFKA_BROKERS; make bench's broker is BENCH_BROKERS.
  const saved = process.env.KAFKA_BROKERS;
  process.env.KAFKA_BROKERS = process.env.BENCH_BROKERS ?? saved ?? "127.0.0.1:9092";
  const restore = runJson("bench/state-restore.ts");
  if (saved === undefined) delete process.env.KAFKA_BROKERS;
  else process.env.KAFKA_BROKERS = saved;
  return {
    json: { ...(state.json as object), restore: restore.json },
    seconds: state.seconds + restore.seconds,
    load1: [state.load1[0], restore.load1[1]],
  };
}

// Stored results from before bench/state.ts existed have no checkpoint figures.
for (const r of results.state?.results ?? []) {
  const what = `checkpoint of ${num(r.layers)} × 1M units${r.sums ? " with sums" : ""}`;
  add(
    "state",
    `${what}: bytes per unit (zstd level 3)`,
    `${num(r.bytes_per_unit, 1)} (${num(r.zstd_bytes_per_unit, 1)})`,
  );
  add(
    "state",
    `${what}: encode / decode / restore, s`,
    `${fig(r.encode_s, 2)} / ${fig(r.decode_s, 2)} / ${fig(r.restore_s, 2)}`,
  );
}
for (const r of results.state?.restore?.results ?? []) {
  const what = `restore from the broker: ${num(r.layers)} × 1M units with sums${r.run_steps > 1100 ? `, after a ${num((r.run_steps + 100) / 1200)}× longer run (${num(r.run_steps)} steps)` : ""}`;
  add(
    "state",
    `${what}: MB on the state topic / checkpoint write, s / restore, s / restore s per GB`,
    `${num(r.state_bytes / 1e6, 0)} / ${num(r.write_s, 2)} / ${num(r.restore_s, 2)} / ${num(r.restore_s_per_gb, 2)}`,
  );
}
const overhead = results.state?.checkpoint_overhead;
for (const c of overhead?.cadences ?? []) {
  const cadence =
    c.checkpoint_interval_ms === null
      ? "no checkpoints"
      : `checkpoint_interval_ms ${c.checkpoint_interval_ms}`;
  add(
    "state",
    `apply loop of ${num(overhead.layers)} × 1M units with sums, ${cadence}: snapshots/s (ratio to none, same run; checkpoints written)`,
    `${num(c.snapshots_per_s, 2)} (${num(c.ratio_to_none, 3)}; ${num(c.checkpoints)})`,
  );
}
const stateNotes = results.state
  ? [
      `State rows: \`npx tsx bench/state.ts\` and \`KAFKA_BROKERS=… npx tsx bench/state-restore.ts\`${results.state.measured ? `, measured ${results.state.measured.date} at ${results.state.measured.commit} on ${results.state.measured.broker}` : ""}; 1-minute load average before/after: state.ts ${results.state.load1.join("/")}, state-restore.ts ${results.state.restore?.load1?.join("/") ?? "n/a"}. Each cadence of the apply loop runs in turns of ${num(overhead?.slice_s ?? 0)} s (a turn ends after the step in hand) until it has had ${num(overhead?.seconds_each ?? 0)} of them; its store encodes into a writer that only counts bytes (the in-process cost, no broker); a turn ends with a garbage collection counted in it.`,
      "",
    ]
  : [];

const t = e.throughput;
for (const [mode, label] of [
  ["kafkajs-fetch", "(a) kafkajs fetch only, no decode: the ceiling"],
  ["service", "(b) consumer service (startConsumerService, as `reluwatch consume`)"],
  ["kafkajs-apply", "kafkajs + decode + detector (no sinks, no commits)"],
  ["platformatic-fetch", "@platformatic/kafka fetch only"],
  ["platformatic-apply", "@platformatic/kafka + decode + detector"],
] as const) {
  add("end to end", `${label}: snapshots/s`, fig(t[mode].snapshots_per_s));
  add("end to end", `${label}: unit-updates/s`, fig(t[mode].unit_updates_per_s, 1, 1e-6) + " M");
  add("end to end", `${label}: MB/s (Avro)`, fig(t[mode].mb_per_s, 1));
  add("end to end", `${label}: snapshots per CPU-second`, fig(t[mode].snapshots_per_cpu_s));
  add("end to end", `${label}: steady state (2nd half), snapshots/s`, fig(t[mode].steady_snapshots_per_s));
  add(
    "end to end",
    `${label}: steady state, unit-updates/s`,
    `${fig(t[mode].steady_unit_updates_per_s, 1, 1e-6)} M`,
  );
  add(
    "end to end",
    `${label}: steady state, snapshots per CPU-second`,
    fig(t[mode].steady_snapshots_per_cpu_s),
  );
}
add(
  "end to end",
  "ratio (b)/(a), same round",
  fig(e.ratios.service_over_kafkajs_fetch, 3),
  ">= 0.9",
  e.ratios.service_over_kafkajs_fetch.median >= 0.9,
);
add(
  "end to end",
  "ratio (b) steady state / (a)",
  fig(e.ratios.steady_service_over_kafkajs_fetch, 3),
  ">= 0.9",
  e.ratios.steady_service_over_kafkajs_fetch.median >= 0.9,
);
add(
  "end to end",
  "ratio kafkajs decode+apply / kafkajs fetch",
  fig(e.ratios.kafkajs_apply_over_kafkajs_fetch, 3),
);
add(
  "client",
  "ratio platformatic fetch / kafkajs fetch",
  fig(e.ratios.platformatic_fetch_over_kafkajs_fetch, 3),
);
add(
  "client",
  "ratio platformatic decode+apply / kafkajs decode+apply",
  fig(e.ratios.platformatic_apply_over_kafkajs_apply, 3),
);
add(
  "scale-out",
  "2 instances, 8 partitions: snapshots/s while both consume",
  fig(e.scale_out.steady_snapshots_per_s),
);
add(
  "scale-out",
  "2 instances: snapshots/s first to last message (incl. rebalance)",
  fig(e.scale_out.combined_snapshots_per_s),
);
add("scale-out", "ratio 2 instances / 1 instance", fig(e.scale_out.ratio_to_one_instance, 2));
const s = e.soak;
add(
  "latency",
  `publish → /metrics p50, ms, at ${num(s.rate_snapshots_per_s)} snapshots/s (per window)`,
  fig(s.latency_p50_ms),
);
add(
  "latency",
  "publish → /metrics p99, ms (per window)",
  fig(s.latency_p99_ms),
  "<= 1000",
  s.latency_p99_ms.max <= 1000,
);
add(
  "latency",
  "publish → /metrics p99 after warm-up, all samples, ms",
  `${num(s.latency_ms_after_warmup.p99)} (${num(s.latency_ms_after_warmup.samples)} samples)`,
  "<= 1000",
  s.latency_ms_after_warmup.p99 <= 1000,
);
add(
  "latency",
  "publish → /metrics p50 / p99 in the warm-up window (every unit's first verdict), ms",
  `${num(s.warmup_window.latency_p50_ms)} / ${num(s.warmup_window.latency_p99_ms)}`,
);
add("latency", "duration of one /metrics scrape, ms", fig(s.scrape_ms));
add(
  "soak",
  `RSS after warm-up → end, MB (${num(s.seconds)} s)`,
  `${num(s.rss_mb.warm)} → ${num(s.rss_mb.end)} (${num(s.rss_growth * 100, 1)}%)`,
  "< 5%",
  s.rss_growth < 0.05,
);
add(
  "soak",
  "heap used after GC, warm-up → end, MB",
  `${num(s.heap_used_mb.warm, 1)} → ${num(s.heap_used_mb.end, 1)} (${num(s.heap_growth * 100, 1)}%)`,
  "< 5%",
  s.heap_growth < 0.05,
);
add("soak", "event-loop delay p99, ms (per window)", fig(s.eld_p99_ms, 1));
const soakRows = (soak: Json, area: string) => {
  add(
    area,
    `publisher (${soak.publisher_compression ?? "gzip"}) delivered / offered at ${num(soak.rate_snapshots_per_s)} snapshots/s`,
    `${num(soak.publisher.sent)} / ${num(soak.publisher.offered)}${soak.publisher.sent < soak.publisher.offered ? " (the load generator fell behind: latency includes its own queue)" : ""}`,
  );
};
soakRows(s, "soak");
for (const x of results.extra_soaks ?? []) {
  const area = `separate soak (${x.date.slice(0, 16)}, load ${x.load1})`;
  add(area, "command", `\`${x.command}\``);
  soakRows(x.soak, area);
  add(area, "publish → /metrics p50, ms (per window after warm-up)", fig(x.soak.latency_p50_ms));
  add(
    area,
    "publish → /metrics p99, ms (per window after warm-up)",
    fig(x.soak.latency_p99_ms),
    "<= 1000",
    x.soak.latency_p99_ms.max <= 1000,
  );
  add(
    area,
    "publish → /metrics p99 after warm-up, all samples, ms",
    `${num(x.soak.latency_ms_after_warmup.p99)} (${num(x.soak.latency_ms_after_warmup.samples)} samples)`,
    "<= 1000",
    x.soak.latency_ms_after_warmup.p99 <= 1000,
  );
  add(
    area,
    "warm-up window p50 / p99, ms",
    `${num(x.soak.warmup_window.latency_p50_ms)} / ${num(x.soak.warmup_window.latency_p99_ms)}`,
  );
  add(
    area,
    "RSS / heap growth after warm-up",
    `${num(x.soak.rss_growth * 100, 1)}% / ${num(x.soak.heap_growth * 100, 1)}%`,
    "< 5%",
    x.soak.rss_growth < 0.05 && x.soak.heap_growth < 0.05,
  );
  add(area, "event-loop delay p99, ms (per window)", fig(x.soak.eld_p99_ms, 1));
}
// Results stored before bench/ui.ts existed have no explorer figures.
if (results.ui) {
  const u = results.ui;
  add(
    "explorer",
    `layer map of ${num(u.units)} units: navigation to first draw, ms`,
    fig(u.first_map_draw_ms),
  );
  add(
    "explorer",
    "layer map: bytes transferred (gzip)",
    `${fig(u.map_bytes_transferred)} of ${num(u.map_bytes_uncompressed)}`,
  );
  add("explorer", "layer page: bytes transferred in all", fig(u.page_bytes_transferred));
}
add(
  "trainer",
  `probe overhead per step (${p.model}, every ${p.every_steps} steps, ${p.backend})`,
  `${num(p.overhead_ratio * 100, 2)}%`,
  "<= 5%",
  p.overhead_ratio <= 0.05,
);
const py = results.python;
if (py) {
  add(
    "trainer",
    `Python ReluProbe: training-thread CPU per step, no probe / every 50 / every step, ms (${py.model})`,
    `${fig(py.step_cpu_ms.none, 2)} / ${fig(py.step_cpu_ms.every_50, 2)} / ${fig(py.step_cpu_ms.every_1, 2)}`,
  );
  add(
    "trainer",
    "Python ReluProbe overhead per step, every 50 steps",
    `${num(py.overhead_ratio.every_50 * 100, 2)}%`,
    "<= 5%",
    py.overhead_ratio.every_50 <= 0.05,
  );
  for (const comp of ["zstd", "gzip", "none"].filter((c) => py.publisher[c])) {
    add(
      "trainer",
      `Python Publisher (${comp}): CPU µs per ${num(py.publisher.snapshot_units)}-unit snapshot, all threads`,
      fig(py.publisher[comp].cpu_us_per_snapshot),
    );
  }
}
// Rounds that predate a compression (an older docs/benchmarks.json) simply have no row for it.
for (const comp of ["none", "gzip", "zstd"].filter((c) => e.publisher[c])) {
  const pub = e.publisher[comp];
  add("trainer", `SnapshotPublisher (${comp}): snapshots/s`, fig(pub.snapshots_per_s));
  if (pub.wire_bytes_per_snapshot) {
    add(
      "trainer",
      `SnapshotPublisher (${comp}): bytes per snapshot on the broker (of ${num(e.publisher.snapshot_bytes)} encoded)`,
      fig(pub.wire_bytes_per_snapshot),
    );
  }
  add(
    "trainer",
    `SnapshotPublisher (${comp}): CPU µs per snapshot, all threads`,
    fig(pub.cpu_us_per_snapshot),
  );
  add(
    "trainer",
    `SnapshotPublisher (${comp}): CPU µs inside publish() (trainer thread)`,
    fig(pub.publish_call_cpu_us),
  );
}

const md = [
  "# Benchmarks",
  "",
  "Written by `make bench` (bench/run.ts); do not edit by hand. Raw figures: docs/benchmarks.json;",
  "what they mean for a deployment: docs/scaling.md.",
  "",
  `- date: ${results.date}`,
  `- commit: ${commit}`,
  `- command: \`${results.command}\` (BENCH_RUNS=${results.env.BENCH_RUNS}, BENCH_STEPS=${results.env.BENCH_STEPS}, BENCH_SOAK_S=${results.env.BENCH_SOAK_S})`,
  `- machine: ${results.machine.cpu}, ${results.machine.cores} cores, ${results.machine.memory_gb} GB, ${results.machine.platform}; Node ${results.machine.node}`,
  `- 1-minute load average before/after: core ${core.load1.join("/")}, probe ${probe.load1.join("/")}, end to end ${e2e.load1.join("/")} (the machine is shared: absolute rates drift with it, ratios measured in the same round much less)`,
  `- broker: a private single-node Kafka (deploy/kafka-local) on ${e.brokers.join(",")}; topic of ${num(e.fill.snapshots)} snapshots (${e.scenario.ranks} ranks × ${e.scenario.layers} layers × ${e.scenario.units} units, counts payload, ${num(e.fill.bytes_per_snapshot)} bytes of Avro each, ${e.scenario.compression}), ${e.scenario.partitions} partitions, filled by \`reluwatch simulate\`'s runSimulate`,
  "",
  "Figures are median (min–max, n runs). Rates run from the moment the consumer joined its group to",
  "its last message, in a process of its own; consumers run one after the other in each round.",
  "Latency is from the publish() call of a layer's rank-0 snapshot to the first /metrics scrape",
  `(every ${s.scrape_interval_ms} ms) whose reluwatch_layer_step shows that step, so it includes the publisher's`,
  `linger and up to one scrape interval; the soak is cut into ${s.windows.length} windows, each giving a p50 and p99;`,
  "the first window is warm-up (the first verdicts of every unit: one transition event each) and is reported apart.",
  "Steady state: the second half of the topic, past every unit's first verdict.",
  "",
  `On ${results.machine.cores} cores the broker (a JVM), the consumer(s) and, in the soak, the publisher share the`,
  "CPUs with whatever else runs on the machine (see the load averages): two instances cannot double one",
  "instance's rate here, because one instance already keeps a core busy and the broker needs the other.",
  "",
  "| area | measure | value | target | |",
  "| --- | --- | --- | --- | --- |",
  ...rows.map((r) => `| ${r.join(" | ")} |`),
  "",
  ...stateNotes,
].join("\n");
writeFileSync("docs/benchmarks.md", md);
writeFileSync("docs/scaling.md", renderScaling(results, "docs/benchmarks.json"));
log(
  `wrote docs/benchmarks.json, docs/benchmarks.md, docs/scaling.md in ${((Date.now() - started.getTime()) / 60000).toFixed(1)} min`,
);
