/**
 * Everything `make bench` measures, in one go: bench/core.ts, bench/probe.ts,
 * bench/e2e.ts and bench/ui.ts as child processes (each prints JSON), then docs/benchmarks.json,
 * docs/benchmarks.md (the targets with their verdicts first) and, through bench/scale-model.ts,
 * docs/scaling.md.
 *
 *   npx tsx bench/run.ts     (BENCH_BROKERS, BENCH_RUNS, BENCH_STEPS, BENCH_SOAK_S and the other
 *                             BENCH_* knobs of bench/e2e.ts pass to it)
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
      BENCH_STEPS: process.env.BENCH_STEPS ?? "120",
      BENCH_SOAK_S: process.env.BENCH_SOAK_S ?? "600",
      // Set only when given: their defaults live in bench/e2e.ts.
      ...Object.fromEntries(
        [
          "BENCH_SOAK_WARMUP_S",
          "BENCH_SOAK_COMPRESSION",
          "BENCH_SCALE_S",
          "BENCH_SCALE_RUNS",
          "BENCH_SERVICE_CLIENT",
        ]
          .filter((k) => process.env[k] !== undefined)
          .map((k) => [k, process.env[k]]),
      ),
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
// A figure with no finite sample is stored with nulls (JSON has no NaN).
const fig = (f: Figure, d = 0, k = 1) =>
  f.runs === 0 ? "n/a" : `${num(f.median * k, d)} (${num(f.min * k, d)}–${num(f.max * k, d)}, n=${f.runs})`;
const verdict = (ok: boolean) => (ok ? "met" : "**not met**");

const rows: string[][] = [];
const add = (section: string, measure: string, value: string, target = "", ok?: boolean) =>
  rows.push([section, measure, value, target, ok === undefined ? "" : verdict(ok)]);

add(
  "core",
  "FiringCounts unit-updates/s (CPU time)",
  `${fig(c.counts_unit_updates_per_s.cpu, 1, 1e-6)} M`,
  ">= 200 M",
  c.counts_unit_updates_per_s.cpu.median >= 200e6,
);
add(
  "core",
  "raw float32 values/s (CPU time)",
  `${fig(c.raw_float32_values_per_s.cpu, 1, 1e-6)} M`,
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
// Results stored before the service ran once per client have a single "service" run (kafkajs).
const serviceModes: Array<[string, string]> = t["service-kafkajs"]
  ? [
      ["service-kafkajs", "(b) consumer service, kafka_client=kafkajs (as `reluwatch consume`)"],
      ["service-platformatic", "(c) consumer service, kafka_client=platformatic"],
      [
        "service-platformatic-one-thread",
        "(e) consumer service, kafka_client=platformatic, fetch_thread=false (one thread)",
      ],
    ]
  : [["service", "(b) consumer service (as `reluwatch consume`)"]];
for (const [mode, label] of [
  ["kafkajs-fetch", "(a) kafkajs fetch only, no decode: its ceiling"],
  ...serviceModes,
  ["kafkajs-apply", "kafkajs + decode + detector (no sinks, no commits)"],
  ["platformatic-fetch", "(d) @platformatic/kafka fetch only: its ceiling"],
  ["platformatic-apply", "@platformatic/kafka + decode + detector"],
] as Array<[string, string]>) {
  const m = t[mode];
  if (!m) continue;
  if (m.client_requested) {
    add(
      "end to end",
      `${label}: client the service used`,
      `${m.client_used}${m.client_used === m.client_requested ? "" : ` (**asked for ${m.client_requested}**)`}: from ${m.client_evidence}`,
    );
  }
  add("end to end", `${label}: snapshots/s`, fig(m.snapshots_per_s));
  add("end to end", `${label}: unit-updates/s`, `${fig(m.unit_updates_per_s, 1, 1e-6)} M`);
  add("end to end", `${label}: MB/s (Avro)`, fig(m.mb_per_s, 1));
  add("end to end", `${label}: snapshots per CPU-second`, fig(m.snapshots_per_cpu_s));
  add("end to end", `${label}: steady state (2nd half), snapshots/s`, fig(m.steady_snapshots_per_s));
  add(
    "end to end",
    `${label}: steady state, unit-updates/s`,
    `${fig(m.steady_unit_updates_per_s, 1, 1e-6)} M`,
  );
  add("end to end", `${label}: steady state, snapshots per CPU-second`, fig(m.steady_snapshots_per_cpu_s));
}
const ratioLabels: Record<string, string> = {
  service_kafkajs_over_own_fetch: "(b) / fetch-only ceiling of the client it used, same round",
  service_platformatic_over_own_fetch: "(c) / fetch-only ceiling of the client it used, same round",
  service_kafkajs_over_kafkajs_fetch: "(b) / (a)",
  service_platformatic_over_kafkajs_fetch: "(c) / (a)",
  steady_service_kafkajs_over_own_fetch: "(b) steady state / its client's ceiling",
  steady_service_platformatic_over_own_fetch: "(c) steady state / its client's ceiling",
  steady_service_kafkajs_over_kafkajs_fetch: "(b) steady state / (a)",
  steady_service_platformatic_over_kafkajs_fetch: "(c) steady state / (a)",
  steady_service_platformatic_one_thread_over_own_fetch: "(e) steady state / (d)",
  service_over_kafkajs_fetch: "(b) / (a), same round",
  steady_service_over_kafkajs_fetch: "(b) steady state / (a)",
  kafkajs_apply_over_kafkajs_fetch: "kafkajs decode+apply / kafkajs fetch",
  platformatic_apply_over_platformatic_fetch: "platformatic decode+apply / platformatic fetch",
  platformatic_fetch_over_kafkajs_fetch: "platformatic fetch / kafkajs fetch",
  platformatic_apply_over_kafkajs_apply: "platformatic decode+apply / kafkajs decode+apply",
};
for (const [key, value] of Object.entries(e.ratios ?? {})) {
  add(
    key.startsWith("platformatic_") ? "client" : "end to end",
    `ratio ${ratioLabels[key] ?? key}`,
    fig(value as Figure, 3),
  );
}

const so = e.scale_out;
if (so?.runs) {
  add(
    "scale-out",
    `topic (zstd) sized for ${num(so.sized_for.overlap_s)} s of two instances at twice one's ${num(so.sized_for.one_instance_rate)} snapshots/s`,
    `${num(so.fill.snapshots)} snapshots, filled in ${num(so.fill.seconds)} s`,
  );
  add(
    "scale-out",
    `1 instance (kafka_client=${so.client}) over the first half of the topic, steady state (its 2nd quarter), snapshots/s`,
    fig(so.one_instance_snapshots_per_s),
  );
  add("scale-out", "2 instances, 8 partitions: time both consumed, s", fig(so.overlap_s, 1));
  add("scale-out", "2 instances: snapshots/s while both consumed", fig(so.overlap_snapshots_per_s));
  add(
    "scale-out",
    "2 instances: snapshots/s first to last message (incl. rebalance)",
    fig(so.combined_snapshots_per_s),
  );
  add(
    "scale-out",
    "ratio 2 instances (both consuming) / 1 instance (steady)",
    `${fig(so.ratio_to_one_instance, 2)}${so.overlap_s.min < so.min_overlap_s ? ` (n/a: both consumed less than ${so.min_overlap_s} s)` : ""}`,
  );
  add(
    "scale-out",
    "snapshots per CPU-second: 1 instance / 2 instances while both consumed",
    `${fig(so.one_instance_snapshots_per_cpu_s)} / ${fig(so.overlap_snapshots_per_cpu_s)}`,
  );
  so.runs.forEach((run: Json, i: number) => {
    const inst = run.two_instances.instances
      .map(
        (x: Json, k: number) =>
          `#${k + 1}: ${num(x.cpu_s, 1)} s (${num(x.cpu_s_in_overlap, 1)} s of ${num(run.two_instances.overlap_s, 1)} s together; ${num(x.snapshots)} snapshots; ${x.client.used})`,
      )
      .join(", ");
    const broker = (v: number | undefined) => (v === undefined ? "n/a" : `${num(v, 1)} s`);
    add(
      "scale-out",
      `run ${i + 1}: CPU user+sys per process, first to last message`,
      `1 instance: ${num(run.one_instance.cpu_s, 1)} s in ${num(run.one_instance.seconds, 1)} s (broker ${broker(run.one_instance.broker_cpu_s)}); 2 instances: ${inst}; broker while both consumed ${broker(run.two_instances.broker_cpu_s_in_overlap)}`,
    );
  });
} else if (so) {
  add(
    "scale-out",
    "2 instances: snapshots/s first to last message (incl. rebalance)",
    fig(so.combined_snapshots_per_s),
  );
  add("scale-out", "ratio 2 instances / 1 instance", fig(so.ratio_to_one_instance, 2));
}

/** Rows of a soak, this run's or a separate BENCH_ONLY=soak run's. */
const soakRows = (soak: Json, area: string) => {
  const client = soak.service_client ? `, kafka_client=${soak.service_client.used}` : "";
  // Stored before the soak had a broker of its own: it shared the bench's, whose log is on disk.
  const brokerLog = `, broker log on ${soak.broker_log ?? "disk"}`;
  add(
    area,
    `publish → /metrics p50 / p99 after warm-up, all samples, ms, at ${num(soak.rate_snapshots_per_s)} snapshots/s${client}${brokerLog}`,
    `${num(soak.latency_ms_after_warmup.p50)} / ${num(soak.latency_ms_after_warmup.p99)} (${num(soak.latency_ms_after_warmup.samples)} samples${soak.latency_ms_after_warmup.unmeasured ? `; ${num(soak.latency_ms_after_warmup.unmeasured)} published steps never seen before the end` : ""})`,
  );
  add(area, "publish → /metrics p50, ms (per window after warm-up)", fig(soak.latency_p50_ms));
  add(area, "publish → /metrics p99, ms (per window after warm-up)", fig(soak.latency_p99_ms));
  if (soak.latency_ms_in_warmup) {
    add(
      area,
      `publish → /metrics in the warm-up (${num(soak.warmup_s)} s: every unit's first verdict): median p50 / highest p99, ms`,
      `${num(soak.latency_ms_in_warmup.p50)} / ${num(soak.latency_ms_in_warmup.p99_max)}`,
    );
  }
  if (soak.generator_achieved_share) {
    add(
      area,
      `load generator (own process, ${soak.publisher_compression}): published / target, acknowledged / target, per window after warm-up`,
      `${fig(soak.generator_achieved_share, 3)}; ${fig(soak.generator_delivered_share ?? soak.generator_achieved_share, 3)}; kept up: ${soak.generator_kept_up ? "yes" : "**no**"} (published ≥ ${num(soak.generator_kept_up_threshold * 100)}% and at most ${num(soak.generator_max_backlog_s ?? 1)} s of it unacknowledged, in every window)`,
    );
    add(
      area,
      "CPU cores used per window: service / load generator",
      `${fig(soak.service_cpu_s_per_s, 2)} / ${fig(soak.generator_cpu_s_per_s, 2)}`,
    );
  }
  add(
    area,
    `publisher delivered / offered in all`,
    `${num(soak.publisher.sent)} / ${num(soak.publisher.offered)}`,
  );
  if (soak.rss_mb?.first_median !== undefined) {
    add(
      area,
      `RSS after warm-up, MB (line from first to last window; medians of first/last 3 windows)`,
      `${num(soak.rss_mb.fit_from)} → ${num(soak.rss_mb.fit_to)} (${num(soak.rss_growth * 100, 1)}%); ${num(soak.rss_mb.first_median)} → ${num(soak.rss_mb.last_median)}`,
    );
    add(
      area,
      "heap used after GC, after warm-up, MB (the same two ways)",
      `${num(soak.heap_used_mb.fit_from, 1)} → ${num(soak.heap_used_mb.fit_to, 1)} (${num(soak.heap_growth * 100, 1)}%); ${num(soak.heap_used_mb.first_median, 1)} → ${num(soak.heap_used_mb.last_median, 1)}`,
    );
  } else {
    add(
      area,
      "RSS / heap growth after warm-up",
      `${num(soak.rss_growth * 100, 1)}% / ${num(soak.heap_growth * 100, 1)}%`,
    );
  }
  add(area, "event-loop delay p99, ms (per window)", fig(soak.eld_p99_ms, 1));
  add(area, "duration of one /metrics scrape, ms", fig(soak.scrape_ms));
};
soakRows(e.soak, `soak (${num(e.soak.seconds)} s)`);
for (const x of results.extra_soaks ?? []) {
  const area = `separate soak (${x.date.slice(0, 16)}, load ${x.load1})`;
  add(area, "command", `\`${x.command}\``);
  soakRows(x.soak, area);
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
// Per client when the round measured both; an older docs/benchmarks.json has one unnamed client
// (kafkajs), and rounds that predate a compression simply have no row for it.
const publisherRounds: Array<[string, Json]> = e.publisher.clients
  ? Object.entries(e.publisher.clients).map(([client, r]) => [`${client}, `, r as Json])
  : [["", e.publisher]];
for (const [client, rounds] of publisherRounds) {
  for (const comp of ["none", "gzip", "zstd"].filter((c) => rounds[c])) {
    const pub = rounds[comp];
    const name = `SnapshotPublisher (${client}${comp})`;
    add("trainer", `${name}: snapshots/s`, fig(pub.snapshots_per_s));
    if (pub.wire_bytes_per_snapshot) {
      add(
        "trainer",
        `${name}: bytes per snapshot on the broker (of ${num(e.publisher.snapshot_bytes)} encoded)`,
        fig(pub.wire_bytes_per_snapshot),
      );
    }
    add("trainer", `${name}: CPU µs per snapshot, all threads`, fig(pub.cpu_us_per_snapshot));
    add("trainer", `${name}: CPU µs inside publish() (trainer thread)`, fig(pub.publish_call_cpu_us));
  }
}

const s = e.soak;
/** The "Throughput" targets with their verdicts; results stored before bench/e2e.ts computed them have none. */
const targetValue = (x: Json) =>
  x.figure
    ? fig(x.figure, 3)
    : x.target.includes("%")
      ? `${num(x.value * 100, 1)}%`
      : x.area === "latency"
        ? `${num(x.value)} ms`
        : `${num(x.value, 1)} s`;
const targetRows: string[] = (e.targets ?? []).map(
  (x: Json) =>
    `| ${x.area} | ${x.measure} | ${targetValue(x)} | ${x.target} | ${x.ok === null ? "n/a" : verdict(x.ok)} | ${x.note ?? ""} |`,
);

const md = [
  "# Benchmarks",
  "",
  "Written by `make bench` (bench/run.ts); do not edit by hand. Raw figures: docs/benchmarks.json;",
  "what they mean for a deployment: docs/scaling.md; where `reluwatch consume` spends its CPU (the top",
  "self-time functions of `make profile`, before and after each change to the hot path): docs/profile.md.",
  "",
  `- date: ${results.date}`,
  `- commit: ${commit}`,
  `- command: \`${results.command}\` (${Object.entries(results.env)
    .map(([k, v]) => `${k}=${v}`)
    .join(", ")})`,
  `- machine: ${results.machine.cpu}, ${results.machine.cores} cores, ${results.machine.memory_gb} GB, ${results.machine.platform}; Node ${results.machine.node}`,
  `- 1-minute load average before/after: core ${core.load1.join("/")}, probe ${probe.load1.join("/")}, end to end ${e2e.load1.join("/")} (the machine is shared: absolute rates drift with it, ratios measured in the same round much less)`,
  `- broker: a private single-node Kafka (deploy/kafka-local) on ${e.brokers.join(",")}; topic of ${num(e.fill.snapshots)} snapshots (${e.scenario.ranks} ranks × ${e.scenario.layers} layers × ${e.scenario.units} units, counts payload, ${num(e.fill.bytes_per_snapshot)} bytes of Avro each, ${e.scenario.compression}), ${e.scenario.partitions} partitions, filled by \`reluwatch simulate\`'s runSimulate`,
  "",
  ...(targetRows.length > 0
    ? [
        "## Targets",
        "",
        "| area | measure | value | target | | |",
        "| --- | --- | --- | --- | --- | --- |",
        ...targetRows,
        "",
        "## All figures",
        "",
      ]
    : []),
  "Figures are median (min–max, n runs). Rates run from the moment the consumer joined its group to",
  "its last message, in a process of its own; consumers run one after the other in each round, on the",
  "same topic, so a ratio compares runs of one round. The service runs once per `kafka_client`; the client",
  "it used is the one its own `consuming` log line names (a build without the setting logs none: kafkajs),",
  "and its ratio to a fetch-only ceiling is to the ceiling of that client. The throughput targets take the",
  "service in the steady state (the second half of the topic: past every unit's first verdict, an event",
  "each, which a live service is long past) against the ceiling's whole-topic rate; each service group is",
  "new and starts from the earliest offset (start_from=earliest), so it processes the topic live.",
  "Latency is from the publish() call of a layer's rank-0 snapshot, in a load generator process of its",
  `own, to the first /metrics scrape (every ${s.scrape_interval_ms} ms) whose reluwatch_layer_step shows that step, so it`,
  "includes the publisher's linger and up to one scrape interval. The soak is cut into windows",
  `of ${num(s.window_s ?? s.seconds / s.windows.length)} s, each giving a p50 and p99, a memory sample after a full GC, and what the generator (4 publishers)`,
  `published and had acknowledged against its target; the first ${num(s.warmup_s ?? s.seconds / s.windows.length)} s are warm-up (the first verdicts of every unit: one`,
  "transition event each), reported apart. Memory growth is the rise of a least-squares line through the",
  "samples after warm-up, from the first window to the last, over its value at the first.",
  `The soak has a broker of its own${s.brokers ? ` (${s.brokers.join(",")})` : ""}, its log on ${s.broker_log ?? "disk"}: make bench puts it in`,
  "memory (tmpfs; bench/soak-broker.properties) because a broker writing the soak's 150 MB/s to this",
  "machine's disk answered seconds late now and then, and the service waited on it (docs/profile.md,",
  '"The broker\'s disk", has soaks on disk beside soaks in memory). A deployed broker has disks and cores',
  "of its own.",
  "Steady state: the second half of the topic, past every unit's first verdict.",
  "Scale-out: a topic of its own (zstd), sized from this run's one-instance rate so that two instances",
  "consume together for a while (at least 30 s to count); one instance reads its first half, then two in",
  "one group all of it. The time both consumed runs from the later instance's first message to the earlier one's last;",
  "the ratio is the two instances' rate in that time over one instance's steady rate on the same topic.",
  "CPU is user+sys seconds of each process (the broker's from /proc).",
  "",
  `On ${results.machine.cores} cores the broker (a JVM), the consumer(s) and, in the soak, the load generator share the`,
  "CPUs with whatever else runs on the machine (see the load averages). Whether two instances can double",
  "one instance's rate here depends on how much of a core one instance keeps busy and what the broker",
  "takes: the scale-out rows give the CPU seconds of every process.",
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
