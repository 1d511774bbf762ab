/**
 * Where `reluwatch consume` spends its CPU per snapshot: `make profile`, or
 * `npx tsx bench/profile.ts` with PROFILE_BROKERS (default 127.0.0.1:19960, a
 * private broker: `KAFKA_PORT=19960 bash deploy/kafka-local/kafka.sh up`).
 *
 *   fill     `reluwatch simulate` fills an 8-partition topic as bench/e2e.ts does
 *            (8 ranks, 48 layers, 4096 units, counts payload, gzip), PROFILE_STEPS
 *            snapshot steps of 384 snapshots (default 40). PROFILE_TOPIC=<name> reuses a
 *            filled topic instead (its record count is read from the broker).
 *   consume  `node --cpu-prof src/cli/main.ts consume` on the topic under a fresh group,
 *            from the earliest offset (it processes the topic live, as the bench's service
 *            rounds do); the group's committed offsets are polled from here (nothing is
 *            scraped from the service, so the poll costs it nothing), and once they reach
 *            the end the service gets SIGTERM and writes its profile. It commits every
 *            100 ms instead of every second, so that those offsets follow its progress
 *            closely enough to bound a window of a few seconds. Each thread writes its own
 *            profile: the main thread's, and the fetch thread's (fetch_thread) printed after it.
 *   loop     a child under --cpu-prof that first fetches the whole topic with kafkajs
 *            into memory (the client alone: its fetch-only rate), then runs the service's
 *            per-record work over those very buffers: SnapshotProcessor.process and
 *            Telemetry.record, no Kafka; PROFILE_LOOP_PASSES times (default 3), each on a
 *            fresh detector.
 *
 * Each profile is cut to its measured window (the samples between the first and
 * the last count; V8's profile clock is the monotonic clock process.hrtime
 * reads), so start-up, group join and shutdown are not in the shares. For each
 * window it prints snapshots/s, CPU µs per snapshot (user + system time of the
 * process over the window, every thread: on a busy machine the rate drops but
 * this barely moves), the top PROFILE_TOP (default 15) functions by
 * self time (samples summed per function name + url + line; tsx compiles a
 * module to one line, so src/ functions show line 1) and the share of
 * each code area (kafkajs, avsc, src/codec, src/core, ..., GC). The profiles and
 * a summary.json stay in bench/results/profile/<stamp>/.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { Kafka, logLevel } from "kafkajs";
import { runSimulate } from "../src/cli/simulate-command.js";
import { loadSettings } from "../src/config/index.js";
import { Detector } from "../src/core/index.js";
import { createLogger } from "../src/log.js";
import { SnapshotProcessor } from "../src/service/snapshot-processor.js";
import { Telemetry } from "../src/service/telemetry.js";
import { resolveScenario } from "../src/sim/index.js";
import { Exporter } from "../src/sink/prometheus.js";
import type { SourceRecord } from "../src/source/source.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const brokers = (process.env.PROFILE_BROKERS ?? "127.0.0.1:19960").split(",");
const STEPS = Number(process.env.PROFILE_STEPS ?? 40);
const TOP = Number(process.env.PROFILE_TOP ?? 15);
const LOOP_PASSES = Number(process.env.PROFILE_LOOP_PASSES ?? 3);
const PARTITIONS = 8;
const log = (m: string) => process.stderr.write(`[profile ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const hrMicros = () => Number(process.hrtime.bigint() / 1000n);

// ---- the .cpuprofile format (the parts read here) ----

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: CallFrame }>;
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionShare {
  name: string;
  where: string;
  area: string;
  samples: number;
  share: number;
}
export interface ProfileSummary {
  samples: number;
  /** The window was inside the profile; false: the whole profile was used. */
  windowed: boolean;
  top: FunctionShare[];
  areas: Array<{ area: string; samples: number; share: number }>;
}

/** The code area a frame belongs to, by its url: a dependency, a src/ folder, Node.js, or V8's own buckets. */
function areaOf(frame: CallFrame): string {
  const url = frame.url;
  if (url === "") {
    if (frame.functionName === "(garbage collector)") return "GC";
    if (frame.functionName === "(idle)") return "idle";
    if (frame.functionName === "(program)") return "V8 (program)";
    return "native/builtin";
  }
  const dep = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (dep) return dep[1]!;
  if (url.startsWith("node:")) return "node:*";
  const src = /\/(src\/[^/]+)\//.exec(url);
  if (src) return src[1]!;
  if (url.includes("/bench/")) return "bench";
  return "other";
}

