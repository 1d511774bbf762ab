/**
 * Bad input against a real broker: every kind of poison message, a message
 * larger than max_message_bytes and a flood of 100,000 layer names, mixed into
 * the partitions of a healthy run. Each bad message must be counted by reason
 * and copied byte for byte to the dead-letter topic, the service must stay
 * ready, and the healthy run's numbers must equal the offline detector's.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { CompressionTypes, type Message, type Producer } from "kafkajs";
import { encodeSnapshot } from "../../src/codec/index.js";
import { defaultSnapshotCodec, snapshotToAvro } from "../../src/codec/snapshot-codec.js";
import { CONSUME_GROUPS, KAFKA_CLIENTS, loadSettings } from "../../src/config/index.js";
import { type ActivationSnapshot, layerKey } from "../../src/core/index.js";
import { createLogger } from "../../src/log.js";
import { type ConsumerService, startConsumerService } from "../../src/service/consumer-service.js";
import { DEAD_LETTER_HEADERS } from "../../src/sink/kafka-sinks.js";
import { createTopic, getBroker, kafkaClient, type TestBroker, uniqueTopic } from "../support/broker.js";
import { waitFor } from "../support/consumer-process.js";
import { referenceDetector, scenarioSnapshots } from "../support/fleet.js";
import { scrape, sumOf } from "../support/metrics.js";
import { assertLayersMatch, readTopic, waitForCommittedToEnd } from "../support/topics.js";

const FLOOD_LAYERS = 100_000;
const MAX_LAYERS_PER_RUN = 100;
const FLOOD_BATCH = 10_000;
const FLOOD_RUN = "flood";

interface Poison {
  name: string;
  reason: string;
  key: string;
  value: Buffer;
}

/** Encodes without validating, to put on the wire what a buggy publisher would. */
function encodeUnchecked(s: ActivationSnapshot): Buffer {
  return defaultSnapshotCodec.objectType.encode(snapshotToAvro(s));
}

function poisonMessages(template: ActivationSnapshot): Poison[] {
  const key = layerKey(template.run_id, template.layer);
  const good = encodeSnapshot(template);
  const random = randomBytes(300);
  if (random[0] === 0xc3) random[0] = 0; // random, but never a single-object marker by chance
  const wrongMagic = Buffer.from(good);
  wrongMagic[1] = 0x02;
  const unknownFingerprint = Buffer.from(good);
  unknownFingerprint[2] = unknownFingerprint[2]! ^ 0xff;
  const fires = template.stats.kind === "counts" ? template.stats.fires : new Uint32Array(0);
  const tooManyFires = Uint32Array.from(fires);
  tooManyFires[0] = template.samples + 1;
  const units = 1024;
  const samples = 1280; // 1280 × 1024 float32 = 5 MiB of raw activations
  const large = encodeSnapshot({
    ...template,
    layer: "large",
    unit_offset: 0,
    unit_count: units,
    layer_units: units,
    samples,
    stats: { kind: "raw", dtype: "FLOAT32", values: Buffer.alloc(units * samples * 4, 1) },
  });
  assert.ok(large.length > 5 * 1024 * 1024);
  return [
    { name: "random bytes", reason: "bad_magic", key, value: random },
    { name: "truncated body", reason: "truncated", key, value: good.subarray(0, good.length - 7) },
    { name: "truncated header", reason: "truncated", key, value: good.subarray(0, 6) },
    { name: "wrong magic", reason: "bad_magic", key, value: wrongMagic },
    { name: "unknown fingerprint", reason: "unknown_fingerprint", key, value: unknownFingerprint },
    {
      name: "fires length disagrees with unit_count",
      reason: "length_mismatch",
      key,
      value: encodeUnchecked({
        ...template,
        unit_count: template.unit_count + 1,
        layer_units: template.layer_units + 1,
      }),
    },
    {
      name: "fires > samples",
      reason: "fires_exceed_samples",
      key,
      value: encodeUnchecked({
        ...template,
        stats: { kind: "counts", fires: tooManyFires, abs_sum: null, sq_sum: null },
      }),
    },
    // Back to back, so one fetch holds more than the broker accepts in one produce request.
    ...[1, 2, 3].map((n) => ({ name: `5 MB message #${n}`, reason: "too_large", key, value: large })),
  ];
}

function floodMessage(i: number): Message & { key: string; value: Buffer } {
  const layer = `flood-${i}`;
  return {
    key: layerKey(FLOOD_RUN, layer),
    value: encodeSnapshot({
      run_id: FLOOD_RUN,
      layer,
      rank: 0,
      step: 0,
      time: Date.now(),
      unit_offset: 0,
      unit_count: 1,
      layer_units: 1,
      samples: 1,
      stats: { kind: "counts", fires: new Uint32Array([1]), abs_sum: null, sq_sum: null },
    }),
  };
}

