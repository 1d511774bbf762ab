/**
 * TLS with SASL/SCRAM, as managed Kafka runs it: the trainer SDKs (TypeScript
 * and Python) publish and `reluwatch consume` reads over a SASL_SSL listener
 * only (so do `simulate` and `record`, with the same flags), and the two ways a
 * deployment gets it wrong (a wrong password, a CA that did not sign the
 * broker's certificate) each end in one clear line instead of a hang.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Kafka, logLevel } from "kafkajs";
import { encodeSnapshot, readSnapshotContainer } from "../../src/codec/index.js";
import { KAFKA_CLIENTS, type KafkaClient, type KafkaSettings, loadSettings } from "../../src/config/index.js";
import type { ActivationSnapshot } from "../../src/core/index.js";
import { packageRoot } from "../../src/paths.js";
import { SnapshotPublisher } from "../../src/publisher/snapshot-publisher.js";
import { createTopic, type TestBroker, uniqueTopic } from "../support/broker.js";
import { cli, runToExit } from "../support/child.js";
import { STACK_FRAME } from "../support/cli-process.js";
import {
  type ConsumerProcess,
  consumerArgs,
  startConsumerProcess,
  waitFor,
} from "../support/consumer-process.js";
import { referenceDetector, scenarioSnapshots } from "../support/fleet.js";
import { scrape, sumOf } from "../support/metrics.js";
import {
  SCRAM_PASSWORD,
  SCRAM_USER,
  type SecureBroker,
  startSecureBroker,
} from "../support/secure-broker.js";
import { assertLayersMatch } from "../support/topics.js";

const python = join(packageRoot, ".venv/bin/python");
const pythonPublish = join(packageRoot, "python/tests/secure_publish.py");

/** python/tests/secure_publish.py: reluwatch.Publisher with the consumer's security flags, its password from the environment. */
async function publishFromPython(
  broker: SecureBroker,
  topic: string,
  snapshots: readonly ActivationSnapshot[],
  options: { password: string; caFile: string },
) {
  const dir = mkdtempSync(join(tmpdir(), "reluwatch-secure-py-"));
  try {
    const input = join(dir, "snapshots.b64");
    writeFileSync(input, snapshots.map((s) => `${encodeSnapshot(s).toString("base64")}\n`).join(""));
    // The connect timeout is the SDK's own: the child's deadline only turns a hang into a failure.
    const args = [pythonPublish, "--brokers", broker.secure, "--topic", topic, "--input", input];
    args.push(
      "--ssl-ca-file",
      options.caFile,
      "--sasl-mechanism",
      "scram-sha-256",
      "--sasl-username",
      SCRAM_USER,
    );
    args.push("--connect-timeout", "30");
    return await runToExit(python, args, {
      env: { ...process.env, RELUWATCH_SASL_PASSWORD: options.password },
      timeout: 150_000,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function secureFlags(broker: SecureBroker, caFile = broker.caFile): string[] {
  return ["--ssl-ca-file", caFile, "--sasl-mechanism", "scram-sha-256", "--sasl-username", SCRAM_USER];
}

describe("TLS + SASL/SCRAM", () => {
  let broker: SecureBroker;
  /** The same broker through its PLAINTEXT listener: only for creating topics. */
  let setup: TestBroker;
  const consumers: ConsumerProcess[] = [];
  before(async () => {
    broker = await startSecureBroker();
    setup = { brokers: [broker.plaintext], source: "local", describe: "plaintext side of the secure broker" };
  });
  after(async () => {
    for (const c of consumers) if (c.child.exitCode === null) c.child.kill("SIGKILL");
    await broker?.stop();
  });

  /** The secure listener in reluwatch's kafka settings, read from the same flags as secureFlags(). */
  function secureSettings(password: string, client: KafkaClient): KafkaSettings {
    return loadSettings({
      flags: {
        brokers: broker.secure,
        sslCaFile: broker.caFile,
        saslMechanism: "scram-sha-256",
        saslUsername: SCRAM_USER,
        saslPassword: password,
        kafkaClient: client,
      },
      env: {},
      groups: ["kafka"],
    }).kafka;
  }

  /** `reluwatch consume` over SASL_SSL until it applied every snapshot; its layers equal the offline detector's. */
  async function consumeAndMatch(
    topic: string,
    snapshots: readonly ActivationSnapshot[],
    what: string,
    extraArgs: string[] = [],
  ): Promise<void> {
    const consumer = await startConsumerProcess(
      [...consumerArgs([broker.secure], topic), ...secureFlags(broker), ...extraArgs],
      { RELUWATCH_SASL_PASSWORD: SCRAM_PASSWORD },
    );
    consumers.push(consumer);
    const { samples } = await waitFor(
      what,
      async () => {
        const s = await scrape(consumer.baseUrl);
        return sumOf(s.samples, "reluwatch_snapshots_total", { result: "ok" }) === snapshots.length
          ? s
          : undefined;
      },
      120_000,
    );
    assertLayersMatch(samples, referenceDetector([...snapshots]).detector.summaries());
    consumer.child.kill("SIGTERM");
    assert.equal(await consumer.exited, 0);
  }

  for (const client of KAFKA_CLIENTS)
    test(`the SDK publishes and consume (${client}) reads over SASL_SSL; /metrics equals the offline detector`, async () => {
      const topic = uniqueTopic("secure");
      // A broker that just started may not know a new topic's leader at once; creating again is harmless.
      for (const [name, partitions] of [
        [topic, 2],
        [`${topic}.events`, 1],
      ] as const) {
        await waitFor(`topic ${name}`, () => createTopic(setup, name, partitions).then(() => true));
      }
      const snapshots = scenarioSnapshots("born-dead", { seed: 31, steps: 400 });

      // Published with the client that consumes, from the same settings.
      const publisher = new SnapshotPublisher({
        connection: secureSettings(SCRAM_PASSWORD, client),
        topic,
        overflow: "wait",
      });
      await publisher.connect();
      for (const s of snapshots) await publisher.publish(s);
      const stats = await publisher.close();
      assert.equal(stats.sent, snapshots.length);

      await consumeAndMatch(topic, snapshots, "every snapshot applied over SASL_SSL", [
        "--kafka-client",
        client,
      ]);
    });

  test("the Python Publisher publishes over SASL_SSL with the same settings; /metrics equals the offline detector", async () => {
    assert.ok(existsSync(python), `${python} is missing: run \`make .venv\` (the test target does)`);
    const topic = uniqueTopic("secure-python");
    await waitFor(`topic ${topic}`, () => createTopic(setup, topic, 2).then(() => true));
    const snapshots = scenarioSnapshots("born-dead", { seed: 37, steps: 300 });

    const published = await publishFromPython(broker, topic, snapshots, {
      password: SCRAM_PASSWORD,
      caFile: broker.caFile,
    });
    assert.equal(published.status, 0, published.stderr);
    const stats = JSON.parse(published.stdout) as { sent: number; failed: number; dropped: number };
    assert.deepEqual([stats.sent, stats.failed, stats.dropped], [snapshots.length, 0, 0]);

    await consumeAndMatch(topic, snapshots, "every Python-published snapshot applied over SASL_SSL");
  });

  for (const [name, password, untrusted, code] of [
    ["a wrong password", "not-the-password", false, "KAFKA_AUTH_FAILED"],
    ["a CA that did not sign the broker's certificate", SCRAM_PASSWORD, true, "KAFKA_TLS_FAILED"],
  ] as const) {
    test(`the Python Publisher with ${name} fails connect() with one line naming the cause`, async () => {
      const topic = uniqueTopic("secure-python-refused");
      await waitFor(`topic ${topic}`, () => createTopic(setup, topic, 1).then(() => true));
      const snapshots = scenarioSnapshots("healthy", { seed: 5, steps: 20 }).slice(0, 3);
      const caFile = untrusted ? broker.untrustedCaFile : broker.caFile;
      const result = await publishFromPython(broker, topic, snapshots, { password, caFile });
      assert.equal(result.status, 2, `${result.stdout}\n${result.stderr}`);
      assert.equal(result.stdout, "", "nothing published");
      // One line from the SDK naming the cause with its code; librdkafka's own line at each reconnect is
      // left out. (A refusal seen before connect() began is also logged once, with the same code.)
      const lines = result.stderr.trim().split("\n");
      const cause = new RegExp(
        `^${code}: ${broker.secure.replace(/\./g, "\\.")}: .*${untrusted ? "certificate verify failed" : "SASL authentication"}`,
      );
      assert.ok(lines.length <= 2, result.stderr);
      for (const line of lines) assert.match(line, cause);
      assert.doesNotMatch(result.stderr, /Traceback/);
    });
  }

  for (const client of KAFKA_CLIENTS)
    for (const [name, password, caFile] of [
      ["a wrong password", "not-the-password", undefined],
      ["a CA that did not sign the broker's certificate", SCRAM_PASSWORD, "untrusted"],
    ] as const) {
      test(`consume (${client}) with ${name} exits non-zero with one line naming the cause`, async () => {
        const topic = uniqueTopic("secure-refused");
        await waitFor(`topic ${topic}`, () => createTopic(setup, topic, 1).then(() => true));
        const consumer = await startConsumerProcess(
          [
            ...consumerArgs([broker.secure], topic),
            ...secureFlags(broker, caFile === "untrusted" ? broker.untrustedCaFile : broker.caFile),
            "--kafka-client",
            client,
          ],
          { RELUWATCH_SASL_PASSWORD: password },
        );
        consumers.push(consumer);
        const code = await Promise.race([
          consumer.exited,
          new Promise((resolve) => setTimeout(() => resolve("still running after 90 s"), 90_000)),
        ]);
        assert.notEqual(code, "still running after 90 s", "a refused connection must not hang");
        assert.notEqual(code, 0);
        const failed = consumer.logs.filter((l) => l.event === "consumer_failed");
        assert.equal(failed.length, 1, JSON.stringify(consumer.logs.slice(-5)));
        assert.equal(failed[0]!.code, caFile ? "KAFKA_TLS_FAILED" : "KAFKA_AUTH_FAILED");
        const raw = consumer.logs.flatMap((l) => (typeof l.raw === "string" ? [l.raw] : []));
        assert.doesNotMatch(raw.join("\n"), STACK_FRAME);
      });
    }

  test("a publisher (kafkajs, its own options) with a wrong password fails connect() with the broker's reason", async () => {
    const publisher = new SnapshotPublisher({
      brokers: [broker.secure],
      topic: uniqueTopic("secure-publisher"),
      client: "kafkajs",
      kafka: {
        ssl: { ca: [readFileSync(broker.caFile, "utf8")] },
        sasl: { mechanism: "scram-sha-256", username: SCRAM_USER, password: "wrong" },
        retry: { retries: 1 },
      },
    });
    await assert.rejects(publisher.connect(), /authentication failed/i);
    await publisher.close({ timeout_ms: 1_000 });
  });

  for (const client of KAFKA_CLIENTS)
    test(`a publisher (${client}, reluwatch's settings) with a wrong password fails connect() with the broker's reason`, async () => {
      const publisher = new SnapshotPublisher({
        connection: secureSettings("wrong", client),
        topic: uniqueTopic("secure-publisher"),
      });
      await assert.rejects(publisher.connect(), (err: Error & { code?: string }) => {
        assert.equal(err.code, "KAFKA_AUTH_FAILED", err.message);
        assert.match(err.message, /refused the credentials/);
        return true;
      });
      await publisher.close({ timeout_ms: 1_000 });
    });

  test("simulate publishes and record copies over SASL_SSL with the same flags as consume", async () => {
    const topic = uniqueTopic("secure-record");
    await waitFor(`topic ${topic}`, () => createTopic(setup, topic, 1).then(() => true));
    const dir = mkdtempSync(join(tmpdir(), "reluwatch-secure-"));
    try {
      const env = { ...process.env, RELUWATCH_SASL_PASSWORD: SCRAM_PASSWORD };
      const fleet = [
        "--scenario",
        "healthy",
        "--units",
        "8",
        "--layers",
        "1",
        "--steps",
        "200",
        "--seed",
        "3",
      ];
      const sent = await cli(
        ["simulate", ...fleet, "--brokers", broker.secure, "--topic", topic, ...secureFlags(broker)],
        { env, timeout: 120_000 },
      );
      assert.equal(sent.status, 0, sent.stderr);
      const snapshots = (JSON.parse(sent.stderr.trim().split("\n").at(-1)!) as { snapshots: number })
        .snapshots;
      assert.ok(snapshots > 0);
      const out = join(dir, "secure.avro");
      const recorded = await cli(
        ["record", "--brokers", broker.secure, "--topic", topic, "--out", out, ...secureFlags(broker)],
        { env, timeout: 120_000 },
      );
      assert.equal(recorded.status, 0, recorded.stderr);
      const summary = JSON.parse(recorded.stderr.trim().split("\n").at(-1)!) as { records: number };
      assert.equal(summary.records, snapshots);
      let read = 0;
      for await (const _ of readSnapshotContainer(out)) read++;
      assert.equal(read, snapshots);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the PLAINTEXT side is only for set-up: a plain client cannot use the SASL_SSL port", async () => {
    const plain = new Kafka({ brokers: [broker.secure], logLevel: logLevel.NOTHING, retry: { retries: 0 } });
    const admin = plain.admin();
    await assert.rejects(admin.connect().then(() => admin.listTopics()));
    await admin.disconnect();
  });
});
