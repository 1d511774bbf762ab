/**
 * Bundles the unit explorer (src/ui/client) into three files, index.html,
 * app.js and app.css, with esbuild: no CDN and nothing fetched at run time.
 * `make build` writes them to dist/ui, which the package serves; run from
 * source, the server bundles them in memory on the first request instead.
 *
 *   node --import tsx src/ui/build.ts dist/ui
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { packageRoot } from "../paths.js";

export const UI_FILES = ["index.html", "app.js", "app.css"] as const;
export type UiFile = (typeof UI_FILES)[number];

// Relative asset paths: every explorer page lives one level below /ui/, behind whatever prefix a proxy adds.
const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>reluwatch explorer</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="app.css">
</head>
<body>
<header><a class="brand" href="./">reluwatch</a><nav id="crumbs"></nav><span id="live" class="live"></span></header>
<main id="app"><p class="muted">loading…</p></main>
<script src="app.js"></script>
</body>
</html>
`;

export async function bundleUi(): Promise<Record<UiFile, Uint8Array>> {
  // esbuild is a build-time dependency: imported only when bundling, never by the running service.
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    entryPoints: [join(packageRoot, "src/ui/client/main.ts")],
    bundle: true,
    minify: true,
    format: "iife",
    target: ["es2022"],
    outdir: "out",
    entryNames: "app",
    write: false,
    logLevel: "silent",
    legalComments: "none",
  });
  const files: Partial<Record<UiFile, Uint8Array>> = { "index.html": new TextEncoder().encode(INDEX_HTML) };
  for (const file of result.outputFiles) {
    const name = file.path.endsWith(".css") ? "app.css" : "app.js";
    files[name] = file.contents;
  }
  for (const name of UI_FILES) if (!files[name]) throw new Error(`bundling the explorer produced no ${name}`);
  return files as Record<UiFile, Uint8Array>;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outDir = process.argv[2] ?? join(packageRoot, "dist/ui");
  const files = await bundleUi();
  mkdirSync(outDir, { recursive: true });
  for (const name of UI_FILES) writeFileSync(join(outDir, name), files[name]);
  process.stderr.write(
    `explorer bundled into ${outDir}: ${UI_FILES.map((n) => `${n} ${files[n].byteLength} B`).join(", ")}\n`,
  );
}
