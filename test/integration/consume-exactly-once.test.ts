/**
 * processing_guarantee exactly_once on the real broker. A consumer commits
 * its first transaction, applies the rest of the first half of a run without
 * committing it (a one-minute commit interval) and is killed with SIGKILL. The
 * restart, under the same transactional id (the default, from the group and
 * the host name), fences its predecessor, restores the state of the committed
 * transaction, processes the uncommitted input again and finishes the run. A
 * read_committed reader of the events topic then sees every transition of the
 * offline reference exactly once, and the cumulative deaths and born-dead
 * units equal the reference's.
 *
 * The producer adapter alone: a producer with the same transactional id
 * aborts the transaction a killed process left open (read_committed readers
 * never see its records) and fences the older producer, whose next commit
 * fails with ProducerFencedError.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Kafka } from "kafkajs";
import { decodeTransition } from "../../src/codec/index.js";
import { KAFKA_CLIENTS } from "../../src/config/index.js";
import type { LayerSummary, UnitTransition } from "../../src/core/index.js";
import { KafkajsTransactionalProducer, ProducerFencedError } from "../../src/sink/transactional-producer.js";
import { createTopic, getBroker, kafkaClient, type TestBroker, uniqueTopic } from "../support/broker.js";
import {
  type ConsumerProcess,
  consumerArgs,
  startConsumerProcess,
  waitFor,
} from "../support/consumer-process.js";
import { produceSnapshots, referenceDetector, scenarioSnapshots } from "../support/fleet.js";
import { type Sample, scrape, sumOf } from "../support/metrics.js";
import {
  assertLayersMatch,
  committedOffsets,
  layersMatch,
  transitionKey,
  waitForCommittedToEnd,
} from "../support/topics.js";

function exitWithin(p: ConsumerProcess, ms: number): Promise<number | string> {
  return Promise.race([
    p.exited,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`no exit within ${ms} ms`)), ms).unref(),
    ),
  ]);
}

/**
 * The committed records of a transactional topic. Its last offsets are
 * transaction markers, never delivered, so the end is judged from kafkajs's
 * end-of-batch event (it reports batches of markers too), not from the last
 * record.
 */
async function readCommitted(kafka: Kafka, topic: string, timeoutMs = 60_000): Promise<UnitTransition[]> {
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  const pending = new Map<number, bigint>();
  for (const o of offsets) if (BigInt(o.high) > BigInt(o.low)) pending.set(o.partition, BigInt(o.high));
  const out: UnitTransition[] = [];
  if (pending.size === 0) return out;
  const consumer = kafka.consumer({
    groupId: `${topic}.committed-reader.${process.pid}.${Date.now()}`,
    maxBytesPerPartition: 16 * 1024 * 1024,
    readUncommitted: false,
  });
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
    const end = pending.get(e.payload.partition);
    if (end !== undefined && BigInt(e.payload.lastOffset) + 1n >= end) pending.delete(e.payload.partition);
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        const end = pending.get(batch.partition);
        for (const m of batch.messages) {
          if (end !== undefined && BigInt(m.offset) < end) out.push(decodeTransition(m.value!));
        }
      },
    });
    await waitFor(`reading ${topic} to its end`, () => (pending.size === 0 ? true : undefined), timeoutMs);
    return out;
  } finally {
    await consumer.disconnect();
  }
}

/** The values of a topic's committed records, read_committed. */
async function readCommittedValues(kafka: Kafka, topic: string): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  const pending = new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
  for (const [p, high] of pending) if (high === 0n) pending.delete(p);
  const out: string[] = [];
  const consumer = kafka.consumer({ groupId: `${topic}.values.${Date.now()}`, readUncommitted: false });
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
    const end = pending.get(e.payload.partition);
    if (end !== undefined && BigInt(e.payload.lastOffset) + 1n >= end) pending.delete(e.payload.partition);
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => void out.push(message.value!.toString()),
    });
    await waitFor(`reading ${topic} to its end`, () => (pending.size === 0 ? true : undefined));
    return out;
  } finally {
    await consumer.disconnect();
  }
}

