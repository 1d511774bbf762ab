/**
 * Expected broker conditions as users meet them: the monitoring service
 * started before the trainer created its topic, or before the broker is up,
 * and one-shot commands pointed at a broker that does not answer or a topic
 * that does not exist. The service waits and says why on /readyz; one-shot
 * commands end with one line naming what to fix; nothing prints a stack trace.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { KAFKA_CLIENTS } from "../../src/config/index.js";
import { createTopic, getBroker, kafkaClient, type TestBroker, uniqueTopic } from "../support/broker.js";
import { runCli, STACK_FRAME, startCli } from "../support/cli-process.js";
import {
  type ConsumerProcess,
  consumerArgs,
  startConsumerProcess,
  waitFor,
} from "../support/consumer-process.js";
import { produceSnapshots, scenarioSnapshots } from "../support/fleet.js";
import { scrape, sumOf } from "../support/metrics.js";
import { freePort } from "../support/ports.js";

/** No "    at ..." frame anywhere in what the process wrote. */
function assertNoStackTrace(lines: ReadonlyArray<Record<string, unknown>>): void {
  for (const l of lines) {
    if (typeof l.raw === "string") assert.doesNotMatch(l.raw, STACK_FRAME, "a stack trace was printed");
    for (const v of Object.values(l)) if (typeof v === "string") assert.doesNotMatch(v, STACK_FRAME);
  }
}

async function readyz(
  baseUrl: string,
): Promise<{ status: number; body: { status: string; reason?: string } }> {
  const res = await fetch(`${baseUrl}/readyz`);
  return { status: res.status, body: (await res.json()) as { status: string; reason?: string } };
}

describe("reluwatch consume: a topic created after the consumer started", () => {
  let broker: TestBroker;
  let consumer: ConsumerProcess | undefined;
  before(async () => {
    broker = await getBroker();
  });
  after(() => {
    if (consumer && consumer.child.exitCode === null) consumer.child.kill("SIGKILL");
  });

  test("waits naming the topic, answers 503 with the reason, then consumes what is published after creation", async () => {
    const topic = uniqueTopic("late-topic");
    consumer = await startConsumerProcess(consumerArgs(broker.brokers, topic));
    const c = consumer;

    const waiting = await waitFor("a log line naming the missing topic", () =>
      c.logs.find((l) => l.event === "waiting_for_kafka" && l.code === "TOPIC_NOT_FOUND"),
    );
    assert.equal(waiting.topic, topic);
    assert.match(
      String(waiting.msg),
      new RegExp(`waiting for topic ${topic.replaceAll(".", "\\.")} to be created`),
    );
    const notReady = await readyz(c.baseUrl);
    assert.equal(notReady.status, 503);
    assert.equal(notReady.body.status, "not_ready");
    assert.match(String(notReady.body.reason), new RegExp(`topic ${topic.replaceAll(".", "\\.")}`));
    assert.equal((await fetch(`${c.baseUrl}/healthz`)).status, 200, "alive while it waits");
    assert.equal(c.child.exitCode, null, "still running");

    await createTopic(broker, topic, 2);
    await waitFor("/readyz 200 once the topic exists and the group joined", async () =>
      (await readyz(c.baseUrl)).status === 200 ? true : undefined,
    );
    assert.ok(
      c.logs.some((l) => l.event === "kafka_ready"),
      "the log says the wait is over",
    );

    const snapshots = scenarioSnapshots("healthy", { seed: 11, layers: 2, ranks: 2, steps: 200 });
    await produceSnapshots(kafkaClient(broker), topic, snapshots);
    await waitFor("every snapshot applied", async () => {
      const { samples } = await scrape(c.baseUrl);
      return sumOf(samples, "reluwatch_snapshots_total", { result: "ok" }) === snapshots.length
        ? true
        : undefined;
    });

    c.child.kill("SIGTERM");
    assert.equal(await c.exited, 0);
    assertNoStackTrace(c.logs);
  });
});

describe("reluwatch consume: no broker at start", () => {
  let consumer: ConsumerProcess | undefined;
  after(() => {
    if (consumer && consumer.child.exitCode === null) consumer.child.kill("SIGKILL");
  });

  test("keeps retrying with a log line, /readyz 503 naming the brokers; SIGTERM stops it cleanly", async () => {
    const address = `127.0.0.1:${await freePort()}`;
    consumer = await startConsumerProcess(consumerArgs([address], uniqueTopic("no-broker")));
    const c = consumer;
    const lines = await waitFor("a log line saying it waits for Kafka", () => {
      const w = c.logs.filter((l) => l.event === "waiting_for_kafka");
      return w.length >= 1 ? w : undefined;
    });
    assert.equal(lines[0]!.code, "BROKER_UNREACHABLE");
    assert.deepEqual(lines[0]!.brokers, [address]);
    const notReady = await readyz(c.baseUrl);
    assert.equal(notReady.status, 503);
    assert.match(String(notReady.body.reason), new RegExp(`cannot reach Kafka at ${address}`));
    assert.equal(c.child.exitCode, null, "still running, still waiting");

    c.child.kill("SIGTERM");
    assert.equal(await c.exited, 0);
    assert.ok(
      c.logs.some((l) => l.event === "stopped"),
      "stopped cleanly",
    );
    assertNoStackTrace(c.logs);
  });
});

