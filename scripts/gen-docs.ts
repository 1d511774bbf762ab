// Rewrites the generated parts of docs/ from the code: `make docs`.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REFERENCE_BEGIN, REFERENCE_END, renderSettingsReference } from "../src/config/reference.js";
import { packageRoot } from "../src/paths.js";

const path = join(packageRoot, "docs/configuration.md");
const text = readFileSync(path, "utf8");
const start = text.indexOf(REFERENCE_BEGIN);
const end = text.indexOf(REFERENCE_END);
if (start < 0 || end < 0) throw new Error(`${path} lacks the settings-reference markers`);
writeFileSync(
  path,
  text.slice(0, start) + renderSettingsReference() + text.slice(end + REFERENCE_END.length),
);
console.log(`updated ${path}`);
