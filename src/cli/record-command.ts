/**
 * `reluwatch record`: copies a topic's snapshots (all of them, or an offset or
 * time range) into an Avro container file, for a bug report or offline replay.
 * It records what the topic holds when it starts: each partition up to its
 * high watermark at that moment, so it always ends. A broker that is still
 * starting or a topic not created yet is waited for, but only for a while
 * (`--wait-ms`): a one-shot command that hangs helps nobody.
 */
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { type Command, InvalidArgumentError } from "commander";
import kafkajs from "kafkajs";
import { CodecError, decodeSnapshot, writeSnapshotContainer } from "../codec/index.js";
import { addOptionFlags, type KafkaSettings, loadSettingsOrExit } from "../config/index.js";
import type { ActivationSnapshot } from "../core/snapshot.js";
import { createLogger } from "../log.js";
import { createKafka } from "../source/kafka-client.js";
import { waitForTopic } from "../source/topic-wait.js";
import { exitOnFatal } from "./fatal.js";
import { type Progress, progressBar } from "./progress.js";

const { logLevel } = kafkajs;

export interface RecordOptions {
  /** The connection: brokers, TLS, SASL (the `kafka` settings, as consume takes them). */
  kafka: KafkaSettings;
  topic: string;
  out: string;
  /** First offset to copy in every partition (inclusive). Default: the earliest retained. */
  fromOffset?: number;
  /** Offset to stop before in every partition (exclusive). Default: the high watermark at start. */
  toOffset?: number;
  /** Copy only messages with a Kafka timestamp >= since (ms since the epoch). */
  since?: number;
  /** Copy only messages with a Kafka timestamp < until (ms since the epoch). */
  until?: number;
  /** Stop after this many snapshots. */
  max?: number;
  /** A message that does not decode: skipped and counted (default), or the end of the recording. */
  onInvalid?: "skip" | "fail";
  /** How long to wait for the brokers and the topic before giving up; 0 tries once. */
  waitMs?: number;
  progress?: Progress;
}

export interface RecordSummary {
  topic: string;
  out: string;
  records: number;
  /** Messages that did not decode as snapshots, by error code. */
  skipped: Record<string, number>;
  /** Offsets copied per partition: [first, end). */
  ranges: Record<number, [number, number]>;
}

/** A bounded hand-off from the consumer's callback to the file writer. */
class Channel<T> {
  private buffer: T[] = [];
  private closed = false;
  private failure: unknown;
  private wake: (() => void) | undefined;
  private roomWake: (() => void) | undefined;
  constructor(private readonly limit: number) {}

  async push(item: T): Promise<void> {
    while (this.buffer.length >= this.limit && !this.closed) {
      await new Promise<void>((r) => {
        this.roomWake = r;
      });
    }
    this.buffer.push(item);
    this.wake?.();
  }

  close(err?: unknown): void {
    this.closed = true;
    this.failure = err;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      if (this.buffer.length > 0) {
        const batch = this.buffer;
        this.buffer = [];
        this.roomWake?.();
        yield* batch;
        continue;
      }
      if (this.closed) {
        if (this.failure) throw this.failure;
        return;
      }
      await new Promise<void>((r) => {
        this.wake = r;
      });
    }
  }
}

/** Default of `--wait-ms`: long enough for a broker restart, short enough for a command run by hand. */
export const RECORD_WAIT_MS = 30_000;