describe("reluwatch consume: a condition waiting does not fix", () => {
  let consumer: ConsumerProcess | undefined;
  after(() => {
    if (consumer && consumer.child.exitCode === null) consumer.child.kill("SIGKILL");
  });

  for (const client of KAFKA_CLIENTS)
    test(`a topic name Kafka refuses (${client}): one fatal log line with the code, exit 1`, async () => {
      const broker = await getBroker();
      const topic = `${uniqueTopic("refused")} name`;
      consumer = await startConsumerProcess([
        ...consumerArgs(broker.brokers, topic),
        "--kafka-client",
        client,
      ]);
      assert.equal(await consumer.exited, 1);
      const fatal = consumer.logs.filter((l) => l.event === "consumer_failed");
      assert.equal(fatal.length, 1);
      assert.equal(fatal[0]!.code, "TOPIC_INVALID");
      assert.match(String(fatal[0]!.error), /refuses the name of topic .* name.*check --topic/);
      assert.ok(!consumer.logs.some((l) => l.event === "waiting_for_kafka"), "not waited for");
      assertNoStackTrace(consumer.logs);
    });
});

describe("one-shot commands: one line naming what to fix, exit code 1", { concurrency: true }, () => {
  let broker: TestBroker;
  let dir: string;
  before(async () => {
    broker = await getBroker();
    dir = mkdtempSync(join(tmpdir(), "reluwatch-conditions-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Exactly one line that is not a log line, matching `pattern`, and no stack frame anywhere. */
  function assertOneLine(r: Awaited<ReturnType<typeof runCli>>, pattern: RegExp): void {
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.text.length, 1, `one line for people, got:\n${r.text.join("\n")}`);
    assert.match(r.text[0]!, pattern);
    assert.doesNotMatch(r.stderr, STACK_FRAME);
  }

  test("record, broker unreachable: gives up after --wait-ms, writes no file", async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const out = join(dir, "unreachable.avro");
    const r = await runCli([
      "record",
      "--brokers",
      address,
      "--topic",
      "t",
      "--out",
      out,
      "--wait-ms",
      "1500",
    ]);
    assertOneLine(
      r,
      new RegExp(`^reluwatch: record: BROKER_UNREACHABLE: cannot reach Kafka at ${address} .*gave up after`),
    );
    assert.ok(
      r.logs.some((l) => l.event === "waiting_for_kafka" && l.code === "BROKER_UNREACHABLE"),
      "it retried, saying so",
    );
    assert.equal(existsSync(out), false);
  });

  test("record, topic missing: waits for it, then names it", async () => {
    const topic = uniqueTopic("record-missing");
    const r = await runCli([
      "record",
      "--brokers",
      broker.brokers.join(","),
      "--topic",
      topic,
      "--out",
      join(dir, "missing.avro"),
      "--wait-ms",
      "1500",
    ]);
    assertOneLine(
      r,
      new RegExp(`^reluwatch: record: TOPIC_NOT_FOUND: topic ${topic.replaceAll(".", "\\.")} does not exist`),
    );
    assert.ok(r.logs.some((l) => l.event === "waiting_for_kafka" && l.topic === topic));
  });

  test("record, topic created while it waits: records it and exits 0", async () => {
    const topic = uniqueTopic("record-late");
    const out = join(dir, "late.avro");
    const running = startCli([
      "record",
      "--brokers",
      broker.brokers.join(","),
      "--topic",
      topic,
      "--out",
      out,
      "--wait-ms",
      "120000",
    ]);
    await waitFor("record to say it waits for the topic", () =>
      running.logs.find((l) => l.event === "waiting_for_kafka" && l.topic === topic),
    );
    await createTopic(broker, topic, 1);
    const r = await running.result;
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, STACK_FRAME);
    const summary = r.logs.find((l) => "records" in l);
    assert.equal(summary?.topic, topic, "the summary line");
    assert.equal(existsSync(out), true);
  });

  test("simulate --brokers, broker unreachable: fails after the publisher's bounded retries", async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const r = await runCli(["simulate", "--brokers", address, "--topic", "t", "--steps", "10"]);
    assertOneLine(
      r,
      new RegExp(`^reluwatch: simulate: BROKER_UNREACHABLE: cannot reach Kafka at ${address} `),
    );
  });

  test("simulate, flags that do not go together: a usage line, exit code 2", async () => {
    const r = await runCli(["simulate", "--brokers", "127.0.0.1:9", "--steps", "10"]);
    assert.equal(r.code, 2);
    assert.deepEqual(r.text, ["reluwatch: simulate: --brokers needs --topic"]);
  });
});
