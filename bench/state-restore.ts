/**
 * Restore from the broker: `KAFKA_BROKERS=127.0.0.1:9092 npx tsx bench/state-restore.ts [--quick]`.
 * Builds layers of 1M units with sums (bench/lib/state-layers.ts), checkpoints
 * them through the ChangelogStore into a fresh one-partition state topic (the
 * checkpoint write: encoding and the acks-all writes), then times a restore
 * into a fresh detector: reading the partition (a throwaway group's join
 * included), decoding and Detector.restore. Configurations: 1M units after a
 * short run (12 bucket-closing steps) and after a run 20 times as long (the
 * same state size), 3 × 1M, and 10 × 1M = 10M units (--quick: the first two
 * only). Bytes are the records' keys and values as written (the topic
 * compresses them with zstd on disk). Nothing of the input is read, so the
 * restore follows the state's size, not the run's age: s_per_gb says so.
 * Prints one JSON document.
 */
import { pino } from "pino";
import type { CheckpointRecord } from "../src/codec/index.js";
import { Detector } from "../src/core/index.js";
import {
  type ChangelogReader,
  ChangelogStore,
  type ChangelogWriter,
} from "../src/service/changelog-store.js";
import { KafkaChangelogWriter } from "../src/sink/changelog-writer.js";
import { KafkaChangelogReader } from "../src/source/changelog-reader.js";
import { createKafka } from "../src/source/kafka-client.js";
import { build, STEP, UNITS } from "./lib/state-layers.js";
import { load1, machine } from "./lib/stats.js";

const quick = process.argv.includes("--quick");
const brokers = (process.env.KAFKA_BROKERS ?? "127.0.0.1:9092").split(",");
const log = pino({ level: "warn" });
const kafka = createKafka({ brokers } as Parameters<typeof createKafka>[0]);

const recordBytes = (records: readonly CheckpointRecord[]) =>
  records.reduce((n, r) => n + Buffer.byteLength(r.key) + (r.value?.byteLength ?? 0), 0);

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

async function measure(layers: number, steps: number) {
  const id = `bench-state-restore-${process.pid}-${Date.now()}-${layers}-${steps}`;
  const input = `${id}.snapshots`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic: input, numPartitions: 1 }] });
  const kafkaWriter = new KafkaChangelogWriter(kafka, `${id}.state`);
  await kafkaWriter.ensureTopic(input, log);
  await kafkaWriter.connect();
  let written = 0;
  const writer: ChangelogWriter = {
    write(partition, records) {
      written += recordBytes(records);
      return kafkaWriter.write(partition, records);
    },
  };
  const kafkaReader = new KafkaChangelogReader(kafka, { topic: `${id}.state`, group: id, log });
  let read = 0;
  const reader: ChangelogReader = {
    async read(partitions) {
      const out = await kafkaReader.read(partitions);
      for (const records of out.values()) read += recordBytes(records);
      return out;
    },
  };
  const t0 = process.hrtime.bigint();
  let source: Detector | undefined = build(layers, true, steps);
  const buildS = seconds(t0);
  const ids = source.layerIds();
  const summaries = JSON.stringify(source.summaries());
  const t1 = process.hrtime.bigint();
  await new ChangelogStore(source, reader, writer, { intervalMs: 0, log }).checkpoint(0, 1n, ids, true);
  const write = seconds(t1);
  await kafkaWriter.disconnect();
  // Only one detector of 10M units in memory at a time.
  source = undefined;
  const fresh = new Detector();
  const t2 = process.hrtime.bigint();
  const restored = await new ChangelogStore(fresh, reader, writer, { intervalMs: 0, log }).restore([0]);
  const restore = seconds(t2);
  if (restored.get(0) !== 1n || fresh.layerIds().length !== layers) throw new Error("restore incomplete");
  if (JSON.stringify(fresh.summaries()) !== summaries) throw new Error("restored summaries differ");
  await admin.deleteTopics({ topics: [input, `${id}.state`] });
  await admin.disconnect();
  return {
    layers,
    units: layers * UNITS,
    sums: true,
    run_steps: (steps - 1) * STEP,
    build_s: buildS,
    state_bytes: written,
    state_bytes_read: read,
    write_s: write,
    restore_s: restore,
    restore_s_per_gb: restore / (read / 1e9),
  };
}

const before = load1();
const configs: [layers: number, steps: number][] = quick
  ? [
      [1, 12],
      [1, 240],
    ]
  : [
      [1, 12],
      [1, 240],
      [3, 12],
      [10, 12],
    ];
const results = [];
for (const [layers, steps] of configs) results.push(await measure(layers, steps));
console.log(
  JSON.stringify(
    {
      command: `KAFKA_BROKERS=... npx tsx bench/state-restore.ts${quick ? " --quick" : ""}`,
      machine: machine(),
      load1: [before, load1()],
      results,
    },
    null,
    2,
  ),
);
