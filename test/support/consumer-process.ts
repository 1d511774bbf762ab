/**
 * Runs `reluwatch consume` as a child process, as users deploy it, so tests can
 * send it real signals (SIGTERM, SIGKILL) and read its JSON-lines log.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { packageRoot } from "../../src/paths.js";

export interface ConsumerProcess {
  child: ChildProcess;
  baseUrl: string;
  /** Every JSON log line so far. */
  logs: Array<Record<string, unknown>>;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
}

/** How long the consumer may take to start serving HTTP before the test gives up on it. */
const LISTEN_TIMEOUT_MS = 60_000;

export async function startConsumerProcess(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<ConsumerProcess> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(packageRoot, "src/cli/main.ts"),
      "consume",
      "--metrics-host",
      "127.0.0.1",
      "--metrics-port",
      "0",
      ...args,
    ],
    { cwd: packageRoot, env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] },
  );
  const logs: Array<Record<string, unknown>> = [];
  const exited = once(child, "exit").then(([code, signal]) => (code ?? signal) as number | string);
  const port = new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stderr! });
    lines.on("line", (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line);
      } catch {
        entry = { raw: line };
      }
      logs.push(entry);
      if (entry.event === "http_listening") resolve(entry.port as number);
    });
    exited.then((code) =>
      reject(
        new Error(
          `consume exited (${code}) before listening:\n${logs.map((l) => JSON.stringify(l)).join("\n")}`,
        ),
      ),
    );
  });
  // A consumer that neither listens nor exits would otherwise hold the test until its own timeout.
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(
          `consume did not listen within ${LISTEN_TIMEOUT_MS / 1000} s and was killed:\n${logs.map((l) => JSON.stringify(l)).join("\n")}`,
        ),
      );
    }, LISTEN_TIMEOUT_MS);
  });
  const p = await Promise.race([port, deadline]).finally(() => clearTimeout(timer));
  return { child, baseUrl: `http://127.0.0.1:${p}`, logs, exited };
}

/** Polls until `check` returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${lastError ? `: ${lastError}` : ""}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The flags of a consumer on `topic` with the tests' naming convention: group
 * `<topic>.group`, events `<topic>.events`, dead letters `<topic>.dlq`.
 */
export function consumerArgs(
  brokers: readonly string[],
  topic: string,
  events = `${topic}.events`,
): string[] {
  return [
    "--brokers",
    brokers.join(","),
    "--topic",
    topic,
    "--group",
    `${topic}.group`,
    "--events-topic",
    events,
    "--dead-letter-topic",
    `${topic}.dlq`,
    // These tests start the consumer before producing: everything they produce is live.
    "--start-from",
    "earliest",
  ];
}
