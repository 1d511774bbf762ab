/**
 * The explorer's static files. From a build (dist/) they are read from
 * dist/ui, written by `make build`; run from source under tsx they are bundled
 * in memory on first use, so the explorer always matches the code running.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../../paths.js";
import { bundleUi, UI_FILES, type UiFile } from "../../ui/build.js";

export interface UiAsset {
  body: Uint8Array;
  type: string;
  etag: string;
}

const TYPES: Record<UiFile, string> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
};

const fromSource = import.meta.url.endsWith(".ts");

async function loadFiles(): Promise<Record<UiFile, Uint8Array>> {
  if (fromSource) return bundleUi();
  const dir = join(packageRoot, "dist/ui");
  const files: Partial<Record<UiFile, Uint8Array>> = {};
  for (const name of UI_FILES) {
    try {
      files[name] = readFileSync(join(dir, name));
    } catch (err) {
      throw new Error(
        `explorer file ${join(dir, name)} is missing (${(err as NodeJS.ErrnoException).code}); run make build`,
      );
    }
  }
  return files as Record<UiFile, Uint8Array>;
}

let loaded: Promise<Map<string, UiAsset>> | undefined;

/** The explorer's files by name; rejects, with what to do, when they cannot be found or bundled. */
export function uiAssets(): Promise<Map<string, UiAsset>> {
  loaded ??= loadFiles().then((files) => {
    const out = new Map<string, UiAsset>();
    for (const name of UI_FILES) {
      const body = files[name];
      const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 16)}"`;
      out.set(name, { body, type: TYPES[name], etag });
    }
    return out;
  });
  // A failed load is retried on the next request rather than cached.
  loaded.catch(() => {
    loaded = undefined;
  });
  return loaded;
}