for (const client of KAFKA_CLIENTS)
  describe(`reluwatch consume: poison input (${client})`, () => {
    let broker: TestBroker;
    let service: ConsumerService | undefined;
    let producer: Producer | undefined;
    const services: ConsumerService[] = [];
    before(async () => {
      broker = await getBroker();
    });
    after(async () => {
      await producer?.disconnect();
      await service?.stop();
      for (const s of services) await s.stop();
    });

    test("every bad message is counted by reason and dead-lettered unchanged; the healthy run's numbers stay exact", async () => {
      const topic = uniqueTopic(`poison-${client}`);
      const dlq = `${topic}.dlq`;
      await createTopic(broker, topic, 3);
      await createTopic(broker, dlq, 2);
      await createTopic(broker, `${topic}.events`, 1);
      const kafka = kafkaClient(broker);

      const settings = loadSettings({
        flags: {
          kafkaClient: client,
          startFrom: "earliest",
          brokers: broker.brokers.join(","),
          topic,
          group: `${topic}.group`,
          eventsTopic: `${topic}.events`,
          deadLetterTopic: dlq,
          metricsPort: "0",
          metricsHost: "127.0.0.1",
          maxLayersPerRun: String(MAX_LAYERS_PER_RUN),
        },
        env: {},
        groups: CONSUME_GROUPS,
      });
      assert.equal(
        settings.limits.max_message_bytes,
        4 * 1024 * 1024,
        "the 5 MB message exceeds the default",
      );
      // 100,000 rejections would log 100,000 warnings; the counters are what this test reads.
      service = await startConsumerService(settings, createLogger("test", "error"));
      const base = `http://127.0.0.1:${service.address.port}`;
      await waitFor("the service to be ready", async () =>
        (await fetch(`${base}/readyz`)).status === 200 ? true : undefined,
      );
      // From now on every readiness probe while the bad input flows must pass.
      const notReady: string[] = [];
      let probing = true;
      const prober = (async () => {
        while (probing) {
          const r = await fetch(`${base}/readyz`);
          if (r.status !== 200) notReady.push(await r.text());
          else await r.body?.cancel();
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      })();

      const good = scenarioSnapshots("lr-spike", { seed: 23 });
      const poison = poisonMessages(good[0]!);
      producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      /** partition/offset → what was sent there, for the byte-for-byte check. */
      const sentPoison = new Map<string, Poison>();
      const flood = new Map<string, Buffer>();
      const chunks = FLOOD_LAYERS / FLOOD_BATCH;
      const chunkOf = (p: Poison, i: number) => (p.reason === "too_large" ? chunks - 1 : i % chunks);
      const chunkSize = Math.ceil(good.length / chunks);
      for (let c = 0; c < chunks; c++) {
        await producer.send({
          topic,
          acks: -1,
          messages: good
            .slice(c * chunkSize, (c + 1) * chunkSize)
            .map((s) => ({ key: layerKey(s.run_id, s.layer), value: encodeSnapshot(s) })),
        });
        for (const [i, p] of poison.entries()) {
          if (chunkOf(p, i) !== c) continue;
          const [meta] = await producer.send({ topic, acks: -1, messages: [{ key: p.key, value: p.value }] });
          sentPoison.set(`${meta!.partition}/${meta!.baseOffset}`, p);
        }
        if (c * FLOOD_BATCH < FLOOD_LAYERS) {
          const batch = [];
          for (let i = c * FLOOD_BATCH; i < Math.min(FLOOD_LAYERS, (c + 1) * FLOOD_BATCH); i++) {
            const m = floodMessage(i);
            flood.set(m.key, m.value);
            batch.push(m);
          }
          await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages: batch });
        }
      }
      assert.equal(sentPoison.size, poison.length);
      assert.equal(flood.size, FLOOD_LAYERS);

      const overLimit = FLOOD_LAYERS - MAX_LAYERS_PER_RUN;
      const expectedOk = good.length + MAX_LAYERS_PER_RUN;
      const { samples } = await waitFor(
        "every message processed",
        async () => {
          const s = await scrape(base);
          const seen = ["ok", "invalid", "over_limit", "duplicate", "late"].reduce(
            (n, result) => n + sumOf(s.samples, "reluwatch_snapshots_total", { result }),
            0,
          );
          return seen >= expectedOk + poison.length + overLimit ? s : undefined;
        },
        180_000,
      );

      assert.equal(sumOf(samples, "reluwatch_snapshots_total", { result: "ok" }), expectedOk);
      assert.equal(sumOf(samples, "reluwatch_snapshots_total", { result: "invalid" }), poison.length);
      assert.equal(sumOf(samples, "reluwatch_snapshots_total", { result: "over_limit" }), overLimit);
      assert.equal(sumOf(samples, "reluwatch_snapshots_total", { result: "duplicate" }), 0);
      const byReason = new Map<string, number>();
      for (const p of poison) byReason.set(p.reason, (byReason.get(p.reason) ?? 0) + 1);
      byReason.set("limit_layers_per_run", overLimit);
      for (const [reason, n] of byReason) {
        assert.equal(sumOf(samples, "reluwatch_invalid_snapshots_total", { reason }), n, reason);
      }
      assert.equal(
        sumOf(samples, "reluwatch_invalid_snapshots_total"),
        poison.length + overLimit,
        "no other reasons",
      );

      probing = false;
      await prober;
      assert.deepEqual(notReady, [], "ready all along");

      const reference = referenceDetector(good);
      assertLayersMatch(samples, reference.detector.summaries());
      const floodLayers = service.detector.summaries().filter((s) => s.run_id === FLOOD_RUN);
      assert.equal(floodLayers.length, MAX_LAYERS_PER_RUN);

      // Dead letters are written before the offsets are committed: committed to the end means all are out.
      await waitForCommittedToEnd(kafka, settings.group, topic, 120_000);
      const dead = await readTopic(kafka, dlq, 120_000);
      assert.equal(dead.length, poison.length + overLimit, "one dead letter per bad message, no more");
      const header = (m: (typeof dead)[number], name: string) => m.headers?.[name]?.toString();
      let poisonSeen = 0;
      let floodSeen = 0;
      for (const m of dead) {
        const at = `${header(m, DEAD_LETTER_HEADERS.partition)}/${header(m, DEAD_LETTER_HEADERS.offset)}`;
        assert.equal(header(m, DEAD_LETTER_HEADERS.topic), topic);
        assert.ok(header(m, DEAD_LETTER_HEADERS.message), "the error message is in a header");
        const p = sentPoison.get(at);
        if (p) {
          poisonSeen++;
          assert.equal(header(m, DEAD_LETTER_HEADERS.code), p.reason, p.name);
          assert.equal(m.key?.toString(), p.key, p.name);
          assert.ok(m.value?.equals(p.value), `${p.name}: dead letter differs from what was sent`);
          continue;
        }
        floodSeen++;
        assert.equal(header(m, DEAD_LETTER_HEADERS.code), "limit_layers_per_run");
        assert.match(header(m, DEAD_LETTER_HEADERS.message) ?? "", /max_layers_per_run/);
        const sent = flood.get(m.key?.toString() ?? "");
        assert.ok(sent && m.value?.equals(sent), `flood dead letter ${m.key} differs from what was sent`);
        flood.delete(m.key!.toString());
      }
      assert.equal(poisonSeen, poison.length);
      assert.equal(floodSeen, overLimit);
      // The layers left over are exactly the ones the service accepted.
      assert.deepEqual([...flood.keys()].sort(), floodLayers.map((s) => layerKey(s.run_id, s.layer)).sort());
    });

    test("a bad message larger than the dead-letter topic accepts is dead-lettered without its value, and the partition goes on", async () => {
      const topic = uniqueTopic("poison-big");
      const dlq = `${topic}.dlq`;
      await createTopic(broker, topic, 1);
      const kafka = kafkaClient(broker);
      const admin = kafka.admin();
      await admin.connect();
      await admin
        .createTopics({
          topics: [
            {
              topic: dlq,
              numPartitions: 1,
              configEntries: [{ name: "max.message.bytes", value: "1048576" }],
            },
          ],
          waitForLeaders: true,
        })
        .finally(() => admin.disconnect());
      const settings = loadSettings({
        flags: {
          kafkaClient: client,
          startFrom: "earliest",
          brokers: broker.brokers.join(","),
          topic,
          group: `${topic}.group`,
          eventsTopic: `${topic}.events`,
          deadLetterTopic: dlq,
          metricsPort: "0",
          metricsHost: "127.0.0.1",
        },
        env: {},
        groups: CONSUME_GROUPS,
      });
      const s = await startConsumerService(settings, createLogger("test", "error"));
      services.push(s);

      const good = scenarioSnapshots("healthy", { seed: 5, layers: 1, ranks: 1, steps: 200 });
      const large = poisonMessages(good[0]!).find((p) => p.reason === "too_large")!;
      const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await p.connect();
      const encode = (x: ActivationSnapshot) => ({ key: large.key, value: encodeSnapshot(x) });
      let at: string;
      try {
        await p.send({ topic, acks: -1, messages: good.slice(0, 2).map(encode) });
        const [meta] = await p.send({ topic, acks: -1, messages: [{ key: large.key, value: large.value }] });
        at = meta!.baseOffset!;
        await p.send({ topic, acks: -1, messages: good.slice(2).map(encode) });
      } finally {
        await p.disconnect();
      }

      await waitForCommittedToEnd(kafka, settings.group, topic);
      const base = `http://127.0.0.1:${s.address.port}`;
      const { samples } = await scrape(base);
      assert.equal(sumOf(samples, "reluwatch_snapshots_total", { result: "ok" }), good.length);
      assert.equal(sumOf(samples, "reluwatch_invalid_snapshots_total", { reason: "too_large" }), 1);
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
      const dead = await readTopic(kafka, dlq);
      assert.equal(dead.length, 1);
      const [m] = dead;
      assert.equal(m!.value, null, "the value is dropped");
      assert.equal(m!.key?.toString(), large.key);
      assert.equal(m!.headers?.[DEAD_LETTER_HEADERS.valueDropped]?.toString(), String(large.value.length));
      assert.equal(m!.headers?.[DEAD_LETTER_HEADERS.code]?.toString(), "too_large");
      assert.equal(m!.headers?.[DEAD_LETTER_HEADERS.offset]?.toString(), at);
    });
  });
