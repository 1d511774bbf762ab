/**
 * The HTTP face of the service: Prometheus scrape, health and readiness
 * probes, and the JSON API for per-unit detail (which does not belong in
 * Prometheus series). Errors carry stable codes, listed in docs/api.md.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { LayerSummary, UnitDetail } from "../core/index.js";

export interface ApiSource {
  summaries(): LayerSummary[];
  summary(run_id: string, layer: string): LayerSummary | undefined;
  units(run_id: string, layer: string): UnitDetail[] | undefined;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  api: ApiSource;
  metrics: () => Promise<string>;
  metricsContentType: string;
  /** Why the instance is not ready, or undefined when it is. */
  notReadyReason: () => string | undefined;
}

export const API_ERROR_CODES = [
  "not_found",
  "run_not_found",
  "layer_not_found",
  "method_not_allowed",
  "internal",
] as const;
export type ApiErrorCode = (typeof API_ERROR_CODES)[number];

const STATUS: Record<ApiErrorCode, number> = {
  not_found: 404,
  run_not_found: 404,
  layer_not_found: 404,
  method_not_allowed: 405,
  internal: 500,
};

export class HttpServer {
  private server: Server | undefined;

  constructor(private readonly options: HttpServerOptions) {}

  async start(): Promise<AddressInfo> {
    const server = createServer((req, res) => {
      this.route(req, res).catch((err: unknown) => sendError(res, "internal", String(err)));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    return server.address() as AddressInfo;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (req.method !== "GET" && req.method !== "HEAD") {
      sendError(res, "method_not_allowed", `${req.method} is not supported; use GET`);
      return;
    }
    const path = url.pathname.replace(/\/+$/, "") || "/";
    if (path === "/metrics") {
      const body = await this.options.metrics();
      res.writeHead(200, { "content-type": this.options.metricsContentType });
      res.end(body);
      return;
    }
    if (path === "/healthz") {
      sendJson(res, 200, { status: "ok" });
      return;
    }
    if (path === "/readyz") {
      const reason = this.options.notReadyReason();
      sendJson(res, reason ? 503 : 200, reason ? { status: "not_ready", reason } : { status: "ready" });
      return;
    }
    const parts = path.split("/").slice(1).map(decodeURIComponent);
    if (parts[0] !== "api" || parts[1] !== "runs") {
      sendError(res, "not_found", `no route for ${path}`);
      return;
    }
    const api = this.options.api;
    if (parts.length === 2) {
      sendJson(res, 200, { runs: listRuns(api.summaries()) });
      return;
    }
    const run = parts[2]!;
    const layers = api.summaries().filter((s) => s.run_id === run);
    if (layers.length === 0) {
      sendError(res, "run_not_found", `run ${JSON.stringify(run)} is not tracked by this instance`);
      return;
    }
    if (parts.length === 4 && parts[3] === "layers") {
      sendJson(res, 200, { run_id: run, layers: layers.sort((a, b) => a.layer.localeCompare(b.layer)) });
      return;
    }
    // Layer names may themselves contain slashes (e.g. "blocks/3/fc1").
    if (parts.length >= 5 && parts[3] === "layers") {
      const layer = parts.slice(4).join("/");
      const summary = api.summary(run, layer);
      const units = api.units(run, layer);
      if (!summary || !units) {
        sendError(
          res,
          "layer_not_found",
          `layer ${JSON.stringify(layer)} of run ${JSON.stringify(run)} is not tracked`,
        );
        return;
      }
      sendJson(res, 200, { summary, units });
      return;
    }
    sendError(res, "not_found", `no route for ${path}`);
  }
}

function listRuns(summaries: LayerSummary[]) {
  const runs = new Map<
    string,
    { run_id: string; layers: number; units: number; dead: number; step: number }
  >();
  for (const s of summaries) {
    const r = runs.get(s.run_id) ?? { run_id: s.run_id, layers: 0, units: 0, dead: 0, step: 0 };
    r.layers++;
    r.units += s.layer_units;
    r.dead += s.units_by_state.DEAD;
    r.step = Math.max(r.step, s.step);
    runs.set(s.run_id, r);
  }
  return [...runs.values()].sort((a, b) => a.run_id.localeCompare(b.run_id));
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  res.end(text);
}

function sendError(res: ServerResponse, code: ApiErrorCode, message: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  sendJson(res, STATUS[code], { error: { code, message } });
}