function whereOf(frame: CallFrame): string {
  if (frame.url === "") return "";
  const path = frame.url.startsWith("file://") ? relative(ROOT, fileURLToPath(frame.url)) : frame.url;
  return `${path}:${frame.lineNumber + 1}`;
}

/** Self samples per function (name + url + line) within [fromUs, toUs] of the monotonic clock. */
export function summarize(profile: CpuProfile, fromUs: number, toUs: number, top: number): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const windowed = fromUs >= profile.startTime && toUs <= profile.endTime && fromUs < toUs;
  const counts = new Map<string, { frame: CallFrame; samples: number }>();
  let total = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (windowed && (t < fromUs || t > toUs)) continue;
    const frame = byId.get(profile.samples[i]!)!;
    const key = `${frame.functionName}\u0000${frame.url}\u0000${frame.lineNumber}`;
    const entry = counts.get(key);
    if (entry) entry.samples++;
    else counts.set(key, { frame, samples: 1 });
    total++;
  }
  const entries = [...counts.values()].sort((a, b) => b.samples - a.samples);
  const areas = new Map<string, number>();
  for (const e of entries) areas.set(areaOf(e.frame), (areas.get(areaOf(e.frame)) ?? 0) + e.samples);
  return {
    samples: total,
    windowed,
    top: entries.slice(0, top).map((e) => ({
      name: e.frame.functionName || "(anonymous)",
      where: whereOf(e.frame),
      area: areaOf(e.frame),
      samples: e.samples,
      share: e.samples / total,
    })),
    areas: [...areas.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([area, samples]) => ({ area, samples, share: samples / total })),
  };
}

function printSummary(title: string, rate: number, cpuUs: number, s: ProfileSummary): void {
  const pct = (x: number) => `${(100 * x).toFixed(1).padStart(5)}%`;
  const lines = [
    "",
    `## ${title}: ${rate.toFixed(0)} snapshots/s, ${cpuUs.toFixed(0)} CPU µs/snapshot, ${s.samples} samples${s.windowed ? "" : " (whole profile: the window fell outside it)"}`,
    "",
    "self  function                                   where",
  ];
  for (const f of s.top) lines.push(`${pct(f.share)}  ${f.name.padEnd(42)} ${f.where || `(${f.area})`}`);
  lines.push("", `by area: ${s.areas.map((a) => `${a.area} ${pct(a.share).trim()}`).join(", ")}`);
  process.stdout.write(`${lines.join("\n")}\n`);
}

/** Node.js names a profile CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile; the main thread is 0. */
function threadProfileFile(dir: string, threadId: number): string | undefined {
  return readdirSync(dir).find((f) => f.endsWith(".cpuprofile") && f.split(".")[4] === String(threadId));
}

function hasThreadProfile(dir: string, threadId: number): boolean {
  return threadProfileFile(dir, threadId) !== undefined;
}

function threadProfile(dir: string, threadId: number): CpuProfile {
  const file = threadProfileFile(dir, threadId);
  if (!file) throw new Error(`no profile of thread ${threadId} in ${dir}`);
  return JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile;
}

function newestProfile(dir: string, prefix: string): CpuProfile {
  const file = readdirSync(dir)
    .filter((f) => f.startsWith(prefix) && f.endsWith(".cpuprofile"))
    .sort()
    .at(-1);
  if (!file) throw new Error(`no ${prefix}*.cpuprofile in ${dir}`);
  return JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile;
}

// ---- the loop child: fetch everything with kafkajs, then decode + process it ----

interface LoopConfig {
  topic: string;
  expected: number;
}
interface Window {
  from_us: number;
  to_us: number;
  count: number;
  /** CPU seconds the process spent in the window (all threads: GC and zlib's too). */
  cpu_s: number;
}
interface LoopResult {
  fetch: Window;
  loop: Window;
}

