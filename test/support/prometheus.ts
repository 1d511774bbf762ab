/**
 * Real Prometheus and Alertmanager for tests (the Debian binaries that
 * `make system-deps` installs), a webhook receiver that records what
 * Alertmanager delivers, and `promtool check metrics`. Each process gets its
 * own port and temporary data directory and is stopped by the test that
 * started it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parse, stringify } from "yaml";
import { PRODUCTION_TIMINGS, type RuleTimings, renderRulesYaml } from "../../deploy/prometheus/rules.js";
import { packageRoot } from "../../src/paths.js";
import { runSync } from "./child.js";

/**
 * The shipped rules with test-sized durations: evaluation every second, short
 * `for:`. Expressions and thresholds are unchanged. The rising window spans
 * over a hundred evaluations, so a layer whose ratio jumped stays "rising" long
 * enough for `for:` to pass even when a busy machine delays or drops scrapes
 * (a dropped scrape marks the series stale and restarts `for:`).
 */
export const FAST_TIMINGS: RuleTimings = {
  ...PRODUCTION_TIMINGS,
  interval: "1s",
  risingWindow: "2m",
  for: {
    layerDying: "3s",
    layerDead: "3s",
    bornDead: "3s",
    rankStale: "3s",
    noSnapshots: "3s",
    consumerLagging: "3s",
    invalidSnapshots: "3s",
  },
};

/**
 * `promtool check metrics` over exposition text: the exit status and what
 * promtool printed (its lint findings when the status is not 0).
 */
export function promtoolCheckMetrics(text: string): { status: number; output: string } {
  const result = runSync(which(["promtool"]), ["check", "metrics"], { input: text });
  return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
}

/** The shipped Alertmanager configuration, relative to the package root. */
export const ALERTMANAGER_CONFIG_FILE = "deploy/alertmanager/alertmanager.yml";

export class ProcessStartError extends Error {
  constructor(
    readonly binary: string,
    detail: string,
  ) {
    super(`${binary} did not become ready: ${detail}`);
    this.name = "ProcessStartError";
  }
}

function which(candidates: string[]): string {
  for (const c of candidates) {
    const found = runSync("sh", ["-c", `command -v ${c}`]);
    if (found.status === 0) return found.stdout.trim();
  }
  throw new ProcessStartError(
    candidates[0]!,
    `none of ${candidates.join(", ")} is on PATH (run \`make system-deps\`)`,
  );
}

interface Managed {
  child: ChildProcess;
  dir: string;
  output: () => string;
  stop: () => Promise<void>;
}

function launch(binary: string, args: string[], dir: string): Managed {
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    child,
    dir,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitReady(url: string, managed: Managed, binary: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (managed.child.exitCode !== null) {
      throw new ProcessStartError(binary, `exited with ${managed.child.exitCode}:\n${managed.output()}`);
    }
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await managed.stop();
  throw new ProcessStartError(binary, `no answer from ${url} within ${timeoutMs} ms:\n${managed.output()}`);
}

export interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: "pending" | "firing";
  value: string;
}

export interface RunningPrometheus {
  url: string;
  /** Runs an instant query; throws on a PromQL error. */
  query(expr: string): Promise<VectorSample[]>;
  /** Alerts Prometheus currently holds (pending or firing). */
  alerts(): Promise<PrometheusAlert[]>;
  /** Last lines Prometheus logged, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  port: number;
  /** prometheus.yml content; relative paths in it resolve against the temp directory. */
  config: Record<string, unknown>;
  /** Extra files to write into the temp directory first (rule files), by name. */
  files?: Record<string, string>;
}

export class PromQLError extends Error {
  constructor(
    readonly expr: string,
    detail: string,
  ) {
    super(`query failed: ${expr}: ${detail}`);
    this.name = "PromQLError";
  }
}

