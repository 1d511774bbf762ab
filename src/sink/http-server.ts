/**
 * The HTTP face of the service: Prometheus scrape, health and readiness
 * probes, the API for per-unit detail (which does not belong in Prometheus
 * series) and the unit explorer under /ui. Errors carry stable codes, listed
 * in docs/api.md.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { BearerAuth, tokenCookie } from "./api/auth.js";
import { ApiError, sendError, sendJson } from "./api/respond.js";
import { type ApiSource, decodeSegments, routeApi } from "./api/router.js";
import { routeUi } from "./ui/routes.js";

export { API_ERROR_CODES, type ApiErrorCode } from "./api/respond.js";
export type { ApiSource } from "./api/router.js";

export interface HttpServerOptions {
  host: string;
  port: number;
  api: ApiSource;
  metrics: () => Promise<string>;
  metricsContentType: string;
  /** Why the instance is not ready, or undefined when it is. */
  notReadyReason: () => string | undefined;
  /** When set, /api and /ui answer only requests bearing this token; /metrics and the probes stay open. */
  token?: string;
}

export class HttpServer {
  private server: Server | undefined;
  private readonly auth: BearerAuth | undefined;

  constructor(private readonly options: HttpServerOptions) {
    this.auth = options.token === undefined ? undefined : new BearerAuth(options.token);
  }

  async start(): Promise<AddressInfo> {
    const server = createServer((req, res) => {
      this.route(req, res).catch((err: unknown) =>
        err instanceof ApiError
          ? sendError(res, err.code, err.message)
          : sendError(res, "internal", String(err)),
      );
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
    if (path === "/ui" || path.startsWith("/ui/") || path === "/api" || path.startsWith("/api/")) {
      const ui = path === "/ui" || path.startsWith("/ui/");
      if (this.auth !== undefined && !this.authorized(req, res, url, ui)) return;
      // The explorer's routes see the raw path: "/ui/" and "/ui" differ for relative links.
      if (ui) return routeUi(req, res, url.pathname === "/ui/" ? "/ui/" : path);
      return routeApi(this.options.api, req, res, decodeSegments(path), url.searchParams);
    }
    sendError(res, "not_found", `no route for ${path}`);
  }

  /**
   * Whether a request to /api or /ui may proceed; answers it when not. A /ui
   * request with the right `?token=` gets the token as a cookie and a redirect
   * to the same page without it, so the token leaves the address bar and history.
   */
  private authorized(req: IncomingMessage, res: ServerResponse, url: URL, ui: boolean): boolean {
    const auth = this.auth!;
    const given = url.searchParams.get("token");
    if (ui && given !== null && auth.matches(given)) {
      url.searchParams.delete("token");
      const rest = url.searchParams.toString();
      const page = url.pathname.slice(url.pathname.lastIndexOf("/") + 1);
      res.writeHead(303, {
        "set-cookie": tokenCookie(given),
        location: `${page === "" ? "./" : page}${rest === "" ? "" : `?${rest}`}`,
      });
      res.end();
      return false;
    }
    if (auth.allows(req)) return true;
    sendError(res, "unauthorized", "a bearer token is required (Authorization: Bearer <token>)");
    return false;
  }
}
