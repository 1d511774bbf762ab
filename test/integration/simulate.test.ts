/**
 * `reluwatch simulate` end to end: the CLI writes a container file and the
 * truth; the same seed to a real broker gives the same records; `reluwatch
 * record` copies the topic back into a file with the same records.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { recordTopic } from "../../src/cli/record-command.js";
import { runSimulate } from "../../src/cli/simulate-command.js";
import { encodeSnapshot, readSnapshotContainer } from "../../src/codec/index.js";
import { type KafkaSettings, loadSettings } from "../../src/config/index.js";
import type { ActivationSnapshot } from "../../src/core/snapshot.js";
import { type FleetTruth, fleetSize, generateFleet, resolveScenario } from "../../src/sim/index.js";
import { createTopic, getBroker, kafkaClient, type TestBroker, uniqueTopic } from "../support/broker.js";
import { cliArgs, runFile } from "../support/child.js";

const dir = mkdtempSync(join(tmpdir(), "reluwatch-simulate-"));
let broker: TestBroker;

before(async () => {
  broker = await getBroker();
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The connection settings `record` gets from its flags. */
function connection(b: TestBroker): KafkaSettings {
  return loadSettings({ flags: { brokers: b.brokers.join(",") }, env: {}, groups: ["kafka"] }).kafka;
}

async function readAll(path: string): Promise<ActivationSnapshot[]> {
  const out: ActivationSnapshot[] = [];
  for await (const s of readSnapshotContainer(path)) out.push(s);
  return out;
}

/** Records grouped by Kafka key, each group in order, as base64 of the encoded message. */
function byKey(list: ActivationSnapshot[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const s of list) {
    const key = `${s.run_id}/${s.layer}`;
    out[key] = [...(out[key] ?? []), encodeSnapshot(s).toString("base64")];
  }
  return out;
}

const FLAGS = ["--scenario", "lr-spike", "--seed", "7", "--units", "48", "--steps", "800", "--ranks", "3"];
const scenario = resolveScenario("lr-spike", { seed: 7, units: 48, steps: 800, ranks: 3 });

test("the CLI writes a container file of the scenario's snapshots and its ground truth", async () => {
  const out = join(dir, "fleet.avro");
  const truthFile = join(dir, "truth.json");
  await runFile(process.execPath, cliArgs(["simulate", ...FLAGS, "--out", out, "--truth", truthFile]));
  const records = await readAll(out);
  assert.equal(records.length, fleetSize(scenario));
  assert.equal(records.length, 16 * 3 * 3);
  const truth = JSON.parse(readFileSync(truthFile, "utf8")) as FleetTruth;
  assert.equal(truth.units.length, 3 * 48);
  const dead = truth.units.filter((u) => u.death_step !== null);
  assert.equal(dead.length, Math.round(0.3 * 48));
  assert.ok(dead.every((u) => u.layer === "blocks.2.mlp.fc1" && u.death_step === 500));
  for (const s of records.filter((r) => r.layer === "blocks.2.mlp.fc1" && r.step >= 500)) {
    const fires = (s.stats as { fires: Uint32Array }).fires;
    for (const u of dead) assert.equal(fires[u.unit], 0);
  }
});

test("simulate to Kafka gives the same records as --out for the same seed, and record copies them back", async () => {
  const out = join(dir, "again.avro");
  const local = await runSimulate({ scenario, out });
  const topic = uniqueTopic("simulate");
  await createTopic(broker, topic, 3);
  const sent = await runSimulate({ scenario, kafka: connection(broker), topic, rate: 0 });
  assert.equal(sent.snapshots, local.snapshots);
  assert.equal(sent.kafka?.sent, local.snapshots);

  const fromFile = await readAll(out);
  const recorded = join(dir, "recorded.avro");
  const summary = await recordTopic({ kafka: connection(broker), topic, out: recorded });
  assert.equal(summary.records, fromFile.length);
  assert.deepEqual(summary.skipped, {});
  assert.deepEqual(byKey(await readAll(recorded)), byKey(fromFile));

  // Offset ranges: [2, 5) of every partition that holds that many.
  const ranged = join(dir, "ranged.avro");
  const part = await recordTopic({
    kafka: connection(broker),
    topic,
    out: ranged,
    fromOffset: 2,
    toOffset: 5,
  });
  const filled = Object.values(part.ranges).filter(([a, b]) => b - a === 3).length;
  assert.ok(filled > 0);
  assert.equal(part.records, (await readAll(ranged)).length);
  assert.equal(
    part.records,
    Object.values(part.ranges).reduce((n, [a, b]) => n + (b - a), 0),
  );

  const capped = await recordTopic({
    kafka: connection(broker),
    topic,
    out: join(dir, "capped.avro"),
    max: 10,
  });
  assert.equal(capped.records, 10);

  // Time ranges use the Kafka timestamps (when the records were produced: just now).
  const hour = 3_600_000;
  const future = await recordTopic({
    kafka: connection(broker),
    topic,
    out: join(dir, "f.avro"),
    since: Date.now() + hour,
  });
  assert.equal(future.records, 0);
  assert.deepEqual(await readAll(join(dir, "f.avro")), []);
  const past = await recordTopic({
    kafka: connection(broker),
    topic,
    out: join(dir, "p.avro"),
    until: Date.now() - hour,
  });
  assert.equal(past.records, 0);
  const now = Date.now();
  const window = await recordTopic({
    kafka: connection(broker),
    topic,
    out: join(dir, "w.avro"),
    since: now - hour,
    until: now + hour,
  });
  assert.equal(window.records, fromFile.length);
});

test("record skips and counts messages that are not snapshots, or fails on them with on_invalid fail", async () => {
  const topic = uniqueTopic("record-junk");
  await createTopic(broker, topic, 1);
  const producer = kafkaClient(broker).producer();
  await producer.connect();
  const good = [...generateFleet(resolveScenario("healthy", { units: 8, steps: 100 }))];
  await producer.send({
    topic,
    messages: [
      { key: "x", value: encodeSnapshot(good[0]!) },
      { key: "x", value: Buffer.from("not avro") },
      { key: "x", value: encodeSnapshot(good[1]!).subarray(0, 20) },
      { key: "x", value: encodeSnapshot(good[2]!) },
    ],
  });
  await producer.disconnect();
  const summary = await recordTopic({ kafka: connection(broker), topic, out: join(dir, "junk.avro") });
  assert.equal(summary.records, 2);
  assert.deepEqual(summary.skipped, { BAD_MAGIC: 1, TRUNCATED: 1 });
  assert.deepEqual(
    (await readAll(join(dir, "junk.avro"))).map((s) => s.rank),
    [good[0]!.rank, good[2]!.rank],
  );
  await assert.rejects(
    recordTopic({ kafka: connection(broker), topic, out: join(dir, "strict.avro"), onInvalid: "fail" }),
    /BAD_MAGIC/,
  );
  assert.equal(existsSync(join(dir, "strict.avro")), false);
});
