import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The package root, found by walking up from this file: the same code runs
 * from src/ under tsx and from dist/src/ after a build, at different depths.
 */
export const packageRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, "package.json");
    if (existsSync(candidate) && JSON.parse(readFileSync(candidate, "utf8")).name === "reluwatch") return dir;
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error(`reluwatch package.json not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
})();

export const schemasDir = join(packageRoot, "schemas");

export const packageVersion: string = JSON.parse(
  readFileSync(join(packageRoot, "package.json"), "utf8"),
).version;