export async function recordTopic(opts: RecordOptions): Promise<RecordSummary> {
  const log = createLogger("record");
  await waitForTopic(opts.kafka, { topic: opts.topic, timeoutMs: opts.waitMs ?? RECORD_WAIT_MS, log });
  // Failures reach the user as the command's one error line; kafkajs's own retry logs would bury it.
  const kafka = createKafka(opts.kafka, undefined, { logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const ranges: Record<number, [number, number]> = {};
  try {
    const watermarks = await admin.fetchTopicOffsets(opts.topic);
    const byTime =
      opts.since !== undefined ? await admin.fetchTopicOffsetsByTimestamp(opts.topic, opts.since) : undefined;
    for (const w of watermarks) {
      const low = Number(w.low);
      const high = Number(w.high);
      let start = Math.max(low, opts.fromOffset ?? low);
      const timed = byTime?.find((b) => b.partition === w.partition);
      // Kafka answers -1 (or the high watermark) when no message is that recent.
      if (timed) start = Math.max(start, Number(timed.offset) < 0 ? high : Number(timed.offset));
      const end = Math.min(high, opts.toOffset ?? high);
      ranges[w.partition] = [start, Math.max(start, end)];
    }
  } finally {
    await admin.disconnect();
  }

  const summary: RecordSummary = { topic: opts.topic, out: opts.out, records: 0, skipped: {}, ranges };
  const pending = new Set(
    Object.entries(ranges)
      .filter(([, [start, end]]) => end > start)
      .map(([p]) => Number(p)),
  );
  const channel = new Channel<ActivationSnapshot>(1_000);
  const writing = writeSnapshotContainer(opts.out, channel, {
    metadata: { "reluwatch.recorded_from": opts.topic },
  });
  if (pending.size === 0) {
    channel.close();
    await writing;
    return summary;
  }

  const consumer = kafka.consumer({ groupId: `reluwatch-record-${randomUUID()}` });
  const finished = new Promise<void>((resolve, reject) => {
    const done = (err?: unknown) => {
      channel.close(err);
      if (err) reject(err);
      else resolve();
    };
    const run = async () => {
      await consumer.connect();
      await consumer.subscribe({ topic: opts.topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          if (!pending.has(partition)) return;
          const [start, end] = ranges[partition]!;
          const offset = Number(message.offset);
          if (offset < start) return;
          if (offset >= end) {
            pending.delete(partition);
            if (pending.size === 0) done();
            return;
          }
          const ts = Number(message.timestamp);
          const inTime =
            (opts.since === undefined || ts >= opts.since) && (opts.until === undefined || ts < opts.until);
          if (inTime && message.value && (opts.max === undefined || summary.records < opts.max)) {
            try {
              await channel.push(decodeSnapshot(message.value));
              summary.records++;
              opts.progress?.tick();
            } catch (err) {
              if (!(err instanceof CodecError) || opts.onInvalid === "fail") {
                done(err);
                return;
              }
              summary.skipped[err.code] = (summary.skipped[err.code] ?? 0) + 1;
              log.warn(
                { partition, offset, code: err.code, err: err.message },
                "skipping a message that is not a valid snapshot",
              );
            }
          }
          if (offset + 1 >= end || (opts.max !== undefined && summary.records >= opts.max)) {
            pending.delete(partition);
            if (pending.size === 0 || (opts.max !== undefined && summary.records >= opts.max)) done();
          }
        },
      });
      for (const p of pending)
        consumer.seek({ topic: opts.topic, partition: p, offset: String(ranges[p]![0]) });
    };
    run().catch(done);
  });
  try {
    await finished;
  } catch (err) {
    // The writer fails with the same error; a half-written recording is worse than none.
    await writing.catch(() => undefined);
    await rm(opts.out, { force: true });
    throw err;
  } finally {
    await consumer.disconnect();
    channel.close();
  }
  await writing;
  opts.progress?.stop();
  return summary;
}

function offsetArg(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError("must be an offset >= 0");
  return n;
}

function millisArg(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError("must be milliseconds >= 0");
  return n;
}

/** ISO 8601 or milliseconds since the epoch. */
export function timeArg(v: string): number {
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n))
    throw new InvalidArgumentError(`"${v}" is neither an ISO time nor epoch milliseconds`);
  return n;
}

const RECORD_GROUPS = ["kafka", "input"] as const;

export function registerRecordCommand(program: Command): void {
  const command = program
    .command("record")
    .description("copy a topic's snapshots (or an offset or time range) to an Avro container file")
    .requiredOption("--topic <topic>", "the snapshot topic")
    .requiredOption("--out <file>", "container file to write (deflate)")
    .option("--from-offset <n>", "first offset in every partition (inclusive)", offsetArg)
    .option("--to-offset <n>", "stop before this offset in every partition", offsetArg)
    .option(
      "--since <time>",
      "only messages with a Kafka timestamp at or after this (ISO or epoch ms)",
      timeArg,
    )
    .option("--until <time>", "only messages with a Kafka timestamp before this (ISO or epoch ms)", timeArg)
    .option("--max <n>", "stop after this many snapshots", offsetArg)
    .option("--strict", "the same as --on-invalid fail")
    .option(
      "--wait-ms <ms>",
      "how long to wait for the brokers and the topic before giving up (0: try once)",
      millisArg,
      RECORD_WAIT_MS,
    );
  addOptionFlags(command, RECORD_GROUPS);
  command.action(
    async (
      flags: Omit<RecordOptions, "kafka" | "onInvalid"> & { strict?: boolean } & Record<string, unknown>,
    ) => {
      const settings = loadSettingsOrExit(flags, [...RECORD_GROUPS]);
      const onInvalid = flags.strict ? "fail" : (settings.on_invalid ?? "skip");
      if (onInvalid === "dead_letter") {
        process.stderr.write(
          "reluwatch: invalid setting on_invalid: record has no dead-letter topic; use skip or fail\n",
        );
        process.exit(2);
      }
      const { brokers } = settings.kafka;
      const summary = await recordTopic({
        topic: flags.topic,
        out: flags.out,
        ...(flags.fromOffset !== undefined ? { fromOffset: flags.fromOffset } : {}),
        ...(flags.toOffset !== undefined ? { toOffset: flags.toOffset } : {}),
        ...(flags.since !== undefined ? { since: flags.since } : {}),
        ...(flags.until !== undefined ? { until: flags.until } : {}),
        ...(flags.max !== undefined ? { max: flags.max } : {}),
        ...(flags.waitMs !== undefined ? { waitMs: flags.waitMs } : {}),
        kafka: settings.kafka,
        onInvalid,
        progress: progressBar("record", undefined),
      }).catch((err: unknown) => exitOnFatal("record", err, { brokers, topic: flags.topic }));
      process.stderr.write(`${JSON.stringify(summary)}\n`);
    },
  );
}
