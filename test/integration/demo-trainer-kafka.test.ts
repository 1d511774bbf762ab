/**
 * `reluwatch demo-trainer --brokers --topic --ranks 2` publishes every rank's
 * snapshots to Kafka (the parent publishes what the ranks send it) and still
 * writes them as JSON lines with --out: the two must hold the same snapshots.
 * `reluwatch demo --trainer-only`, the docker compose trainer, does the same
 * from RELUWATCH_BROKERS.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";
import { decodeSnapshot } from "../../src/codec/index.js";
import { createTopic, getBroker, kafkaClient, type TestBroker, uniqueTopic } from "../support/broker.js";
import { cliSync } from "../support/child.js";

let broker: TestBroker;
before(async () => {
  broker = await getBroker();
});

async function readTopic(topic: string, count: number): Promise<string[]> {
  const consumer = kafkaClient(broker).consumer({ groupId: `${topic}.check` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${count} within 60 s`)), 60_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          const s = decodeSnapshot(message.value!);
          got.push(
            `${s.run_id}|${s.rank}|${s.step}|${s.layer}|${s.samples}|${Array.from((s.stats as { fires: Uint32Array }).fires).join(",")}`,
          );
          if (got.length >= count) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    return got;
  } finally {
    await consumer.disconnect();
  }
}

test("demo-trainer publishes every rank's snapshots to Kafka and the same ones to --out", async () => {
  const topic = uniqueTopic("demo-trainer");
  await createTopic(broker, topic, 3);
  const dir = mkdtempSync(join(tmpdir(), "reluwatch-demo-kafka-"));
  try {
    const out = join(dir, "snaps.jsonl");
    const r = cliSync([
      "demo-trainer",
      ...["--layers", "2", "--units", "16", "--steps", "40", "--every-steps", "10", "--probe-batch", "32"],
      ...["--dataset-size", "256", "--ranks", "2", "--run-id", "kafka-run", "--lr-spike-step", "none"],
      ...["--brokers", broker.brokers.join(","), "--topic", topic, "--out", out],
    ]);
    assert.equal(r.status, 0, r.stderr);
    // 2 ranks × 5 probes (steps 0..40) × 2 layers.
    assert.match(r.stderr, /20 snapshots/);
    assert.match(
      r.stderr,
      new RegExp(`published to ${topic.replaceAll(".", "\\.")}: 20 sent, 0 dropped, 0 failed`),
    );
    const fromFile = readFileSync(out, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .map((s) => `${s.run_id}|${s.rank}|${s.step}|${s.layer}|${s.samples}|${s.stats.fires.join(",")}`);
    const fromKafka = await readTopic(topic, 20);
    assert.deepEqual([...fromKafka].sort(), [...fromFile].sort());
    assert.deepEqual(new Set(fromKafka.map((k) => k.split("|")[1])), new Set(["0", "1"]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("demo --trainer-only (the compose trainer) publishes to RELUWATCH_BROKERS and --topic", async () => {
  const topic = uniqueTopic("trainer-only");
  const r = cliSync(
    [
      ...["demo", "--trainer-only", "--topic", topic],
      ...["--layers", "1", "--units", "8", "--steps", "20", "--every-steps", "10", "--probe-batch", "32"],
      ...["--dataset-size", "256", "--run-id", "compose-run"],
    ],
    { env: { ...process.env, RELUWATCH_BROKERS: broker.brokers.join(",") } },
  );
  assert.equal(r.status, 0, r.stderr);
  // The demo's default 2 ranks × 3 probes × 1 layer.
  assert.match(r.stdout, new RegExp(`6 snapshots sent to ${topic.replaceAll(".", "\\.")}, 0 dropped`));
  const got = await readTopic(topic, 6);
  assert.ok(got.every((k) => k.startsWith("compose-run|")));
  assert.deepEqual(new Set(got.map((k) => k.split("|")[1])), new Set(["0", "1"]));
});
