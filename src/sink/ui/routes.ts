/**
 * GET /ui/...: the unit explorer, one page application. /ui redirects to /ui/;
 * app.js and app.css are its files; every other path under /ui/ (the runs,
 * run, layer and unit pages) is index.html, which reads the page from the URL.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ApiError, sendBody } from "../api/respond.js";
import { uiAssets } from "./assets.js";

export async function routeUi(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
  if (pathname === "/ui") {
    // Relative, so a proxy's path prefix is kept.
    res.writeHead(308, { location: `ui/${new URL(req.url ?? "/", "http://localhost").search}` });
    res.end();
    return;
  }
  let assets: Awaited<ReturnType<typeof uiAssets>>;
  try {
    assets = await uiAssets();
  } catch (err) {
    throw new ApiError("ui_unavailable", `the explorer is not available: ${(err as Error).message}`);
  }
  const name = pathname.slice("/ui/".length);
  const asset = assets.get(name === "app.js" || name === "app.css" ? name : "index.html")!;
  await sendBody(
    req,
    res,
    asset.body,
    {
      "content-type": asset.type,
      "cache-control": "no-cache",
      "content-security-policy":
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
      "x-content-type-options": "nosniff",
    },
    asset.etag,
  );
}
