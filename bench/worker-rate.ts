/**
 * One consumer of `make bench`'s throughput round, alone, for comparing two builds without the
 * whole bench: `npx tsx bench/worker-rate.ts MODE TOPIC COUNT [CLIENT]` forks bench/lib/consumer-worker.ts
 * as the round does (MODE: service, kafkajs-fetch, platformatic-fetch, kafkajs-apply,
 * platformatic-apply; the service starts from the earliest offset, on CLIENT, default platformatic)
 * on a filled topic of COUNT records, and prints the same figures the round stores: the rate from
 * the group join to the last record, CPU µs per record over it, and the rate over the topic's
 * second half (from the worker's 100 ms progress samples). WORKER_RATE_BROKERS, default
 * 127.0.0.1:19900, the bench's private broker; WORKER_RATE_FETCH_THREAD=false runs the service
 * with fetch_thread off.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { WorkerConfig, WorkerDone } from "./lib/consumer-worker.js";

/** What the worker sends every 100 ms. */
interface WorkerProgress {
  type: "progress";
  at_ms: number;
  count: number;
  cpu_s: number;
}

const [mode, topic, countArg, client = "platformatic"] = process.argv.slice(2);
if (!mode || !topic || !countArg) {
  process.stderr.write("usage: npx tsx bench/worker-rate.ts MODE TOPIC COUNT [CLIENT]\n");
  process.exit(2);
}
const expected = Number(countArg);
const config = {
  mode,
  brokers: (process.env.WORKER_RATE_BROKERS ?? "127.0.0.1:19900").split(","),
  topic,
  group: `worker-rate-${Date.now().toString(36)}`,
  expected,
  ...(mode === "service" ? { startFrom: "earliest", kafkaClient: client } : {}),
  ...(mode === "service" && process.env.WORKER_RATE_FETCH_THREAD
    ? { fetchThread: process.env.WORKER_RATE_FETCH_THREAD !== "false" }
    : {}),
} as WorkerConfig;

const worker = fork(fileURLToPath(new URL("./lib/consumer-worker.ts", import.meta.url)), [], {
  execArgv: ["--import", "tsx"],
  env: { ...process.env, BENCH_WORKER: JSON.stringify(config) },
  stdio: ["ignore", "ignore", "ignore", "ipc"],
});
const progress: WorkerProgress[] = [];
worker.on("message", (m: WorkerProgress | WorkerDone | { type: string }) => {
  if (m.type === "progress") progress.push(m as WorkerProgress);
  if (m.type !== "done") return;
  const done = m as WorkerDone;
  const seconds = (done.last_ms - done.first_ms) / 1000;
  const half = progress.find((p) => p.count >= expected / 2);
  const end = progress.find((p) => p.count >= expected) ?? progress.at(-1);
  const steady =
    half && end && end.at_ms > half.at_ms
      ? (end.count - half.count) / ((end.at_ms - half.at_ms) / 1000)
      : Number.NaN;
  const label = mode === "service" ? `${mode} (${client})` : mode;
  process.stdout.write(
    `${label}: ${(done.count / seconds).toFixed(0)} records/s, ${((done.cpu_s * 1e6) / done.count).toFixed(0)} CPU µs/record, second half ${steady.toFixed(0)} records/s\n`,
  );
  worker.send({ type: "stop" });
});
worker.on("exit", (code) => {
  if (code) process.exitCode = code;
});
