/**
 * Restore from the broker: `KAFKA_BROKERS=127.0.0.1:9092 npx tsx bench/state-restore.ts`.
 * For 1 and 3 layers of 1M units (no sums), checkpoints them through the
 * ChangelogStore into a fresh one-partition state topic, then times a restore
 * into a fresh detector: reading the partition (a throwaway group's join
 * included), decoding and Detector.restore. Nothing of the input is read, so
 * the time depends on the state's size, not on how long the run has been
 * going. Prints one JSON document.
 */
import { pino } from "pino";
import { Detector } from "../src/core/index.js";
import { ChangelogStore } from "../src/service/changelog-store.js";
import { KafkaChangelogWriter } from "../src/sink/changelog-writer.js";
import { KafkaChangelogReader } from "../src/source/changelog-reader.js";
import { createKafka } from "../src/source/kafka-client.js";
import { build, UNITS } from "./lib/state-layers.js";
import { load1, machine } from "./lib/stats.js";

const brokers = (process.env.KAFKA_BROKERS ?? "127.0.0.1:9092").split(",");
const log = pino({ level: "warn" });
const kafka = createKafka({ brokers } as Parameters<typeof createKafka>[0]);

async function measure(layers: number) {
  const id = `bench-state-restore-${process.pid}-${Date.now()}-${layers}`;
  const input = `${id}.snapshots`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic: input, numPartitions: 1 }] });
  const writer = new KafkaChangelogWriter(kafka, `${id}.state`);
  await writer.ensureTopic(input, log);
  await writer.connect();
  const reader = new KafkaChangelogReader(kafka, { topic: `${id}.state`, group: id, log });
  const source = build(layers, false);
  const ids = source.layerIds();
  const t0 = process.hrtime.bigint();
  await new ChangelogStore(source, reader, writer, { intervalMs: 0, log }).checkpoint(0, 1n, ids, true);
  const write = Number(process.hrtime.bigint() - t0) / 1e9;
  await writer.disconnect();
  const fresh = new Detector();
  const t1 = process.hrtime.bigint();
  const restored = await new ChangelogStore(fresh, reader, writer, { intervalMs: 0, log }).restore([0]);
  const restore = Number(process.hrtime.bigint() - t1) / 1e9;
  if (restored.get(0) !== 1n || fresh.layerIds().length !== layers) throw new Error("restore incomplete");
  await admin.deleteTopics({ topics: [input, `${id}.state`] });
  await admin.disconnect();
  return { layers, units: layers * UNITS, write_s: write, restore_s: restore };
}

const before = load1();
const results = [];
for (const layers of [1, 3]) results.push(await measure(layers));
console.log(JSON.stringify({ machine: machine(), load1: [before, load1()], results }, null, 2));