function assertCountersMatch(samples: Sample[], reference: LayerSummary[]): void {
  for (const s of reference) {
    const where = { run: s.run_id, layer: s.layer };
    assert.equal(
      sumOf(samples, "reluwatch_unit_transitions_total", { ...where, to: "dead" }),
      s.deaths_total,
      `${s.run_id}/${s.layer} deaths`,
    );
    assert.equal(
      sumOf(samples, "reluwatch_layer_born_dead_units", where),
      s.born_dead_units,
      `${s.run_id}/${s.layer} born dead`,
    );
  }
}

describe("reluwatch consume --processing-guarantee exactly_once", () => {
  let broker: TestBroker;
  const children: ConsumerProcess[] = [];
  before(async () => {
    broker = await getBroker();
  });
  after(() => {
    for (const c of children) if (c.child.exitCode === null) c.child.kill("SIGKILL");
  });

  for (const client of KAFKA_CLIENTS)
    test(`SIGKILL mid-run, restart (${client}): a read_committed reader sees every transition exactly once`, async (t) => {
      const topic = uniqueTopic("eos");
      const group = `${topic}.group`;
      const events = `${topic}.events`;
      await createTopic(broker, topic, 3);
      await createTopic(broker, events, 1);
      const kafka = kafkaClient(broker);
      const common = [
        ...consumerArgs(broker.brokers, topic),
        "--processing-guarantee",
        "exactly_once",
        "--restore-lookback-ms",
        "1",
        "--checkpoint-interval-ms",
        "300",
        // Every transition is an event, so the count checks more than the deaths.
        "--events",
        "all",
        "--kafka-client",
        client,
      ];
      // The first process commits its first batch at once and then nothing for a minute: what it
      // applies after that is uncommitted when it is killed, whatever the machine's speed.
      const slow = [...common, "--commit-interval-ms", "60000"];
      const args = [...common, "--commit-interval-ms", "200"];
      const all = scenarioSnapshots("lr-spike", { seed: 47 });
      const split = 600;
      const first = all.filter((s) => s.step < split);
      const rest = all.filter((s) => s.step >= split);
      const reference = referenceDetector(all, {}, "all");
      const summaries = reference.detector.summaries();
      assert.ok(
        reference.events.some((e) => e.step >= split && e.to === "DEAD"),
        "the second half has deaths",
      );

      const a = await startConsumerProcess(slow);
      children.push(a);
      await waitFor("the first process to start consuming", () =>
        a.logs.some((l) => l.event === "consuming" && l.processing_guarantee === "exactly_once")
          ? true
          : undefined,
      );
      const head = first.slice(0, Math.ceil(first.length / 10));
      await produceSnapshots(kafka, topic, head);
      await waitFor("the first process to commit its first transaction", async () => {
        const committed = await committedOffsets(kafka, group, topic);
        return [...committed.values()].some((o) => o > 0n) ? true : undefined;
      });
      await produceSnapshots(kafka, topic, first.slice(head.length));
      await waitFor(
        "the first process to apply the first half",
        async () => {
          const { samples } = await scrape(a.baseUrl);
          return sumOf(samples, "reluwatch_snapshots_total", { result: "ok" }) === first.length
            ? true
            : undefined;
        },
        120_000,
      );
      const appliedBeforeKill = sumOf((await scrape(a.baseUrl)).samples, "reluwatch_snapshots_total", {
        result: "ok",
      });
      a.child.kill("SIGKILL");
      assert.equal(await exitWithin(a, 30_000), "SIGKILL");

      const b = await startConsumerProcess(args);
      children.push(b);
      // The group first waits for the dead member's session (30 s) to expire.
      await waitFor(
        "the restarted process to restore and be ready",
        async () =>
          b.logs.some((l) => l.event === "state_restored") &&
          (await fetch(`${b.baseUrl}/readyz`)).status === 200
            ? true
            : undefined,
        120_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${b.logs.map((l) => JSON.stringify(l)).join("\n")}`);
      });
      await produceSnapshots(kafka, topic, rest);
      const { samples } = await waitFor("the restarted process to match the reference", async () => {
        const s = await scrape(b.baseUrl);
        return layersMatch(s.samples, summaries) ? s : undefined;
      });
      assertLayersMatch(samples, summaries);
      assertCountersMatch(samples, summaries);
      await waitForCommittedToEnd(kafka, group, topic);

      const emitted = await readCommitted(kafka, events);
      const keys = emitted.map(transitionKey);
      const reapplied = sumOf(samples, "reluwatch_snapshots_total", { result: "ok" }) - rest.length;
      t.diagnostic(
        `reference ${reference.events.length} transitions; events topic (read_committed) ${emitted.length} records, ` +
          `${new Set(keys).size} distinct; ${all.length} snapshots; the first process applied ${appliedBeforeKill} before SIGKILL, ` +
          `the restart applied ${reapplied} of those again (from its restored state on)`,
      );
      assert.ok(reapplied > 0, "the restart processed again what the killed process had not committed");
      assert.equal(new Set(keys).size, keys.length, "no transition emitted twice");
      assert.equal(emitted.length, reference.events.length, "as many transitions as the offline detector");
      assert.deepEqual(new Set(keys), new Set(reference.events.map(transitionKey)));
      // Per unit the events chain: each starts where the previous ended, so no second death without a revival.
      const last = new Map<string, string>();
      for (const e of [...emitted].sort((x, y) => x.step - y.step)) {
        const unit = JSON.stringify([e.run_id, e.layer, e.unit]);
        const before = last.get(unit);
        if (before !== undefined)
          assert.equal(e.from, before, `${unit} at step ${e.step} continues from ${before}`);
        last.set(unit, e.to);
      }
      assert.equal(
        sumOf(samples, "reluwatch_commit_failures_total", { guarantee: "exactly_once" }),
        0,
        "no transaction failed in the restarted process",
      );
      b.child.kill("SIGTERM");
      assert.equal(await exitWithin(b, 30_000), 0);
    });

  test("the transactional producer: a successor with the same id aborts the open transaction and fences the old producer", async () => {
    const topic = uniqueTopic("eos-fence");
    await createTopic(broker, topic, 1);
    const kafka = kafkaClient(broker);
    const id = `${topic}.txn`;
    const offsets = { group: `${topic}.group`, topic, partitions: [{ partition: 0, offset: "1" }] };
    const message = (value: string) => [{ topic, key: "k", value: Buffer.from(value) }];

    // A process killed mid-transaction: its records are on the log, the transaction open.
    const killed = kafka.producer({ transactionalId: id, idempotent: true, maxInFlightRequests: 1 });
    await killed.connect();
    const open = await killed.transaction();
    await open.send({ topic, acks: -1, messages: [{ key: "k", value: Buffer.from("never committed") }] });

    const older = new KafkajsTransactionalProducer(kafka, id);
    await older.connect();
    await older.commit({ sends: [message("committed by the older")], offsets });
    const successor = new KafkajsTransactionalProducer(kafka, id);
    await successor.connect();
    await assert.rejects(older.commit({ sends: [message("zombie")], offsets }), ProducerFencedError);
    await successor.commit({ sends: [message("committed by the successor")], offsets });
    await Promise.all([older.disconnect(), successor.disconnect(), killed.disconnect()]);

    const values = await readCommittedValues(kafka, topic);
    assert.deepEqual(values, ["committed by the older", "committed by the successor"]);
    const committed = await committedOffsets(kafka, offsets.group, topic);
    assert.equal(committed.get(0), 1n, "the offsets of the committed transactions");
  });
});
