/** How the HTTP server answers: JSON bodies, binary bodies, and errors with stable codes (docs/api.md). */
import type { IncomingMessage, ServerResponse } from "node:http";
import { gzip } from "node:zlib";

export const API_ERROR_CODES = [
  "bad_request",
  "unauthorized",
  "not_found",
  "run_not_found",
  "layer_not_found",
  "unit_not_found",
  "method_not_allowed",
  "ui_unavailable",
  "internal",
] as const;
export type ApiErrorCode = (typeof API_ERROR_CODES)[number];

const STATUS: Record<ApiErrorCode, number> = {
  bad_request: 400,
  unauthorized: 401,
  not_found: 404,
  run_not_found: 404,
  layer_not_found: 404,
  unit_not_found: 404,
  method_not_allowed: 405,
  ui_unavailable: 503,
  internal: 500,
};

/** A request the router refuses with a stable code; thrown from deep inside a handler, answered once. */
export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  res.end(text);
}

export function sendError(res: ServerResponse, code: ApiErrorCode, message: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const headers: Record<string, string> = { "content-type": "application/json; charset=utf-8" };
  if (code === "unauthorized") headers["www-authenticate"] = 'Bearer realm="reluwatch"';
  res.writeHead(STATUS[code], headers);
  res.end(JSON.stringify({ error: { code, message } }));
}

function acceptsGzip(req: IncomingMessage): boolean {
  return /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
}

/**
 * A body gzipped when the client accepts it and it is big enough to gain;
 * `etag` (quoted) answers a matching If-None-Match with 304 and no body.
 */
export async function sendBody(
  req: IncomingMessage,
  res: ServerResponse,
  body: Uint8Array,
  headers: Record<string, string>,
  etag?: string,
): Promise<void> {
  const out: Record<string, string> = { ...headers, vary: "accept-encoding" };
  if (etag !== undefined) {
    out.etag = etag;
    if (req.headers["if-none-match"] === etag) {
      res.writeHead(304, out);
      res.end();
      return;
    }
  }
  if (body.byteLength >= 1024 && acceptsGzip(req)) {
    const zipped = await new Promise<Buffer>((resolve, reject) =>
      gzip(body, { level: 6 }, (err, z) => (err ? reject(err) : resolve(z))),
    );
    out["content-encoding"] = "gzip";
    res.writeHead(200, out);
    res.end(zipped);
    return;
  }
  res.writeHead(200, out);
  res.end(body);
}