async function fetchAll(
  topic: string,
  expected: number,
): Promise<{ records: SourceRecord[]; from: number; fromCpu: number }> {
  const kafka = new Kafka({ clientId: "profile", brokers, logLevel: logLevel.WARN });
  // The same fetch sizes as the service's source (src/source/kafka-source.ts).
  const consumer = kafka.consumer({
    groupId: `profile-loop-${Date.now().toString(36)}`,
    maxBytesPerPartition: 16 * 1024 * 1024,
    maxBytes: 64 * 1024 * 1024,
  });
  const records: SourceRecord[] = [];
  let from = 0;
  let fromCpu = 0;
  let done: () => void = () => {};
  const all = new Promise<void>((resolve) => {
    done = resolve;
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      if (from === 0) {
        from = hrMicros();
        fromCpu = cpuSeconds();
      }
      for (const m of batch.messages) {
        records.push({
          topic: batch.topic,
          partition: batch.partition,
          offset: m.offset,
          key: m.key,
          value: m.value,
        });
      }
      if (records.length >= expected) done();
    },
  });
  await all;
  await consumer.disconnect();
  return { records, from, fromCpu };
}

/** CPU seconds (user + system, every thread) of this process so far. */
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function loopChild(cfg: LoopConfig): Promise<void> {
  const { records, from, fromCpu } = await fetchAll(cfg.topic, cfg.expected);
  const fetched = hrMicros();
  const fetchCpuS = cpuSeconds() - fromCpu;
  const limits = {
    max_tracked_units: 1 << 30,
    max_layers_per_run: 100_000,
    max_units_per_layer: 1 << 24,
    max_message_bytes: 16 << 20,
  };
  const encoding = { kind: "single-object" } as const;
  const start = hrMicros();
  const passCpu: number[] = [];
  for (let pass = 0; pass < LOOP_PASSES; pass++) {
    // A fresh detector each pass: every pass does what the service does to the topic.
    const detector = new Detector();
    const exporter = new Exporter(detector, { unitSeries: false, unitSeriesMax: 0, processMetrics: false });
    const processor = new SnapshotProcessor(detector, { limits, evictIdleMs: 60_000, clock: "wall" });
    const telemetry = new Telemetry(createLogger("profile", "warn"), exporter);
    const cpu = cpuSeconds();
    const now = Date.now();
    for (const record of records) telemetry.record(processor.process(record, encoding, now).events);
    passCpu.push(cpuSeconds() - cpu);
  }
  const end = hrMicros();
  const result: LoopResult = {
    fetch: { from_us: from, to_us: fetched, count: records.length, cpu_s: fetchCpuS },
    loop: {
      from_us: start,
      to_us: end,
      count: records.length * LOOP_PASSES,
      cpu_s: passCpu.reduce((a, b) => a + b, 0),
    },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// ---- the parent ----

function benchScenario(steps: number) {
  return resolveScenario("healthy", { ranks: 8, layers: 48, units: 4096, steps: steps * 50, interval: 50 });
}

async function fill(admin: ReturnType<Kafka["admin"]>, topic: string): Promise<number> {
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
  });
  log(`filling ${topic}: ${STEPS} steps × 8 ranks × 48 layers of 4096 units`);
  const filled = await runSimulate({
    scenario: benchScenario(STEPS),
    kafka: loadSettings({ flags: { brokers: brokers.join(",") }, env: {}, groups: ["kafka"] }).kafka,
    topic,
    compression: "gzip",
  });
  return filled.snapshots;
}

async function topicSize(admin: ReturnType<Kafka["admin"]>, topic: string): Promise<number> {
  return (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
}

const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

/** CPU seconds (user + system, every thread) another process has used, from /proc (10 ms steps). */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The fields after the command name, which is in parentheses and may hold spaces: utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null ? Promise.resolve(child.exitCode) : once(child, "exit").then(([c]) => c);
}