export async function startPrometheus(opts: PrometheusOptions): Promise<RunningPrometheus> {
  const binary = which(["prometheus"]);
  const dir = mkdtempSync(join(tmpdir(), "reluwatch-prometheus-"));
  for (const [name, content] of Object.entries(opts.files ?? {})) writeFileSync(join(dir, name), content);
  const configPath = join(dir, "prometheus.yml");
  writeFileSync(configPath, stringify(opts.config));
  const managed = launch(
    binary,
    [
      `--config.file=${configPath}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${opts.port}`,
      "--log.level=warn",
    ],
    dir,
  );
  const url = `http://127.0.0.1:${opts.port}`;
  await waitReady(`${url}/-/ready`, managed, binary);
  return {
    url,
    async query(expr) {
      const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: expr })}`);
      const body = (await res.json()) as {
        status: string;
        error?: string;
        data?: { resultType: string; result: VectorSample[] | [number, string] };
      };
      if (body.status !== "success" || !body.data) throw new PromQLError(expr, body.error ?? res.statusText);
      if (body.data.resultType === "scalar") {
        return [{ metric: {}, value: body.data.result as [number, string] }];
      }
      return body.data.result as VectorSample[];
    },
    async alerts() {
      const res = await fetch(`${url}/api/v1/alerts`);
      const body = (await res.json()) as { data: { alerts: PrometheusAlert[] } };
      return body.data.alerts;
    },
    log: managed.output,
    stop: managed.stop,
  };
}

export interface RunningAlertmanager {
  url: string;
  log(): string;
  stop(): Promise<void>;
}

/**
 * The shipped alertmanager.yml with every receiver replaced by one webhook and
 * test-sized grouping delays: routing tree and inhibition rules stay as shipped.
 */
export function alertmanagerConfigForTest(webhookUrl: string): Record<string, unknown> {
  const shipped = parse(readFileSync(join(packageRoot, ALERTMANAGER_CONFIG_FILE), "utf8")) as {
    route: Route;
    receivers: unknown[];
  };
  const retarget = (route: Route) => {
    if (route.receiver) route.receiver = "test-webhook";
    if (route.group_wait) route.group_wait = "1s";
    if (route.group_interval) route.group_interval = "1s";
    for (const child of route.routes ?? []) retarget(child);
  };
  retarget(shipped.route);
  shipped.receivers = [
    { name: "test-webhook", webhook_configs: [{ url: webhookUrl, send_resolved: false }] },
  ];
  return shipped;
}

interface Route {
  receiver?: string;
  group_wait?: string;
  group_interval?: string;
  routes?: Route[];
}

export async function startAlertmanager(opts: {
  port: number;
  config: Record<string, unknown>;
}): Promise<RunningAlertmanager> {
  const binary = which(["prometheus-alertmanager", "alertmanager"]);
  const dir = mkdtempSync(join(tmpdir(), "reluwatch-alertmanager-"));
  const configPath = join(dir, "alertmanager.yml");
  writeFileSync(configPath, stringify(opts.config));
  const managed = launch(
    binary,
    [
      `--config.file=${configPath}`,
      `--storage.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${opts.port}`,
      // A lone instance: no gossip port to collide with other developers' runs.
      "--cluster.listen-address=",
      "--log.level=warn",
    ],
    dir,
  );
  const url = `http://127.0.0.1:${opts.port}`;
  await waitReady(`${url}/-/ready`, managed, binary);
  return { url, log: managed.output, stop: managed.stop };
}

/** One alert as Alertmanager's webhook payload carries it. */
export interface WebhookAlert {
  status: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface WebhookReceiver {
  url: string;
  /** Every alert received so far, in arrival order. */
  received: WebhookAlert[];
  /** Resolves once `predicate` holds for the alerts received, or rejects after `timeoutMs`. */
  waitFor(predicate: (alerts: WebhookAlert[]) => boolean, timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: WebhookAlert[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString();
    });
    req.on("end", () => {
      try {
        const payload = JSON.parse(body) as { alerts?: WebhookAlert[] };
        received.push(...(payload.alerts ?? []));
        res.writeHead(200).end();
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}/alerts`,
    received,
    async waitFor(predicate, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(received)) {
        if (Date.now() > deadline) {
          throw new Error(
            `webhook condition not met within ${timeoutMs} ms; received ${JSON.stringify(received)}`,
          );
        }
        await sleep(200);
      }
    },
    stop: () => close(server),
  };
}

/** A prometheus.yml scraping `targets` every second, with the given rule files and Alertmanager. */
export function prometheusConfigForTest(opts: {
  targets: string[];
  ruleFiles: string[];
  alertmanager?: string;
}): Record<string, unknown> {
  return {
    // The timeout as long as the interval allows: a slow answer on a busy machine is not a failed scrape.
    global: { scrape_interval: "1s", evaluation_interval: "1s", scrape_timeout: "1s" },
    rule_files: opts.ruleFiles,
    scrape_configs: [{ job_name: "reluwatch", static_configs: [{ targets: opts.targets }] }],
    ...(opts.alertmanager
      ? { alerting: { alertmanagers: [{ static_configs: [{ targets: [opts.alertmanager] }] }] } }
      : {}),
  };
}

/** The shipped rules rendered with FAST_TIMINGS, as a file for startPrometheus's `files`. */
export function fastRuleFile(): Record<string, string> {
  return { "reluwatch.rules.yml": renderRulesYaml(FAST_TIMINGS) };
}
