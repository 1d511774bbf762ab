/**
 * Gives integration tests a real Kafka broker, from the first source that works:
 *   1. KAFKA_BROKERS, when set (comma-separated host:port list);
 *   2. a testcontainers Kafka container, when a container runtime answers;
 *   3. the local broker of deploy/kafka-local, started if it is not already up.
 * The runtime is probed over its API socket, not through the docker CLI, which
 * may be installed without a daemon behind it.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { promisify } from "node:util";
import { Kafka, logLevel } from "kafkajs";
import { packageRoot } from "../../src/paths.js";

const run = promisify(execFile);

export type BrokerSource = "env" | "testcontainers" | "local";

export interface TestBroker {
  brokers: string[];
  source: BrokerSource;
  /** Human-readable: where this broker comes from. */
  describe: string;
}

let shared: Promise<TestBroker> | undefined;

/** The broker every test in this process shares (topics keep tests apart). */
export function getBroker(): Promise<TestBroker> {
  shared ??= resolveBroker();
  return shared;
}

async function resolveBroker(): Promise<TestBroker> {
  const fromEnv = process.env.KAFKA_BROKERS?.trim();
  if (fromEnv) {
    const brokers = fromEnv.split(",").map((b) => b.trim());
    return { brokers, source: "env", describe: `KAFKA_BROKERS=${fromEnv}` };
  }
  if (await containerRuntimeAnswers()) {
    const { KafkaContainer } = await import("@testcontainers/kafka");
    const container = await new KafkaContainer("confluentinc/cp-kafka:7.9.0").withKraft().start();
    const address = `${container.getHost()}:${container.getMappedPort(9093)}`;
    return { brokers: [address], source: "testcontainers", describe: `testcontainers Kafka at ${address}` };
  }
  const address = await startLocalBroker();
  return { brokers: [address], source: "local", describe: `local broker (deploy/kafka-local) at ${address}` };
}

/** Starts (or finds) a deploy/kafka-local broker on the given port; returns its address. */
export async function startLocalBroker(port = 9092): Promise<string> {
  const { stdout } = await run(join(packageRoot, "deploy/kafka-local/kafka.sh"), ["up"], {
    env: { ...process.env, KAFKA_PORT: String(port) },
    timeout: 600_000,
  });
  return stdout.trim().split("\n").at(-1)!;
}

export async function stopLocalBroker(port = 9092): Promise<void> {
  await run(join(packageRoot, "deploy/kafka-local/kafka.sh"), ["down"], {
    env: { ...process.env, KAFKA_PORT: String(port) },
    timeout: 120_000,
  });
}

function containerRuntimeAnswers(): Promise<boolean> {
  const host = process.env.DOCKER_HOST;
  let socketPath = "/var/run/docker.sock";
  if (host?.startsWith("unix://")) socketPath = host.slice("unix://".length);
  else if (host) return pingTcp(host);
  if (!existsSync(socketPath)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const req = request({ socketPath, path: "/_ping", timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

function pingTcp(dockerHost: string): Promise<boolean> {
  const url = new URL(dockerHost.replace(/^tcp:/, "http:"));
  return new Promise((resolve) => {
    const req = request({ host: url.hostname, port: url.port, path: "/_ping", timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

/** A topic name no other test (or earlier run) uses. */
export function uniqueTopic(prefix: string): string {
  return `test.${prefix}.${randomUUID().slice(0, 8)}`;
}

export function kafkaClient(broker: TestBroker, clientId = "reluwatch-test"): Kafka {
  return new Kafka({ clientId, brokers: broker.brokers, logLevel: logLevel.WARN });
}

export async function createTopic(broker: TestBroker, topic: string, numPartitions = 1): Promise<void> {
  const admin = kafkaClient(broker).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions, replicationFactor: 1 }],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
}