async function profileConsume(
  admin: ReturnType<Kafka["admin"]>,
  topic: string,
  expected: number,
  dir: string,
) {
  const group = `profile-consume-${Date.now().toString(36)}`;
  const logFile = join(dir, "consume.log");
  // A folder of its own: every thread writes a profile (the fetch thread too), named by thread id.
  const profiles = join(dir, "consume");
  mkdirSync(profiles, { recursive: true });
  const args = [
    "--cpu-prof",
    `--cpu-prof-dir=${profiles}`,
    "--import",
    "tsx",
    join(ROOT, "src/cli/main.ts"),
    "consume",
    "--brokers",
    brokers.join(","),
    "--topic",
    topic,
    "--group",
    group,
    "--events-topic",
    `${topic}.events`,
    "--dead-letter-topic",
    `${topic}.dead-letter`,
    "--metrics-host",
    "127.0.0.1",
    "--metrics-port",
    "0",
    "--start-from",
    "earliest",
    "--commit-interval-ms",
    "100",
  ];
  log(`node ${args.join(" ")}`);
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ["ignore", openSync(logFile, "w"), openSync(logFile, "a")],
    env: { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: "1" },
  });
  const deadline = Date.now() + 600_000;
  let first: { at: number; count: number; cpu: number } | undefined;
  let last = { at: 0, count: 0, cpu: 0 };
  try {
    while (last.count < expected) {
      if (Date.now() > deadline) throw new Error(`consume did not finish in 600 s; see ${logFile}`);
      if (child.exitCode !== null) throw new Error(`consume exited (${child.exitCode}); see ${logFile}`);
      const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      const at = hrMicros();
      const cpu = cpuSecondsOf(child.pid!);
      const count = (offsets?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
      if (count > 0 && first === undefined) first = { at, count, cpu };
      last = { at, count, cpu };
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    child.kill("SIGTERM");
    await exited(child);
  }
  if (!first || last.at <= first.at)
    throw new Error("the whole topic was committed in one poll; raise PROFILE_STEPS");
  const count = last.count - first.count;
  return {
    rate: count / ((last.at - first.at) / 1e6),
    cpu_us_per_snapshot: ((last.cpu - first.cpu) * 1e6) / count,
    summary: summarize(threadProfile(profiles, 0), first.at, last.at, TOP),
    fetch_thread: hasThreadProfile(profiles, 1)
      ? summarize(threadProfile(profiles, 1), first.at, last.at, TOP)
      : undefined,
  };
}

async function profileLoop(topic: string, expected: number, dir: string) {
  const args = ["--cpu-prof", `--cpu-prof-dir=${dir}`, "--cpu-prof-name=loop.cpuprofile", "--import", "tsx"];
  const child = spawn(process.execPath, [...args, fileURLToPath(import.meta.url), "--loop"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", openSync(join(dir, "loop.log"), "w")],
    env: { ...process.env, PROFILE_LOOP: JSON.stringify({ topic, expected } satisfies LoopConfig) },
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const code = await exited(child);
  if (code !== 0) throw new Error(`loop child exited (${code}); see ${join(dir, "loop.log")}`);
  const result = JSON.parse(out.trim().split("\n").at(-1)!) as LoopResult;
  const profile = newestProfile(dir, "loop");
  const measured = (w: Window) => ({
    rate: w.count / ((w.to_us - w.from_us) / 1e6),
    cpu_us_per_snapshot: (w.cpu_s * 1e6) / w.count,
    summary: summarize(profile, w.from_us, w.to_us, TOP),
  });
  return { fetch: measured(result.fetch), loop: measured(result.loop) };
}

async function main(): Promise<void> {
  const stamp = Date.now().toString(36);
  const dir = join(ROOT, "bench", "results", "profile", stamp);
  mkdirSync(dir, { recursive: true });
  const kafka = new Kafka({ clientId: "profile", brokers, logLevel: logLevel.WARN });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topic = process.env.PROFILE_TOPIC ?? `bench.profile.${stamp}`;
    const expected = process.env.PROFILE_TOPIC ? await topicSize(admin, topic) : await fill(admin, topic);
    log(`${expected} snapshots on ${topic}; profiles in ${relative(ROOT, dir)}`);
    const consume = await profileConsume(admin, topic, expected, dir);
    printSummary("reluwatch consume", consume.rate, consume.cpu_us_per_snapshot, consume.summary);
    if (consume.fetch_thread)
      printSummary(
        "reluwatch consume, its fetch thread (rate and CPU: the whole process)",
        consume.rate,
        consume.cpu_us_per_snapshot,
        consume.fetch_thread,
      );
    const { fetch, loop } = await profileLoop(topic, expected, dir);
    printSummary(
      "kafkajs fetch only (the loop's preload)",
      fetch.rate,
      fetch.cpu_us_per_snapshot,
      fetch.summary,
    );
    printSummary(
      `decode + process loop over the fetched buffers (no Kafka), ${LOOP_PASSES} passes`,
      loop.rate,
      loop.cpu_us_per_snapshot,
      loop.summary,
    );
    const summary = { topic, snapshots: expected, node: process.version, consume, fetch, loop };
    writeFileSync(join(dir, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
  } finally {
    await admin.disconnect();
  }
}

if (process.argv.includes("--loop"))
  await loopChild(JSON.parse(process.env.PROFILE_LOOP ?? "{}") as LoopConfig);
else await main();
