/**
 * Gives integration tests a real Kafka broker, from the first source that works:
 *   1. KAFKA_BROKERS, when set (comma-separated host:port list);
 *   2. a testcontainers Kafka container, when a container runtime answers;
 *   3. the local development broker on 127.0.0.1:9092 (deploy/kafka-local):
 *      whatever Kafka already answers there is used as it is, otherwise this
 *      checkout's is started and left running.
 * Reusing a broker that answers on 9092 is what lets two checkouts test on one
 * machine at once: the second cannot start its own there (kafka.sh refuses a
 * port in use), and tests keep apart by their unique topics anyway.
 * The runtime is probed over its API socket, not through the docker CLI, which
 * may be installed without a daemon behind it.
 *
 * Tests that stop and restart a broker get one of their own on free ports
 * (startPrivateBroker), never the shared one.
 */
import { randomUUID } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { packageRoot } from "../../src/paths.js";
import { registerZstdCodec } from "../../src/source/kafka-zstd.js";
import { ChildExitError, runFile, runToExit } from "./child.js";
import { freePort, freePorts } from "./ports.js";

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
  return localBroker();
}

const KAFKA_SH = join(packageRoot, "deploy/kafka-local/kafka.sh");
/** The development broker's port, as `make kafka-up` and `make demo` use it. */
const LOCAL_PORT = 9092;
/** The first `up` may fetch the jars from Maven Central; later ones take seconds. */
const UP_TIMEOUT_MS = 600_000;
const DOWN_TIMEOUT_MS = 120_000;

/** Runs `kafka.sh up|down` with the given KAFKA_* settings; resolves with its last line of output. */
async function kafkaSh(command: "up" | "down", env: Record<string, string>): Promise<string> {
  const { stdout } = await runFile(KAFKA_SH, [command], {
    env: { ...process.env, ...env },
    timeout: command === "up" ? UP_TIMEOUT_MS : DOWN_TIMEOUT_MS,
  });
  return stdout.trim().split("\n").at(-1) ?? "";
}

/** Whether a Kafka broker answers a metadata request at `address`. */
async function kafkaAnswers(address: string): Promise<boolean> {
  const probe = join(packageRoot, "scripts/kafka-ready.mjs");
  const r = await runToExit(process.execPath, [probe, address], { timeout: 30_000 }).catch(() => undefined);
  return r?.status === 0;
}

async function localBroker(): Promise<TestBroker> {
  const address = `127.0.0.1:${LOCAL_PORT}`;
  const reused = {
    brokers: [address],
    source: "local" as const,
    describe: `the Kafka answering at ${address}`,
  };
  if (await kafkaAnswers(address)) return reused;
  try {
    const started = await kafkaSh("up", { KAFKA_PORT: String(LOCAL_PORT) });
    return {
      brokers: [started],
      source: "local",
      describe: `local broker (deploy/kafka-local) at ${started}`,
    };
  } catch (err) {
    // Another checkout may have started one there in the meantime.
    if (await kafkaAnswers(address)) return reused;
    throw err;
  }
}

/** A broker a test may stop and start again; the TestBroker fields stay valid across restarts. */
export interface PrivateBroker extends TestBroker {
  /** Stops the broker and keeps its data, as an outage would. */
  stop(): Promise<void>;
  /** Starts it again: same ports, same data. */
  start(): Promise<void>;
  /** Stops it and deletes its data. */
  remove(): Promise<void>;
}

export interface PrivateBrokerOptions {
  /** The client port; a free one when not given. */
  port?: number;
  /** Writes a properties file for kafka.sh to append (KAFKA_EXTRA_PROPERTIES) once the ports are known; returns its path. */
  extraProperties?: (port: number, controllerPort: number) => Promise<string>;
  /** StorageTool format arguments (KAFKA_FORMAT_ARGS), e.g. SCRAM users. */
  formatArgs?: string;
}

/**
 * A deploy/kafka-local broker of the calling test's own, on free client and
 * controller ports. Its state lives under .kafka-local/<port>/ like any other
 * kafka.sh broker, so `make kafka-down-all` also stops one a killed run left
 * behind. Should another process take a port between the check and the start,
 * kafka.sh refuses it and other ports are tried.
 */
export async function startPrivateBroker(options: PrivateBrokerOptions = {}): Promise<PrivateBroker> {
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort());
    const [controllerPort] = await freePorts(1, [port]);
    const env: Record<string, string> = {
      KAFKA_PORT: String(port),
      KAFKA_CONTROLLER_PORT: String(controllerPort),
      ...(options.extraProperties
        ? { KAFKA_EXTRA_PROPERTIES: await options.extraProperties(port, controllerPort!) }
        : {}),
      ...(options.formatArgs ? { KAFKA_FORMAT_ARGS: options.formatArgs } : {}),
    };
    const stateDir = join(packageRoot, ".kafka-local", String(port));
    let address: string;
    try {
      address = await kafkaSh("up", env);
    } catch (err) {
      rmSync(stateDir, { recursive: true, force: true });
      const retry = options.port === undefined && attempt < 3;
      if (retry && err instanceof ChildExitError && /is taken by another process/.test(err.stderr)) continue;
      throw err;
    }
    return {
      brokers: [address],
      source: "local",
      describe: `private broker at ${address}`,
      stop: async () => {
        await kafkaSh("down", env);
      },
      start: async () => {
        await kafkaSh("up", env);
      },
      remove: async () => {
        await kafkaSh("down", env);
        rmSync(stateDir, { recursive: true, force: true });
      },
    };
  }
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

/** A kafkajs client for test set-up and checks; like every reluwatch client it reads zstd batches. */
export function kafkaClient(broker: TestBroker, clientId = "reluwatch-test"): Kafka {
  registerZstdCodec();
  return new Kafka({ clientId, brokers: broker.brokers, logLevel: logLevel.WARN });
}

export async function createTopic(broker: TestBroker, topic: string, numPartitions = 1): Promise<void> {
  const admin = kafkaClient(broker).admin();
  await admin.connect();
  try {
    // A broker that has just started may answer the leader check with UNKNOWN_TOPIC_OR_PARTITION
    // for a topic it created a moment ago (its metadata cache lags its controller): ask again.
    for (let attempt = 1; ; attempt++) {
      try {
        await admin.createTopics({
          topics: [{ topic, numPartitions, replicationFactor: 1 }],
          waitForLeaders: true,
        });
        return;
      } catch (err) {
        if (attempt >= 30 || (err as { retriable?: unknown }).retriable !== true) throw err;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  } finally {
    await admin.disconnect();
  }
}
