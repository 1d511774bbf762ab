/**
 * The soak's load generator, in a process of its own so that its CPU (encoding
 * and compressing every snapshot) is neither the bench process's nor hidden in
 * it: forked by bench/e2e.ts with its configuration in BENCH_GENERATOR (JSON).
 *
 * It publishes the bench workload (bench/lib/scenario.ts) through
 * SnapshotPublishers at `rate` snapshots/s, step after step, until told to stop.
 * Over IPC it sends:
 *   {type:"started"}
 *   {type:"marks", marks:[[layer, step, publish ms], ...]}  rank 0's snapshots, every 100 ms,
 *       so the bench can time each step's way to /metrics
 *   {type:"window", ...GeneratorWindow}  answering {type:"window"}: what was offered and
 *       acknowledged since the previous answer, against the target for that time
 *   {type:"done", stats}  after {type:"stop"}: the publisher's final counters
 */
import type { ActivationSnapshot } from "../../src/core/snapshot.js";
import {
  type PublisherCompression,
  type PublisherStats,
  SnapshotPublisher,
} from "../../src/publisher/snapshot-publisher.js";
import { generateFleet } from "../../src/sim/index.js";
import { benchScenario, INTERVAL } from "./scenario.js";

export interface GeneratorConfig {
  brokers: string[];
  topic: string;
  /** Snapshots per second. */
  rate: number;
  compression: PublisherCompression;
}

export interface GeneratorWindow {
  type: "window";
  at_ms: number;
  seconds: number;
  /** rate × seconds: what should have been published in the window. */
  target: number;
  /** publish() calls made in the window. */
  offered: number;
  /** Snapshots the broker acknowledged in the window. */
  sent: number;
  /** Accepted but not yet acknowledged at the window's end. */
  backlog: number;
  /** CPU seconds the generator used in the window (user + system, all threads). */
  cpu_s: number;
}

const config = JSON.parse(process.env.BENCH_GENERATOR ?? "{}") as GeneratorConfig;
const send = (m: object) => process.send?.(m);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const template: ActivationSnapshot[] = [...generateFleet(benchScenario(1))];
/**
 * A SnapshotPublisher has one produce request in flight at a time, which caps one publisher near the
 * rates the soak needs; several, each owning a share of the layers, send in parallel while every
 * layer's steps still leave in order (a layer's snapshots share a key, so a partition).
 */
const PUBLISHERS = 4;
const publishers = Array.from(
  { length: PUBLISHERS },
  () =>
    new SnapshotPublisher({
      brokers: config.brokers,
      topic: config.topic,
      queue_capacity: 100_000,
      compression: config.compression,
    }),
);
const layers = [...new Set(template.map((t) => t.layer))];
const publisherOf = new Map(layers.map((layer, i) => [layer, publishers[i % PUBLISHERS]!]));
await Promise.all(publishers.map((p) => p.connect()));
/** The publishers' counters summed. */
function totals(stats: PublisherStats[]): PublisherStats {
  const sum = { ...stats[0]! };
  for (const st of stats.slice(1)) {
    for (const k of Object.keys(sum) as Array<keyof PublisherStats>) sum[k] += st[k];
  }
  return sum;
}

let stopping = false;
let published = 0;
let marks: Array<[string, number, number]> = [];
const start = Date.now();
let last = { at_ms: start, offered: 0, sent: 0, cpu: process.cpuUsage() };

process.on("message", (m: { type: string }) => {
  if (m.type === "window") {
    const now = Date.now();
    const stats = totals(publishers.map((p) => p.stats()));
    const cpu = process.cpuUsage();
    const seconds = (now - last.at_ms) / 1000;
    const w: GeneratorWindow = {
      type: "window",
      at_ms: now,
      seconds,
      target: config.rate * seconds,
      offered: published - last.offered,
      sent: stats.sent - last.sent,
      backlog: stats.accepted - stats.sent - stats.dropped - stats.failed,
      cpu_s: (cpu.user - last.cpu.user + cpu.system - last.cpu.system) / 1e6,
    };
    last = { at_ms: now, offered: published, sent: stats.sent, cpu };
    send(w);
  } else if (m.type === "stop") {
    stopping = true;
  }
});

const flushMarks = setInterval(() => {
  if (marks.length === 0) return;
  send({ type: "marks", marks });
  marks = [];
}, 100);

send({ type: "started" });
while (!stopping) {
  // Paced by the clock, not by sleeps: a late wake-up publishes what is due, so the rate holds on average.
  // At most a slice at a time, so that the sender's I/O and the IPC requests get their turn when behind.
  const due = Math.min(published + 200, Math.floor(((Date.now() - start) / 1000) * config.rate));
  while (published < due && !stopping) {
    const t = template[published % template.length]!;
    const step = Math.floor(published / template.length) * INTERVAL + INTERVAL;
    const at = Date.now();
    if (t.rank === 0) marks.push([t.layer, step, at]);
    await publisherOf.get(t.layer)!.publish({ ...t, step, time: at });
    published++;
  }
  await (published < Math.floor(((Date.now() - start) / 1000) * config.rate)
    ? new Promise<void>((r) => setImmediate(r))
    : sleep(10));
}
clearInterval(flushMarks);
if (marks.length > 0) send({ type: "marks", marks });
// A backlog left when the soak ends is not waited out for long: what it would add is past the windows.
const stats = totals(await Promise.all(publishers.map((p) => p.close({ timeout_ms: 15_000 }))));
send({ type: "done", stats });
// A publisher that gave up on unsent snapshots can leave a broker connection open; the counters are out.
setTimeout(() => process.exit(0), 200);
